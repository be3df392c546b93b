//! The crate's errors: [`DecodeError`] for bytes that are not a valid frame or message,
//! [`Error`] for everything a connection can meet.

use std::path::PathBuf;

use crate::message::ErrorCode;

/// Why octets are not a frame holding a message (never a panic).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix is zero.
    #[error("empty control frame")]
    Empty,
    /// The length prefix exceeds [`crate::MAX_FRAME`].
    #[error("control frame of {len} octets exceeds the limit of {max}")]
    TooLong {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not JSON of the expected message shape.
    #[error("malformed control message: {0}")]
    Json(#[from] serde_json::Error),
}

/// A control-channel failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes that are not a frame or message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A message could not be encoded (only if it exceeds the frame limit).
    #[error("control message of {len} octets exceeds the frame limit")]
    Encode {
        /// Encoded length.
        len: usize,
    },
    /// Reading or writing the socket failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before a whole frame arrived.
    #[error("control connection closed by the peer")]
    Closed,
    /// Connecting to a socket path failed.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Creating the socket directory or binding the socket failed.
    #[error("cannot listen on {path}: {reason}")]
    Listen {
        /// The socket or its directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another live server already answers on the socket path.
    #[error("{0} is in use by another running daemon")]
    InUse(PathBuf),
    /// The peer's user is not allowed.
    #[error("control connection from uid {uid} refused (allowed: {allowed:?})")]
    Credentials {
        /// The peer's uid.
        uid: u32,
        /// The allowed uids.
        allowed: Vec<u32>,
    },
    /// No common protocol version.
    #[error("no common control protocol version: we speak {ours:?}, the peer {theirs:?}")]
    Version {
        /// Our range.
        ours: (u16, u16),
        /// The peer's range (or its only version).
        theirs: (u16, u16),
    },
    /// The peer answered with an error.
    #[error("the peer refused: {code}: {message}")]
    Refused {
        /// Its code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The peer sent a valid message that is not the one the protocol expects here.
    #[error("unexpected control message: expected {expected}, got {got}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// The `type` that arrived.
        got: String,
    },
}
