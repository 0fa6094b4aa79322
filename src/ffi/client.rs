//! `mcrs_client` and its blocking commands. Arguments and results go
//! through [`shape`], shared with the event-loop exports.

use std::ffi::c_char;

use super::config::mcrs_config;
use super::shape::{self, Arg, SetManyArgs, StoreArgs};
use super::status::{mcrs_status, mcrs_status::*, outcome, set_last_error};
use super::value::{mcrs_stats, mcrs_value, mcrs_values};
use super::{arg, check_null, ffi_boundary, ffi_boundary_value, try_ffi};
use crate::client::Client;
use crate::error::Error;
use crate::protocol::{Retrieve, StoreCmd};
use crate::request::Ack;
use crate::request::{Outcome, Request};
use crate::value::OwnedValue;

/// A memcached client (one server or a cluster). Thread-safe: share one
/// `const mcrs_client *` between threads; calls on it may run concurrently.
/// Create with `mcrs_client_new`, free with `mcrs_client_free` once no call is
/// running on it (event loops made from it may outlive it).
pub struct mcrs_client(pub(crate) Client);

/// Whether a command waits for the server's reply (a `uint32_t`; other values
/// give MCRS_STATUS_INVALID_ARGUMENT).
pub type mcrs_noreply = u32;
/// Use the command's default: set, add, replace, append, prepend, delete,
/// touch, flush_all and verbosity follow the config's default_noreply (on
/// unless changed); cas, incr, decr and cache_memlimit wait for the reply.
pub const MCRS_NOREPLY_DEFAULT: mcrs_noreply = 0;
/// Do not wait: the call returns MCRS_STATUS_OK once the request is written.
pub const MCRS_NOREPLY_ON: mcrs_noreply = 1;
/// Wait for the reply and report it.
pub const MCRS_NOREPLY_OFF: mcrs_noreply = 2;

/// Borrows the client handle (checked non-NULL by the caller).
pub(crate) fn client<'a>(c: *const mcrs_client) -> &'a Client {
    // SAFETY: c is non-NULL (checked) and alive for the call.
    unsafe { &(*c).0 }
}

/// Runs a request on the client and waits for its outcome.
fn exec(c: *const mcrs_client, req: Arg<Request<'_>>) -> Arg<Outcome> {
    if c.is_null() {
        set_last_error("argument `c` is NULL");
        return Err(MCRS_STATUS_NULL_POINTER);
    }
    let req = req?;
    Ok(client(c).execute(&req))
}

/// Makes a client from `cfg` (copied: the config can be freed or reused right
/// away). Connections open lazily, on first use, so this does no I/O. No
/// server gives MCRS_STATUS_NO_SERVERS. On failure `*out` is set to NULL.
#[no_mangle]
pub extern "C" fn mcrs_client_new(
    cfg: *const mcrs_config,
    out: *mut *mut mcrs_client,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(out);
        // SAFETY: out is non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        check_null!(cfg);
        // SAFETY: cfg is non-NULL and alive.
        let client = try_ffi!(unsafe { &(*cfg).0 }.build());
        // SAFETY: out is non-NULL.
        unsafe { *out = Box::into_raw(Box::new(mcrs_client(client))) };
        MCRS_STATUS_OK
    })
}

