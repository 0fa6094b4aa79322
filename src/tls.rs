//! TLS for the connections (rustls, ring provider): the options a
//! client is built with, the rustls configuration every connection of the
//! client shares (with its session cache, so reconnects resume), the
//! handshake under the connect deadline, and error details that name what
//! went wrong (unknown CA, name mismatch, expired certificate, handshake
//! timeout, a peer that does not speak TLS). The blocking handshake is
//! here; the event loop drives the same session non-blocking
//! (src/engine/pipe/tls.rs) with the same error helpers.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

use crate::client::ClientBuilder;
use crate::conn::Deadline;
use crate::error::{Error, Result};

/// The TLS settings of a [`ClientBuilder`]. PEM inputs are kept as bytes
/// (files are read when they are set, so a missing file is reported by the
/// call that named it).
#[derive(Clone)]
pub struct TlsOptions {
    on: bool,
    ca_pem: Option<Vec<u8>>,
    cert_pem: Option<Vec<u8>>,
    key_pem: Option<Vec<u8>>,
    server_name: Option<ServerName<'static>>,
    verify: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            on: false,
            ca_pem: None,
            cert_pem: None,
            key_pem: None,
            server_name: None,
            verify: true,
        }
    }
}

impl std::fmt::Debug for TlsOptions {
    /// Says which settings are present, never the key's bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("on", &self.on)
            .field("ca", &self.ca_pem.is_some())
            .field("cert", &self.cert_pem.is_some())
            .field("key", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::InvalidArgument(format!("{what} {path:?}: {e}")))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidArgument(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what}: no CERTIFICATE in the PEM"
        )));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    // the error of the PEM parser never quotes the key's bytes
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        Error::InvalidArgument(format!(
            "TLS private key: no usable PRIVATE KEY in the PEM ({e})"
        ))
    })
}

impl ClientBuilder {
    /// TLS on every connection (default off). The server is verified
    /// against the system roots unless a CA is given.
    pub fn tls(&mut self, on: bool) -> &mut Self {
        self.tls.on = on;
        self
    }
    /// The CA certificates (PEM) that sign the servers' certificates,
    /// instead of the system roots.
    pub fn tls_ca_pem(&mut self, pem: &[u8]) -> Result<&mut Self> {
        parse_certs(pem, "TLS CA")?;
        self.tls.ca_pem = Some(pem.to_vec());
        Ok(self)
    }
    /// `tls_ca_pem` from a file.
    pub fn tls_ca_file(&mut self, path: &str) -> Result<&mut Self> {
        self.tls_ca_pem(&read_file(path, "TLS CA file")?)
    }
    /// The client's certificate chain (PEM), for servers that demand mutual TLS.
    pub fn tls_cert_pem(&mut self, pem: &[u8]) -> Result<&mut Self> {
        parse_certs(pem, "TLS client certificate")?;
        self.tls.cert_pem = Some(pem.to_vec());
        Ok(self)
    }
    /// `tls_cert_pem` from a file.
    pub fn tls_cert_file(&mut self, path: &str) -> Result<&mut Self> {
        self.tls_cert_pem(&read_file(path, "TLS certificate file")?)
    }
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of the client certificate.
    pub fn tls_key_pem(&mut self, pem: &[u8]) -> Result<&mut Self> {
        parse_key(pem)?;
        self.tls.key_pem = Some(pem.to_vec());
        Ok(self)
    }
    /// `tls_key_pem` from a file.
    pub fn tls_key_file(&mut self, path: &str) -> Result<&mut Self> {
        self.tls_key_pem(&read_file(path, "TLS key file")?)
    }
    /// The name (DNS name or IP address) the servers' certificates must be
    /// valid for; default: each server address's host.
    pub fn tls_server_name(&mut self, name: &str) -> Result<&mut Self> {
        self.tls.server_name = Some(server_name(name)?);
        Ok(self)
    }
    /// The TLS connector a client built now would use (None: TLS off), for
    /// tools and tests that open [`crate::conn::Conn`]s themselves.
    pub fn tls_connector(&self) -> Result<Option<Arc<TlsConnector>>> {
        self.tls.connector()
    }
    /// Verify the servers' certificates (default on). Off accepts any
    /// certificate: encryption without authentication of the server.
    pub fn tls_verify(&mut self, on: bool) -> &mut Self {
        self.tls.verify = on;
        self
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>> {
    // brackets of an IPv6 address as written in a server address
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|_| {
        Error::InvalidArgument(format!(
            "TLS server name {name:?} is not a DNS name or an IP address"
        ))
    })
}

impl TlsOptions {
    /// The connector for a client: None when TLS is off. Settings given
    /// while TLS is off are refused rather than silently ignored (a CA file
    /// without TLS would otherwise send everything in the clear).
    pub(crate) fn connector(&self) -> Result<Option<Arc<TlsConnector>>> {
        if !self.on {
            if self.ca_pem.is_some()
                || self.cert_pem.is_some()
                || self.key_pem.is_some()
                || self.server_name.is_some()
            {
                return Err(Error::InvalidArgument(
                    "TLS settings were given but TLS is off (turn it on with tls(true) / mcrs_config_set_tls)"
                        .into(),
                ));
            }
            return Ok(None);
        }
        TlsConnector::new(self).map(|c| Some(Arc::new(c)))
    }
}

/// What every TLS connection of one client shares: the rustls configuration
/// (built once; its in-memory session store lets reconnects resume).
///
/// memcached 1.6.18 with `ssl_verify_mode` 1 or 2 sets no session id
/// context, and OpenSSL then answers every resumption attempt with an
/// internal_error alert (seen here). The first such alert turns resumption
/// off for the client (`fresh`) and the connection is made again.
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    /// `config` without resumption
    fresh: Arc<ClientConfig>,
    /// set once a server refused a resumption: every session starts fresh
    no_resume: AtomicBool,
    server_name: Option<ServerName<'static>>,
    verify: bool,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trust store (rustls-native-certs: the OS's own list, with
/// the CAs an administrator added), read once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            Arc::new(roots)
        })
        .clone()
}

