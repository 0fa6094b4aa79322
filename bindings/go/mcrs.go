package mcrs

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include "mcrs_go.h"
#cgo noescape mcrsgo_get
#cgo nocallback mcrsgo_get
#cgo noescape mcrsgo_store
#cgo nocallback mcrsgo_store
#cgo noescape mcrsgo_keyed
#cgo nocallback mcrsgo_keyed
#cgo noescape mcrsgo_many
#cgo nocallback mcrsgo_many
#cgo noescape mcrsgo_set_many
#cgo nocallback mcrsgo_set_many
#cgo noescape mcrsgo_admin
#cgo nocallback mcrsgo_admin
#cgo noescape mcrsgo_blocking
#cgo nocallback mcrsgo_blocking
#cgo noescape mcrsgo_bget
#cgo nocallback mcrsgo_bget
*/
import "C"

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// statusTexts are the library's descriptions of its status codes.
var statusTexts [StatusValueTooLarge + 1]string

func init() {
	for i := range statusTexts {
		statusTexts[i] = C.GoString(C.mcrs_status_str(C.enum_mcrs_status(i)))
	}
}

// LibraryVersion is the version of the linked libmcrs.
func LibraryVersion() string { return C.GoString(C.mcrs_version()) }

// errBuf receives the detail of a failed call in the same cgo call
// (mcrs_last_error is per thread; reading it in a second call would need
// the goroutine locked to its thread).
type errBuf [256]C.char

func (b *errBuf) ptr() *C.char   { return &b[0] }
func (b *errBuf) size() C.size_t { return C.size_t(len(b)) }
func (b *errBuf) String() string { return C.GoString(&b[0]) }

// statusError turns a status into an error: nil for OK; NOT_FOUND,
// NOT_STORED and EXISTS are outcomes (no detail); else the detail given.
func statusError(st int, op, key, detail string) error {
	switch st {
	case StatusOK:
		return nil
	case StatusNotFound, StatusNotStored, StatusExists:
		return &Error{Status: st, Op: op, Key: key}
	}
	return &Error{Status: st, Op: op, Key: key, Detail: detail}
}

// configStatus runs one config call and reads its detail in the same cgo
// call (config calls are made by New on one goroutine).
func configStatus(op, key string, call func(eb *errBuf) C.enum_mcrs_status) error {
	var eb errBuf
	st := call(&eb)
	if st == C.MCRS_STATUS_OK {
		return nil
	}
	return statusError(int(st), op, key, eb.String())
}

// Client is a memcached client for one server or a cluster. It is safe for
// concurrent use by many goroutines, which share its event loops: requests
// are pipelined on one connection per server and loop, and a waiting
// goroutine blocks no OS thread. Close it when done.
type Client struct {
	st      *clientState
	drivers []*driver
	serde   Serde
	cleanup runtime.Cleanup
	// soloOK: one server, one loop, no IgnoreExc (see solo)
	soloOK         bool
	defaultNoreply bool
}

// clientState is what Close (or the cleanup of a forgotten client) frees.
type clientState struct {
	h       *C.mcrs_client
	drivers []*driver
	// blocking calls (CacheMemlimit, Verbosity, Quit, FlushBuffers) hold it
	// for reading; close takes it for writing
	mu     sync.RWMutex
	closed bool
	once   sync.Once
	// active counts the calls in progress (closedBit once closing)
	active atomic.Uint64
	// writes numbers the writes submitted to the loop; acked is the
	// highest of them known processed by the server (see solo)
	writes, acked atomic.Uint64
}

func (st *clientState) close() {
	st.once.Do(func() {
		for {
			v := st.active.Load()
			if st.active.CompareAndSwap(v, v|closedBit) {
				break
			}
		}
		for _, d := range st.drivers {
			d.stop()
		}
		for st.active.Load() != closedBit { // blocking reads still running
			time.Sleep(time.Millisecond)
		}
		st.mu.Lock()
		st.closed = true
		C.mcrs_client_free(st.h)
		st.h = nil
		st.mu.Unlock()
	})
}