/// Frees a client and closes its idle connections. NULL is ignored. No
/// other call may be running on the client. Event loops made from it keep
/// working (they share its cluster state, which lives as long as they do).
#[no_mangle]
pub extern "C" fn mcrs_client_free(client: *mut mcrs_client) {
    ffi_boundary_value!((), {
        if !client.is_null() {
            // SAFETY: client came from mcrs_client_new and is freed once.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// Shared body of set/add/replace/append/prepend: the client's store
/// directly, with the arguments the loop's set family checks the same way.
#[inline(always)]
fn store(c: *const mcrs_client, cmd: StoreCmd, a: StoreArgs) -> mcrs_status {
    check_null!(c);
    let s = arg!(a.check());
    let r = client(c).store(cmd, s.key, s.value, s.flags, s.exptime, s.noreply);
    shape::ack_out(r.map(|stored| if stored { Ack::Done } else { Ack::NotStored }))
}

/// The status of a write, delete, touch or flush. The one-key commands call
/// the client directly (the hot path: no `Outcome` to build and match).
fn ack(c: *const mcrs_client, req: Arg<Request<'_>>) -> mcrs_status {
    let req = arg!(req);
    check_null!(c);
    let cl = client(c);
    let done = |r: Result<bool, Error>, miss: Ack| r.map(|d| if d { Ack::Done } else { miss });
    let r = match req {
        Request::Delete { key, noreply } => done(cl.delete(key, noreply), Ack::NotFound),
        Request::Touch {
            key,
            exptime,
            noreply,
        } => done(cl.touch(key, exptime, noreply), Ack::NotFound),
        req => match cl.execute(&req) {
            Outcome::Ack(r) => r,
            other => return unexpected(other),
        },
    };
    shape::ack_out(r)
}

fn unexpected(o: Outcome) -> mcrs_status {
    set_last_error(format!("internal: unexpected outcome {o:?}"));
    MCRS_STATUS_PANIC
}

/// Stores `value` under `key` unconditionally. `exptime`: 0 never expires,
/// up to 30 days relative seconds, else a unix time (max INT32_MAX).
/// `value` may be NULL when `value_len` is 0. A value over the server's item
/// size limit gives MCRS_STATUS_SERVER_ERROR (with noreply: MCRS_STATUS_OK,
/// and the server's error is discarded without disturbing later replies).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_set(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ store(c, StoreCmd::Set, a) })
}

/// Stores only if the key is absent; MCRS_STATUS_NOT_STORED otherwise.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_add(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ store(c, StoreCmd::Add, a) })
}

/// Stores only if the key is present; MCRS_STATUS_NOT_STORED otherwise.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_replace(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ store(c, StoreCmd::Replace, a) })
}

/// Appends to an existing value (flags/exptime ignored by the server);
/// MCRS_STATUS_NOT_STORED when the key is absent.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_append(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ store(c, StoreCmd::Append, a) })
}

/// Prepends to an existing value; MCRS_STATUS_NOT_STORED when absent.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_prepend(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ store(c, StoreCmd::Prepend, a) })
}

/// Check-and-set: stores only if the item's cas unique is still `cas`.
/// MCRS_STATUS_OK (stored), MCRS_STATUS_EXISTS (changed since read) or
/// MCRS_STATUS_NOT_FOUND. noreply defaults to off.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_cas(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    cas: u64,
    noreply: mcrs_noreply,
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
    ffi_boundary!({ ack(c, shape::cas(a, cas)) })
}

/// Shared body of get/gets/gat/gats: `*out` gets the value or NULL.
fn read_one(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut mcrs_value,
    cmd: Retrieve,
) -> mcrs_status {
    check_null!(out);
    // SAFETY: out is non-NULL.
    unsafe { *out = std::ptr::null_mut() };
    check_null!(c);
    let key = arg!(shape::arg_key(key, key_len));
    // one allocation, copied straight from the read buffer
    let (st, v) = shape::value_out(client(c).fetch_with(cmd, key, OwnedValue::new));
    // SAFETY: out is non-NULL.
    unsafe { *out = v };
    st
}

/// Reads `key`. MCRS_STATUS_OK with `*out` set (free it with
/// `mcrs_value_free`), or MCRS_STATUS_NOT_FOUND with `*out = NULL` (also for
/// failures when ignore_exc is on). On any failure `*out = NULL`.
#[no_mangle]
pub extern "C" fn mcrs_client_get(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({ read_one(c, key, key_len, out, Retrieve::Get) })
}

