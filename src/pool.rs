//! A bounded pool of connections to one server.
//!
//! At most `max_size` connections are open at once. A caller that finds them
//! all busy waits (up to its deadline) for one to come back instead of failing
//! at once. Idle connections are reused most-recently-used first, so a light
//! load keeps few sockets warm; one idle longer than `idle_timeout` is closed
//! rather than reused (the server or a middlebox may have dropped it).

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnOptions, ServerAddr};
use crate::error::{Error, Result};

pub struct Pool {
    addr: ServerAddr,
    opts: ConnOptions,
    max_size: usize,
    idle_timeout: Option<Duration>,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    idle: Vec<Conn>,
    /// connections that exist: idle ones plus those checked out
    open: usize,
}

impl Pool {
    pub fn new(
        addr: ServerAddr,
        opts: ConnOptions,
        max_size: usize,
        idle_timeout: Option<Duration>,
    ) -> Pool {
        Pool {
            addr,
            opts,
            max_size: max_size.max(1),
            idle_timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
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

    /// Checks out a connection, opening one when none is idle and the pool has
    /// room, else waiting for one until `deadline` (then `Error::Timeout`).
    pub fn get(&self, deadline: Instant) -> Result<PooledConn<'_>> {
        let mut st = self.lock();
        loop {
            while let Some(conn) = st.idle.pop() {
                let stale = self
                    .idle_timeout
                    .is_some_and(|t| conn.last_used.elapsed() > t);
                if conn.is_reusable() && !stale {
                    return Ok(PooledConn {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                st.open -= 1;
                drop(conn);
            }
            if st.open < self.max_size {
                st.open += 1;
                drop(st);
                return match Conn::connect(&self.addr, &self.opts) {
                    Ok(conn) => Ok(PooledConn {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(self.opts.timeout.as_millis() as u64));
            }
            st = self
                .returned
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn put(&self, conn: Conn) {
        let mut st = self.lock();
        if conn.is_reusable() {
            st.idle.push(conn);
            drop(st);
        } else {
            st.open -= 1;
            drop(st);
            drop(conn);
        }
        self.returned.notify_one();
    }

    /// Closes every idle connection (sending `quit`); connections in use are
    /// closed when they come back only if they are broken, so a concurrent
    /// caller is never disturbed.
    pub fn close_idle(&self) {
        let idle = {
            let mut st = self.lock();
            st.open -= st.idle.len();
            std::mem::take(&mut st.idle)
        };
        self.returned.notify_all();
        for c in idle {
            c.quit();
        }
    }
}

/// A checked-out connection; it goes back to its pool (or is closed, when
/// broken) on drop.
pub struct PooledConn<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Deref for PooledConn<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for PooledConn<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.put(c);
        }
    }
}
