//! Request encoding: each function appends one complete command to `buf`.
//!
//! Callers validate keys and argument ranges first (see `client::keys`); these
//! functions only lay bytes out, so they never fail and never allocate beyond
//! growing `buf`.

/// The five storage commands that share `<cmd> <key> <flags> <exptime> <bytes>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCmd {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

impl StoreCmd {
    fn verb(self) -> &'static [u8] {
        match self {
            StoreCmd::Set => b"set ",
            StoreCmd::Add => b"add ",
            StoreCmd::Replace => b"replace ",
            StoreCmd::Append => b"append ",
            StoreCmd::Prepend => b"prepend ",
        }
    }
}

/// Appends the decimal form of `n` without going through `fmt`.
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    Cursor::new(buf, 20).num(n);
}

/// Writes into the spare capacity of a `Vec<u8>` that was reserved for at
/// least as many bytes as will be written: the hot encoders use it so a
/// command costs one capacity check instead of one per piece.
struct Cursor<'a> {
    buf: &'a mut Vec<u8>,
    at: *mut u8,
    end: *mut u8,
}

impl<'a> Cursor<'a> {
    /// Reserves room for `max` more bytes.
    #[inline]
    fn new(buf: &'a mut Vec<u8>, max: usize) -> Cursor<'a> {
        buf.reserve(max);
        let spare = buf.spare_capacity_mut();
        let at = spare.as_mut_ptr().cast::<u8>();
        // SAFETY: spare has at least `max` bytes.
        let end = unsafe { at.add(max) };
        Cursor { buf, at, end }
    }

    #[inline]
    fn put(&mut self, b: &[u8]) {
        assert!(
            b.len() <= self.end as usize - self.at as usize,
            "cursor overrun"
        );
        if b.is_empty() {
            return; // a key prefix usually is: no call into memcpy for it
        }
        // SAFETY: checked above that b fits in the reserved room.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.at, b.len());
            self.at = self.at.add(b.len());
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        assert!(self.at < self.end, "cursor overrun");
        // SAFETY: checked above that one byte fits.
        unsafe {
            self.at.write(b);
            self.at = self.at.add(1);
        }
    }

    #[inline]
    fn num(&mut self, mut n: u64) {
        if n < 10 {
            return self.byte(b'0' + n as u8);
        }
        let digits = n.ilog10() as usize + 1;
        assert!(
            digits <= self.end as usize - self.at as usize,
            "cursor overrun"
        );
        // SAFETY: checked above that the digits fit; written back to front.
        unsafe {
            let mut q = self.at.add(digits);
            while n > 0 {
                q = q.sub(1);
                q.write(b'0' + (n % 10) as u8);
                n /= 10;
            }
            self.at = self.at.add(digits);
        }
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        let written = self.at as usize - self.buf.spare_capacity_mut().as_ptr() as usize;
        // SAFETY: exactly `written` bytes of the spare capacity were initialized.
        unsafe { self.buf.set_len(self.buf.len() + written) };
    }
}

fn push_noreply(buf: &mut Vec<u8>, noreply: bool) {
    if noreply {
        buf.extend_from_slice(b" noreply");
    }
}

fn push_key(buf: &mut Vec<u8>, prefix: &[u8], key: &[u8]) {
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(key);
}

/// A key as it goes on the wire: the client's prefix followed by the caller's key.
#[derive(Clone, Copy, Debug)]
pub struct WireKey<'a> {
    pub prefix: &'a [u8],
    pub key: &'a [u8],
}

impl WireKey<'_> {
    fn push(&self, buf: &mut Vec<u8>) {
        push_key(buf, self.prefix, self.key);
    }
}

/// `set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]\r\n<data>\r\n`
pub fn store(
    buf: &mut Vec<u8>,
    cmd: StoreCmd,
    key: WireKey<'_>,
    flags: u32,
    exptime: u32,
    value: &[u8],
    noreply: bool,
) {
    store_line(buf, cmd.verb(), key, flags, exptime, value, None, noreply);
}

