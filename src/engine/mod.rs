//! The event-loop engine: many requests in flight on one connection per
//! server, driven by the caller's event loop through one fd, no thread
//! blocked and no thread of its own.
//!
//! An [`EventLoop`] is made from a [`Client`] and shares its cluster state
//! (ring, health, probes, stale-copy tracking): a server that fails on a
//! loop fails for the client's blocking calls too, and the other way round.
//! It has connections of its own (one per server), on which requests are
//! pipelined: everything submitted between two turns of the loop goes out
//! in one write per server, and each reply is matched to its request (see
//! [`pipe`](self) for how nothing can shift them).
//!
//! Thread rules:
//! - the loop belongs to the thread that made it: `run`, `flush`, `submit`
//!   and drop happen there; callbacks run there, inside `run`;
//! - other threads submit through a [`Submitter`] (the C API does this for
//!   them when called from another thread): their requests are handed over
//!   lock-free and the loop's fd wakes its thread;
//! - a callback may submit more requests (they go out at the end of the
//!   same `run`) and, through the C API, free the loop.
//!
//! Driving it: wait until [`EventLoop::fd`] is readable or
//! [`EventLoop::timeout`] has passed, then call [`EventLoop::run`]. The fd
//! is readable whenever `run` has work (replies, wake-ups, submissions made
//! outside `run`); `timeout` is the time until the next deadline.
//!
//! Timeouts: a request's reply must be complete within the client's
//! `timeout` from its submission (from the moment its connection is up,
//! when it waited for a connect, which has `connect_timeout` of its own).
//! When it is not, the connection is dropped: the requests whose bytes were
//! written fail with TIMEOUT, the others go out on a fresh connection.

mod job;
mod meta;
mod pipe;
mod remote;

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

pub use job::Callback;
use job::{JobRef, Jobs, LineKind, Shape};
use pipe::{Ctx, Pipe};
use remote::Remote;

use crate::client::Client;
use crate::conn::Deadline;
use crate::error::{Error, Result};
use crate::protocol::{encode, StoreCmd, WireKey};
use crate::request::{Outcome, OwnedRequest, Request};
use crate::value::KeyStatus;

const WAKER: mio::Token = mio::Token(0);

/// An event loop over a client's servers. See the module documentation.
pub struct EventLoop {
    client: Client,
    poll: mio::Poll,
    events: mio::Events,
    remote: Arc<Remote>,
    pipes: Vec<Pipe>,
    jobs: Jobs,
    /// per pipe: a resolution of its host name is under way
    resolving: Vec<bool>,
    in_run: bool,
    auto_wake: bool,
    /// a wake-up was sent for submissions made outside `run`
    woken: bool,
    free_requested: bool,
    closed: bool,
    /// tied to its thread
    _not_send: PhantomData<*const ()>,
}

/// Submits requests to an [`EventLoop`] from any thread (`Send + Sync`,
/// cheap to clone). Its callbacks run on the loop's thread.
#[derive(Clone)]
pub struct Submitter {
    client: Client,
    remote: Arc<Remote>,
}

fn cancelled() -> Error {
    Error::Cancelled("the event loop was freed".into())
}

