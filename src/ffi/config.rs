//! `mcrs_config`: the builder a client is made from.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use super::status::{fail, mcrs_status, mcrs_status::*, set_last_error};
use super::{bytes, check_null, ffi_boundary, ffi_boundary_value, try_ffi};
use crate::client::ClientBuilder;
use crate::error::Error;
use crate::ring::Distribution;

/// Client configuration (a builder). Create with `mcrs_config_new`, set options,
/// pass to `mcrs_client_new` (which copies it), free with `mcrs_config_free`.
/// Not thread-safe: use one config from one thread at a time.
pub struct mcrs_config(pub(crate) ClientBuilder);

/// How keys are spread over several servers (a `uint32_t`, so that a value
/// from C outside the list is rejected instead of being undefined behaviour).
pub type mcrs_distribution = u32;
/// pymemcache HashClient's rendezvous hashing (murmur3); the default.
pub const MCRS_DISTRIBUTION_RENDEZVOUS: mcrs_distribution = 0;
/// libmemcached's weighted ketama (pylibmc `ketama_weighted`).
pub const MCRS_DISTRIBUTION_KETAMA: mcrs_distribution = 1;
/// Fast rendezvous over xxh3, for clusters that only mcrs clients share.
pub const MCRS_DISTRIBUTION_XXH3: mcrs_distribution = 2;

/// A new configuration with the defaults: connect_timeout 1000 ms, timeout
/// 1000 ms, no_delay on, keepalive off, ignore_exc off, default_noreply on, no
/// key prefix, ASCII keys only, max_pool_size 32, no pool idle timeout,
/// retry_attempts 2, retry_timeout 1000 ms, dead_timeout 60000 ms,
/// flush_on_rejoin off, failover_ttl 60 s, max_tracked_keys 100000,
/// rendezvous distribution. Free it with `mcrs_config_free`. Returns NULL only on panic.
#[no_mangle]
pub extern "C" fn mcrs_config_new() -> *mut mcrs_config {
    ffi_boundary_value!(std::ptr::null_mut(), {
        Box::into_raw(Box::new(mcrs_config(ClientBuilder::new())))
    })
}

/// Frees a configuration. NULL is accepted and ignored.
#[no_mangle]
pub extern "C" fn mcrs_config_free(cfg: *mut mcrs_config) {
    ffi_boundary_value!((), {
        if !cfg.is_null() {
            // SAFETY: cfg came from mcrs_config_new and is freed once.
            drop(unsafe { Box::from_raw(cfg) });
        }
    })
}

fn cfg_str<'a>(p: *const c_char) -> Result<&'a str, Error> {
    // SAFETY: the caller passes a NUL-terminated string (checked non-NULL).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::InvalidArgument("server address is not valid UTF-8".into()))
}

/// Adds a server: `host:port`, `host` (port 11211), `[v6addr]:port`,
/// `unix:/path` or `/path`. An address that does not parse gives
/// MCRS_STATUS_INVALID_ARGUMENT. The order of servers matters for nothing but
/// `stats` output: placement depends only on the addresses.
#[no_mangle]
pub extern "C" fn mcrs_config_add_server(
    cfg: *mut mcrs_config,
    address: *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg, address);
        // SAFETY: checked non-NULL; the caller owns cfg exclusively for the call.
        let cfg = unsafe { &mut *cfg };
        try_ffi!(cfg.0.add_server(try_ffi!(cfg_str(address))));
        MCRS_STATUS_OK
    })
}

/// Adds a server with a ketama weight (>= 1; 0 gives INVALID_ARGUMENT).
#[no_mangle]
pub extern "C" fn mcrs_config_add_server_weighted(
    cfg: *mut mcrs_config,
    address: *const c_char,
    weight: u32,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg, address);
        // SAFETY: as above.
        let cfg = unsafe { &mut *cfg };
        try_ffi!(cfg
            .0
            .add_server_weighted(try_ffi!(cfg_str(address)), weight));
        MCRS_STATUS_OK
    })
}