/// Reads `key` into the caller's buffer, allocating nothing: on
/// MCRS_STATUS_OK the value's bytes are in `buf[0..*len]` and its flags in
/// `*flags`. A miss is MCRS_STATUS_NOT_FOUND (also for failures when
/// ignore_exc is on). A value longer than `cap` gives
/// MCRS_STATUS_BUFFER_TOO_SMALL and, as the one exception to "outputs only
/// on success", `*len` = the length needed (nothing is written to `buf`;
/// the item was read and dropped, so a retry is a new request). `buf` may be
/// NULL when `cap` is 0. `flags` may be NULL when not wanted.
#[no_mangle]
pub extern "C" fn mcrs_client_get_into(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
    flags: *mut u32,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c, key, len);
        if buf.is_null() && cap > 0 {
            check_null!(buf);
        }
        let key = arg!(shape::arg_key(key, key_len));
        let copied = client(c).fetch_with(Retrieve::Get, key, |data, f, _| {
            if data.len() > cap {
                return Err(data.len());
            }
            // SAFETY: buf has room for cap >= data.len() bytes (non-NULL
            // when cap > 0; nothing is copied when data is empty).
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
            Ok((data.len(), f))
        });
        match try_ffi!(copied) {
            Some(Ok((n, f))) => {
                // SAFETY: len is non-NULL; flags is checked.
                unsafe {
                    *len = n;
                    if !flags.is_null() {
                        *flags = f;
                    }
                }
                MCRS_STATUS_OK
            }
            Some(Err(need)) => {
                set_last_error(format!("value is {need} bytes, buffer has {cap}"));
                // SAFETY: len is non-NULL.
                unsafe { *len = need };
                MCRS_STATUS_BUFFER_TOO_SMALL
            }
            None => outcome(MCRS_STATUS_NOT_FOUND),
        }
    })
}

/// Like `mcrs_client_get`, and the value carries its cas unique.
#[no_mangle]
pub extern "C" fn mcrs_client_gets(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({ read_one(c, key, key_len, out, Retrieve::Gets) })
}

/// Get-and-touch: reads `key` and sets its exptime.
#[no_mangle]
pub extern "C" fn mcrs_client_gat(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({ read_one(c, key, key_len, out, Retrieve::Gat(exptime)) })
}

/// Get-and-touch with the cas unique.
#[no_mangle]
pub extern "C" fn mcrs_client_gats(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({ read_one(c, key, key_len, out, Retrieve::Gats(exptime)) })
}

fn read_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut mcrs_values,
    cmd: Retrieve,
) -> mcrs_status {
    check_null!(out);
    // SAFETY: out is non-NULL.
    unsafe { *out = std::ptr::null_mut() };
    match arg!(exec(c, shape::retrieve_many(keys, key_lens, n, cmd))) {
        Outcome::Values(r) => {
            let (st, vs) = shape::values_out(r);
            // SAFETY: out is non-NULL.
            unsafe { *out = vs };
            st
        }
        other => unexpected(other),
    }
}

/// Reads `n` keys at once (one pipelined request per server, the servers
/// in parallel). `*out` holds n entries, entry i for key i (NULL for a miss
/// or a key whose server failed; `mcrs_values_status` tells which); free it
/// with `mcrs_values_free`. Returns MCRS_STATUS_OK when every server
/// answered; MCRS_STATUS_PARTIAL when some servers failed and others
/// answered — `*out` is set then too and must be freed, and each failed
/// key's status is its server's failure; the failure itself (e.g.
/// MCRS_STATUS_CONNECT_FAILED, with `*out = NULL`) when every key failed.
/// With ignore_exc, failed keys are misses and the call returns OK.
/// `keys`/`key_lens` may be NULL when n is 0.
#[no_mangle]
pub extern "C" fn mcrs_client_get_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut mcrs_values,
) -> mcrs_status {
    ffi_boundary!({ read_many(c, keys, key_lens, n, out, Retrieve::Get) })
}

/// Like `mcrs_client_get_many`, with cas uniques.
#[no_mangle]
pub extern "C" fn mcrs_client_gets_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut mcrs_values,
) -> mcrs_status {
    ffi_boundary!({ read_many(c, keys, key_lens, n, out, Retrieve::Gets) })
}

