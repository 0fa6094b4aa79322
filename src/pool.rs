//! A bounded pool of connections to one server.
//!
//! At most `max_size` connections are open at once. A caller that finds them
//! all busy waits (up to its deadline) for one to come back instead of failing
//! at once. Idle connections are reused most-recently-used first, so a light
//! load keeps few sockets warm; one idle longer than `idle_timeout` is closed
//! rather than reused (the server or a middlebox may have dropped it).
//!
//! The most recently returned connection sits in a lock-free slot: checking it
//! out and back in is one atomic swap each, with no mutex, which is what a
//! thread doing one request after another hits every time. The mutex-guarded
//! list only serves the overflow when several threads are in flight at once.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnOptions, ServerAddr};
use crate::error::{Error, Result};

/// A refused login (AuthFailed) or handshake (Tls): when, and its detail.
struct Refusal {
    at: Instant,
    auth: bool,
    detail: String,
}

impl Refusal {
    fn error(&self) -> Error {
        if self.auth {
            Error::AuthFailed(self.detail.clone())
        } else {
            Error::Tls(self.detail.clone())
        }
    }
}

pub struct Pool {
    /// connections opened
    connects: AtomicU64,
    addr: ServerAddr,
    opts: ConnOptions,
    max_size: usize,
    idle_timeout: Option<Duration>,
    /// one idle connection (a `Box<Conn>` turned into a raw pointer), or null
    hot: AtomicPtr<Conn>,
    /// callers blocked in `get`; while there are some, connections come back
    /// through the mutex so that the condvar wakes them
    waiting: AtomicUsize,
    state: Mutex<State>,
    returned: Condvar,
    /// the last refused login or TLS handshake, answered from here until
    /// `refused_backoff` has passed: a wrong password or a bad certificate
    /// fails at once instead of costing a connect and a handshake per call
    refused: Mutex<Option<Refusal>>,
    refused_backoff: Duration,
}

struct State {
    /// boxed so that checking out and in moves a pointer, not the connection
    #[allow(clippy::vec_box)]
    idle: Vec<Box<Conn>>,
    /// connections that exist: in the hot slot, idle in the list, or checked out
    open: usize,
}

