//! Commands as data: what a caller asks for ([`Request`]) and what it gets
//! back ([`Outcome`]), shared by the blocking [`Client`] and
//! the event loop ([`engine`](crate::engine)), so that every command shape
//! has one argument check, one C conversion and one result mapping whichever
//! way it runs.

use crate::client::{check_exptime, check_stats_args, check_value, CasOutcome, Client};
use crate::error::{Error, Result};
use crate::lease::{owned_meta_value, Lease, MetaOp};
use crate::protocol::{Retrieve, StoreCmd};
use crate::value::{KeyResults, OwnedValue, Values, ValuesBuilder};

/// One item of a `set_many`: key, value, flags.
pub type Item<'a> = (&'a [u8], &'a [u8], u32);

/// A command with its arguments, borrowed from the caller.
#[derive(Clone, Debug)]
pub enum Request<'a> {
    /// get / gets / gat / gats of one key.
    Retrieve { cmd: Retrieve, key: &'a [u8] },
    /// The same for many keys (one pipelined request per server).
    RetrieveMany { cmd: Retrieve, keys: Vec<&'a [u8]> },
    /// set / add / replace / append / prepend.
    Store {
        cmd: StoreCmd,
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    },
    Cas {
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: u32,
        cas: u64,
        noreply: Option<bool>,
    },
    Delete {
        key: &'a [u8],
        noreply: Option<bool>,
    },
    Touch {
        key: &'a [u8],
        exptime: u32,
        noreply: Option<bool>,
    },
    /// incr (`incr: true`) or decr.
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        noreply: Option<bool>,
    },
    SetMany {
        items: Vec<Item<'a>>,
        exptime: u32,
        noreply: Option<bool>,
    },
    DeleteMany {
        keys: Vec<&'a [u8]>,
        noreply: Option<bool>,
    },
    TouchMany {
        keys: Vec<&'a [u8]>,
        exptime: u32,
        noreply: Option<bool>,
    },
    /// flush_all on every server.
    FlushAll { delay: u32, noreply: Option<bool> },
    /// The version of the first server that answers.
    Version,
    /// `stats [args]` of every server.
    Stats { args: &'a str },
    /// A meta command (lease get, lease set, invalidate, meta get) of one
    /// key; `value` is the lease set's (empty for the others).
    Meta {
        op: MetaOp,
        key: &'a [u8],
        value: &'a [u8],
    },
}

/// The answer to a store, cas, delete, touch or flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Stored, deleted, touched, flushed, or sent (noreply).
    Done,
    /// delete/touch/cas of a missing key.
    NotFound,
    /// add/replace/append/prepend whose condition failed.
    NotStored,
    /// cas: the item changed since it was read.
    Exists,
}

/// The answer to incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// The new value.
    Value(u64),
    NotFound,
    /// noreply: written, no answer asked for.
    Sent,
}

/// What a [`Request`] completed with. Each request shape has one variant:
/// retrievals `Value`, many-key reads `Values`, writes `Ack`, incr/decr
/// `Counter`, the many-key writes `Keys`, `Version` and `Stats`.
#[derive(Debug)]
pub enum Outcome {
    /// A hit or a miss (`None`; also a failure with `ignore_exc`).
    Value(Result<Option<OwnedValue>>),
    /// One entry per key asked, with per-key outcomes (a failed server's
    /// keys carry its error, see [`KeyResults`]).
    Values(Result<Values>),
    Ack(Result<Ack>),
    Counter(Result<Counter>),
    /// Per-key outcomes of set_many / delete_many / touch_many.
    Keys(Result<KeyResults>),
    Version(Result<String>),
    /// (server, name, value) triples.
    Stats(Result<Vec<(String, String, String)>>),
    /// A lease get's lease (meta get is `Value`, lease set and invalidate
    /// `Ack`: Done, Exists for a lost lease, NotFound).
    Lease(Result<Lease<OwnedValue>>),
}