impl TlsConnector {
    fn new(o: &TlsOptions) -> Result<TlsConnector> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("cannot configure TLS: {e}")))?;
        let builder = if !o.verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let roots = match &o.ca_pem {
                Some(pem) => {
                    let mut roots = RootCertStore::empty();
                    for c in parse_certs(pem, "TLS CA")? {
                        roots.add(c).map_err(|e| {
                            Error::InvalidArgument(format!("TLS CA: unusable certificate: {e}"))
                        })?;
                    }
                    Arc::new(roots)
                }
                None => system_roots(),
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match (&o.cert_pem, &o.key_pem) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    parse_certs(cert, "TLS client certificate")?,
                    parse_key(key)?,
                )
                .map_err(|e| {
                    Error::InvalidArgument(format!("TLS client certificate and key: {e}"))
                })?,
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(Error::InvalidArgument(
                    "TLS client certificate given without its private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "TLS private key given without its certificate".into(),
                ))
            }
        };
        // Resumption::default() is kept: an in-memory store of 256 sessions;
        // but not with a client certificate: memcached -Z asking for one
        // (ssl_verify_mode) without ssl_session_cache has no session id
        // context, and OpenSSL then answers every resumption attempt with an
        // internal_error alert (seen with 1.6.18), so each reconnect failed.
        // A server that asks for no certificate from a client that has none
        // can do the same (ssl_verify_mode 1): see refused_resumption.
        if o.cert_pem.is_some() {
            config.resumption = Resumption::disabled();
        }
        let mut fresh = config.clone();
        fresh.resumption = Resumption::disabled();
        Ok(TlsConnector {
            config: Arc::new(config),
            fresh: Arc::new(fresh),
            no_resume: AtomicBool::new(false),
            server_name: o.server_name.clone(),
            verify: o.verify,
        })
    }

    /// A client session for a server whose address has `host` (None: a
    /// unix socket, where the configured name or "localhost" is used).
    pub(crate) fn start(&self, host: Option<&str>) -> Result<ClientConnection> {
        let name = match (&self.server_name, host) {
            (Some(n), _) => n.clone(),
            (None, Some(h)) => server_name(h)?,
            (None, None) => ServerName::try_from("localhost").expect("a valid name"),
        };
        let config = if self.no_resume.load(Ordering::Relaxed) {
            &self.fresh
        } else {
            &self.config
        };
        let mut c = ClientConnection::new(config.clone(), name)
            .map_err(|e| Error::Tls(format!("cannot start a TLS session: {e}")))?;
        // requests are encrypted as written, however large a batch is
        c.set_buffer_limit(None);
        Ok(c)
    }
}

