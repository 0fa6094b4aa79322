//! Meta get, leases and stale-while-revalidate on the blocking [`Client`]:
//! stampede protection with memcached's meta commands (`mg N/R`, `ms C`,
//! `md I T`).
//!
//! The pattern ([`Client::lease_get`]): a miss vivifies a placeholder and
//! makes exactly one caller [`LeaseState::Won`] (its token is the
//! placeholder's cas); the others see [`LeaseState::Wait`] until the winner's
//! [`Client::lease_set`] lands (or the placeholder expires after
//! `lease_ttl`). [`Client::invalidate`] marks an item stale instead of
//! deleting it: the next reader wins with the stale value in hand, the
//! others are served that value as [`LeaseState::Stale`] meanwhile. A
//! `lease_set` whose token is no longer the item's cas (it was invalidated
//! or replaced meanwhile) is refused, so a recompute that lost a race never
//! comes back as fresh.

use std::time::{Duration, Instant};

use crate::client::{check_exptime, check_value, Client};
use crate::error::{Error, Result};
use crate::protocol::encode::WireKey;
use crate::protocol::meta::{
    self, base64_len, MetaCmd, MetaCode, MetaFlags, MetaKey, MetaReply, MetaResponse, MAX_META_KEY,
    NO_FLAGS,
};
use crate::protocol::meta_fast::get_request;
use crate::value::OwnedValue;

/// Meta options of a client (see `ClientBuilder::base64_keys` and
/// `ClientBuilder::recache_threshold`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaOptions {
    pub base64_keys: bool,
    pub recache_threshold: u32,
}

/// What [`Client::lease_get`] found (the C API's `mcrs_lease`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// A fresh value.
    Hit,
    /// A miss, a stale value, or (early recache) a value about to expire,
    /// and this caller holds the lease: recompute, then `lease_set` with the
    /// token.
    Won,
    /// A stale value; another caller is recomputing.
    Stale,
    /// A miss; another caller holds the lease: retry shortly.
    Wait,
}

/// An item read with meta get: its bytes, flags and cas, and what the
/// server knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaValue {
    pub data: Vec<u8>,
    pub flags: u32,
    pub cas: u64,
    /// Seconds of TTL left; -1 when the item does not expire.
    pub ttl: i64,
    /// Seconds since the item was last accessed (before this read).
    pub last_access: Option<u64>,
    /// Whether the item had been read before this read.
    pub hit_before: Option<bool>,
    /// The item was invalidated (`md I`) and not yet recomputed.
    pub stale: bool,
}

impl MetaValue {
    fn of(data: &[u8], r: &MetaReply<'_>) -> MetaValue {
        MetaValue {
            data: data.to_vec(),
            flags: r.flags.unwrap_or(0),
            cas: r.cas.unwrap_or(0),
            ttl: r.ttl.unwrap_or(-1),
            last_access: r.last_access,
            hit_before: r.hit_before,
            stale: r.stale,
        }
    }
}

/// The outcome of [`Client::lease_get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease<V = MetaValue> {
    pub state: LeaseState,
    /// For `Won`: pass it to `lease_set`. 0 otherwise.
    pub token: u64,
    /// The value for `Hit` and `Stale`, and for `Won` on a stale or expiring
    /// item; None for `Wait` and for `Won` on a miss.
    pub value: Option<V>,
}

/// A meta command as data: the part of a `Request::Meta` that is not its key
/// and value, so that leases run on the event loop as well as blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaOp {
    /// [`Client::lease_get`] with this lease TTL (seconds, > 0).
    LeaseGet { lease_ttl: u32 },
    /// [`Client::lease_set`] of the request's value.
    LeaseSet {
        flags: u32,
        exptime: u32,
        token: u64,
    },
    /// [`Client::invalidate`] with this stale TTL (0: keep the TTL).
    Invalidate { stale_ttl: u32 },
    /// [`Client::meta_get`].
    Get,
}

