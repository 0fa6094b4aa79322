//! The Rust API: [`ClientBuilder`] and [`Client`].
//!
//! Semantics follow pymemcache: storage commands, `delete`, `touch`,
//! `flush_all` and `verbosity` default to noreply (configurable with
//! `default_noreply`), `cas`, `incr`, `decr` and `cache_memlimit` wait for
//! the reply; every call can override with `Some(true|false)`. With
//! `ignore_exc`, failures on reads become misses. Keys are validated before
//! any I/O.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, HealthOptions, PoolOptions, ServerSpec};
use crate::conn::{Conn, ConnOptions, Deadline, ServerAddr};
use crate::error::{Error, Result};
use crate::protocol::encode::{self, Retrieve, StoreCmd, WireKey};
use crate::protocol::{GetReply, Response};
use crate::ring::Distribution;
use crate::value::{KeyResults, KeyStatus};

/// Longest key memcached accepts, prefix included.
pub const MAX_KEY_LEN: usize = 250;

/// Largest value the text protocol can carry safely: memcached parses the
/// length as a signed 32-bit number, and a length it rejects makes it read the
/// value bytes as commands. Longer values are refused before any I/O.
pub const MAX_VALUE_LEN: usize = i32::MAX as usize - 2;

/// Keys per `get` line in a multi-key request; bigger batches are sent as
/// several pipelined commands in one write.
const KEYS_PER_GET: usize = 256;

/// With `buffer_noreply`, noreply commands are written once this many bytes
/// have accumulated on a connection (or earlier, see `flush_buffers`).
const NOREPLY_BUFFER: usize = 64 * 1024;

/// Bytes of pipelined storage commands encoded before they are flushed.
const PIPELINE_CHUNK: usize = 256 * 1024;

/// An item read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub data: Vec<u8>,
    pub flags: u32,
    /// Present when read with `gets`, `gats` or `gets_many`.
    pub cas: Option<u64>,
}

impl Value {
    fn new(data: &[u8], flags: u32, cas: Option<u64>) -> Value {
        Value {
            data: data.to_vec(),
            flags,
            cas,
        }
    }
}

fn not_asked_for(k: &[u8]) -> Error {
    Error::Protocol(format!(
        "VALUE for a key that was not asked for: {:?}",
        String::from_utf8_lossy(k)
    ))
}

/// Receives each hit of a multi-key read: (key index, data, flags, cas).
pub(crate) type HitVisitor<'a> = dyn FnMut(usize, &[u8], u32, Option<u64>) + 'a;

/// The result of a `cas` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    Stored,
    /// The item changed since the cas unique was read.
    Exists,
    NotFound,
}

/// Configuration of a [`Client`]. Every option has a finite, documented default.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    servers: Vec<ServerSpec>,
    distribution: Distribution,
    connect_timeout: Duration,
    timeout: Duration,
    no_delay: bool,
    keepalive: bool,
    ignore_exc: bool,
    default_noreply: bool,
    key_prefix: Vec<u8>,
    allow_unicode_keys: bool,
    max_pool_size: usize,
    pool_idle_timeout: Option<Duration>,
    retry_attempts: u32,
    retry_timeout: Duration,
    dead_timeout: Duration,
    flush_on_rejoin: bool,
    failover_ttl: u32,
    max_tracked_keys: usize,
    max_value_size: usize,
    buffer_noreply: bool,
    meta: crate::lease::MetaOptions,
    /// set by the method in src/meta_many.rs
    pub(crate) use_meta: crate::meta_many::UseMeta,
    /// set by the methods in src/tls.rs
    pub(crate) tls: crate::tls::TlsOptions,
    /// set by the method in src/auth.rs
    pub(crate) auth: Option<Arc<crate::auth::Auth>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: Vec::new(),
            distribution: Distribution::Rendezvous,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            no_delay: true,
            keepalive: false,
            ignore_exc: false,
            default_noreply: true,
            key_prefix: Vec::new(),
            allow_unicode_keys: false,
            max_pool_size: 32,
            pool_idle_timeout: None,
            retry_attempts: 2,
            retry_timeout: Duration::from_secs(1),
            dead_timeout: Duration::from_secs(60),
            flush_on_rejoin: false,
            failover_ttl: DEFAULT_FAILOVER_TTL,
            max_tracked_keys: crate::cluster::MAX_TRACKED_KEYS,
            max_value_size: crate::protocol::parse::MAX_VALUE,
            buffer_noreply: false,
            meta: crate::lease::MetaOptions::default(),
            use_meta: Default::default(),
            tls: Default::default(),
            auth: None,
        }
    }
}

/// Default [`ClientBuilder::failover_ttl`]: one `dead_timeout` (default
/// 60 s), so a stand-in's copies outlive the outage by about one probe period.
pub const DEFAULT_FAILOVER_TTL: u32 = 60;

fn nonzero(d: Duration, what: &str) -> Result<Duration> {
    if d.is_zero() {
        Err(Error::InvalidArgument(format!("{what} must be > 0")))
    } else {
        Ok(d)
    }
}