/// `cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]\r\n<data>\r\n`
pub fn cas(
    buf: &mut Vec<u8>,
    key: WireKey<'_>,
    flags: u32,
    exptime: u32,
    value: &[u8],
    cas_unique: u64,
    noreply: bool,
) {
    store_line(
        buf,
        b"cas ",
        key,
        flags,
        exptime,
        value,
        Some(cas_unique),
        noreply,
    );
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn store_line(
    buf: &mut Vec<u8>,
    verb: &[u8],
    key: WireKey<'_>,
    flags: u32,
    exptime: u32,
    value: &[u8],
    cas_unique: Option<u64>,
    noreply: bool,
) {
    // verb, key, four numbers with their spaces, " noreply\r\n", the value, "\r\n"
    let max = verb.len() + key.prefix.len() + key.key.len() + 4 * 21 + 10 + value.len() + 2;
    let mut c = Cursor::new(buf, max);
    c.put(verb);
    c.put(key.prefix);
    c.put(key.key);
    c.byte(b' ');
    c.num(flags.into());
    c.byte(b' ');
    c.num(exptime.into());
    c.byte(b' ');
    c.num(value.len() as u64);
    if let Some(cas) = cas_unique {
        c.byte(b' ');
        c.num(cas);
    }
    if noreply {
        c.put(b" noreply");
    }
    c.put(b"\r\n");
    c.put(value);
    c.put(b"\r\n");
}

/// Which retrieval command to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retrieve {
    Get,
    Gets,
    /// get-and-touch with the new exptime
    Gat(u32),
    /// get-and-touch returning cas
    Gats(u32),
}

impl Retrieve {
    /// True when the server includes the cas unique in `VALUE` lines.
    pub fn with_cas(self) -> bool {
        matches!(self, Retrieve::Gets | Retrieve::Gats(_))
    }
}

/// `get|gets <key>*\r\n` or `gat|gats <exptime> <key>*\r\n`.
pub fn retrieve<'k>(buf: &mut Vec<u8>, cmd: Retrieve, keys: impl IntoIterator<Item = WireKey<'k>>) {
    match cmd {
        Retrieve::Get => buf.extend_from_slice(b"get"),
        Retrieve::Gets => buf.extend_from_slice(b"gets"),
        Retrieve::Gat(e) | Retrieve::Gats(e) => {
            buf.extend_from_slice(if cmd.with_cas() { b"gats " } else { b"gat " });
            push_u64(buf, e.into());
        }
    }
    for k in keys {
        buf.push(b' ');
        k.push(buf);
    }
    buf.extend_from_slice(b"\r\n");
}

/// One-key retrieval: the same bytes as [`retrieve`], laid out with one
/// reservation (the hot path of `get`). Written without `Cursor`: its
/// per-piece checks cost a get about 20 instructions (callgrind), and here
/// the four lengths are summed right above the writes.
#[inline(always)]
pub fn retrieve_one(buf: &mut Vec<u8>, cmd: Retrieve, key: WireKey<'_>) {
    if cmd != Retrieve::Get {
        return retrieve(buf, cmd, [key]);
    }
    let (p, k) = (key.prefix, key.key);
    let n = 4 + p.len() + k.len() + 2;
    buf.reserve(n);
    // SAFETY: reserve made room for the n bytes written here, all of which
    // are initialized before the length covers them.
    unsafe {
        let at = buf.as_mut_ptr().add(buf.len());
        at.copy_from_nonoverlapping(b"get ".as_ptr(), 4);
        if !p.is_empty() {
            at.add(4).copy_from_nonoverlapping(p.as_ptr(), p.len());
        }
        at.add(4 + p.len())
            .copy_from_nonoverlapping(k.as_ptr(), k.len());
        at.add(n - 2).copy_from_nonoverlapping(b"\r\n".as_ptr(), 2);
        buf.set_len(buf.len() + n);
    }
}