impl TlsConnector {
    /// Called with the error of a failed handshake: true when it was the
    /// server refusing a resumption (an internal_error alert while sessions
    /// may still be offered), in which case resumption is now off and the
    /// connection should be made again.
    pub(crate) fn refused_resumption(&self, e: &rustls::Error) -> bool {
        matches!(
            e,
            rustls::Error::AlertReceived(AlertDescription::InternalError)
        ) && !self.no_resume.swap(true, Ordering::Relaxed)
    }
}

/// The verifier of `tls_verify(false)`: any certificate is accepted, but the
/// handshake signatures are still checked (the session is then at least
/// bound to the key the server presented).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The detail of a TLS failure, in the words a user looks for.
pub(crate) fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "certificate verification failed: unknown CA \
                 (the server's certificate is not signed by a trusted CA; give its CA with tls_ca_file)"
                .into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate verification failed: name mismatch ({e})")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("certificate verification failed: expired certificate ({e})")
            }
            _ => format!("certificate verification failed: {e}"),
        },
        E::AlertReceived(
            a @ (AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) => format!(
            "the server refused the handshake (alert {a:?}): it may require a client \
             certificate it trusts (tls_cert_file / tls_key_file)"
        ),
        E::AlertReceived(a) => format!("the server sent TLS alert {a:?}"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            format!("the server does not speak TLS as expected ({e})")
        }
        _ => e.to_string(),
    }
}

