//! `mcrs_client` and its commands.

use std::ffi::{c_char, CStr, CString};

use super::config::mcrs_config;
use super::status::{fail, mcrs_status, mcrs_status::*, outcome, set_last_error};
use super::value::{mcrs_stats, mcrs_value, mcrs_values, OwnedValue, ValuesBuilder};
use super::{bytes, check_null, ffi_boundary, ffi_boundary_value, try_ffi};
use crate::client::{CasOutcome, Client};
use crate::error::Error;
use crate::protocol::Retrieve;

/// A memcached client (one server or a cluster). Thread-safe: share one
/// `const mcrs_client *` between threads; calls on it may run concurrently.
/// Create with `mcrs_client_new`, free with `mcrs_client_free` once no call is
/// running on it.
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

fn noreply_arg(n: mcrs_noreply) -> Result<Option<bool>, Error> {
    match n {
        MCRS_NOREPLY_DEFAULT => Ok(None),
        MCRS_NOREPLY_ON => Ok(Some(true)),
        MCRS_NOREPLY_OFF => Ok(Some(false)),
        other => Err(Error::InvalidArgument(format!(
            "unknown noreply value {other}"
        ))),
    }
}

/// Borrows a required byte argument (NULL allowed only with length 0).
macro_rules! arg_bytes {
    ($p:ident, $len:ident) => {
        // SAFETY: the caller passes $len readable bytes at $p.
        match unsafe { bytes($p, $len) } {
            Some(b) => b,
            None => {
                set_last_error(concat!("argument `", stringify!($p), "` is NULL"));
                return MCRS_STATUS_NULL_POINTER;
            }
        }
    };
}

/// Borrows `n` keys given as parallel arrays ([`key_list`]), or returns
/// MCRS_STATUS_NULL_POINTER from the enclosing function.
macro_rules! arg_keys {
    ($keys:ident, $lens:ident, $n:ident) => {
        // SAFETY: the caller passes $n keys.
        match unsafe { key_list($keys, $lens, $n) } {
            Some(k) => k,
            None => {
                set_last_error("argument `keys`, `key_lens` or one of the keys is NULL");
                return MCRS_STATUS_NULL_POINTER;
            }
        }
    };
}

/// Borrows the client handle (checked non-NULL by the caller macro).
fn client<'a>(c: *const mcrs_client) -> &'a Client {
    // SAFETY: c is non-NULL (checked) and alive for the call.
    unsafe { &(*c).0 }
}

/// Borrows `n` keys given as parallel pointer/length arrays.
///
/// # Safety
/// The arrays hold `n` entries and each key pointer its length in bytes.
unsafe fn key_list<'a>(
    keys: *const *const u8,
    lens: *const usize,
    n: usize,
) -> Option<Vec<&'a [u8]>> {
    if n == 0 {
        return Some(Vec::new());
    }
    if keys.is_null() || lens.is_null() {
        return None;
    }
    let ptrs = std::slice::from_raw_parts(keys, n);
    let lens = std::slice::from_raw_parts(lens, n);
    ptrs.iter()
        .zip(lens)
        .map(|(&p, &l)| if p.is_null() { None } else { bytes(p, l) })
        .collect()
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

