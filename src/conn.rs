//! One connection to one server: TCP (IPv4/IPv6) or a unix socket, buffered,
//! with every read and write bounded by the caller's deadline.
//!
//! I/O discipline, chosen for the fewest syscalls on the common path:
//! - writes go out with `send(MSG_DONTWAIT | MSG_NOSIGNAL)`: one syscall when the
//!   socket buffer has room (the usual case), no SIGPIPE in the host program,
//!   and when the buffer is full we `poll` for writable *or readable* and drain
//!   replies meanwhile, so a large pipelined batch cannot deadlock with a server
//!   that is blocked writing its replies to us;
//! - reads are blocking `recv` bounded by `SO_RCVTIMEO`, which is lowered to the
//!   time left before the deadline once a response needs several reads, so a
//!   server that trickles bytes still cannot hold a caller past its timeout.
//!
//! A connection that hit any error is marked broken and is never reused: after
//! a timeout or a partial read its position in the reply stream is unknown.

use std::io::{self, BufRead, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use std::sync::Arc;

use rustls::ClientConnection;

use crate::auth::{self, Auth};
use crate::error::{Error, Result};
use crate::protocol::{self, FastGet, GetReply, Response};
use crate::tls::{self, FdIo, TlsConnector};

/// Default memcached port, used when an address gives none.
pub const DEFAULT_PORT: u16 = 11211;

/// Where a server listens, parsed from the forms users know from pymemcache and
/// libmemcached: `host:port`, `host` (port 11211), `[v6addr]:port`, `[v6addr]`,
/// `unix:/path` or `/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl ServerAddr {
    pub fn parse(s: &str) -> Result<ServerAddr> {
        let bad = |why: &str| Error::InvalidArgument(format!("server address {s:?}: {why}"));
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("empty unix socket path"));
            }
            return Ok(ServerAddr::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(ServerAddr::Unix(PathBuf::from(s)));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((host, after)) = rest.split_once(']') else {
                return Err(bad("missing ']'"));
            };
            match after {
                "" => (host, None),
                p if p.starts_with(':') => (host, Some(&p[1..])),
                _ => return Err(bad("junk after ']'")),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(bad("IPv6 addresses need brackets: [addr]:port"))
                }
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("bad host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad("bad port")),
            },
        };
        Ok(ServerAddr::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ServerAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Socket options applied to every new connection.
#[derive(Clone, Debug)]
pub struct ConnOptions {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub no_delay: bool,
    pub keepalive: bool,
    /// Largest value accepted from a server, in bytes: a longer announced
    /// value fails with [`Error::ValueTooLarge`] before it is buffered.
    pub max_value: usize,
    /// TLS on every connection (src/tls.rs)
    pub tls: Option<Arc<TlsConnector>>,
    /// memcached `-Y` login on every new connection (src/auth.rs)
    pub auth: Option<Arc<Auth>>,
}

/// A value header at the start of `unread` announcing more than `max` bytes:
/// the error to fail the read with (the connection must then be dropped:
/// the data is still coming).
pub(crate) fn refuse_oversized(unread: &[u8], max: usize) -> Result<()> {
    match protocol::announced_value_len(unread) {
        Some(n) if n > max as u64 => Err(too_large(n, max)),
        _ => Ok(()),
    }
}

/// The error for a value of `n` bytes over the limit `max`.
#[cold]
pub(crate) fn too_large(n: u64, max: usize) -> Error {
    Error::ValueTooLarge(format!(
        "the server sent a value of {n} bytes; the limit is {max} (max_value_size)"
    ))
}

/// A read buffer grown past this by a big value is given back once empty.
pub(crate) const KEEP_READ_BUFFER: usize = 1 << 20;

// ---- deadlines ----------------------------------------------------------------

/// When an operation must be over, on the coarse monotonic clock: timeouts
/// are milliseconds, its resolution (a few ms at worst) is plenty, and it is
/// read in a fraction of the cost of the precise clock, once per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(u64);

fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; this clock id always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(coarse_now_ns().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64))
    }

    /// Time left (zero once passed).
    pub fn left(self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(coarse_now_ns()))
    }

    /// The coarse clock now (an instant, not a deadline).
    pub fn now() -> Deadline {
        Deadline(coarse_now_ns())
    }

    /// `d` after this instant.
    pub fn plus(self, d: Duration) -> Deadline {
        Deadline(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// Time from `now` until this deadline (zero once passed).
    pub fn left_at(self, now: Deadline) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(now.0))
    }
}

