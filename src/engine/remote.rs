//! What other threads hand an event loop: requests submitted from outside
//! its thread (a lock-free stack, taken whole by the loop), and host names
//! resolved off the loop's thread. Either one wakes the loop through its fd.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::job::Callback;
use crate::request::OwnedRequest;

struct Node {
    next: *mut Node,
    req: OwnedRequest,
    cb: Callback,
}

/// The part of a loop that other threads may touch.
pub struct Remote {
    head: AtomicPtr<Node>,
    /// a wake-up is on its way: later submissions need not send another
    signaled: AtomicBool,
    waker: mio::Waker,
    resolved: Mutex<Vec<(usize, io::Result<Vec<SocketAddr>>)>>,
    /// set when the loop goes away: submissions are refused from then on
    closed: AtomicBool,
    /// submissions between their `closed` check and their push
    pushing: AtomicUsize,
}

// SAFETY: nodes are owned by the stack until `take` hands them to the loop;
// the requests and callbacks in them are `Send`.
unsafe impl Send for Remote {}
// SAFETY: every shared field is an atomic, a mutex or the (thread-safe) waker.
unsafe impl Sync for Remote {}

impl Remote {
    pub fn new(waker: mio::Waker) -> Remote {
        Remote {
            head: AtomicPtr::new(ptr::null_mut()),
            signaled: AtomicBool::new(false),
            waker,
            resolved: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            pushing: AtomicUsize::new(0),
        }
    }

    /// Refuses submissions from now on and returns the ones queued (after
    /// any push in progress has landed), oldest first.
    pub fn close(&self) -> Vec<(OwnedRequest, Callback)> {
        self.closed.store(true, Ordering::SeqCst);
        while self.pushing.load(Ordering::SeqCst) > 0 {
            std::hint::spin_loop();
        }
        self.take()
    }

    /// Makes the loop's fd readable (once per batch of calls).
    pub fn wake(&self) {
        if !self.signaled.swap(true, Ordering::AcqRel) {
            // a failed wake (eventfd full) still leaves the fd readable
            let _ = self.waker.wake();
        }
    }

    /// The loop is about to look at everything: the next submission must
    /// wake it again.
    pub fn rearm(&self) {
        self.signaled.store(false, Ordering::Release);
    }

    /// Queues a request for the loop (any thread); gives it back when the
    /// loop is gone.
    pub fn push(&self, req: OwnedRequest, cb: Callback) -> Result<(), (OwnedRequest, Callback)> {
        self.pushing.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.pushing.fetch_sub(1, Ordering::SeqCst);
            return Err((req, cb));
        }
        let node = Box::into_raw(Box::new(Node {
            next: ptr::null_mut(),
            req,
            cb,
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: node is ours until the exchange publishes it.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        self.pushing.fetch_sub(1, Ordering::SeqCst);
        self.wake();
        Ok(())
    }

    pub fn has_work(&self) -> bool {
        !self.head.load(Ordering::Acquire).is_null()
            || !self
                .resolved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// Every queued request, oldest first.
    pub fn take(&self) -> Vec<(OwnedRequest, Callback)> {
        let mut p = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        let mut out = Vec::new();
        while !p.is_null() {
            // SAFETY: the swap made this thread the owner of the whole list.
            let node = unsafe { Box::from_raw(p) };
            p = node.next;
            out.push((node.req, node.cb));
        }
        out.reverse();
        out
    }

    /// Answers of the resolver since the last call.
    pub fn take_resolved(&self) -> Vec<(usize, io::Result<Vec<SocketAddr>>)> {
        std::mem::take(&mut *self.resolved.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Resolves `host` on a thread of its own (a slow resolver must not
    /// freeze the loop) and wakes the loop with the answer.
    pub fn resolve(self: &Arc<Self>, server: usize, host: &str, port: u16) {
        let me = Arc::clone(self);
        let host = host.to_string();
        let spawned = std::thread::Builder::new()
            .name("mcrs-resolve".into())
            .spawn(move || {
                let r = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>());
                me.resolved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((server, r));
                me.signaled.store(false, Ordering::Release);
                me.wake();
            });
        if let Err(e) = spawned {
            self.resolved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((server, Err(e)));
            self.wake();
        }
    }
}
