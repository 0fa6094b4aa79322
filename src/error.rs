//! The one error type of the crate. Each variant maps onto exactly one failure
//! `mcrs_status` of the C ABI (see `ffi::status`), so the C caller and the Rust
//! caller see the same classification.

use std::io;

/// Everything that can make a command fail. Misses, `NOT_STORED` and `EXISTS`
/// are results, not errors: they are returned as values by [`crate::Client`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key is empty, too long (after the prefix), or holds a forbidden byte.
    /// Raised before any I/O.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An argument the protocol cannot carry safely (exptime past i32, value too
    /// large for the protocol, a bad server address, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server answered `CLIENT_ERROR <msg>`.
    #[error("CLIENT_ERROR {0}")]
    Client(String),
    /// The server answered `SERVER_ERROR <msg>`.
    #[error("SERVER_ERROR {0}")]
    Server(String),
    /// The server answered `ERROR` (it does not know the command).
    #[error("server does not know the command (ERROR)")]
    UnknownCommand,
    /// No connection could be made to a server.
    #[error("cannot connect to {detail}")]
    ConnectFailed {
        /// "address: reason"
        detail: String,
    },
    /// A socket error other than a timeout or an orderly close.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The operation did not complete within the configured timeout.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The server closed the connection before the response was complete.
    #[error("server closed the connection unexpectedly")]
    UnexpectedClose,
    /// The server sent bytes that are not a valid response to the request.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No server is configured, or none is alive.
    #[error("no server available")]
    NoServers,
    /// The key's server failed recently and is not retried before
    /// `retry_timeout` has passed (cluster only).
    #[error("server unavailable: {0}")]
    ServerDown(String),
    /// The request was cancelled before it completed (its event loop was
    /// freed, or the caller cancelled it).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The TLS handshake or certificate verification failed; the message
    /// says which.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused the credentials (memcached `-Y`), or demands
    /// authentication that was not configured.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The server announced a value larger than the configured maximum; it
    /// was not read.
    #[error("value too large: {0}")]
    ValueTooLarge(String),
}

// Results travel through every layer of the hot path: keep the error small.
const _: () = assert!(std::mem::size_of::<Error>() <= 32);

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True for failures that say something about the server's health (the
    /// connection is gone, the server stalls or talks nonsense), as opposed to
    /// a well-formed answer or a caller mistake. Used by `ignore_exc` and by
    /// the cluster's failure accounting.
    pub fn is_server_failure(&self) -> bool {
        matches!(
            self,
            Error::ConnectFailed { .. }
                | Error::Io(_)
                | Error::Timeout(_)
                | Error::UnexpectedClose
                | Error::Protocol(_)
                | Error::NoServers
                // a handshake that times out or fails: the server cannot be
                // used, and its keys must fail over like a refused connect's
                | Error::Tls(_)
        )
    }
}