/// Chooses the distribution (MCRS_DISTRIBUTION_*); other values give
/// MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_distribution(
    cfg: *mut mcrs_config,
    distribution: mcrs_distribution,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        let d = match distribution {
            MCRS_DISTRIBUTION_RENDEZVOUS => Distribution::Rendezvous,
            MCRS_DISTRIBUTION_KETAMA => Distribution::Ketama,
            MCRS_DISTRIBUTION_XXH3 => Distribution::Xxh3,
            other => {
                return fail(Error::InvalidArgument(format!(
                    "unknown distribution {other}"
                )))
            }
        };
        // SAFETY: checked non-NULL.
        unsafe { &mut *cfg }.0.distribution(d);
        MCRS_STATUS_OK
    })
}

/// Shared body of the millisecond setters.
fn set_ms(
    cfg: *mut mcrs_config,
    ms: u32,
    apply: fn(&mut ClientBuilder, Duration) -> Result<(), Error>,
) -> mcrs_status {
    check_null!(cfg);
    // SAFETY: checked non-NULL; the caller owns cfg for the call.
    let cfg = unsafe { &mut *cfg };
    try_ffi!(apply(&mut cfg.0, Duration::from_millis(ms.into())));
    MCRS_STATUS_OK
}

/// Shared body of the bool setters.
fn set_bool(cfg: *mut mcrs_config, on: bool, apply: fn(&mut ClientBuilder, bool)) -> mcrs_status {
    check_null!(cfg);
    // SAFETY: checked non-NULL; the caller owns cfg for the call.
    apply(&mut unsafe { &mut *cfg }.0, on);
    MCRS_STATUS_OK
}

/// Bound on establishing a connection (per address tried); 0 gives
/// MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_connect_timeout_ms(
    cfg: *mut mcrs_config,
    ms: u32,
) -> mcrs_status {
    ffi_boundary!({ set_ms(cfg, ms, |b, d| b.connect_timeout(d).map(drop)) })
}

/// Bound on each operation, from sending the request to the last byte of the
/// reply (multi-key batches: per pipelined chunk of 256 keys), and on waiting
/// for a free pooled connection; 0 gives MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_timeout_ms(cfg: *mut mcrs_config, ms: u32) -> mcrs_status {
    ffi_boundary!({ set_ms(cfg, ms, |b, d| b.timeout(d).map(drop)) })
}

/// Idle pooled connections older than this are closed, not reused (0: never,
/// the default).
#[no_mangle]
pub extern "C" fn mcrs_config_set_pool_idle_timeout_ms(
    cfg: *mut mcrs_config,
    ms: u32,
) -> mcrs_status {
    ffi_boundary!({
        set_ms(cfg, ms, |b, d| {
            b.pool_idle_timeout(d);
            Ok(())
        })
    })
}

/// Minimum time between tries of a failing server (cluster only; default 1000).
#[no_mangle]
pub extern "C" fn mcrs_config_set_retry_timeout_ms(cfg: *mut mcrs_config, ms: u32) -> mcrs_status {
    ffi_boundary!({
        set_ms(cfg, ms, |b, d| {
            b.retry_timeout(d);
            Ok(())
        })
    })
}

/// How long a server that left the ring stays out before it is probed
/// (cluster only; default 60000).
#[no_mangle]
pub extern "C" fn mcrs_config_set_dead_timeout_ms(cfg: *mut mcrs_config, ms: u32) -> mcrs_status {
    ffi_boundary!({
        set_ms(cfg, ms, |b, d| {
            b.dead_timeout(d);
            Ok(())
        })
    })
}

/// TCP_NODELAY on new connections (default on).
#[no_mangle]
pub extern "C" fn mcrs_config_set_no_delay(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.no_delay(on);
        })
    })
}
/// SO_KEEPALIVE on new connections (default off).
#[no_mangle]
pub extern "C" fn mcrs_config_set_keepalive(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.keepalive(on);
        })
    })
}
/// When on, server and network failures on reads (get, gets, gat, gats,
/// get_many, gets_many) are reported as misses (default off).
#[no_mangle]
pub extern "C" fn mcrs_config_set_ignore_exc(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.ignore_exc(on);
        })
    })
}
/// The noreply used by MCRS_NOREPLY_DEFAULT for set, add, replace, append,
/// prepend, delete, touch, flush_all and verbosity (default on). cas, incr,
/// decr and cache_memlimit default to waiting for the reply regardless.
#[no_mangle]
pub extern "C" fn mcrs_config_set_default_noreply(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.default_noreply(on);
        })
    })
}
/// Flush a dead server before it rejoins the ring (default off; cluster
/// only). Off, only the keys this client routed away from the server while
/// it was out are deleted on it before it takes traffic again (other
/// clients' keys survive); on, it is flushed.
#[no_mangle]
pub extern "C" fn mcrs_config_set_flush_on_rejoin(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.flush_on_rejoin(on);
        })
    })
}
/// Buffers noreply commands (libmemcached's BUFFER_REQUESTS; default off):
/// they are written when 64 KiB accumulate on a connection, when a command
/// that waits for a reply is sent on it, on `mcrs_client_flush_buffers`, and
/// when the client is freed. With it off, a noreply call returns once its
/// bytes are written.
#[no_mangle]
pub extern "C" fn mcrs_config_set_buffer_noreply(cfg: *mut mcrs_config, on: bool) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.buffer_noreply(on);
        })
    })
}