impl Pool {
    /// Connections this pool opened so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub fn new(
        addr: ServerAddr,
        opts: ConnOptions,
        max_size: usize,
        idle_timeout: Option<Duration>,
    ) -> Pool {
        Pool {
            connects: AtomicU64::new(0),
            addr,
            opts,
            max_size: max_size.max(1),
            idle_timeout,
            hot: AtomicPtr::new(ptr::null_mut()),
            waiting: AtomicUsize::new(0),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            refused: Mutex::new(None),
            refused_backoff: Duration::ZERO,
        }
    }

    /// Remember refused logins and handshakes for `d` (default: not at all).
    pub fn with_refused_backoff(mut self, d: Duration) -> Pool {
        self.refused_backoff = d;
        self
    }

    /// Opens a connection, unless the server refused the last login or
    /// handshake less than `refused_backoff` ago (then that error again).
    fn connect(&self) -> Result<Conn> {
        if !self.refused_backoff.is_zero() {
            let mut last = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = last.as_ref() {
                if r.at.elapsed() < self.refused_backoff {
                    return Err(r.error());
                }
                *last = None;
            }
        }
        let r = Conn::connect(&self.addr, &self.opts);
        match &r {
            Err(Error::AuthFailed(d)) => self.remember_refusal(true, d),
            Err(Error::Tls(d)) => self.remember_refusal(false, d),
            _ => {}
        }
        r
    }

    #[cold]
    fn remember_refusal(&self, auth: bool, detail: &str) {
        if !self.refused_backoff.is_zero() {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(Refusal {
                at: Instant::now(),
                auth,
                detail: detail.to_string(),
            });
        }
    }

    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent (every
        // update is a single push/pop/counter change), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    fn take_hot(&self) -> Option<Box<Conn>> {
        let p = self.hot.swap(ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: a non-null pointer in the slot came from Box::into_raw and
        // the swap made this thread its only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    #[inline]
    fn usable(&self, conn: &Conn) -> bool {
        conn.is_reusable()
            && !self
                .idle_timeout
                .is_some_and(|t| conn.last_used.elapsed() > t)
    }

    /// Checks out a connection, opening one when none is idle and the pool has
    /// room, else waiting up to `wait` for one (then `Error::Timeout`).
    #[inline(always)]
    pub fn get(&self, wait: Duration) -> Result<PooledConn<'_>> {
        if let Some(conn) = self.take_hot() {
            if self.usable(&conn) {
                return Ok(self.pooled(conn));
            }
            self.discard(conn);
        }
        self.get_slow(wait)
    }

    /// `get` when the hot slot had nothing usable: the idle list, a new
    /// connection, or a wait.
    #[inline(never)]
    fn get_slow(&self, wait: Duration) -> Result<PooledConn<'_>> {
        let mut deadline = None; // read the clock only if we must wait
        let mut st = self.lock();
        loop {
            while let Some(conn) = st.idle.pop().or_else(|| self.take_hot()) {
                if self.usable(&conn) {
                    return Ok(self.pooled(conn));
                }
                st.open -= 1;
                drop(conn);
            }
            if st.open < self.max_size {
                st.open += 1;
                drop(st);
                return match self.connect() {
                    Ok(conn) => {
                        self.connects.fetch_add(1, Ordering::Relaxed);
                        Ok(self.pooled(Box::new(conn)))
                    }
                    Err(e) => {
                        self.discard_slot();
                        Err(e)
                    }
                };
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + wait);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(self.opts.timeout.as_millis() as u64));
            }
            self.waiting.fetch_add(1, Ordering::SeqCst);
            // A connection put into the hot slot before `put` could see this
            // waiter must be taken now, or it would sit there while we sleep.
            // (SeqCst on `waiting` and `hot` makes one of the two sides see
            // the other.)
            if let Some(conn) = self.take_hot() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                if self.usable(&conn) {
                    return Ok(self.pooled(conn));
                }
                st.open -= 1;
                continue;
            }
            st = self
                .returned
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn pooled(&self, conn: Box<Conn>) -> PooledConn<'_> {
        PooledConn {
            pool: self,
            conn: ManuallyDrop::new(conn),
        }
    }

    /// Closes a connection that will not be reused and frees its slot.
    fn discard(&self, conn: Box<Conn>) {
        drop(conn);
        self.discard_slot();
    }

    fn discard_slot(&self) {
        self.lock().open -= 1;
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.returned.notify_one();
        }
    }

    /// Returns a connection: into the hot slot when it is free and nobody
    /// waits (one compare-exchange), else through the mutex.
    #[inline]
    fn put(&self, conn: Box<Conn>) {
        if conn.is_reusable()
            && self.idle_timeout.is_none()
            && self.waiting.load(Ordering::SeqCst) == 0
        {
            if let Some(conn) = self.offer_hot(conn) {
                self.put_slow(conn);
            }
            return;
        }
        self.put_slow(conn)
    }

    /// Puts `conn` into the hot slot if it is empty; gives it back if not.
    #[inline(always)]
    fn offer_hot(&self, conn: Box<Conn>) -> Option<Box<Conn>> {
        let p = Box::into_raw(conn);
        match self
            .hot
            .compare_exchange(ptr::null_mut(), p, Ordering::SeqCst, Ordering::Relaxed)
        {
            Ok(_) => {
                // a caller may have started waiting meanwhile: it must not
                // sleep while this connection sits in the slot
                if self.waiting.load(Ordering::SeqCst) > 0 {
                    self.wake_one();
                }
                None
            }
            // SAFETY: p came from Box::into_raw just above and was not shared.
            Err(_) => Some(unsafe { Box::from_raw(p) }),
        }
    }

    #[cold]
    fn wake_one(&self) {
        let _guard = self.lock();
        self.returned.notify_one();
    }

    /// `put` off the fast path: a broken connection, an idle timeout to
    /// stamp, waiters, or a full hot slot.
    #[inline(never)]
    fn put_slow(&self, mut conn: Box<Conn>) {
        if !conn.is_reusable() {
            if let Some(d) = conn.tls_refusal() {
                self.remember_refusal(false, d);
            }
            return self.discard(conn);
        }
        if self.idle_timeout.is_some() {
            conn.last_used = Instant::now();
        }
        if self.waiting.load(Ordering::SeqCst) == 0 {
            match self.offer_hot(conn) {
                None => return,
                Some(c) => conn = c,
            }
        }
        self.lock().idle.push(conn);
        self.returned.notify_one();
    }

    /// Takes every idle connection, the hot slot's included.
    #[allow(clippy::vec_box)]
    fn take_idle(&self, st: &mut State) -> Vec<Box<Conn>> {
        let mut idle = std::mem::take(&mut st.idle);
        idle.extend(self.take_hot());
        idle
    }

    /// Writes what idle connections hold in their write buffers (buffered
    /// noreply commands).
    pub fn flush_idle(&self) -> Result<()> {
        let idle = self.take_idle(&mut self.lock());
        let mut r = Ok(());
        for mut c in idle {
            if c.has_pending_writes() {
                let d = c.deadline();
                if let Err(e) = c.flush(d) {
                    r = r.and(Err(e));
                }
            }
            self.put(c);
        }
        r
    }

    /// Closes every idle connection (sending `quit`); connections in use are
    /// left alone, so a concurrent caller is never disturbed.
    pub fn close_idle(&self) {
        let idle = {
            let mut st = self.lock();
            let idle = self.take_idle(&mut st);
            st.open -= idle.len();
            idle
        };
        self.returned.notify_all();
        for c in idle {
            (*c).quit();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.take_hot());
    }
}

/// A checked-out connection; it goes back to its pool (or is closed, when
/// broken) on drop.
pub struct PooledConn<'a> {
    pool: &'a Pool,
    /// taken only in drop
    conn: ManuallyDrop<Box<Conn>>,
}

impl Deref for PooledConn<'_> {
    type Target = Conn;
    #[inline]
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for PooledConn<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl Drop for PooledConn<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: conn is taken once, here, and not used afterwards.
        let c = unsafe { ManuallyDrop::take(&mut self.conn) };
        self.pool.put(c);
    }
}