impl ClientBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a server: `host:port`, `host` (port 11211), `[v6]:port`,
    /// `unix:/path` or `/path`.
    pub fn add_server(&mut self, addr: &str) -> Result<&mut Self> {
        self.add_server_weighted(addr, 1)
    }

    /// Adds a server with a ketama weight (ignored by other distributions).
    pub fn add_server_weighted(&mut self, addr: &str, weight: u32) -> Result<&mut Self> {
        if weight == 0 {
            return Err(Error::InvalidArgument("server weight must be >= 1".into()));
        }
        let addr = ServerAddr::parse(addr)?;
        self.servers.push(ServerSpec { addr, weight });
        Ok(self)
    }

    pub fn distribution(&mut self, d: Distribution) -> &mut Self {
        self.distribution = d;
        self
    }
    pub fn connect_timeout(&mut self, d: Duration) -> Result<&mut Self> {
        self.connect_timeout = nonzero(d, "connect_timeout")?;
        Ok(self)
    }
    /// Bound on each operation: from sending the request to the last byte of
    /// the reply (for multi-key batches: per pipelined chunk).
    pub fn timeout(&mut self, d: Duration) -> Result<&mut Self> {
        self.timeout = nonzero(d, "timeout")?;
        Ok(self)
    }
    pub fn no_delay(&mut self, on: bool) -> &mut Self {
        self.no_delay = on;
        self
    }
    pub fn keepalive(&mut self, on: bool) -> &mut Self {
        self.keepalive = on;
        self
    }
    pub fn ignore_exc(&mut self, on: bool) -> &mut Self {
        self.ignore_exc = on;
        self
    }
    pub fn default_noreply(&mut self, on: bool) -> &mut Self {
        self.default_noreply = on;
        self
    }
    /// Prepended to every key on the wire (not hashed for server selection).
    pub fn key_prefix(&mut self, prefix: &[u8]) -> Result<&mut Self> {
        check_key_bytes(prefix, true, "key prefix")?;
        if prefix.len() >= MAX_KEY_LEN {
            return Err(Error::InvalidKey(format!(
                "key prefix is {} bytes, leaving no room for a key (max {MAX_KEY_LEN})",
                prefix.len()
            )));
        }
        self.key_prefix = prefix.to_vec();
        Ok(self)
    }
    pub fn allow_unicode_keys(&mut self, on: bool) -> &mut Self {
        self.allow_unicode_keys = on;
        self
    }
    pub fn max_pool_size(&mut self, n: usize) -> Result<&mut Self> {
        if n == 0 {
            return Err(Error::InvalidArgument("max_pool_size must be >= 1".into()));
        }
        self.max_pool_size = n;
        Ok(self)
    }
    /// Idle connections older than this are closed instead of reused (zero: never).
    pub fn pool_idle_timeout(&mut self, d: Duration) -> &mut Self {
        self.pool_idle_timeout = (!d.is_zero()).then_some(d);
        self
    }
    /// Failed retries of a failing server before it leaves the ring (cluster only).
    pub fn retry_attempts(&mut self, n: u32) -> &mut Self {
        self.retry_attempts = n;
        self
    }
    /// Minimum time between tries of a failing server (cluster only).
    pub fn retry_timeout(&mut self, d: Duration) -> &mut Self {
        self.retry_timeout = d;
        self
    }
    /// How long a server that left the ring stays out before it is probed.
    pub fn dead_timeout(&mut self, d: Duration) -> &mut Self {
        self.dead_timeout = d;
        self
    }
    /// Buffer noreply commands (libmemcached's BUFFER_REQUESTS): they are
    /// written when 64 KiB have accumulated on a connection, when a command
    /// that waits for a reply goes out on it, or on [`Client::flush_buffers`]
    /// (and when the client is dropped), instead of one write each. Default
    /// off: a noreply call then returns once its bytes are written.
    pub fn buffer_noreply(&mut self, on: bool) -> &mut Self {
        self.buffer_noreply = on;
        self
    }
    /// Flush a dead server when it rejoins the ring (default off). Off, only
    /// the keys this client routed away from it while it was out are
    /// deleted on it before it takes traffic (its other keys, other
    /// clients' among them, survive); on, it loses everything.
    pub fn flush_on_rejoin(&mut self, on: bool) -> &mut Self {
        self.flush_on_rejoin = on;
        self
    }
    /// Caps the exptime of writes routed to a stand-in while their server
    /// is out of the ring, in seconds (default 60; 0: no cap), so the copies
    /// left there age out for every client that might read them later.
    pub fn failover_ttl(&mut self, seconds: u32) -> &mut Self {
        self.failover_ttl = seconds;
        self
    }
    /// Largest value accepted from a server (default and most: 1 GiB,
    /// memcached's own ceiling for `-I`). A reply announcing more fails with
    /// [`Error::ValueTooLarge`] before its data is buffered, and the
    /// connection is dropped; set it to your servers' `-I` to bound the
    /// memory a broken or hostile server can make a read take.
    pub fn max_value_size(&mut self, bytes: usize) -> Result<&mut Self> {
        if bytes == 0 || bytes > crate::protocol::parse::MAX_VALUE {
            return Err(Error::InvalidArgument(format!(
                "max_value_size must be 1..={} bytes",
                crate::protocol::parse::MAX_VALUE
            )));
        }
        self.max_value_size = bytes;
        Ok(self)
    }
    /// Most keys remembered per server while it is out of the ring (default
    /// 100,000). Past that, the server is flushed when it rejoins, since
    /// the stale copies it holds can no longer be named.
    pub fn max_tracked_keys(&mut self, n: usize) -> &mut Self {
        self.max_tracked_keys = n;
        self
    }

    /// Meta commands (leases, meta get) send a key that is not a valid text
    /// key base64-encoded (`b` flag) instead of refusing it: any non-empty
    /// byte string whose base64 form, prefix included, fits 250 bytes (186
    /// raw bytes). Text keys go as they are either way. Default off.
    pub fn base64_keys(&mut self, on: bool) -> &mut Self {
        self.meta.base64_keys = on;
        self
    }
    /// Early recache: `lease_get` on a fresh item with less than `secs`
    /// seconds of TTL left makes one caller WON (the others keep getting
    /// HIT) so it recomputes before the item expires. 0 (the default): off.
    pub fn recache_threshold(&mut self, secs: u32) -> &mut Self {
        self.meta.recache_threshold = secs;
        self
    }

    /// Builds the client. Connections are opened lazily, on first use.
    pub fn build(&self) -> Result<Client> {
        let conn = ConnOptions {
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            no_delay: self.no_delay,
            keepalive: self.keepalive,
            max_value: self.max_value_size,
            tls: self.tls.connector()?,
            auth: self.auth.clone(),
        };
        let pool = PoolOptions {
            max_size: self.max_pool_size,
            idle_timeout: self.pool_idle_timeout,
            refused_backoff: self.retry_timeout,
        };
        let health = HealthOptions {
            retry_attempts: self.retry_attempts,
            retry_timeout: self.retry_timeout,
            dead_timeout: self.dead_timeout,
            flush_on_rejoin: self.flush_on_rejoin,
            failover_ttl: self.failover_ttl,
            max_tracked: self.max_tracked_keys,
        };
        let cluster = Cluster::new(
            &self.servers,
            self.distribution,
            &conn,
            &pool,
            &health,
            &self.key_prefix,
        )?;
        Ok(Client {
            cluster: Arc::new(cluster),
            timeout: self.timeout,
            ignore_exc: self.ignore_exc,
            default_noreply: self.default_noreply,
            key_prefix: self.key_prefix.clone(),
            allow_unicode_keys: self.allow_unicode_keys,
            buffer_noreply: self.buffer_noreply,
            meta: self.meta,
            use_meta: self.use_meta,
        })
    }
}

/// A memcached client over one server or a cluster. `Client` is `Send + Sync`:
/// share one between threads; each call checks a connection out of the
/// server's pool for its duration. A clone shares the pools and the cluster
/// state (health, ring) with the original.
#[derive(Clone)]
pub struct Client {
    /// shared with the event loops made from this client (`engine`)
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) timeout: Duration,
    pub(crate) ignore_exc: bool,
    default_noreply: bool,
    pub(crate) key_prefix: Vec<u8>,
    allow_unicode_keys: bool,
    buffer_noreply: bool,
    pub(crate) meta: crate::lease::MetaOptions,
    pub(crate) use_meta: crate::meta_many::UseMeta,
}

/// The key rules, applied before any I/O: not empty, at most 250 bytes together
/// with a prefix of `prefix_len` bytes, no whitespace, control bytes, NUL or
/// DEL, and non-ASCII bytes only when `allow_unicode` (then valid UTF-8).
#[inline]
pub fn validate_key(key: &[u8], prefix_len: usize, allow_unicode: bool) -> Result<()> {
    if !key.is_empty() && prefix_len + key.len() <= MAX_KEY_LEN && all_printable_ascii(key) {
        return Ok(());
    }
    validate_key_slow(key, prefix_len, allow_unicode)
}