impl Outcome {
    /// The failure of the whole request, if it failed.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Value(Err(e))
            | Outcome::Values(Err(e))
            | Outcome::Ack(Err(e))
            | Outcome::Counter(Err(e))
            | Outcome::Keys(Err(e))
            | Outcome::Version(Err(e))
            | Outcome::Stats(Err(e))
            | Outcome::Lease(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// The same kind of outcome, failed with `e` (used to complete a
    /// request that cannot run).
    pub fn failed(kind: &Request<'_>, e: Error) -> Outcome {
        match kind {
            Request::Retrieve { .. } => Outcome::Value(Err(e)),
            Request::RetrieveMany { .. } => Outcome::Values(Err(e)),
            Request::Store { .. }
            | Request::Cas { .. }
            | Request::Delete { .. }
            | Request::Touch { .. }
            | Request::FlushAll { .. } => Outcome::Ack(Err(e)),
            Request::Arith { .. } => Outcome::Counter(Err(e)),
            Request::SetMany { .. } | Request::DeleteMany { .. } | Request::TouchMany { .. } => {
                Outcome::Keys(Err(e))
            }
            Request::Version => Outcome::Version(Err(e)),
            Request::Stats { .. } => Outcome::Stats(Err(e)),
            Request::Meta { op, .. } => match op {
                MetaOp::LeaseGet { .. } => Outcome::Lease(Err(e)),
                MetaOp::Get => Outcome::Value(Err(e)),
                MetaOp::LeaseSet { .. } | MetaOp::Invalidate { .. } => Outcome::Ack(Err(e)),
            },
        }
    }
}

impl Request<'_> {
    /// Every key of the request, in order (none for server-wide commands).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Request::Retrieve { key, .. }
            | Request::Store { key, .. }
            | Request::Cas { key, .. }
            | Request::Delete { key, .. }
            | Request::Touch { key, .. }
            | Request::Arith { key, .. }
            | Request::Meta { key, .. } => vec![key],
            Request::RetrieveMany { keys, .. }
            | Request::DeleteMany { keys, .. }
            | Request::TouchMany { keys, .. } => keys.clone(),
            Request::SetMany { items, .. } => items.iter().map(|i| i.0).collect(),
            Request::FlushAll { .. } | Request::Version | Request::Stats { .. } => Vec::new(),
        }
    }

    /// A copy that owns its bytes, to cross to another thread.
    pub fn to_owned(&self) -> OwnedRequest {
        OwnedRequest::new(self)
    }
}

/// A [`Request`] with its bytes copied into one buffer of its own (for
/// submissions from another thread, whose borrowed arguments do not live
/// until the loop runs).
pub struct OwnedRequest {
    /// the request, its slices pointing into `_bytes` (never handed out
    /// with a lifetime longer than a borrow of self)
    req: Request<'static>,
    _bytes: Box<[u8]>,
}

// SAFETY: the request's slices point into the heap buffer it owns, which
// moves with it; nothing in it is tied to a thread.
unsafe impl Send for OwnedRequest {}

impl OwnedRequest {
    fn new(r: &Request<'_>) -> OwnedRequest {
        // one buffer holding every byte string of the request
        let mut total = 0;
        let mut count = |b: &[u8]| total += b.len();
        visit_bytes(r, &mut count);
        let mut buf: Vec<u8> = Vec::with_capacity(total);
        visit_bytes(r, &mut |b: &[u8]| buf.extend_from_slice(b));
        let bytes = buf.into_boxed_slice();
        let mut at = 0;
        let base = bytes.as_ptr();
        let mut take = |b: &[u8]| -> &'static [u8] {
            // SAFETY: the bytes were copied in this same order; the buffer is
            // heap memory that lives (unmoved) as long as the OwnedRequest.
            let s = unsafe { std::slice::from_raw_parts(base.add(at), b.len()) };
            at += b.len();
            s
        };
        let mut key = |b: &[u8]| take(b);
        let req = rebuild(r, &mut key);
        OwnedRequest { req, _bytes: bytes }
    }

    /// The request, borrowed from its own buffer.
    pub fn get(&self) -> &Request<'_> {
        &self.req
    }
}

/// Calls `f` on every byte string of `r` in a fixed order.
fn visit_bytes(r: &Request<'_>, f: &mut dyn FnMut(&[u8])) {
    match r {
        Request::Retrieve { key, .. }
        | Request::Delete { key, .. }
        | Request::Touch { key, .. }
        | Request::Arith { key, .. } => f(key),
        Request::Store { key, value, .. }
        | Request::Cas { key, value, .. }
        | Request::Meta { key, value, .. } => {
            f(key);
            f(value);
        }
        Request::RetrieveMany { keys, .. }
        | Request::DeleteMany { keys, .. }
        | Request::TouchMany { keys, .. } => keys.iter().for_each(|k| f(k)),
        Request::SetMany { items, .. } => items.iter().for_each(|(k, v, _)| {
            f(k);
            f(v);
        }),
        Request::Stats { args } => f(args.as_bytes()),
        Request::FlushAll { .. } | Request::Version => {}
    }
}

