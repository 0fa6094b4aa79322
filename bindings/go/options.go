package mcrs

/*
#include "mcrs_go.h"
*/
import "C"

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// DistributionKind says how keys are spread over several servers.
type DistributionKind uint32

const (
	// Rendezvous is pymemcache HashClient's rendezvous hashing (murmur3), the
	// default: a Go and a Python client on the same servers agree on keys.
	Rendezvous DistributionKind = C.MCRS_DISTRIBUTION_RENDEZVOUS
	// Ketama is libmemcached's weighted ketama (pylibmc "ketama_weighted",
	// php-memcached "libketama compatible").
	Ketama DistributionKind = C.MCRS_DISTRIBUTION_KETAMA
	// Xxh3 is a fast rendezvous over xxh3 for clusters only mcrs clients share.
	Xxh3 DistributionKind = C.MCRS_DISTRIBUTION_XXH3
)

// Option configures a Client in New.
type Option func(*builder) error

// builder collects New's options: most go straight into the C config.
type builder struct {
	cfg     *C.mcrs_config
	serde   Serde
	weights map[string]uint32
	loops   int
	// what the binding needs to know of the config (see Client.solo)
	defaultNoreply bool
	ignoreExc      bool
}

// msArg converts a duration to whole milliseconds for the C API: rounded up
// (a positive duration never becomes 0), negative or too large is an error.
func msArg(op string, d time.Duration) (C.uint32_t, error) {
	if d < 0 {
		return 0, &Error{Status: StatusInvalidArgument, Op: op,
			Detail: fmt.Sprintf("negative duration %v", d)}
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return 0, &Error{Status: StatusInvalidArgument, Op: op,
			Detail: fmt.Sprintf("duration %v is too long", d)}
	}
	return C.uint32_t(ms), nil
}

func countArg(op string, n int) (C.uint32_t, error) {
	if n < 0 || uint64(n) > math.MaxUint32 {
		return 0, &Error{Status: StatusInvalidArgument, Op: op,
			Detail: fmt.Sprintf("%d is out of range", n)}
	}
	return C.uint32_t(n), nil
}

func msOption(op string, d time.Duration, set func(*C.mcrs_config, C.uint32_t) C.enum_mcrs_status) Option {
	return func(b *builder) error {
		ms, err := msArg(op, d)
		if err != nil {
			return err
		}
		return configStatus(op, "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(set(b.cfg, ms), eb.ptr(), eb.size())
		})
	}
}

func boolOption(op string, on bool, set func(*C.mcrs_config, C.bool) C.enum_mcrs_status) Option {
	return func(b *builder) error {
		return configStatus(op, "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(set(b.cfg, C.bool(on)), eb.ptr(), eb.size())
		})
	}
}

// ConnectTimeout bounds establishing a connection (default 1s; must be > 0).
func ConnectTimeout(d time.Duration) Option {
	return msOption("connect_timeout", d, func(c *C.mcrs_config, ms C.uint32_t) C.enum_mcrs_status {
		return C.mcrs_config_set_connect_timeout_ms(c, ms)
	})
}

// Timeout bounds each operation, from sending the request to the last byte of
// the reply, and the wait for a free pooled connection (default 1s; > 0).
func Timeout(d time.Duration) Option {
	return msOption("timeout", d, func(c *C.mcrs_config, ms C.uint32_t) C.enum_mcrs_status {
		return C.mcrs_config_set_timeout_ms(c, ms)
	})
}

// RetryTimeout is the least time between retries of a failing server
// (cluster only; default 1s).
func RetryTimeout(d time.Duration) Option {
	return msOption("retry_timeout", d, func(c *C.mcrs_config, ms C.uint32_t) C.enum_mcrs_status {
		return C.mcrs_config_set_retry_timeout_ms(c, ms)
	})
}

// DeadTimeout is how long a server removed from the ring stays out before it
// is probed again (cluster only; default 60s).
func DeadTimeout(d time.Duration) Option {
	return msOption("dead_timeout", d, func(c *C.mcrs_config, ms C.uint32_t) C.enum_mcrs_status {
		return C.mcrs_config_set_dead_timeout_ms(c, ms)
	})
}

// PoolIdleTimeout closes idle pooled connections older than d instead of
// reusing them (0, the default: never).
func PoolIdleTimeout(d time.Duration) Option {
	return msOption("pool_idle_timeout", d, func(c *C.mcrs_config, ms C.uint32_t) C.enum_mcrs_status {
		return C.mcrs_config_set_pool_idle_timeout_ms(c, ms)
	})
}

// NoDelay sets TCP_NODELAY on new connections (default on).
func NoDelay(on bool) Option {
	return boolOption("no_delay", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_no_delay(c, v)
	})
}

