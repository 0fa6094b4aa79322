package mcrs

// The event-loop driver: each Client runs its requests on mcrs_loop event
// loops, each driven by one goroutine.

/*
#include "mcrs_go.h"
#cgo noescape mcrsgo_driver_new
#cgo nocallback mcrsgo_driver_new
#cgo nocallback mcrsgo_turn
#cgo nocallback mcrsgo_driver_close
#cgo nocallback mcrsgo_driver_free
#cgo nocallback mcrsgo_solo_adopt
#cgo nocallback mcrsgo_solo_run
#cgo nocallback mcrsgo_loop_ready
*/
import "C"

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// How it works: a goroutine that calls, say, Get takes a free slot of a
// driver, submits the request to the driver's mcrs_loop (one cgo call;
// from any thread the C API hands it to the loop lock-free and wakes the
// loop's fd) with the slot's index as the request id, and waits on the
// slot's channel or on ctx.Done(). The driver goroutine waits for the
// loop's fd on Go's netpoller (no OS thread blocked), then, in one cgo call,
// adopts the loop on whatever thread it runs on, runs it without blocking
// (mcrs_loop_run) and disowns it; the C callbacks collect the completions
// into one array, which that call hands back. The driver copies each result into
// its slot and wakes the waiting goroutine. A goroutine whose ctx ends
// first marks its slot abandoned and returns at once; the late completion
// then frees the slot (the request itself stays matched to its reply on
// the connection, so the connection is never left out of step).
//
// A lone caller runs the loop itself (driver.solo). With one goroutine and
// a cancellable ctx (a request's ctx, the usual case in a service), the
// hand-over above costs per call: the submission's eventfd write, a
// netpoller wake-up of the driver goroutine (epoll in epoll), a driver turn
// in its own cgo call and a channel wake-up of the caller, each waking a
// thread: measured 17 syscalls and 0.4-0.5x gomemcache's ops/s (bench/).
// So a caller that is the only call in progress on the client, and finds
// no turn running, takes the loop's token (busy, which every loop-thread
// call holds: driver turns too), adopts the loop on its thread, submits
// (straight in, no wake-up: auto-wake is off, the caller runs at once),
// writes the request (mcrs_loop_send), then runs the loop in the same cgo
// call, blocked in poll(2) on the loop's fd and on a cancel eventfd, until
// its request completes: a write, a poll, a run, a read, like a blocking
// client, plus a poll(2) of the fd before submitting (and a run if it is
// readable), which sees what came while nobody watched the fd, e.g. a
// server that closed the connection. A ctx
// that ends writes the eventfd (context.AfterFunc): the caller returns at
// once and its request stays on the loop, matched to its reply, for the
// driver goroutine to finish (letGo kicks it). Completions of other
// requests met on the way are handed to their slots as a driver turn does.
// The driver goroutine would still wake on every reply (the loop's fd is
// edge-triggered on the netpoller), costing a thread wake-up per call, so
// when it finds the token taken it parks off the netpoller (park) until a
// submission through it, a solo caller leaving work in flight, or Close
// wakes it. Rejected: (1) flushing on the caller's thread only: the reply
// still comes through the driver and a channel; (2) the blocking path with
// cancellation by shutting the socket down: the blocking client retries
// and reconnects inside the call, so a cancel would need a flag deep in the
// Rust pool, and each cancel would cost a connection; (3) waiting on the
// netpoller in the caller: an *os.File takes one reader at a time, and the
// driver is that reader.

const (
	slotFree uint32 = iota
	slotWaiting
	slotDone
	slotAbandoned
)

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 12 // 4M requests in flight per loop
	closedBit = uint64(1) << 63
)

// entry is one key's outcome in a multi-key read.
type entry struct {
	it     item
	status int
}

// result is what a completion carries, copied into Go memory.
type result struct {
	status   int
	detail   string
	it       item
	found    bool
	num      uint64
	entries  []entry
	keys     []int32
	text     string
	stats    map[string]map[string]string
	lease    int // LeaseGet: the state
	token    uint64
	ttl      int64
	into     []byte // GetBytesInto's buffer, set by the caller
	wantInto bool
	intoN    int
}

