//! TLS on an event-loop connection: a readiness-driven handshake, then encrypted writes and reads.
//!
//! The session comes from the client's [`TlsConnector`](crate::tls::TlsConnector)
//! (its shared configuration caches sessions, so a reconnect resumes). The
//! handshake runs in `State::Handshaking` until the connect deadline; on
//! failure every waiting request fails with `Error::Tls`, whose detail is
//! made by the same helpers as the blocking path's (src/tls.rs), the server
//! is reported failing, and the refusal is remembered for `retry_timeout`.
//! Once ready, `flush` encrypts the write buffer into the session and sends
//! the records until the socket is full; `read` decrypts records into the
//! pipe's read buffer, so the reply parser is the plaintext one.

use std::io::{self, BufRead, Write};
use std::os::fd::RawFd;

use rustls::ClientConnection;

use super::{copy_error, Ctx, Deadline, Pipe, Sock, State, READ_CHUNK};
use crate::conn::{refuse_oversized, ServerAddr, KEEP_READ_BUFFER};
use crate::error::Error;
use crate::tls::{self, FdIo};

/// Plaintext handed to the session per step of a flush: what is counted as
/// written is at most this far ahead of the socket.
const TLS_CHUNK: usize = 64 * 1024;

/// The TLS state of one connection.
pub(super) struct Session {
    conn: ClientConnection,
    /// handshake bytes received so far (for the timeout's detail)
    received: usize,
    /// application data arrived: a later failure is not a refusal
    got_data: bool,
    /// the server refused to resume the session: connect again, fresh
    again: bool,
}

/// The socket as rustls reads it on the read path: remembers whether the
/// last read was short (the socket is empty then, and the poller reports
/// new data: no read that would only say EAGAIN).
struct ReadIo {
    fd: RawFd,
    short: bool,
}

impl io::Read for ReadIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid writable memory of buf.len() bytes.
        let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.short = (n as usize) < buf.len();
        Ok(n as usize)
    }
}

fn io_for(fd: RawFd) -> FdIo {
    FdIo {
        fd,
        flags: libc::MSG_DONTWAIT,
    }
}

impl Pipe {
    /// The socket is connected: starts the session and its handshake.
    #[cold]
    pub(super) fn start_tls(&mut self, cx: &mut Ctx<'_>, deadline: Deadline) {
        let connector = cx.opts.tls.as_ref().expect("TLS is on");
        let host = match &self.addr {
            ServerAddr::Tcp { host, .. } => Some(host.as_str()),
            ServerAddr::Unix(_) => None,
        };
        match connector.start(host) {
            Ok(conn) => {
                self.tls = Some(Box::new(Session {
                    conn,
                    received: 0,
                    got_data: false,
                    again: false,
                }))
            }
            Err(e) => return self.handshake_failed(cx, e),
        }
        if let Some(Sock::Tcp(s)) = &self.sock {
            // the handshake's flights go out at once
            let _ = s.set_nodelay(cx.opts.no_delay);
        }
        self.state = State::Handshaking(deadline);
        self.handshake(cx);
    }

    /// Moves the handshake on as far as the socket allows; ready when done.
    #[cold]
    pub(super) fn handshake(&mut self, cx: &mut Ctx<'_>) {
        match self.handshake_step(cx) {
            Ok(true) => self.became_ready(cx),
            Ok(false) => {}
            Err(_) if self.tls.as_ref().is_some_and(|s| s.again) => {
                // nothing was written: the requests wait for the new connection
                self.drop_socket(cx);
                self.state = State::Closed;
                self.open(cx);
            }
            Err(e) => self.handshake_failed(cx, e),
        }
    }