/// Frees a client and closes its connections. NULL is ignored. No other call
/// may be running on the client.
#[no_mangle]
pub extern "C" fn mcrs_client_free(client: *mut mcrs_client) {
    ffi_boundary_value!((), {
        if !client.is_null() {
            // SAFETY: client came from mcrs_client_new and is freed once.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// A storage method of [`Client`]: (key, value, flags, exptime, noreply).
type StoreFn = fn(&Client, &[u8], &[u8], u32, u32, Option<bool>) -> Result<bool, Error>;

/// Shared body of set/add/replace/append/prepend.
#[allow(clippy::too_many_arguments)]
fn store(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    noreply: mcrs_noreply,
    cmd: StoreFn,
) -> mcrs_status {
    check_null!(c, key);
    let key = arg_bytes!(key, key_len);
    let value = arg_bytes!(value, value_len);
    let nr = try_ffi!(noreply_arg(noreply));
    let stored = try_ffi!(cmd(client(c), key, value, flags, exptime, nr));
    outcome(if stored {
        MCRS_STATUS_OK
    } else {
        MCRS_STATUS_NOT_STORED
    })
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
    ffi_boundary!({
        store(
            c,
            key,
            key_len,
            value,
            value_len,
            flags,
            exptime,
            noreply,
            Client::set,
        )
    })
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
    ffi_boundary!({
        store(
            c,
            key,
            key_len,
            value,
            value_len,
            flags,
            exptime,
            noreply,
            Client::add,
        )
    })
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
    ffi_boundary!({
        store(
            c,
            key,
            key_len,
            value,
            value_len,
            flags,
            exptime,
            noreply,
            Client::replace,
        )
    })
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
    ffi_boundary!({
        store(
            c,
            key,
            key_len,
            value,
            value_len,
            flags,
            exptime,
            noreply,
            Client::append,
        )
    })
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
    ffi_boundary!({
        store(
            c,
            key,
            key_len,
            value,
            value_len,
            flags,
            exptime,
            noreply,
            Client::prepend,
        )
    })
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
    ffi_boundary!({
        check_null!(c, key);
        let key = arg_bytes!(key, key_len);
        let value = arg_bytes!(value, value_len);
        let nr = try_ffi!(noreply_arg(noreply));
        outcome(
            match try_ffi!(client(c).cas(key, value, flags, exptime, cas, nr)) {
                CasOutcome::Stored => MCRS_STATUS_OK,
                CasOutcome::Exists => MCRS_STATUS_EXISTS,
                CasOutcome::NotFound => MCRS_STATUS_NOT_FOUND,
            },
        )
    })
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
    check_null!(c, key);
    let key = arg_bytes!(key, key_len);
    // one allocation, copied straight from the read buffer
    match try_ffi!(client(c).fetch_with(cmd, key, OwnedValue::new)) {
        Some(v) => {
            // SAFETY: out is non-NULL.
            unsafe { *out = v.into_raw() };
            MCRS_STATUS_OK
        }
        None => outcome(MCRS_STATUS_NOT_FOUND),
    }
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
        let key = arg_bytes!(key, key_len);
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
    gets: bool,
) -> mcrs_status {
    check_null!(out);
    // SAFETY: out is non-NULL.
    unsafe { *out = std::ptr::null_mut() };
    check_null!(c);
    let keys = arg_keys!(keys, key_lens, n);
    let cmd = if gets { Retrieve::Gets } else { Retrieve::Get };
    let mut b = ValuesBuilder::new(keys.len());
    try_ffi!(client(c).fetch_many_with(cmd, &keys, |i, d, f, cas| b.hit(i, d, f, cas)));
    // SAFETY: out is non-NULL.
    unsafe { *out = Box::into_raw(Box::new(b.finish())) };
    MCRS_STATUS_OK
}

/// Reads `n` keys at once (one pipelined request per server). On success
/// `*out` holds n entries, entry i for key i, NULL for a miss; free it with
/// `mcrs_values_free`. `keys`/`key_lens` may be NULL when n is 0.
#[no_mangle]
pub extern "C" fn mcrs_client_get_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut mcrs_values,
) -> mcrs_status {
    ffi_boundary!({ read_many(c, keys, key_lens, n, out, false) })
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
    ffi_boundary!({ read_many(c, keys, key_lens, n, out, true) })
}

/// Stores `n` items (pipelined per server); item i is `keys[i]`/`values[i]` with
/// `flags[i]`. MCRS_STATUS_OK when all were stored; MCRS_STATUS_NOT_STORED when
/// some were not: their indices go to `failed[0 .. *n_failed]` (`failed` needs
/// room for n entries). With noreply: MCRS_STATUS_OK and `*n_failed = 0`,
/// except that with ignore_exc the items of a server that failed are reported
/// as not stored (as pymemcache's HashClient does).
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
    ffi_boundary!({
        check_null!(c, n_failed);
        if n > 0 {
            check_null!(values, value_lens, flags, failed);
        }
        let ks = arg_keys!(keys, key_lens, n);
        let items: Vec<(&[u8], &[u8], u32)> = if n == 0 {
            Vec::new()
        } else {
            // SAFETY: checked non-NULL; the caller passes n entries.
            let (vp, vl, fl) = unsafe {
                (
                    std::slice::from_raw_parts(values, n),
                    std::slice::from_raw_parts(value_lens, n),
                    std::slice::from_raw_parts(flags, n),
                )
            };
            let mut items = Vec::with_capacity(n);
            for i in 0..n {
                // SAFETY: value i has vl[i] readable bytes.
                let Some(v) = (unsafe { bytes(vp[i], vl[i]) }) else {
                    set_last_error(format!("value {i} is NULL"));
                    return MCRS_STATUS_NULL_POINTER;
                };
                items.push((ks[i], v, fl[i]));
            }
            items
        };
        let nr = try_ffi!(noreply_arg(noreply));
        let not_stored = try_ffi!(client(c).set_many(&items, exptime, nr));
        // SAFETY: n_failed is non-NULL; failed has room for n >= not_stored.len().
        unsafe {
            if !not_stored.is_empty() {
                std::ptr::copy_nonoverlapping(not_stored.as_ptr(), failed, not_stored.len());
            }
            *n_failed = not_stored.len();
        }
        outcome(if not_stored.is_empty() {
            MCRS_STATUS_OK
        } else {
            MCRS_STATUS_NOT_STORED
        })
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
    ffi_boundary!({
        check_null!(c, key);
        let key = arg_bytes!(key, key_len);
        let nr = try_ffi!(noreply_arg(noreply));
        let found = try_ffi!(client(c).delete(key, nr));
        outcome(if found {
            MCRS_STATUS_OK
        } else {
            MCRS_STATUS_NOT_FOUND
        })
    })
}

/// Deletes `n` keys (pipelined per server). MCRS_STATUS_OK whether or not the
/// keys existed. `keys`/`key_lens` may be NULL when n is 0.
#[no_mangle]
pub extern "C" fn mcrs_client_delete_many(
    c: *const mcrs_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let keys = arg_keys!(keys, key_lens, n);
        let nr = try_ffi!(noreply_arg(noreply));
        try_ffi!(client(c).delete_many(&keys, nr));
        MCRS_STATUS_OK
    })
}

fn arith(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
    new_value: *mut u64,
    incr: bool,
) -> mcrs_status {
    check_null!(c, key, new_value);
    let key = arg_bytes!(key, key_len);
    let nr = try_ffi!(noreply_arg(noreply));
    let cl = client(c);
    let r = try_ffi!(if incr {
        cl.incr(key, delta, nr)
    } else {
        cl.decr(key, delta, nr)
    });
    match (r, nr == Some(true)) {
        (_, true) => MCRS_STATUS_OK,
        (Some(v), false) => {
            // SAFETY: new_value is non-NULL.
            unsafe { *new_value = v };
            MCRS_STATUS_OK
        }
        (None, false) => outcome(MCRS_STATUS_NOT_FOUND),
    }
}

/// Sets a new exptime on `n` keys (pipelined per server). MCRS_STATUS_OK
/// whether or not the keys existed. `keys`/`key_lens` may be NULL when n is 0.
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
        check_null!(c);
        let keys = arg_keys!(keys, key_lens, n);
        let nr = try_ffi!(noreply_arg(noreply));
        try_ffi!(client(c).touch_many(&keys, exptime, nr));
        MCRS_STATUS_OK
    })
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
    ffi_boundary!({ arith(c, key, key_len, delta, noreply, new_value, true) })
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
    ffi_boundary!({ arith(c, key, key_len, delta, noreply, new_value, false) })
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
    ffi_boundary!({
        check_null!(c, key);
        let key = arg_bytes!(key, key_len);
        let nr = try_ffi!(noreply_arg(noreply));
        let found = try_ffi!(client(c).touch(key, exptime, nr));
        outcome(if found {
            MCRS_STATUS_OK
        } else {
            MCRS_STATUS_NOT_FOUND
        })
    })
}