type slot struct {
	// seq and acks: see Client.solo
	seq   uint64
	acks  bool
	state atomic.Uint32
	next  atomic.Uint32 // free list: index+1 of the next free slot, 0 for none
	ch    chan struct{}
	res   result
}

// driver owns one mcrs_loop and the slots of the requests in flight on it.
type driver struct {
	c *C.mcrsgo_driver
	// submitted counts the requests submitted (or about to be); closedBit
	// is set once the client closes
	submitted atomic.Uint64
	// completed counts the completions dispatched (by the driver goroutine
	// or a solo caller, whoever holds busy)
	completed atomic.Uint64
	// busy is 1 while a goroutine makes loop-thread calls (a driver turn or
	// a solo caller's run): one at a time. missed: the driver goroutine woke
	// while a solo caller held it (see letGo).
	busy       atomic.Uint32
	missed     atomic.Bool
	cancelFile *os.File      // the driver's cancel eventfd (see interrupt)
	free       atomic.Uint64 // free-list head: ABA tag << 32 | index+1
	chunks     [maxChunks]atomic.Pointer[[chunkSize]slot]
	growMu     sync.Mutex
	nchunks    int
	exited     chan struct{}
	loopFile   atomic.Pointer[os.File] // the loop's fd on the netpoller (a new one after each park)
	// parked: the driver goroutine is off the netpoller, waiting on wake
	// (see park)
	parked atomic.Bool
	wake   chan struct{}
	// acked is the highest write sequence number proven processed by the
	// server (see Client.solo); written by the driver goroutine only
	acked *atomic.Uint64
	// active is the client's count of calls in progress (see letGo)
	active *atomic.Uint64
}

func (d *driver) slot(i uint32) *slot {
	return &d.chunks[i>>chunkBits].Load()[i&(chunkSize-1)]
}

// alloc takes a free slot (lock-free; a new chunk of slots when none is free).
func (d *driver) alloc() (uint32, *slot) {
	for {
		h := d.free.Load()
		if idx := uint32(h); idx != 0 {
			s := d.slot(idx - 1)
			nh := (h>>32+1)<<32 | uint64(s.next.Load())
			if d.free.CompareAndSwap(h, nh) {
				return idx - 1, s
			}
			continue
		}
		if !d.grow() {
			panic("mcrs: too many requests in flight")
		}
	}
}

// release returns slot i to the free list.
func (d *driver) release(i uint32, s *slot) {
	s.res = result{}
	s.state.Store(slotFree)
	for {
		h := d.free.Load()
		s.next.Store(uint32(h))
		if d.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(i+1)) {
			return
		}
	}
}

func (d *driver) grow() bool {
	d.growMu.Lock()
	defer d.growMu.Unlock()
	if uint32(d.free.Load()) != 0 {
		return true // another goroutine grew it
	}
	if d.nchunks == maxChunks {
		return false
	}
	chunk := new([chunkSize]slot)
	base := uint32(d.nchunks) << chunkBits
	for j := range chunk {
		chunk[j].ch = make(chan struct{}, 1)
	}
	d.chunks[d.nchunks].Store(chunk)
	d.nchunks++
	for j := chunkSize - 1; j >= 0; j-- {
		d.release(base+uint32(j), &chunk[j])
	}
	return true
}

