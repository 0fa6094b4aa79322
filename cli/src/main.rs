//! `mcrs`: a command-line tool for memcached on the mcrs Rust API, in the
//! spirit of libmemcached-tools (memcat, memcp, memrm, memstat, memflush,
//! memping, memdump, memslap). Exit codes: 0 success, 1 a miss or not stored,
//! 2 an error (the message on stderr).

mod bench;
mod dump;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use mcrs::protocol::StoreCmd;
use mcrs::{Client, ClientBuilder, Distribution};

/// A command-line tool for memcached servers and clusters.
///
/// Exit codes: 0 success, 1 a miss or a value not stored, 2 an error (its
/// message on stderr).
#[derive(Parser, Debug)]
#[command(name = "mcrs", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub verb: Verb,
}

/// How to reach the servers (shared by every verb).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// Servers: host:port,… ([v6]:port, unix:/path; the port defaults to 11211)
    #[arg(
        short,
        long,
        env = "MEMCACHED_SERVERS",
        value_name = "LIST",
        global = true
    )]
    pub servers: Option<String>,
    /// Timeout of every read and write, e.g. 500ms, 2s (a bare number is milliseconds)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    /// Timeout of a connection attempt (same syntax)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration, global = true)]
    pub connect_timeout: Duration,
    /// Key distribution over a cluster (must match the applications' to find their keys)
    #[arg(long, value_enum, default_value_t = Dist::Rendezvous, global = true)]
    pub distribution: Dist,
    /// TLS on every connection (memcached -Z); verified against the system roots unless --tls-ca
    #[arg(long, global = true)]
    pub tls: bool,
    /// PEM file of the CA that signs the servers' certificates
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_ca: Option<String>,
    /// PEM file of a client certificate chain (mutual TLS), with --tls-key
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_cert: Option<String>,
    /// PEM file of the client certificate's private key
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_key: Option<String>,
    /// Name to verify the servers' certificates against (default: each server's host)
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
    /// Do not verify the servers' certificates (testing only)
    #[arg(long, global = true)]
    pub tls_no_verify: bool,
    /// User name for memcached's -Y authentication (with --password)
    #[arg(long, env = "MEMCACHED_USERNAME", value_name = "USER", global = true)]
    pub username: Option<String>,
    /// Password for -Y authentication
    #[arg(
        long,
        env = "MEMCACHED_PASSWORD",
        value_name = "PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Dist {
    /// pymemcache-compatible rendezvous hashing
    Rendezvous,
    /// libmemcached-compatible ketama
    Ketama,
    /// rendezvous over xxh3 (mcrs only)
    Xxh3,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Write the values of KEYs to stdout, raw bytes in key order (exit 1 if any is missing)
    Get {
        /// Keys to read
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Store the contents of FILE (or stdin with -) under KEY (exit 1 if not stored)
    Set {
        /// Key to store under
        key: String,
        /// A file to read the value from, or - for stdin
        #[arg(value_name = "FILE|-")]
        file: String,
        /// Flags stored with the value
        #[arg(long, default_value_t = 0)]
        flags: u32,
        /// Expiry: seconds from now (up to 30 days) or a unix time; 0 never expires
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        expire: u32,
        /// Storage command: set always stores; add only if absent; replace, append and prepend only if present
        #[arg(long, value_enum, default_value_t = Mode::Set)]
        mode: Mode,
    },
    /// Delete KEYs (exit 1 if any was not there)
    Rm {
        /// Keys to delete
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Set a new expiry on KEY (exit 1 if it is not there)
    Touch {
        /// Key to touch
        key: String,
        /// Seconds from now (up to 30 days) or a unix time; 0 never expires
        seconds: u32,
    },
    /// Print `stats [ARGS]` of every server, as "server name value" lines
    Stat {
        /// e.g. items, slabs, settings, conns (none: the general statistics)
        args: Vec<String>,
    },
    /// Invalidate every item on every server (flush_all)
    Flush {
        /// Do it this many seconds from now instead
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        delay: u32,
    },
    /// Print the version of every server with its latency
    Ping,
    /// List the keys of every server (lru_crawler metadump all)
    Dump(dump::DumpArgs),
    /// Generate load and report throughput and latency percentiles
    Bench(bench::BenchArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// Why a verb did not succeed.
#[derive(Debug)]
pub enum Fail {
    /// A miss or a value not stored: exit 1 (the messages are already printed).
    Miss,
    /// An error: exit 2 with this message.
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail::Error(e.to_string())
    }
}

pub type Outcome = Result<(), Fail>;

/// Parses `250ms`, `2s`, `1.5s`, `1m` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1e-3)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 2s)"))?;
    if !v.is_finite() || v <= 0.0 || v * scale > 86_400.0 {
        return Err(format!("{s:?}: a duration must be > 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

impl ConnArgs {
    /// The server list, or an error saying how to give one.
    pub fn servers(&self) -> Result<Vec<String>, Fail> {
        let list: Vec<String> = self
            .servers
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Err(Fail::Error(
                "no servers: give --servers host:port,… or set MEMCACHED_SERVERS".into(),
            ));
        }
        Ok(list)
    }

    /// A builder over `servers` with the timeouts; noreply off, so every
    /// command reports its result.
    pub fn builder(&self, servers: &[String]) -> Result<ClientBuilder, Fail> {
        let mut b = ClientBuilder::new();
        for s in servers {
            b.add_server(s)?;
        }
        b.timeout(self.timeout)?;
        b.connect_timeout(self.connect_timeout)?;
        b.default_noreply(false);
        b.distribution(match self.distribution {
            Dist::Rendezvous => Distribution::Rendezvous,
            Dist::Ketama => Distribution::Ketama,
            Dist::Xxh3 => Distribution::Xxh3,
        });
        if self.tls {
            b.tls(true);
            if let Some(f) = &self.tls_ca {
                b.tls_ca_file(f)?;
            }
            if let Some(f) = &self.tls_cert {
                b.tls_cert_file(f)?;
            }
            if let Some(f) = &self.tls_key {
                b.tls_key_file(f)?;
            }
            if let Some(n) = &self.tls_server_name {
                b.tls_server_name(n)?;
            }
            b.tls_verify(!self.tls_no_verify);
        } else if self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some() {
            return Err(Fail::Error(
                "--tls-ca, --tls-cert and --tls-key need --tls".into(),
            ));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => {
                b.auth(u, p)?;
            }
            (None, None) => {}
            _ => return Err(Fail::Error("--username and --password go together".into())),
        }
        Ok(b)
    }

    /// A client over all the servers.
    pub fn client(&self) -> Result<Client, Fail> {
        Ok(self.builder(&self.servers()?)?.build()?)
    }

    /// One client per server, for the verbs that address every server.
    pub fn per_server(&self) -> Result<Vec<(String, Client)>, Fail> {
        self.servers()?
            .into_iter()
            .map(|s| {
                let c = self.builder(std::slice::from_ref(&s))?.build()?;
                Ok((s, c))
            })
            .collect()
    }
}

fn main() -> ExitCode {
    // `mcrs dump | head` ends quietly when head exits, as other tools do,
    // instead of failing on a broken pipe
    // SAFETY: setting a signal's disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let r = match &cli.verb {
        Verb::Get { keys } => get(&cli.conn, keys),
        Verb::Set {
            key,
            file,
            flags,
            expire,
            mode,
        } => set(&cli.conn, key, file, *flags, *expire, *mode),
        Verb::Rm { keys } => rm(&cli.conn, keys),
        Verb::Touch { key, seconds } => touch(&cli.conn, key, *seconds),
        Verb::Stat { args } => stat(&cli.conn, &args.join(" ")),
        Verb::Flush { delay } => flush(&cli.conn, *delay),
        Verb::Ping => ping(&cli.conn),
        Verb::Dump(a) => dump::run(&cli.conn, a),
        Verb::Bench(a) => bench::run(&cli.conn, a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Miss) => ExitCode::from(1),
        Err(Fail::Error(msg)) => {
            let _ = io::stdout().flush();
            eprintln!("mcrs: {msg}");
            ExitCode::from(2)
        }
    }
}

fn get(conn: &ConnArgs, keys: &[String]) -> Outcome {
    let client = conn.client()?;
    let ks: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    let values = client.get_many(&ks)?;
    let mut out = io::stdout().lock();
    let mut missed = false;
    for (k, v) in keys.iter().zip(values) {
        match v {
            Some(v) => out.write_all(&v.data)?,
            None => {
                missed = true;
                eprintln!("mcrs: {k}: not found");
            }
        }
    }
    out.flush()?;
    if missed {
        Err(Fail::Miss)
    } else {
        Ok(())
    }
}

fn set(conn: &ConnArgs, key: &str, file: &str, flags: u32, expire: u32, mode: Mode) -> Outcome {
    let client = conn.client()?;
    let mut value = Vec::new();
    if file == "-" {
        io::stdin()
            .lock()
            .read_to_end(&mut value)
            .map_err(|e| Fail::Error(format!("reading stdin: {e}")))?;
    } else {
        value = std::fs::read(file).map_err(|e| Fail::Error(format!("{file}: {e}")))?;
    }
    let cmd = match mode {
        Mode::Set => StoreCmd::Set,
        Mode::Add => StoreCmd::Add,
        Mode::Replace => StoreCmd::Replace,
        Mode::Append => StoreCmd::Append,
        Mode::Prepend => StoreCmd::Prepend,
    };
    if client.store(cmd, key.as_bytes(), &value, flags, expire, Some(false))? {
        Ok(())
    } else {
        eprintln!("mcrs: {key}: not stored");
        Err(Fail::Miss)
    }
}

fn rm(conn: &ConnArgs, keys: &[String]) -> Outcome {
    let client = conn.client()?;
    let mut missed = false;
    for k in keys {
        if !client.delete(k.as_bytes(), Some(false))? {
            missed = true;
            eprintln!("mcrs: {k}: not found");
        }
    }
    if missed {
        Err(Fail::Miss)
    } else {
        Ok(())
    }
}

fn touch(conn: &ConnArgs, key: &str, seconds: u32) -> Outcome {
    let client = conn.client()?;
    if client.touch(key.as_bytes(), seconds, Some(false))? {
        Ok(())
    } else {
        eprintln!("mcrs: {key}: not found");
        Err(Fail::Miss)
    }
}

/// Runs `f` on every server in turn; the live servers' results are kept
/// even when some server fails, which fails the verb at the end (exit 2,
/// naming every server that failed).
fn each_server(
    conn: &ConnArgs,
    mut f: impl FnMut(&str, &Client) -> Result<(), mcrs::Error>,
) -> Outcome {
    let mut failed = Vec::new();
    for (server, client) in conn.per_server()? {
        if let Err(e) = f(&server, &client) {
            failed.push(format!("{server}: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Fail::Error(failed.join("; ")))
    }
}

fn stat(conn: &ConnArgs, args: &str) -> Outcome {
    let mut out = io::stdout().lock();
    each_server(conn, |server, c| {
        for (_, name, value) in c.stats(args)? {
            writeln!(out, "{server} {name} {value}")?;
        }
        Ok(())
    })
}

fn flush(conn: &ConnArgs, delay: u32) -> Outcome {
    each_server(conn, |_, c| c.flush_all(delay, Some(false)))
}

fn ping(conn: &ConnArgs) -> Outcome {
    let mut out = io::stdout().lock();
    each_server(conn, |server, c| {
        // the first call connects; the second is one round trip
        let t0 = Instant::now();
        let version = c.version()?;
        let first = t0.elapsed();
        let t1 = Instant::now();
        c.version()?;
        let rtt = t1.elapsed();
        writeln!(
            out,
            "{server} version {version} connect+rtt {:.3} ms rtt {:.3} ms",
            ms(first),
            ms(rtt)
        )?;
        Ok(())
    })
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_millis(300)));
        for bad in ["", "0", "-1s", "abc", "1h", "nan", "100000s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