/// The exact rules, with a message saying what is wrong.
#[cold]
fn validate_key_slow(key: &[u8], prefix_len: usize, allow_unicode: bool) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey("key is empty".into()));
    }
    let total = prefix_len + key.len();
    if total > MAX_KEY_LEN {
        return Err(Error::InvalidKey(format!(
            "key is {total} bytes with its prefix (max {MAX_KEY_LEN})"
        )));
    }
    check_key_bytes(key, allow_unicode, "key")
}

/// Rejects whitespace, control bytes, NUL and DEL everywhere, and bytes >= 0x80
/// unless `unicode` (then the whole key must be UTF-8).
fn check_key_bytes(key: &[u8], unicode: bool, what: &str) -> Result<()> {
    if all_printable_ascii(key) {
        return Ok(());
    }
    let mut non_ascii = false;
    for (i, &b) in key.iter().enumerate() {
        if b <= b' ' || b == 0x7f {
            return Err(Error::InvalidKey(format!(
                "{what} contains whitespace or a control byte (0x{b:02x} at offset {i})"
            )));
        }
        non_ascii |= b >= 0x80;
    }
    if non_ascii {
        if !unicode {
            return Err(Error::InvalidKey(format!(
                "{what} contains non-ASCII bytes; enable allow_unicode_keys to use UTF-8 keys"
            )));
        }
        if std::str::from_utf8(key).is_err() {
            return Err(Error::InvalidKey(format!("{what} is not valid UTF-8")));
        }
    }
    Ok(())
}

/// True when every byte is in 0x21..=0x7e (the common case), eight bytes at a
/// time (the last word overlapping the one before it). A false answer only
/// sends the key to the exact byte-by-byte check.
#[inline]
fn all_printable_ascii(key: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word_ok = |w: u64| {
        // a byte < 0x21 (classic "has byte less than n" test, exact for n <= 128)
        let low = w.wrapping_sub(ONES * 0x21) & !w & HIGH;
        // a byte >= 0x7f: adding 1 carries it into the high bit (or it is set)
        let high = (w | w.wrapping_add(ONES)) & HIGH;
        low | high == 0
    };
    let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(key[at..at + 4].try_into().expect("4")));
    let n = key.len();
    match n {
        8.. => {
            let mut at = 0;
            while at + 8 < n {
                if !word_ok(word(at)) {
                    return false;
                }
                at += 8;
            }
            word_ok(word(n - 8))
        }
        4..=7 => word_ok(half(0) | half(n - 4) << 32),
        _ => key.iter().all(|&b| (0x21..0x7f).contains(&b)),
    }
}

pub(crate) fn check_exptime(exptime: u32) -> Result<()> {
    if exptime > i32::MAX as u32 {
        return Err(Error::InvalidArgument(format!(
            "exptime {exptime} is out of range (max {})",
            i32::MAX
        )));
    }
    Ok(())
}

/// `stats` arguments go on the command line as they are: printable ASCII.
pub(crate) fn check_stats_args(args: &str) -> Result<()> {
    if args.len() > 200 || args.bytes().any(|b| !(b' '..=b'~').contains(&b)) {
        return Err(Error::InvalidArgument(
            "stats arguments must be printable ASCII (at most 200 bytes)".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is larger than the protocol allows",
            value.len()
        )));
    }
    Ok(())
}

/// Keys of a multi-key command grouped by server: (server, key indices) in
/// the caller's order, and the keys whose server is unusable, with why.
type Routed = (Vec<(usize, Vec<usize>)>, Vec<(Vec<usize>, Error)>);

/// The first failure of a multi-key command, for the calls that fail as a
/// whole when any server failed.
fn first_failure(mut res: KeyResults) -> std::result::Result<KeyResults, Error> {
    if res.failed() == 0 {
        Ok(res)
    } else {
        Err(res.errors.swap_remove(0))
    }
}

/// A reply to a single-line command, copied out of the read buffer.
enum Reply {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    Number(u64),
    Version(String),
    Failed(Error),
}

fn reply_of(r: Response<'_>) -> Reply {
    match r {
        Response::Stored => Reply::Stored,
        Response::NotStored => Reply::NotStored,
        Response::Exists => Reply::Exists,
        Response::NotFound => Reply::NotFound,
        Response::Deleted => Reply::Deleted,
        Response::Touched => Reply::Touched,
        Response::Ok => Reply::Ok,
        Response::Number(n) => Reply::Number(n),
        Response::Version(v) => Reply::Version(String::from_utf8_lossy(v).into_owned()),
        other => Reply::Failed(response_error(&other)),
    }
}

/// Reads one single-line reply. An error reply comes back as
/// `Reply::Failed`; turned into an `Err`, it makes `Client::attempt` drop the
/// connection unless it was a clean `SERVER_ERROR`.
fn read_reply(conn: &mut Conn, deadline: Deadline) -> Result<Reply> {
    conn.read_response(deadline, reply_of)
}

/// The error for a reply the command cannot take: the server's own error, or
/// a protocol error for a well-formed reply of the wrong kind (the stream is
/// out of step; the connection is dropped by `Client::attempt`).
fn wrong_reply(r: Reply) -> Error {
    match r {
        Reply::Failed(e) => e,
        _ => Error::Protocol("reply does not match the command".into()),
    }
}

fn wire_key_matches(got: &[u8], prefix: &[u8], key: &[u8]) -> bool {
    got.len() == prefix.len() + key.len() && got.starts_with(prefix) && &got[prefix.len()..] == key
}

impl Client {
    /// Shorthand for a client of one server with default options.
    pub fn connect(addr: &str) -> Result<Client> {
        ClientBuilder::new().add_server(addr)?.build()
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Validates a caller's key (prefix included in the length).
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        validate_key(key, self.key_prefix.len(), self.allow_unicode_keys)
    }

    fn wire<'a>(&'a self, key: &'a [u8]) -> WireKey<'a> {
        WireKey {
            prefix: &self.key_prefix,
            key,
        }
    }

    pub(crate) fn noreply_default(&self, o: Option<bool>) -> bool {
        o.unwrap_or(self.default_noreply)
    }

    /// Runs `f` on a connection to server `idx`. When `f` fails, the
    /// connection is dropped (it may hold unread replies), except for a
    /// `SERVER_ERROR` that was the whole reply of a single command
    /// (`server_error_is_clean`): the server consumed the request and the
    /// stream is in step.
    pub(crate) fn with_conn<T>(
        &self,
        idx: usize,
        server_error_is_clean: bool,
        f: impl FnOnce(&mut Conn, Deadline) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let (r, _) = self.attempt(idx, server_error_is_clean, &mut |c, d| {
            (f.take().expect("called once"))(c, d)
        });
        self.cluster.report(idx, &r);
        r
    }

    /// Like `with_conn`, for reads (safe to repeat): when a pooled connection
    /// turns out to be stale (the server restarted or closed it while idle),
    /// the read is retried once on a fresh connection instead of failing.
    pub(crate) fn with_conn_idempotent<T>(
        &self,
        idx: usize,
        mut f: impl FnMut(&mut Conn, Deadline) -> Result<T>,
    ) -> Result<T> {
        let (mut r, reused) = self.attempt(idx, false, &mut f);
        if reused && matches!(r, Err(Error::UnexpectedClose | Error::Io(_))) {
            r = self.attempt(idx, false, &mut f).0;
        }
        self.cluster.report(idx, &r);
        r
    }

