//! `mcrs_loop`: the event-loop C API. Arguments and results go through
//! [`shape`], shared with the blocking exports.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::client::{mcrs_client, mcrs_noreply};
use super::shape::{self, Arg, SetManyArgs, StoreArgs};
use super::status::{fail, mcrs_status, mcrs_status::*, set_last_error};
use super::value::{mcrs_stats, mcrs_value, mcrs_values};
use super::{check_null, ffi_boundary, ffi_boundary_value, try_ffi};
use crate::engine::{Callback, EventLoop, Submitter};
use crate::protocol::{Retrieve, StoreCmd};
use crate::request::{Outcome, Request};

/// An event loop: requests pipelined on one connection per server, driven
/// by the caller's event loop through one fd, with no thread of its own.
///
/// Thread rules: the loop belongs to the thread that made it
/// (`mcrs_loop_new`). `mcrs_loop_run`, `mcrs_loop_send`,
/// `mcrs_loop_timeout_ms`, `mcrs_loop_set_auto_wake`, `mcrs_loop_pending`
/// and `mcrs_loop_free` must be called on that thread (run and send refuse
/// others with MCRS_STATUS_INVALID_ARGUMENT). The submit calls
/// (`mcrs_loop_get`, `mcrs_loop_set`, ...) may be called from any thread:
/// from another thread the request is handed over lock-free and the fd
/// wakes the loop's thread. Callbacks always run on the loop's thread,
/// inside `mcrs_loop_run`; there `mcrs_last_error` holds the detail of a
/// failed status. A callback may submit more requests (they are sent
/// before that `mcrs_loop_run` returns) and may call `mcrs_loop_free`
/// (the loop is then freed when the callback returns; the other pending
/// requests complete with MCRS_STATUS_CANCELLED first).
///
/// Every submit call either returns MCRS_STATUS_OK, and then its callback
/// runs exactly once (success, failure, timeout, or CANCELLED), or returns
/// an error (an invalid key or argument, refused before any I/O; CANCELLED
/// once the loop is being freed), and then its callback never runs. A NULL
/// callback is allowed: the outcome is dropped (a value freed).
pub struct mcrs_loop {
    /// the loop's thread (`thread_token`), 0 while disowned
    owner: AtomicUsize,
    submitter: Submitter,
    inner: UnsafeCell<EventLoop>,
}

/// Called with the outcome of a get/gets/gat/gats: `value` is a hit, now
/// the callee's (free it with `mcrs_value_free`), and NULL for every other
/// status (MCRS_STATUS_NOT_FOUND is a miss).
pub type mcrs_get_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status, value: *mut mcrs_value),
>;
/// Called with the status of a command that returns nothing else.
pub type mcrs_status_cb = Option<unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status)>;
/// Called with the outcome of incr/decr: `value` is the new value when
/// status is MCRS_STATUS_OK without noreply, else 0.
pub type mcrs_number_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status, value: u64)>;
/// Called with the outcome of get_many/gets_many: `values` (the callee's,
/// free it with `mcrs_values_free`) is set for MCRS_STATUS_OK and
/// MCRS_STATUS_PARTIAL (see `mcrs_client_get_many`), NULL otherwise.
pub type mcrs_values_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status, values: *mut mcrs_values),
>;
/// Called with the outcome of set_many/delete_many/touch_many: the
/// command's status (as `mcrs_client_set_many_results` and
/// `mcrs_client_delete_many_results`) and, unless it failed as a whole, `n`
/// per-key statuses, valid during the call only.
pub type mcrs_keys_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        status: mcrs_status,
        per_key: *const mcrs_status,
        n: usize,
    ),
>;
/// Called with the version of the first server that answers: a
/// NUL-terminated string valid during the call only, NULL on failure.
pub type mcrs_version_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status, version: *const c_char),
>;
/// Called with the `stats` of every server: `stats` (the callee's, free it
/// with `mcrs_stats_free`) or NULL on failure.
pub type mcrs_stats_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, status: mcrs_status, stats: *mut mcrs_stats),
>;

