//! The C ABI of meta get, leases and stale-while-revalidate (`crate::lease`):
//! `mcrs_client_lease_get`, `_lease_get_or_wait`, `_lease_set`,
//! `_invalidate`, `_meta_get`, the meta accessors of `mcrs_value`, and the
//! meta config setters.

use std::time::Duration;

use super::client::{client, mcrs_client};
use super::config::mcrs_config;
use super::shape::{arg_bytes, arg_key, Arg};
use super::status::{fail, mcrs_status, mcrs_status::*, outcome};
use super::value::mcrs_value;
use super::{arg, check_null, ffi_boundary, ffi_boundary_value, try_ffi};
use crate::client::Client;
use crate::error::Error;
use crate::lease::{Lease, LeaseState};
use crate::protocol::meta::MetaReply;
use crate::value::OwnedValue;

/// What `mcrs_client_lease_get` found. Values are never renumbered.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mcrs_lease {
    /// A fresh value.
    MCRS_LEASE_HIT = 0,
    /// A miss or a stale value (or, with a recache threshold, a value about
    /// to expire), and this caller holds the lease: recompute, then
    /// `mcrs_client_lease_set` with the token.
    MCRS_LEASE_WON = 1,
    /// A stale value; another caller is recomputing.
    MCRS_LEASE_STALE = 2,
    /// A miss; another caller holds the lease: retry shortly (or use
    /// `mcrs_client_lease_get_or_wait`).
    MCRS_LEASE_WAIT = 3,
}

impl From<LeaseState> for mcrs_lease {
    fn from(s: LeaseState) -> mcrs_lease {
        match s {
            LeaseState::Hit => mcrs_lease::MCRS_LEASE_HIT,
            LeaseState::Won => mcrs_lease::MCRS_LEASE_WON,
            LeaseState::Stale => mcrs_lease::MCRS_LEASE_STALE,
            LeaseState::Wait => mcrs_lease::MCRS_LEASE_WAIT,
        }
    }
}

/// A value read with meta get, in one block (copied once from the read buffer).
fn meta_value(data: &[u8], r: &MetaReply<'_>) -> OwnedValue {
    let mut v = OwnedValue::new(data, r.flags.unwrap_or(0), r.cas);
    v.set_meta(r.ttl, r.last_access, r.hit_before);
    v
}

/// Shared body of the two lease gets: checks, clears the outs, runs `get`.
fn lease_out(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    state: *mut mcrs_lease,
    token: *mut u64,
    out: *mut *mut mcrs_value,
    get: impl FnOnce(&Client, &[u8]) -> Result<Lease<OwnedValue>, Error>,
) -> mcrs_status {
    check_null!(out);
    // SAFETY: out is non-NULL.
    unsafe { *out = std::ptr::null_mut() };
    check_null!(c, state, token);
    let key: Arg<&[u8]> = arg_key(key, key_len);
    let key = arg!(key);
    let lease = try_ffi!(get(client(c), key));
    // SAFETY: the out pointers were checked non-NULL.
    unsafe {
        *state = lease.state.into();
        *token = lease.token;
        *out = lease
            .value
            .map_or(std::ptr::null_mut(), OwnedValue::into_raw);
    }
    MCRS_STATUS_OK
}

/// Lease get (meta `mg` with vivify-on-miss): MCRS_STATUS_OK with `*state`
/// telling what was found. `*out` is the value (free it with
/// `mcrs_value_free`) for HIT and STALE, and for WON on a stale or expiring
/// item; NULL for WAIT and for WON on a miss. `*token` is the lease token
/// for WON (pass it to `mcrs_client_lease_set`), 0 otherwise. A lease
/// nobody fulfils expires after `lease_ttl` seconds (> 0), then the next
/// caller wins. With ignore_exc, a failed read is WON with token 0 (compute
/// without a lease). On failure `*out = NULL` and `*state`, `*token` are
/// left alone. A server without meta commands gives
/// MCRS_STATUS_UNKNOWN_COMMAND.
#[no_mangle]
pub extern "C" fn mcrs_client_lease_get(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    lease_ttl: u32,
    state: *mut mcrs_lease,
    token: *mut u64,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({
        lease_out(c, key, key_len, state, token, out, |cl, k| {
            cl.lease_get_with(k, lease_ttl, meta_value)
        })
    })
}

/// `mcrs_client_lease_get`, retrying a WAIT with backoff (1 ms, doubling up
/// to 50 ms) for up to `wait_ms`: usually the winner's value lands meanwhile
/// and the result is HIT. Still WAIT (with MCRS_STATUS_OK) when `wait_ms`
/// ran out; the caller then decides whether to compute without the lease.
#[no_mangle]
pub extern "C" fn mcrs_client_lease_get_or_wait(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    lease_ttl: u32,
    wait_ms: u32,
    state: *mut mcrs_lease,
    token: *mut u64,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({
        lease_out(c, key, key_len, state, token, out, |cl, k| {
            let wait = Duration::from_millis(wait_ms.into());
            cl.lease_get_or_wait_with(k, lease_ttl, wait, meta_value)
        })
    })
}

