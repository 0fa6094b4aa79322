// Package mcrs is a memcached client for Go over libmcrs, the Rust core of
// the mcrs project, called through cgo.
//
// It covers what pymemcache does: one server or a cluster (keys spread by
// pymemcache's rendezvous hashing, libmemcached's ketama, or xxh3),
// serializer hooks, noreply defaults, multi-key commands pipelined per
// server, ignore_exc, and connect/operation timeouts.
//
//	client, err := mcrs.New([]string{"localhost:11211"})
//	if err != nil { ... }
//	defer client.Close()
//	ctx := context.Background() // or a request's context, with its deadline
//	client.Set(ctx, "some_key", "some_value")
//	value, found, err := client.Get(ctx, "some_key") // "some_value", true, nil
//
// # Values
//
// Values go through a [Serde]. [DefaultSerde] stores []byte, string and
// integers with pymemcache's flags (0, 16 and 2), so Python's
// pymemcache.serde.pickle_serde reads them back as bytes, str and int, and
// the reverse; other types are an error matching [ErrUnsupportedValue].
// [WithSerde] with [SerdeFunc] plugs in a serializer/deserializer pair, e.g.
// JSON. [Client.GetBytes] reads the raw bytes whatever the flags.
//
// # Results and errors
//
// Reads report a miss as found == false, never as an error. Conditional
// writes report their outcome as an error: [ErrNotStored] (Add, Replace,
// Append, Prepend), [ErrExists] and [ErrNotFound] (Cas), [ErrNotFound]
// (Delete, Touch). Failures are [*Error] values carrying the library's status
// and detail; match them with errors.Is against the sentinels ([ErrTimeout],
// [ErrConnectFailed], [ErrInvalidKey], ...).
//
// Storage commands, Delete and Touch default to noreply, as in pymemcache:
// they return once the request is written and cannot see NOT_STORED or
// NOT_FOUND. Pass [Noreply](false) to a call, or [DefaultNoreply](false) to
// New, to wait for the reply. Cas, Incr and Decr always wait unless told not to.
//
// # Contexts
//
// Every call takes a context.Context first. A deadline shorter than the
// client's [Timeout] caps the call; a cancel ends the wait at once. The
// error then wraps ctx.Err(): errors.Is(err, context.DeadlineExceeded) (and
// [ErrTimeout]) or errors.Is(err, context.Canceled) (and [ErrCancelled]).
// The abandoned request stays matched to its reply, so the connection stays
// in step; a write given up on may or may not have been applied.
//
// # TLS and authentication
//
// [TLS] with a [TLSConfig] turns TLS on for every connection (verified
// against the system roots or a given CA, mutual TLS with a client
// certificate, a server name), and [Auth] logs in to a memcached -Y server
// on every new connection. A failed handshake is [ErrTLS], a refused login
// [ErrAuthFailed]; the error's Detail names the cause, never the password.
//
// # Concurrency and lifetime
//
// A Client is safe for concurrent use. Calls run on the client's event
// loop ([EventLoops], default 1): requests of all goroutines are pipelined
// on one connection per server, a waiting goroutine blocks no OS thread,
// and no lock is shared by every call. A single-key read made alone with a
// context that cannot end may use the blocking C API on the caller's thread
// instead (see README.md). [Client.Close] lets calls in progress complete,
// stops the loops and frees the client; later calls return [ErrClosed]. A
// Client that is never closed is freed when it becomes unreachable.
//
// # Building
//
// The package links libmcrs from the repository it lives in: run
// `cargo build --release` at the repository root first. See README.md for
// static linking, pkg-config, and installed copies (build tags mcrs_static,
// mcrs_pkgconfig, mcrs_external).
package mcrs