    /// One try of `f` on a pooled connection; also says whether the
    /// connection had been used before (so could have gone stale).
    fn attempt<T>(
        &self,
        idx: usize,
        server_error_is_clean: bool,
        f: &mut impl FnMut(&mut Conn, Deadline) -> Result<T>,
    ) -> (Result<T>, bool) {
        let server = &self.cluster.servers()[idx];
        server.counters.command();
        let mut conn = match server.pool.get(self.timeout) {
            Ok(c) => c,
            Err(e) => return (Err(e), false),
        };
        let reused = conn.was_used();
        let deadline = conn.deadline();
        let r = f(&mut conn, deadline);
        if let Err(e) = &r {
            if !(server_error_is_clean && matches!(e, Error::Server(_))) {
                conn.poison();
            }
        }
        (r, reused)
    }

    /// Runs `f` for each server's group of keys, the servers in parallel
    /// (the calling thread takes the first group). Results in group order.
    fn fan_out<T: Send>(
        &self,
        groups: &[(usize, Vec<usize>)],
        f: impl Fn(usize, &[usize]) -> Result<T> + Sync,
    ) -> Vec<Result<T>> {
        match groups {
            [] => Vec::new(),
            [(s, idxs)] => vec![f(*s, idxs)],
            [(s0, first), rest @ ..] => std::thread::scope(|scope| {
                let f = &f;
                let handles: Vec<_> = rest
                    .iter()
                    .map(|(s, idxs)| scope.spawn(move || f(*s, idxs)))
                    .collect();
                let mut out = vec![f(*s0, first)];
                for h in handles {
                    out.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                out
            }),
        }
    }

    /// Sends one command built by `encode` and maps its one-line reply with
    /// `map` (None from `map`: a reply of the wrong kind, which poisons the
    /// connection). With noreply, returns `on_noreply` once the bytes are out.
    fn single<T>(
        &self,
        key: &[u8],
        noreply: bool,
        encode: impl FnOnce(&mut Vec<u8>, bool),
        on_noreply: T,
        map: impl FnOnce(&Reply) -> Option<T>,
    ) -> Result<T> {
        let idx = self.cluster.route(key)?;
        self.with_conn(idx, true, |conn, deadline| {
            if !noreply {
                conn.begin_reply_request();
            }
            encode(&mut conn.wbuf, noreply);
            if noreply {
                conn.note_noreply_sent();
                // buffered mode: the bytes go out with a later write
                if !self.buffer_noreply || conn.wbuf.len() >= NOREPLY_BUFFER {
                    conn.flush(deadline)?;
                }
                return Ok(on_noreply);
            }
            conn.flush(deadline)?;
            let r = read_reply(conn, deadline)?;
            match map(&r) {
                Some(t) => Ok(t),
                None => Err(wrong_reply(r)),
            }
        })
    }

    /// One of the five storage commands (set, add, replace, append, prepend).
    pub fn store(
        &self,
        cmd: StoreCmd,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.check_key(key)?;
        check_value(value)?;
        check_exptime(exptime)?;
        let noreply = self.noreply_default(noreply);
        let wk = self.wire(key);
        self.single(
            key,
            noreply,
            |b, nr| {
                let exptime = self.cluster.write_exptime(key, exptime);
                encode::store(b, cmd, wk, flags, exptime, value, nr)
            },
            true,
            |r| match r {
                Reply::Stored => Some(true),
                Reply::NotStored => Some(false),
                _ => None,
            },
        )
    }

    /// `set`: always stores. Returns true (pymemcache: True) unless the server
    /// failed. With noreply, returns once the bytes are written.
    pub fn set(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.store(StoreCmd::Set, key, value, flags, exptime, noreply)
    }
    /// `add`: stores only if the key is absent; false when it was present.
    pub fn add(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.store(StoreCmd::Add, key, value, flags, exptime, noreply)
    }
    /// `replace`: stores only if the key is present; false when absent.
    pub fn replace(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.store(StoreCmd::Replace, key, value, flags, exptime, noreply)
    }
    /// `append` to an existing value (flags and exptime are ignored by the server).
    pub fn append(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.store(StoreCmd::Append, key, value, flags, exptime, noreply)
    }
    /// `prepend` to an existing value.
    pub fn prepend(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<bool> {
        self.store(StoreCmd::Prepend, key, value, flags, exptime, noreply)
    }

    /// `cas`: stores only if the item's cas unique is still `cas_unique`.
    /// noreply defaults to off; with noreply the outcome is reported as Stored.
    #[allow(clippy::too_many_arguments)]
    pub fn cas(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        cas_unique: u64,
        noreply: Option<bool>,
    ) -> Result<CasOutcome> {
        self.check_key(key)?;
        check_value(value)?;
        check_exptime(exptime)?;
        let noreply = noreply.unwrap_or(false);
        let wk = self.wire(key);
        self.single(
            key,
            noreply,
            |b, nr| {
                let exptime = self.cluster.write_exptime(key, exptime);
                encode::cas(b, wk, flags, exptime, value, cas_unique, nr)
            },
            CasOutcome::Stored,
            |r| match r {
                Reply::Stored => Some(CasOutcome::Stored),
                Reply::Exists => Some(CasOutcome::Exists),
                Reply::NotFound => Some(CasOutcome::NotFound),
                _ => None,
            },
        )
    }

    /// `delete`: true when the key existed (always true with noreply).
    pub fn delete(&self, key: &[u8], noreply: Option<bool>) -> Result<bool> {
        self.check_key(key)?;
        let noreply = self.noreply_default(noreply);
        let wk = self.wire(key);
        self.single(
            key,
            noreply,
            |b, nr| encode::delete(b, wk, nr),
            true,
            |r| match r {
                Reply::Deleted => Some(true),
                Reply::NotFound => Some(false),
                _ => None,
            },
        )
    }

    fn arith(
        &self,
        incr: bool,
        key: &[u8],
        delta: u64,
        noreply: Option<bool>,
    ) -> Result<Option<u64>> {
        self.check_key(key)?;
        let noreply = noreply.unwrap_or(false);
        let wk = self.wire(key);
        self.single(
            key,
            noreply,
            |b, nr| encode::arith(b, incr, wk, delta, nr),
            None,
            |r| match r {
                Reply::Number(n) => Some(Some(*n)),
                Reply::NotFound => Some(None),
                _ => None,
            },
        )
    }

    /// `incr`: the new value, or None when the key is absent (or with noreply).
    pub fn incr(&self, key: &[u8], delta: u64, noreply: Option<bool>) -> Result<Option<u64>> {
        self.arith(true, key, delta, noreply)
    }
    /// `decr`: the new value (memcached stops at 0), or None when absent.
    pub fn decr(&self, key: &[u8], delta: u64, noreply: Option<bool>) -> Result<Option<u64>> {
        self.arith(false, key, delta, noreply)
    }

    /// `touch`: true when the key exists (always true with noreply).
    pub fn touch(&self, key: &[u8], exptime: u32, noreply: Option<bool>) -> Result<bool> {
        self.check_key(key)?;
        check_exptime(exptime)?;
        let noreply = self.noreply_default(noreply);
        let wk = self.wire(key);
        self.single(
            key,
            noreply,
            |b, nr| encode::touch(b, wk, self.cluster.write_exptime(key, exptime), nr),
            true,
            |r| match r {
                Reply::Touched => Some(true),
                Reply::NotFound => Some(false),
                _ => None,
            },
        )
    }

    // ---- retrieval --------------------------------------------------------

    /// Reads one key with `cmd` and hands the value, borrowed from the read
    /// buffer, to `visit(data, flags, cas)`: no copy is made unless `visit`
    /// makes one. `Ok(None)` is a miss (or any read failure with ignore_exc).
    pub fn fetch_with<T>(
        &self,
        cmd: Retrieve,
        key: &[u8],
        visit: impl FnOnce(&[u8], u32, Option<u64>) -> T,
    ) -> Result<Option<T>> {
        self.check_key(key)?;
        if let Retrieve::Gat(e) | Retrieve::Gats(e) = cmd {
            check_exptime(e)?;
        }
        let mut visit = Some(visit);
        let r = self.cluster.route(key).and_then(|idx| {
            let r = self.with_conn_idempotent(idx, |conn, deadline| {
                self.fetch_one(conn, deadline, cmd, key, &mut visit)
            });
            if let Ok(v) = &r {
                self.cluster.servers()[idx].counters.read(v.is_some());
            }
            r
        });
        match r {
            // ignore_exc: a failed read is a miss (caller errors were raised above)
            Err(_) if self.ignore_exc => Ok(None),
            r => r,
        }
    }

    fn fetch_one<T>(
        &self,
        conn: &mut Conn,
        deadline: Deadline,
        cmd: Retrieve,
        key: &[u8],
        visit: &mut Option<impl FnOnce(&[u8], u32, Option<u64>) -> T>,
    ) -> Result<Option<T>> {
        let prefix = &self.key_prefix[..];
        conn.begin_reply_request();
        encode::retrieve_one(&mut conn.wbuf, cmd, WireKey { prefix, key });
        conn.flush(deadline)?;
        let max = conn.max_value();
        let fast = conn.read_get_reply(
            deadline,
            prefix,
            key,
            // inlined: on this path a call costs as much as the match
            #[inline(always)]
            |r| match r {
                GetReply::Miss => Ok(None),
                GetReply::Hit { cas: None, .. } if cmd.with_cas() => {
                    Err(Error::Protocol("VALUE without cas for gets".into()))
                }
                GetReply::Hit { data, .. } if data.len() > max => {
                    Err(crate::conn::too_large(data.len() as u64, max))
                }
                GetReply::Hit { flags, cas, data } => {
                    let visit = visit.take().expect("one value per key");
                    Ok(Some(visit(data, flags, cas)))
                }
            },
        )?;
        if let Some(r) = fast {
            return r;
        }
        // not the usual shape: walk the reply element by element
        let mut found: Option<T> = None;
        read_retrieval(
            conn,
            deadline,
            cmd,
            prefix,
            (1, |_| key),
            &mut |_, data, flags, cas| {
                if let Some(visit) = visit.take() {
                    found = Some(visit(data, flags, cas));
                }
            },
        )?;
        Ok(found)
    }

    /// `get`: the value, or None on a miss.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.fetch_with(Retrieve::Get, key, Value::new)
    }
    /// `gets`: the value with its cas unique.
    pub fn gets(&self, key: &[u8]) -> Result<Option<Value>> {
        self.fetch_with(Retrieve::Gets, key, Value::new)
    }
    /// `gat`: get and set a new exptime.
    pub fn gat(&self, key: &[u8], exptime: u32) -> Result<Option<Value>> {
        self.fetch_with(Retrieve::Gat(exptime), key, Value::new)
    }
    /// `gats`: get with cas and set a new exptime.
    pub fn gats(&self, key: &[u8], exptime: u32) -> Result<Option<Value>> {
        self.fetch_with(Retrieve::Gats(exptime), key, Value::new)
    }

    /// `get` of many keys; result `i` belongs to `keys[i]` (None: a miss).
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>> {
        self.collect_many(Retrieve::Get, keys)
    }
    /// `gets` of many keys, with cas uniques.
    pub fn gets_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>> {
        self.collect_many(Retrieve::Gets, keys)
    }

    /// get_many/gets_many: a failed server fails the whole call (unless
    /// `ignore_exc`); [`Client::fetch_many_with`] gives per-key outcomes.
    fn collect_many(&self, cmd: Retrieve, keys: &[&[u8]]) -> Result<Vec<Option<Value>>> {
        let mut out: Vec<Option<Value>> = vec![None; keys.len()];
        let res = self.fetch_many_with(cmd, keys, |i, data, flags, cas| {
            out[i] = Some(Value::new(data, flags, cas));
        })?;
        first_failure(res)?;
        Ok(out)
    }

    /// Reads many keys with `cmd` (`Get`, `Gets`, `Gat`, `Gats`): one
    /// pipelined request per server, the servers in parallel, by meta or
    /// classic lines (`ClientBuilder::use_meta`, src/meta_many.rs; by meta,
    /// a server's error line fails only the keys it may belong to). Each hit is
    /// handed to `visit(index of the key, data, flags, cas)`; misses are not.
    /// A key asked twice is visited twice. Returns each key's outcome: a
    /// hit, a miss, or the failure of its server (with `ignore_exc`, a miss);
    /// only a caller mistake (an invalid key or exptime) fails the call.
    /// A server that fails part-way may have visited some of its hits
    /// already: their outcome is the failure.
    pub fn fetch_many_with(
        &self,
        cmd: Retrieve,
        keys: &[&[u8]],
        mut visit: impl FnMut(usize, &[u8], u32, Option<u64>),
    ) -> Result<KeyResults> {
        let any_base64 = match keys.iter().try_for_each(|k| self.check_key(k)) {
            Ok(()) => false,
            // keys only meta can carry (src/meta_many.rs)
            Err(e) => self.check_base64_read_keys(keys, e)?,
        };
        if let Retrieve::Gat(e) | Retrieve::Gats(e) = cmd {
            check_exptime(e)?;
        }
        let (groups, unroutable) = self.by_server(keys);
        let mut res = Self::results_for(keys.len(), KeyStatus::NotFound, unroutable);
        if let [(server, idxs)] = &groups[..] {
            // one server: values go straight from the read buffer to `visit`
            let status = &mut res.status;
            let r = self.fetch_server(*server, cmd, keys, idxs, any_base64, &mut |i, d, f, c| {
                status[i] = KeyStatus::Ok;
                visit(i, d, f, c)
            });
            match r {
                Ok(fails) if fails.is_empty() => {}
                Ok(fails) => fails.into_iter().for_each(|(ks, e)| res.fail(ks, e)),
                Err(e) => res.fail(idxs.iter().copied(), e),
            }
        } else {
            let results = self.fan_out(&groups, |server, idxs| {
                let mut got: Vec<(usize, Value)> = Vec::new();
                self.fetch_server(server, cmd, keys, idxs, any_base64, &mut |i, d, f, c| {
                    got.push((i, Value::new(d, f, c)))
                })
                .map(|fails| (got, fails))
            });
            for (r, (_, idxs)) in results.into_iter().zip(&groups) {
                match r {
                    Ok((got, fails)) => {
                        for (i, v) in got {
                            res.status[i] = KeyStatus::Ok;
                            visit(i, &v.data, v.flags, v.cas);
                        }
                        fails.into_iter().for_each(|(ks, e)| res.fail(ks, e));
                    }
                    Err(e) => res.fail(idxs.iter().copied(), e),
                }
            }
        }
        if self.ignore_exc {
            // ignore_exc: a failed server's keys are misses
            res.forgive(KeyStatus::NotFound);
        }
        Ok(res)
    }

    /// Groups key indices by owning server, in the caller's order. Keys whose
    /// server cannot be used right now are returned apart, grouped by the
    /// reason.
    fn by_server(&self, keys: &[&[u8]]) -> Routed {
        if keys.is_empty() {
            return (Vec::new(), Vec::new());
        }
        if self.cluster.servers().len() == 1 {
            return (vec![(0, (0..keys.len()).collect())], Vec::new());
        }
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut unroutable: Vec<(Vec<usize>, Error)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match self.cluster.route(k) {
                Ok(s) => match groups.iter_mut().find(|(g, _)| *g == s) {
                    Some((_, v)) => v.push(i),
                    None => groups.push((s, vec![i])),
                },
                Err(e) => {
                    let why = e.to_string();
                    match unroutable.iter_mut().find(|(_, u)| u.to_string() == why) {
                        Some((v, _)) => v.push(i),
                        None => unroutable.push((vec![i], e)),
                    }
                }
            }
        }
        (groups, unroutable)
    }