/// The calling thread's identity, never 0 (`pthread_self` as an integer).
fn thread_token() -> usize {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
}

impl mcrs_loop {
    /// The calling thread becomes the loop's (`on`), or no thread is.
    pub(super) fn set_owner_current(&self, on: bool) {
        let t = if on { thread_token() } else { 0 };
        self.owner.store(t, Ordering::Release);
    }
}

fn on_loop_thread(l: &mcrs_loop) -> bool {
    l.owner.load(Ordering::Acquire) == thread_token()
}

fn wrong_thread(what: &str) -> mcrs_status {
    set_last_error(format!("{what} called from a thread other than the loop's"));
    MCRS_STATUS_INVALID_ARGUMENT
}

/// The loop, borrowed on its own thread. No other borrow is alive: the
/// exports never hold one while a callback runs.
///
/// # Safety
/// `l` is alive and the caller is on the loop's thread.
unsafe fn inner<'a>(l: *mut mcrs_loop) -> &'a mut EventLoop {
    &mut *(*l).inner.get()
}

/// Makes an event loop over `client`'s servers, owned by the calling
/// thread. It shares the client's cluster state (health, ring, failover)
/// and has connections of its own, opened on first use. It keeps what it
/// needs of the client alive: the client may be freed first. On failure
/// `*out` is set to NULL.
#[no_mangle]
pub extern "C" fn mcrs_loop_new(
    client: *const mcrs_client,
    out: *mut *mut mcrs_loop,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(out);
        // SAFETY: out is non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        check_null!(client);
        // SAFETY: client is non-NULL and alive.
        let lp = try_ffi!(EventLoop::new(unsafe { &(*client).0 }));
        let l = mcrs_loop {
            owner: AtomicUsize::new(thread_token()),
            submitter: lp.submitter(),
            inner: UnsafeCell::new(lp),
        };
        // SAFETY: out is non-NULL.
        unsafe { *out = Box::into_raw(Box::new(l)) };
        MCRS_STATUS_OK
    })
}

/// Frees the loop: every pending request completes once, with
/// MCRS_STATUS_CANCELLED (those already complete with their outcome), its
/// callback running inside this call; then the connections close. NULL is
/// ignored. On the loop's thread only; no other thread may be submitting.
/// Called from inside a callback, the loop is freed when that callback
/// returns.
#[no_mangle]
pub extern "C" fn mcrs_loop_free(l: *mut mcrs_loop) {
    ffi_boundary_value!((), {
        if l.is_null() {
            return;
        }
        // SAFETY: l is alive; mcrs_loop_free runs on the loop's thread.
        if unsafe { inner(l) }.request_free() {
            // inside mcrs_loop_run (or a cancellation callback): freed later
            return;
        }
        // SAFETY: l came from mcrs_loop_new; freed once.
        unsafe { free_loop(l) };
    })
}

/// Cancels what is pending, runs the callbacks (holding no borrow of the
/// loop while each runs, so they may call into it), then frees it.
///
/// # Safety
/// `l` came from `mcrs_loop_new`, is alive, and is freed here once.
unsafe fn free_loop(l: *mut mcrs_loop) {
    inner(l).close();
    while let Some((cb, outcome)) = inner(l).next_done() {
        cb.call(outcome);
    }
    drop(Box::from_raw(l));
}

/// The one fd to watch for readability (an epoll fd): it is readable
/// whenever `mcrs_loop_run` has work. -1 for NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn mcrs_loop_fd(l: *const mcrs_loop) -> i32 {
    ffi_boundary_value!(-1, {
        if l.is_null() {
            return -1;
        }
        // SAFETY: l is alive; the fd is fixed for the loop's life.
        unsafe { &*(*l).inner.get() }.fd()
    })
}