impl Submitter {
    /// Checks `req` (an invalid key or argument is refused here, before any
    /// I/O, and `cb` is never called) and hands it to the loop.
    pub fn submit(
        &self,
        req: &Request<'_>,
        cb: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<()> {
        // SAFETY: a Send closure may run on the loop's thread.
        unsafe { self.submit_callback(req, Callback::new(cb)) }
    }

    /// `submit` with a ready-made callback.
    ///
    /// # Safety
    /// `cb` must be safe to call on the loop's thread.
    pub unsafe fn submit_callback(&self, req: &Request<'_>, cb: Callback) -> Result<()> {
        self.client.check_request(req)?;
        self.remote
            .push(req.to_owned(), cb)
            .map_err(|_| cancelled())
    }
}

impl EventLoop {
    /// A loop sharing `client`'s cluster state, with connections of its own
    /// (opened on first use). The loop keeps the client's state alive.
    pub fn new(client: &Client) -> Result<EventLoop> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let pipes: Vec<Pipe> = client
            .cluster
            .servers()
            .iter()
            .enumerate()
            .map(|(i, s)| Pipe::new(i, s.spec.addr.clone()))
            .collect();
        Ok(EventLoop {
            client: client.clone(),
            poll,
            events: mio::Events::with_capacity(64),
            remote: Arc::new(Remote::new(waker)),
            resolving: vec![false; pipes.len()],
            pipes,
            jobs: Jobs::default(),
            in_run: false,
            auto_wake: true,
            woken: false,
            free_requested: false,
            closed: false,
            _not_send: PhantomData,
        })
    }

    /// The one fd to wait on for readability (an epoll fd on Linux).
    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// How long the caller may wait on [`EventLoop::fd`] before calling
    /// [`EventLoop::run`]: zero when there is work now, `None` when nothing
    /// is pending.
    pub fn timeout(&self) -> Option<Duration> {
        if self.jobs.done_len() > 0
            || self.pipes.iter().any(|p| p.want_flush)
            || self.remote.has_work()
        {
            return Some(Duration::ZERO);
        }
        let now = Deadline::now();
        self.pipes
            .iter()
            .filter_map(Pipe::next_deadline)
            .min()
            .map(|d| d.left_at(now))
    }

    /// For tests: whether the TLS session of the connection to server
    /// `server` was resumed (Some(true)) or fully negotiated (Some(false));
    /// None without a TLS connection up.
    #[doc(hidden)]
    pub fn tls_resumed(&self, server: usize) -> Option<bool> {
        self.pipes.get(server).and_then(Pipe::tls_resumed)
    }

    /// Requests submitted and not completed yet (their callbacks pending).
    pub fn pending(&self) -> usize {
        self.jobs.live() + self.jobs.done_len()
    }