// New makes a client for servers ("host:port", "host" for port 11211,
// "[v6addr]:port", "unix:/path" or "/path"). With several servers, keys are
// spread by the Distribution option. It does no I/O: connections open on
// first use. No server gives ErrNoServers, an address that does not parse
// ErrInvalidArgument.
func New(servers []string, opts ...Option) (*Client, error) {
	cfg := C.mcrs_config_new()
	if cfg == nil {
		return nil, &Error{Status: StatusPanic, Op: "new", Detail: "mcrs_config_new returned NULL"}
	}
	defer C.mcrs_config_free(cfg)
	b := &builder{cfg: cfg, serde: DefaultSerde, loops: 1, defaultNoreply: true}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	for _, s := range servers {
		addr := C.CString(s)
		w, weighted := b.weights[s]
		err := configStatus("add_server", s, func(eb *errBuf) C.enum_mcrs_status {
			if weighted {
				return C.mcrsgo_submitted(C.mcrs_config_add_server_weighted(cfg, addr, C.uint32_t(w)), eb.ptr(), eb.size())
			}
			return C.mcrsgo_submitted(C.mcrs_config_add_server(cfg, addr), eb.ptr(), eb.size())
		})
		C.free(unsafe.Pointer(addr))
		if err != nil {
			return nil, err
		}
	}
	var h *C.mcrs_client
	if err := configStatus("new", "", func(eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_submitted(C.mcrs_client_new(cfg, &h), eb.ptr(), eb.size())
	}); err != nil {
		return nil, err
	}
	st := &clientState{h: h}
	for i := 0; i < b.loops; i++ {
		d, err := newDriver(h, &st.acked, &st.active)
		if err != nil {
			st.close()
			return nil, err
		}
		st.drivers = append(st.drivers, d)
	}
	c := &Client{st: st, drivers: st.drivers, serde: b.serde, defaultNoreply: b.defaultNoreply,
		soloOK: len(servers) == 1 && b.loops == 1 && !b.ignoreExc}
	// A forgotten Close still stops the loops and frees the C client once c
	// is unreachable (no call can be running then: every call keeps c alive
	// until it returns). close blocks until the loops exit, so not on the
	// cleanup goroutine.
	c.cleanup = runtime.AddCleanup(c, func(st *clientState) { go st.close() }, st)
	return c, nil
}

// Close stops the client's event loops, once the calls in progress have
// completed (each within the Timeout), and frees the client; later calls
// return ErrClosed. Closing again is a no-op.
func (c *Client) Close() error {
	c.cleanup.Stop()
	c.st.close()
	return nil
}

// pick chooses the event loop of one call.
func (c *Client) pick() *driver {
	if len(c.drivers) == 1 {
		return c.drivers[0]
	}
	return c.drivers[rand.N(len(c.drivers))]
}

// submitFunc submits one request to loop l with request id id, writing the
// detail of a refusal to eb.
type submitFunc func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status

// reqKind says what a request does to the server's data, for solo.
type reqKind int

const (
	kindRead    reqKind = iota // reads only; its reply proves earlier writes processed
	kindWrite                  // a write that waits for its reply
	kindNoreply                // a write whose reply is not read
)

// writeKind is the kind of a write with noreply nr, whose default follows
// DefaultNoreply when followsDefault (else it waits for the reply).
func (c *Client) writeKind(nr C.mcrs_noreply, followsDefault bool) reqKind {
	if nr == C.MCRS_NOREPLY_ON || nr == C.MCRS_NOREPLY_DEFAULT && followsDefault && c.defaultNoreply {
		return kindNoreply
	}
	return kindWrite
}

// enter counts a call in progress and says whether it is the only one;
// ErrClosed once the client is closing. leave must follow.
func (c *Client) enter() (alone bool, err error) {
	n := c.st.active.Add(1)
	if n&closedBit != 0 {
		c.st.active.Add(^uint64(0))
		return false, ErrClosed
	}
	return n == 1, nil
}

func (c *Client) leave() { c.st.active.Add(^uint64(0)) }

// solo reports whether a single-key read may take the blocking path: run
// on the calling goroutine's thread over a pooled connection (one write and
// one read, without the hand-over to the event loop and back, which is what
// a lone goroutine waits on). It may when
//   - no other call is in progress on the client (nothing to pipeline with),
//   - ctx can never end (context.Background, TODO, or values of them), so
//     nothing needs to end the wait before the client's Timeout does,
//   - the client has one server, one loop and no IgnoreExc, and
//   - every write submitted to the loop is known processed by the server (a
//     reply to a request submitted after it came back on the loop's
//     connection), so the read on another connection cannot overtake one:
//     a read after a noreply Set on the loop takes the loop.
func (c *Client) solo(ctx context.Context, alone bool) bool {
	return alone && c.soloOK && ctx.Done() == nil && c.st.acked.Load() == c.st.writes.Load()
}