/// Milliseconds until `mcrs_loop_run` must be called even if the fd stays
/// quiet (the next deadline, rounded up); 0 when there is work now; -1 when
/// nothing is pending. Re-read it after each run and each submission. On
/// the loop's thread; -1 for NULL.
#[no_mangle]
pub extern "C" fn mcrs_loop_timeout_ms(l: *const mcrs_loop) -> i32 {
    ffi_boundary_value!(-1, {
        if l.is_null() {
            return -1;
        }
        // SAFETY: l is alive and this is the loop's thread.
        match unsafe { &*(*l).inner.get() }.timeout() {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
        }
    })
}

/// Does what is ready and returns, never blocking: reads replies, writes
/// submitted requests (one write per server), expires deadlines, then runs
/// the callbacks of completed requests. Callbacks of requests that complete
/// because of those callbacks run in the next call (the fd or
/// `mcrs_loop_timeout_ms` says so). On the loop's thread only.
#[no_mangle]
pub extern "C" fn mcrs_loop_run(l: *mut mcrs_loop) -> mcrs_status {
    ffi_boundary!({
        check_null!(l);
        // SAFETY: l is alive.
        if !on_loop_thread(unsafe { &*l }) {
            return wrong_thread("mcrs_loop_run");
        }
        // SAFETY: on the loop's thread; the borrow ends before callbacks run.
        let n = try_ffi!(unsafe { inner(l) }.run_io());
        for _ in 0..n {
            // SAFETY: as above; no borrow is held while the callback runs.
            let Some((cb, outcome)) = (unsafe { inner(l) }).next_done() else {
                break;
            };
            cb.call(outcome);
            // SAFETY: the loop is still alive: a free from the callback is deferred.
            if unsafe { inner(l) }.free_requested() {
                // SAFETY: l came from mcrs_loop_new; freed once, here.
                unsafe { free_loop(l) };
                return MCRS_STATUS_OK;
            }
        }
        // SAFETY: as above.
        unsafe { inner(l) }.end_run();
        MCRS_STATUS_OK
    })
}

/// Writes the requests submitted so far, without reading or running
/// callbacks: for drivers that submit from a hook of their event loop with
/// auto-wake off (`mcrs_loop_set_auto_wake`). On the loop's thread only.
#[no_mangle]
pub extern "C" fn mcrs_loop_send(l: *mut mcrs_loop) -> mcrs_status {
    ffi_boundary!({
        check_null!(l);
        // SAFETY: l is alive.
        if !on_loop_thread(unsafe { &*l }) {
            return wrong_thread("mcrs_loop_send");
        }
        // SAFETY: on the loop's thread.
        unsafe { inner(l) }.flush();
        MCRS_STATUS_OK
    })
}

/// Whether a submission on the loop's thread outside `mcrs_loop_run` makes
/// the fd readable (default on). Off saves a wake-up per turn for drivers
/// that call `mcrs_loop_send` or `mcrs_loop_run` themselves after
/// submitting (e.g. from a libuv prepare handle); `mcrs_loop_timeout_ms`
/// still returns 0 while requests wait unsent. Submissions from other
/// threads always wake the loop. On the loop's thread only.
#[no_mangle]
pub extern "C" fn mcrs_loop_set_auto_wake(l: *mut mcrs_loop, on: bool) -> mcrs_status {
    ffi_boundary!({
        check_null!(l);
        // SAFETY: l is alive.
        if !on_loop_thread(unsafe { &*l }) {
            return wrong_thread("mcrs_loop_set_auto_wake");
        }
        // SAFETY: on the loop's thread.
        unsafe { inner(l) }.set_auto_wake(on);
        MCRS_STATUS_OK
    })
}

/// Requests submitted on the loop's thread whose callbacks have not run
/// yet (0 for NULL). On the loop's thread.
#[no_mangle]
pub extern "C" fn mcrs_loop_pending(l: *const mcrs_loop) -> usize {
    ffi_boundary_value!(0, {
        if l.is_null() {
            return 0;
        }
        // SAFETY: l is alive and this is the loop's thread.
        unsafe { &*(*l).inner.get() }.pending()
    })
}

