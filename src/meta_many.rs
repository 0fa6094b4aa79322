//! Meta multi-get on the blocking [`Client`]: per server, quiet tagged `mg`
//! lines closed by `mn` (`protocol::meta_many`) where the server speaks meta
//! (asked once per server), the classic `get` lines where it does not.
//!
//! Why meta: only hits cross the wire, each matched to its key by its tag,
//! and `MN` proves the stream is in step at the end of every chunk. An error
//! line fails only the keys it may belong to, not the whole server.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::client::{Client, ClientBuilder, HitVisitor};
use crate::conn::{too_large, Conn, Deadline};
use crate::error::{Error, Result};
use crate::protocol::encode::{Retrieve, WireKey};
use crate::protocol::meta::{self, MetaCode, MetaKey, MetaResponse};
use crate::protocol::meta_many::{mg_many, MgError, MgLineError, MgMany, MgStream};

/// Keys per `mn`-closed chunk: each chunk's replies get a full timeout of
/// their own (as the classic path's `get` lines of 256 keys).
const KEYS_PER_CHUNK: usize = 256;

/// Which protocol the blocking client's multi-key reads (`get_many`,
/// `gets_many`, `fetch_many_with`) use. The event loop keeps the classic
/// `get` lines in every mode.
///
/// The default is [`UseMeta::Off`]: a meta multi-get costs the client fewer
/// instructions per key (callgrind, `examples/bench.c`: 562-565 against 587),
/// but memcached works through at most 20 requests per event (`-R`), so it
/// answers 100 `mg` lines in 5 writes where one `get` line gets one: in
/// wall time and server CPU the meta path was about 2x slower on stock
/// memcached 1.6.18 (README, "Meta multi-get").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UseMeta {
    /// Meta for each server that answers a probe `mn` with `MN` (asked on
    /// the first multi-key read of the server, remembered for the client's
    /// lifetime), classic for the others (an `ERROR`: older memcached,
    /// twemproxy, mcrouter). A meta server that later answers `mg` with
    /// `ERROR` (replaced by one without meta) goes classic from the next
    /// read on.
    Auto,
    /// Always classic `get`/`gets` lines (the default).
    #[default]
    Off,
    /// Always meta, without a probe (a server that does not speak it fails
    /// the keys, `UnknownCommand`).
    On,
}

/// Whether a server speaks meta, as far as this client has found out.
#[derive(Debug, Default)]
pub struct MetaSupport(AtomicU8);

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

impl MetaSupport {
    /// None until a probe answered.
    pub fn get(&self) -> Option<bool> {
        match self.0.load(Ordering::Relaxed) {
            UNKNOWN => None,
            v => Some(v == YES),
        }
    }

    fn set(&self, yes: bool) {
        self.0.store(if yes { YES } else { NO }, Ordering::Relaxed);
    }
}

/// Keys that failed on their own (an error line of the server), with the
/// error; the rest of the server's keys were answered.
pub(crate) type KeyFailures = Vec<(Vec<usize>, Error)>;

impl ClientBuilder {
    /// Which protocol multi-key reads use: [`UseMeta::Off`] (the
    /// default), [`UseMeta::Auto`] or [`UseMeta::On`].
    pub fn use_meta(&mut self, mode: UseMeta) -> &mut Self {
        self.use_meta = mode;
        self
    }
}

fn line_error(e: MgLineError) -> Error {
    match e {
        MgLineError::Client(m) => crate::auth::client_error(&m),
        MgLineError::Server(m) => Error::Server(String::from_utf8_lossy(&m).into_owned()),
        MgLineError::Unknown => Error::UnknownCommand,
    }
}

impl Client {
    /// Each server's address and whether it speaks meta as far as this
    /// client found out (None: not asked yet; see [`UseMeta::Auto`]).
    pub fn meta_support(&self) -> Vec<(String, Option<bool>)> {
        self.cluster
            .servers()
            .iter()
            .map(|s| (s.spec.addr.to_string(), s.meta.get()))
            .collect()
    }

