//! Status codes, their static descriptions, and the per-thread error detail.

use std::cell::RefCell;
use std::ffi::c_char;

use crate::error::Error;

/// The result of every fallible mcrs call. Values are stable: they are never
/// renumbered, and new ones are only ever appended.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mcrs_status {
    /// Success.
    MCRS_STATUS_OK = 0,
    /// A miss: the key is not on the server (not a failure).
    MCRS_STATUS_NOT_FOUND = 1,
    /// add/replace/append/prepend did not store (the condition was not met).
    MCRS_STATUS_NOT_STORED = 2,
    /// cas: the item changed since its cas unique was read.
    MCRS_STATUS_EXISTS = 3,
    /// The key is empty, longer than 250 bytes with its prefix, or has a
    /// forbidden byte. Raised before any I/O.
    MCRS_STATUS_INVALID_KEY = 4,
    /// An argument out of range (exptime > INT32_MAX, unknown enum value, bad
    /// server address, zero timeout, ...).
    MCRS_STATUS_INVALID_ARGUMENT = 5,
    /// A required pointer argument was NULL.
    MCRS_STATUS_NULL_POINTER = 6,
    /// The server answered CLIENT_ERROR (e.g. incr of a non-numeric value).
    MCRS_STATUS_CLIENT_ERROR = 7,
    /// The server answered SERVER_ERROR (e.g. object too large for cache).
    MCRS_STATUS_SERVER_ERROR = 8,
    /// The server answered ERROR: it does not know the command.
    MCRS_STATUS_UNKNOWN_COMMAND = 9,
    /// No connection could be made within connect_timeout.
    MCRS_STATUS_CONNECT_FAILED = 10,
    /// A socket error.
    MCRS_STATUS_IO = 11,
    /// The operation did not complete within the timeout (or no pooled
    /// connection became free in time).
    MCRS_STATUS_TIMEOUT = 12,
    /// The server closed the connection in the middle of a reply.
    MCRS_STATUS_UNEXPECTED_CLOSE = 13,
    /// The server sent bytes that are not a valid reply.
    MCRS_STATUS_PROTOCOL = 14,
    /// No server is configured, or none is alive.
    MCRS_STATUS_NO_SERVERS = 15,
    /// The caller's buffer is too small for the result.
    MCRS_STATUS_BUFFER_TOO_SMALL = 16,
    /// A bug in mcrs was caught at the API boundary; the call had no effect
    /// that can be relied on.
    MCRS_STATUS_PANIC = 17,
    /// The key's server failed recently and is not retried before the
    /// retry timeout has passed (clusters only; reads give misses with
    /// ignore_exc). After retry_attempts failures the server leaves the ring
    /// and its keys move to the live servers.
    MCRS_STATUS_SERVER_DOWN = 18,
    /// The request did not complete: its event loop was freed (or the
    /// request was cancelled) first.
    MCRS_STATUS_CANCELLED = 19,
    /// The TLS handshake or the server's certificate verification failed
    /// (the detail says which: unknown CA, name mismatch, expired, ...).
    MCRS_STATUS_TLS = 20,
    /// The server refused the configured credentials, or demands
    /// authentication that was not configured.
    MCRS_STATUS_AUTH_FAILED = 21,
    /// A multi-key command completed for some keys only: the servers of the
    /// others failed. The per-key outcomes say which (`mcrs_values_status`).
    MCRS_STATUS_PARTIAL = 22,
    /// The server announced a value larger than the configured maximum
    /// value size; it was not read (the connection is closed).
    MCRS_STATUS_VALUE_TOO_LARGE = 23,
}

use mcrs_status::*;