/// Submits a checked request with its callback: on the loop's thread
/// directly, from another thread through the lock-free hand-over.
pub(super) fn submit(l: *mut mcrs_loop, req: Arg<Request<'_>>, cb: Callback) -> mcrs_status {
    if l.is_null() {
        set_last_error("argument `l` is NULL");
        return MCRS_STATUS_NULL_POINTER;
    }
    let req = match req {
        Ok(r) => r,
        Err(s) => return s,
    };
    // SAFETY: l is alive.
    let lr = unsafe { &*l };
    let r = if on_loop_thread(lr) {
        // SAFETY: on the loop's thread; a callback running now holds no borrow.
        unsafe { inner(l) }.submit(&req, cb)
    } else {
        // SAFETY: C callbacks are documented to run on the loop's thread.
        unsafe { lr.submitter.submit_callback(&req, cb) }
    };
    match r {
        Ok(()) => MCRS_STATUS_OK,
        Err(e) => fail(e),
    }
}

// ---- trampolines: an outcome to a C callback --------------------------------

macro_rules! callback {
    ($tramp:ident, $ty:ty, |$f:ident, $ud:ident, $o:ident| $body:block) => {
        /// Delivers an outcome to a C callback of this shape.
        ///
        /// # Safety
        /// `f` is a `$ty` and `ud` its userdata, as given to a submit call.
        unsafe fn $tramp(f: usize, ud: usize, $o: Outcome) {
            // SAFETY: f was made from this callback type by `cb_of`.
            let $f: $ty = unsafe { std::mem::transmute::<usize, $ty>(f) };
            let $ud = ud as *mut c_void;
            $body
        }
    };
}

callback!(deliver_get, mcrs_get_cb, |f, ud, o| {
    let Outcome::Value(r) = o else { return };
    let (st, v) = shape::value_out(r);
    match f {
        // SAFETY: the caller's callback, on the loop's thread.
        Some(f) => unsafe { f(ud, st, v) },
        None => super::value::mcrs_value_free(v),
    }
});

callback!(deliver_status, mcrs_status_cb, |f, ud, o| {
    let st = match o {
        Outcome::Ack(r) => shape::ack_out(r),
        other => other.error().map_or(MCRS_STATUS_PANIC, mcrs_status::from),
    };
    if let Some(f) = f {
        // SAFETY: the caller's callback, on the loop's thread.
        unsafe { f(ud, st) }
    }
});

callback!(deliver_number, mcrs_number_cb, |f, ud, o| {
    let Outcome::Counter(r) = o else { return };
    let (st, v) = shape::counter_out(r);
    if let Some(f) = f {
        // SAFETY: the caller's callback, on the loop's thread.
        unsafe { f(ud, st, v.unwrap_or(0)) }
    }
});

callback!(deliver_values, mcrs_values_cb, |f, ud, o| {
    let Outcome::Values(r) = o else { return };
    let (st, vs) = shape::values_out(r);
    match f {
        // SAFETY: the caller's callback, on the loop's thread.
        Some(f) => unsafe { f(ud, st, vs) },
        None => super::value::mcrs_values_free(vs),
    }
});

callback!(deliver_keys, mcrs_keys_cb, |f, ud, o| {
    let Outcome::Keys(r) = o else { return };
    let (st, per_key) = shape::keys_out(r);
    if let Some(f) = f {
        let p = if per_key.is_empty() {
            std::ptr::null()
        } else {
            per_key.as_ptr()
        };
        // SAFETY: the caller's callback, on the loop's thread; per_key outlives it.
        unsafe { f(ud, st, p, per_key.len()) }
    }
});

callback!(deliver_version, mcrs_version_cb, |f, ud, o| {
    let Outcome::Version(r) = o else { return };
    let (st, v) = shape::version_out(r);
    if let Some(f) = f {
        let p = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: the caller's callback, on the loop's thread; v outlives it.
        unsafe { f(ud, st, p) }
    }
});

callback!(deliver_stats, mcrs_stats_cb, |f, ud, o| {
    let Outcome::Stats(r) = o else { return };
    let (st, s) = shape::stats_out(r);
    match f {
        // SAFETY: the caller's callback, on the loop's thread.
        Some(f) => unsafe { f(ud, st, s) },
        None => super::value::mcrs_stats_free(s),
    }
});