    /// Ok(true): the handshake is complete; Ok(false): waiting for the socket.
    fn handshake_step(&mut self, cx: &Ctx<'_>) -> Result<bool, Error> {
        let fd = self.sock.as_ref().map_or(-1, Sock::fd);
        let s = self.tls.as_deref_mut().expect("a TLS session");
        let mut io = io_for(fd);
        loop {
            if s.conn.wants_write() {
                match s.conn.write_tls(&mut io) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // the poller reports room again
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(tls::closed_during_handshake(e)),
                }
            }
            if !s.conn.is_handshaking() {
                return Ok(true);
            }
            if s.received == 0 {
                // a plaintext server answers the ClientHello with a text line;
                // look at the first byte only once it is there (read before
                // it, an answer arriving in between would reach rustls, whose
                // error does not say what the server is)
                match tls::first_reply(fd) {
                    tls::FirstReply::NotTls(e) => return Err(e),
                    tls::FirstReply::Pending => return Ok(false),
                    tls::FirstReply::Tls => {}
                }
            }
            match s.conn.read_tls(&mut io) {
                Ok(0) => return Err(tls::closed_in_handshake()),
                Ok(n) => s.received += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(tls::closed_during_handshake(e)),
            }
            if let Err(e) = s.conn.process_new_packets() {
                // let the server know why (best effort: the alert rustls queued)
                let _ = s.conn.write_tls(&mut io);
                let connector = cx.opts.tls.as_ref().expect("TLS is on");
                s.again = connector.refused_resumption(&e);
                return Err(Error::Tls(tls::describe(&e)));
            }
        }
    }

    /// The handshake did not finish within the connect deadline.
    #[cold]
    pub(super) fn handshake_timed_out(&mut self, cx: &mut Ctx<'_>) {
        let received = self.tls.as_ref().map_or(0, |s| s.received);
        let e = tls::handshake_timeout(received, cx.opts.connect_timeout.as_millis() as u64);
        self.handshake_failed(cx, e);
    }

    /// A handshake that failed: as a failed connect, every waiting request
    /// fails with the error; a TLS refusal is remembered for retry_timeout
    /// (as the blocking pool does), so that requests fail at once meanwhile.
    #[cold]
    fn handshake_failed(&mut self, cx: &mut Ctx<'_>, e: Error) {
        let e = match e {
            Error::Tls(d) => {
                let e = Error::Tls(format!("{}: {d}", self.name));
                self.refused = Some((cx.now.plus(cx.cluster.retry_timeout()), copy_error(&e)));
                e
            }
            e => e,
        };
        self.drop_socket(cx);
        self.state = State::Closed;
        cx.cluster.report::<()>(self.server, &Err(copy_error(&e)));
        self.fail_all(cx, &e);
        self.reset_buffers();
    }

    /// The error of a TLS session that failed after its handshake: named
    /// by server, and remembered as a refusal when no data had come yet
    /// (a client certificate refused, which TLS 1.3 says after the handshake).
    #[cold]
    pub(super) fn tls_session_failed(&mut self, cx: &mut Ctx<'_>, d: String) -> Error {
        let e = Error::Tls(format!("{}: {d}", self.name));
        if self.tls.as_ref().is_some_and(|s| !s.got_data) {
            self.refused = Some((cx.now.plus(cx.cluster.retry_timeout()), copy_error(&e)));
        }
        e
    }

    /// True when the session holds records the socket did not take yet.
    #[inline]
    pub(super) fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|s| s.conn.wants_write())
    }

    /// `flush` over TLS: the unwritten part of wbuf is encrypted into the
    /// session a chunk at a time, each chunk's records sent before the next
    /// is taken, until the socket is full. False when the connection broke.
    #[inline(never)]
    pub(super) fn write_tls(&mut self, cx: &mut Ctx<'_>, fd: RawFd) -> bool {
        let mut io = io_for(fd);
        let s = self.tls.as_deref_mut().expect("a TLS session");
        let e = loop {
            if s.conn.wants_write() {
                match s.conn.write_tls(&mut io) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // the poller says when there is room again
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        break Error::UnexpectedClose
                    }
                    Err(e) => break Error::Io(e),
                }
            }
            if self.woff == self.wbuf.len() {
                return true;
            }
            let end = self.wbuf.len().min(self.woff + TLS_CHUNK);
            // no buffer limit is set on the session: all of it is taken
            match s.conn.writer().write(&self.wbuf[self.woff..end]) {
                // (only a buffer limit, which is never set, takes nothing)
                Ok(0) => break Error::Io(io::Error::other("the TLS session took no bytes")),
                Ok(n) => self.woff += n,
                Err(e) => break Error::Io(e),
            }
        };
        self.broken(cx, e);
        false
    }

    /// `read` over TLS: records from the socket until it is empty, their
    /// plaintext appended to rbuf and parsed as it comes.
    #[inline(never)]
    pub(super) fn read_tls(&mut self, cx: &mut Ctx<'_>) -> Result<(), Error> {
        let fd = self.sock.as_ref().map_or(-1, Sock::fd);
        let mut io = ReadIo { fd, short: false };
        let mut got_any = false;
        // set once a short read emptied the socket: the records it brought
        // are decrypted and handed on, then the read is over
        let mut drained = false;
        loop {
            let s = self.tls.as_deref_mut().expect("a TLS session");
            match s.conn.reader().fill_buf() {
                Ok([]) => return self.tls_closed(cx), // close_notify
                Ok(b) => {
                    let n = b.len();
                    if self.rpos == self.rbuf.len() {
                        self.rbuf.clear();
                        self.rpos = 0;
                        if self.rbuf.capacity() > KEEP_READ_BUFFER {
                            self.rbuf = Vec::with_capacity(READ_CHUNK);
                        }
                    }
                    if self.rbuf.capacity() - self.rbuf.len() < n {
                        if self.rpos > 0 {
                            self.rbuf.drain(..self.rpos);
                            self.rpos = 0;
                        }
                        refuse_oversized(&self.rbuf, cx.opts.max_value)?;
                        self.rbuf.reserve(READ_CHUNK.max(self.rbuf.len()).max(n));
                    }
                    self.rbuf.extend_from_slice(b);
                    s.conn.reader().consume(n);
                    s.got_data = true;
                    got_any = true;
                    self.parse(cx)?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // the peer closed without close_notify
                Err(_) => return self.tls_closed(cx),
            }
            if drained {
                break;
            }
            match s.conn.read_tls(&mut io) {
                // EOF: the session says next whether it was clean
                Ok(0) => {}
                Ok(_) => drained = io.short,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Error::UnexpectedClose)
                }
                Err(e) => return Err(Error::Io(e)),
            }
            if let Err(e) = s.conn.process_new_packets() {
                let _ = s.conn.write_tls(&mut io_for(fd));
                return Err(Error::Tls(tls::describe(&e)));
            }
            if s.conn.wants_write() {
                // a post-handshake message to answer (a key update)
                self.want_flush = true;
            }
        }
        if got_any {
            cx.cluster.report::<()>(self.server, &Ok(()));
        }
        Ok(())
    }

    /// The server closed the TLS connection: quiet when it was idle, as on
    /// plaintext.
    fn tls_closed(&mut self, cx: &mut Ctx<'_>) -> Result<(), Error> {
        if !self.busy() && self.rpos == self.rbuf.len() {
            self.close_quietly(cx);
            return Ok(());
        }
        Err(Error::UnexpectedClose)
    }

    /// Some(true) when the connection's TLS session was resumed (no
    /// certificate exchange), Some(false) after a full handshake, None
    /// without a TLS connection.
    pub fn tls_resumed(&self) -> Option<bool> {
        match self.state {
            State::Ready => self.tls.as_ref().map(|s| tls::resumed(&s.conn)),
            _ => None,
        }
    }

    /// Tells the server the session ends (best effort, never blocks).
    pub(super) fn close_notify(&mut self) {
        if !matches!(self.state, State::Ready) {
            return;
        }
        let fd = self.sock.as_ref().map_or(-1, Sock::fd);
        if let Some(s) = self.tls.as_deref_mut() {
            s.conn.send_close_notify();
            let _ = s.conn.write_tls(&mut io_for(fd));
        }
    }
}
