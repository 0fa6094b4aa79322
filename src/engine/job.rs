//! Requests in flight on an event loop: their callbacks, and the results
//! they accumulate while the replies of their parts (one per key, or one
//! per server) come in from the connections.

use super::meta::MetaKind;
use crate::error::Error;
use crate::lease::{lease_free_win, Lease};
use crate::request::{Ack, Counter, Outcome};
use crate::value::{KeyResults, KeyStatus, OwnedValue, ValuesBuilder};

/// What to call when a request completes: a function with two words of
/// context, so that a C function pointer and its userdata travel without an
/// allocation, and a Rust closure as one box.
pub struct Callback {
    call: unsafe fn(usize, usize, Outcome),
    a: usize,
    b: usize,
}

// SAFETY: a callback is only ever called once, on the loop's thread; one
// submitted from another thread was made from a `Send` closure
// (`Callback::new_send`) or a C function whose caller vouches for its
// userdata (the C API documents that callbacks run on the loop's thread).
unsafe impl Send for Callback {}

impl Callback {
    /// A Rust closure (boxed once).
    pub fn new<F: FnOnce(Outcome) + 'static>(f: F) -> Callback {
        unsafe fn call_boxed<F: FnOnce(Outcome)>(a: usize, _: usize, o: Outcome) {
            // SAFETY: `a` is the Box::into_raw of an F, called once.
            let f = unsafe { Box::from_raw(a as *mut F) };
            f(o)
        }
        Callback {
            call: call_boxed::<F>,
            a: Box::into_raw(Box::new(f)) as usize,
            b: 0,
        }
    }

    /// A closure that may be submitted from another thread.
    pub fn new_send<F: FnOnce(Outcome) + Send + 'static>(f: F) -> Callback {
        Self::new(f)
    }

    /// A function of two context words (the C API's trampolines).
    ///
    /// # Safety
    /// `call(a, b, outcome)` must be sound to run once on the loop's thread.
    pub unsafe fn from_raw(call: unsafe fn(usize, usize, Outcome), a: usize, b: usize) -> Callback {
        Callback { call, a, b }
    }

    /// Calls it (consuming it: a callback runs exactly once).
    pub fn call(self, o: Outcome) {
        // SAFETY: the constructors' contracts; `self` is consumed, so once.
        unsafe { (self.call)(self.a, self.b, o) }
    }
}

/// Identifies a request in flight: an index into the job table and the
/// generation of that slot, so a reply that arrives after its request
/// completed (timed out, cancelled) cannot reach the slot's next user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRef {
    pub idx: u32,
    pub gen: u32,
}

/// How a one-line reply is read for a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// set/add/replace/append/prepend: STORED / NOT_STORED
    Store,
    /// cas: STORED / EXISTS / NOT_FOUND
    Cas,
    /// DELETED / NOT_FOUND
    Delete,
    /// TOUCHED / NOT_FOUND
    Touch,
    /// a number / NOT_FOUND
    Arith,
    /// OK (flush_all)
    Ok,
    /// `VERSION <text>`
    Version,
    /// a meta command, answered by one meta reply (never quiet)
    Meta(MetaKind),
}

/// A reply to a part, decoded.
#[derive(Debug)]
pub enum Answer {
    Ack(Ack),
    Number(u64),
    Version(String),
    /// a lease get's lease
    Lease(Lease<OwnedValue>),
    /// a meta get's value, or a miss
    Value(Option<OwnedValue>),
}

/// One `stats` line: (server, name, value).
pub type Stat = (String, String, String);

/// The result a request builds up, by shape.
enum Acc {
    /// a hit's bytes wait in `Jobs::stage` until its callback runs
    Value(Option<Result<Option<Staged>, Error>>),
    Values(Box<ValuesBuilder>),
    Ack(Option<Result<Ack, Error>>),
    Counter(Option<Result<Counter, Error>>),
    /// per-key outcomes; `miss` is what a key that failed becomes with ignore_exc
    Keys(Box<KeyResults>, KeyStatus),
    /// one answer per server: the first success in server order wins
    Version(Vec<Option<Result<String, Error>>>),
    /// one answer per server: the first failure wins
    Stats(Vec<Option<Result<Vec<Stat>, Error>>>),
    /// flush_all on every server: the first failure wins
    All(Option<Error>),
    /// a lease get
    Lease(Option<Result<Lease<OwnedValue>, Error>>),
    /// a meta get (its value carries TTL left, last access, hit-before)
    MetaValue(Option<Result<Option<OwnedValue>, Error>>),
}

struct Job {
    gen: u32,
    cb: Option<Callback>,
    acc: Acc,
    /// parts (keys, or servers) still waiting for their result
    parts: u32,
    ignore_exc: bool,
}