// newDriver starts a driver goroutine with its loop over client h.
func newDriver(h *C.mcrs_client, acked, active *atomic.Uint64) (*driver, error) {
	d := &driver{exited: make(chan struct{}), acked: acked, active: active, wake: make(chan struct{}, 1)}
	d.grow()
	ready := make(chan error, 1)
	go d.run(h, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return d, nil
}

func (d *driver) run(h *C.mcrs_client, ready chan<- error) {
	// Not locked to a thread: each turn adopts the loop on the thread it
	// runs on (in one cgo call), so the netpoller wakes this goroutine on
	// any thread and the goroutines it wakes run next on the same one.
	var eb errBuf
	var st C.enum_mcrs_status
	d.c = C.mcrsgo_driver_new(h, &st, eb.ptr(), eb.size())
	if d.c == nil {
		ready <- &Error{Status: int(st), Op: "new", Detail: eb.String()}
		close(d.exited)
		return
	}
	f, err := pollFile(int(d.c.loop_fd))
	if err != nil {
		C.mcrsgo_driver_free(d.c)
		ready <- &Error{Status: StatusIO, Op: "new", Detail: "event loop fd: " + err.Error()}
		close(d.exited)
		return
	}
	d.loopFile.Store(f)
	cf, err := dupFile(int(d.c.cancel_fd), "mcrs-cancel")
	if err != nil {
		f.Close()
		C.mcrsgo_driver_free(d.c)
		ready <- &Error{Status: StatusIO, Op: "new", Detail: "cancel fd: " + err.Error()}
		close(d.exited)
		return
	}
	d.cancelFile = cf
	ready <- nil
	d.serve(f)
	// keep busy for good: a solo caller whose request completed may still
	// be letting go of the loop
	for !d.busy.CompareAndSwap(0, 1) {
		runtime.Gosched()
	}
	d.dispatch(C.mcrsgo_driver_close(d.c))
	C.mcrsgo_driver_free(d.c)
	d.loopFile.Load().Close()
	cf.Close()
	close(d.exited)
}

// pollFile puts (a duplicate of) the loop's epoll fd on Go's netpoller.
func pollFile(fd int) (*os.File, error) {
	return dupFile(fd, "mcrs-loop")
}

// dupFile is a duplicate of fd as a non-blocking *os.File on the netpoller.
func dupFile(fd int, name string) (*os.File, error) {
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return nil, err
	}
	f := os.NewFile(uintptr(dup), name)
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close() // not on the netpoller
		return nil, err
	}
	return f, nil
}

// serve runs the loop until the client closes and the last request in
// flight has completed. The goroutine waits for the loop's fd on the
// netpoller (parked: its thread runs the goroutines it woke), with a read
// deadline for the loop's next request deadline; each wake-up runs turns of
// the loop until it has no work now.
func (d *driver) serve(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		panic("mcrs: " + err.Error())
	}
	var armed time.Time // the read deadline set, zero for none
	stopping := false
	timeout := -1 // mcrs_loop_timeout_ms after this goroutine's last turn
	wantPark := false
	// step runs inside RawConn.Read, after the netpoller's readiness was
	// reset, so no wake-up is missed between a turn and the wait. It
	// returns true to leave Read (to arm a deadline or stop).
	step := func(uintptr) bool {
		if !d.busy.CompareAndSwap(0, 1) {
			// a solo caller runs the loop: it sees missed when it lets go
			d.missed.Store(true)
			if !d.busy.CompareAndSwap(0, 1) {
				wantPark = !stopping
				return wantPark
			}
		}
		for {
			n := C.mcrsgo_turn(d.c)
			d.dispatch(n)
			if d.c.timeout_ms != 0 {
				break
			}
		}
		timeout = int(d.c.timeout_ms)
		d.busy.Store(0)
		if !stopping && d.submitted.Load()&closedBit != 0 {
			return true
		}
		if stopping {
			return d.submitted.Load()&^closedBit == d.completed.Load() || armed.IsZero()
		}
		return timeout > 0 && armed.IsZero()
	}
	for {
		err := rc.Read(step)
		if wantPark {
			// a solo caller holds the loop (see park)
			wantPark = false
			f = d.park(f)
			if rc, err = f.SyscallConn(); err != nil {
				panic("mcrs: " + err.Error())
			}
			armed = time.Time{}
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic("mcrs: waiting for the event loop: " + err.Error())
		}
		if err != nil {
			// the deadline passed (or Close set one in the past): clear it,
			// or every later Read would fail at once without a turn
			armed = time.Time{}
			f.SetReadDeadline(time.Time{})
		}
		if d.submitted.Load()&closedBit != 0 {
			stopping = true
			if d.submitted.Load()&^closedBit == d.completed.Load() {
				return
			}
		}
		if err != nil {
			// a deadline passed: Read returned without a turn, so timeout_ms
			// is as old as the last turn. Read runs a turn first (expiring
			// what is due) and leaves with a fresh timeout to arm.
			continue
		}
		if t := timeout; t > 0 || stopping {
			wait := time.Duration(t) * time.Millisecond
			if stopping && (t < 0 || wait > 10*time.Millisecond) {
				// see the last completion soon after it comes
				wait = 10 * time.Millisecond
			}
			if at := time.Now().Add(wait); armed.IsZero() || at.Before(armed) {
				armed = at
				f.SetReadDeadline(at)
			}
		}
	}
}

