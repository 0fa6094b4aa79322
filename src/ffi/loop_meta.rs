//! The event loop's meta commands in C: `mcrs_loop_lease_get`,
//! `mcrs_loop_lease_set`, `mcrs_loop_invalidate` and `mcrs_loop_meta_get`
//! (the loop counterparts of `ffi/meta.rs`; the rules of `mcrs_loop`).

use std::ffi::c_void;

use super::event_loop::{cb_of, get_cb, mcrs_get_cb, mcrs_loop, mcrs_status_cb, status_cb, submit};
use super::ffi_boundary;
use super::meta::mcrs_lease;
use super::shape::{arg_bytes, arg_key, Arg};
use super::status::{fail, mcrs_status, mcrs_status::*};
use super::value::mcrs_value;
use crate::lease::{Lease, LeaseState, MetaOp};
use crate::request::{Outcome, Request};
use crate::value::OwnedValue;

/// Called with the outcome of `mcrs_loop_lease_get`. For MCRS_STATUS_OK,
/// `state` tells what was found, `token` is the lease token for WON (pass
/// it to `mcrs_loop_lease_set`; 0 otherwise) and `value` is the value for
/// HIT and STALE and for WON on a stale or expiring item (the callee's:
/// free it with `mcrs_value_free`), NULL for WAIT and for WON on a miss.
/// For any other status: `state` is MCRS_LEASE_WAIT, `token` 0 and `value`
/// NULL (`mcrs_last_error` has the detail during the call).
pub type mcrs_lease_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        status: mcrs_status,
        state: mcrs_lease,
        token: u64,
        value: *mut mcrs_value,
    ),
>;

/// A meta request of one key (`value` only for the lease set).
fn meta_req<'a>(op: MetaOp, key: *const u8, key_len: usize, value: &'a [u8]) -> Arg<Request<'a>> {
    Ok(Request::Meta {
        op,
        key: arg_key(key, key_len)?,
        value,
    })
}

/// Delivers a lease get's outcome to a C `mcrs_lease_cb`.
///
/// # Safety
/// `f` is an `mcrs_lease_cb` and `ud` its userdata, as given to
/// `mcrs_loop_lease_get`.
unsafe fn deliver_lease(f: usize, ud: usize, o: Outcome) {
    // SAFETY: f was made from an mcrs_lease_cb by `mcrs_loop_lease_get`.
    let f: mcrs_lease_cb = unsafe { std::mem::transmute::<usize, mcrs_lease_cb>(f) };
    let ud = ud as *mut c_void;
    let (st, state, token, v) = match o {
        Outcome::Lease(Ok(Lease {
            state,
            token,
            value,
        })) => (
            MCRS_STATUS_OK,
            state.into(),
            token,
            value.map_or(std::ptr::null_mut(), OwnedValue::into_raw),
        ),
        Outcome::Lease(Err(e)) => (fail(e), LeaseState::Wait.into(), 0, std::ptr::null_mut()),
        _ => return,
    };
    match f {
        // SAFETY: the caller's callback, on the loop's thread.
        Some(f) => unsafe { f(ud, st, state, token, v) },
        None => super::value::mcrs_value_free(v),
    }
}

/// The loop's lease get (meta `mg` with vivify-on-miss; see
/// `mcrs_client_lease_get`): `cb` gets the state, the token and the value.
/// Of many callers that miss the same cold key, exactly one gets WON; the
/// others get WAIT until the winner's `mcrs_loop_lease_set` lands (retry
/// them after a short delay) or the lease expires after `lease_ttl`
/// seconds (> 0; 0 is refused with MCRS_STATUS_INVALID_ARGUMENT). With
/// ignore_exc a failed read is WON with token 0.
#[no_mangle]
pub extern "C" fn mcrs_loop_lease_get(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    lease_ttl: u32,
    cb: mcrs_lease_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    let f = cb.map_or(0, |f| f as usize);
    ffi_boundary!({
        submit(
            l,
            meta_req(MetaOp::LeaseGet { lease_ttl }, key, key_len, b""),
            cb_of(deliver_lease, f, userdata),
        )
    })
}

/// The loop's lease set (meta `ms` with `C<token>`; see
/// `mcrs_client_lease_set`): `cb` gets MCRS_STATUS_OK when stored and
/// MCRS_STATUS_EXISTS when the lease was lost (the item was invalidated,
/// replaced or expired since the lease was granted: the value is not
/// stored, so a recompute that lost a race never reads as fresh). Token 0
/// stores unconditionally. The value is copied at submission.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mcrs_loop_lease_set(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: u32,
    token: u64,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        let v = match arg_bytes(value, value_len, "value") {
            Ok(v) => v,
            Err(s) => return s,
        };
        let op = MetaOp::LeaseSet {
            flags,
            exptime,
            token,
        };
        submit(l, meta_req(op, key, key_len, v), status_cb(cb, userdata))
    })
}

/// The loop's invalidate (meta `md` with `I`; see `mcrs_client_invalidate`):
/// marks `key` stale instead of deleting it, so the next lease get wins with
/// the stale value and the others get it as STALE. `stale_ttl` > 0 also sets
/// how many seconds the stale item lives. `cb` gets MCRS_STATUS_OK, or
/// MCRS_STATUS_NOT_FOUND when the key was not there.
#[no_mangle]
pub extern "C" fn mcrs_loop_invalidate(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    stale_ttl: u32,
    cb: mcrs_status_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            meta_req(MetaOp::Invalidate { stale_ttl }, key, key_len, b""),
            status_cb(cb, userdata),
        )
    })
}

/// The loop's meta get (see `mcrs_client_meta_get`): `cb` gets the value,
/// which also tells its TTL left, last access and hit-before
/// (`mcrs_value_ttl`, ...), or MCRS_STATUS_NOT_FOUND on a miss.
#[no_mangle]
pub extern "C" fn mcrs_loop_meta_get(
    l: *mut mcrs_loop,
    key: *const u8,
    key_len: usize,
    cb: mcrs_get_cb,
    userdata: *mut c_void,
) -> mcrs_status {
    ffi_boundary!({
        submit(
            l,
            meta_req(MetaOp::Get, key, key_len, b""),
            get_cb(cb, userdata),
        )
    })
}
