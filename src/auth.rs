//! memcached's text-protocol authentication (`-Y` auth files): the login
//! every new connection sends before its first request.
//!
//! The login is a `set` whose data is `user password` (sent with exptime -1,
//! so a server without `-Y` keeps nothing readable); memcached answers
//! `STORED`, or `CLIENT_ERROR authentication failure`. A server that demands
//! a login answers every other command with `CLIENT_ERROR unauthenticated`.
//! The password never appears in an error detail or in `Debug` output.

use std::sync::Arc;

use crate::client::ClientBuilder;
use crate::conn::{Conn, Deadline};
use crate::error::{Error, Result};
use crate::protocol::Response;

/// Credentials for memcached `-Y`.
#[derive(Clone)]
pub struct Auth {
    user: String,
    password: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Auth {
    /// The user may hold no whitespace or control bytes (memcached splits
    /// the login at the first space); the password no CR, LF or NUL.
    pub fn new(user: &str, password: &str) -> Result<Auth> {
        if user.is_empty() || user.bytes().any(|b| b <= b' ' || b == 0x7f || b == b':') {
            return Err(Error::InvalidArgument(
                "auth user must be non-empty, without whitespace, control bytes or ':'".into(),
            ));
        }
        if password.is_empty() || password.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::InvalidArgument(format!(
                "auth password for user {user:?} must be non-empty, without CR, LF or NUL"
            )));
        }
        Ok(Auth {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Encodes the login request.
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        let len = self.user.len() + 1 + self.password.len();
        // exptime -1: a server without -Y stores the item already expired,
        // so the credentials never become readable from its cache
        buf.extend_from_slice(b"set mcrs_auth 0 -1 ");
        buf.extend_from_slice(len.to_string().as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(self.user.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(self.password.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
}

impl ClientBuilder {
    /// Log in on every new connection (memcached `-Y`), over TLS too when it
    /// is on. A refused login fails with [`Error::AuthFailed`].
    pub fn auth(&mut self, user: &str, password: &str) -> Result<&mut Self> {
        self.auth = Some(Arc::new(Auth::new(user, password)?));
        Ok(self)
    }
}

/// Logs in on a fresh connection; the login's bytes are wiped from the write
/// buffer afterwards.
pub(crate) fn login(conn: &mut Conn, auth: &Auth, deadline: Deadline) -> Result<()> {
    auth.encode(&mut conn.wbuf);
    let sent = conn.flush(deadline);
    // the password must not linger in memory that gets reused
    wipe(&mut conn.wbuf);
    sent?;
    conn.read_response(deadline, |r| login_reply(auth, &r))?
}

/// The outcome of the reply to the login request.
pub(crate) fn login_reply(auth: &Auth, r: &Response<'_>) -> Result<()> {
    match r {
        Response::Stored => Ok(()),
        Response::ClientError(m) => Err(Error::AuthFailed(format!(
            "the server refused user {:?}: CLIENT_ERROR {}",
            auth.user,
            String::from_utf8_lossy(m)
        ))),
        Response::Error => Err(Error::AuthFailed(format!(
            "the server does not know the login command (user {:?}); is it started with -Y?",
            auth.user
        ))),
        other => Err(Error::Protocol(format!(
            "unexpected reply to the login: {other:?}"
        ))),
    }
}

pub(crate) fn wipe(buf: &mut Vec<u8>) {
    let cap = buf.capacity();
    buf.clear();
    buf.resize(cap, 0);
    // volatile-free but observable: the zeros are written before the clear
    std::hint::black_box(&buf[..]);
    buf.clear();
}

/// The error for a `CLIENT_ERROR <msg>` reply: memcached's answer to a
/// command on a connection that has not logged in is an authentication
/// failure, not a client error.
pub(crate) fn client_error(msg: &[u8]) -> Error {
    if is_unauthenticated(msg) {
        Error::AuthFailed(
            "the server requires authentication (memcached -Y) and this client did not log in; \
             configure credentials with auth()/mcrs_config_set_auth"
                .into(),
        )
    } else {
        Error::Client(String::from_utf8_lossy(msg).into_owned())
    }
}

/// True for memcached's answer to a command before a login.
pub(crate) fn is_unauthenticated(msg: &[u8]) -> bool {
    msg == b"unauthenticated"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_request_and_redaction() {
        let a = Auth::new("alice", "pa ss:word").unwrap();
        let mut buf = Vec::new();
        a.encode(&mut buf);
        assert_eq!(buf, b"set mcrs_auth 0 -1 16\r\nalice pa ss:word\r\n");
        let shown = format!("{a:?}");
        assert!(
            shown.contains("alice") && !shown.contains("pa ss"),
            "{shown}"
        );
        for (u, p) in [
            ("", "x"),
            ("a b", "x"),
            ("a:b", "x"),
            ("a\n", "x"),
            ("a", ""),
            ("a", "x\ry"),
        ] {
            assert!(Auth::new(u, p).is_err(), "{u:?} {p:?}");
        }
    }

    #[test]
    fn unauthenticated_is_an_auth_failure() {
        assert!(matches!(
            client_error(b"unauthenticated"),
            Error::AuthFailed(_)
        ));
        assert!(
            matches!(client_error(b"bad data chunk"), Error::Client(m) if m == "bad data chunk")
        );
    }

    #[test]
    fn wipe_zeroes_the_buffer() {
        let mut b = b"secret".to_vec();
        wipe(&mut b);
        assert!(b.is_empty());
        // SAFETY: the capacity was written with zeros and not freed.
        let raw = unsafe { std::slice::from_raw_parts(b.as_ptr(), 6) };
        assert_eq!(raw, &[0u8; 6]);
    }
}
