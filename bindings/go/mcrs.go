package mcrs

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include "mcrs_go.h"
*/
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// statusTexts are the library's descriptions of its status codes.
var statusTexts [StatusServerDown + 1]string

func init() {
	for i := range statusTexts {
		statusTexts[i] = C.GoString(C.mcrs_status_str(C.enum_mcrs_status(i)))
	}
}

// LibraryVersion is the version of the linked libmcrs.
func LibraryVersion() string { return C.GoString(C.mcrs_version()) }

// lastError reads this OS thread's mcrs_last_error. The caller must have
// locked the goroutine to its thread since the failing call.
func lastError() string {
	var buf [256]C.char
	n := C.mcrs_last_error(&buf[0], C.size_t(len(buf)))
	if n < C.size_t(len(buf)) {
		return C.GoStringN(&buf[0], C.int(n))
	}
	big := make([]byte, int(n)+1)
	n = C.mcrs_last_error((*C.char)(unsafe.Pointer(&big[0])), C.size_t(len(big)))
	return string(big[:n])
}

// statusError turns a failure status into an *Error, reading the detail
// from mcrs_last_error. It must run on the OS thread of the failing call.
// OK gives nil; NOT_FOUND, NOT_STORED and EXISTS are outcomes, not failures,
// so their detail is just the status text.
func statusError(st C.enum_mcrs_status, op, key string) error {
	s := int(st)
	switch s {
	case StatusOK:
		return nil
	case StatusNotFound, StatusNotStored, StatusExists:
		return &Error{Status: s, Op: op, Key: key}
	}
	return &Error{Status: s, Op: op, Key: key, Detail: lastError()}
}

// lockedStatus runs one C call on a locked OS thread, so that its
// thread-local error detail can be read after it.
func lockedStatus(op, key string, call func() C.enum_mcrs_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return statusError(call(), op, key)
}

// Client is a memcached client for one server or a cluster. It is safe for
// concurrent use by many goroutines; each call borrows a pooled connection.
// Close it when done.
type Client struct {
	mu      sync.RWMutex // read-held by every call; Close takes it for writing
	h       *C.mcrs_client
	serde   Serde
	cleanup runtime.Cleanup
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
	b := &builder{cfg: cfg, serde: DefaultSerde}
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
		err := lockedStatus("add_server", "", func() C.enum_mcrs_status {
			if weighted {
				return C.mcrs_config_add_server_weighted(cfg, addr, C.uint32_t(w))
			}
			return C.mcrs_config_add_server(cfg, addr)
		})
		C.free(unsafe.Pointer(addr))
		if err != nil {
			err.(*Error).Key = s
			return nil, err
		}
	}
	var h *C.mcrs_client
	if err := lockedStatus("new", "", func() C.enum_mcrs_status {
		return C.mcrs_client_new(cfg, &h)
	}); err != nil {
		return nil, err
	}
	c := &Client{h: h, serde: b.serde}
	// A forgotten Close still frees the C client once c is unreachable (no
	// call can be running then: every call keeps c alive until it returns).
	c.cleanup = runtime.AddCleanup(c, func(h *C.mcrs_client) { C.mcrs_client_free(h) }, h)
	return c, nil
}

// Close frees the client and closes its connections. It waits for calls in
// progress to return; later calls return ErrClosed. Closing again is a no-op.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	c.cleanup.Stop()
	C.mcrs_client_free(c.h)
	c.h = nil
	return nil
}