/// A socket as rustls's `Read`/`Write`: `recv` with the given flags (0: a
/// blocking read bounded by SO_RCVTIMEO), non-blocking `send` without
/// SIGPIPE.
pub(crate) struct FdIo {
    pub fd: RawFd,
    pub flags: libc::c_int,
}

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid writable memory of buf.len() bytes.
        let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), self.flags) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Write for FdIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: buf is a valid initialized slice for the duration of the call.
        let n = unsafe {
            libc::send(
                self.fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `fd` is ready for `events` or `deadline` passes (false).
fn wait(fd: RawFd, events: libc::c_short, deadline: Deadline) -> io::Result<bool> {
    loop {
        let left = deadline.left();
        if left.is_zero() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc > 0 {
            return Ok(true);
        }
    }
}

/// TLS record content types (change_cipher_spec .. heartbeat): the first
/// byte of anything a TLS server sends.
pub(crate) fn is_tls_record_start(b: u8) -> bool {
    (0x14..=0x18).contains(&b)
}

/// What the server has sent before the first TLS byte of a handshake is read.
pub(crate) enum FirstReply {
    /// nothing yet
    Pending,
    /// a TLS record, an end of stream or a socket error: rustls's read says which
    Tls,
    /// a plaintext server answered the ClientHello with a text line (ERROR,
    /// CLIENT_ERROR ...): the error names what it said
    NotTls(Error),
}

/// Peeks (one `recv`, nothing consumed) at what the server sent first.
pub(crate) fn first_reply(fd: RawFd) -> FirstReply {
    let mut peek = [0u8; 64];
    // SAFETY: peek is writable memory of its length.
    let n = unsafe {
        libc::recv(
            fd,
            peek.as_mut_ptr().cast(),
            peek.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
        return FirstReply::Pending;
    }
    if n <= 0 || is_tls_record_start(peek[0]) {
        return FirstReply::Tls;
    }
    let got = &peek[..n as usize];
    FirstReply::NotTls(Error::Tls(format!(
        "the server does not speak TLS (it answered {:?}); is TLS enabled on it (memcached -Z)?",
        String::from_utf8_lossy(got).lines().next().unwrap_or("")
    )))
}

/// The error of a handshake that did not finish within the connect
/// timeout (`budget_ms`), after `received` bytes from the server.
pub(crate) fn handshake_timeout(received: usize, budget_ms: u64) -> Error {
    Error::Tls(if received == 0 {
        format!(
            "handshake timeout: no TLS answer within {budget_ms} ms \
             (is the server a plaintext memcached, or stalled?)"
        )
    } else {
        format!("handshake timeout: not complete within {budget_ms} ms")
    })
}

/// The server closed the connection in the middle of the handshake.
pub(crate) fn closed_in_handshake() -> Error {
    Error::Tls("the server closed the connection during the handshake".into())
}

/// Runs the handshake on a connected socket, never past `deadline`
/// (`budget_ms` is the connect timeout, for the message). `again` is set
/// when the server refused a resumption (see [`TlsConnector`]): the caller
/// connects again, with a fresh session.
pub(crate) fn handshake(
    tls: &mut ClientConnection,
    fd: RawFd,
    deadline: Deadline,
    budget_ms: u64,
    connector: &TlsConnector,
    again: &mut bool,
) -> Result<()> {
    let mut io = FdIo {
        fd,
        flags: libc::MSG_DONTWAIT,
    };
    let mut received = 0usize;
    let timed_out = |received: usize| handshake_timeout(received, budget_ms);
    while tls.is_handshaking() || tls.wants_write() {
        if tls.wants_write() {
            match tls.write_tls(&mut io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait(fd, libc::POLLOUT, deadline)? {
                        return Err(timed_out(received));
                    }
                }
                Err(e) => return Err(closed_during_handshake(e)),
            }
            continue;
        }
        if !wait(fd, libc::POLLIN, deadline)? {
            return Err(timed_out(received));
        }
        // peek at the first byte: a plaintext server answers the
        // ClientHello with a text line (ERROR, CLIENT_ERROR ...)
        if received == 0 {
            match first_reply(fd) {
                FirstReply::NotTls(e) => return Err(e),
                FirstReply::Pending => continue, // a spurious wake-up
                FirstReply::Tls => {}
            }
        }
        match tls.read_tls(&mut io) {
            Ok(0) => return Err(closed_in_handshake()),
            Ok(n) => received += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(closed_during_handshake(e)),
        }
        if let Err(e) = tls.process_new_packets() {
            // let the server know why (best effort: the alert rustls queued)
            let _ = tls.write_tls(&mut io);
            *again = connector.refused_resumption(&e);
            return Err(Error::Tls(describe(&e)));
        }
    }
    Ok(())
}

pub(crate) fn closed_during_handshake(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Error::Tls(format!(
            "the server closed the connection during the handshake ({e})"
        )),
        _ => Error::Io(e),
    }
}

/// True when the session was resumed (no certificate exchange) rather than
/// a full handshake.
pub(crate) fn resumed(tls: &ClientConnection) -> bool {
    matches!(tls.handshake_kind(), Some(rustls::HandshakeKind::Resumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_details_name_the_cause() {
        use rustls::Error as E;
        let d = |e: E| describe(&e);
        assert!(d(E::InvalidCertificate(CertificateError::UnknownIssuer)).contains("unknown CA"));
        assert!(
            d(E::InvalidCertificate(CertificateError::NotValidForName)).contains("name mismatch")
        );
        assert!(d(E::InvalidCertificate(CertificateError::Expired)).contains("expired certificate"));
        assert!(d(E::AlertReceived(AlertDescription::CertificateRequired))
            .contains("client certificate"));
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("cache.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("not a name").is_err());
        assert!(server_name("").is_err());
    }

    #[test]
    fn debug_output_holds_no_key() {
        let o = TlsOptions {
            key_pem: Some(b"-----BEGIN PRIVATE KEY-----secret".to_vec()),
            ..TlsOptions::default()
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("secret") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
