//! Errors: [`Error`] for the library API (opening, provisioning, serving) and
//! [`ApiError`], an HTTP status with a message, for the handlers.

use std::fmt;
use std::io;
use std::path::PathBuf;

use hyper::StatusCode;

/// Why the server could not open its data dir, start, or complete a request made
/// through the library API.
#[derive(Debug)]
pub enum Error {
    /// The configuration is unusable.
    Config(String),
    /// A file or directory in the data dir could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done (`create`, `read`, ...).
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Another server has the data dir open.
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// The store file could not be opened, read or written.
    Store {
        /// The store file.
        path: PathBuf,
        /// The store's error.
        reason: String,
    },
    /// The listener could not be bound.
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A request through the library API was refused (same reasons as over HTTP).
    Rejected(ApiError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid server configuration: {m}"),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::InUse { path } => write!(
                f,
                "{} is in use by another tern server; stop it or give this one another data dir",
                path.display()
            ),
            Error::Store { path, reason } => write!(
                f,
                "store {} failed: {reason}; restore the data dir from a backup or start with an empty one",
                path.display()
            ),
            Error::Listen { addr, source } => write!(
                f,
                "cannot listen on {addr}: {source}; choose another address or port"
            ),
            Error::Rejected(e) => write!(f, "{}", e.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Listen { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An HTTP error: a status and a message for the client, sent as JSON
/// `{"error": "<message>"}` (plus `details` when there is more than one reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Further reasons (for example, one per board for a refused bundle).
    pub details: Vec<String>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503 Service Unavailable: the store failed and the server needs a restart.
    pub fn store_failed(reason: &str) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server could not save this change ({reason}); nothing more is accepted until it is restarted"
            ),
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)?;
        for d in &self.details {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
