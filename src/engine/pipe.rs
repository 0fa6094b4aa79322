//! One server's connection on an event loop: non-blocking connect, requests
//! pipelined back to back, and each reply matched to the request it answers.
//!
//! The write side is one buffer; every request remembers the byte range it
//! occupies in the connection's output stream, so that when the connection
//! breaks we know, per request, whether any of its bytes reached the server.
//! The read side is a queue of the requests that expect replies, in the
//! order they were written; memcached answers in that order, so the head of
//! the queue owns the next reply.
//!
//! What could shift replies is handled in the queue, never by position
//! alone:
//! - noreply requests are not in the queue (they complete once written); the
//!   error line the server still sends for some of them (a value too large)
//!   is consumed behind a `version` barrier queued before the next request
//!   that expects a reply;
//! - single-key reads queued back to back are coalesced into one multi-key
//!   `get` line, and each `VALUE` is matched by its key against the keys
//!   still expected (memcached skips misses and answers in order).
//!
//! With memcached `-Y` credentials, the login is queued in front of
//! everything on a new connection and its reply is matched first; a refused
//! login is remembered for `retry_timeout` (no login per request).
//!
//! With TLS, a connected socket first runs a non-blocking handshake
//! (`State::Handshaking`, within the connect deadline), driven by readiness;
//! then the same write buffer is encrypted into the session and replies are
//! decrypted into the same read buffer, so everything above is unchanged
//! (the glue is in [`tls`]). A refused handshake is remembered for
//! `retry_timeout` like a refused login.
//!
//! A timeout, a close, garbage or an error reply that leaves the stream's
//! position unknown breaks the connection: the requests whose bytes were
//! (partly) written fail, the ones not written at all move to a fresh
//! connection, and reads on a connection that turns out to be stale (the
//! server restarted while it was idle) are sent again once.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use super::job::{Answer, JobRef, Jobs, LineKind};
use crate::cluster::Cluster;
use crate::conn::{
    refuse_oversized, too_large, ConnOptions, Deadline, ServerAddr, KEEP_READ_BUFFER,
};
use crate::counters::Counters;
use crate::error::Error;
use crate::protocol::{self, encode, Response, Retrieve, WireKey};
use crate::request::Ack;

mod tls;

/// Keys per coalesced retrieval line (as in the blocking client).
const KEYS_PER_LINE: usize = 256;
/// Read buffers start this big and grow as replies need.
const READ_CHUNK: usize = 64 * 1024;

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        let i = Interest::READABLE | Interest::WRITABLE;
        match self {
            Sock::Tcp(s) => r.register(s, t, i),
            Sock::Unix(s) => r.register(s, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) {
        let _ = match self {
            Sock::Tcp(s) => r.deregister(s),
            Sock::Unix(s) => r.deregister(s),
        };
    }

    /// None while a connect is still in progress; Some(Err) when it failed.
    fn connected(&self) -> Option<io::Result<()>> {
        let (err, peer) = match self {
            Sock::Tcp(s) => (s.take_error(), s.peer_addr().map(|_| ())),
            Sock::Unix(s) => (s.take_error(), s.peer_addr().map(|_| ())),
        };
        match (err, peer) {
            (Ok(Some(e)), _) | (Err(e), _) => Some(Err(e)),
            (Ok(None), Ok(())) => Some(Ok(())),
            (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => None,
            (Ok(None), Err(e)) => Some(Err(e)),
        }
    }
}

/// One expected key of a retrieval line.
#[derive(Clone, Copy)]
struct Want {
    job: JobRef,
    slot: u32,
    /// the key (without the prefix) in the line's key bytes
    at: u32,
    len: u32,
}

enum Kind {
    /// `version`, sent after noreply requests: error lines before its
    /// answer belong to them and are dropped
    Barrier,
    /// the memcached `-Y` login, first on a new connection (src/auth.rs)
    Login,
    /// one `get`/`gets`/`gat`/`gats` line of one or more keys
    Retrieval {
        cmd: Retrieve,
        wants: Vec<Want>,
        keys: Vec<u8>,
        /// wants before this index are answered
        next: usize,
    },
    /// a command answered by one line
    Line {
        kind: LineKind,
        job: JobRef,
        slot: u32,
    },
    /// `stats`: STAT lines up to END
    Stats {
        job: JobRef,
        slot: u32,
        got: Vec<(String, String, String)>,
    },
}

struct Entry {
    /// byte range in the connection's output stream
    start: u64,
    end: u64,
    /// the reply must be complete by then
    due: Deadline,
    /// already sent again once after a stale connection
    retried: bool,
    kind: Kind,
}

/// A noreply request: complete once its bytes are written.
struct Sent {
    start: u64,
    end: u64,
    job: JobRef,
    slot: u32,
}

enum State {
    /// no connection
    Closed,
    /// waiting for the resolver (see `EventLoop`) until the deadline
    Resolving(Deadline),
    /// non-blocking connect in progress; addresses still to try
    Connecting(Deadline, Vec<SocketAddr>),
    /// connected; the TLS handshake runs until the (connect) deadline
    Handshaking(Deadline),
    Ready,
}

/// What a pipe needs from its loop to do its work.
pub struct Ctx<'a> {
    pub jobs: &'a mut Jobs,
    pub cluster: &'a Cluster,
    pub registry: &'a Registry,
    pub opts: &'a ConnOptions,
    pub prefix: &'a [u8],
    pub now: Deadline,
    /// set when a pipe starts waiting for its host name to resolve
    pub resolve: bool,
}