    /// Per-key outcomes for `n` keys, starting at `initial`, with the keys
    /// that could not be routed already failed.
    fn results_for(
        n: usize,
        initial: KeyStatus,
        unroutable: Vec<(Vec<usize>, Error)>,
    ) -> KeyResults {
        let mut res = KeyResults::new(n, initial);
        for (idxs, e) in unroutable {
            res.fail(idxs, e);
        }
        res
    }

    /// One server's share of a multi-key read: all `get` lines in one write,
    /// then the replies, each `VALUE` matched to the key it answers (memcached
    /// answers in request order, skipping misses).
    pub(crate) fn fetch_batch(
        &self,
        server: usize,
        cmd: Retrieve,
        keys: &[&[u8]],
        idxs: &[usize],
        visit: &mut HitVisitor<'_>,
    ) -> Result<()> {
        let prefix = &self.key_prefix[..];
        let mut hits = 0u64;
        let r = self.with_conn_idempotent(server, |conn, deadline| {
            hits = 0;
            conn.begin_reply_request();
            for chunk in idxs.chunks(KEYS_PER_GET) {
                encode::retrieve(
                    &mut conn.wbuf,
                    cmd,
                    chunk.iter().map(|&i| WireKey {
                        prefix,
                        key: keys[i],
                    }),
                );
            }
            conn.flush(deadline)?;
            for (n, chunk) in idxs.chunks(KEYS_PER_GET).enumerate() {
                // each chunk's replies get a full timeout of their own
                let deadline = if n == 0 { deadline } else { conn.deadline() };
                let chunk_keys = (chunk.len(), |j: usize| keys[chunk[j]]);
                read_retrieval(
                    conn,
                    deadline,
                    cmd,
                    prefix,
                    chunk_keys,
                    &mut |j, d, f, c| {
                        hits += 1;
                        visit(chunk[j], d, f, c)
                    },
                )?;
            }
            Ok(())
        });
        if r.is_ok() {
            let counters = &self.cluster.servers()[server].counters;
            counters.hits(hits);
            counters.misses(idxs.len() as u64 - hits);
        }
        r
    }