// roundTrip runs one request on an event loop and waits for its result or
// for ctx to end. into is GetBytesInto's buffer (wantInto).
func (c *Client) roundTrip(ctx context.Context, op, key string, kind reqKind, into []byte, wantInto bool,
	submit submitFunc) (result, error) {
	if ctx.Err() != nil {
		return result{}, ctxError(ctx, op, key)
	}
	alone, err := c.enter()
	if err != nil {
		return result{}, err
	}
	defer c.leave()
	return c.roundTripEntered(ctx, op, key, alone, kind, into, wantInto, submit)
}

// roundTripEntered: a caller alone on the client runs the loop itself when
// no goroutine is running it (driver.solo); else the driver goroutine does.
func (c *Client) roundTripEntered(ctx context.Context, op, key string, alone bool, kind reqKind, into []byte,
	wantInto bool, submit submitFunc) (result, error) {
	var seq uint64
	if kind == kindRead {
		seq = c.st.writes.Load()
	} else {
		seq = c.st.writes.Add(1)
	}
	d := c.pick()
	k, err := d.begin(into, wantInto, seq, kind != kindNoreply)
	if err != nil {
		return result{}, err
	}
	if alone && d.takeSolo() {
		return d.solo(ctx, op, key, k, submit)
	}
	var eb errBuf
	if st := submit(d.c.loop, k.id(), &eb); st != C.MCRS_STATUS_OK {
		k.refused()
		return result{}, statusError(int(st), op, key, eb.String())
	}
	d.unpark()
	if err := k.wait(ctx, op, key); err != nil {
		return result{}, err
	}
	res := k.s.res
	k.done()
	return res, nil
}

// simple runs a request whose result is its status.
func (c *Client) simple(ctx context.Context, op, key string, kind reqKind, submit submitFunc) error {
	res, err := c.roundTrip(ctx, op, key, kind, nil, false, submit)
	if err != nil {
		return err
	}
	return statusError(res.status, op, key, res.detail)
}

type storeCmd int

const (
	cmdSet storeCmd = iota
	cmdAdd
	cmdReplace
	cmdAppend
	cmdPrepend
	cmdCas
)

var storeOps = [...]string{"set", "add", "replace", "append", "prepend", "cas"}