/// A callback of C function `f` (any of the `mcrs_*_cb` types, passed as
/// its bits) delivered by `tramp`.
pub(super) fn cb_of(
    tramp: unsafe fn(usize, usize, Outcome),
    f: usize,
    ud: *mut c_void,
) -> Callback {
    // SAFETY: `tramp` matches the type `f` was given as, and C callbacks
    // are documented to run on the loop's thread.
    unsafe { Callback::from_raw(tramp, f, ud as usize) }
}

pub(super) fn get_cb(f: mcrs_get_cb, ud: *mut c_void) -> Callback {
    cb_of(deliver_get, f.map_or(0, |f| f as usize), ud)
}
pub(super) fn status_cb(f: mcrs_status_cb, ud: *mut c_void) -> Callback {
    cb_of(deliver_status, f.map_or(0, |f| f as usize), ud)
}
fn number_cb(f: mcrs_number_cb, ud: *mut c_void) -> Callback {
    cb_of(deliver_number, f.map_or(0, |f| f as usize), ud)
}
fn values_cb(f: mcrs_values_cb, ud: *mut c_void) -> Callback {
    cb_of(deliver_values, f.map_or(0, |f| f as usize), ud)
}
fn keys_cb(f: mcrs_keys_cb, ud: *mut c_void) -> Callback {
    cb_of(deliver_keys, f.map_or(0, |f| f as usize), ud)
}

// ---- submissions ----------------------------------------------------------------

/// Reads `key` (a `get`); `cb` gets the value or the status. Requests
/// submitted in one turn of the caller's loop go out in one write per
/// server.
#[no_mangle]
pub extern "C" fn mcrs_loop_get(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    cb: mcrs_get_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve(key, key_len, Retrieve::Get),
            get_cb(cb, userdata),
        )
    })
}

/// Like `mcrs_loop_get`, and the value carries its cas unique.
#[no_mangle]
pub extern "C" fn mcrs_loop_gets(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    cb: mcrs_get_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve(key, key_len, Retrieve::Gets),
            get_cb(cb, userdata),
        )
    })
}

/// Get-and-touch: reads `key` and sets its exptime.
#[no_mangle]
pub extern "C" fn mcrs_loop_gat(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    cb: mcrs_get_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve(key, key_len, Retrieve::Gat(exptime)),
            get_cb(cb, userdata),
        )
    })
}

/// Get-and-touch with the cas unique.
#[no_mangle]
pub extern "C" fn mcrs_loop_gats(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    cb: mcrs_get_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve(key, key_len, Retrieve::Gats(exptime)),
            get_cb(cb, userdata),
        )
    })
}

/// The loop's `set` (outcomes as `mcrs_client_set`; with noreply the
/// callback gets MCRS_STATUS_OK once the request is written).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_set(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({ submit(l, shape::store(StoreCmd::Set, a), status_cb(cb, userdata)) })
}

/// The loop's `add` (MCRS_STATUS_NOT_STORED when the key exists).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_add(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({ submit(l, shape::store(StoreCmd::Add, a), status_cb(cb, userdata)) })
}

/// The loop's `replace` (MCRS_STATUS_NOT_STORED when the key is absent).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_replace(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({
        submit(
            l,
            shape::store(StoreCmd::Replace, a),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's `append`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_append(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({
        submit(
            l,
            shape::store(StoreCmd::Append, a),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's `prepend`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_prepend(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({
        submit(
            l,
            shape::store(StoreCmd::Prepend, a),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's `cas` (MCRS_STATUS_OK, MCRS_STATUS_EXISTS or
/// MCRS_STATUS_NOT_FOUND; noreply defaults to off).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_cas(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    cas: u64,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = StoreArgs {
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        noreply,
    };
    ffi_boundary!({ submit(l, shape::cas(a, cas), status_cb(cb, userdata)) })
}

/// The loop's `delete` (MCRS_STATUS_NOT_FOUND when absent, without noreply).
#[no_mangle]
pub extern "C" fn mcrs_loop_delete(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::delete(key, key_len, noreply),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's `touch` (MCRS_STATUS_NOT_FOUND when absent, without noreply).
#[no_mangle]
pub extern "C" fn mcrs_loop_touch(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::touch(key, key_len, exptime, noreply),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's `incr`: `cb` gets the new value (noreply defaults to off).
#[no_mangle]
pub extern "C" fn mcrs_loop_incr(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
    cb: mcrs_number_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::arith(true, key, key_len, delta, noreply),
            number_cb(cb, userdata),
        )
    })
}

