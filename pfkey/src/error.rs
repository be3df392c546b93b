//! The error type of the kernel interface layer.
//!
//! [`Error`] covers every backend: socket failures, errors the kernel reports for a request
//! (with the errno, so callers can tell "exists" from "not found"), malformed kernel messages
//! ([`DecodeError`]), and requests a backend cannot express.

use std::io;

/// A kernel message could not be decoded. Decoders return this, never panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before the structure does.
    #[error("{what}: truncated (need {need} octets, have {have})")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Octets needed.
        need: usize,
        /// Octets available.
        have: usize,
    },
    /// A length field is inconsistent with the structure or the enclosing message.
    #[error("{what}: bad length {len}")]
    BadLength {
        /// What was being decoded.
        what: &'static str,
        /// The offending length.
        len: usize,
    },
    /// A field holds a value this decoder cannot represent.
    #[error("{what}: unsupported value {value}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A required part of a message is missing.
    #[error("{0}: missing")]
    Missing(&'static str),
    /// The same extension or attribute appears twice where only one is allowed.
    #[error("{0}: duplicated")]
    Duplicate(&'static str),
}

/// Errors of the kernel interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The kernel rejected a request.
    #[error("{op}: kernel error {errno} ({})", io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The request.
        op: &'static str,
        /// Positive errno.
        errno: i32,
    },
    /// A kernel message was malformed.
    #[error("decoding kernel message: {0}")]
    Decode(#[from] DecodeError),
    /// The backend cannot express the request (for example marks over PF_KEY).
    #[error("not supported by the {backend} backend: {what}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// What cannot be expressed.
        what: &'static str,
    },
    /// The request is invalid before it reaches the kernel (wrong key length, mixed families).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No answer from the kernel within the allotted time.
    #[error("{0}: timed out waiting for the kernel")]
    Timeout(&'static str),
}

impl Error {
    /// The kernel errno, if the kernel rejected the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object does not exist (ENOENT or ESRCH, depending on the interface).
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT) | Some(libc::ESRCH))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