/// `delete <key> [noreply]\r\n`
pub fn delete(buf: &mut Vec<u8>, key: WireKey<'_>, noreply: bool) {
    buf.extend_from_slice(b"delete ");
    key.push(buf);
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `incr|decr <key> <delta> [noreply]\r\n`
pub fn arith(buf: &mut Vec<u8>, incr: bool, key: WireKey<'_>, delta: u64, noreply: bool) {
    buf.extend_from_slice(if incr { b"incr " } else { b"decr " });
    key.push(buf);
    buf.push(b' ');
    push_u64(buf, delta);
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `touch <key> <exptime> [noreply]\r\n`
pub fn touch(buf: &mut Vec<u8>, key: WireKey<'_>, exptime: u32, noreply: bool) {
    buf.extend_from_slice(b"touch ");
    key.push(buf);
    buf.push(b' ');
    push_u64(buf, exptime.into());
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `stats [args]\r\n`; `args` is validated by the caller (printable, no CR/LF).
pub fn stats(buf: &mut Vec<u8>, args: &[u8]) {
    buf.extend_from_slice(b"stats");
    if !args.is_empty() {
        buf.push(b' ');
        buf.extend_from_slice(args);
    }
    buf.extend_from_slice(b"\r\n");
}

/// `version\r\n`
pub fn version(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"version\r\n");
}

/// `flush_all [delay] [noreply]\r\n` (delay 0 is sent as no delay)
pub fn flush_all(buf: &mut Vec<u8>, delay: u32, noreply: bool) {
    buf.extend_from_slice(b"flush_all");
    if delay != 0 {
        buf.push(b' ');
        push_u64(buf, delay.into());
    }
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `cache_memlimit <megabytes> [noreply]\r\n`
pub fn cache_memlimit(buf: &mut Vec<u8>, megabytes: u32, noreply: bool) {
    buf.extend_from_slice(b"cache_memlimit ");
    push_u64(buf, megabytes.into());
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `verbosity <level> [noreply]\r\n`
pub fn verbosity(buf: &mut Vec<u8>, level: u32, noreply: bool) {
    buf.extend_from_slice(b"verbosity ");
    push_u64(buf, level.into());
    push_noreply(buf, noreply);
    buf.extend_from_slice(b"\r\n");
}

/// `quit\r\n` (the server closes the connection without answering)
pub fn quit(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"quit\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(key: &'static [u8]) -> WireKey<'static> {
        WireKey { prefix: b"", key }
    }

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = Vec::new();
        f(&mut b);
        b
    }

    #[test]
    fn integers() {
        for n in [0u64, 1, 9, 10, 99, 100, 12345, u32::MAX as u64, u64::MAX] {
            assert_eq!(enc(|b| push_u64(b, n)), n.to_string().into_bytes());
        }
    }

    #[test]
    fn storage_commands() {
        assert_eq!(
            enc(|b| store(b, StoreCmd::Set, k(b"foo"), 16, 0, b"bar", false)),
            b"set foo 16 0 3\r\nbar\r\n"
        );
        assert_eq!(
            enc(|b| store(b, StoreCmd::Prepend, k(b"a"), 0, 60, b"", true)),
            b"prepend a 0 60 0 noreply\r\n\r\n"
        );
        let pk = WireKey {
            prefix: b"p:",
            key: b"k",
        };
        assert_eq!(
            enc(|b| store(b, StoreCmd::Add, pk, 1, 2, b"x\r\ny", false)),
            b"add p:k 1 2 4\r\nx\r\ny\r\n"
        );
        assert_eq!(
            enc(|b| store(b, StoreCmd::Replace, k(b"r"), 0, 0, b"v", false)),
            b"replace r 0 0 1\r\nv\r\n"
        );
        assert_eq!(
            enc(|b| store(b, StoreCmd::Append, k(b"r"), 0, 0, b"v", false)),
            b"append r 0 0 1\r\nv\r\n"
        );
        assert_eq!(
            enc(|b| cas(b, k(b"c"), 2, 3, b"vv", 99, true)),
            b"cas c 2 3 2 99 noreply\r\nvv\r\n"
        );
    }

    #[test]
    fn other_commands() {
        let keys = [k(b"a"), k(b"b")];
        assert_eq!(enc(|b| retrieve(b, Retrieve::Get, [k(b"a")])), b"get a\r\n");
        assert_eq!(
            enc(|b| retrieve_one(b, Retrieve::Get, k(b"a"))),
            b"get a\r\n"
        );
        assert_eq!(
            enc(|b| retrieve_one(b, Retrieve::Gats(3), k(b"a"))),
            b"gats 3 a\r\n"
        );
        assert_eq!(enc(|b| retrieve(b, Retrieve::Gets, keys)), b"gets a b\r\n");
        assert_eq!(
            enc(|b| retrieve(b, Retrieve::Gat(10), keys)),
            b"gat 10 a b\r\n"
        );
        assert_eq!(
            enc(|b| retrieve(b, Retrieve::Gats(0), [k(b"a")])),
            b"gats 0 a\r\n"
        );
        assert_eq!(enc(|b| delete(b, k(b"d"), true)), b"delete d noreply\r\n");
        assert_eq!(enc(|b| arith(b, true, k(b"n"), 5, false)), b"incr n 5\r\n");
        assert_eq!(
            enc(|b| arith(b, false, k(b"n"), u64::MAX, true)),
            b"decr n 18446744073709551615 noreply\r\n"
        );
        assert_eq!(enc(|b| touch(b, k(b"t"), 7, false)), b"touch t 7\r\n");
        assert_eq!(enc(|b| stats(b, b"")), b"stats\r\n");
        assert_eq!(enc(|b| stats(b, b"items")), b"stats items\r\n");
        assert_eq!(enc(version), b"version\r\n");
        assert_eq!(enc(|b| flush_all(b, 0, false)), b"flush_all\r\n");
        assert_eq!(enc(|b| flush_all(b, 5, true)), b"flush_all 5 noreply\r\n");
        assert_eq!(
            enc(|b| cache_memlimit(b, 64, false)),
            b"cache_memlimit 64\r\n"
        );
        assert_eq!(enc(|b| verbosity(b, 1, true)), b"verbosity 1 noreply\r\n");
        assert_eq!(enc(quit), b"quit\r\n");
    }
}