/// The shape of a new request's result.
pub enum Shape {
    Value,
    /// n keys
    Values(usize),
    Ack,
    Counter,
    /// n keys; a failed key becomes `KeyStatus` under ignore_exc
    Keys(usize, KeyStatus),
    /// n servers
    Version(usize),
    /// n servers
    Stats(usize),
    /// flush_all over every server
    All,
    /// a lease get
    Lease,
    /// a meta get
    MetaValue,
}

/// The table of requests in flight. Slots are reused; a completed slot's
/// generation moves on, so late replies for it are dropped.
#[derive(Default)]
pub struct Jobs {
    slots: Vec<Job>,
    free: Vec<u32>,
    live: usize,
    /// completed requests whose callbacks have not run yet, in order
    done: std::collections::VecDeque<(Callback, Done)>,
    /// the bytes of hits waiting in `done`: a value is made just before its
    /// callback runs, so the block the previous callback freed is reused
    /// (no malloc/free pair per get with many in flight)
    stage: Vec<u8>,
}

/// A hit's place in `Jobs::stage`.
#[derive(Clone, Copy, Debug)]
struct Staged {
    at: usize,
    len: usize,
    flags: u32,
    cas: Option<u64>,
}

/// A completed request's outcome, or its hit still in the stage.
enum Done {
    Outcome(Outcome),
    Hit(Staged),
}

impl Jobs {
    pub fn live(&self) -> usize {
        self.live
    }

    /// Completed requests whose callbacks have not run.
    pub fn done_len(&self) -> usize {
        self.done.len()
    }

    /// Queues a callback with its outcome.
    pub fn push_done(&mut self, cb: Callback, o: Outcome) {
        self.done.push_back((cb, Done::Outcome(o)));
    }

    /// The oldest completed request, with its outcome.
    pub fn pop_done(&mut self) -> Option<(Callback, Outcome)> {
        let (cb, d) = self.done.pop_front()?;
        let o = match d {
            Done::Outcome(o) => o,
            Done::Hit(h) => {
                let data = &self.stage[h.at..h.at + h.len];
                Outcome::Value(Ok(Some(OwnedValue::new(data, h.flags, h.cas))))
            }
        };
        if self.done.is_empty() {
            self.stage.clear();
        }
        Some((cb, o))
    }

    /// A new request of `shape` waiting for `parts` results.
    pub fn start(&mut self, shape: Shape, parts: u32, ignore_exc: bool, cb: Callback) -> JobRef {
        let acc = match shape {
            Shape::Value => Acc::Value(None),
            Shape::Values(n) => Acc::Values(Box::new(ValuesBuilder::new(n))),
            Shape::Ack => Acc::Ack(None),
            Shape::Counter => Acc::Counter(None),
            Shape::Keys(n, miss) => Acc::Keys(Box::new(KeyResults::new(n, KeyStatus::Ok)), miss),
            Shape::Version(n) => Acc::Version((0..n).map(|_| None).collect()),
            Shape::Stats(n) => Acc::Stats((0..n).map(|_| None).collect()),
            Shape::All => Acc::All(None),
            Shape::Lease => Acc::Lease(None),
            Shape::MetaValue => Acc::MetaValue(None),
        };
        self.live += 1;
        let job = |gen| Job {
            gen,
            cb: Some(cb),
            acc,
            parts,
            ignore_exc,
        };
        let r = match self.free.pop() {
            Some(idx) => {
                let slot = &mut self.slots[idx as usize];
                let gen = slot.gen.wrapping_add(1);
                *slot = job(gen);
                JobRef { idx, gen }
            }
            None => {
                self.slots.push(job(0));
                JobRef {
                    idx: self.slots.len() as u32 - 1,
                    gen: 0,
                }
            }
        };
        if parts == 0 {
            // nothing to wait for (a many-key request of no keys)
            self.slots[r.idx as usize].parts = 1;
            self.part_done(r);
        }
        r
    }

    fn get(&mut self, r: JobRef) -> Option<&mut Job> {
        self.slots
            .get_mut(r.idx as usize)
            .filter(|j| j.gen == r.gen && j.cb.is_some())
    }

    /// A hit for part `slot` (a key index), read with `cmd`.
    pub fn hit(&mut self, r: JobRef, slot: u32, data: &[u8], flags: u32, cas: Option<u64>) {
        let Some(j) = self
            .slots
            .get_mut(r.idx as usize)
            .filter(|j| j.gen == r.gen && j.cb.is_some())
        else {
            return;
        };
        match &mut j.acc {
            Acc::Value(v) => {
                let at = self.stage.len();
                self.stage.extend_from_slice(data);
                *v = Some(Ok(Some(Staged {
                    at,
                    len: data.len(),
                    flags,
                    cas,
                })));
            }
            Acc::Values(b) => b.hit(slot as usize, data, flags, cas),
            _ => {}
        }
        self.part_done(r);
    }