/// `r` with every byte string replaced by `f(bytes)`, in `visit_bytes` order.
fn rebuild<'b>(r: &Request<'_>, f: &mut dyn FnMut(&[u8]) -> &'b [u8]) -> Request<'b> {
    match *r {
        Request::Retrieve { cmd, key } => Request::Retrieve { cmd, key: f(key) },
        Request::RetrieveMany { cmd, ref keys } => Request::RetrieveMany {
            cmd,
            keys: keys.iter().map(|k| f(k)).collect(),
        },
        Request::Store {
            cmd,
            key,
            value,
            flags,
            exptime,
            noreply,
        } => Request::Store {
            cmd,
            key: f(key),
            value: f(value),
            flags,
            exptime,
            noreply,
        },
        Request::Cas {
            key,
            value,
            flags,
            exptime,
            cas,
            noreply,
        } => Request::Cas {
            key: f(key),
            value: f(value),
            flags,
            exptime,
            cas,
            noreply,
        },
        Request::Delete { key, noreply } => Request::Delete {
            key: f(key),
            noreply,
        },
        Request::Touch {
            key,
            exptime,
            noreply,
        } => Request::Touch {
            key: f(key),
            exptime,
            noreply,
        },
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => Request::Arith {
            incr,
            key: f(key),
            delta,
            noreply,
        },
        Request::SetMany {
            ref items,
            exptime,
            noreply,
        } => Request::SetMany {
            items: items.iter().map(|&(k, v, fl)| (f(k), f(v), fl)).collect(),
            exptime,
            noreply,
        },
        Request::DeleteMany { ref keys, noreply } => Request::DeleteMany {
            keys: keys.iter().map(|k| f(k)).collect(),
            noreply,
        },
        Request::TouchMany {
            ref keys,
            exptime,
            noreply,
        } => Request::TouchMany {
            keys: keys.iter().map(|k| f(k)).collect(),
            exptime,
            noreply,
        },
        Request::FlushAll { delay, noreply } => Request::FlushAll { delay, noreply },
        Request::Version => Request::Version,
        Request::Meta { op, key, value } => Request::Meta {
            op,
            key: f(key),
            value: f(value),
        },
        Request::Stats { args } => Request::Stats {
            // the bytes came from a str, so they are UTF-8
            args: std::str::from_utf8(f(args.as_bytes())).unwrap_or_default(),
        },
    }
}

impl Client {
    /// The checks every command makes before any I/O: keys, values,
    /// exptimes, stats arguments. The event loop runs them at submission.
    pub(crate) fn check_request(&self, r: &Request<'_>) -> Result<()> {
        if let Request::Meta { op, key, value } = *r {
            return self.check_meta(op, key, value);
        }
        let exptime = match *r {
            Request::Retrieve {
                cmd: Retrieve::Gat(e) | Retrieve::Gats(e),
                ..
            }
            | Request::RetrieveMany {
                cmd: Retrieve::Gat(e) | Retrieve::Gats(e),
                ..
            } => e,
            Request::Store { exptime, .. }
            | Request::Cas { exptime, .. }
            | Request::Touch { exptime, .. }
            | Request::SetMany { exptime, .. }
            | Request::TouchMany { exptime, .. } => exptime,
            Request::FlushAll { delay, .. } => delay,
            _ => 0,
        };
        check_exptime(exptime)?;
        match r {
            Request::Store { value, .. } | Request::Cas { value, .. } => check_value(value)?,
            Request::SetMany { items, .. } => {
                for (k, v, _) in items {
                    self.check_key(k)?;
                    check_value(v)?;
                }
            }
            Request::Stats { args } => check_stats_args(args)?,
            _ => {}
        }
        match r {
            Request::Retrieve { key, .. }
            | Request::Store { key, .. }
            | Request::Cas { key, .. }
            | Request::Delete { key, .. }
            | Request::Touch { key, .. }
            | Request::Arith { key, .. } => self.check_key(key),
            Request::RetrieveMany { keys, .. }
            | Request::DeleteMany { keys, .. }
            | Request::TouchMany { keys, .. } => keys.iter().try_for_each(|k| self.check_key(k)),
            // set_many's keys were checked with their values
            Request::SetMany { .. }
            | Request::FlushAll { .. }
            | Request::Version
            | Request::Stats { .. }
            | Request::Meta { .. } => Ok(()),
        }
    }