// acquire read-locks the handle for one call; release must follow.
func (c *Client) acquire() (*C.mcrs_client, error) {
	c.mu.RLock()
	if c.h == nil {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	return c.h, nil
}

func (c *Client) release() { c.mu.RUnlock() }

// checkOpen is ErrClosed after Close (for calls that need no C call).
func (c *Client) checkOpen() error {
	if _, err := c.acquire(); err != nil {
		return err
	}
	c.release()
	return nil
}

// do runs one status-returning C call on the client handle.
func (c *Client) do(op, key string, call func(h *C.mcrs_client) C.enum_mcrs_status) error {
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	return lockedStatus(op, key, func() C.enum_mcrs_status { return call(h) })
}

type storeCmd int

const (
	cmdSet storeCmd = iota
	cmdAdd
	cmdReplace
	cmdAppend
	cmdPrepend
)

var storeOps = [...]string{"set", "add", "replace", "append", "prepend"}

func (c *Client) store(cmd storeCmd, key string, value any, opts []CallOption) error {
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
	fl := C.uint32_t(flags)
	return c.do(op, key, func(h *C.mcrs_client) C.enum_mcrs_status {
		switch cmd {
		case cmdAdd:
			return C.mcrs_client_add(h, kp, kl, vp, vl, fl, o.expire, o.noreply)
		case cmdReplace:
			return C.mcrs_client_replace(h, kp, kl, vp, vl, fl, o.expire, o.noreply)
		case cmdAppend:
			return C.mcrs_client_append(h, kp, kl, vp, vl, fl, o.expire, o.noreply)
		case cmdPrepend:
			return C.mcrs_client_prepend(h, kp, kl, vp, vl, fl, o.expire, o.noreply)
		default:
			return C.mcrs_client_set(h, kp, kl, vp, vl, fl, o.expire, o.noreply)
		}
	})
}

// Set stores value under key (options: Expire, Noreply).
func (c *Client) Set(key string, value any, opts ...CallOption) error {
	return c.store(cmdSet, key, value, opts)
}

// Add stores value only if key is absent; otherwise ErrNotStored (known only
// when waiting for the reply: Noreply(false) or DefaultNoreply(false)).
func (c *Client) Add(key string, value any, opts ...CallOption) error {
	return c.store(cmdAdd, key, value, opts)
}

// Replace stores value only if key is present; otherwise ErrNotStored (known
// only when waiting for the reply).
func (c *Client) Replace(key string, value any, opts ...CallOption) error {
	return c.store(cmdReplace, key, value, opts)
}

// Append adds value's bytes after the stored ones (the stored flags are
// kept); ErrNotStored when key is absent (known only when waiting).
func (c *Client) Append(key string, value any, opts ...CallOption) error {
	return c.store(cmdAppend, key, value, opts)
}

// Prepend adds value's bytes before the stored ones; ErrNotStored when key is
// absent (known only when waiting).
func (c *Client) Prepend(key string, value any, opts ...CallOption) error {
	return c.store(cmdPrepend, key, value, opts)
}

// Cas stores value only if key's cas unique is still cas (from Gets): nil
// when stored, ErrExists when the item changed, ErrNotFound when it is gone.
// Cas waits for the reply unless Noreply(true) is given.
func (c *Client) Cas(key string, value any, cas uint64, opts ...CallOption) error {
	o, err := parseCallOpts("cas", key, opts)
	if err != nil {
		return err
	}
	data, flags, err := c.serde.Serialize(key, value)
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	vp, vl := bytesArg(data)
	return c.do("cas", key, func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_cas(h, kp, kl, vp, vl, C.uint32_t(flags), o.expire, C.uint64_t(cas), o.noreply)
	})
}

// item is a value read from C, copied into Go memory.
type item struct {
	data  []byte
	flags uint32
	cas   uint64
}

func copyValue(v *C.mcrs_value) item {
	var ci C.mcrsgo_item
	C.mcrsgo_value_unpack(v, &ci)
	return makeItem(&ci)
}