/// Runs a many-key write; its per-key statuses go to `statuses` (n
/// entries) when non-NULL, unless the call fails as a whole.
fn many_keys(
    c: *const mcrs_client,
    req: Arg<Request<'_>>,
    statuses: *mut mcrs_status,
) -> (mcrs_status, Vec<mcrs_status>) {
    let o = match exec(c, req) {
        Ok(o) => o,
        Err(s) => return (s, Vec::new()),
    };
    let Outcome::Keys(r) = o else {
        return (unexpected(o), Vec::new());
    };
    let (st, per_key) = shape::keys_out(r);
    if !statuses.is_null() && !per_key.is_empty() {
        // SAFETY: the caller gives room for n statuses; per_key has n.
        unsafe { std::ptr::copy_nonoverlapping(per_key.as_ptr(), statuses, per_key.len()) };
    }
    (st, per_key)
}

/// Stores `n` items (pipelined per server); item i is `keys[i]`/`values[i]` with
/// `flags[i]`. MCRS_STATUS_OK when all were stored; MCRS_STATUS_NOT_STORED when
/// some were not: their indices go to `failed[0 .. *n_failed]` (`failed` needs
/// room for n entries). MCRS_STATUS_PARTIAL when the servers of some items
/// failed: those items are in `failed` too (`mcrs_client_set_many_results`
/// tells them apart). With noreply: MCRS_STATUS_OK and `*n_failed = 0` once
/// written, except that with ignore_exc the items of a server that failed
/// are reported as not stored (as pymemcache's HashClient does).
/// The arrays may be NULL when n is 0; `n_failed` is always required.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_set_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    values: *const *const u8,
    value_lens: *const usize,
    flags: *const u32,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    failed: *mut usize,
    n_failed: *mut usize,
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
    ffi_boundary!({
        check_null!(n_failed);
        if n > 0 {
            check_null!(failed);
        }
        let (st, per_key) = many_keys(c, shape::set_many(a), std::ptr::null_mut());
        if !matches!(
            st,
            MCRS_STATUS_OK | MCRS_STATUS_NOT_STORED | MCRS_STATUS_PARTIAL
        ) {
            return st;
        }
        let bad: Vec<usize> = (0..per_key.len())
            .filter(|&i| per_key[i] != MCRS_STATUS_OK)
            .collect();
        // SAFETY: n_failed is non-NULL; failed has room for n >= bad.len().
        unsafe {
            if !bad.is_empty() {
                std::ptr::copy_nonoverlapping(bad.as_ptr(), failed, bad.len());
            }
            *n_failed = bad.len();
        }
        st
    })
}

/// Like `mcrs_client_set_many`, with each item's outcome in `statuses[i]`
/// (n entries, written unless the call fails as a whole): MCRS_STATUS_OK,
/// MCRS_STATUS_NOT_STORED, or the failure of its server. Returns OK,
/// NOT_STORED, PARTIAL (some servers failed), or the failure when every
/// item failed. `statuses` may be NULL when n is 0.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_client_set_many_results(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    values: *const *const u8,
    value_lens: *const usize,
    flags: *const u32,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    statuses: *mut mcrs_status,
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
    ffi_boundary!({
        if n > 0 {
            check_null!(statuses);
        }
        many_keys(c, shape::set_many(a), statuses).0
    })
}

/// Deletes `key`: MCRS_STATUS_OK, or MCRS_STATUS_NOT_FOUND when it was absent
/// (only known without noreply; noreply is the default).
#[no_mangle]
pub extern "C" fn mcrs_client_delete(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({ ack(c, shape::delete(key, key_len, noreply)) })
}

/// Deletes `n` keys (pipelined per server). MCRS_STATUS_OK whether or not the
/// keys existed; MCRS_STATUS_PARTIAL when the servers of some keys failed
/// (`mcrs_client_delete_many_results` says which); the failure when every
/// key failed. `keys`/`key_lens` may be NULL when n is 0.
#[no_mangle]
pub extern "C" fn mcrs_client_delete_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        many_keys(
            c,
            shape::delete_many(keys, key_lens, n, noreply),
            std::ptr::null_mut(),
        )
        .0
    })
}