func (c *Client) store(ctx context.Context, cmd storeCmd, key string, value any, cas uint64, opts []CallOption) error {
	op := storeOps[cmd]
	o, err := parseCallOpts(op, key, opts)
	if err != nil {
		return err
	}
	data, flags, err := c.serde.Serialize(key, value)
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	vp, vl := bytesArg(data)
	err = c.simple(ctx, op, key, c.writeKind(o.noreply, cmd != cmdCas), func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_store(l, C.int(cmd), kp, kl, vp, vl, C.uint32_t(flags), o.expire, C.uint64_t(cas),
			o.noreply, id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	runtime.KeepAlive(data)
	return err
}

// Set stores value under key (options: Expire, Noreply).
func (c *Client) Set(ctx context.Context, key string, value any, opts ...CallOption) error {
	return c.store(ctx, cmdSet, key, value, 0, opts)
}

// Add stores value only if key is absent; otherwise ErrNotStored (known only
// when waiting for the reply: Noreply(false) or DefaultNoreply(false)).
func (c *Client) Add(ctx context.Context, key string, value any, opts ...CallOption) error {
	return c.store(ctx, cmdAdd, key, value, 0, opts)
}

// Replace stores value only if key is present; otherwise ErrNotStored (known
// only when waiting for the reply).
func (c *Client) Replace(ctx context.Context, key string, value any, opts ...CallOption) error {
	return c.store(ctx, cmdReplace, key, value, 0, opts)
}

// Append adds value's bytes after the stored ones (the stored flags are
// kept); ErrNotStored when key is absent (known only when waiting).
func (c *Client) Append(ctx context.Context, key string, value any, opts ...CallOption) error {
	return c.store(ctx, cmdAppend, key, value, 0, opts)
}

// Prepend adds value's bytes before the stored ones; ErrNotStored when key is
// absent (known only when waiting).
func (c *Client) Prepend(ctx context.Context, key string, value any, opts ...CallOption) error {
	return c.store(ctx, cmdPrepend, key, value, 0, opts)
}

// Cas stores value only if key's cas unique is still cas (from Gets): nil
// when stored, ErrExists when the item changed, ErrNotFound when it is gone.
// Cas waits for the reply unless Noreply(true) is given.
func (c *Client) Cas(ctx context.Context, key string, value any, cas uint64, opts ...CallOption) error {
	return c.store(ctx, cmdCas, key, value, cas, opts)
}

// item is a value read from C, copied into Go memory.
type item struct {
	data  []byte
	flags uint32
	cas   uint64
}

type readCmd int

const (
	cmdGet readCmd = iota
	cmdGets
	cmdGat
	cmdGats
)

var readOps = [...]string{"get", "gets", "gat", "gats"}

// read fetches one item; found is false on a miss.
func (c *Client) read(ctx context.Context, cmd readCmd, key string, exptime C.uint32_t, into []byte,
	wantInto bool) (result, error) {
	op := readOps[cmd]
	if ctx.Err() != nil {
		return result{}, ctxError(ctx, op, key)
	}
	alone, err := c.enter()
	if err != nil {
		return result{}, err
	}
	defer c.leave()
	kp, kl := keyArg(key)
	if c.solo(ctx, alone) {
		return c.readBlocking(cmd, op, key, kp, kl, exptime, into, wantInto)
	}
	res, err := c.roundTripEntered(ctx, op, key, alone, kindRead, into, wantInto, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_get(l, C.int(cmd), kp, kl, exptime, id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	if err != nil {
		return res, err
	}
	if res.status == StatusNotFound {
		res.status = StatusOK
	}
	return res, statusError(res.status, op, key, res.detail)
}

// readBlocking is read's blocking path (see solo).
func (c *Client) readBlocking(cmd readCmd, op, key string, kp *C.uint8_t, kl C.size_t, exptime C.uint32_t,
	into []byte, wantInto bool) (result, error) {
	var eb errBuf
	var ci C.mcrsgo_item
	var v *C.mcrs_value
	st := C.mcrsgo_bget(c.st.h, C.int(cmd), kp, kl, exptime, &ci, &v, eb.ptr(), eb.size())
	runtime.KeepAlive(key)
	var res result
	switch st {
	case C.MCRS_STATUS_OK:
		res.found = true
		res.it.flags, res.it.cas = uint32(ci.flags), uint64(ci.cas)
		switch {
		case wantInto:
			res.intoN = int(ci.len)
			if int(ci.len) <= len(into) {
				copy(into, cBytes(ci.data, ci.len))
			}
		case ci.len == 0:
			res.it.data = []byte{}
		default:
			res.it.data = copyBytes(ci.data, ci.len)
		}
		C.mcrs_value_free(v)
		return res, nil
	case C.MCRS_STATUS_NOT_FOUND:
		return res, nil
	}
	return res, statusError(int(st), op, key, eb.String())
}

func (c *Client) decode(key string, it item) (any, error) {
	v, err := c.serde.Deserialize(key, it.data, it.flags)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Get reads key and deserializes it: (value, true, nil) on a hit,
// (nil, false, nil) on a miss (also for read failures with IgnoreExc).
func (c *Client) Get(ctx context.Context, key string) (any, bool, error) {
	res, err := c.read(ctx, cmdGet, key, 0, nil, false)
	if err != nil || !res.found {
		return nil, false, err
	}
	v, err := c.decode(key, res.it)
	return v, err == nil, err
}

// GetBytes reads key's raw bytes, without the serde (whatever its flags).
func (c *Client) GetBytes(ctx context.Context, key string) ([]byte, bool, error) {
	res, err := c.read(ctx, cmdGet, key, 0, nil, false)
	if err != nil || !res.found {
		return nil, false, err
	}
	return res.it.data, true, nil
}

// GetBytesInto reads key's raw bytes into buf, allocating nothing for the
// value: (n, flags, true, nil) on a hit with the value in buf[:n]; (0, 0,
// false, nil) on a miss. A value longer than len(buf) gives an error with
// ErrBufferTooSmall and n = the length needed (the item was read and
// dropped: a retry is a new request). buf is written only while the call
// runs: once it returned (also on a ctx error), buf is the caller's again.
func (c *Client) GetBytesInto(ctx context.Context, key string, buf []byte) (n int, flags uint32, found bool, err error) {
	res, err := c.read(ctx, cmdGet, key, 0, buf, true)
	if err != nil || !res.found {
		return 0, 0, false, err
	}
	if res.intoN > len(buf) {
		return res.intoN, 0, false, &Error{Status: StatusBufferTooSmall, Op: "get", Key: key,
			Detail: "the value is " + itoa(res.intoN) + " bytes, the buffer " + itoa(len(buf))}
	}
	return res.intoN, res.it.flags, true, nil
}

// Gets is Get plus the item's cas unique, for Cas.
func (c *Client) Gets(ctx context.Context, key string) (value any, cas uint64, found bool, err error) {
	res, err := c.read(ctx, cmdGets, key, 0, nil, false)
	if err != nil || !res.found {
		return nil, 0, false, err
	}
	v, err := c.decode(key, res.it)
	if err != nil {
		return nil, 0, false, err
	}
	return v, res.it.cas, true, nil
}

// Gat (get-and-touch) is Get that also sets the item's expiration (seconds,
// as Expire).
func (c *Client) Gat(ctx context.Context, key string, expire int) (any, bool, error) {
	o, err := parseCallOpts("gat", key, []CallOption{Expire(expire)})
	if err != nil {
		return nil, false, err
	}
	res, err := c.read(ctx, cmdGat, key, o.expire, nil, false)
	if err != nil || !res.found {
		return nil, false, err
	}
	v, err := c.decode(key, res.it)
	return v, err == nil, err
}

// Gats is Gat plus the item's cas unique.
func (c *Client) Gats(ctx context.Context, key string, expire int) (value any, cas uint64, found bool, err error) {
	o, err := parseCallOpts("gats", key, []CallOption{Expire(expire)})
	if err != nil {
		return nil, 0, false, err
	}
	res, err := c.read(ctx, cmdGats, key, o.expire, nil, false)
	if err != nil || !res.found {
		return nil, 0, false, err
	}
	v, err := c.decode(key, res.it)
	if err != nil {
		return nil, 0, false, err
	}
	return v, res.it.cas, true, nil
}

// cKeys is a C copy of a list of keys: the parallel pointer/length arrays the
// C API takes. Keys are copied into C memory, so no Go pointer is stored in
// C memory (cgo's rule) and nothing needs pinning.
type cKeys struct {
	block unsafe.Pointer
	ptrs  **C.uint8_t
	lens  *C.size_t
}

func newCKeys(keys []string) cKeys {
	n := len(keys)
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	ptrSize := int(unsafe.Sizeof((*C.uint8_t)(nil)))
	lenSize := int(unsafe.Sizeof(C.size_t(0)))
	block := C.malloc(C.size_t(n*ptrSize + n*lenSize + total + 1))
	if block == nil {
		panic("mcrs: out of memory")
	}
	ptrs := unsafe.Slice((**C.uint8_t)(block), n)
	lens := unsafe.Slice((*C.size_t)(unsafe.Add(block, n*ptrSize)), n)
	data := unsafe.Slice((*byte)(unsafe.Add(block, n*(ptrSize+lenSize))), total+1)
	off := 0
	for i, k := range keys {
		copy(data[off:], k)
		// an empty key still gets a valid pointer (the C API rejects NULL)
		ptrs[i] = (*C.uint8_t)(unsafe.Pointer(&data[off]))
		lens[i] = C.size_t(len(k))
		off += len(k)
	}
	return cKeys{block, (**C.uint8_t)(block), (*C.size_t)(unsafe.Add(block, n*ptrSize))}
}

func (k cKeys) free() { C.free(k.block) }

// checkOpen is ErrClosed after Close (for calls that need no request).
func (c *Client) checkOpen(ctx context.Context, op string) error {
	if ctx.Err() != nil {
		return ctxError(ctx, op, "")
	}
	d := c.pick()
	if d.submitted.Load()&closedBit != 0 {
		return ErrClosed
	}
	return nil
}

// readMany fetches several keys; a miss is absent from the result. A
// PARTIAL outcome (some servers failed) gives the hits and the error.
func (c *Client) readMany(ctx context.Context, gets bool, keys []string) (map[string]item, error) {
	op := "get_many"
	cmd := 0
	if gets {
		op, cmd = "gets_many", 1
	}
	if len(keys) == 0 {
		return map[string]item{}, c.checkOpen(ctx, op)
	}
	ck := newCKeys(keys)
	defer ck.free()
	n := C.size_t(len(keys))
	res, err := c.roundTrip(ctx, op, "", kindRead, nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_many(l, C.int(cmd), ck.ptrs, ck.lens, n, 0, 0, id, eb.ptr(), eb.size())
	})
	if err != nil {
		return nil, err
	}
	if res.status != StatusOK && res.status != StatusPartial {
		return nil, statusError(res.status, op, "", res.detail)
	}
	out := make(map[string]item, len(keys))
	for i, e := range res.entries {
		if i < len(keys) && e.status == StatusOK && e.it.data != nil {
			out[keys[i]] = e.it
		}
	}
	if res.status == StatusPartial {
		return out, partialError(op, keys, func(i int) int {
			if i < len(res.entries) {
				return res.entries[i].status
			}
			return StatusOK
		}, res.detail)
	}
	return out, nil
}

// GetMany reads several keys at once (one pipelined request per server) and
// deserializes them. Misses are left out of the map, as in pymemcache. When
// some servers failed (and IgnoreExc is off), the hits of the others come
// with a *PartialError (matching ErrPartial, and each failed key's status
// sentinel) that lists the failed keys.
func (c *Client) GetMany(ctx context.Context, keys []string) (map[string]any, error) {
	items, rerr := c.readMany(ctx, false, keys)
	if items == nil {
		return nil, rerr
	}
	out := make(map[string]any, len(items))
	for k, it := range items {
		v, err := c.decode(k, it)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rerr
}

// CasValue is a value and its cas unique, as GetsMany returns them.
type CasValue struct {
	Value any
	CAS   uint64
}

// GetsMany is GetMany with cas uniques.
func (c *Client) GetsMany(ctx context.Context, keys []string) (map[string]CasValue, error) {
	items, rerr := c.readMany(ctx, true, keys)
	if items == nil {
		return nil, rerr
	}
	out := make(map[string]CasValue, len(items))
	for k, it := range items {
		v, err := c.decode(k, it)
		if err != nil {
			return nil, err
		}
		out[k] = CasValue{v, it.cas}
	}
	return out, rerr
}

// SetMany stores several items (pipelined, one request per server) and
// returns the keys that were not stored (e.g. too large for the server), as
// pymemcache's set_many does. With noreply (the default) the server's answers
// are not read, so only keys whose server could not be reached at all are
// listed (with an error matching ErrPartial when only some servers failed,
// or the failure itself when all did). A value the serde rejects fails the
// whole call before any I/O.
func (c *Client) SetMany(ctx context.Context, items map[string]any, opts ...CallOption) ([]string, error) {
	o, err := parseCallOpts("set_many", "", opts)
	if err != nil {
		return nil, err
	}
	n := len(items)
	if n == 0 {
		return nil, c.checkOpen(ctx, "set_many")
	}
	keys := make([]string, 0, n)
	vals := make([][]byte, 0, n)
	flags := make([]C.uint32_t, 0, n)
	total := 0
	for k, v := range items {
		data, f, err := c.serde.Serialize(k, v)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		vals = append(vals, data)
		flags = append(flags, C.uint32_t(f))
		total += len(data)
	}
	ck := newCKeys(keys)
	defer ck.free()
	// values, their lengths and flags, in one C block
	ptrSize := int(unsafe.Sizeof((*C.uint8_t)(nil)))
	szSize := int(unsafe.Sizeof(C.size_t(0)))
	fSize := int(unsafe.Sizeof(C.uint32_t(0)))
	head := n*ptrSize + n*szSize
	block := C.malloc(C.size_t(head + n*fSize + total + 1))
	if block == nil {
		panic("mcrs: out of memory")
	}
	defer C.free(block)
	vptrs := unsafe.Slice((**C.uint8_t)(block), n)
	vlens := unsafe.Slice((*C.size_t)(unsafe.Add(block, n*ptrSize)), n)
	cflags := unsafe.Slice((*C.uint32_t)(unsafe.Add(block, head)), n)
	data := unsafe.Slice((*byte)(unsafe.Add(block, head+n*fSize)), total+1)
	off := 0
	for i, v := range vals {
		copy(data[off:], v)
		vptrs[i] = (*C.uint8_t)(unsafe.Pointer(&data[off]))
		vlens[i] = C.size_t(len(v))
		cflags[i] = flags[i]
		off += len(v)
	}
	res, err := c.roundTrip(ctx, "set_many", "", c.writeKind(o.noreply, true), nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_set_many(l, ck.ptrs, ck.lens, &vptrs[0], &vlens[0], &cflags[0], C.size_t(n), o.expire,
			o.noreply, id, eb.ptr(), eb.size())
	})
	if err != nil {
		return nil, err
	}
	switch res.status {
	case StatusOK, StatusNotStored, StatusPartial:
	default:
		return nil, statusError(res.status, "set_many", "", res.detail)
	}
	var out []string
	for i, st := range res.keys {
		if st != StatusOK && i < len(keys) {
			out = append(out, keys[i])
		}
	}
	if res.status == StatusPartial {
		return out, partialError("set_many", keys, func(i int) int {
			if i < len(res.keys) {
				return int(res.keys[i])
			}
			return StatusOK
		}, res.detail)
	}
	return out, nil
}

// Delete removes key. ErrNotFound when it was absent, which is known only
// when waiting for the reply (Noreply(false) or DefaultNoreply(false)).
func (c *Client) Delete(ctx context.Context, key string, opts ...CallOption) error {
	o, err := parseCallOpts("delete", key, opts)
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	err = c.simple(ctx, "delete", key, c.writeKind(o.noreply, true), func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_keyed(l, 0, kp, kl, 0, 0, o.noreply, id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	return err
}

// DeleteMany removes several keys (pipelined per server); absent keys are
// not an error. When some servers failed, a *PartialError lists the keys
// whose server failed.
func (c *Client) DeleteMany(ctx context.Context, keys []string, opts ...CallOption) error {
	o, err := parseCallOpts("delete_many", "", opts)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return c.checkOpen(ctx, "delete_many")
	}
	ck := newCKeys(keys)
	defer ck.free()
	res, err := c.roundTrip(ctx, "delete_many", "", c.writeKind(o.noreply, true), nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_many(l, 2, ck.ptrs, ck.lens, C.size_t(len(keys)), 0, o.noreply, id, eb.ptr(), eb.size())
	})
	if err != nil {
		return err
	}
	if res.status == StatusPartial && len(res.keys) == len(keys) {
		return partialError("delete_many", keys, func(i int) int { return int(res.keys[i]) }, res.detail)
	}
	return statusError(res.status, "delete_many", "", res.detail)
}

func (c *Client) arith(ctx context.Context, incr bool, key string, delta uint64, opts []CallOption) (uint64, bool, error) {
	op, cmd := "decr", 3
	if incr {
		op, cmd = "incr", 2
	}
	o, err := parseCallOpts(op, key, opts)
	if err != nil {
		return 0, false, err
	}
	kp, kl := keyArg(key)
	res, err := c.roundTrip(ctx, op, key, c.writeKind(o.noreply, false), nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_keyed(l, C.int(cmd), kp, kl, 0, C.uint64_t(delta), o.noreply, id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	if err != nil {
		return 0, false, err
	}
	if res.status == StatusNotFound {
		return 0, false, nil
	}
	if err := statusError(res.status, op, key, res.detail); err != nil {
		return 0, false, err
	}
	return res.num, true, nil
}

// Incr adds delta to key's decimal value (wrapping at 2^64) and returns the
// new value; found is false when key is absent. A non-numeric value gives
// ErrClientError. With Noreply(true) it returns (0, true, nil).
func (c *Client) Incr(ctx context.Context, key string, delta uint64, opts ...CallOption) (uint64, bool, error) {
	return c.arith(ctx, true, key, delta, opts)
}

// Decr subtracts delta (memcached stops at 0); otherwise as Incr.
func (c *Client) Decr(ctx context.Context, key string, delta uint64, opts ...CallOption) (uint64, bool, error) {
	return c.arith(ctx, false, key, delta, opts)
}

// Touch sets key's expiration (seconds, as Expire). ErrNotFound when it is
// absent, known only when waiting for the reply.
func (c *Client) Touch(ctx context.Context, key string, expire int, opts ...CallOption) error {
	o, err := parseCallOpts("touch", key, append([]CallOption{Expire(expire)}, opts...))
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	err = c.simple(ctx, "touch", key, c.writeKind(o.noreply, true), func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_keyed(l, 1, kp, kl, o.expire, 0, o.noreply, id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	return err
}

// FlushAll invalidates every item on every server (options: Delay, Noreply).
func (c *Client) FlushAll(ctx context.Context, opts ...CallOption) error {
	o, err := parseCallOpts("flush_all", "", opts)
	if err != nil {
		return err
	}
	return c.simple(ctx, "flush_all", "", c.writeKind(o.noreply, true), func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_admin(l, 0, o.delay, o.noreply, nil, id, eb.ptr(), eb.size())
	})
}

// Stats runs `stats [args...]` on every server ("items", "slabs",
// "settings", ...; none for the general statistics) and returns the results
// keyed by server address, then by statistic name.
func (c *Client) Stats(ctx context.Context, args ...string) (map[string]map[string]string, error) {
	cargs := C.CString(strings.Join(args, " "))
	defer C.free(unsafe.Pointer(cargs))
	res, err := c.roundTrip(ctx, "stats", "", kindRead, nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_admin(l, 2, 0, 0, cargs, id, eb.ptr(), eb.size())
	})
	if err != nil {
		return nil, err
	}
	if err := statusError(res.status, "stats", "", res.detail); err != nil {
		return nil, err
	}
	if res.stats == nil {
		res.stats = map[string]map[string]string{}
	}
	return res.stats, nil
}

// Counters are this client's own numbers for every server, read without
// I/O, keyed by server address then by name: commands, hits, misses,
// timeouts, connect_failures, closed, protocol_errors, skipped (requests
// refused at once while the server was failing), connects, reconnects,
// ejections, rejoins, state (0 healthy, 1 failing, 2 dead) and keys_tracked
// (keys routed away while the server is out). Failures count events: one
// timeout that fails a pipeline counts once.
func (c *Client) Counters() (map[string]map[string]uint64, error) {
	st := c.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed || st.h == nil {
		return nil, ErrClosed
	}
	var s *C.mcrs_stats
	if status := C.mcrs_client_counters(st.h, &s); status != C.MCRS_STATUS_OK {
		return nil, statusError(int(status), "counters", "", "")
	}
	defer C.mcrs_stats_free(s)
	out := make(map[string]map[string]uint64)
	for srv, m := range readStats(s) {
		nums := make(map[string]uint64, len(m))
		for name, v := range m {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("mcrs: counters: %s %s = %q: %w", srv, name, v, err)
			}
			nums[name] = n
		}
		out[srv] = nums
	}
	return out, nil
}

// Version is the version string of the first server that answers.
func (c *Client) Version(ctx context.Context) (string, error) {
	res, err := c.roundTrip(ctx, "version", "", kindRead, nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_admin(l, 1, 0, 0, nil, id, eb.ptr(), eb.size())
	})
	if err != nil {
		return "", err
	}
	return res.text, statusError(res.status, "version", "", res.detail)
}

// blocking runs one of the admin commands the event loop does not carry
// (cache_memlimit, verbosity, quit, flush_buffers) on the client's pooled
// connections. It blocks an OS thread while it runs; ctx ends the wait, not
// the command (which is bounded by the Timeout).
func (c *Client) blocking(ctx context.Context, op string, cmd int, arg C.uint32_t, nr C.mcrs_noreply) error {
	if ctx.Err() != nil {
		return ctxError(ctx, op, "")
	}
	st := c.st
	if st.active.Load()&closedBit != 0 {
		return ErrClosed
	}
	st.mu.RLock()
	if st.closed || st.h == nil {
		st.mu.RUnlock()
		return ErrClosed
	}
	run := func() error {
		defer st.mu.RUnlock()
		var eb errBuf
		s := C.mcrsgo_blocking(C.int(cmd), st.h, arg, nr, eb.ptr(), eb.size())
		return statusError(int(s), op, "", eb.String())
	}
	if ctx.Done() == nil {
		return run()
	}
	ch := make(chan error, 1)
	go func() { ch <- run() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctxError(ctx, op, "")
	}
}

// FlushBuffers writes the noreply commands that BufferNoreply holds back on
// the client's pooled connections (those of CacheMemlimit, Verbosity and
// Quit; the event loops write every request at once).
func (c *Client) FlushBuffers(ctx context.Context) error {
	return c.blocking(ctx, "flush_buffers", 3, 0, 0)
}

// CacheMemlimit sets the servers' memory limit in megabytes (waits for the
// reply unless Noreply(true)).
func (c *Client) CacheMemlimit(ctx context.Context, megabytes int, opts ...CallOption) error {
	o, err := parseCallOpts("cache_memlimit", "", opts)
	if err != nil {
		return err
	}
	mb, err := countArg("cache_memlimit", megabytes)
	if err != nil {
		return err
	}
	return c.blocking(ctx, "cache_memlimit", 0, mb, o.noreply)
}

// Verbosity sets the servers' logging verbosity.
func (c *Client) Verbosity(ctx context.Context, level int, opts ...CallOption) error {
	o, err := parseCallOpts("verbosity", "", opts)
	if err != nil {
		return err
	}
	lv, err := countArg("verbosity", level)
	if err != nil {
		return err
	}
	return c.blocking(ctx, "verbosity", 1, lv, o.noreply)
}

// Quit sends `quit` on every idle pooled connection and closes it. The
// client stays usable: later calls reconnect.
func (c *Client) Quit(ctx context.Context) error {
	return c.blocking(ctx, "quit", 2, 0, 0)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