pub struct Pipe {
    pub server: usize,
    addr: ServerAddr,
    /// the address as `stats` reports it
    name: String,
    state: State,
    sock: Option<Sock>,
    /// the TLS session of the connection (TLS on), see [`tls`]
    tls: Option<Box<tls::Session>>,
    /// the last answer of the resolver for a host name
    resolved: Option<Vec<SocketAddr>>,
    wbuf: Vec<u8>,
    /// bytes of wbuf already written
    woff: usize,
    /// stream offset of `wbuf[0]`
    wbase: u64,
    rbuf: Vec<u8>,
    rpos: usize,
    queue: VecDeque<Entry>,
    sent: VecDeque<Sent>,
    /// noreply requests went out since the last barrier
    unacked_noreply: bool,
    /// the tail of wbuf is the last queued entry, a retrieval line that can
    /// take more keys
    open_line: bool,
    /// the connection answered before and then sat idle: if it fails before
    /// answering again, it was stale
    idle_after_use: bool,
    /// wbuf holds bytes to write and the socket may take them
    pub want_flush: bool,
    /// spare key/want buffers for retrieval lines
    spare: Vec<(Vec<Want>, Vec<u8>)>,
    /// the server refused the login or the TLS handshake: requests fail
    /// with this error, without connecting, until then (retry_timeout)
    refused: Option<(Deadline, Error)>,
}

fn token(server: usize) -> Token {
    Token(server + 1)
}

fn protocol_error(msg: String) -> Error {
    Error::Protocol(msg)
}

fn reply_error(r: &Response<'_>) -> Error {
    let lossy = |m: &[u8]| String::from_utf8_lossy(m).into_owned();
    match r {
        Response::ServerError(m) => Error::Server(lossy(m)),
        Response::ClientError(m) => crate::auth::client_error(m),
        Response::Error => Error::UnknownCommand,
        other => protocol_error(format!("unexpected reply {other:?}")),
    }
}

/// The answer of a one-line reply for `kind`; `Err((e, clean))` for an
/// error reply (clean: the stream is still in step).
fn line_answer(kind: LineKind, r: &Response<'_>) -> Result<Answer, (Error, bool)> {
    use LineKind as K;
    Ok(match (kind, r) {
        (K::Store | K::Cas, Response::Stored) => Answer::Ack(Ack::Done),
        (K::Store, Response::NotStored) => Answer::Ack(Ack::NotStored),
        (K::Cas, Response::Exists) => Answer::Ack(Ack::Exists),
        (K::Delete, Response::Deleted) | (K::Touch, Response::Touched) => Answer::Ack(Ack::Done),
        (K::Ok, Response::Ok) => Answer::Ack(Ack::Done),
        (K::Cas | K::Delete | K::Touch | K::Arith, Response::NotFound) => {
            Answer::Ack(Ack::NotFound)
        }
        (K::Arith, Response::Number(n)) => Answer::Number(*n),
        (K::Version, Response::Version(v)) => {
            Answer::Version(String::from_utf8_lossy(v).into_owned())
        }
        // the command was read and refused: the stream is in step
        (_, Response::ServerError(_)) => return Err((reply_error(r), true)),
        (_, r) => {
            let e = if r.is_error() {
                reply_error(r)
            } else {
                protocol_error(format!("reply {r:?} does not match the command"))
            };
            return Err((e, false));
        }
    })
}

fn key_matches(got: &[u8], prefix: &[u8], key: &[u8]) -> bool {
    got.len() == prefix.len() + key.len() && got.starts_with(prefix) && got.ends_with(key)
}