    /// A handle for submitting from other threads.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            client: self.client.clone(),
            remote: Arc::clone(&self.remote),
        }
    }

    /// Whether a submission made outside `run` on the loop's thread makes
    /// the fd readable (default on). Off, the caller promises to call
    /// [`EventLoop::flush`] or `run` after submitting (e.g. from a
    /// prepare/check hook of its event loop), which saves a wake-up syscall
    /// per turn; `timeout` still returns zero while requests wait unsent.
    pub fn set_auto_wake(&mut self, on: bool) {
        self.auto_wake = on;
    }

    /// Checks `req` and starts it; `cb` runs once, inside a later `run`,
    /// with its outcome. An invalid key or argument is refused here (and
    /// `cb` is never called), as is any submission once the loop is closing
    /// (`Error::Cancelled`).
    pub fn submit(&mut self, req: &Request<'_>, cb: Callback) -> Result<()> {
        if self.closed || self.free_requested {
            return Err(cancelled());
        }
        self.client.check_request(req)?;
        self.start(req, cb);
        if !self.in_run && self.auto_wake && !self.woken {
            self.woken = true;
            self.remote.wake();
        }
        Ok(())
    }

    /// `submit` with a closure.
    pub fn submit_with(
        &mut self,
        req: &Request<'_>,
        cb: impl FnOnce(Outcome) + 'static,
    ) -> Result<()> {
        self.submit(req, Callback::new(cb))
    }

    /// The pipes and what they need, borrowed apart.
    fn split(&mut self, now: Deadline) -> (&mut Vec<Pipe>, Ctx<'_>) {
        (
            &mut self.pipes,
            Ctx {
                jobs: &mut self.jobs,
                cluster: &self.client.cluster,
                registry: self.poll.registry(),
                opts: self.client.cluster.conn_options(),
                prefix: &self.client.key_prefix,
                now,
                resolve: false,
            },
        )
    }

    /// Routes a request's keys and queues its parts on the pipes.
    fn start(&mut self, req: &Request<'_>, cb: Callback) {
        let now = Deadline::now();
        let due = now.plus(self.client.timeout);
        let ignore_exc = self.client.ignore_exc;
        let default_noreply = self.client.noreply_default(None);
        let nr = |o: Option<bool>| o.unwrap_or(default_noreply);
        let cluster = Arc::clone(&self.client.cluster);
        let servers = self.pipes.len();
        // meta: checked at submission, so the key is valid as one or the other
        let base64 = match *req {
            Request::Meta { key, .. } => self.client.meta_key(key).is_ok_and(|k| k.base64),
            _ => false,
        };
        let recache = self.client.meta.recache_threshold;
        let (pipes, mut cx) = self.split(now);
        match *req {
            Request::Retrieve { cmd, key } => {
                let j = cx.jobs.start(Shape::Value, 1, ignore_exc, cb);
                match cluster.route(key) {
                    Ok(s) => pipes[s].retrieve(&mut cx, cmd, key, j, 0, due),
                    Err(e) => cx.jobs.fail(j, &[0], e),
                }
            }
            Request::RetrieveMany { cmd, ref keys } => {
                let j = cx
                    .jobs
                    .start(Shape::Values(keys.len()), keys.len() as u32, ignore_exc, cb);
                let mut unroutable = Unroutable::default();
                for (i, k) in keys.iter().enumerate() {
                    match cluster.route(k) {
                        Ok(s) => pipes[s].retrieve(&mut cx, cmd, k, j, i as u32, due),
                        Err(e) => unroutable.add(i as u32, e),
                    }
                }
                unroutable.fail(cx.jobs, j);
            }
            Request::Store {
                cmd,
                key,
                value,
                flags,
                exptime,
                noreply,
            } => {
                let noreply = nr(noreply);
                let j = cx.jobs.start(Shape::Ack, 1, ignore_exc, cb);
                let wk = WireKey {
                    prefix: cx.prefix,
                    key,
                };
                match cluster.route(key) {
                    Ok(s) => pipes[s].line(&mut cx, LineKind::Store, j, 0, noreply, due, |b| {
                        let exptime = cluster.write_exptime(key, exptime);
                        encode::store(b, cmd, wk, flags, exptime, value, noreply)
                    }),
                    Err(e) => cx.jobs.fail(j, &[0], e),
                }
            }
            Request::Cas {
                key,
                value,
                flags,
                exptime,
                cas,
                noreply,
            } => {
                let noreply = noreply.unwrap_or(false);
                let j = cx.jobs.start(Shape::Ack, 1, ignore_exc, cb);
                let wk = WireKey {
                    prefix: cx.prefix,
                    key,
                };
                match cluster.route(key) {
                    Ok(s) => pipes[s].line(&mut cx, LineKind::Cas, j, 0, noreply, due, |b| {
                        let exptime = cluster.write_exptime(key, exptime);
                        encode::cas(b, wk, flags, exptime, value, cas, noreply)
                    }),
                    Err(e) => cx.jobs.fail(j, &[0], e),
                }
            }
            Request::Delete { key, noreply } => {
                let noreply = nr(noreply);
                self::one_line(
                    pipes,
                    &mut cx,
                    &cluster,
                    Shape::Ack,
                    LineKind::Delete,
                    key,
                    noreply,
                    due,
                    ignore_exc,
                    cb,
                    |b, wk| encode::delete(b, wk, noreply),
                );
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                let noreply = nr(noreply);
                self::one_line(
                    pipes,
                    &mut cx,
                    &cluster,
                    Shape::Ack,
                    LineKind::Touch,
                    key,
                    noreply,
                    due,
                    ignore_exc,
                    cb,
                    |b, wk| encode::touch(b, wk, cluster.write_exptime(wk.key, exptime), noreply),
                );
            }
            Request::Arith {
                incr,
                key,
                delta,
                noreply,
            } => {
                let noreply = noreply.unwrap_or(false);
                self::one_line(
                    pipes,
                    &mut cx,
                    &cluster,
                    Shape::Counter,
                    LineKind::Arith,
                    key,
                    noreply,
                    due,
                    ignore_exc,
                    cb,
                    |b, wk| encode::arith(b, incr, wk, delta, noreply),
                );
            }
            Request::SetMany {
                ref items,
                exptime,
                noreply,
            } => {
                let noreply = nr(noreply);
                let j = cx.jobs.start(
                    Shape::Keys(items.len(), KeyStatus::NotStored),
                    items.len() as u32,
                    ignore_exc,
                    cb,
                );
                let mut unroutable = Unroutable::default();
                for (i, &(k, v, f)) in items.iter().enumerate() {
                    let wk = WireKey {
                        prefix: cx.prefix,
                        key: k,
                    };
                    match cluster.route(k) {
                        Ok(s) => pipes[s].line(
                            &mut cx,
                            LineKind::Store,
                            j,
                            i as u32,
                            noreply,
                            due,
                            |b| {
                                let e = cluster.write_exptime(k, exptime);
                                encode::store(b, StoreCmd::Set, wk, f, e, v, noreply)
                            },
                        ),
                        Err(e) => unroutable.add(i as u32, e),
                    }
                }
                unroutable.fail(cx.jobs, j);
            }
            Request::DeleteMany { ref keys, noreply } => {
                let noreply = nr(noreply);
                keyed_many(
                    pipes,
                    &mut cx,
                    &cluster,
                    LineKind::Delete,
                    keys,
                    noreply,
                    due,
                    ignore_exc,
                    cb,
                    |b, wk| encode::delete(b, wk, noreply),
                );
            }
            Request::TouchMany {
                ref keys,
                exptime,
                noreply,
            } => {
                let noreply = nr(noreply);
                keyed_many(
                    pipes,
                    &mut cx,
                    &cluster,
                    LineKind::Touch,
                    keys,
                    noreply,
                    due,
                    ignore_exc,
                    cb,
                    |b, wk| encode::touch(b, wk, cluster.write_exptime(wk.key, exptime), noreply),
                );
            }
            Request::FlushAll { delay, noreply } => {
                let noreply = nr(noreply);
                let j = cx.jobs.start(Shape::All, servers as u32, ignore_exc, cb);
                for (s, p) in pipes.iter_mut().enumerate() {
                    p.line(&mut cx, LineKind::Ok, j, s as u32, noreply, due, |b| {
                        encode::flush_all(b, delay, noreply)
                    });
                }
            }
            Request::Version => {
                let j = cx
                    .jobs
                    .start(Shape::Version(servers), servers as u32, ignore_exc, cb);
                for (s, p) in pipes.iter_mut().enumerate() {
                    p.line(
                        &mut cx,
                        LineKind::Version,
                        j,
                        s as u32,
                        false,
                        due,
                        encode::version,
                    );
                }
            }
            Request::Stats { args } => {
                let j = cx
                    .jobs
                    .start(Shape::Stats(servers), servers as u32, ignore_exc, cb);
                for (s, p) in pipes.iter_mut().enumerate() {
                    p.stats(&mut cx, args, j, s as u32, due);
                }
            }
            Request::Meta { op, key, value } => {
                let m = meta::MetaStart {
                    op,
                    key,
                    value,
                    base64,
                    recache,
                    ignore_exc,
                    due,
                };
                meta::start(pipes, &mut cx, &cluster, m, cb);
            }
        }
        if cx.resolve {
            self.start_resolvers();
        }
    }

    /// Asks for the host names that pipes are waiting for.
    fn start_resolvers(&mut self) {
        for (i, p) in self.pipes.iter().enumerate() {
            if let Some((host, port)) = p.needs_resolving() {
                if !self.resolving[i] {
                    self.resolving[i] = true;
                    self.remote.resolve(i, host, port);
                }
            }
        }
    }

    /// Writes what the submitted requests put in the pipes' buffers (no
    /// callbacks run). For callers that drive submission from a hook of
    /// their own loop (see [`EventLoop::set_auto_wake`]).
    pub fn flush(&mut self) {
        let now = Deadline::now();
        let (pipes, mut cx) = self.split(now);
        for p in pipes.iter_mut().filter(|p| p.want_flush) {
            p.flush(&mut cx);
        }
    }

    /// Does what is ready, never blocking: takes submissions from other
    /// threads, reads replies, writes requests, expires deadlines, then runs
    /// the callbacks of the requests that completed (those completed by
    /// these callbacks run in the next call). An error is a failure of the
    /// poller itself.
    pub fn run(&mut self) -> Result<()> {
        let n = self.run_io()?;
        for _ in 0..n {
            let Some((cb, outcome)) = self.next_done() else {
                break;
            };
            cb.call(outcome);
        }
        self.end_run();
        Ok(())
    }

    /// The I/O half of `run`: returns how many callbacks are ready (take
    /// them with `next_done`, then call `end_run`). The C API runs the
    /// callbacks itself, holding no borrow of the loop while they run.
    pub(crate) fn run_io(&mut self) -> Result<usize> {
        if self.closed {
            return Err(cancelled());
        }
        self.in_run = true;
        self.woken = false;
        self.remote.rearm();
        self.take_remote();
        loop {
            match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.in_run = false;
                    return Err(Error::Io(e));
                }
            }
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .filter(|e| e.token() != WAKER)
            .map(|e| {
                let hup = e.is_error() || e.is_read_closed() || e.is_write_closed();
                (
                    e.token().0 - 1,
                    e.is_readable() || hup,
                    e.is_writable() || hup,
                )
            })
            .collect();
        let now = Deadline::now();
        {
            let (pipes, mut cx) = self.split(now);
            for (p, r, w) in ready {
                if let Some(p) = pipes.get_mut(p) {
                    p.on_event(&mut cx, r, w);
                }
            }
        }
        self.take_remote();
        self.take_resolved();
        {
            let (pipes, mut cx) = self.split(now);
            for p in pipes.iter_mut() {
                p.check_timeouts(&mut cx);
            }
        }
        self.flush();
        Ok(self.jobs.done_len())
    }

    /// The next completed request, with its outcome.
    pub(crate) fn next_done(&mut self) -> Option<(Callback, Outcome)> {
        self.jobs.pop_done()
    }

    /// The end of `run`: sends what the callbacks submitted.
    pub(crate) fn end_run(&mut self) {
        self.start_resolvers();
        self.flush();
        self.in_run = false;
    }

    /// Waits (blocking) up to `max` for the loop to have work, then runs it:
    /// a simple driver for programs without an event loop of their own.
    pub fn wait(&mut self, max: Duration) -> Result<()> {
        let wait = self.timeout().map_or(max, |t| t.min(max));
        if !wait.is_zero() {
            let mut pfd = libc::pollfd {
                fd: self.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // round up: waking a little late is harmless, early just spins
            let ms = wait.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        }
        self.run()
    }

    fn take_remote(&mut self) {
        for (req, cb) in self.remote.take() {
            self.start_owned(req, cb);
        }
    }

    fn start_owned(&mut self, req: OwnedRequest, cb: Callback) {
        if self.closed {
            self.jobs
                .push_done(cb, Outcome::failed(req.get(), cancelled()));
        } else {
            self.start(req.get(), cb);
        }
    }

    fn take_resolved(&mut self) {
        let now = Deadline::now();
        for (server, r) in self.remote.take_resolved() {
            self.resolving[server] = false;
            let (pipes, mut cx) = self.split(now);
            pipes[server].resolved(&mut cx, r);
        }
    }

    /// Asks the loop to free itself once the running callback returns (the
    /// C API's `mcrs_loop_free` from inside a callback). True when the free
    /// must wait: the call came from inside `run`, or the loop is already
    /// closing.
    pub(crate) fn request_free(&mut self) -> bool {
        let deferred = self.in_run || self.closed;
        self.free_requested = true;
        deferred
    }

    /// True once `request_free` was called.
    pub(crate) fn free_requested(&self) -> bool {
        self.free_requested
    }

    /// Closes the loop: refuses submissions, completes every pending request
    /// with `Cancelled` (queued for `next_done`, after those already done)
    /// and closes the connections.
    pub(crate) fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for (req, cb) in self.remote.close() {
            self.jobs
                .push_done(cb, Outcome::failed(req.get(), cancelled()));
        }
        for r in self.jobs.live_refs() {
            self.jobs.abort(r, cancelled());
        }
        let now = Deadline::now();
        let (pipes, mut cx) = self.split(now);
        for p in pipes.iter_mut() {
            p.shutdown(&mut cx);
        }
    }
}