    /// Runs `r` and waits for its outcome: the blocking counterpart of
    /// submitting it to an event loop. A many-key command gives each key's
    /// outcome (a failed server does not fail the whole command).
    pub fn execute(&self, r: &Request<'_>) -> Outcome {
        let ack = |ok: Result<bool>, miss: Ack| {
            Outcome::Ack(ok.map(|d| if d { Ack::Done } else { miss }))
        };
        match *r {
            Request::Retrieve { cmd, key } => {
                Outcome::Value(self.fetch_with(cmd, key, OwnedValue::new))
            }
            Request::RetrieveMany { cmd, ref keys } => {
                let mut b = ValuesBuilder::new(keys.len());
                Outcome::Values(
                    self.fetch_many_with(cmd, keys, |i, d, f, c| b.hit(i, d, f, c))
                        .map(|res| {
                            *b.results_mut() = res;
                            b.finish()
                        }),
                )
            }
            Request::Store {
                cmd,
                key,
                value,
                flags,
                exptime,
                noreply,
            } => ack(
                self.store(cmd, key, value, flags, exptime, noreply),
                Ack::NotStored,
            ),
            Request::Cas {
                key,
                value,
                flags,
                exptime,
                cas,
                noreply,
            } => Outcome::Ack(self.cas(key, value, flags, exptime, cas, noreply).map(
                |o| match o {
                    CasOutcome::Stored => Ack::Done,
                    CasOutcome::Exists => Ack::Exists,
                    CasOutcome::NotFound => Ack::NotFound,
                },
            )),
            Request::Delete { key, noreply } => ack(self.delete(key, noreply), Ack::NotFound),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => ack(self.touch(key, exptime, noreply), Ack::NotFound),
            Request::Arith {
                incr,
                key,
                delta,
                noreply,
            } => {
                let r = if incr {
                    self.incr(key, delta, noreply)
                } else {
                    self.decr(key, delta, noreply)
                };
                let sent = noreply == Some(true);
                Outcome::Counter(r.map(|v| match v {
                    _ if sent => Counter::Sent,
                    Some(v) => Counter::Value(v),
                    None => Counter::NotFound,
                }))
            }
            Request::SetMany {
                ref items,
                exptime,
                noreply,
            } => Outcome::Keys(self.set_many_results(items, exptime, noreply)),
            Request::DeleteMany { ref keys, noreply } => {
                Outcome::Keys(self.delete_many_results(keys, noreply))
            }
            Request::TouchMany {
                ref keys,
                exptime,
                noreply,
            } => Outcome::Keys(self.touch_many_results(keys, exptime, noreply)),
            Request::FlushAll { delay, noreply } => {
                Outcome::Ack(self.flush_all(delay, noreply).map(|()| Ack::Done))
            }
            Request::Version => Outcome::Version(self.version()),
            Request::Stats { args } => Outcome::Stats(self.stats(args)),
            Request::Meta { op, key, value } => match op {
                MetaOp::LeaseGet { lease_ttl } => {
                    Outcome::Lease(self.lease_get_with(key, lease_ttl, owned_meta_value))
                }
                MetaOp::LeaseSet {
                    flags,
                    exptime,
                    token,
                } => ack(
                    self.lease_set(key, value, flags, exptime, token),
                    Ack::Exists,
                ),
                MetaOp::Invalidate { stale_ttl } => {
                    ack(self.invalidate(key, stale_ttl), Ack::NotFound)
                }
                MetaOp::Get => Outcome::Value(self.meta_get_with(key, owned_meta_value)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_copy_is_the_same_request() {
        let k1 = b"key-1".to_vec();
        let v1 = b"value one".to_vec();
        let r = Request::SetMany {
            items: vec![(&k1, &v1, 7), (b"k2", b"", 0)],
            exptime: 5,
            noreply: Some(false),
        };
        let owned = r.to_owned();
        drop((k1, v1));
        let Request::SetMany {
            items,
            exptime,
            noreply,
        } = owned.get()
        else {
            panic!("shape changed");
        };
        assert_eq!(
            items,
            &vec![(&b"key-1"[..], &b"value one"[..], 7), (b"k2", b"", 0)]
        );
        assert_eq!((*exptime, *noreply), (5, Some(false)));
        let s = Request::Stats { args: "items" }.to_owned();
        assert!(matches!(s.get(), Request::Stats { args: "items" }));
    }
}
