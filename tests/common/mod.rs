//! Test harness: real memcached processes on free loopback ports (or unix
//! sockets), started per test and killed on drop, plus deliberately broken
//! peers for fault tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

pub struct Memcached {
    child: Option<Child>,
    pub port: u16,
    pub unix: Option<PathBuf>,
    extra: Vec<String>,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// Ports handed to this process's servers and not yet released: a server
/// killed for a fault test keeps its port for its restart, so no other test
/// may be given it meanwhile.
static RESERVED: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        let mut reserved = RESERVED.lock().unwrap_or_else(|p| p.into_inner());
        if !reserved.contains(&port) {
            reserved.push(port);
            return port;
        }
    }
}

fn release_port(port: u16) {
    RESERVED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != port);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Memcached {
    /// A memcached on a free loopback TCP port.
    pub fn start() -> Memcached {
        Self::start_with(&[])
    }

    /// Same, with extra memcached arguments (e.g. `["-I", "2m"]`).
    pub fn start_with(extra: &[&str]) -> Memcached {
        for _ in 0..20 {
            let mut m = Memcached {
                child: None,
                port: free_port(),
                unix: None,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            if m.spawn() {
                return m;
            }
            release_port(m.port);
            m.port = 0; // released: Drop must not release it again
        }
        panic!("could not start memcached (is it installed? apt-get install memcached)");
    }

    /// A memcached listening on a unix socket in a fresh temp path.
    pub fn start_unix() -> Memcached {
        let path = std::env::temp_dir().join(format!(
            "mcrs-test-{}-{}.sock",
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let mut m = Memcached {
            child: None,
            port: 0,
            unix: Some(path),
            extra: Vec::new(),
        };
        assert!(m.spawn(), "could not start memcached on a unix socket");
        m
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("memcached");
        cmd.args(["-t", "1", "-U", "0", "-m", "64"]);
        if is_root() {
            cmd.args(["-u", "root"]);
        }
        match &self.unix {
            Some(p) => cmd.arg("-s").arg(p),
            None => cmd.args(["-l", "127.0.0.1", "-p", &self.port.to_string()]),
        };
        cmd.args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn memcached");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // e.g. the port was taken meanwhile
            }
            let up = match &self.unix {
                Some(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
                None => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if up {
                // Something answered, but it may be another test's server that
                // holds the port while ours exits on a failed bind: ours must
                // still be running a moment later.
                thread::sleep(Duration::from_millis(30));
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
                self.child = Some(child);
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The address to configure a client with.
    pub fn addr(&self) -> String {
        match &self.unix {
            Some(p) => format!("unix:{}", p.display()),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing.
    pub fn pause(&self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
        // kill() returns before the process has stopped: wait until it has,
        // or a request sent right after could still be answered
        let stat = format!("/proc/{}/stat", self.pid());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let stopped = std::fs::read_to_string(&stat)
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .map(|r| r.trim_start().starts_with('T'))
                })
                .unwrap_or(false);
            if stopped {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), libc::SIGCONT) };
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port (after `kill`), empty.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("could not restart memcached on port {}", self.port);
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // SAFETY: a stopped child would ignore SIGKILL until continued on some systems.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill();
        if let Some(p) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
        if self.port != 0 {
            release_port(self.port);
        }
    }
}

/// A deliberately broken server: each accepted connection is handed to
/// `serve` (with the connection's index) on its own thread.
pub struct FakePeer {
    pub port: u16,
}

impl FakePeer {
    pub fn start<F>(serve: F) -> FakePeer
    where
        F: Fn(usize, TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let serve = std::sync::Arc::new(serve);
        thread::spawn(move || {
            for (i, s) in listener.incoming().enumerate() {
                let Ok(s) = s else { return };
                let serve = serve.clone();
                thread::spawn(move || serve(i, s));
            }
        });
        FakePeer { port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Reads one request line (up to and including "\r\n") from a fake peer's socket.
pub fn read_line(s: &mut TcpStream) -> Option<String> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// Writes bytes, ignoring errors (the client may have gone).
pub fn send(s: &mut TcpStream, b: &[u8]) {
    let _ = s.write_all(b);
    let _ = s.flush();
}

/// Blocks until the client closes (keeps a silent peer's socket open).
pub fn drain(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            return;
        }
    }
}