/// Allows UTF-8 keys (bytes >= 0x80); default off (ASCII only).
#[no_mangle]
pub extern "C" fn mcrs_config_set_allow_unicode_keys(
    cfg: *mut mcrs_config,
    on: bool,
) -> mcrs_status {
    ffi_boundary!({
        set_bool(cfg, on, |b, on| {
            b.allow_unicode_keys(on);
        })
    })
}

/// A prefix prepended to every key on the wire (not used for server
/// selection). It counts toward the 250-byte limit. `prefix` may be NULL only
/// when `len` is 0 (no prefix). Forbidden bytes give MCRS_STATUS_INVALID_KEY.
#[no_mangle]
pub extern "C" fn mcrs_config_set_key_prefix(
    cfg: *mut mcrs_config,
    prefix: *const u8,
    len: usize,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: the caller passes len readable bytes.
        let Some(p) = (unsafe { bytes(prefix, len) }) else {
            set_last_error("argument `prefix` is NULL");
            return MCRS_STATUS_NULL_POINTER;
        };
        // SAFETY: checked non-NULL.
        try_ffi!(unsafe { &mut *cfg }.0.key_prefix(p));
        MCRS_STATUS_OK
    })
}

/// Caps the exptime of writes routed to a stand-in while their server is out
/// of the ring, in seconds (default 60; 0: no cap), so stale copies on
/// stand-ins age out for every client (cluster only).
#[no_mangle]
pub extern "C" fn mcrs_config_set_failover_ttl(cfg: *mut mcrs_config, seconds: u32) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL.
        unsafe { &mut *cfg }.0.failover_ttl(seconds);
        MCRS_STATUS_OK
    })
}

/// Largest value accepted from a server, in bytes (default and most: 1 GiB,
/// memcached's ceiling for `-I`). A reply announcing more fails with
/// MCRS_STATUS_VALUE_TOO_LARGE before its data is read, and that connection
/// is closed. Set it to the servers' `-I` to bound the memory a broken or
/// hostile server can make one read take. 0 or more than 1 GiB:
/// MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_config_set_max_value_size(cfg: *mut mcrs_config, bytes: u64) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL.
        let b = &mut unsafe { &mut *cfg }.0;
        match b.max_value_size(usize::try_from(bytes).unwrap_or(usize::MAX)) {
            Ok(_) => MCRS_STATUS_OK,
            Err(e) => fail(e),
        }
    })
}

/// Most keys remembered per server while it is out of the ring (default
/// 100000). Past that the server is flushed when it rejoins, since the stale
/// copies it holds can no longer be named (cluster only).
#[no_mangle]
pub extern "C" fn mcrs_config_set_max_tracked_keys(cfg: *mut mcrs_config, n: u32) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL.
        unsafe { &mut *cfg }.0.max_tracked_keys(n as usize);
        MCRS_STATUS_OK
    })
}

/// Failures of a server tolerated before it leaves the ring (cluster only).
#[no_mangle]
pub extern "C" fn mcrs_config_set_retry_attempts(cfg: *mut mcrs_config, n: u32) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL.
        unsafe { &mut *cfg }.0.retry_attempts(n);
        MCRS_STATUS_OK
    })
}

/// Most connections open to one server at once (>= 1; default 32). A caller
/// that finds all busy waits up to the timeout for one.
#[no_mangle]
pub extern "C" fn mcrs_config_set_max_pool_size(cfg: *mut mcrs_config, n: u32) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        // SAFETY: checked non-NULL.
        try_ffi!(unsafe { &mut *cfg }.0.max_pool_size(n as usize));
        MCRS_STATUS_OK
    })
}
