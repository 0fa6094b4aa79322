package mcrs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Status values of the C API (mcrs_status in mcrs.h). They are stable: never
// renumbered, new ones only appended. [Error.Status] holds one of them.
const (
	StatusOK              = 0
	StatusNotFound        = 1
	StatusNotStored       = 2
	StatusExists          = 3
	StatusInvalidKey      = 4
	StatusInvalidArgument = 5
	StatusNullPointer     = 6
	StatusClientError     = 7
	StatusServerError     = 8
	StatusUnknownCommand  = 9
	StatusConnectFailed   = 10
	StatusIO              = 11
	StatusTimeout         = 12
	StatusUnexpectedClose = 13
	StatusProtocol        = 14
	StatusNoServers       = 15
	StatusBufferTooSmall  = 16
	StatusPanic           = 17
	StatusServerDown      = 18
	StatusCancelled       = 19
	StatusTLS             = 20
	StatusAuthFailed      = 21
	StatusPartial         = 22
	StatusValueTooLarge   = 23
)

// Sentinel errors. Every error returned by a [Client] for a library status is
// an [*Error]; errors.Is(err, ErrX) matches it against the sentinel of its
// status. ErrClosed is returned as is.
var (
	// ErrNotFound: the key is absent. Get-style calls report a miss with
	// found == false instead; Cas, Delete and Touch (when waiting for the
	// reply) return it.
	ErrNotFound = errors.New("mcrs: not found")
	// ErrNotStored: add, replace, append or prepend did not store (the
	// condition was not met).
	ErrNotStored = errors.New("mcrs: not stored")
	// ErrExists: cas found the item changed since its cas unique was read.
	ErrExists = errors.New("mcrs: exists (cas mismatch)")
	// ErrInvalidKey: the key is empty, longer than 250 bytes with the prefix,
	// or has a forbidden byte. Raised before any I/O.
	ErrInvalidKey = errors.New("mcrs: invalid key")
	// ErrInvalidArgument: an argument out of range (expire beyond 2^31-1, zero
	// timeout, bad server address, ...).
	ErrInvalidArgument = errors.New("mcrs: invalid argument")
	// ErrNullPointer: a NULL pointer reached the C API (a bug in this
	// binding if it is ever seen).
	ErrNullPointer = errors.New("mcrs: null pointer argument")
	// ErrClientError: the server answered CLIENT_ERROR (e.g. incr of a
	// non-numeric value).
	ErrClientError = errors.New("mcrs: client error reported by the server")
	// ErrServerError: the server answered SERVER_ERROR (e.g. object too large).
	ErrServerError = errors.New("mcrs: server error reported by the server")
	// ErrUnknownCommand: the server answered ERROR.
	ErrUnknownCommand = errors.New("mcrs: unknown command")
	// ErrConnectFailed: no connection could be made within the connect timeout.
	ErrConnectFailed = errors.New("mcrs: connection failed")
	// ErrIO: a socket error.
	ErrIO = errors.New("mcrs: i/o error")
	// ErrTimeout: the operation did not complete within the timeout, or
	// its ctx's deadline passed first (the error then also matches
	// context.DeadlineExceeded).
	ErrTimeout = errors.New("mcrs: timeout")
	// ErrUnexpectedClose: the server closed the connection mid-reply.
	ErrUnexpectedClose = errors.New("mcrs: connection closed unexpectedly")
	// ErrProtocol: the server sent bytes that are not a valid reply.
	ErrProtocol = errors.New("mcrs: protocol error")
	// ErrNoServers: no server is configured, or none is alive.
	ErrNoServers = errors.New("mcrs: no servers available")
	// ErrBufferTooSmall: GetBytesInto's buffer cannot hold the value.
	ErrBufferTooSmall = errors.New("mcrs: buffer too small")
	// ErrInternal: a bug in mcrs was caught at the C API boundary
	// (MCRS_STATUS_PANIC); the call had no effect that can be relied on.
	ErrInternal = errors.New("mcrs: internal panic (bug in mcrs)")
	// ErrServerDown: the key's server failed recently and is not retried
	// before RetryTimeout has passed (clusters only; reads are misses with
	// IgnoreExc). After RetryAttempts failures the server leaves the ring and
	// its keys move to the live servers.
	ErrServerDown = errors.New("mcrs: server down")
	// ErrCancelled: the request did not complete: its ctx was cancelled
	// (the error also matches context.Canceled), or the client's event
	// loop went away first.
	ErrCancelled = errors.New("mcrs: cancelled")
	// ErrTLS: the TLS handshake or certificate verification failed.
	ErrTLS = errors.New("mcrs: tls error")
	// ErrAuthFailed: the server refused the credentials.
	ErrAuthFailed = errors.New("mcrs: authentication failed")
	// ErrPartial: a multi-key command completed for some keys only (the
	// servers of the others failed); the results of the others come with it.
	ErrPartial = errors.New("mcrs: partial result")
	// ErrValueTooLarge: the server announced a value above the configured
	// maximum value size.
	ErrValueTooLarge = errors.New("mcrs: value too large")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("mcrs: client is closed")
	// ErrUnsupportedValue: the serializer cannot encode the value's type (the
	// default serde takes []byte, string and integers), or the deserializer
	// cannot decode the stored flags (e.g. a pickled Python object).
	ErrUnsupportedValue = errors.New("mcrs: unsupported value")
)

