//! Moving an event loop between threads: for drivers whose loop is run by a
//! task that migrates (a goroutine, a work-stealing runtime), one thread at a time.

use super::event_loop::mcrs_loop;
use super::ffi_boundary;
use super::status::{mcrs_status, mcrs_status::*, set_last_error};

// Why a C loop may change threads although `EventLoop` is not `Send`: the
// marker keeps Rust callers from moving a loop that holds callbacks made
// from non-`Send` closures on its thread. A loop made through the C API holds
// only C callbacks, whose userdata the C caller vouches for, plus sockets,
// buffers and the poll fd, none tied to a thread; and the caller of
// `mcrs_loop_adopt` guarantees that one thread at a time uses it.

/// Makes the calling thread the loop's thread (as if it had made it):
/// `mcrs_loop_run` and the other loop-thread calls are then accepted here,
/// submissions from here go straight in, and callbacks run here. The caller
/// guarantees that no other thread is inside a loop-thread call on `l` (or
/// one of its callbacks) and that none makes one until it adopts the loop
/// in turn: e.g. one task drives the loop, adopting it at the start of each
/// turn and disowning it at the end (`mcrs_loop_disown`).
#[no_mangle]
pub extern "C" fn mcrs_loop_adopt(l: *mut mcrs_loop) -> mcrs_status {
    ffi_boundary!({
        if l.is_null() {
            set_last_error("argument `l` is NULL");
            return MCRS_STATUS_NULL_POINTER;
        }
        // SAFETY: l is alive (the caller's contract).
        unsafe { &*l }.set_owner_current(true);
        MCRS_STATUS_OK
    })
}

/// Leaves the loop with no thread: until a thread adopts it
/// (`mcrs_loop_adopt`), every submission goes through the cross-thread
/// hand-over (which wakes the loop's fd) and the loop-thread calls are
/// refused. On the loop's thread.
#[no_mangle]
pub extern "C" fn mcrs_loop_disown(l: *mut mcrs_loop) -> mcrs_status {
    ffi_boundary!({
        if l.is_null() {
            set_last_error("argument `l` is NULL");
            return MCRS_STATUS_NULL_POINTER;
        }
        // SAFETY: l is alive (the caller's contract).
        unsafe { &*l }.set_owner_current(false);
        MCRS_STATUS_OK
    })
}