/// Invalidates every item on every server, after `delay` seconds (0: now).
#[no_mangle]
pub extern "C" fn mcrs_client_flush_all(
    c: *const mcrs_client,
    delay: u32,
    noreply: mcrs_noreply,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let nr = try_ffi!(noreply_arg(noreply));
        try_ffi!(client(c).flush_all(delay, nr));
        MCRS_STATUS_OK
    })
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
        check_null!(c, args);
        // SAFETY: args is a NUL-terminated string.
        let Ok(args) = unsafe { CStr::from_ptr(args) }.to_str() else {
            return fail(Error::InvalidArgument(
                "stats arguments are not UTF-8".into(),
            ));
        };
        let stats = try_ffi!(client(c).stats(args));
        let cstr = |s: String| CString::new(s.replace('\0', "?")).unwrap_or_default();
        let entries = stats
            .into_iter()
            .map(|(srv, n, v)| [cstr(srv), cstr(n), cstr(v)])
            .collect();
        // SAFETY: out is non-NULL.
        unsafe { *out = Box::into_raw(Box::new(mcrs_stats(entries))) };
        MCRS_STATUS_OK
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
        let v = try_ffi!(client(c).version());
        if v.len() + 1 > cap {
            set_last_error(format!(
                "version needs {} bytes, buffer has {cap}",
                v.len() + 1
            ));
            return MCRS_STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: buf has room for cap >= v.len() + 1 bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(v.as_ptr(), buf.cast::<u8>(), v.len());
            *buf.add(v.len()) = 0;
        }
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
        let nr = try_ffi!(noreply_arg(noreply));
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
        let nr = try_ffi!(noreply_arg(noreply));
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