    /// A miss for part `slot`.
    pub fn miss(&mut self, r: JobRef, _slot: u32) {
        let Some(j) = self.get(r) else { return };
        if let Acc::Value(v) = &mut j.acc {
            *v = Some(Ok(None));
        }
        self.part_done(r);
    }

    /// A one-line answer (or a clean error reply) for part `slot`.
    pub fn answer(&mut self, r: JobRef, slot: u32, a: Result<Answer, Error>) {
        let Some(j) = self.get(r) else { return };
        match (&mut j.acc, a) {
            (Acc::Ack(v), Ok(Answer::Ack(a))) => *v = Some(Ok(a)),
            (Acc::Ack(v), Err(e)) => *v = Some(Err(e)),
            (Acc::Counter(v), Ok(Answer::Number(n))) => *v = Some(Ok(Counter::Value(n))),
            (Acc::Counter(v), Ok(Answer::Ack(Ack::NotFound))) => *v = Some(Ok(Counter::NotFound)),
            (Acc::Counter(v), Err(e)) => *v = Some(Err(e)),
            (Acc::Keys(k, _), Ok(Answer::Ack(a))) => {
                k.status[slot as usize] = match a {
                    Ack::Done => KeyStatus::Ok,
                    Ack::NotFound => KeyStatus::NotFound,
                    Ack::NotStored | Ack::Exists => KeyStatus::NotStored,
                }
            }
            // set_many: a SERVER_ERROR for one item (too large) is that item's
            (Acc::Keys(k, _), Err(Error::Server(_))) => {
                k.status[slot as usize] = KeyStatus::NotStored
            }
            (Acc::Keys(k, _), Err(e)) => k.fail([slot as usize], e),
            (Acc::Version(v), a) => {
                v[slot as usize] = Some(a.and_then(|a| match a {
                    Answer::Version(s) => Ok(s),
                    other => Err(Error::Protocol(format!("unexpected reply {other:?}"))),
                }))
            }
            (Acc::All(first), Err(e)) => {
                first.get_or_insert(e);
            }
            (Acc::All(_), Ok(_)) => {}
            (Acc::Lease(v), Ok(Answer::Lease(l))) => *v = Some(Ok(l)),
            (Acc::Lease(v), Err(e)) => *v = Some(Err(e)),
            (Acc::MetaValue(v), Ok(Answer::Value(x))) => *v = Some(Ok(x)),
            (Acc::MetaValue(v), Err(e)) => *v = Some(Err(e)),
            (acc, a) => {
                let e = Error::Protocol(format!("reply {a:?} does not match the request"));
                fail_acc(acc, slot, e);
            }
        }
        self.part_done(r);
    }

    /// The stats of server `slot`.
    pub fn stats(&mut self, r: JobRef, slot: u32, s: Vec<(String, String, String)>) {
        let Some(j) = self.get(r) else { return };
        if let Acc::Stats(v) = &mut j.acc {
            v[slot as usize] = Some(Ok(s));
        }
        self.part_done(r);
    }

    /// A noreply part was written.
    pub fn sent(&mut self, r: JobRef, _slot: u32) {
        let Some(j) = self.get(r) else { return };
        match &mut j.acc {
            Acc::Ack(v) => *v = Some(Ok(Ack::Done)),
            Acc::Counter(v) => *v = Some(Ok(Counter::Sent)),
            _ => {}
        }
        self.part_done(r);
    }

    /// Parts `slots` failed with `e` (their server or connection failed).
    pub fn fail(&mut self, r: JobRef, slots: &[u32], e: Error) {
        let Some(j) = self.get(r) else { return };
        match &mut j.acc {
            Acc::Values(b) => b.fail(slots.iter().map(|&s| s as usize), e),
            Acc::Keys(k, _) => k.fail(slots.iter().map(|&s| s as usize), e),
            acc => fail_acc(acc, slots.first().copied().unwrap_or(0), e),
        }
        let n = slots.len() as u32;
        for _ in 0..n {
            self.part_done(r);
        }
    }

    /// Completes `r` at once with `e` as its whole outcome (a timeout, a
    /// cancellation), whatever its parts still wait for.
    pub fn abort(&mut self, r: JobRef, e: Error) {
        let Some(j) = self.get(r) else { return };
        let cb = j.cb.take().expect("live job has a callback");
        let outcome = failed_outcome(&j.acc, e);
        self.finish_slot(r.idx);
        self.push_done(cb, outcome);
    }