/// Stores the value recomputed under a lease: MCRS_STATUS_OK when stored,
/// MCRS_STATUS_EXISTS when the lease was lost (the item was invalidated,
/// replaced or expired since the lease was granted: the value is not
/// stored, so a recompute that lost a race never reads as fresh). Token 0
/// stores unconditionally. Always waits for the reply.
#[no_mangle]
pub extern "C" fn mcrs_client_lease_set(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    token: u64,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let key = arg!(arg_key(key, key_len));
        let value = arg!(arg_bytes(value, value_len, "value"));
        match client(c).lease_set(key, value, flags, exptime, token) {
            Ok(true) => MCRS_STATUS_OK,
            Ok(false) => outcome(MCRS_STATUS_EXISTS),
            Err(e) => fail(e),
        }
    })
}

/// Marks `key` stale instead of deleting it (meta `md` with `I`): every
/// outstanding lease on it is lost, the next lease get wins with the stale
/// value and the others get it as STALE until the new value lands.
/// `stale_ttl` > 0 also sets how many seconds the stale item lives; 0
/// keeps its TTL. MCRS_STATUS_NOT_FOUND when the key was not there.
#[no_mangle]
pub extern "C" fn mcrs_client_invalidate(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    stale_ttl: u32,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(c);
        let key = arg!(arg_key(key, key_len));
        match client(c).invalidate(key, stale_ttl) {
            Ok(true) => MCRS_STATUS_OK,
            Ok(false) => outcome(MCRS_STATUS_NOT_FOUND),
            Err(e) => fail(e),
        }
    })
}

/// Meta get: like `mcrs_client_gets`, and the value also tells its TTL left
/// (`mcrs_value_ttl`), last access (`mcrs_value_last_access`) and whether it
/// was read before (`mcrs_value_hit_before`). MCRS_STATUS_NOT_FOUND with
/// `*out = NULL` on a miss (and for failures with ignore_exc).
#[no_mangle]
pub extern "C" fn mcrs_client_meta_get(
    c: *const mcrs_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut mcrs_value,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(out);
        // SAFETY: out is non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        check_null!(c);
        let key = arg!(arg_key(key, key_len));
        match client(c).meta_get_with(key, meta_value) {
            Ok(Some(v)) => {
                // SAFETY: out is non-NULL.
                unsafe { *out = v.into_raw() };
                MCRS_STATUS_OK
            }
            Ok(None) => outcome(MCRS_STATUS_NOT_FOUND),
            Err(e) => fail(e),
        }
    })
}

/// Seconds of TTL the item had left when read with a meta command (meta
/// get, lease get); -1 when it does not expire; -2 when unknown (read with a
/// classic command, or NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_ttl(v: *const mcrs_value) -> i64 {
    // SAFETY: a non-NULL v came from mcrs and is alive.
    ffi_boundary_value!(-2, {
        unsafe { v.as_ref() }.map_or(-2, |v| i64::from(v.ttl))
    })
}

/// Seconds since the item was last accessed, before this read (meta get);
/// -1 when unknown (other reads, or NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_last_access(v: *const mcrs_value) -> i64 {
    // SAFETY: as above.
    ffi_boundary_value!(-1, {
        unsafe { v.as_ref() }.map_or(-1, |v| i64::from(v.last_access))
    })
}

/// 1 when the item had been read before this read, 0 when not (meta get);
/// -1 when unknown (other reads, or NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_hit_before(v: *const mcrs_value) -> i32 {
    // SAFETY: as above.
    ffi_boundary_value!(-1, {
        unsafe { v.as_ref() }.map_or(-1, |v| i32::from(v.hit_before))
    })
}

/// Meta commands (lease and meta get, lease_set, invalidate) send a key
/// that is not a valid text key base64-encoded instead of refusing it: any
/// non-empty bytes whose base64 form, key prefix included, fits 250 bytes
/// (186 raw bytes). Such keys work with meta commands only. Default off.
#[no_mangle]
pub extern "C" fn mcrs_config_set_base64_keys(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL; the caller owns cfg for the call.
        unsafe { &mut *cfg }.0.base64_keys(on);
        MCRS_STATUS_OK
    })
}

/// Early recache: a lease get on a fresh item with less than `seconds` of
/// TTL left makes one caller WON (with the value; the others keep getting
/// HIT), so it recomputes before the item expires. 0 (the default): off.
#[no_mangle]
pub extern "C" fn mcrs_config_set_recache_threshold(
    cfg: *mut mcrs_config,
    seconds: u32,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        if seconds > 60 * 60 * 24 * 30 {
            return fail(Error::InvalidArgument(
                "recache threshold above 30 days".into(),
            ));
        }
        // SAFETY: checked non-NULL; the caller owns cfg for the call.
        unsafe { &mut *cfg }.0.recache_threshold(seconds);
        MCRS_STATUS_OK
    })
}
