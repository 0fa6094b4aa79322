//! Meta commands on the event loop: lease get, lease set, invalidate and
//! meta get (`mg N/R`, `ms C`, `md I T`, `mg v c f t h l`), each one request
//! answered by exactly one reply.
//!
//! They are never sent quiet (`q`): a quiet reply that is not sent would
//! leave the pipe's in-order matching nothing to match, so every meta
//! request takes its place in the pipe's queue like a one-line command and
//! owns the next reply when it reaches the head. The reply is parsed with
//! [`protocol::meta`](crate::protocol::meta) and decoded by the same rules
//! as the blocking calls of [`lease`](crate::lease).

use super::job::{Answer, JobRef, LineKind, Shape};
use super::pipe::{copy_error, Ctx, Pipe, Step};
use super::Callback;
use crate::cluster::Cluster;
use crate::conn::{too_large, Deadline};
use crate::error::Error;
use crate::lease::{
    invalidate_flags, lease_flags, lease_free_win, lease_of, lease_set_flags, owned_meta_value,
    MetaOp, META_GET,
};
use crate::protocol::encode::WireKey;
use crate::protocol::meta::{self, MetaCmd, MetaCode, MetaKey, MetaResponse};
use crate::request::Ack;

/// What a queued meta request expects of its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKind {
    /// `VA` with W/Z/X, or `EN` (a server that does not vivify)
    LeaseGet,
    /// `HD`, or `EX`/`NF`/`NS` for a lost lease
    LeaseSet,
    /// `HD` or `NF`
    Invalidate,
    /// `VA` or `EN`
    Get,
}

/// What the loop knows of a meta request before it is queued.
pub struct MetaStart<'a> {
    pub op: MetaOp,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// the key goes base64-encoded (see `Client::meta_key`)
    pub base64: bool,
    /// the client's early-recache threshold (0: off)
    pub recache: u32,
    pub ignore_exc: bool,
    pub due: Deadline,
}

/// Routes a meta request and queues it on its server's pipe.
pub fn start(
    pipes: &mut [Pipe],
    cx: &mut Ctx<'_>,
    cluster: &Cluster,
    m: MetaStart<'_>,
    cb: Callback,
) {
    let (shape, kind) = match m.op {
        MetaOp::LeaseGet { .. } => (Shape::Lease, MetaKind::LeaseGet),
        MetaOp::LeaseSet { .. } => (Shape::Ack, MetaKind::LeaseSet),
        MetaOp::Invalidate { .. } => (Shape::Ack, MetaKind::Invalidate),
        MetaOp::Get => (Shape::MetaValue, MetaKind::Get),
    };
    let j = cx.jobs.start(shape, 1, m.ignore_exc, cb);
    let s = match cluster.route(m.key) {
        Ok(s) => s,
        Err(e) => return cx.jobs.fail(j, &[0], e),
    };
    let mk = MetaKey {
        key: WireKey {
            prefix: cx.prefix,
            key: m.key,
        },
        base64: m.base64,
    };
    let (op, key, value) = (m.op, m.key, m.value);
    pipes[s].line(cx, LineKind::Meta(kind), j, 0, false, m.due, |b| match op {
        MetaOp::LeaseGet { lease_ttl } => {
            meta::request(b, MetaCmd::Get, mk, &lease_flags(lease_ttl, m.recache))
        }
        MetaOp::LeaseSet {
            flags,
            exptime,
            token,
        } => {
            // a write routed to a stand-in gets its exptime capped
            let exptime = cluster.write_exptime(key, exptime);
            meta::set(b, mk, value, &lease_set_flags(flags, exptime, token))
        }
        MetaOp::Invalidate { stale_ttl } => {
            meta::request(b, MetaCmd::Delete, mk, &invalidate_flags(stale_ttl))
        }
        MetaOp::Get => meta::request(b, MetaCmd::Get, mk, &META_GET),
    });
}

fn mismatch(code: MetaCode) -> Error {
    Error::Protocol(format!("meta reply {code:?} does not match the command"))
}

/// Reads the reply of the meta request at the head of the queue from
/// `buf`: `Ok(step)` when it is incomplete or answered (the stream in
/// step), `Err((e, used))` when the connection must break: `used` is
/// `Some(n)` when the request was answered with `e` from a reply of `n`
/// bytes, `None` when the bytes are not a reply (the request fails with the
/// connection).
pub fn step(
    cx: &mut Ctx<'_>,
    kind: MetaKind,
    job: JobRef,
    slot: u32,
    buf: &[u8],
) -> Result<Step, (Error, Option<usize>)> {
    let (r, used) = match meta::parse_meta(buf) {
        Ok(None) => return Ok(Step::NeedMore),
        Ok(Some(x)) => x,
        Err(e) => return Err((Error::Protocol(e.0), None)),
    };
    // the answer, or an error reply: (error, the stream is still in step)
    let a: Result<Answer, (Error, bool)> = match r {
        MetaResponse::ServerError(m) => {
            Err((Error::Server(String::from_utf8_lossy(m).into_owned()), true))
        }
        // one line refused: a server without meta; an ms's data line is
        // read as a command of its own, so the stream is lost then
        MetaResponse::Error => Err((Error::UnknownCommand, kind != MetaKind::LeaseSet)),
        MetaResponse::ClientError(m) => Err((crate::auth::client_error(m), false)),
        MetaResponse::Reply(m) => {
            let code = m.code();
            let too_big = m.data.filter(|d| d.len() > cx.opts.max_value);
            match (kind, code) {
                (MetaKind::LeaseGet | MetaKind::Get, MetaCode::Va) if too_big.is_some() => {
                    let n = too_big.map_or(0, <[u8]>::len) as u64;
                    Err((too_large(n, cx.opts.max_value), true))
                }
                (MetaKind::LeaseGet, MetaCode::Va) => lease_of(&m, owned_meta_value)
                    .map(Answer::Lease)
                    .map_err(|e| (e, false)),
                // a server that does not vivify: nobody holds a lease
                (MetaKind::LeaseGet, MetaCode::En) => Ok(Answer::Lease(lease_free_win())),
                (MetaKind::Get, MetaCode::Va) => {
                    let data = m.data.unwrap_or_default();
                    Ok(Answer::Value(Some(owned_meta_value(data, &m))))
                }
                (MetaKind::Get, MetaCode::En) => Ok(Answer::Value(None)),
                (MetaKind::LeaseSet | MetaKind::Invalidate, MetaCode::Hd) => {
                    Ok(Answer::Ack(Ack::Done))
                }
                (MetaKind::LeaseSet, MetaCode::Ex | MetaCode::Nf | MetaCode::Ns) => {
                    Ok(Answer::Ack(Ack::Exists))
                }
                (MetaKind::Invalidate, MetaCode::Nf) => Ok(Answer::Ack(Ack::NotFound)),
                (_, code) => Err((mismatch(code), false)),
            }
        }
    };
    match a {
        Ok(a) => {
            cx.jobs.answer(job, slot, Ok(a));
            Ok(Step::Done(used))
        }
        Err((e, true)) => {
            cx.jobs.answer(job, slot, Err(e));
            Ok(Step::Done(used))
        }
        Err((e, false)) => {
            // the request gets the error; the connection breaks with it
            cx.jobs.answer(job, slot, Err(copy_error(&e)));
            Err((e, Some(used)))
        }
    }
}