    /// Stores many items; returns the indices of the items not stored (empty
    /// with noreply). pymemcache's set_many returns the failed keys. A failed
    /// server fails the call (unless `ignore_exc`: its items count as not
    /// stored); [`Client::set_many_results`] gives per-key outcomes instead.
    pub fn set_many(
        &self,
        items: &[(&[u8], &[u8], u32)],
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<Vec<usize>> {
        let res = first_failure(self.set_many_results(items, exptime, noreply)?)?;
        Ok((0..items.len())
            .filter(|&i| res.status[i] == KeyStatus::NotStored)
            .collect())
    }

    /// Stores many items (pipelined per server, the servers in parallel):
    /// each item's outcome is stored (`Ok`; also with noreply once sent),
    /// `NotStored` (the server refused it, e.g. too large), or the failure
    /// of its server (with `ignore_exc`: `NotStored`).
    pub fn set_many_results(
        &self,
        items: &[(&[u8], &[u8], u32)],
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<KeyResults> {
        for (k, v, _) in items {
            self.check_key(k)?;
            check_value(v)?;
        }
        check_exptime(exptime)?;
        let noreply = self.noreply_default(noreply);
        let keys: Vec<&[u8]> = items.iter().map(|(k, _, _)| *k).collect();
        let (groups, unroutable) = self.by_server(&keys);
        let mut res = Self::results_for(items.len(), KeyStatus::Ok, unroutable);
        let results = self.fan_out(&groups, |server, idxs| {
            self.with_conn(server, false, |conn, deadline| {
                pipeline(conn, deadline, noreply, idxs, |buf, i| {
                    let (k, v, f) = items[i];
                    let e = self.cluster.write_exptime(k, exptime);
                    encode::store(buf, StoreCmd::Set, self.wire(k), f, e, v, noreply)
                })?;
                let mut not_stored = Vec::new();
                if noreply {
                    return Ok(not_stored);
                }
                // each chunk of replies gets a full timeout of its own, as in
                // multi-key reads
                let mut d = deadline;
                for (n, &i) in idxs.iter().enumerate() {
                    if n % KEYS_PER_GET == 0 {
                        d = conn.deadline();
                    }
                    match read_reply(conn, d)? {
                        Reply::Stored => {}
                        // e.g. too large: this item failed, the stream is in step
                        Reply::NotStored | Reply::Failed(Error::Server(_)) => not_stored.push(i),
                        r => return Err(wrong_reply(r)),
                    }
                }
                Ok(not_stored)
            })
        });
        for (r, (_, idxs)) in results.into_iter().zip(&groups) {
            match r {
                Ok(f) => f
                    .into_iter()
                    .for_each(|i| res.status[i] = KeyStatus::NotStored),
                Err(e) => res.fail(idxs.iter().copied(), e),
            }
        }
        if self.ignore_exc {
            res.forgive(KeyStatus::NotStored);
        }
        Ok(res)
    }

    /// Deletes many keys (pipelined per server). Returns how many existed, or
    /// `keys.len()` with noreply (pymemcache returns True). A failed server
    /// fails the call unless `ignore_exc`; [`Client::delete_many_results`]
    /// gives per-key outcomes.
    pub fn delete_many(&self, keys: &[&[u8]], noreply: Option<bool>) -> Result<usize> {
        let res = first_failure(self.delete_many_results(keys, noreply)?)?;
        Ok(res.count(KeyStatus::Ok))
    }

    /// Deletes many keys: each key's outcome is deleted (`Ok`; also with
    /// noreply once sent), `NotFound`, or the failure of its server (with
    /// `ignore_exc`: `NotFound`).
    pub fn delete_many_results(&self, keys: &[&[u8]], noreply: Option<bool>) -> Result<KeyResults> {
        let noreply = self.noreply_default(noreply);
        self.keyed_batch(
            keys,
            noreply,
            |buf, k| encode::delete(buf, self.wire(k), noreply),
            |r| matches!(r, Reply::Deleted),
        )
    }

    /// Sets a new exptime on many keys (pipelined per server). Returns how
    /// many existed, or `keys.len()` with noreply. A failed server fails the
    /// call unless `ignore_exc`; [`Client::touch_many_results`] gives
    /// per-key outcomes.
    pub fn touch_many(&self, keys: &[&[u8]], exptime: u32, noreply: Option<bool>) -> Result<usize> {
        let res = first_failure(self.touch_many_results(keys, exptime, noreply)?)?;
        Ok(res.count(KeyStatus::Ok))
    }

    /// Touches many keys, with per-key outcomes as in
    /// [`Client::delete_many_results`].
    pub fn touch_many_results(
        &self,
        keys: &[&[u8]],
        exptime: u32,
        noreply: Option<bool>,
    ) -> Result<KeyResults> {
        check_exptime(exptime)?;
        let noreply = self.noreply_default(noreply);
        self.keyed_batch(
            keys,
            noreply,
            |buf, k| {
                encode::touch(
                    buf,
                    self.wire(k),
                    self.cluster.write_exptime(k, exptime),
                    noreply,
                )
            },
            |r| matches!(r, Reply::Touched),
        )
    }

    /// A one-key command for each of `keys`, pipelined per server, the servers
    /// in parallel: a reply for which `hit` is true is `Ok`, a NOT_FOUND is
    /// `NotFound`, anything else breaks the stream (the server's keys fail).
    fn keyed_batch(
        &self,
        keys: &[&[u8]],
        noreply: bool,
        encode_one: impl Fn(&mut Vec<u8>, &[u8]) + Sync,
        hit: impl Fn(&Reply) -> bool + Sync,
    ) -> Result<KeyResults> {
        for k in keys {
            self.check_key(k)?;
        }
        let (groups, unroutable) = self.by_server(keys);
        let mut res = Self::results_for(keys.len(), KeyStatus::Ok, unroutable);
        let results = self.fan_out(&groups, |server, idxs| {
            self.with_conn(server, false, |conn, deadline| {
                pipeline(conn, deadline, noreply, idxs, |buf, i| {
                    encode_one(buf, keys[i])
                })?;
                let mut missing = Vec::new();
                if noreply {
                    return Ok(missing);
                }
                let mut d = deadline;
                for (n, &i) in idxs.iter().enumerate() {
                    if n % KEYS_PER_GET == 0 {
                        d = conn.deadline();
                    }
                    match read_reply(conn, d)? {
                        r if hit(&r) => {}
                        Reply::NotFound => missing.push(i),
                        r => return Err(wrong_reply(r)),
                    }
                }
                Ok(missing)
            })
        });
        for (r, (_, idxs)) in results.into_iter().zip(&groups) {
            match r {
                Ok(m) => m
                    .into_iter()
                    .for_each(|i| res.status[i] = KeyStatus::NotFound),
                Err(e) => res.fail(idxs.iter().copied(), e),
            }
        }
        if self.ignore_exc {
            res.forgive(KeyStatus::NotFound);
        }
        Ok(res)
    }

    // ---- server-wide commands ----------------------------------------------

    /// Runs a server-wide command on every server; the first failure wins.
    fn on_all(&self, noreply: bool, encode: impl Fn(&mut Vec<u8>)) -> Result<()> {
        for idx in 0..self.cluster.servers().len() {
            self.with_conn(idx, true, |conn, deadline| {
                if !noreply {
                    conn.begin_reply_request();
                }
                encode(&mut conn.wbuf);
                conn.flush(deadline)?;
                if noreply {
                    conn.note_noreply_sent();
                    return Ok(());
                }
                match read_reply(conn, deadline)? {
                    Reply::Ok => Ok(()),
                    r => Err(wrong_reply(r)),
                }
            })?;
        }
        Ok(())
    }

    /// `flush_all [delay]` on every server.
    pub fn flush_all(&self, delay: u32, noreply: Option<bool>) -> Result<()> {
        check_exptime(delay)?;
        let nr = self.noreply_default(noreply);
        self.on_all(nr, |b| encode::flush_all(b, delay, nr))
    }

    /// `cache_memlimit <MB>` on every server (noreply defaults to off).
    pub fn cache_memlimit(&self, megabytes: u32, noreply: Option<bool>) -> Result<()> {
        let nr = noreply.unwrap_or(false);
        self.on_all(nr, |b| encode::cache_memlimit(b, megabytes, nr))
    }

    /// `verbosity <level>` on every server.
    pub fn verbosity(&self, level: u32, noreply: Option<bool>) -> Result<()> {
        let nr = self.noreply_default(noreply);
        self.on_all(nr, |b| encode::verbosity(b, level, nr))
    }

    /// `version` of every server, in configuration order.
    pub fn versions(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (idx, s) in self.cluster.servers().iter().enumerate() {
            out.push((s.spec.addr.to_string(), self.version_of(idx)?));
        }
        Ok(out)
    }

    /// `version` of the first server that answers.
    pub fn version(&self) -> Result<String> {
        let mut last = Error::NoServers;
        for idx in 0..self.cluster.servers().len() {
            match self.version_of(idx) {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn version_of(&self, idx: usize) -> Result<String> {
        self.with_conn(idx, true, |conn, deadline| {
            conn.begin_reply_request();
            encode::version(&mut conn.wbuf);
            conn.flush(deadline)?;
            match read_reply(conn, deadline)? {
                Reply::Version(v) => Ok(v),
                r => Err(wrong_reply(r)),
            }
        })
    }

    /// This client's own counters for every server, read without I/O:
    /// (server, name, value) with the names `commands` (sent; a multi-key
    /// command's share of one server counts once), `hits`, `misses` (keys),
    /// `timeouts`, `connect_failures`, `closed`, `protocol_errors` (failure
    /// events: one timeout that fails a whole pipeline counts once),
    /// `skipped` (requests refused at once while the server was failing),
    /// `connects`, `reconnects`, `ejections`, `rejoins`, `state` (0 healthy,
    /// 1 failing, 2 dead) and `keys_tracked` (keys routed away while it is
    /// out). Event loops of this client count into the same counters.
    pub fn counters(&self) -> Vec<(String, &'static str, u64)> {
        self.cluster.counters()
    }

    /// `stats [args]` of every server: (server, name, value) triples. `args` is
    /// e.g. "" (general), "items", "slabs", "settings", "conns".
    pub fn stats(&self, args: &str) -> Result<Vec<(String, String, String)>> {
        check_stats_args(args)?;
        let mut out = Vec::new();
        for (idx, s) in self.cluster.servers().iter().enumerate() {
            let server = s.spec.addr.to_string();
            self.with_conn(idx, false, |conn, deadline| {
                conn.begin_reply_request();
                encode::stats(&mut conn.wbuf, args.trim().as_bytes());
                conn.flush(deadline)?;
                loop {
                    let step = conn.read_response(deadline, |r| match r {
                        Response::Stat { name, value } => Ok(Some((
                            String::from_utf8_lossy(name).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        ))),
                        Response::End => Ok(None),
                        // `stats reset` answers RESET, parsed as Ok
                        Response::Ok => Ok(None),
                        other => Err(response_error(&other)),
                    })?;
                    match step? {
                        Some((n, v)) => out.push((server.clone(), n, v)),
                        None => return Ok(()),
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// Writes the noreply commands buffered on idle connections (with
    /// `buffer_noreply`); the first failure is returned after all were tried.
    pub fn flush_buffers(&self) -> Result<()> {
        let mut first = None;
        for s in self.cluster.servers() {
            if let Err(e) = s.pool.flush_idle() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Sends `quit` on and closes every idle connection; later calls reconnect.
    pub fn quit(&self) {
        for s in self.cluster.servers() {
            s.pool.close_idle();
        }
    }
}

/// Reads the reply to one retrieval command for `keys` (up to its `END`),
/// handing each `VALUE` to `visit` with the index of the key it answers
/// (`keys` is the count and the key at each index). memcached answers in request order and skips misses, so each
/// `VALUE` must match a key after the previous one; anything else means the
/// stream is out of step.
fn read_retrieval<'k>(
    conn: &mut Conn,
    deadline: Deadline,
    cmd: Retrieve,
    prefix: &[u8],
    keys: (usize, impl Fn(usize) -> &'k [u8]),
    visit: &mut HitVisitor<'_>,
) -> Result<()> {
    let (n, key_at) = keys;
    let max = conn.max_value();
    let mut next = 0; // index of the next key that may be answered
    loop {
        // the usual case: the next key's value, already buffered
        if next < n && !cmd.with_cas() {
            let at = next;
            if conn
                .take_plain_value(prefix, key_at(at), |flags, data| {
                    visit(at, data, flags, None)
                })
                .is_some()
            {
                next += 1;
                continue;
            }
        }
        let done = conn.read_response(deadline, |r| match r {
            Response::Value {
                key: k,
                flags,
                cas,
                data,
            } => {
                let Some(pos) = (next..n).position(|j| wire_key_matches(k, prefix, key_at(j)))
                else {
                    return Err(not_asked_for(k));
                };
                if cmd.with_cas() && cas.is_none() {
                    return Err(Error::Protocol("VALUE without cas for gets".into()));
                }
                if data.len() > max {
                    return Err(crate::conn::too_large(data.len() as u64, max));
                }
                next += pos + 1;
                visit(next - 1, data, flags, cas);
                Ok(false)
            }
            Response::End => Ok(true),
            other => Err(response_error(&other)),
        })??;
        if done {
            return Ok(());
        }
    }
}

/// Maps a reply element that is not part of a retrieval/stats stream.
fn response_error(r: &Response<'_>) -> Error {
    let lossy = |m: &[u8]| String::from_utf8_lossy(m).into_owned();
    match r {
        Response::ServerError(m) => Error::Server(lossy(m)),
        Response::ClientError(m) => crate::auth::client_error(m),
        Response::Error => Error::UnknownCommand,
        other => Error::Protocol(format!("unexpected reply {other:?}")),
    }
}

/// Encodes and writes the commands for `idxs` in chunks of about
/// `PIPELINE_CHUNK` bytes (replies that arrive meanwhile are buffered by
/// `Conn::flush`), with a noreply barrier first when replies are expected.
fn pipeline(
    conn: &mut Conn,
    deadline: Deadline,
    noreply: bool,
    idxs: &[usize],
    mut encode_one: impl FnMut(&mut Vec<u8>, usize),
) -> Result<()> {
    if !noreply {
        conn.begin_reply_request();
    }
    for &i in idxs {
        encode_one(&mut conn.wbuf, i);
        if conn.wbuf.len() >= PIPELINE_CHUNK {
            conn.flush(deadline)?;
        }
    }
    conn.flush(deadline)?;
    if noreply {
        conn.note_noreply_sent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(prefix: &[u8], unicode: bool) -> Client {
        let mut b = ClientBuilder::new();
        b.add_server("127.0.0.1:1").unwrap();
        b.key_prefix(prefix).unwrap().allow_unicode_keys(unicode);
        b.build().unwrap()
    }

    #[test]
    fn fast_key_check_agrees_with_the_rules() {
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut k = vec![b'k'; 17];
                k[pos] = b;
                assert_eq!(
                    all_printable_ascii(&k),
                    (0x21..0x7f).contains(&b),
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn key_rules() {
        let c = client(b"", false);
        assert!(c.check_key(b"ok:key-1_2.3").is_ok());
        assert!(c.check_key(&[b'k'; 250]).is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 251],
            b"a b",
            b"a\tb",
            b"a\rb",
            b"a\nb",
            b"a\0b",
            b"a\x7fb",
            b"\x01",
            "caf\u{e9}".as_bytes(),
        ] {
            assert!(
                matches!(c.check_key(bad), Err(Error::InvalidKey(_))),
                "{bad:?}"
            );
        }
        let u = client(b"", true);
        assert!(u.check_key("caf\u{e9}".as_bytes()).is_ok());
        assert!(u.check_key(b"\xff\xfe").is_err());
        assert!(u.check_key("a\u{a0}b".as_bytes()).is_ok());
        let p = client(b"pre:", false);
        assert!(p.check_key(&[b'k'; 246]).is_ok());
        assert!(p.check_key(&[b'k'; 247]).is_err());
    }

    #[test]
    fn argument_checks_happen_before_io() {
        // port 1 is closed: reaching the network would give ConnectFailed
        let c = client(b"", false);
        assert!(matches!(
            c.set(b"k", b"v", 0, i32::MAX as u32 + 1, None),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(c.get(b"bad key"), Err(Error::InvalidKey(_))));
        assert!(matches!(
            c.get_many(&[b"ok", b""]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            c.stats("a\r\nflush_all"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(c.get(b"ok"), Err(Error::ConnectFailed { .. })));
    }

    #[test]
    fn builder_rejects_nonsense() {
        let mut b = ClientBuilder::new();
        assert!(b.add_server("host:notaport").is_err());
        assert!(b.add_server_weighted("host", 0).is_err());
        assert!(b.timeout(Duration::ZERO).is_err());
        assert!(b.max_pool_size(0).is_err());
        assert!(b.key_prefix(b"a b").is_err());
        assert!(matches!(b.build(), Err(Error::NoServers)));
    }
}
