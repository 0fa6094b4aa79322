//! `mcrs dump`: lists every server's keys with `lru_crawler metadump all`,
//! an admin command the client API lacks, on a raw connection of its own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clap::Args;
use mcrs::conn::ServerAddr;

use crate::{ConnArgs, Fail, Outcome};

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Print "server key exp=… la=… cas=… fetch=… cls=… size=…" instead of the key alone
    /// (exp -1: never expires; exp and la are unix times)
    #[arg(short, long)]
    pub long: bool,
}

/// One item of a metadump, as the server printed it (the key URI-decoded).
#[derive(Debug, PartialEq, Eq)]
pub struct Item {
    pub key: Vec<u8>,
    /// the other `name=value` fields in the server's order
    pub fields: Vec<(String, String)>,
}

/// A stream that reads and writes with deadlines: TCP or a unix socket.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn open(addr: &str, connect_timeout: Duration, timeout: Duration) -> Result<Box<dyn Stream>, Fail> {
    let failed = |e: &dyn std::fmt::Display| Fail::Error(format!("cannot connect to {addr}: {e}"));
    match ServerAddr::parse(addr)? {
        ServerAddr::Unix(path) => {
            let s = UnixStream::connect(&path).map_err(|e| failed(&e))?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            Ok(Box::new(s))
        }
        ServerAddr::Tcp { host, port } => {
            let addrs = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| failed(&e))?;
            let mut last: Option<io::Error> = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, connect_timeout) {
                    Ok(s) => {
                        s.set_read_timeout(Some(timeout))?;
                        s.set_write_timeout(Some(timeout))?;
                        s.set_nodelay(true)?;
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) => failed(&e),
                None => failed(&"the host name has no address"),
            })
        }
    }
}

/// Decodes memcached's URI encoding of keys (`%XX`); anything malformed is
/// kept as it is.
pub fn uri_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Parses one metadump line: `key=… exp=… la=… cas=… fetch=… cls=… size=…`.
pub fn parse_line(line: &[u8]) -> Result<Item, String> {
    let text = String::from_utf8_lossy(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let key = match words.next().and_then(|w| w.strip_prefix(b"key=")) {
        Some(k) if !k.is_empty() => uri_decode(k),
        _ => {
            return Err(format!(
                "unexpected line from lru_crawler metadump: {text:?}"
            ))
        }
    };
    let mut fields = Vec::new();
    for w in words {
        let w = String::from_utf8_lossy(w);
        match w.split_once('=') {
            Some((n, v)) => fields.push((n.to_string(), v.to_string())),
            None => return Err(format!("unexpected field {w:?} in metadump line {text:?}")),
        }
    }
    Ok(Item { key, fields })
}

/// Reads a metadump reply up to `END`, handing each item to `f`.
pub fn read_dump(r: impl Read, mut f: impl FnMut(Item) -> io::Result<()>) -> Result<(), String> {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "timed out reading the metadump".to_string()
            }
            _ => format!("reading the metadump: {e}"),
        })?;
        if n == 0 {
            return Err("the server closed the connection before END".into());
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        match &line[..] {
            b"END" => return Ok(()),
            b"" => continue,
            l if l.starts_with(b"key=") => {
                f(parse_line(l)?).map_err(|e| format!("writing the output: {e}"))?
            }
            l => {
                // BUSY (another crawl runs), ERROR (crawler disabled), CLIENT_ERROR ...
                return Err(format!(
                    "lru_crawler metadump: {}",
                    String::from_utf8_lossy(l)
                ));
            }
        }
    }
}

pub fn run(conn: &ConnArgs, args: &DumpArgs) -> Outcome {
    if conn.tls || conn.username.is_some() {
        // the dump reads its own plain connection, outside the client
        return Err(Fail::Error(
            "dump does not speak TLS or -Y authentication yet".into(),
        ));
    }
    let mut out = io::stdout().lock();
    let mut failed = Vec::new();
    for server in conn.servers()? {
        let r = (|| -> Result<(), Fail> {
            let mut s = open(&server, conn.connect_timeout, conn.timeout)?;
            s.write_all(b"lru_crawler metadump all\r\n")
                .map_err(|e| Fail::Error(format!("writing to {server}: {e}")))?;
            read_dump(&mut s, |item| {
                if args.long {
                    write!(out, "{server} ")?;
                    out.write_all(&item.key)?;
                    for (n, v) in &item.fields {
                        write!(out, " {n}={v}")?;
                    }
                    out.write_all(b"\n")
                } else {
                    out.write_all(&item.key)?;
                    out.write_all(b"\n")
                }
            })
            .map_err(Fail::Error)?;
            let _ = s.write_all(b"quit\r\n");
            Ok(())
        })();
        if let Err(Fail::Error(e)) = r {
            failed.push(format!("{server}: {e}"));
        }
    }
    out.flush()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Fail::Error(failed.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys() {
        assert_eq!(uri_decode(b"a%20b%2Fc"), b"a b/c");
        assert_eq!(uri_decode(b"plain"), b"plain");
        assert_eq!(uri_decode(b"bad%zz%4"), b"bad%zz%4");
        assert_eq!(uri_decode(b"%"), b"%");
        assert_eq!(uri_decode(b"x%41"), b"xA");
    }

    #[test]
    fn parses_a_dump() {
        let reply = b"key=a%3Ab exp=-1 la=1700000000 cas=7 fetch=no cls=1 size=63\n\
                      key=c exp=1700000100 la=1700000001 cas=8 fetch=yes cls=2 size=90\r\nEND\r\n";
        let mut items = Vec::new();
        read_dump(&reply[..], |i| {
            items.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].key, b"a:b");
        assert_eq!(items[0].fields[0], ("exp".into(), "-1".into()));
        assert_eq!(items[1].key, b"c");
        assert_eq!(items[1].fields.len(), 6);
    }

    #[test]
    fn reports_bad_replies() {
        let e = read_dump(
            &b"BUSY currently processing crawler request\r\n"[..],
            |_| Ok(()),
        );
        assert!(e.unwrap_err().contains("BUSY"));
        let e = read_dump(&b"key=a exp=-1\n"[..], |_| Ok(()));
        assert!(e.unwrap_err().contains("before END"));
        let e = read_dump(&b"key= exp=1\nEND\r\n"[..], |_| Ok(()));
        assert!(e.is_err());
        let e = read_dump(&b"key=a junk\nEND\r\n"[..], |_| Ok(()));
        assert!(e.unwrap_err().contains("junk"));
    }
}