/// A value read with a meta command as an [`OwnedValue`] (one block, copied
/// once from the read buffer) that also tells its TTL left, last access
/// and hit-before.
pub fn owned_meta_value(data: &[u8], r: &MetaReply<'_>) -> OwnedValue {
    let mut v = OwnedValue::new(data, r.flags.unwrap_or(0), r.cas);
    v.set_meta(r.ttl, r.last_access, r.hit_before);
    v
}

/// The flags of a lease get: what it reads, the lease TTL (`N`) and the
/// early-recache threshold (`R`, when > 0).
pub(crate) fn lease_flags(lease_ttl: u32, threshold: u32) -> MetaFlags<'static> {
    MetaFlags {
        vivify: Some(lease_ttl),
        recache: (threshold > 0).then_some(threshold),
        ..READ_ALL
    }
}

/// The flags of a meta get: value, cas, client flags, TTL left, hit-before
/// and last access.
pub(crate) const META_GET: MetaFlags<'static> = MetaFlags {
    raw: b"v c f t h l",
    ..NO_FLAGS
};

/// The flags of a lease set (`T F C`; no `C` for token 0).
pub(crate) fn lease_set_flags(flags: u32, exptime: u32, token: u64) -> MetaFlags<'static> {
    MetaFlags {
        set_ttl: Some(exptime),
        set_flags: Some(flags),
        compare_cas: (token != 0).then_some(token),
        ..NO_FLAGS
    }
}

/// The flags of an invalidate (`I`, and `T` when `stale_ttl` > 0).
pub(crate) fn invalidate_flags(stale_ttl: u32) -> MetaFlags<'static> {
    MetaFlags {
        invalidate: true,
        set_ttl: (stale_ttl > 0).then_some(stale_ttl),
        ..NO_FLAGS
    }
}

/// The lease a lease get's `VA` reply stands for, its value made by `make`.
pub(crate) fn lease_of<V>(
    m: &MetaReply<'_>,
    make: impl FnOnce(&[u8], &MetaReply<'_>) -> V,
) -> Result<Lease<V>> {
    let Some(cas) = m.cas else {
        return Err(Error::Protocol("lease reply without cas".into()));
    };
    let (state, has_value) = lease_state(m);
    let data = m.data.unwrap_or_default();
    Ok(Lease {
        state,
        token: if state == LeaseState::Won { cas } else { 0 },
        value: has_value.then(|| make(data, m)),
    })
}

/// What a lease get that could not ask the server becomes under ignore_exc
/// (and what an `EN` reply means: nobody holds a lease): this caller
/// computes without one.
pub(crate) fn lease_free_win<V>() -> Lease<V> {
    Lease {
        state: LeaseState::Won,
        token: 0,
        value: None,
    }
}

impl Client {
    /// Checks the arguments of a meta command before any I/O, as the
    /// blocking calls do: the key (base64 when allowed), TTLs, the value.
    pub(crate) fn check_meta(&self, op: MetaOp, key: &[u8], value: &[u8]) -> Result<()> {
        match op {
            MetaOp::LeaseGet { lease_ttl: 0 } => {
                return Err(Error::InvalidArgument("lease_ttl must be > 0".into()))
            }
            MetaOp::LeaseGet { lease_ttl } => check_exptime(lease_ttl)?,
            MetaOp::LeaseSet { exptime, .. } => {
                check_value(value)?;
                check_exptime(exptime)?;
            }
            MetaOp::Invalidate { stale_ttl } => check_exptime(stale_ttl)?,
            MetaOp::Get => {}
        }
        self.meta_key(key).map(|_| ())
    }
}

/// How long [`Client::lease_get_or_wait`] sleeps after its first WAIT; it
/// doubles after each further WAIT up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest sleep between two tries of [`Client::lease_get_or_wait`].
pub const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// The flags of a lease get's read: value, cas, client flags, TTL left
/// (as one raw piece: the per-flag encoding costs more than the command).
const READ_ALL: MetaFlags<'static> = MetaFlags {
    raw: b"v c f t",
    ..NO_FLAGS
};

fn failed(r: &MetaResponse<'_>) -> Error {
    match r {
        MetaResponse::Error => Error::UnknownCommand,
        MetaResponse::ClientError(m) => Error::Client(String::from_utf8_lossy(m).into_owned()),
        MetaResponse::ServerError(m) => Error::Server(String::from_utf8_lossy(m).into_owned()),
        MetaResponse::Reply(r) => Error::Protocol(format!(
            "meta reply {:?} does not match the command",
            r.code()
        )),
    }
}