// KeepAlive sets SO_KEEPALIVE on new connections (default off).
func KeepAlive(on bool) Option {
	return boolOption("keepalive", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_keepalive(c, v)
	})
}

// IgnoreExc makes network and server failures on reads (Get, Gets, Gat,
// Gats, GetMany, GetsMany, GetBytes) look like misses, as pymemcache's
// ignore_exc does (default off). Writes still report failures.
func IgnoreExc(on bool) Option {
	set := boolOption("ignore_exc", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_ignore_exc(c, v)
	})
	return func(b *builder) error { b.ignoreExc = on; return set(b) }
}

// DefaultNoreply is the noreply used when a call has no Noreply option, for
// Set, Add, Replace, Append, Prepend, Delete, DeleteMany, SetMany, Touch,
// FlushAll and Verbosity (default on, as in pymemcache: such calls return once
// the request is written and cannot report NOT_STORED or NOT_FOUND). Cas,
// Incr, Decr and CacheMemlimit always wait for the reply unless told otherwise.
func DefaultNoreply(on bool) Option {
	set := boolOption("default_noreply", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_default_noreply(c, v)
	})
	return func(b *builder) error { b.defaultNoreply = on; return set(b) }
}

// FlushOnRejoin flushes a dead server before it rejoins the ring (default
// on), so stale copies it kept while out of the ring are never served
// (cluster only).
func FlushOnRejoin(on bool) Option {
	return boolOption("flush_on_rejoin", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_flush_on_rejoin(c, v)
	})
}

// FailoverTTL caps the exptime of writes routed to a stand-in while their
// server is out of the ring (default 60s; 0: no cap), so stale copies on
// stand-ins age out for every client. Whole seconds.
func FailoverTTL(d time.Duration) Option {
	return func(b *builder) error {
		if d < 0 || d > time.Duration(math.MaxUint32)*time.Second {
			return &Error{Status: StatusInvalidArgument, Op: "failover_ttl", Detail: "out of range"}
		}
		return configStatus("failover_ttl", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_failover_ttl(b.cfg, C.uint32_t(d/time.Second)), eb.ptr(), eb.size())
		})
	}
}

// MaxTrackedKeys is how many keys are remembered per server while it is out
// of the ring (default 100000); past that the server is flushed when it
// rejoins.
func MaxTrackedKeys(n int) Option {
	return func(b *builder) error {
		v, err := countArg("max_tracked_keys", n)
		if err != nil {
			return err
		}
		return configStatus("max_tracked_keys", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_max_tracked_keys(b.cfg, v), eb.ptr(), eb.size())
		})
	}
}

// MaxValueSize is the largest value accepted from a server (default and
// most 1 GiB): a larger one fails with ErrValueTooLarge before it is read.
func MaxValueSize(bytes int) Option {
	return func(b *builder) error {
		if bytes <= 0 {
			return &Error{Status: StatusInvalidArgument, Op: "max_value_size", Detail: "must be > 0"}
		}
		return configStatus("max_value_size", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_max_value_size(b.cfg, C.uint64_t(bytes)), eb.ptr(), eb.size())
		})
	}
}

// BufferNoreply buffers noreply commands (libmemcached's BUFFER_REQUESTS;
// default off): they are written when 64 KiB accumulate on a connection,
// when a command that waits for a reply goes out on it, on FlushBuffers, and
// on Close. Off, a noreply call returns once its bytes are written. It
// concerns the pooled connections of the blocking admin calls
// (CacheMemlimit, Verbosity, Quit) only: the event loops, which carry every
// other call, write the requests of each turn in one write per server.
func BufferNoreply(on bool) Option {
	return boolOption("buffer_noreply", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_buffer_noreply(c, v)
	})
}

// AllowUnicodeKeys accepts UTF-8 keys (bytes >= 0x80); default off (ASCII).
func AllowUnicodeKeys(on bool) Option {
	return boolOption("allow_unicode_keys", on, func(c *C.mcrs_config, v C.bool) C.enum_mcrs_status {
		return C.mcrs_config_set_allow_unicode_keys(c, v)
	})
}

// KeyPrefix is prepended to every key on the wire (not used to choose the
// server). It counts toward the 250-byte key limit.
func KeyPrefix(prefix string) Option {
	return func(b *builder) error {
		p, n := keyArg(prefix)
		return configStatus("key_prefix", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_key_prefix(b.cfg, p, n), eb.ptr(), eb.size())
		})
	}
}