// ---- fork detection -------------------------------------------------------

/// Bumped in the child after `fork()`. A connection remembers the value it was
/// made under; a different value means the socket is shared with the parent and
/// must not be used (two processes reading one reply stream is how clients
/// return other keys' values).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn fork_generation() -> u64 {
    ATFORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

// ---- the connection ---------------------------------------------------------

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Read buffers start this big and are compacted/grown as responses need.
const READ_CHUNK: usize = 16 * 1024;

pub struct Conn {
    sock: Socket,
    fd: RawFd,
    /// the TLS session when TLS is on: requests are encrypted into it and
    /// replies decrypted out of it ([`Conn::flush_tls`], [`Conn::recv_some_tls`])
    tls: Option<Box<ClientConnection>>,
    /// set when the TLS session failed before the server sent any data (a
    /// refused client certificate arrives so with TLS 1.3): the pool
    /// remembers it like a refused handshake
    tls_refusal: Option<Box<str>>,
    /// a TLS record with data arrived
    tls_got_data: bool,
    /// bytes received and not yet parsed live in `rbuf[rpos..]`
    rbuf: Vec<u8>,
    rpos: usize,
    /// requests are encoded here, then sent by [`Conn::flush`]
    pub wbuf: Vec<u8>,
    timeout: Duration,
    max_value: usize,
    /// the SO_RCVTIMEO currently set on the socket
    rcvtimeo: Duration,
    fork_gen: u64,
    /// noreply commands were sent since the last reply was read: the server may
    /// still answer some of them with an error line
    unacked_noreply: bool,
    /// a `version` barrier was sent ahead of the current request; its reply
    /// (and any error lines before it) must be consumed first
    barrier_pending: bool,
    broken: bool,
    /// the next read is the first of the operation and nothing has waited
    /// yet: SO_RCVTIMEO (the full timeout) already bounds it, so the clock
    /// need not be read
    first_read: bool,
    /// false until the first request was sent: a fresh connection cannot be
    /// stale
    used: bool,
    pub last_used: Instant,
}