    /// The key check of a multi-key read once `check_key` refused one of
    /// `keys` with `e`: Ok(true) when meta can carry every key that is not
    /// a text key (base64, with `base64_keys` on and meta not off), else
    /// the first refusal.
    #[cold]
    #[inline(never)]
    pub(crate) fn check_base64_read_keys(&self, keys: &[&[u8]], e: Error) -> Result<bool> {
        if self.use_meta == UseMeta::Off || !self.meta.base64_keys {
            return Err(e);
        }
        for k in keys {
            if self.check_key(k).is_err() {
                self.meta_key(k)?;
            }
        }
        Ok(true)
    }

    /// One server's share of a multi-key read, by meta or classic lines.
    /// `any_base64`: some of the call's keys need base64 (meta). Err fails
    /// all of `idxs`; the keys in the Ok list failed on their own.
    #[inline]
    pub(crate) fn fetch_server(
        &self,
        server: usize,
        cmd: Retrieve,
        keys: &[&[u8]],
        idxs: &[usize],
        any_base64: bool,
        visit: &mut HitVisitor<'_>,
    ) -> Result<KeyFailures> {
        if self.use_meta == UseMeta::Off {
            // the default (no key needs base64 then)
            return self
                .fetch_batch(server, cmd, keys, idxs, visit)
                .map(|()| Vec::new());
        }
        if self.speaks_meta(server)? {
            return self.fetch_batch_meta(server, cmd, keys, idxs, any_base64, visit);
        }
        if !any_base64 {
            return self
                .fetch_batch(server, cmd, keys, idxs, visit)
                .map(|()| Vec::new());
        }
        // keys only meta can carry fail here; the others go classic
        let (text, binary): (Vec<usize>, Vec<usize>) =
            idxs.iter().partition(|&&i| self.check_key(keys[i]).is_ok());
        if !text.is_empty() {
            self.fetch_batch(server, cmd, keys, &text, visit)?;
        }
        Ok(vec![(
            binary,
            Error::InvalidKey(
                "a base64 key needs the meta protocol, which this server does not speak".into(),
            ),
        )])
    }

    /// Whether multi-key reads of `server` go by meta (probed once in auto
    /// mode).
    #[inline]
    fn speaks_meta(&self, server: usize) -> Result<bool> {
        match self.use_meta {
            UseMeta::Off => Ok(false),
            UseMeta::On => Ok(true),
            UseMeta::Auto => match self.cluster.servers()[server].meta.get() {
                Some(yes) => Ok(yes),
                None => self.probe_meta(server),
            },
        }
    }

    /// Sends `mn`: `MN` means meta, `ERROR` (or any other answer, or a
    /// connection closed on it) means classic. The answer is remembered; a
    /// failure to reach the server is not an answer.
    #[cold]
    fn probe_meta(&self, server: usize) -> Result<bool> {
        let r = self.with_conn_idempotent(server, |conn, deadline| {
            conn.begin_reply_request();
            meta::noop(&mut conn.wbuf);
            conn.flush(deadline)?;
            let answer = conn.read_meta(deadline, |r| match r {
                MetaResponse::Reply(m) if m.code() == MetaCode::Mn => Ok(Some(true)),
                MetaResponse::Error => Ok(Some(false)),
                MetaResponse::ClientError(m) if crate::auth::is_unauthenticated(m) => {
                    Err(crate::auth::client_error(m))
                }
                // one line for one line, but not a server to trust with meta
                _ => Ok(None),
            });
            match answer {
                Ok(Ok(Some(yes))) => Ok(yes),
                Ok(Ok(None)) => {
                    conn.poison();
                    Ok(false)
                }
                Ok(Err(e)) => Err(e),
                // not a reply of either protocol (read_meta broke the connection)
                Err(Error::Protocol(_)) => Ok(false),
                Err(e) => Err(e),
            }
        });
        let yes = match r {
            Ok(yes) => yes,
            // a fresh connection closed on `mn` (a stale pooled one was
            // retried): a server that knows no meta
            Err(Error::UnexpectedClose) => false,
            Err(e) => return Err(e),
        };
        self.cluster.servers()[server].meta.set(yes);
        Ok(yes)
    }

