//! The C ABI of TLS and memcached `-Y` authentication: `mcrs_config`
//! setters over the builder methods of src/tls.rs and src/auth.rs.

use std::ffi::{c_char, CStr};

use super::config::mcrs_config;
use super::status::{mcrs_status, mcrs_status::*, set_last_error};
use super::{bytes, check_null, ffi_boundary, try_ffi};
use crate::client::ClientBuilder;
use crate::error::{Error, Result};

fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: the caller passes a NUL-terminated string (checked non-NULL).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::InvalidArgument(format!("{what} is not valid UTF-8")))
}

/// Shared body of the string setters.
fn set_str(
    cfg: *mut mcrs_config,
    s: *const c_char,
    what: &str,
    apply: fn(&mut ClientBuilder, &str) -> Result<()>,
) -> mcrs_status {
    check_null!(cfg, s);
    let s = try_ffi!(c_str(s, what));
    // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
    try_ffi!(apply(&mut unsafe { &mut *cfg }.0, s));
    MCRS_STATUS_OK
}

/// Shared body of the PEM-bytes setters.
fn set_pem(
    cfg: *mut mcrs_config,
    pem: *const u8,
    len: usize,
    apply: fn(&mut ClientBuilder, &[u8]) -> Result<()>,
) -> mcrs_status {
    check_null!(cfg);
    // SAFETY: the caller passes len readable bytes.
    let Some(pem) = (unsafe { bytes(pem, len) }) else {
        set_last_error("argument `pem` is NULL");
        return MCRS_STATUS_NULL_POINTER;
    };
    // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
    try_ffi!(apply(&mut unsafe { &mut *cfg }.0, pem));
    MCRS_STATUS_OK
}

/// TLS on every connection (default off). Servers are verified against the
/// system roots unless a CA is set. TLS settings given while TLS is off make
/// `mcrs_client_new` fail with MCRS_STATUS_INVALID_ARGUMENT (nothing is sent
/// in the clear by mistake). Event loops (`mcrs_loop_*`) speak TLS too: the
/// handshake runs non-blocking within the connect timeout, before the
/// `-Y` login and the requests. A handshake that fails gives
/// MCRS_STATUS_TLS; `mcrs_last_error` says why (unknown CA, name mismatch,
/// expired certificate, handshake timeout, a server that does not speak TLS).
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
        unsafe { &mut *cfg }.0.tls(on);
        MCRS_STATUS_OK
    })
}

/// The CA certificates (a PEM file) that sign the servers' certificates,
/// instead of the system roots. The file is read now: a missing file or one
/// without a certificate gives MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_ca_file(
    cfg: *mut mcrs_config,
    path: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        set_str(cfg, path, "TLS CA file path", |b, p| {
            b.tls_ca_file(p).map(drop)
        })
    })
}

/// `mcrs_config_set_tls_ca_file` with the PEM bytes themselves.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_ca_pem(
    cfg: *mut mcrs_config,
    pem: *const u8,
    len: usize,
) -> mcrs_status {
    ffi_boundary!({ set_pem(cfg, pem, len, |b, p| b.tls_ca_pem(p).map(drop)) })
}

/// The client's certificate chain (a PEM file), for servers that demand
/// mutual TLS; needs `mcrs_config_set_tls_key_file` too.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_cert_file(
    cfg: *mut mcrs_config,
    path: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        set_str(cfg, path, "TLS certificate file path", |b, p| {
            b.tls_cert_file(p).map(drop)
        })
    })
}

/// `mcrs_config_set_tls_cert_file` with the PEM bytes themselves.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_cert_pem(
    cfg: *mut mcrs_config,
    pem: *const u8,
    len: usize,
) -> mcrs_status {
    ffi_boundary!({ set_pem(cfg, pem, len, |b, p| b.tls_cert_pem(p).map(drop)) })
}

/// The private key of the client certificate (a PEM file: PKCS#8, PKCS#1 or
/// SEC1). A key that does not match the certificate makes `mcrs_client_new`
/// fail with MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_key_file(
    cfg: *mut mcrs_config,
    path: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        set_str(cfg, path, "TLS key file path", |b, p| {
            b.tls_key_file(p).map(drop)
        })
    })
}

/// `mcrs_config_set_tls_key_file` with the PEM bytes themselves.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_key_pem(
    cfg: *mut mcrs_config,
    pem: *const u8,
    len: usize,
) -> mcrs_status {
    ffi_boundary!({ set_pem(cfg, pem, len, |b, p| b.tls_key_pem(p).map(drop)) })
}

/// The name (a DNS name, or an IP address) the servers' certificates must be
/// valid for, and the SNI sent; default: each server address's host.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_server_name(
    cfg: *mut mcrs_config,
    name: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        set_str(cfg, name, "TLS server name", |b, n| {
            b.tls_server_name(n).map(drop)
        })
    })
}

/// Verify the servers' certificates (default on). Off accepts any
/// certificate: the traffic is encrypted but the server is not
/// authenticated.
#[no_mangle]
pub extern "C" fn mcrs_config_set_tls_verify(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
        unsafe { &mut *cfg }.0.tls_verify(on);
        MCRS_STATUS_OK
    })
}

/// Log in on every new connection (memcached `-Y` auth file), over TLS too
/// when it is on. A refused login gives MCRS_STATUS_AUTH_FAILED, and so does
/// a server that demands a login when none is set; the refusal is remembered
/// for retry_timeout, so calls fail at once without reconnecting. The
/// password never appears in `mcrs_last_error`. Event loops log in too. A user with whitespace or
/// ':', or a password with CR, LF (or empty ones) give
/// MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_auth(
    cfg: *mut mcrs_config,
    username: *const c_char,
    password: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg, username, password);
        let user = try_ffi!(c_str(username, "auth user"));
        let pass = try_ffi!(c_str(password, "auth password"));
        // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
        try_ffi!(unsafe { &mut *cfg }.0.auth(user, pass));
        MCRS_STATUS_OK
    })
}