/// The loop's `decr` (memcached stops at 0).
#[no_mangle]
pub extern "C" fn mcrs_loop_decr(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
    cb: mcrs_number_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::arith(false, key, key_len, delta, noreply),
            number_cb(cb, userdata),
        )
    })
}

/// The loop's `get_many`: one callback with the whole list, per-key
/// outcomes included (MCRS_STATUS_PARTIAL when some servers failed).
#[no_mangle]
pub extern "C" fn mcrs_loop_get_many(
    l: *mut mcrs_loop,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    cb: mcrs_values_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve_many(keys, key_lens, n, Retrieve::Get),
            values_cb(cb, userdata),
        )
    })
}

/// Like `mcrs_loop_get_many`, with cas uniques.
#[no_mangle]
pub extern "C" fn mcrs_loop_gets_many(
    l: *mut mcrs_loop,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    cb: mcrs_values_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::retrieve_many(keys, key_lens, n, Retrieve::Gets),
            values_cb(cb, userdata),
        )
    })
}

/// The loop's `set_many`: `cb` gets the status and each item's.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_set_many(
    l: *mut mcrs_loop,
    keys: *const *const u8,
    key_lens: *const usize,
    values: *const *const u8,
    value_lens: *const usize,
    flags: *const u32,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_keys_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let a = SetManyArgs {
        keys,
        key_lens,
        values,
        value_lens,
        flags,
        n,
        exptime,
        noreply,
    };
    ffi_boundary!({ submit(l, shape::set_many(a), keys_cb(cb, userdata)) })
}

/// The loop's `delete_many`: `cb` gets the status and each key's.
#[no_mangle]
pub extern "C" fn mcrs_loop_delete_many(
    l: *mut mcrs_loop,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    noreply: mcrs_noreply,
    cb: mcrs_keys_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::delete_many(keys, key_lens, n, noreply),
            keys_cb(cb, userdata),
        )
    })
}

/// The loop's `touch_many`: `cb` gets the status and each key's.
#[no_mangle]
pub extern "C" fn mcrs_loop_touch_many(
    l: *mut mcrs_loop,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    cb: mcrs_keys_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            shape::touch_many(keys, key_lens, n, exptime, noreply),
            keys_cb(cb, userdata),
        )
    })
}

/// The loop's `flush_all` on every server.
#[no_mangle]
pub extern "C" fn mcrs_loop_flush_all(
    l: *mut mcrs_loop,
    delay: u32,
    noreply: mcrs_noreply,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({ submit(l, shape::flush_all(delay, noreply), status_cb(cb, userdata)) })
}

/// The version of the first server that answers.
#[no_mangle]
pub extern "C" fn mcrs_loop_version(
    l: *mut mcrs_loop,
    cb: mcrs_version_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let f = cb.map_or(0, |f| f as usize);
    ffi_boundary!({ submit(l, Ok(Request::Version), cb_of(deliver_version, f, userdata)) })
}

/// `stats [args]` of every server (`args` as for `mcrs_client_stats`; it
/// is copied).
#[no_mangle]
pub extern "C" fn mcrs_loop_stats(
    l: *mut mcrs_loop,
    args: *const c_char,
    cb: mcrs_stats_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let f = cb.map_or(0, |f| f as usize);
    ffi_boundary!({ submit(l, shape::stats(args), cb_of(deliver_stats, f, userdata)) })
}