var sentinels = [...]error{
	StatusNotFound:        ErrNotFound,
	StatusNotStored:       ErrNotStored,
	StatusExists:          ErrExists,
	StatusInvalidKey:      ErrInvalidKey,
	StatusInvalidArgument: ErrInvalidArgument,
	StatusNullPointer:     ErrNullPointer,
	StatusClientError:     ErrClientError,
	StatusServerError:     ErrServerError,
	StatusUnknownCommand:  ErrUnknownCommand,
	StatusConnectFailed:   ErrConnectFailed,
	StatusIO:              ErrIO,
	StatusTimeout:         ErrTimeout,
	StatusUnexpectedClose: ErrUnexpectedClose,
	StatusProtocol:        ErrProtocol,
	StatusNoServers:       ErrNoServers,
	StatusBufferTooSmall:  ErrBufferTooSmall,
	StatusPanic:           ErrInternal,
	StatusServerDown:      ErrServerDown,
	StatusCancelled:       ErrCancelled,
	StatusTLS:             ErrTLS,
	StatusAuthFailed:      ErrAuthFailed,
	StatusPartial:         ErrPartial,
	StatusValueTooLarge:   ErrValueTooLarge,
}

// Error is a failure reported by the mcrs library (or, for a few argument
// checks, by this binding before calling it).
type Error struct {
	// Status is the library's status code (one of the Status* constants).
	Status int
	// Op is the client method, e.g. "get" or "set_many".
	Op string
	// Key is the key involved, when the call had exactly one ("" otherwise).
	Key string
	// Detail is the library's description of this failure
	// (mcrs_last_error), e.g. which byte of a key is forbidden.
	Detail string
	// err is ctx.Err() when the call's context ended first
	err error
}

// Unwrap gives the context's error (context.Canceled or
// context.DeadlineExceeded) when the call's ctx ended before it completed,
// so that errors.Is(err, context.DeadlineExceeded) holds; nil otherwise.
func (e *Error) Unwrap() error { return e.err }

// Error formats as "mcrs: <op> "<key>": <status text>: <detail>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mcrs: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Key))
	}
	b.WriteString(": ")
	text := StatusText(e.Status)
	switch {
	case e.Detail == "" || e.Detail == text:
		b.WriteString(text)
	case strings.HasPrefix(e.Detail, text+": "):
		// the library's detail often starts with the status text already
		b.WriteString(e.Detail)
	default:
		b.WriteString(text)
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is reports whether target is the sentinel error of e's status, so that
// errors.Is(err, mcrs.ErrTimeout) works.
func (e *Error) Is(target error) bool {
	return e.Status >= 0 && e.Status < len(sentinels) && sentinels[e.Status] != nil &&
		sentinels[e.Status] == target
}

// Timeout reports whether the failure is a timeout (as net.Error does).
func (e *Error) Timeout() bool { return e.Status == StatusTimeout }

// StatusText is the library's description of a status code
// (mcrs_status_str): "not found", "timeout", ...; "unknown status" for a
// value it does not know.
func StatusText(status int) string {
	if status >= 0 && status < len(statusTexts) {
		return statusTexts[status]
	}
	return "unknown status"
}

// PartialError is the error of a multi-key command when some servers failed
// and others answered: the results that come with it hold what the others
// had, and Failed lists every key whose server failed, with why. errors.Is
// matches ErrPartial and the sentinel of each failed key's status, so
// errors.Is(err, ErrTimeout) tells that some key's server timed out.
type PartialError struct {
	// Op is the client method, e.g. "get_many".
	Op string
	// Failed holds one entry per key whose server failed, in key order.
	Failed []KeyError
}

// KeyError is one key of a PartialError.
type KeyError struct {
	Key string
	// Err carries the key's status (StatusTimeout, StatusServerDown, ...)
	// and the library's detail.
	Err *Error
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mcrs: %s: %d key(s) failed", e.Op, len(e.Failed))
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, " (first %q: %s)", e.Failed[0].Key, e.Failed[0].Err.Error())
	}
	return b.String()
}

// Is matches ErrPartial.
func (e *PartialError) Is(target error) bool { return target == ErrPartial }

// Unwrap gives each failed key's error, for errors.Is and errors.As.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}

// partialError builds the PartialError of op from per-key statuses: the keys
// whose status is not an answer (OK, NOT_FOUND, NOT_STORED) failed.
func partialError(op string, keys []string, status func(i int) int, detail string) *PartialError {
	pe := &PartialError{Op: op}
	first := -1 // the status the detail (the first failure's) belongs to
	for i, k := range keys {
		switch st := status(i); st {
		case StatusOK, StatusNotFound, StatusNotStored:
		default:
			if first < 0 {
				first = st
			}
			d := ""
			if st == first {
				d = detail
			}
			pe.Failed = append(pe.Failed, KeyError{Key: k, Err: &Error{Status: st, Op: op, Key: k, Detail: d}})
		}
	}
	return pe
}
