//! The C ABI. No logic lives here: each function checks its pointers, converts
//! arguments, calls the Rust API inside a panic boundary, and maps the outcome
//! to an [`mcrs_status`].
//!
//! Conventions (they flow into `include/mcrs.h`):
//! - every pointer argument is checked; NULL gives `MCRS_STATUS_NULL_POINTER`;
//! - out-parameters are written only on success; handle outs are set to NULL
//!   on failure;
//! - every `_new` has a `_free` that accepts NULL;
//! - a panic never crosses the boundary: it becomes `MCRS_STATUS_PANIC`;
//! - after a failure, `mcrs_last_error` gives this thread's detail.
#![allow(non_camel_case_types)]
// The exported functions take raw pointers from C and check them themselves;
// marking them `unsafe` would change nothing for C callers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod client;
pub mod config;
pub mod event_loop;
pub mod loop_meta;
pub mod loop_owner;
pub mod meta;
pub mod meta_many;
pub mod shape;
pub mod status;
pub mod tls;
pub mod value;

pub use status::mcrs_status;

/// Longest key memcached accepts, key prefix included.
pub const MCRS_MAX_KEY_LEN: usize = 250;
const _: () = assert!(MCRS_MAX_KEY_LEN == crate::client::MAX_KEY_LEN);

/// Runs `$body` (which evaluates to an `mcrs_status`) so that no panic
/// escapes into C: a panic becomes `MCRS_STATUS_PANIC` with a last-error detail.
macro_rules! ffi_boundary {
    ($body:block) => {{
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || -> $crate::ffi::mcrs_status { $body },
        )) {
            Ok(s) => s,
            Err(_) => {
                $crate::ffi::status::set_last_error(
                    "internal panic caught at the mcrs API boundary",
                );
                $crate::ffi::mcrs_status::MCRS_STATUS_PANIC
            }
        }
    }};
}
pub(crate) use ffi_boundary;

/// Same boundary for functions that return a plain value: `$default` on panic.
macro_rules! ffi_boundary_value {
    ($default:expr, $body:block) => {{
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => {
                $crate::ffi::status::set_last_error(
                    "internal panic caught at the mcrs API boundary",
                );
                $default
            }
        }
    }};
}
pub(crate) use ffi_boundary_value;

/// Returns `MCRS_STATUS_NULL_POINTER` from the enclosing boundary when any of
/// the named pointers is NULL.
macro_rules! check_null {
    ($($p:ident),+) => {
        $(
            if $p.is_null() {
                $crate::ffi::status::set_last_error(concat!("argument `", stringify!($p), "` is NULL"));
                return $crate::ffi::mcrs_status::MCRS_STATUS_NULL_POINTER;
            }
        )+
    };
}
pub(crate) use check_null;

/// Unwraps a `Result<T, Error>` or returns its status from the enclosing boundary.
macro_rules! try_ffi {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return $crate::ffi::status::fail(err),
        }
    };
}
pub(crate) use try_ffi;

/// Unwraps an argument check or returns its status (its detail already recorded).
macro_rules! arg {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return s,
        }
    };
}
pub(crate) use arg;

/// Borrows `(ptr, len)` as a byte slice. A zero length needs no pointer; a
/// non-zero length with a NULL pointer gives None.
///
/// # Safety
/// When non-NULL, `ptr` must point to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        Some(&[])
    } else if ptr.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(ptr, len))
    }
}
