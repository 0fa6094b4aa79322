//! The C side of the meta multi-get option (src/meta_many.rs).

use super::config::mcrs_config;
use super::status::{fail, mcrs_status, mcrs_status::MCRS_STATUS_OK};
use super::{check_null, ffi_boundary};
use crate::error::Error;
use crate::meta_many::UseMeta;

/// Which protocol `mcrs_client_get_many` / `gets_many` use (a `uint32_t`,
/// so that a value from C outside the list is rejected instead of being
/// undefined behaviour).
pub type mcrs_meta_mode = u32;
/// Meta (`mg ... q O<tag>` per key, `mn` per chunk: only hits cross the
/// wire) for each server that answers a probe `mn` with `MN`, asked once per
/// server on its first multi-key read; classic `get` lines for servers that
/// answer `ERROR` (older memcached, proxies).
pub const MCRS_META_AUTO: mcrs_meta_mode = 0;
/// Always classic `get`/`gets` lines. The default: fewer client
/// instructions per key by meta, but stock memcached answers many `mg`
/// lines in several writes (`-R`, 20 requests per event) and spends more
/// CPU on them, so the classic path was faster end to end (README).
pub const MCRS_META_OFF: mcrs_meta_mode = 1;
/// Always meta, no probe (a server without meta fails the keys with
/// MCRS_STATUS_UNKNOWN_COMMAND).
pub const MCRS_META_ON: mcrs_meta_mode = 2;

/// Chooses the protocol of the blocking client's multi-key reads
/// (MCRS_META_*); other values give MCRS_STATUS_INVALID_ARGUMENT. With
/// base64 keys on (`mcrs_config_set_base64_keys`) and meta not off,
/// get_many also takes keys that only base64 can carry; on a server that
/// does not speak meta those keys fail with MCRS_STATUS_INVALID_KEY. The
/// event loop keeps classic get lines whatever the mode.
#[no_mangle]
pub extern "C" fn mcrs_config_set_meta(cfg: *mut mcrs_config, mode: mcrs_meta_mode) -> mcrs_status {
    ffi_boundary!({
        check_null!(cfg);
        let m = match mode {
            MCRS_META_AUTO => UseMeta::Auto,
            MCRS_META_OFF => UseMeta::Off,
            MCRS_META_ON => UseMeta::On,
            other => return fail(Error::InvalidArgument(format!("unknown meta mode {other}"))),
        };
        // SAFETY: checked non-NULL; the caller owns cfg for the call.
        unsafe { &mut *cfg }.0.use_meta(m);
        MCRS_STATUS_OK
    })
}
