//! Results handed to C: one value, a list of values, a list of stats.

use std::ffi::{c_char, CString};

use super::shape::key_status;
use super::status::copy_detail;
use super::status::{fail, mcrs_status, mcrs_status::*};
use super::{check_null, ffi_boundary, ffi_boundary_value};
use crate::error::Error;
pub use crate::value::{mcrs_value, mcrs_values, OwnedValue, ValuesBuilder};

/// `stats` results: (server, name, value) entries. Owned by the caller, freed
/// with `mcrs_stats_free`.
pub struct mcrs_stats(pub(crate) Vec<[CString; 3]>);

/// The value's bytes (valid until the value is freed; not NUL-terminated).
/// NULL for a NULL value; a non-NULL pointer for an empty value.
#[no_mangle]
pub extern "C" fn mcrs_value_data(v: *const mcrs_value) -> *const u8 {
    ffi_boundary_value!(std::ptr::null(), {
        // SAFETY: a non-NULL v came from mcrs and is alive.
        match unsafe { v.as_ref() } {
            Some(v) => v.data,
            None => std::ptr::null(),
        }
    })
}

/// The value's length in bytes (0 for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_len(v: *const mcrs_value) -> usize {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.len) })
}

/// The value's 32-bit flags (0 for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_flags(v: *const mcrs_value) -> u32 {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.flags) })
}

/// The cas unique (0 when the value was not read with gets/gats, or for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_cas(v: *const mcrs_value) -> u64 {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.cas) })
}

/// Frees a value returned by get/gets/gat/gats. NULL is ignored. Do not free a
/// value borrowed from an `mcrs_values`. A small value's memory is kept for
/// the next value read on the calling thread, so a value used after it was
/// freed may show another value's bytes (memory checkers see no error then).
/// Thread-safe: a value may be freed on any thread.
#[no_mangle]
pub extern "C" fn mcrs_value_free(v: *mut mcrs_value) {
    ffi_boundary_value!((), {
        if !v.is_null() {
            // SAFETY: v came from OwnedValue::into_raw and is freed once.
            unsafe { OwnedValue::free_raw(v) };
        }
    })
}

/// Number of entries (the number of keys asked for); 0 for NULL.
#[no_mangle]
pub extern "C" fn mcrs_values_len(vs: *const mcrs_values) -> usize {
    // SAFETY: a non-NULL vs came from mcrs and is alive.
    ffi_boundary_value!(0, {
        unsafe { vs.as_ref() }.map_or(0, |vs| vs.entries.len())
    })
}

/// Entry `i`: the value of the caller's key i, or NULL for a miss (or when i is
/// out of range, or vs is NULL). The value is borrowed from `vs`: valid until
/// `mcrs_values_free(vs)`; never free it on its own.
#[no_mangle]
pub extern "C" fn mcrs_values_get(vs: *const mcrs_values, i: usize) -> *const mcrs_value {
    ffi_boundary_value!(std::ptr::null(), {
        // SAFETY: as above.
        match unsafe { vs.as_ref() } {
            Some(vs) => vs
                .get(i)
                .map_or(std::ptr::null(), |v| v as *const mcrs_value),
            _ => std::ptr::null(),
        }
    })
}

/// The outcome of entry `i`: MCRS_STATUS_OK for a hit, MCRS_STATUS_NOT_FOUND
/// for a miss, or the failure of the key's server (MCRS_STATUS_TIMEOUT,
/// MCRS_STATUS_CONNECT_FAILED, MCRS_STATUS_SERVER_DOWN, ...) when the list
/// came with MCRS_STATUS_PARTIAL. MCRS_STATUS_NULL_POINTER for NULL,
/// MCRS_STATUS_INVALID_ARGUMENT when `i` is out of range.
#[no_mangle]
pub extern "C" fn mcrs_values_status(vs: *const mcrs_values, i: usize) -> mcrs_status {
    ffi_boundary!({
        check_null!(vs);
        // SAFETY: vs is non-NULL and alive.
        key_status(unsafe { &*vs }.results(), i)
    })
}

/// Copies the detail of entry `i`'s failure into `buf` (NUL-terminated,
/// truncated to `len - 1` bytes) and returns its full length, like
/// `mcrs_last_error`; 0 when the entry did not fail (or vs is NULL, or i is
/// out of range). `buf` may be NULL when `len` is 0.
#[no_mangle]
pub extern "C" fn mcrs_values_error(
    vs: *const mcrs_values,
    i: usize,
    buf: *mut c_char,
    len: usize,
) -> usize {
    ffi_boundary_value!(0, {
        // SAFETY: a non-NULL vs came from mcrs and is alive.
        let Some(e) = unsafe { vs.as_ref() }.and_then(|vs| vs.results().error(i)) else {
            return 0;
        };
        copy_detail(&e.to_string(), buf, len)
    })
}

/// Frees a result list and every value in it. NULL is ignored.
#[no_mangle]
pub extern "C" fn mcrs_values_free(vs: *mut mcrs_values) {
    ffi_boundary_value!((), {
        if !vs.is_null() {
            // SAFETY: vs came from Box::into_raw in this crate and is freed once.
            drop(unsafe { Box::from_raw(vs) });
        }
    })
}

/// Number of (server, name, value) entries; 0 for NULL.
#[no_mangle]
pub extern "C" fn mcrs_stats_len(s: *const mcrs_stats) -> usize {
    // SAFETY: a non-NULL s came from mcrs and is alive.
    ffi_boundary_value!(0, { unsafe { s.as_ref() }.map_or(0, |s| s.0.len()) })
}

/// Entry `i` of a stats result: the server address, the stat name and its
/// value, as NUL-terminated strings borrowed from `s` (valid until
/// `mcrs_stats_free(s)`). `i` out of range gives MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_stats_get(
    s: *const mcrs_stats,
    i: usize,
    server: *mut *const c_char,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(s, server, name, value);
        // SAFETY: checked non-NULL; s is alive.
        let s = unsafe { &*s };
        let Some([srv, n, v]) = s.0.get(i) else {
            return fail(Error::InvalidArgument(format!(
                "stats index {i} out of range (len {})",
                s.0.len()
            )));
        };
        // SAFETY: the out pointers were checked non-NULL.
        unsafe {
            *server = srv.as_ptr();
            *name = n.as_ptr();
            *value = v.as_ptr();
        }
        MCRS_STATUS_OK
    })
}

/// Frees a stats result. NULL is ignored.
#[no_mangle]
pub extern "C" fn mcrs_stats_free(s: *mut mcrs_stats) {
    ffi_boundary_value!((), {
        if !s.is_null() {
            // SAFETY: s came from Box::into_raw in this crate and is freed once.
            drop(unsafe { Box::from_raw(s) });
        }
    })
}