impl Pipe {
    pub fn new(server: usize, addr: ServerAddr) -> Pipe {
        let resolved = match &addr {
            ServerAddr::Tcp { host, port } => host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| vec![SocketAddr::new(ip, *port)]),
            ServerAddr::Unix(_) => None,
        };
        Pipe {
            server,
            name: addr.to_string(),
            addr,
            state: State::Closed,
            sock: None,
            tls: None,
            resolved,
            wbuf: Vec::new(),
            woff: 0,
            wbase: 0,
            rbuf: Vec::new(),
            rpos: 0,
            queue: VecDeque::new(),
            sent: VecDeque::new(),
            unacked_noreply: false,
            open_line: false,
            idle_after_use: false,
            want_flush: false,
            spare: Vec::new(),
            refused: None,
        }
    }

    /// Bytes written to this connection so far (stream offset).
    fn written(&self) -> u64 {
        self.wbase + self.woff as u64
    }

    /// Stream offset of the next byte encoded.
    fn tail(&self) -> u64 {
        self.wbase + self.wbuf.len() as u64
    }

    /// True when requests wait on this pipe.
    pub fn busy(&self) -> bool {
        !self.queue.is_empty() || !self.sent.is_empty()
    }

    /// The earliest time this pipe must be looked at again.
    pub fn next_deadline(&self) -> Option<Deadline> {
        match &self.state {
            State::Resolving(d) | State::Connecting(d, _) | State::Handshaking(d) => Some(*d),
            State::Ready => self.queue.front().map(|e| e.due),
            State::Closed => None,
        }
    }

    /// Before encoding a request that expects a reply: a barrier when
    /// noreply requests went out since the last one.
    fn barrier_if_needed(&mut self, due: Deadline) {
        if self.unacked_noreply {
            self.unacked_noreply = false;
            let start = self.tail();
            encode::version(&mut self.wbuf);
            self.queue.push_back(Entry {
                start,
                end: self.tail(),
                due,
                retried: false,
                kind: Kind::Barrier,
            });
            self.open_line = false;
        }
    }

    /// Queues one key of a retrieval for (job, slot), joining the open
    /// line when it is the same command.
    pub fn retrieve(
        &mut self,
        cx: &mut Ctx<'_>,
        cmd: Retrieve,
        key: &[u8],
        job: JobRef,
        slot: u32,
        due: Deadline,
    ) {
        self.barrier_if_needed(due);
        let joinable = self.open_line
            && matches!(self.queue.back(), Some(Entry { kind: Kind::Retrieval { cmd: c, wants, .. }, .. })
                if *c == cmd && wants.len() < KEYS_PER_LINE);
        if joinable {
            // drop the line's "\r\n", add " <key>\r\n"
            self.wbuf.truncate(self.wbuf.len() - 2);
            self.wbuf.push(b' ');
            self.wbuf.extend_from_slice(cx.prefix);
            self.wbuf.extend_from_slice(key);
            self.wbuf.extend_from_slice(b"\r\n");
            let end = self.tail();
            let Some(Entry {
                end: e,
                kind: Kind::Retrieval { wants, keys, .. },
                ..
            }) = self.queue.back_mut()
            else {
                unreachable!("checked above")
            };
            *e = end;
            wants.push(Want {
                job,
                slot,
                at: keys.len() as u32,
                len: key.len() as u32,
            });
            keys.extend_from_slice(key);
        } else {
            let start = self.tail();
            let wk = WireKey {
                prefix: cx.prefix,
                key,
            };
            encode::retrieve_one(&mut self.wbuf, cmd, wk);
            let (mut wants, mut keys) = self.spare.pop().unwrap_or_default();
            wants.push(Want {
                job,
                slot,
                at: 0,
                len: key.len() as u32,
            });
            keys.extend_from_slice(key);
            self.queue.push_back(Entry {
                start,
                end: self.tail(),
                due,
                retried: false,
                kind: Kind::Retrieval {
                    cmd,
                    wants,
                    keys,
                    next: 0,
                },
            });
            self.open_line = true;
            cx.cluster.servers()[self.server].counters.command();
        }
        self.wrote_request(cx);
    }

    /// Queues a command answered by one line (or by nothing, with noreply).
    #[allow(clippy::too_many_arguments)]
    pub fn line(
        &mut self,
        cx: &mut Ctx<'_>,
        kind: LineKind,
        job: JobRef,
        slot: u32,
        noreply: bool,
        due: Deadline,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        if !noreply {
            self.barrier_if_needed(due);
        }
        let start = self.tail();
        encode(&mut self.wbuf);
        let end = self.tail();
        if noreply {
            self.unacked_noreply = true;
            self.sent.push_back(Sent {
                start,
                end,
                job,
                slot,
            });
        } else {
            self.queue.push_back(Entry {
                start,
                end,
                due,
                retried: false,
                kind: Kind::Line { kind, job, slot },
            });
        }
        self.open_line = false;
        cx.cluster.servers()[self.server].counters.command();
        self.wrote_request(cx);
    }

    /// Queues `stats [args]`.
    pub fn stats(&mut self, cx: &mut Ctx<'_>, args: &str, job: JobRef, slot: u32, due: Deadline) {
        self.barrier_if_needed(due);
        let start = self.tail();
        encode::stats(&mut self.wbuf, args.trim().as_bytes());
        self.queue.push_back(Entry {
            start,
            end: self.tail(),
            due,
            retried: false,
            kind: Kind::Stats {
                job,
                slot,
                got: Vec::new(),
            },
        });
        self.open_line = false;
        self.wrote_request(cx);
    }

    fn wrote_request(&mut self, cx: &mut Ctx<'_>) {
        match self.state {
            State::Ready => self.want_flush = true,
            State::Closed => self.open(cx),
            _ => {}
        }
    }

    /// Starts connecting (resolving first when the host is a name).
    fn open(&mut self, cx: &mut Ctx<'_>) {
        if let Some((until, refusal)) = &self.refused {
            if cx.now < *until {
                let e = copy_error(refusal);
                self.state = State::Closed;
                self.fail_all(cx, &e);
                self.reset_buffers();
                return;
            }
            self.refused = None;
        }
        let deadline = cx.now.plus(cx.opts.connect_timeout);
        match (&self.addr, &self.resolved) {
            (ServerAddr::Unix(path), _) => {
                let r = UnixStream::connect(path).map(Sock::Unix);
                self.connect_with(cx, r, deadline, Vec::new());
            }
            (ServerAddr::Tcp { .. }, Some(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.iter().rev().copied().collect();
                self.try_next_address(cx, deadline, addrs, None);
            }
            (ServerAddr::Tcp { .. }, None) => {
                self.state = State::Resolving(deadline);
                cx.resolve = true;
            }
        }
    }

    /// The host name resolved (or failed to).
    pub fn resolved(&mut self, cx: &mut Ctx<'_>, r: io::Result<Vec<SocketAddr>>) {
        match r {
            Ok(addrs) if !addrs.is_empty() => {
                self.resolved = Some(addrs.clone());
                if let State::Resolving(deadline) = self.state {
                    let addrs = addrs.into_iter().rev().collect();
                    self.try_next_address(cx, deadline, addrs, None);
                }
            }
            r => {
                if matches!(self.state, State::Resolving(_)) {
                    let why = match r {
                        Err(e) => format!("cannot resolve: {e}"),
                        Ok(_) => "host resolved to no address".into(),
                    };
                    self.connect_failed(cx, why);
                }
            }
        }
    }

    /// True while the pipe waits for its host name.
    pub fn needs_resolving(&self) -> Option<(&str, u16)> {
        match (&self.state, &self.addr) {
            (State::Resolving(_), ServerAddr::Tcp { host, port }) => Some((host, *port)),
            _ => None,
        }
    }

    fn try_next_address(
        &mut self,
        cx: &mut Ctx<'_>,
        deadline: Deadline,
        mut rest: Vec<SocketAddr>,
        last: Option<io::Error>,
    ) {
        match rest.pop() {
            Some(sa) => {
                let r = TcpStream::connect(sa).map(Sock::Tcp);
                self.connect_with(cx, r, deadline, rest)
            }
            None => {
                let why = last.map_or_else(|| "no address to connect to".into(), |e| e.to_string());
                self.connect_failed(cx, why)
            }
        }
    }

    fn connect_with(
        &mut self,
        cx: &mut Ctx<'_>,
        r: io::Result<Sock>,
        deadline: Deadline,
        rest: Vec<SocketAddr>,
    ) {
        let mut sock = match r {
            Ok(s) => s,
            Err(e) if rest.is_empty() => return self.connect_failed(cx, e.to_string()),
            Err(e) => return self.try_next_address(cx, deadline, rest, Some(e)),
        };
        if let Err(e) = sock.register(cx.registry, token(self.server)) {
            return self.connect_failed(cx, format!("cannot watch the socket: {e}"));
        }
        self.sock = Some(sock);
        self.state = State::Connecting(deadline, rest);
        // a unix socket (or a fast loopback) may be connected already
        self.check_connected(cx);
    }

    fn check_connected(&mut self, cx: &mut Ctx<'_>) {
        let State::Connecting(deadline, _) = &self.state else {
            return;
        };
        let deadline = *deadline;
        let Some(r) = self.sock.as_ref().and_then(Sock::connected) else {
            return;
        };
        match r {
            Ok(()) if cx.opts.tls.is_some() => self.start_tls(cx, deadline),
            Ok(()) => self.became_ready(cx),
            Err(e) => {
                let State::Connecting(_, rest) = std::mem::replace(&mut self.state, State::Closed)
                else {
                    unreachable!()
                };
                self.drop_socket(cx);
                if rest.is_empty() {
                    self.connect_failed(cx, e.to_string());
                } else {
                    self.try_next_address(cx, deadline, rest, Some(e));
                }
            }
        }
    }

    fn became_ready(&mut self, cx: &mut Ctx<'_>) {
        let fd = self.sock.as_ref().map_or(-1, Sock::fd);
        if let Some(Sock::Tcp(s)) = &self.sock {
            let _ = s.set_nodelay(cx.opts.no_delay);
            if cx.opts.keepalive {
                set_keepalive(fd);
            }
        }
        self.state = State::Ready;
        cx.cluster.servers()[self.server].counters.connected();
        // the timeout of the requests that waited for the connection starts now
        let due = cx.now.plus(cx.opts.timeout);
        for e in &mut self.queue {
            e.due = e.due.max(due);
        }
        if let Some(auth) = cx.opts.auth.clone() {
            self.queue_login(&auth, due);
        }
        self.want_flush = !self.wbuf.is_empty();
    }

    fn drop_socket(&mut self, cx: &mut Ctx<'_>) {
        if let Some(mut s) = self.sock.take() {
            s.deregister(cx.registry);
        }
        self.tls = None;
    }

    /// Puts the `-Y` login in front of everything queued on a new
    /// connection (nothing of which is written yet): its bytes go first, its
    /// reply is the first one matched.
    #[cold]
    fn queue_login(&mut self, auth: &crate::auth::Auth, due: Deadline) {
        debug_assert!(self.woff == 0 && self.wbase == 0);
        let mut login = Vec::with_capacity(64 + self.wbuf.len());
        auth.encode(&mut login);
        let n = login.len() as u64;
        login.extend_from_slice(&self.wbuf);
        crate::auth::wipe(&mut self.wbuf);
        self.wbuf = login;
        for e in &mut self.queue {
            e.start += n;
            e.end += n;
        }
        for s in &mut self.sent {
            s.start += n;
            s.end += n;
        }
        self.queue.push_front(Entry {
            start: 0,
            end: n,
            due,
            retried: false,
            kind: Kind::Login,
        });
    }

    /// A connect that did not succeed: every waiting request fails.
    fn connect_failed(&mut self, cx: &mut Ctx<'_>, why: String) {
        let e = Error::ConnectFailed {
            detail: format!("{}: {why}", self.name),
        };
        self.drop_socket(cx);
        self.state = State::Closed;
        cx.cluster.report::<()>(self.server, &Err(copy_error(&e)));
        self.fail_all(cx, &e);
        self.reset_buffers();
    }

    fn reset_buffers(&mut self) {
        self.wbuf.clear();
        self.woff = 0;
        self.wbase = 0;
        self.rbuf.clear();
        self.rpos = 0;
        self.unacked_noreply = false;
        self.open_line = false;
        self.want_flush = false;
        self.idle_after_use = false;
    }

    /// Fails every request on this pipe with (a copy of) `e`.
    fn fail_all(&mut self, cx: &mut Ctx<'_>, e: &Error) {
        for entry in std::mem::take(&mut self.queue) {
            self.fail_entry(cx, entry, e);
        }
        for s in std::mem::take(&mut self.sent) {
            cx.jobs.fail(s.job, &[s.slot], copy_error(e));
        }
    }

    fn fail_entry(&mut self, cx: &mut Ctx<'_>, entry: Entry, e: &Error) {
        match entry.kind {
            Kind::Barrier | Kind::Login => {}
            Kind::Retrieval {
                wants, keys, next, ..
            } => {
                for w in &wants[next..] {
                    cx.jobs.fail(w.job, &[w.slot], copy_error(e));
                }
                self.recycle(wants, keys);
            }
            Kind::Line { job, slot, .. } | Kind::Stats { job, slot, .. } => {
                cx.jobs.fail(job, &[slot], copy_error(e))
            }
        }
    }

    fn recycle(&mut self, mut wants: Vec<Want>, mut keys: Vec<u8>) {
        if self.spare.len() < 8 && keys.capacity() <= 64 * 1024 {
            wants.clear();
            keys.clear();
            self.spare.push((wants, keys));
        }
    }

    /// Readiness reported by the poller.
    pub fn on_event(&mut self, cx: &mut Ctx<'_>, readable: bool, writable: bool) {
        if !matches!(self.state, State::Ready) {
            self.connecting_event(cx);
            if !matches!(self.state, State::Ready) {
                return;
            }
        }
        if writable && (self.woff < self.wbuf.len() || self.tls_wants_write()) {
            self.want_flush = true;
        }
        if readable {
            if let Err(e) = self.read(cx) {
                self.broken(cx, e);
            }
        }
    }

    /// Readiness while the connection is not up: the connect or the TLS
    /// handshake moves on.
    #[cold]
    fn connecting_event(&mut self, cx: &mut Ctx<'_>) {
        match self.state {
            State::Connecting(..) => self.check_connected(cx),
            State::Handshaking(_) => self.handshake(cx),
            _ => {}
        }
    }

    /// Writes what it can of wbuf (never blocks).
    pub fn flush(&mut self, cx: &mut Ctx<'_>) {
        self.want_flush = false;
        if !matches!(self.state, State::Ready) {
            return;
        }
        let Some(fd) = self.sock.as_ref().map(Sock::fd) else {
            return;
        };
        if self.tls.is_some() {
            // TLS: the same bytes, encrypted (see tls.rs)
            if !self.write_tls(cx, fd) {
                return;
            }
        } else {
            while self.woff < self.wbuf.len() {
                let rest = &self.wbuf[self.woff..];
                // SAFETY: rest is a valid slice for the call.
                let n =
                    unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
                if n > 0 {
                    self.woff += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // the poller says when there is room again
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                        return self.broken(cx, Error::UnexpectedClose)
                    }
                    _ => return self.broken(cx, Error::Io(e)),
                }
            }
        }
        let written = self.written();
        if self.woff > 0 {
            // a line partly on the wire can take no more keys
            self.open_line = false;
        }
        if self.woff == self.wbuf.len() {
            self.wbase += self.wbuf.len() as u64;
            self.wbuf.clear();
            self.woff = 0;
        }
        while self.sent.front().is_some_and(|s| s.end <= written) {
            let s = self.sent.pop_front().expect("checked");
            cx.jobs.sent(s.job, s.slot);
        }
    }

    /// Reads what the socket has and hands each complete reply to its request.
    fn read(&mut self, cx: &mut Ctx<'_>) -> Result<(), Error> {
        if self.tls.is_some() {
            return self.read_tls(cx);
        }
        let fd = self.sock.as_ref().map_or(-1, Sock::fd);
        let mut got_any = false;
        loop {
            if self.rpos == self.rbuf.len() {
                self.rbuf.clear();
                self.rpos = 0;
                if self.rbuf.capacity() > KEEP_READ_BUFFER {
                    self.rbuf = Vec::with_capacity(READ_CHUNK);
                }
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                if self.rpos > 0 {
                    self.rbuf.drain(..self.rpos);
                    self.rpos = 0;
                }
                refuse_oversized(&self.rbuf, cx.opts.max_value)?;
                self.rbuf.reserve(READ_CHUNK.max(self.rbuf.len()));
            }
            let spare = self.rbuf.spare_capacity_mut();
            let room = spare.len();
            // SAFETY: spare is writable memory of `room` bytes owned by rbuf.
            let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), room, 0) };
            if n > 0 {
                // SAFETY: the kernel initialized n bytes of the spare capacity.
                unsafe { self.rbuf.set_len(self.rbuf.len() + n as usize) };
                got_any = true;
                self.parse(cx)?;
                if (n as usize) < room {
                    // a short read emptied the socket; the poller reports new data
                    break;
                }
                continue;
            }
            if n == 0 {
                if !self.busy() && self.rpos == self.rbuf.len() {
                    // the server closed an idle connection: nothing is lost
                    self.close_quietly(cx);
                    return Ok(());
                }
                return Err(Error::UnexpectedClose);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::ConnectionReset => return Err(Error::UnexpectedClose),
                _ => return Err(Error::Io(e)),
            }
        }
        if got_any {
            cx.cluster.report::<()>(self.server, &Ok(()));
        }
        Ok(())
    }

    fn close_quietly(&mut self, cx: &mut Ctx<'_>) {
        self.drop_socket(cx);
        self.state = State::Closed;
        self.reset_buffers();
        self.wbase = 0;
    }

    /// Matches buffered replies to the queue's head, as far as they go.
    fn parse(&mut self, cx: &mut Ctx<'_>) -> Result<(), Error> {
        let cluster = cx.cluster;
        let server = self.server;
        loop {
            let Some(head) = self.queue.front_mut() else {
                if self.rpos < self.rbuf.len() && !self.unacked_noreply {
                    let show = &self.rbuf[self.rpos..self.rbuf.len().min(self.rpos + 64)];
                    return Err(protocol_error(format!(
                        "unexpected bytes with no request waiting: {:?}",
                        String::from_utf8_lossy(show)
                    )));
                }
                // the errors of noreply requests wait for the next barrier
                return Ok(());
            };
            let buf = &self.rbuf[self.rpos..];
            let step = match &mut head.kind {
                Kind::Retrieval {
                    cmd,
                    wants,
                    keys,
                    next,
                } => {
                    let counters = &cluster.servers()[server].counters;
                    retrieval_step(cx, counters, *cmd, wants, keys, next, buf)?
                }
                // meta commands (engine/meta.rs): one meta reply each
                Kind::Line {
                    kind: LineKind::Meta(m),
                    job,
                    slot,
                } => match super::meta::step(cx, *m, *job, *slot, buf) {
                    Ok(step) => step,
                    Err((e, answered)) => {
                        if let Some(used) = answered {
                            self.rpos += used;
                            self.queue.pop_front();
                        }
                        return Err(e);
                    }
                },
                Kind::Line { kind, job, slot } => {
                    match protocol::parse(buf).map_err(|e| protocol_error(e.0))? {
                        None => Step::NeedMore,
                        Some((r, used)) => match line_answer(*kind, &r) {
                            Ok(a) => {
                                cx.jobs.answer(*job, *slot, Ok(a));
                                Step::Done(used)
                            }
                            Err((e, true)) => {
                                cx.jobs.answer(*job, *slot, Err(e));
                                Step::Done(used)
                            }
                            Err((e, false)) => {
                                // the request gets the server's own error; the stream is lost
                                cx.jobs.answer(*job, *slot, Err(copy_error(&e)));
                                self.rpos += used;
                                self.queue.pop_front();
                                return Err(e);
                            }
                        },
                    }
                }
                Kind::Stats { job, slot, got, .. } => {
                    stats_step(cx, &self.name, *job, *slot, got, buf)?
                }
                Kind::Login => match protocol::parse(buf).map_err(|e| protocol_error(e.0))? {
                    None => Step::NeedMore,
                    Some((r, used)) => {
                        let auth = cx.opts.auth.as_deref().expect("a login only with auth");
                        crate::auth::login_reply(auth, &r)?;
                        Step::Done(used)
                    }
                },
                Kind::Barrier => match protocol::parse(buf).map_err(|e| protocol_error(e.0))? {
                    None => Step::NeedMore,
                    Some((Response::Version(_), used)) => Step::Done(used),
                    // a server that wants a login never answers the barrier
                    Some((Response::ClientError(m), _)) if crate::auth::is_unauthenticated(m) => {
                        return Err(crate::auth::client_error(m))
                    }
                    // an earlier noreply request failed; its caller is gone
                    Some((r, used)) if r.is_error() => Step::Consumed(used),
                    Some((r, _)) => {
                        return Err(protocol_error(format!(
                            "unexpected {r:?} before the noreply barrier"
                        )))
                    }
                },
            };
            match step {
                Step::NeedMore => {
                    if self.rpos == self.rbuf.len() {
                        self.rbuf.clear();
                        self.rpos = 0;
                    }
                    return Ok(());
                }
                Step::Consumed(n) => self.rpos += n,
                Step::Done(n) => {
                    self.rpos += n;
                    let e = self.queue.pop_front().expect("head");
                    if let Kind::Retrieval { wants, keys, .. } = e.kind {
                        self.recycle(wants, keys);
                    }
                    if self.queue.is_empty() {
                        self.idle_after_use = true;
                    }
                }
            }
        }
    }

    /// Breaks the connection after a timeout, a close, garbage or a reply
    /// that leaves the stream out of step.
    pub fn broken(&mut self, cx: &mut Ctx<'_>, e: Error) {
        if !matches!(self.state, State::Ready) {
            return;
        }
        let e = match e {
            // a refused login: remembered, so that requests fail at once
            // instead of logging in again per request
            Error::AuthFailed(d) => {
                let e = Error::AuthFailed(format!("{}: {d}", self.name));
                self.refused = Some((cx.now.plus(cx.cluster.retry_timeout()), copy_error(&e)));
                e
            }
            // a TLS session that failed (a client certificate refused after
            // the handshake, as TLS 1.3 does it)
            Error::Tls(d) => self.tls_session_failed(cx, d),
            e => e,
        };
        let written = self.written();
        // the server restarted while the connection sat idle: nothing it was
        // sent since was read, so reads are safe to send again
        let stale = self.idle_after_use && matches!(e, Error::UnexpectedClose | Error::Io(_));
        let old_wbuf = std::mem::take(&mut self.wbuf);
        let old_base = self.wbase;
        self.drop_socket(cx);
        self.state = State::Closed;
        if !stale {
            cx.cluster.report::<()>(self.server, &Err(copy_error(&e)));
        }
        // sort the requests: failed, sent again (reads on a stale
        // connection), or moved untouched (none of their bytes written)
        let mut again: VecDeque<Entry> = VecDeque::new();
        let mut untouched: VecDeque<Entry> = VecDeque::new();
        for entry in std::mem::take(&mut self.queue) {
            let retry_read =
                stale && !entry.retried && matches!(entry.kind, Kind::Retrieval { .. });
            if entry.start >= written && !matches!(entry.kind, Kind::Barrier | Kind::Login) {
                untouched.push_back(entry);
            } else if retry_read {
                again.push_back(entry);
            } else {
                self.fail_entry(cx, entry, &e);
            }
        }
        let mut sent_kept = VecDeque::new();
        for s in std::mem::take(&mut self.sent) {
            if s.start >= written {
                sent_kept.push_back(s);
            } else {
                cx.jobs.fail(s.job, &[s.slot], copy_error(&e));
            }
        }
        self.reset_buffers();
        if again.is_empty() && untouched.is_empty() && sent_kept.is_empty() {
            return;
        }
        // a server that is now failing takes no more traffic
        if let Err(down) = cx.cluster.check_usable(self.server) {
            for entry in again.into_iter().chain(untouched) {
                self.fail_entry(cx, entry, &down);
            }
            for s in sent_kept {
                cx.jobs.fail(s.job, &[s.slot], copy_error(&down));
            }
            return;
        }
        // the new stream: the reads to send again, then the untouched bytes
        for mut entry in again {
            let Kind::Retrieval {
                cmd,
                wants,
                keys,
                next,
            } = &mut entry.kind
            else {
                unreachable!("only reads are sent again")
            };
            // keys already answered stay answered
            wants.drain(..*next);
            *next = 0;
            let start = self.tail();
            encode::retrieve(
                &mut self.wbuf,
                *cmd,
                wants.iter().map(|w| WireKey {
                    prefix: cx.prefix,
                    key: &keys[w.at as usize..(w.at + w.len) as usize],
                }),
            );
            entry.start = start;
            entry.end = self.tail();
            entry.retried = true;
            self.queue.push_back(entry);
        }
        let tail_start = untouched
            .front()
            .map(|e| e.start)
            .into_iter()
            .chain(sent_kept.front().map(|s| s.start))
            .min();
        if let Some(from) = tail_start {
            let shift = self.tail() as i128 - from as i128;
            let at = (from - old_base) as usize;
            self.wbuf.extend_from_slice(&old_wbuf[at..]);
            let moved = |x: u64| (x as i128 + shift) as u64;
            for mut entry in untouched {
                entry.start = moved(entry.start);
                entry.end = moved(entry.end);
                self.queue.push_back(entry);
            }
            for mut s in sent_kept {
                s.start = moved(s.start);
                s.end = moved(s.end);
                self.sent.push_back(s);
            }
            // errors of the noreply requests moved along come before a barrier
            self.unacked_noreply = !self.sent.is_empty();
        }
        self.open(cx);
    }

    /// Expired deadlines: a reply that did not come in time breaks the
    /// connection; a connect that did not finish fails its requests.
    pub fn check_timeouts(&mut self, cx: &mut Ctx<'_>) {
        match &self.state {
            State::Resolving(d) | State::Connecting(d, _) if *d <= cx.now => {
                let why = format!(
                    "connect timed out after {} ms",
                    cx.opts.connect_timeout.as_millis()
                );
                self.connect_failed(cx, why);
            }
            State::Ready if self.queue.front().is_some_and(|e| e.due <= cx.now) => {
                let e = Error::Timeout(cx.opts.timeout.as_millis() as u64);
                // a timeout leaves nothing stale: never retried as such
                self.idle_after_use = false;
                self.broken(cx, e);
            }
            State::Handshaking(d) if *d <= cx.now => self.handshake_timed_out(cx),
            _ => {}
        }
    }

    /// Closes the connection without failing anything (the loop is going
    /// away; its requests were cancelled).
    pub fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        self.close_notify();
        self.drop_socket(cx);
        self.queue.clear();
        self.sent.clear();
        self.state = State::Closed;
        self.reset_buffers();
    }
}