/// Like `mcrs_client_delete_many`, with each key's outcome in
/// `statuses[i]` (n entries, written unless the call fails as a whole):
/// MCRS_STATUS_OK (deleted, or sent with noreply), MCRS_STATUS_NOT_FOUND,
/// or the failure of its server.
#[no_mangle]
pub extern "C" fn mcrs_client_delete_many_results(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    noreply: mcrs_noreply,
    statuses: *mut mcrs_status,
) -> mcrs_status {
    ffi_boundary!({
        if n > 0 {
            check_null!(statuses);
        }
        many_keys(c, shape::delete_many(keys, key_lens, n, noreply), statuses).0
    })
}

/// Sets a new exptime on `n` keys (pipelined per server). MCRS_STATUS_OK
/// whether or not the keys existed; MCRS_STATUS_PARTIAL when the servers of
/// some keys failed. `keys`/`key_lens` may be NULL when n is 0.
#[no_mangle]
pub extern "C" fn mcrs_client_touch_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        many_keys(
            c,
            shape::touch_many(keys, key_lens, n, exptime, noreply),
            std::ptr::null_mut(),
        )
        .0
    })
}

/// Like `mcrs_client_touch_many`, with each key's outcome in `statuses[i]`
/// (as `mcrs_client_delete_many_results`).
#[no_mangle]
pub extern "C" fn mcrs_client_touch_many_results(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
    statuses: *mut mcrs_status,
) -> mcrs_status {
    ffi_boundary!({
        if n > 0 {
            check_null!(statuses);
        }
        many_keys(
            c,
            shape::touch_many(keys, key_lens, n, exptime, noreply),
            statuses,
        )
        .0
    })
}

fn arith(c: *const mcrs_client, req: Arg<Request<'_>>, new_value: *mut u64) -> mcrs_status {
    check_null!(new_value);
    match arg!(exec(c, req)) {
        Outcome::Counter(r) => {
            let (st, v) = shape::counter_out(r);
            if let Some(v) = v {
                // SAFETY: new_value is non-NULL.
                unsafe { *new_value = v };
            }
            st
        }
        other => unexpected(other),
    }
}

/// Adds `delta` to a decimal value (wrapping at 2^64 as memcached does).
/// MCRS_STATUS_OK with `*new_value` (not written with noreply),
/// MCRS_STATUS_NOT_FOUND, or MCRS_STATUS_CLIENT_ERROR for a non-numeric value.
/// noreply defaults to off.
#[no_mangle]
pub extern "C" fn mcrs_client_incr(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
    new_value: *mut u64,
) -> mcrs_status {
    ffi_boundary!({
        arith(
            c,
            shape::arith(true, key, key_len, delta, noreply),
            new_value,
        )
    })
}

/// Subtracts `delta` (memcached stops at 0). Same outcomes as incr.
#[no_mangle]
pub extern "C" fn mcrs_client_decr(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
    new_value: *mut u64,
) -> mcrs_status {
    ffi_boundary!({
        arith(
            c,
            shape::arith(false, key, key_len, delta, noreply),
            new_value,
        )
    })
}

/// Sets a new exptime: MCRS_STATUS_OK, or MCRS_STATUS_NOT_FOUND (known only
/// without noreply; noreply is the default).
#[no_mangle]
pub extern "C" fn mcrs_client_touch(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    exptime: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({ ack(c, shape::touch(key, key_len, exptime, noreply)) })
}

/// Invalidates every item on every server, after `delay` seconds (0: now).
#[no_mangle]
pub extern "C" fn mcrs_client_flush_all(
    c: *const mcrs_client,
    delay: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({ ack(c, shape::flush_all(delay, noreply)) })
}