/// The state a lease get's reply stands for, and whether its value is one
/// (a vivified placeholder's empty value is not).
fn lease_state(r: &MetaReply<'_>) -> (LeaseState, bool) {
    let empty = r.data.map_or(true, |d| d.is_empty());
    if r.win {
        // won on a miss (the empty placeholder), a stale item, or early recache
        (LeaseState::Won, r.stale || !empty)
    } else if r.stale {
        (LeaseState::Stale, true)
    } else if r.won_already && empty {
        // the placeholder another caller vivified (a real empty value under
        // early recache reads the same: it waits until the recompute lands)
        (LeaseState::Wait, false)
    } else {
        // fresh (under early recache, maybe being recomputed by another caller)
        (LeaseState::Hit, true)
    }
}

impl Client {
    /// The key as meta commands send it: as is when it is a valid text key,
    /// base64-encoded when it is not and `base64_keys` is on.
    pub(crate) fn meta_key<'a>(&'a self, key: &'a [u8]) -> Result<MetaKey<'a>> {
        let wire = WireKey {
            prefix: &self.key_prefix,
            key,
        };
        match self.check_key(key) {
            Ok(()) => Ok(MetaKey {
                key: wire,
                base64: false,
            }),
            Err(e) if !self.meta.base64_keys => Err(e),
            Err(_) if key.is_empty() => Err(Error::InvalidKey("key is empty".into())),
            Err(_) => {
                let n = base64_len(self.key_prefix.len() + key.len());
                if n > MAX_META_KEY {
                    return Err(Error::InvalidKey(format!(
                        "key is {n} bytes base64-encoded with its prefix (max {MAX_META_KEY})"
                    )));
                }
                Ok(MetaKey {
                    key: wire,
                    base64: true,
                })
            }
        }
    }