pub(super) enum Step {
    NeedMore,
    /// n bytes used; the head is still waiting
    Consumed(usize),
    /// n bytes used; the head is complete
    Done(usize),
}

fn retrieval_step(
    cx: &mut Ctx<'_>,
    counters: &Counters,
    cmd: Retrieve,
    wants: &[Want],
    keys: &[u8],
    next: &mut usize,
    buf: &[u8],
) -> Result<Step, Error> {
    let key_of = |w: &Want| &keys[w.at as usize..(w.at + w.len) as usize];
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        // the usual case: the next key's value, whole in the buffer
        if *next < wants.len() && !cmd.with_cas() {
            let w = wants[*next];
            if let Some((flags, data, n)) = protocol::parse_plain_value(rest, cx.prefix, key_of(&w))
                .filter(|(_, data, _)| data.len() <= cx.opts.max_value)
            {
                cx.jobs.hit(w.job, w.slot, data, flags, None);
                counters.hits(1);
                *next += 1;
                used += n;
                continue;
            }
        }
        let Some((r, n)) = protocol::parse(rest).map_err(|e| protocol_error(e.0))? else {
            return Ok(if used > 0 {
                Step::Consumed(used)
            } else {
                Step::NeedMore
            });
        };
        match r {
            Response::Value {
                key,
                flags,
                cas,
                data,
            } => {
                let Some(pos) = wants[*next..]
                    .iter()
                    .position(|w| key_matches(key, cx.prefix, key_of(w)))
                else {
                    return Err(protocol_error(format!(
                        "VALUE for a key that was not asked for: {:?}",
                        String::from_utf8_lossy(key)
                    )));
                };
                if cmd.with_cas() && cas.is_none() {
                    return Err(protocol_error("VALUE without cas for gets".into()));
                }
                for w in &wants[*next..*next + pos] {
                    cx.jobs.miss(w.job, w.slot);
                }
                counters.misses(pos as u64);
                let w = wants[*next + pos];
                if data.len() > cx.opts.max_value {
                    // the stream is in step: only this key fails
                    let e = too_large(data.len() as u64, cx.opts.max_value);
                    counters.failure(&e);
                    cx.jobs.fail(w.job, &[w.slot], e);
                } else {
                    cx.jobs.hit(w.job, w.slot, data, flags, cas);
                    counters.hits(1);
                }
                *next += pos + 1;
                used += n;
            }
            Response::End => {
                for w in &wants[*next..] {
                    cx.jobs.miss(w.job, w.slot);
                }
                counters.misses((wants.len() - *next) as u64);
                *next = wants.len();
                return Ok(Step::Done(used + n));
            }
            other => {
                // an error in a retrieval: what follows is uncertain
                let e = reply_error(&other);
                return Err(e);
            }
        }
    }
}