/// `stats [args]` of every server: `args` is "" for the general statistics or
/// e.g. "items", "slabs", "settings". `*out` receives (server, name, value)
/// entries; free it with `mcrs_stats_free`. On failure `*out = NULL`.
#[no_mangle]
pub extern "C" fn mcrs_client_stats(
    c: *const mcrs_client,
    args: *const c_char,
    out: *mut *mut mcrs_stats,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(out);
        // SAFETY: out is non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        match arg!(exec(c, shape::stats(args))) {
            Outcome::Stats(r) => {
                let (st, s) = shape::stats_out(r);
                // SAFETY: out is non-NULL.
                unsafe { *out = s };
                st
            }
            other => unexpected(other),
        }
    })
}

/// This client's own per-server counters, read without I/O, as (server,
/// name, value) entries like `mcrs_client_stats` (read them with
/// `mcrs_stats_len`/`mcrs_stats_get`, free with `mcrs_stats_free`). Names:
/// `commands`, `hits`, `misses`, `timeouts`, `connect_failures`, `closed`,
/// `protocol_errors`, `skipped` (refused at once while the server was
/// failing), `connects`, `reconnects`, `ejections`, `rejoins`, `state` (0
/// healthy, 1 failing, 2 dead) and `keys_tracked`; failures count events (one
/// timeout failing a pipeline is one). Event loops of the client count into
/// the same counters. Thread-safe. On failure `*out = NULL`.
#[no_mangle]
pub extern "C" fn mcrs_client_counters(
    c: *const mcrs_client,
    out: *mut *mut mcrs_stats,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(out);
        // SAFETY: out is non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        check_null!(c);
        let entries = client(c)
            .counters()
            .into_iter()
            .map(|(s, n, v)| (s, n.to_string(), v.to_string()))
            .collect();
        let (st, s) = shape::stats_out(Ok(entries));
        // SAFETY: out is non-NULL.
        unsafe { *out = s };
        st
    })
}

/// Writes the version string of the first server that answers into `buf`,
/// NUL-terminated. MCRS_STATUS_BUFFER_TOO_SMALL when it does not fit in `cap`
/// bytes (nothing is written then).
#[no_mangle]
pub extern "C" fn mcrs_client_version(
    c: *const mcrs_client,
    buf: *mut c_char,
    cap: usize,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c, buf);
        let v = match client(c).execute(&Request::Version) {
            Outcome::Version(r) => match shape::version_out(r) {
                (_, Some(v)) => v,
                (st, None) => return st,
            },
            other => return unexpected(other),
        };
        let v = v.as_bytes_with_nul();
        if v.len() > cap {
            set_last_error(format!("version needs {} bytes, buffer has {cap}", v.len()));
            return MCRS_STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: buf has room for cap >= v.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), buf.cast::<u8>(), v.len()) };
        MCRS_STATUS_OK
    })
}

/// Sets the servers' memory limit in megabytes (noreply defaults to off).
#[no_mangle]
pub extern "C" fn mcrs_client_cache_memlimit(
    c: *const mcrs_client,
    megabytes: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let nr = arg!(shape::arg_noreply(noreply));
        try_ffi!(client(c).cache_memlimit(megabytes, nr));
        MCRS_STATUS_OK
    })
}

/// Sets the servers' logging verbosity.
#[no_mangle]
pub extern "C" fn mcrs_client_verbosity(
    c: *const mcrs_client,
    level: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let nr = arg!(shape::arg_noreply(noreply));
        try_ffi!(client(c).verbosity(level, nr));
        MCRS_STATUS_OK
    })
}

/// Writes the noreply commands buffered by `mcrs_config_set_buffer_noreply`.
/// A failure is reported after every server was tried.
#[no_mangle]
pub extern "C" fn mcrs_client_flush_buffers(c: *const mcrs_client) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        try_ffi!(client(c).flush_buffers());
        MCRS_STATUS_OK
    })
}

/// Sends `quit` on every idle connection and closes it. The client stays
/// usable: later calls reconnect.
#[no_mangle]
pub extern "C" fn mcrs_client_quit(c: *const mcrs_client) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        client(c).quit();
        MCRS_STATUS_OK
    })
}