impl Drop for EventLoop {
    /// Each pending request completes once: with its outcome when it is
    /// done, else with `Cancelled`.
    fn drop(&mut self) {
        self.close();
        while let Some((cb, outcome)) = self.jobs.pop_done() {
            cb.call(outcome);
        }
    }
}

/// Keys of a request whose server cannot be used, grouped by the reason.
#[derive(Default)]
struct Unroutable(Vec<(Vec<u32>, Error)>);

impl Unroutable {
    fn add(&mut self, slot: u32, e: Error) {
        let why = e.to_string();
        match self.0.iter_mut().find(|(_, u)| u.to_string() == why) {
            Some((v, _)) => v.push(slot),
            None => self.0.push((vec![slot], e)),
        }
    }

    fn fail(self, jobs: &mut Jobs, j: JobRef) {
        for (slots, e) in self.0 {
            jobs.fail(j, &slots, e);
        }
    }
}

/// A one-key command answered by one line.
#[allow(clippy::too_many_arguments)]
fn one_line(
    pipes: &mut [Pipe],
    cx: &mut Ctx<'_>,
    cluster: &crate::cluster::Cluster,
    shape: Shape,
    kind: LineKind,
    key: &[u8],
    noreply: bool,
    due: Deadline,
    ignore_exc: bool,
    cb: Callback,
    encode: impl FnOnce(&mut Vec<u8>, WireKey<'_>),
) {
    let j = cx.jobs.start(shape, 1, ignore_exc, cb);
    let wk = WireKey {
        prefix: cx.prefix,
        key,
    };
    match cluster.route(key) {
        Ok(s) => pipes[s].line(cx, kind, j, 0, noreply, due, |b| encode(b, wk)),
        Err(e) => cx.jobs.fail(j, &[0], e),
    }
}

/// delete_many / touch_many: a one-line command per key.
#[allow(clippy::too_many_arguments)]
fn keyed_many(
    pipes: &mut [Pipe],
    cx: &mut Ctx<'_>,
    cluster: &crate::cluster::Cluster,
    kind: LineKind,
    keys: &[&[u8]],
    noreply: bool,
    due: Deadline,
    ignore_exc: bool,
    cb: Callback,
    encode: impl Fn(&mut Vec<u8>, WireKey<'_>),
) {
    let shape = Shape::Keys(keys.len(), KeyStatus::NotFound);
    let j = cx.jobs.start(shape, keys.len() as u32, ignore_exc, cb);
    let mut unroutable = Unroutable::default();
    for (i, k) in keys.iter().enumerate() {
        let wk = WireKey {
            prefix: cx.prefix,
            key: k,
        };
        match cluster.route(k) {
            Ok(s) => pipes[s].line(cx, kind, j, i as u32, noreply, due, |b| encode(b, wk)),
            Err(e) => unroutable.add(i as u32, e),
        }
    }
    unroutable.fail(cx.jobs, j);
}