impl Conn {
    pub fn connect(addr: &ServerAddr, opts: &ConnOptions) -> Result<Conn> {
        let fork_gen = fork_generation();
        // the TCP connect and the TLS handshake share connect_timeout
        let handshake_deadline = Deadline::after(opts.connect_timeout);
        let failed = |reason: String| Error::ConnectFailed {
            detail: format!("{addr}: {reason}"),
        };
        let sock = match addr {
            ServerAddr::Tcp { host, port } => {
                let addrs = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| failed(format!("cannot resolve: {e}")))?;
                let deadline = Instant::now() + opts.connect_timeout;
                let mut last = failed("host resolved to no address".into());
                let mut stream = None;
                for sa in addrs {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        last = failed(format!(
                            "connect timed out after {} ms",
                            opts.connect_timeout.as_millis()
                        ));
                        break;
                    }
                    match TcpStream::connect_timeout(&sa, left) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = failed(e.to_string()),
                    }
                }
                let s = stream.ok_or(last)?;
                s.set_nodelay(opts.no_delay)
                    .map_err(|e| failed(e.to_string()))?;
                Socket::Tcp(s)
            }
            ServerAddr::Unix(path) => {
                Socket::Unix(UnixStream::connect(path).map_err(|e| failed(e.to_string()))?)
            }
        };
        let fd = match &sock {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        };
        let mut conn = Conn {
            sock,
            fd,
            tls: None,
            tls_refusal: None,
            tls_got_data: false,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            timeout: opts.timeout,
            max_value: opts.max_value,
            rcvtimeo: Duration::ZERO,
            fork_gen,
            unacked_noreply: false,
            barrier_pending: false,
            broken: false,
            used: false,
            first_read: false,
            last_used: Instant::now(),
        };
        if opts.keepalive {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
                .map_err(|e| failed(e.to_string()))?;
        }
        conn.set_rcvtimeo(opts.timeout)
            .map_err(|e| failed(e.to_string()))?;
        if let Some(connector) = &opts.tls {
            let host = match addr {
                ServerAddr::Tcp { host, .. } => Some(host.as_str()),
                ServerAddr::Unix(_) => None,
            };
            let mut session = connector.start(host)?;
            let mut again = false;
            let r = tls::handshake(
                &mut session,
                fd,
                handshake_deadline,
                opts.connect_timeout.as_millis() as u64,
                connector,
                &mut again,
            );
            if again {
                // the server refused to resume: once more, with a fresh session
                return Conn::connect(addr, opts);
            }
            r.map_err(|e| match e {
                Error::Tls(why) => Error::Tls(format!("{addr}: {why}")),
                other => other,
            })?;
            conn.tls = Some(Box::new(session));
        }
        if let Some(a) = &opts.auth {
            let deadline = conn.deadline();
            auth::login(&mut conn, a, deadline).map_err(|e| match e {
                Error::AuthFailed(why) => Error::AuthFailed(format!("{addr}: {why}")),
                other => other,
            })?;
            // still fresh: a failure of the first request cannot mean staleness
            conn.used = false;
        }
        Ok(conn)
    }

    /// The TLS failure of a connection that never received data (the
    /// server refused the session after the handshake), if any.
    pub fn tls_refusal(&self) -> Option<&str> {
        self.tls_refusal.as_deref()
    }

    /// True when the connection is TLS and its session was resumed (an
    /// abbreviated handshake) rather than negotiated in full.
    pub fn tls_resumed(&self) -> Option<bool> {
        self.tls.as_deref().map(tls::resumed)
    }

    /// False once the connection hit an error, or when it was inherited across
    /// `fork()`: such a connection must be dropped, not reused.
    pub fn is_reusable(&self) -> bool {
        !self.broken && self.fork_gen == FORK_GENERATION.load(Ordering::Relaxed)
    }

    /// True once a request was sent on this connection.
    pub fn was_used(&self) -> bool {
        self.used
    }

    /// Marks the connection unusable (its place in the reply stream is unknown).
    pub fn poison(&mut self) {
        self.broken = true;
    }

    /// The deadline for an operation starting now.
    pub fn deadline(&mut self) -> Deadline {
        self.first_read = true;
        Deadline::after(self.timeout)
    }

    /// Call before encoding a command that expects a reply: when earlier noreply
    /// commands may still produce error lines, a `version` barrier goes first so
    /// those lines can be told apart from this command's reply.
    pub fn begin_reply_request(&mut self) {
        if self.unacked_noreply {
            protocol::encode::version(&mut self.wbuf);
            self.unacked_noreply = false;
            self.barrier_pending = true;
        }
    }

    /// Largest value accepted (`max_value_size`).
    #[inline]
    pub fn max_value(&self) -> usize {
        self.max_value
    }

    /// Call after encoding a noreply command.
    pub fn note_noreply_sent(&mut self) {
        self.unacked_noreply = true;
    }

    /// Sends everything in `wbuf`.
    pub fn flush(&mut self, deadline: Deadline) -> Result<()> {
        self.used = true;
        if self.wbuf.is_empty() {
            return Ok(());
        }
        if self.tls.is_some() {
            let r = self.flush_tls(deadline);
            if r.is_err() {
                self.broken = true;
            }
            return r;
        }
        // the usual case: the socket takes the whole request at once
        let n = self.send_from(0);
        if n == self.wbuf.len() as isize {
            self.wbuf.clear();
            return Ok(());
        }
        let r = self.flush_rest(deadline, n);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// One non-blocking `send` of `wbuf[off..]`: bytes sent, or -1 (errno set).
    #[inline]
    fn send_from(&self, off: usize) -> isize {
        let rest = &self.wbuf[off..];
        // SAFETY: rest is a valid initialized slice for the duration of the call.
        unsafe {
            libc::send(
                self.fd,
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        }
    }

    /// The rest of `flush` after a first `send` that returned `n`: more sends,
    /// waiting for room when the socket buffer is full.
    #[inline(never)]
    fn flush_rest(&mut self, deadline: Deadline, mut n: isize) -> Result<()> {
        let mut off = 0;
        loop {
            if n >= 0 {
                off += n as usize;
                if off == self.wbuf.len() {
                    self.wbuf.clear();
                    return Ok(());
                }
            } else {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => self.wait_writable(deadline)?,
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                        return Err(Error::UnexpectedClose)
                    }
                    _ => return Err(Error::Io(e)),
                }
            }
            n = self.send_from(off);
        }
    }

    /// `flush` over TLS: `wbuf` is encrypted into the session, then the
    /// records are sent as the socket takes them.
    #[inline(never)]
    fn flush_tls(&mut self, deadline: Deadline) -> Result<()> {
        let session = self.tls.as_mut().expect("a TLS connection");
        // no buffer limit is set: the whole request is taken
        session.writer().write_all(&self.wbuf).map_err(Error::Io)?;
        self.wbuf.clear();
        self.push_tls(deadline)
    }

    /// Sends the TLS records the session holds, waiting for room (and
    /// reading replies meanwhile) when the socket buffer is full.
    fn push_tls(&mut self, deadline: Deadline) -> Result<()> {
        loop {
            let session = self.tls.as_mut().expect("a TLS connection");
            if !session.wants_write() {
                return Ok(());
            }
            let mut io = FdIo {
                fd: self.fd,
                flags: 0,
            };
            if let Err(e) = session.write_tls(&mut io) {
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => self.wait_writable(deadline)?,
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                        return Err(Error::UnexpectedClose)
                    }
                    _ => return Err(Error::Io(e)),
                }
            }
        }
    }

    /// Waits until the socket takes more bytes; reads replies that arrive in the
    /// meantime so the server is never stuck writing to us.
    fn wait_writable(&mut self, deadline: Deadline) -> Result<()> {
        self.first_read = false;
        loop {
            let left = self.time_left(deadline)?;
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLOUT | libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io(e));
            }
            if rc == 0 {
                continue; // time_left() reports the timeout on the next turn
            }
            if pfd.revents & libc::POLLIN != 0 {
                self.recv_some(libc::MSG_DONTWAIT)?;
            }
            if pfd.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0 {
                return Ok(());
            }
        }
    }

    fn time_left(&self, deadline: Deadline) -> Result<Duration> {
        let left = deadline.left();
        if left.is_zero() {
            Err(Error::Timeout(self.timeout.as_millis() as u64))
        } else {
            Ok(left)
        }
    }

    fn set_rcvtimeo(&mut self, d: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: tv outlives the call; size matches.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.rcvtimeo = d;
        Ok(())
    }

    /// Receives at least one byte into `rbuf` (or fails). `flags` is 0 for a
    /// blocking read bounded by SO_RCVTIMEO, MSG_DONTWAIT to take what is there
    /// (then `Ok(0)` when nothing is).
    #[inline]
    fn recv_some(&mut self, flags: libc::c_int) -> Result<usize> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        let cap = self.rbuf.capacity();
        if cap - self.rbuf.len() < READ_CHUNK / 4 || cap > KEEP_READ_BUFFER {
            self.make_room()?;
        }
        if self.tls.is_some() {
            return self.recv_some_tls(flags);
        }
        let n = self.recv_into_spare(flags);
        if n > 0 {
            // SAFETY: the kernel initialized n bytes of the spare capacity.
            unsafe { self.rbuf.set_len(self.rbuf.len() + n as usize) };
            return Ok(n as usize);
        }
        self.recv_failed(n, flags)
    }

    /// `recv_some` over TLS: plaintext the session already holds, else one
    /// read of records (bounded like a plain read) and their decryption.
    /// `Ok(0)` also when that read brought only part of a record: the caller
    /// reads again under its deadline, so a peer that trickles bytes cannot
    /// hold a caller past its timeout.
    #[inline(never)]
    fn recv_some_tls(&mut self, flags: libc::c_int) -> Result<usize> {
        let mut read_once = false;
        loop {
            let session = self.tls.as_mut().expect("a TLS connection");
            match session.reader().fill_buf() {
                Ok([]) => return Err(Error::UnexpectedClose), // close_notify
                Ok(b) => {
                    let n = b.len();
                    self.rbuf.extend_from_slice(b);
                    session.reader().consume(n);
                    self.tls_got_data = true;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Error::UnexpectedClose), // EOF without close_notify
            }
            if read_once {
                return Ok(0);
            }
            let mut io = FdIo { fd: self.fd, flags };
            match session.read_tls(&mut io) {
                Ok(0) => return Err(Error::UnexpectedClose),
                Ok(_) => {
                    read_once = true;
                    if let Err(e) = session.process_new_packets() {
                        let _ = session.write_tls(&mut FdIo {
                            fd: self.fd,
                            flags: 0,
                        });
                        let detail = tls::describe(&e);
                        if !self.tls_got_data {
                            self.tls_refusal = Some(detail.clone().into());
                        }
                        return Err(Error::Tls(detail));
                    }
                    if session.wants_write() {
                        // a post-handshake message to answer (key update)
                        let _ = session.write_tls(&mut FdIo {
                            fd: self.fd,
                            flags: 0,
                        });
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock if flags & libc::MSG_DONTWAIT != 0 => return Ok(0),
                    io::ErrorKind::WouldBlock => {
                        return Err(Error::Timeout(self.timeout.as_millis() as u64))
                    }
                    io::ErrorKind::ConnectionReset => return Err(Error::UnexpectedClose),
                    _ => return Err(Error::Io(e)),
                },
            }
        }
    }

    /// One `recv` into the spare capacity of `rbuf` (not yet counted in its length).
    #[inline]
    fn recv_into_spare(&mut self, flags: libc::c_int) -> isize {
        let spare = self.rbuf.spare_capacity_mut();
        // SAFETY: spare is writable memory of spare.len() bytes owned by rbuf.
        unsafe { libc::recv(self.fd, spare.as_mut_ptr().cast(), spare.len(), flags) }
    }

    /// Room for a read: unread bytes moved to the front, the buffer grown
    /// when a big value needs it — unless that value is over the limit.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) -> Result<()> {
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_READ_BUFFER {
            // a big value is gone: do not keep its memory in the pool
            self.rbuf = Vec::with_capacity(READ_CHUNK);
            return Ok(());
        }
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        refuse_oversized(&self.rbuf, self.max_value)?;
        let want = READ_CHUNK.max(self.rbuf.len());
        if self.rbuf.capacity() - self.rbuf.len() < want / 2 {
            self.rbuf.reserve(want);
        }
        Ok(())
    }

    /// `recv_some` after a `recv` that returned `n <= 0`: retried after an
    /// interrupt, else mapped to an error (or `Ok(0)` for an empty
    /// non-blocking read).
    #[cold]
    fn recv_failed(&mut self, mut n: isize, flags: libc::c_int) -> Result<usize> {
        loop {
            if n > 0 {
                // SAFETY: the kernel initialized n bytes of the spare capacity.
                unsafe { self.rbuf.set_len(self.rbuf.len() + n as usize) };
                return Ok(n as usize);
            }
            if n == 0 {
                return Err(Error::UnexpectedClose);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock if flags & libc::MSG_DONTWAIT != 0 => return Ok(0),
                io::ErrorKind::WouldBlock => {
                    return Err(Error::Timeout(self.timeout.as_millis() as u64))
                }
                io::ErrorKind::ConnectionReset => return Err(Error::UnexpectedClose),
                _ => return Err(Error::Io(e)),
            }
            n = self.recv_into_spare(flags);
        }
    }

    /// Blocking read of more bytes, never past `deadline`.
    #[inline(always)]
    fn fill(&mut self, deadline: Deadline) -> Result<()> {
        if std::mem::take(&mut self.first_read) && self.rcvtimeo == self.timeout {
            return self.recv_some(0).map(|_| ());
        }
        self.fill_bounded(deadline)
    }

    /// `fill`, marking the connection broken when it fails (a reply may be
    /// half read).
    #[inline]
    fn fill_or_break(&mut self, deadline: Deadline) -> Result<()> {
        let r = self.fill(deadline);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// `fill` for a read after the first of an operation: SO_RCVTIMEO is
    /// brought within reach of the deadline first.
    #[inline(never)]
    fn fill_bounded(&mut self, deadline: Deadline) -> Result<()> {
        let left = self.time_left(deadline)?;
        // Keep SO_RCVTIMEO within 1 ms of the time left: lower it as the
        // deadline nears, raise it back on the next operation. On the fast path
        // (one read per reply) neither happens.
        let slack = Duration::from_millis(1);
        if self.rcvtimeo > left + slack || self.rcvtimeo + slack < left {
            self.set_rcvtimeo(left.max(slack))?;
        }
        self.recv_some(0).map(|_| ())
    }

    /// Reads one response element and hands it to `f`, which copies out what it
    /// needs; the bytes are consumed after `f` returns. Error replies that belong
    /// to earlier noreply commands are skipped here, never returned.
    pub fn read_response<T>(
        &mut self,
        deadline: Deadline,
        f: impl FnOnce(Response<'_>) -> T,
    ) -> Result<T> {
        let r = self.read_inner(deadline, f);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn read_inner<T>(
        &mut self,
        deadline: Deadline,
        f: impl FnOnce(Response<'_>) -> T,
    ) -> Result<T> {
        loop {
            match protocol::parse(&self.rbuf[self.rpos..]) {
                Ok(Some((resp, used))) => {
                    if self.barrier_pending {
                        match resp {
                            Response::Version(_) => self.barrier_pending = false,
                            // a server that wants a login never answers the barrier
                            Response::ClientError(m) if auth::is_unauthenticated(m) => {
                                return Err(auth::client_error(m))
                            }
                            // an earlier noreply command failed; its caller is gone
                            r if r.is_error() => {}
                            other => {
                                return Err(Error::Protocol(format!(
                                    "unexpected {other:?} before the noreply barrier"
                                )))
                            }
                        }
                        self.consume(used);
                        continue;
                    }
                    let t = f(resp);
                    self.consume(used);
                    return Ok(t);
                }
                Ok(None) => self.fill(deadline)?,
                Err(e) => return Err(Error::Protocol(e.0)),
            }
        }
    }

    /// Reads one meta reply (`protocol::meta`) and hands it to `f`, like
    /// [`Conn::read_response`]; a pending noreply barrier (a classic
    /// `version` reply, with any error lines before it) is consumed first.
    pub fn read_meta<T>(
        &mut self,
        deadline: Deadline,
        f: impl FnOnce(protocol::meta::MetaResponse<'_>) -> T,
    ) -> Result<T> {
        let r = self.read_meta_inner(deadline, f);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Hands the unread bytes to `f` as they arrive, until it says the
    /// reply is over: `f` returns how many bytes it used (they are dropped)
    /// and whether it is done; when not, more bytes are read and the rest
    /// handed over again. A pending noreply barrier is consumed first, as
    /// for [`Conn::read_meta`]. The reader of a whole stream of replies in
    /// one pass (the meta multi-get, `protocol::meta_many`).
    pub fn read_stream(
        &mut self,
        deadline: Deadline,
        mut f: impl FnMut(&[u8]) -> Result<(usize, bool)>,
    ) -> Result<()> {
        let r = self.read_stream_inner(deadline, &mut f);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn read_stream_inner(
        &mut self,
        deadline: Deadline,
        f: &mut impl FnMut(&[u8]) -> Result<(usize, bool)>,
    ) -> Result<()> {
        if self.barrier_pending {
            self.settle_barrier(deadline)?;
        }
        loop {
            if self.rpos < self.rbuf.len() {
                let (used, done) = f(&self.rbuf[self.rpos..])?;
                self.consume(used);
                if done {
                    return Ok(());
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Consumes the reply to a `version` barrier and any error lines of
    /// earlier noreply commands before it.
    fn settle_barrier(&mut self, deadline: Deadline) -> Result<()> {
        while self.barrier_pending {
            match protocol::parse(&self.rbuf[self.rpos..]) {
                Ok(Some((resp, used))) => {
                    match resp {
                        Response::Version(_) => self.barrier_pending = false,
                        r if r.is_error() => {}
                        other => {
                            return Err(Error::Protocol(format!(
                                "unexpected {other:?} before the noreply barrier"
                            )))
                        }
                    }
                    self.consume(used);
                }
                Ok(None) => self.fill(deadline)?,
                Err(e) => return Err(Error::Protocol(e.0)),
            }
        }
        Ok(())
    }

    fn read_meta_inner<T>(
        &mut self,
        deadline: Deadline,
        f: impl FnOnce(protocol::meta::MetaResponse<'_>) -> T,
    ) -> Result<T> {
        if self.barrier_pending {
            self.settle_barrier(deadline)?;
        }
        loop {
            if self.rpos == self.rbuf.len() {
                // nothing to parse yet (the usual case right after a send)
                self.fill(deadline)?;
                continue;
            }
            match protocol::meta::parse_meta(&self.rbuf[self.rpos..]) {
                Ok(Some((resp, used))) => {
                    let t = f(resp);
                    self.consume(used);
                    return Ok(t);
                }
                Ok(None) => self.fill(deadline)?,
                Err(e) => return Err(Error::Protocol(e.0)),
            }
        }
    }

    /// The fast path for the reply to a one-key retrieval of `prefix + key`:
    /// hands the whole reply to `f` and returns `Some`, or returns `None`
    /// without consuming anything when the reply is not the expected shape
    /// (the caller then reads it with [`Conn::read_response`]).
    #[inline]
    pub fn read_get_reply<T>(
        &mut self,
        deadline: Deadline,
        prefix: &[u8],
        key: &[u8],
        f: impl FnOnce(GetReply<'_>) -> T,
    ) -> Result<Option<T>> {
        if self.barrier_pending {
            return Ok(None);
        }
        if self.rpos == self.rbuf.len() {
            // nothing buffered (the usual case right after the request)
            self.fill_or_break(deadline)?;
        }
        // the usual case: the whole reply came in one read
        if let Some((reply, used)) = protocol::parse_plain_hit(&self.rbuf[self.rpos..], prefix, key)
        {
            let t = f(reply);
            self.consume(used);
            return Ok(Some(t));
        }
        self.read_get_reply_rest(deadline, prefix, key, f)
    }

    /// The next reply element when it is already buffered and is the plain
    /// `VALUE` of exactly `prefix + key` ([`protocol::parse_plain_value`]):
    /// hands (flags, data) to `f`, consumes it and returns `Some`. `None`,
    /// consuming nothing, for anything else (the caller then reads the
    /// element with [`Conn::read_response`]). This is a multi-get's hot path:
    /// replies come in the order of the keys asked.
    #[inline]
    pub fn take_plain_value<T>(
        &mut self,
        prefix: &[u8],
        key: &[u8],
        f: impl FnOnce(u32, &[u8]) -> T,
    ) -> Option<T> {
        if self.barrier_pending {
            return None;
        }
        let (flags, data, used) =
            protocol::parse_plain_value(&self.rbuf[self.rpos..], prefix, key)?;
        if data.len() > self.max_value {
            return None; // the caller's full read reports it
        }
        let t = f(flags, data);
        self.consume(used);
        Some(t)
    }

    /// `read_get_reply` for a reply of another shape or in several reads.
    #[inline(never)]
    fn read_get_reply_rest<T>(
        &mut self,
        deadline: Deadline,
        prefix: &[u8],
        key: &[u8],
        f: impl FnOnce(GetReply<'_>) -> T,
    ) -> Result<Option<T>> {
        loop {
            match protocol::parse_get_reply(&self.rbuf[self.rpos..], prefix, key) {
                FastGet::Done(reply, used) => {
                    let t = f(reply);
                    self.consume(used);
                    return Ok(Some(t));
                }
                FastGet::NeedMore => self.fill_or_break(deadline)?,
                FastGet::Other => return Ok(None),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    /// True when requests sit in the write buffer (buffered noreply commands).
    pub fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// True when bytes arrived that no request asked for yet.
    pub fn has_buffered_input(&self) -> bool {
        self.rpos < self.rbuf.len()
    }

    /// Best effort `quit` (after any buffered noreply commands); the
    /// connection is dropped afterwards either way.
    pub fn quit(mut self) {
        if !self.is_reusable() {
            // broken, or the parent's socket after fork(): send nothing
            self.wbuf.clear();
            return;
        }
        protocol::encode::quit(&mut self.wbuf);
        let deadline = Deadline::after(self.timeout.min(Duration::from_millis(100)));
        let _ = self.flush(deadline);
        if let Some(session) = self.tls.as_mut() {
            session.send_close_notify();
            let _ = self.push_tls(deadline);
        }
        match &self.sock {
            Socket::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Socket::Unix(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Conn {
    /// Buffered noreply commands are written before the socket closes
    /// (bounded by the timeout), unless the connection is broken or belongs
    /// to the parent process.
    fn drop(&mut self) {
        if !self.wbuf.is_empty() && self.is_reusable() {
            let d = Deadline::after(self.timeout);
            let _ = self.flush(d);
        }
    }
}

fn set_int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: v outlives the call; size matches.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> ServerAddr {
        ServerAddr::Tcp {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn address_forms() {
        assert_eq!(
            ServerAddr::parse("localhost").unwrap(),
            tcp("localhost", 11211)
        );
        assert_eq!(
            ServerAddr::parse("127.0.0.1:11212").unwrap(),
            tcp("127.0.0.1", 11212)
        );
        assert_eq!(ServerAddr::parse("[::1]:5").unwrap(), tcp("::1", 5));
        assert_eq!(ServerAddr::parse("[::1]").unwrap(), tcp("::1", 11211));
        assert_eq!(
            ServerAddr::parse("unix:/tmp/mc.sock").unwrap(),
            ServerAddr::Unix("/tmp/mc.sock".into())
        );
        assert_eq!(
            ServerAddr::parse("/tmp/mc.sock").unwrap(),
            ServerAddr::Unix("/tmp/mc.sock".into())
        );
        for bad in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "host:x",
            "::1:5",
            "[::1",
            "[::1]x",
            "unix:",
            "a b:1",
            ":11211",
        ] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(tcp("::1", 11211).to_string(), "[::1]:11211");
    }
}
