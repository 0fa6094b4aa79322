//! Test harness of the tool's tests: real memcached processes on free
//! loopback ports, started per test and killed on drop, and a runner for the
//! built `mcrs` binary.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Ports given to this process's servers: no two tests get the same one.
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

pub struct Memcached {
    child: Child,
    pub port: u16,
}

impl Memcached {
    /// A memcached on a free loopback port.
    pub fn start() -> Memcached {
        Self::start_with(&[])
    }

    /// The same with extra memcached arguments (e.g. TLS options).
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with(extra: &[&str]) -> Memcached {
        for _ in 0..20 {
            let port = free_port();
            let mut cmd = Command::new("memcached");
            cmd.args(["-t", "1", "-U", "0", "-m", "64", "-l", "127.0.0.1"])
                .arg("-p")
                .arg(port.to_string())
                .args(extra);
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memcached (is it installed? apt-get install memcached)");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // ours must still run a moment later (not another's server)
                    thread::sleep(Duration::from_millis(30));
                    if let Ok(None) = child.try_wait() {
                        return Memcached { child, port };
                    }
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start memcached");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memcached on a unix socket; killed and its socket removed on drop.
pub struct UnixMemcached {
    child: Child,
    pub path: std::path::PathBuf,
}

impl UnixMemcached {
    pub fn start() -> UnixMemcached {
        let path = std::env::temp_dir().join(format!("mcrs-cli-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut cmd = Command::new("memcached");
        cmd.args(["-t", "1", "-m", "64", "-s"]).arg(&path);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::os::unix::net::UnixStream::connect(&path).is_err() {
            assert!(
                Instant::now() < deadline,
                "memcached on {path:?} did not start"
            );
            thread::sleep(Duration::from_millis(10));
        }
        UnixMemcached { child, path }
    }

    pub fn addr(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for UnixMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `n` servers as a `--servers` list, with the servers (kept alive by the caller).
pub fn cluster(n: usize) -> (Vec<Memcached>, String) {
    let ms: Vec<Memcached> = (0..n).map(|_| Memcached::start()).collect();
    let list = ms.iter().map(Memcached::addr).collect::<Vec<_>>().join(",");
    (ms, list)
}

/// A loopback port nothing listens on.
pub fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// The result of one run of the tool.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `mcrs ARGS` with `stdin` as its input; MEMCACHED_SERVERS is unset
/// unless `env` sets it.
pub fn mcrs_env(args: &[&str], stdin: &[u8], env: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcrs"));
    cmd.args(args)
        .env_remove("MEMCACHED_SERVERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = env {
        cmd.env("MEMCACHED_SERVERS", v);
    }
    let t = Instant::now();
    let mut child = cmd.spawn().expect("run mcrs");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for mcrs");
    let _ = writer.join();
    Run {
        code: status.code().expect("exited (not killed by a signal)"),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        took: t.elapsed(),
    }
}

/// Runs `mcrs --servers SERVERS ARGS`.
pub fn mcrs(servers: &str, args: &[&str]) -> Run {
    let mut all = vec!["--servers", servers];
    all.extend_from_slice(args);
    mcrs_env(&all, b"", None)
}

/// Same, with `stdin` as the input.
pub fn mcrs_in(servers: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["--servers", servers];
    all.extend_from_slice(args);
    mcrs_env(&all, stdin, None)
}

/// Asserts the exit code, showing the run's output when it differs.
#[track_caller]
pub fn expect(r: &Run, code: i32) {
    assert_eq!(
        r.code,
        code,
        "exit code {} (wanted {code})\nstdout: {}\nstderr: {}",
        r.code,
        r.out(),
        r.stderr
    );
}