    /// Sends one meta command (`value`: for ms) and hands its reply to `f`.
    /// Reads (`idempotent`) are retried once on a fresh connection when a
    /// pooled one turns out stale.
    fn meta_one<T>(
        &self,
        key: &[u8],
        encode: impl Fn(&mut Vec<u8>, MetaKey<'_>),
        idempotent: bool,
        mut f: impl FnMut(MetaResponse<'_>) -> Result<T>,
    ) -> Result<T> {
        let mk = self.meta_key(key)?;
        let idx = self.cluster.route(key)?;
        let run = |conn: &mut crate::conn::Conn, deadline| {
            conn.begin_reply_request();
            encode(&mut conn.wbuf, mk);
            conn.flush(deadline)?;
            conn.read_meta(deadline, &mut f)?
        };
        if idempotent {
            self.with_conn_idempotent(idx, run)
        } else {
            self.with_conn(idx, true, run)
        }
    }

    /// Meta get of `key` with what a value can tell (flags, cas, TTL left,
    /// last access, hit before); the value, borrowed from the read buffer, and
    /// its reply go to `visit`. `Ok(None)` is a miss (or, with ignore_exc, a
    /// failed read).
    pub fn meta_get_with<T>(
        &self,
        key: &[u8],
        visit: impl FnOnce(&[u8], &MetaReply<'_>) -> T,
    ) -> Result<Option<T>> {
        let mut visit = Some(visit);
        let encode =
            |b: &mut Vec<u8>, mk: MetaKey<'_>| get_request(b, mk, None, None, META_GET.raw);
        let r = self.meta_one(key, encode, true, |r| match r {
            MetaResponse::Reply(m) if m.code() == MetaCode::En => Ok(None),
            MetaResponse::Reply(m) if m.code() == MetaCode::Va => {
                let data = m.data.expect("VA has data");
                Ok(visit.take().map(|v| v(data, &m)))
            }
            other => Err(failed(&other)),
        });
        match r {
            Err(e) if self.ignore_exc && e.is_server_failure() => Ok(None),
            r => r,
        }
    }

    /// Meta get: the value with its TTL left, last access and hit-before, or
    /// None on a miss.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<MetaValue>> {
        self.meta_get_with(key, MetaValue::of)
    }

    /// [`Client::lease_get`] handing the value (borrowed from the read
    /// buffer) and its reply to `make`.
    pub fn lease_get_with<V>(
        &self,
        key: &[u8],
        lease_ttl: u32,
        make: impl FnOnce(&[u8], &MetaReply<'_>) -> V,
    ) -> Result<Lease<V>> {
        if lease_ttl == 0 {
            return Err(Error::InvalidArgument("lease_ttl must be > 0".into()));
        }
        check_exptime(lease_ttl)?;
        let threshold = self.meta.recache_threshold;
        let recache = (threshold > 0).then_some(threshold);
        let encode = |b: &mut Vec<u8>, mk: MetaKey<'_>| {
            get_request(b, mk, Some(lease_ttl), recache, READ_ALL.raw)
        };
        let mut make = Some(make);
        let r = self.meta_one(key, encode, true, |r| {
            let m = match r {
                MetaResponse::Reply(m) if m.code() == MetaCode::Va => m,
                // N always makes an item; a server that answers EN does not
                // vivify: nobody holds a lease, so this caller computes
                MetaResponse::Reply(m) if m.code() == MetaCode::En => {
                    return Ok(Lease {
                        state: LeaseState::Won,
                        token: 0,
                        value: None,
                    })
                }
                other => return Err(failed(&other)),
            };
            let Some(cas) = m.cas else {
                return Err(Error::Protocol("lease reply without cas".into()));
            };
            let (state, has_value) = lease_state(&m);
            let data = m.data.expect("VA has data");
            Ok(Lease {
                state,
                token: if state == LeaseState::Won { cas } else { 0 },
                value: if has_value {
                    make.take().map(|f| f(data, &m))
                } else {
                    None
                },
            })
        });
        match r {
            // ignore_exc: as for a miss without lease, the caller computes
            // (and lease_set with token 0 stores unconditionally)
            Err(e) if self.ignore_exc && e.is_server_failure() => Ok(Lease {
                state: LeaseState::Won,
                token: 0,
                value: None,
            }),
            r => r,
        }
    }

    /// Lease get (`mg <key> v c f t N<lease_ttl> [R<recache_threshold>]`):
    /// see [`LeaseState`]. A lease nobody fulfils expires after `lease_ttl`
    /// seconds (the placeholder goes away and the next caller wins).
    pub fn lease_get(&self, key: &[u8], lease_ttl: u32) -> Result<Lease> {
        self.lease_get_with(key, lease_ttl, MetaValue::of)
    }

    /// [`Client::lease_get_or_wait`] with a value maker, as
    /// [`Client::lease_get_with`].
    pub fn lease_get_or_wait_with<V>(
        &self,
        key: &[u8],
        lease_ttl: u32,
        wait: Duration,
        mut make: impl FnMut(&[u8], &MetaReply<'_>) -> V,
    ) -> Result<Lease<V>> {
        let deadline = Instant::now() + wait;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let lease = self.lease_get_with(key, lease_ttl, &mut make)?;
            let now = Instant::now();
            if lease.state != LeaseState::Wait || now >= deadline {
                return Ok(lease);
            }
            std::thread::sleep(backoff.min(deadline - now));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// `lease_get`, retrying a WAIT with backoff (1 ms, doubling up to 50 ms)
    /// for up to `wait`: the winner's value usually lands meanwhile (then
    /// HIT). Still WAIT when `wait` ran out; the caller then decides (compute
    /// without the lease, or fail).
    pub fn lease_get_or_wait(&self, key: &[u8], lease_ttl: u32, wait: Duration) -> Result<Lease> {
        self.lease_get_or_wait_with(key, lease_ttl, wait, MetaValue::of)
    }

    /// Stores the value recomputed under a lease (`ms <key> T<exptime>
    /// F<flags> C<token>`): true when stored, false when the lease was lost
    /// (the item changed, was invalidated again or expired since the lease
    /// was granted, so the value may be stale already and is not stored).
    /// Token 0 stores unconditionally. Waits for the reply.
    pub fn lease_set(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        token: u64,
    ) -> Result<bool> {
        check_value(value)?;
        check_exptime(exptime)?;
        let mf = MetaFlags {
            set_ttl: Some(exptime),
            set_flags: Some(flags),
            compare_cas: (token != 0).then_some(token),
            ..MetaFlags::default()
        };
        let encode = |b: &mut Vec<u8>, mk: MetaKey<'_>| meta::set(b, mk, value, &mf);
        self.meta_one(key, encode, false, |r| match r {
            MetaResponse::Reply(m) => match m.code() {
                MetaCode::Hd => Ok(true),
                MetaCode::Ex | MetaCode::Nf | MetaCode::Ns => Ok(false),
                _ => Err(failed(&MetaResponse::Reply(m))),
            },
            other => Err(failed(&other)),
        })
    }

    /// Marks `key` stale instead of deleting it (`md <key> I [T<stale_ttl>]`):
    /// its cas changes (outstanding leases are lost), the next lease get wins
    /// with the stale value, the others get it as STALE. `stale_ttl` > 0 also
    /// sets how long the stale item lives; 0 keeps its TTL. False when the
    /// key was not there.
    pub fn invalidate(&self, key: &[u8], stale_ttl: u32) -> Result<bool> {
        check_exptime(stale_ttl)?;
        let mf = MetaFlags {
            invalidate: true,
            set_ttl: (stale_ttl > 0).then_some(stale_ttl),
            ..MetaFlags::default()
        };
        let encode = |b: &mut Vec<u8>, mk: MetaKey<'_>| meta::request(b, MetaCmd::Delete, mk, &mf);
        self.meta_one(key, encode, false, |r| match r {
            MetaResponse::Reply(m) => match m.code() {
                MetaCode::Hd => Ok(true),
                MetaCode::Nf => Ok(false),
                _ => Err(failed(&MetaResponse::Reply(m))),
            },
            other => Err(failed(&other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(bytes: &[u8]) -> MetaReply<'_> {
        match meta::parse_meta(bytes).unwrap().unwrap().0 {
            MetaResponse::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// The replies memcached 1.6.18 sends for each step of the lease dance.
    #[test]
    fn states_of_replies() {
        for (bytes, want) in [
            (&b"VA 0 c1 f0 t-1 W\r\n\r\n"[..], (LeaseState::Won, false)),
            (b"VA 0 c1 f0 t30 Z\r\n\r\n", (LeaseState::Wait, false)),
            (b"VA 2 c2 f5 t60\r\nhi\r\n", (LeaseState::Hit, true)),
            (b"VA 2 c3 f5 t30 X W\r\nhi\r\n", (LeaseState::Won, true)),
            (b"VA 2 c3 f5 t29 Z X\r\nhi\r\n", (LeaseState::Stale, true)),
            (b"VA 1 t10 c18 W\r\nx\r\n", (LeaseState::Won, true)),
            (b"VA 1 t10 c18 Z\r\nx\r\n", (LeaseState::Hit, true)),
        ] {
            assert_eq!(lease_state(&reply(bytes)), want, "{bytes:?}");
        }
    }

    #[test]
    fn arguments_are_checked_before_io() {
        let c = Client::builder()
            .add_server("127.0.0.1:1")
            .unwrap()
            .build()
            .unwrap();
        assert!(matches!(
            c.lease_get(b"k", 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(c.lease_get(b"a b", 5), Err(Error::InvalidKey(_))));
        assert!(matches!(c.meta_get(b"\x00"), Err(Error::InvalidKey(_))));
        let b = Client::builder()
            .add_server("127.0.0.1:1")
            .unwrap()
            .base64_keys(true)
            .build()
            .unwrap();
        assert!(b.meta_key(b"\x00\x01").unwrap().base64);
        assert!(!b.meta_key(b"plain").unwrap().base64);
        assert!(b.meta_key(&[0u8; 186]).is_ok());
        assert!(matches!(b.meta_key(&[0u8; 187]), Err(Error::InvalidKey(_))));
        assert!(matches!(b.meta_key(b""), Err(Error::InvalidKey(_))));
    }
}