fn stats_step(
    cx: &mut Ctx<'_>,
    server: &str,
    job: JobRef,
    slot: u32,
    got: &mut Vec<(String, String, String)>,
    buf: &[u8],
) -> Result<Step, Error> {
    let mut used = 0;
    loop {
        let Some((r, n)) = protocol::parse(&buf[used..]).map_err(|e| protocol_error(e.0))? else {
            return Ok(if used > 0 {
                Step::Consumed(used)
            } else {
                Step::NeedMore
            });
        };
        used += n;
        match r {
            Response::Stat { name, value } => got.push((
                server.to_string(),
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )),
            // `stats reset` answers RESET, parsed as Ok
            Response::End | Response::Ok => {
                cx.jobs.stats(job, slot, std::mem::take(got));
                return Ok(Step::Done(used));
            }
            other => return Err(reply_error(&other)),
        }
    }
}

/// `Error` holds an `io::Error`, which is not `Clone`: a copy with the same
/// kind and message, for failing several requests with one cause.
pub fn copy_error(e: &Error) -> Error {
    match e {
        Error::InvalidKey(s) => Error::InvalidKey(s.clone()),
        Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
        Error::Client(s) => Error::Client(s.clone()),
        Error::Server(s) => Error::Server(s.clone()),
        Error::UnknownCommand => Error::UnknownCommand,
        Error::ConnectFailed { detail } => Error::ConnectFailed {
            detail: detail.clone(),
        },
        Error::Io(io) => Error::Io(io::Error::new(io.kind(), io.to_string())),
        Error::Timeout(ms) => Error::Timeout(*ms),
        Error::UnexpectedClose => Error::UnexpectedClose,
        Error::Protocol(s) => Error::Protocol(s.clone()),
        Error::NoServers => Error::NoServers,
        Error::ServerDown(s) => Error::ServerDown(s.clone()),
        Error::Cancelled(s) => Error::Cancelled(s.clone()),
        Error::Tls(s) => Error::Tls(s.clone()),
        Error::AuthFailed(s) => Error::AuthFailed(s.clone()),
        Error::ValueTooLarge(s) => Error::ValueTooLarge(s.clone()),
    }
}

fn set_keepalive(fd: RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: `on` outlives the call; the size matches.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