// dispatch hands this turn's n completions to their slots.
func (d *driver) dispatch(n C.size_t) {
	if n == 0 {
		return
	}
	dones := unsafe.Slice(d.c.buf, int(n))
	for i := range dones {
		r := &dones[i]
		d.completed.Add(1)
		idx := uint32(r.id - 1)
		s := d.slot(idx)
		if s.acks && s.seq > d.acked.Load() && isReply(int(r.status)) {
			// a reply: the server processed every write submitted before
			d.acked.Store(s.seq)
		}
		if !s.state.CompareAndSwap(slotWaiting, slotDone) {
			// its caller gave up (ctx): the slot is ours to free
			d.release(idx, s)
			continue
		}
		fill(&s.res, r)
		s.ch <- struct{}{}
	}
}

// isReply reports whether a status is an answer of the server (not a
// failure to get one).
func isReply(st int) bool {
	switch st {
	case StatusOK, StatusNotFound, StatusNotStored, StatusExists, StatusClientError, StatusServerError,
		StatusUnknownCommand:
		return true
	}
	return false
}

// cBytes views C memory as a byte slice (valid until the batch is released).
func cBytes(p *C.uint8_t, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

func copyBytes(p *C.uint8_t, n C.size_t) []byte {
	b := make([]byte, int(n))
	copy(b, cBytes(p, n))
	return b
}

// fill copies a completion into res (Go memory only).
func fill(res *result, r *C.mcrsgo_done) {
	res.status = int(r.status)
	if r.detail != nil {
		res.detail = C.GoStringN(r.detail, C.int(r.detail_len))
	}
	switch r.kind {
	case C.MCRSGO_VALUE:
		res.found = true
		res.it.flags = uint32(r.flags)
		res.it.cas = uint64(r.cas)
		switch {
		case res.wantInto:
			// GetBytesInto: straight into the caller's buffer
			res.intoN = int(r.len)
			if int(r.len) <= len(res.into) {
				copy(res.into, cBytes(r.data, r.len))
			}
		case r.len == 0:
			res.it.data = []byte{}
		default:
			res.it.data = copyBytes(r.data, r.len)
		}
	case C.MCRSGO_LEASE:
		res.lease, res.token, res.ttl = int(r.lease), uint64(r.token), int64(r.ttl)
		if r.obj != nil {
			res.found = true
			res.it = item{data: copyBytes(r.data, r.len), flags: uint32(r.flags), cas: uint64(r.cas)}
		}
	case C.MCRSGO_NUMBER:
		res.num = uint64(r.cas)
	case C.MCRSGO_VALUES:
		items := unsafe.Slice(r.items, int(r.n))
		res.entries = make([]entry, len(items))
		for i := range items {
			e := &items[i]
			res.entries[i].status = int(e.status)
			if e.data != nil {
				res.entries[i].it = item{data: copyBytes(e.data, e.len), flags: uint32(e.flags), cas: uint64(e.cas)}
			}
		}
	case C.MCRSGO_KEYS:
		res.keys = make([]int32, int(r.n))
		for i, k := range unsafe.Slice(r.keys, int(r.n)) {
			res.keys[i] = int32(k)
		}
	case C.MCRSGO_TEXT:
		res.text = C.GoStringN(r.text, C.int(r.len))
	case C.MCRSGO_STATS:
		res.stats = readStats((*C.mcrs_stats)(r.obj))
	}
}

func readStats(s *C.mcrs_stats) map[string]map[string]string {
	out := make(map[string]map[string]string)
	n := C.mcrs_stats_len(s)
	for i := C.size_t(0); i < n; i++ {
		var server, name, value *C.char
		if C.mcrs_stats_get(s, i, &server, &name, &value) != C.MCRS_STATUS_OK {
			continue
		}
		srv := C.GoString(server)
		m := out[srv]
		if m == nil {
			m = make(map[string]string)
			out[srv] = m
		}
		m[C.GoString(name)] = C.GoString(value)
	}
	return out
}

// stop makes the driver finish the requests in flight, free its loop and
// exit; it returns once the driver goroutine has.
func (d *driver) stop() {
	for {
		v := d.submitted.Load()
		if v&closedBit != 0 || d.submitted.CompareAndSwap(v, v|closedBit) {
			break
		}
	}
	// wake the driver (a deadline in the past ends its wait) until it exits
	for {
		d.kick()
		select {
		case <-d.exited:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// call is one request in flight, from its submission to its result.
type call struct {
	d   *driver
	idx uint32
	s   *slot
}

// begin takes a slot for one request (into: GetBytesInto's buffer);
// ErrClosed after Close.
func (d *driver) begin(into []byte, wantInto bool, seq uint64, acks bool) (call, error) {
	if d.submitted.Add(1)&closedBit != 0 {
		d.submitted.Add(^uint64(0))
		return call{}, ErrClosed
	}
	idx, s := d.alloc()
	s.res.into, s.res.wantInto = into, wantInto
	s.seq, s.acks = seq, acks
	s.state.Store(slotWaiting) // publishes res.into to the driver
	return call{d, idx, s}, nil
}

// id is the request id passed to the C API as userdata.
func (k call) id() C.uint64_t { return C.uint64_t(k.idx) + 1 }

// refused undoes begin after the C API refused the submission (its callback
// will not run).
func (k call) refused() {
	k.d.release(k.idx, k.s)
	k.d.submitted.Add(^uint64(0))
}

// wait blocks until the request completes or ctx ends. On success the
// caller reads k.s.res and then calls k.done().
func (k call) wait(ctx context.Context, op, key string) error {
	done := ctx.Done()
	if done == nil {
		<-k.s.ch
		return nil
	}
	select {
	case <-k.s.ch:
		return nil
	case <-done:
		if k.s.state.CompareAndSwap(slotWaiting, slotAbandoned) {
			return ctxError(ctx, op, key)
		}
		// the completion is being delivered: take it
		<-k.s.ch
		return nil
	}
}

func (k call) done() { k.d.release(k.idx, k.s) }

// ctxError is the error of a call whose ctx ended first: it matches
// context.Canceled or context.DeadlineExceeded (and ErrCancelled or
// ErrTimeout) with errors.Is.
func ctxError(ctx context.Context, op, key string) error {
	err := ctx.Err()
	st := StatusCancelled
	if errors.Is(err, context.DeadlineExceeded) {
		st = StatusTimeout
	}
	return &Error{Status: st, Op: op, Key: key, Detail: err.Error(), err: err}
}

// solo runs request k on the calling goroutine (see the header): the caller
// holds d.busy, which solo lets go of. It adopts the loop on this thread,
// submits (straight into the loop: no wake-up), runs the loop until k
// completes, waiting in poll(2) inside the cgo call, or until ctx ends
// (context.AfterFunc writes the driver's cancel eventfd, which ends the
// poll); then it hands every completion of those turns to its slot, as a
// driver turn does. A request left in flight (ctx ended first) stays on the
// loop, matched to its reply, and the driver goroutine takes it over.
func (d *driver) solo(ctx context.Context, op, key string, k call, submit submitFunc) (result, error) {
	if soloHook != nil {
		soloHook(op)
	}
	runtime.LockOSThread() // adopt, submit and run on one thread
	C.mcrsgo_solo_adopt(d.c)
	var eb errBuf
	if st := submit(d.c.loop, k.id(), &eb); st != C.MCRS_STATUS_OK {
		pending := C.mcrs_loop_timeout_ms(d.c.loop) >= 0
		C.mcrs_loop_disown(d.c.loop)
		runtime.UnlockOSThread()
		d.dispatch(d.c.len) // what adopt's run completed
		d.letGo(pending)
		k.refused()
		return result{}, statusError(int(st), op, key, eb.String())
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, d.interrupt)
	}
	var pending bool
	for {
		done := C.mcrsgo_solo_run(d.c, k.id()) != 0
		pending = d.c.timeout_ms >= 0
		d.dispatch(d.c.len)
		if done || ctx.Err() != nil {
			break
		}
		// a late interrupt of an earlier call: run on
		C.mcrsgo_solo_adopt(d.c)
	}
	runtime.UnlockOSThread()
	d.letGo(pending)
	if stop != nil {
		stop()
	}
	if err := k.wait(ctx, op, key); err != nil {
		return result{}, err
	}
	res := k.s.res
	k.done()
	return res, nil
}

// takeSolo takes busy for a solo call. The driver goroutine holds it only
// for a turn, which never blocks, so a few yields let a lone caller have it.
func (d *driver) takeSolo() bool {
	for i := 0; ; i++ {
		if d.busy.CompareAndSwap(0, 1) {
			return true
		}
		if i == 3 {
			return false
		}
		runtime.Gosched()
	}
}

// soloHook, set by tests only, sees each call that takes driver.solo.
var soloHook func(op string)

// interrupt ends a solo caller's poll (its ctx ended). It may come late,
// after that call returned: the next solo call then runs on (see solo); and
// after the driver exited the write fails harmlessly on the closed file.
func (d *driver) interrupt() {
	var one = [8]byte{1}
	d.cancelFile.Write(one[:])
}

// letGo releases busy after a solo run. The driver goroutine must then
// serve what the run left: requests still in flight (pending: it arms
// their deadline), and readiness of the loop's fd that woke it while the
// run held busy (missed: the netpoller is edge-triggered, so that wake-up
// will not come again). Either way a read deadline in the past wakes it.
// With nothing pending after the run and no other call in progress, a
// missed wake-up was for what the run did (its own reply): nothing is left
// for the driver, so the usual case costs no system call. (Another caller
// enters before it submits, and its submission's wake-up comes before the
// driver marks missed, so active shows it whenever missed does.)
func (d *driver) letGo(pending bool) {
	d.busy.Store(0)
	if pending {
		d.kick()
		return
	}
	for d.missed.Swap(false) && d.active.Load()&^closedBit > 1 {
		// the driver woke while we held busy: is there work it has not seen?
		if !d.busy.CompareAndSwap(0, 1) {
			return // the driver (or another solo caller) runs the loop now
		}
		ready := C.mcrsgo_loop_ready(d.c) != 0
		d.busy.Store(0)
		if ready {
			d.kick()
			return
		}
	}
}

// kick makes the driver goroutine run a turn soon.
func (d *driver) kick() {
	if d.unpark() {
		return
	}
	d.loopFile.Load().SetReadDeadline(time.Unix(1, 0))
}

// unpark wakes the driver goroutine if it is parked (see park); false if
// it was not.
func (d *driver) unpark() bool {
	if d.parked.Load() && d.parked.CompareAndSwap(true, false) {
		select {
		case d.wake <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

// park takes the driver goroutine off the netpoller while solo callers run
// the loop, so that their replies, which make the loop's fd readable, wake
// no thread of the netpoller and no driver goroutine (the fd is
// edge-triggered there: every reply would). It closes its *os.File (which
// deletes the fd from the netpoller's epoll set) and waits on d.wake,
// which a submission through the driver, a solo caller leaving work in
// flight, or stop sends (unpark). Then it puts a new duplicate of the fd
// on the netpoller and returns it. It checks for work after publishing
// parked: a submitter that saw parked false submitted before that check.
func (d *driver) park(f *os.File) *os.File {
	f.Close()
	d.parked.Store(true)
	if d.busy.CompareAndSwap(0, 1) {
		n := C.mcrsgo_turn(d.c)
		d.dispatch(n)
		t := d.c.timeout_ms
		d.busy.Store(0)
		if (n != 0 || t != -1 || d.submitted.Load()&closedBit != 0) && d.parked.CompareAndSwap(true, false) {
			return d.newLoopFile()
		}
	}
	// else a solo caller runs the loop: it unparks us if it leaves work
	<-d.wake
	return d.newLoopFile()
}

func (d *driver) newLoopFile() *os.File {
	f, err := pollFile(int(d.c.loop_fd))
	if err != nil {
		panic("mcrs: event loop fd: " + err.Error())
	}
	d.loopFile.Store(f)
	return f
}