// makeItem copies a value's bytes (C memory) into Go memory.
func makeItem(ci *C.mcrsgo_item) item {
	it := item{flags: uint32(ci.flags), cas: uint64(ci.cas)}
	if ci.len == 0 {
		it.data = []byte{}
	} else {
		it.data = C.GoBytes(unsafe.Pointer(ci.data), C.int(ci.len))
	}
	return it
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
func (c *Client) read(cmd readCmd, key string, exptime C.uint32_t) (it item, found bool, err error) {
	op := readOps[cmd]
	kp, kl := keyArg(key)
	err = c.do(op, key, func(h *C.mcrs_client) C.enum_mcrs_status {
		var v *C.mcrs_value
		var st C.enum_mcrs_status
		switch cmd {
		case cmdGets:
			st = C.mcrs_client_gets(h, kp, kl, &v)
		case cmdGat:
			st = C.mcrs_client_gat(h, kp, kl, exptime, &v)
		case cmdGats:
			st = C.mcrs_client_gats(h, kp, kl, exptime, &v)
		default:
			st = C.mcrs_client_get(h, kp, kl, &v)
		}
		if st == C.MCRS_STATUS_OK {
			it = copyValue(v)
			found = true
			C.mcrs_value_free(v)
		}
		if st == C.MCRS_STATUS_NOT_FOUND {
			return C.MCRS_STATUS_OK
		}
		return st
	})
	return it, found, err
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
func (c *Client) Get(key string) (any, bool, error) {
	it, found, err := c.read(cmdGet, key, 0)
	if err != nil || !found {
		return nil, false, err
	}
	v, err := c.decode(key, it)
	return v, err == nil, err
}

// GetBytes reads key's raw bytes, without the serde (whatever its flags).
func (c *Client) GetBytes(key string) ([]byte, bool, error) {
	it, found, err := c.read(cmdGet, key, 0)
	return it.data, found, err
}

// GetBytesInto reads key's raw bytes into buf, allocating nothing: (n,
// flags, true, nil) on a hit with the value in buf[:n]; (0, 0, false, nil)
// on a miss. A value longer than len(buf) gives an error with
// ErrBufferTooSmall and n = the length needed (the item was read and
// dropped: a retry is a new request).
func (c *Client) GetBytesInto(key string, buf []byte) (n int, flags uint32, found bool, err error) {
	kp, kl := keyArg(key)
	var bp *C.uint8_t
	if len(buf) > 0 {
		bp = (*C.uint8_t)(unsafe.Pointer(&buf[0]))
	}
	var ln C.size_t
	var fl C.uint32_t
	err = c.do("get", key, func(h *C.mcrs_client) C.enum_mcrs_status {
		st := C.mcrs_client_get_into(h, kp, kl, bp, C.size_t(len(buf)), &ln, &fl)
		switch st {
		case C.MCRS_STATUS_OK:
			found = true
		case C.MCRS_STATUS_NOT_FOUND:
			return C.MCRS_STATUS_OK
		}
		return st
	})
	return int(ln), uint32(fl), found, err
}

// Gets is Get plus the item's cas unique, for Cas.
func (c *Client) Gets(key string) (value any, cas uint64, found bool, err error) {
	it, found, err := c.read(cmdGets, key, 0)
	if err != nil || !found {
		return nil, 0, false, err
	}
	v, err := c.decode(key, it)
	if err != nil {
		return nil, 0, false, err
	}
	return v, it.cas, true, nil
}

// Gat (get-and-touch) is Get that also sets the item's expiration (seconds,
// as Expire).
func (c *Client) Gat(key string, expire int) (any, bool, error) {
	o, err := parseCallOpts("gat", key, []CallOption{Expire(expire)})
	if err != nil {
		return nil, false, err
	}
	it, found, err := c.read(cmdGat, key, o.expire)
	if err != nil || !found {
		return nil, false, err
	}
	v, err := c.decode(key, it)
	return v, err == nil, err
}

// Gats is Gat plus the item's cas unique.
func (c *Client) Gats(key string, expire int) (value any, cas uint64, found bool, err error) {
	o, err := parseCallOpts("gats", key, []CallOption{Expire(expire)})
	if err != nil {
		return nil, 0, false, err
	}
	it, found, err := c.read(cmdGats, key, o.expire)
	if err != nil || !found {
		return nil, 0, false, err
	}
	v, err := c.decode(key, it)
	if err != nil {
		return nil, 0, false, err
	}
	return v, it.cas, true, nil
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

// readMany fetches several keys; a miss is absent from the result.
func (c *Client) readMany(gets bool, keys []string) (map[string]item, error) {
	out := make(map[string]item, len(keys))
	if len(keys) == 0 {
		return out, c.checkOpen()
	}
	op := "get_many"
	if gets {
		op = "gets_many"
	}
	ck := newCKeys(keys)
	defer ck.free()
	n := C.size_t(len(keys))
	err := c.do(op, "", func(h *C.mcrs_client) C.enum_mcrs_status {
		var vs *C.mcrs_values
		var st C.enum_mcrs_status
		if gets {
			st = C.mcrs_client_gets_many(h, ck.ptrs, ck.lens, n, &vs)
		} else {
			st = C.mcrs_client_get_many(h, ck.ptrs, ck.lens, n, &vs)
		}
		if st != C.MCRS_STATUS_OK {
			return st
		}
		cis := make([]C.mcrsgo_item, n)
		C.mcrsgo_values_unpack(vs, n, &cis[0])
		for i, k := range keys {
			if cis[i].data != nil {
				out[k] = makeItem(&cis[i])
			}
		}
		C.mcrs_values_free(vs)
		return st
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetMany reads several keys at once (one pipelined request per server) and
// deserializes them. Misses are left out of the map, as in pymemcache.
func (c *Client) GetMany(keys []string) (map[string]any, error) {
	items, err := c.readMany(false, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(items))
	for k, it := range items {
		v, err := c.decode(k, it)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// CasValue is a value and its cas unique, as GetsMany returns them.
type CasValue struct {
	Value any
	CAS   uint64
}

// GetsMany is GetMany with cas uniques.
func (c *Client) GetsMany(keys []string) (map[string]CasValue, error) {
	items, err := c.readMany(true, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]CasValue, len(items))
	for k, it := range items {
		v, err := c.decode(k, it)
		if err != nil {
			return nil, err
		}
		out[k] = CasValue{v, it.cas}
	}
	return out, nil
}

// SetMany stores several items (pipelined, one request per server) and
// returns the keys that were not stored (e.g. too large for the server), as
// pymemcache's set_many does. With noreply (the default) the server's answers
// are not read, so only keys whose server could not be reached at all are
// listed (with IgnoreExc; without it that is an error). A value the serde
// rejects fails the whole call before any I/O.
func (c *Client) SetMany(items map[string]any, opts ...CallOption) ([]string, error) {
	o, err := parseCallOpts("set_many", "", opts)
	if err != nil {
		return nil, err
	}
	n := len(items)
	if n == 0 {
		return nil, c.checkOpen()
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
	// values, their lengths, flags and the failed indices, in one C block
	ptrSize := int(unsafe.Sizeof((*C.uint8_t)(nil)))
	szSize := int(unsafe.Sizeof(C.size_t(0)))
	fSize := int(unsafe.Sizeof(C.uint32_t(0)))
	head := n*ptrSize + 2*n*szSize
	block := C.malloc(C.size_t(head + n*fSize + total + 1))
	if block == nil {
		panic("mcrs: out of memory")
	}
	defer C.free(block)
	vptrs := unsafe.Slice((**C.uint8_t)(block), n)
	vlens := unsafe.Slice((*C.size_t)(unsafe.Add(block, n*ptrSize)), n)
	failed := unsafe.Slice((*C.size_t)(unsafe.Add(block, n*ptrSize+n*szSize)), n)
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
	var nFailed C.size_t
	err = c.do("set_many", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		st := C.mcrs_client_set_many(h, ck.ptrs, ck.lens, &vptrs[0], &vlens[0], &cflags[0],
			C.size_t(n), o.expire, o.noreply, &failed[0], &nFailed)
		if st == C.MCRS_STATUS_NOT_STORED {
			return C.MCRS_STATUS_OK
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range failed[:nFailed] {
		out = append(out, keys[i])
	}
	return out, nil
}

// Delete removes key. ErrNotFound when it was absent, which is known only
// when waiting for the reply (Noreply(false) or DefaultNoreply(false)).
func (c *Client) Delete(key string, opts ...CallOption) error {
	o, err := parseCallOpts("delete", key, opts)
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	return c.do("delete", key, func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_delete(h, kp, kl, o.noreply)
	})
}

// DeleteMany removes several keys (pipelined per server); absent keys are
// not an error.
func (c *Client) DeleteMany(keys []string, opts ...CallOption) error {
	o, err := parseCallOpts("delete_many", "", opts)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return c.checkOpen()
	}
	ck := newCKeys(keys)
	defer ck.free()
	return c.do("delete_many", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_delete_many(h, ck.ptrs, ck.lens, C.size_t(len(keys)), o.noreply)
	})
}

func (c *Client) arith(incr bool, key string, delta uint64, opts []CallOption) (uint64, bool, error) {
	op := "decr"
	if incr {
		op = "incr"
	}
	o, err := parseCallOpts(op, key, opts)
	if err != nil {
		return 0, false, err
	}
	kp, kl := keyArg(key)
	var nv C.uint64_t
	found := true
	err = c.do(op, key, func(h *C.mcrs_client) C.enum_mcrs_status {
		var st C.enum_mcrs_status
		if incr {
			st = C.mcrs_client_incr(h, kp, kl, C.uint64_t(delta), o.noreply, &nv)
		} else {
			st = C.mcrs_client_decr(h, kp, kl, C.uint64_t(delta), o.noreply, &nv)
		}
		if st == C.MCRS_STATUS_NOT_FOUND {
			found = false
			return C.MCRS_STATUS_OK
		}
		return st
	})
	if err != nil {
		return 0, false, err
	}
	return uint64(nv), found, nil
}

// Incr adds delta to key's decimal value (wrapping at 2^64) and returns the
// new value; found is false when key is absent. A non-numeric value gives
// ErrClientError. With Noreply(true) it returns (0, true, nil).
func (c *Client) Incr(key string, delta uint64, opts ...CallOption) (uint64, bool, error) {
	return c.arith(true, key, delta, opts)
}

// Decr subtracts delta (memcached stops at 0); otherwise as Incr.
func (c *Client) Decr(key string, delta uint64, opts ...CallOption) (uint64, bool, error) {
	return c.arith(false, key, delta, opts)
}

// Touch sets key's expiration (seconds, as Expire). ErrNotFound when it is
// absent, known only when waiting for the reply.
func (c *Client) Touch(key string, expire int, opts ...CallOption) error {
	o, err := parseCallOpts("touch", key, append([]CallOption{Expire(expire)}, opts...))
	if err != nil {
		return err
	}
	kp, kl := keyArg(key)
	return c.do("touch", key, func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_touch(h, kp, kl, o.expire, o.noreply)
	})
}

// FlushAll invalidates every item on every server (options: Delay, Noreply).
func (c *Client) FlushAll(opts ...CallOption) error {
	o, err := parseCallOpts("flush_all", "", opts)
	if err != nil {
		return err
	}
	return c.do("flush_all", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_flush_all(h, o.delay, o.noreply)
	})
}

// Stats runs `stats [args...]` on every server ("items", "slabs",
// "settings", ...; none for the general statistics) and returns the results
// keyed by server address, then by statistic name.
func (c *Client) Stats(args ...string) (map[string]map[string]string, error) {
	cargs := C.CString(strings.Join(args, " "))
	defer C.free(unsafe.Pointer(cargs))
	out := make(map[string]map[string]string)
	err := c.do("stats", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		var s *C.mcrs_stats
		st := C.mcrs_client_stats(h, cargs, &s)
		if st != C.MCRS_STATUS_OK {
			return st
		}
		defer C.mcrs_stats_free(s)
		n := C.mcrs_stats_len(s)
		for i := C.size_t(0); i < n; i++ {
			var server, name, value *C.char
			if st := C.mcrs_stats_get(s, i, &server, &name, &value); st != C.MCRS_STATUS_OK {
				return st
			}
			srv := C.GoString(server)
			m := out[srv]
			if m == nil {
				m = make(map[string]string)
				out[srv] = m
			}
			m[C.GoString(name)] = C.GoString(value)
		}
		return C.MCRS_STATUS_OK
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FlushBuffers writes the noreply commands that BufferNoreply holds back; the
// first failure is returned after every server was tried.
func (c *Client) FlushBuffers() error {
	return c.do("flush_buffers", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_flush_buffers(h)
	})
}

// Version is the version string of the first server that answers.
func (c *Client) Version() (string, error) {
	var v string
	err := c.do("version", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		for size := 64; ; size *= 16 {
			buf := (*C.char)(C.malloc(C.size_t(size)))
			st := C.mcrs_client_version(h, buf, C.size_t(size))
			if st == C.MCRS_STATUS_OK {
				v = C.GoString(buf)
			}
			C.free(unsafe.Pointer(buf))
			if st != C.MCRS_STATUS_BUFFER_TOO_SMALL || size >= 1<<20 {
				return st
			}
		}
	})
	return v, err
}

// CacheMemlimit sets the servers' memory limit in megabytes (waits for the
// reply unless Noreply(true)).
func (c *Client) CacheMemlimit(megabytes int, opts ...CallOption) error {
	o, err := parseCallOpts("cache_memlimit", "", opts)
	if err != nil {
		return err
	}
	mb, err := countArg("cache_memlimit", megabytes)
	if err != nil {
		return err
	}
	return c.do("cache_memlimit", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_cache_memlimit(h, mb, o.noreply)
	})
}

// Verbosity sets the servers' logging verbosity.
func (c *Client) Verbosity(level int, opts ...CallOption) error {
	o, err := parseCallOpts("verbosity", "", opts)
	if err != nil {
		return err
	}
	lv, err := countArg("verbosity", level)
	if err != nil {
		return err
	}
	return c.do("verbosity", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_verbosity(h, lv, o.noreply)
	})
}

// Quit sends `quit` on every idle connection and closes it. The client stays
// usable: later calls reconnect.
func (c *Client) Quit() error {
	return c.do("quit", "", func(h *C.mcrs_client) C.enum_mcrs_status {
		return C.mcrs_client_quit(h)
	})
}