    /// One server's share by meta: every key's `mg` line and each chunk's
    /// `mn` in one write, then each chunk's replies read in one pass.
    fn fetch_batch_meta(
        &self,
        server: usize,
        cmd: Retrieve,
        keys: &[&[u8]],
        idxs: &[usize],
        any_base64: bool,
        visit: &mut HitVisitor<'_>,
    ) -> Result<KeyFailures> {
        let prefix = &self.key_prefix[..];
        let how = MgMany {
            cas: cmd.with_cas(),
            touch: match cmd {
                Retrieve::Gat(e) | Retrieve::Gats(e) => Some(e),
                Retrieve::Get | Retrieve::Gets => None,
            },
        };
        let mut hits = 0u64;
        let mut fails: KeyFailures = Vec::new();
        let r = self.with_conn_idempotent(server, |conn, deadline| {
            if hits > 0 {
                // the retry of a stale pooled connection, after part of the
                // reply was read and visited (the server closed mid-way):
                // the hits must not come twice, so no retry
                return Err(Error::UnexpectedClose);
            }
            fails.clear();
            conn.begin_reply_request();
            for chunk in idxs.chunks(KEYS_PER_CHUNK) {
                for (tag, &i) in chunk.iter().enumerate() {
                    let key = keys[i];
                    let base64 = any_base64 && self.check_key(key).is_err();
                    let mk = MetaKey {
                        key: WireKey { prefix, key },
                        base64,
                    };
                    mg_many(&mut conn.wbuf, mk, tag as u32, how);
                }
                meta::noop(&mut conn.wbuf);
            }
            conn.flush(deadline)?;
            for (n, chunk) in idxs.chunks(KEYS_PER_CHUNK).enumerate() {
                // each chunk's replies get a full timeout of their own
                let deadline = if n == 0 { deadline } else { conn.deadline() };
                read_chunk(conn, deadline, how.cas, chunk, &mut |i, d, f, c| {
                    hits += 1;
                    visit(i, d, f, c)
                })
                .map(|mut f| fails.append(&mut f))?;
            }
            Ok(())
        });
        if self.use_meta == UseMeta::Auto
            && fails
                .iter()
                .any(|(_, e)| matches!(e, Error::UnknownCommand))
        {
            // the server answers `mg` with ERROR (replaced by one without
            // meta since the probe): classic from the next read on
            self.cluster.servers()[server].meta.set(false);
        }
        if r.is_ok() {
            let counters = &self.cluster.servers()[server].counters;
            let failed: usize = fails.iter().map(|(k, _)| k.len()).sum();
            counters.hits(hits);
            counters.misses((idxs.len() - failed) as u64 - hits);
        }
        r.map(|()| fails)
    }
}

/// Reads the replies to one chunk of keys (`chunk`: the caller's index of
/// the key tagged with each position) up to its `MN`.
fn read_chunk(
    conn: &mut Conn,
    deadline: Deadline,
    with_cas: bool,
    chunk: &[usize],
    visit: &mut HitVisitor<'_>,
) -> Result<KeyFailures> {
    let max = conn.max_value();
    let mut s = MgStream::new(chunk.len() as u32, with_cas, max);
    let mut fails = Vec::new();
    conn.read_stream(deadline, |buf| {
        s.feed(
            buf,
            &mut |tag, d, f, c| visit(chunk[tag as usize], d, f, c),
            &mut |tags, e| {
                let ks = chunk[tags.start as usize..tags.end as usize].to_vec();
                fails.push((ks, line_error(e)));
            },
        )
        .map_err(|e| match e {
            MgError::Protocol(p) => Error::Protocol(p.0),
            MgError::TooLarge(n) => too_large(n, max),
        })
    })?;
    Ok(fails)
}