impl From<&Error> for mcrs_status {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidKey(_) => MCRS_STATUS_INVALID_KEY,
            Error::InvalidArgument(_) => MCRS_STATUS_INVALID_ARGUMENT,
            Error::Client(_) => MCRS_STATUS_CLIENT_ERROR,
            Error::Server(_) => MCRS_STATUS_SERVER_ERROR,
            Error::UnknownCommand => MCRS_STATUS_UNKNOWN_COMMAND,
            Error::ConnectFailed { .. } => MCRS_STATUS_CONNECT_FAILED,
            Error::Io(_) => MCRS_STATUS_IO,
            Error::Timeout(_) => MCRS_STATUS_TIMEOUT,
            Error::UnexpectedClose => MCRS_STATUS_UNEXPECTED_CLOSE,
            Error::Protocol(_) => MCRS_STATUS_PROTOCOL,
            Error::NoServers => MCRS_STATUS_NO_SERVERS,
            Error::ServerDown(_) => MCRS_STATUS_SERVER_DOWN,
            Error::Cancelled(_) => MCRS_STATUS_CANCELLED,
            Error::Tls(_) => MCRS_STATUS_TLS,
            Error::AuthFailed(_) => MCRS_STATUS_AUTH_FAILED,
            Error::ValueTooLarge(_) => MCRS_STATUS_VALUE_TOO_LARGE,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(msg: impl Into<String>) {
    let msg = msg.into();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Records `e` as this thread's last error and returns its status.
pub(crate) fn fail(e: Error) -> mcrs_status {
    let s = mcrs_status::from(&e);
    set_last_error(e.to_string());
    s
}

/// Records a non-error outcome (miss, not stored, exists) as the last detail.
pub(crate) fn outcome(s: mcrs_status) -> mcrs_status {
    if s != MCRS_STATUS_OK {
        set_last_error(status_text(s as u32));
    }
    s
}

fn status_text(s: u32) -> &'static str {
    status_cstr(s).strip_suffix('\0').unwrap_or_default()
}

fn status_cstr(s: u32) -> &'static str {
    match s {
        0 => "ok\0",
        1 => "not found\0",
        2 => "not stored\0",
        3 => "exists (cas mismatch)\0",
        4 => "invalid key\0",
        5 => "invalid argument\0",
        6 => "null pointer argument\0",
        7 => "client error reported by the server\0",
        8 => "server error reported by the server\0",
        9 => "unknown command\0",
        10 => "connection failed\0",
        11 => "i/o error\0",
        12 => "timeout\0",
        13 => "connection closed unexpectedly\0",
        14 => "protocol error\0",
        15 => "no servers available\0",
        16 => "buffer too small\0",
        17 => "internal panic (bug in mcrs)\0",
        18 => "server down (failed recently, waiting for retry)\0",
        19 => "cancelled\0",
        20 => "TLS handshake or certificate verification failed\0",
        21 => "authentication failed\0",
        22 => "partial result: some servers failed\0",
        23 => "value larger than the configured maximum\0",
        _ => "unknown status\0",
    }
}

/// An `mcrs_status` as it arrives from C: the raw integer, since a C caller
/// can pass any value and a Rust enum must never hold one outside its list.
/// The header spells it `mcrs_status` (cbindgen.toml renames it).
pub type mcrs_status_raw = std::ffi::c_int;

/// A static, NUL-terminated description of `status`. Any value is accepted:
/// unknown ones give "unknown status". Never NULL; never free it.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn mcrs_status_str(status: mcrs_status_raw) -> *const c_char {
    let known = u32::try_from(status).unwrap_or(u32::MAX);
    status_cstr(known).as_ptr().cast()
}

/// Copies the calling thread's last error detail into `buf` (NUL-terminated,
/// truncated to `len - 1` bytes) and returns its full length without the NUL,
/// like snprintf: call with `len == 0` (buf may then be NULL) to learn the size.
/// Returns 0 when the thread had no error. Thread-safe (per-thread state).
#[no_mangle]
pub extern "C" fn mcrs_last_error(buf: *mut c_char, len: usize) -> usize {
    let r = std::panic::catch_unwind(|| LAST_ERROR.with(|e| copy_detail(&e.borrow(), buf, len)));
    r.unwrap_or(0)
}

/// Copies `msg` into `buf` as snprintf would: NUL-terminated, truncated to
/// `len - 1` bytes; returns the full length. Nothing is written when buf is
/// NULL or len is 0.
pub(crate) fn copy_detail(msg: &str, buf: *mut c_char, len: usize) -> usize {
    let msg = msg.as_bytes();
    if !buf.is_null() && len > 0 {
        let n = msg.len().min(len - 1);
        // SAFETY: the caller promises buf has room for len bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}

/// The library version, static and NUL-terminated.
#[no_mangle]
pub extern "C" fn mcrs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