    /// Every live request, for cancellation.
    pub fn live_refs(&self) -> Vec<JobRef> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, j)| j.cb.is_some())
            .map(|(i, j)| JobRef {
                idx: i as u32,
                gen: j.gen,
            })
            .collect()
    }

    fn part_done(&mut self, r: JobRef) {
        let j = &mut self.slots[r.idx as usize];
        j.parts = j.parts.saturating_sub(1);
        if j.parts > 0 {
            return;
        }
        let cb = j.cb.take().expect("live job has a callback");
        let acc = std::mem::replace(&mut j.acc, Acc::All(None));
        let ignore_exc = j.ignore_exc;
        self.finish_slot(r.idx);
        let done = match acc {
            Acc::Value(Some(Ok(Some(hit)))) => Done::Hit(hit),
            acc => Done::Outcome(outcome_of(acc, ignore_exc)),
        };
        self.done.push_back((cb, done));
    }

    fn finish_slot(&mut self, idx: u32) {
        self.live -= 1;
        self.free.push(idx);
    }
}

fn fail_acc(acc: &mut Acc, slot: u32, e: Error) {
    match acc {
        Acc::Value(v) => *v = Some(Err(e)),
        Acc::Ack(v) => *v = Some(Err(e)),
        Acc::Counter(v) => *v = Some(Err(e)),
        Acc::Values(b) => b.fail([slot as usize], e),
        Acc::Keys(k, _) => k.fail([slot as usize], e),
        Acc::Version(v) => v[slot as usize] = Some(Err(e)),
        Acc::Stats(v) => v[slot as usize] = Some(Err(e)),
        Acc::All(first) => {
            first.get_or_insert(e);
        }
        Acc::Lease(v) => *v = Some(Err(e)),
        Acc::MetaValue(v) => *v = Some(Err(e)),
    }
}

fn failed_outcome(acc: &Acc, e: Error) -> Outcome {
    match acc {
        Acc::Value(_) => Outcome::Value(Err(e)),
        Acc::Values(_) => Outcome::Values(Err(e)),
        Acc::Ack(_) | Acc::All(_) => Outcome::Ack(Err(e)),
        Acc::Counter(_) => Outcome::Counter(Err(e)),
        Acc::Keys(..) => Outcome::Keys(Err(e)),
        Acc::Version(_) => Outcome::Version(Err(e)),
        Acc::Stats(_) => Outcome::Stats(Err(e)),
        Acc::Lease(_) => Outcome::Lease(Err(e)),
        Acc::MetaValue(_) => Outcome::Value(Err(e)),
    }
}

fn missing() -> Error {
    Error::Protocol("request completed without a reply".into())
}

/// The outcome of a request whose parts are all in.
fn outcome_of(acc: Acc, ignore_exc: bool) -> Outcome {
    match acc {
        Acc::Value(v) => Outcome::Value(match v.unwrap_or_else(|| Err(missing())) {
            // ignore_exc: a failed read is a miss
            Err(_) if ignore_exc => Ok(None),
            Err(e) => Err(e),
            // hits are delivered from the stage (see `part_done`)
            Ok(_) => Ok(None),
        }),
        Acc::Values(mut b) => {
            if ignore_exc {
                b.results_mut().forgive(KeyStatus::NotFound);
            }
            Outcome::Values(Ok((*b).finish()))
        }
        Acc::Ack(v) => Outcome::Ack(v.unwrap_or_else(|| Err(missing()))),
        Acc::Counter(v) => Outcome::Counter(v.unwrap_or_else(|| Err(missing()))),
        Acc::Keys(mut k, miss) => {
            if ignore_exc {
                k.forgive(miss);
            }
            Outcome::Keys(Ok(*k))
        }
        Acc::Version(v) => {
            let mut last = Error::NoServers;
            for a in v.into_iter().flatten() {
                match a {
                    Ok(s) => return Outcome::Version(Ok(s)),
                    Err(e) => last = e,
                }
            }
            Outcome::Version(Err(last))
        }
        Acc::Stats(v) => {
            let mut all = Vec::new();
            for a in v {
                match a.unwrap_or_else(|| Err(missing())) {
                    Ok(s) => all.extend(s),
                    Err(e) => return Outcome::Stats(Err(e)),
                }
            }
            Outcome::Stats(Ok(all))
        }
        Acc::All(first) => Outcome::Ack(first.map_or(Ok(Ack::Done), Err)),
        Acc::Lease(v) => Outcome::Lease(match v.unwrap_or_else(|| Err(missing())) {
            // ignore_exc: a failed lease get computes without a lease
            Err(_) if ignore_exc => Ok(lease_free_win()),
            r => r,
        }),
        Acc::MetaValue(v) => Outcome::Value(match v.unwrap_or_else(|| Err(missing())) {
            Err(_) if ignore_exc => Ok(None),
            r => r,
        }),
    }
}