// MaxPoolSize is the most connections open to one server at once (>= 1;
// default 32). A call that finds all busy waits up to Timeout for one.
func MaxPoolSize(n int) Option {
	return func(b *builder) error {
		v, err := countArg("max_pool_size", n)
		if err != nil {
			return err
		}
		return configStatus("max_pool_size", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_max_pool_size(b.cfg, v), eb.ptr(), eb.size())
		})
	}
}

// RetryAttempts is how many failures of a server are tolerated before it
// leaves the ring (cluster only; default 2).
func RetryAttempts(n int) Option {
	return func(b *builder) error {
		v, err := countArg("retry_attempts", n)
		if err != nil {
			return err
		}
		return configStatus("retry_attempts", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_retry_attempts(b.cfg, v), eb.ptr(), eb.size())
		})
	}
}

// Distribution chooses how keys are spread over the servers (default
// Rendezvous).
func Distribution(d DistributionKind) Option {
	return func(b *builder) error {
		return configStatus("distribution", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_distribution(b.cfg, C.mcrs_distribution(d)), eb.ptr(), eb.size())
		})
	}
}

// Weights gives servers ketama weights (>= 1; servers not listed weigh 1).
// Keys are the addresses exactly as passed to New. Only Ketama uses weights.
func Weights(w map[string]uint32) Option {
	return func(b *builder) error {
		if b.weights == nil {
			b.weights = make(map[string]uint32, len(w))
		}
		for k, v := range w {
			b.weights[k] = v
		}
		return nil
	}
}

// EventLoops is the number of event loops the client runs (default 1), each
// on an OS thread of its own with one connection per server, requests
// pipelined on it. Calls pick a loop at random. One loop keeps up with many
// goroutines; more help only when one thread is saturated.
func EventLoops(n int) Option {
	return func(b *builder) error {
		if n < 1 || n > 1024 {
			return &Error{Status: StatusInvalidArgument, Op: "event_loops",
				Detail: fmt.Sprintf("%d event loops (1 to 1024)", n)}
		}
		b.loops = n
		return nil
	}
}

// WithSerde sets the serializer/deserializer of values (default DefaultSerde).
// See SerdeFunc to pass two functions instead.
func WithSerde(s Serde) Option {
	return func(b *builder) error {
		if s == nil {
			s = DefaultSerde
		}
		b.serde = s
		return nil
	}
}

// CallOption adjusts one call: Noreply, Expire or Delay.
type CallOption struct {
	kind callOptKind
	n    int64
}

type callOptKind uint8

const (
	optNoreply callOptKind = iota + 1
	optExpire
	optDelay
)

// Noreply(true) makes the call return as soon as the request is written,
// without waiting for (or reporting) the server's answer; Noreply(false)
// waits for it. Without this option the client's default applies (see
// DefaultNoreply).
func Noreply(on bool) CallOption {
	if on {
		return CallOption{optNoreply, C.MCRS_NOREPLY_ON}
	}
	return CallOption{optNoreply, C.MCRS_NOREPLY_OFF}
}

// Expire sets a stored item's expiration time in seconds: 0 (the default)
// never expires, up to 30 days (2592000) is relative to now, larger values
// are an absolute unix time (at most 2^31-1).
func Expire(seconds int) CallOption { return CallOption{optExpire, int64(seconds)} }

// ExpireAt is Expire with an absolute time.
func ExpireAt(t time.Time) CallOption { return CallOption{optExpire, t.Unix()} }

// Delay is FlushAll's delay in seconds before the items are invalidated.
func Delay(seconds int) CallOption { return CallOption{optDelay, int64(seconds)} }

type callOpts struct {
	noreply C.mcrs_noreply
	expire  C.uint32_t
	delay   C.uint32_t
}

func parseCallOpts(op, key string, opts []CallOption) (callOpts, error) {
	o := callOpts{noreply: C.MCRS_NOREPLY_DEFAULT}
	for _, opt := range opts {
		switch opt.kind {
		case optNoreply:
			o.noreply = C.mcrs_noreply(opt.n)
		case optExpire, optDelay:
			if opt.n < 0 || opt.n > math.MaxUint32 {
				return o, &Error{Status: StatusInvalidArgument, Op: op, Key: key,
					Detail: fmt.Sprintf("expire/delay %d is out of range", opt.n)}
			}
			if opt.kind == optExpire {
				o.expire = C.uint32_t(opt.n)
			} else {
				o.delay = C.uint32_t(opt.n)
			}
		}
	}
	return o, nil
}

// keyArg gives a string's bytes as a C (ptr, len) for the duration of a call.
// The C API rejects a NULL key even when empty, so an empty string gets a
// valid pointer (and then the library reports ErrInvalidKey).
func keyArg(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&emptyKey)), 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

var emptyKey byte

// bytesArg gives a byte slice as a C (ptr, len) for the duration of a call.
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}
