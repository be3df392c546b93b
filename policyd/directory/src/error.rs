//! The directory layer's one error type.

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The configuration file is missing, unreadable or invalid.
    #[error("directory configuration {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory cannot be reached, or bind or search failed (the cached copy applies).
    #[error("directory {url}: {reason}")]
    Unreachable {
        /// The server.
        url: String,
        /// What failed.
        reason: String,
    },
    /// An LDAP operation returned an error result.
    #[error("directory operation {op} on {dn:?}: {reason}")]
    Operation {
        /// What was done.
        op: &'static str,
        /// On which entry.
        dn: String,
        /// The server's answer.
        reason: String,
    },
    /// A directory entry does not map to the policy model.
    #[error("malformed directory entry {dn:?}: {reason}")]
    Malformed {
        /// The entry.
        dn: String,
        /// What is wrong.
        reason: String,
    },
    /// The entries read do not form the policy as one publish wrote it (a publish in
    /// progress, or a component changed by hand): the last good policy stays.
    #[error("directory policy {dn:?} is inconsistent: {reason}")]
    Inconsistent {
        /// The policy entry.
        dn: String,
        /// Which component differs.
        reason: String,
    },
    /// The downloaded policy does not validate as a whole.
    #[error("directory policy {dn:?} is invalid: {reason}")]
    Invalid {
        /// The policy entry.
        dn: String,
        /// The validation errors.
        reason: String,
    },
    /// A policy to publish is not usable (unknown, redacted keys, invalid).
    #[error("cannot publish: {0}")]
    Publish(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, DirectoryError>;

pub(crate) fn malformed(dn: &str, reason: impl Into<String>) -> DirectoryError {
    DirectoryError::Malformed {
        dn: dn.to_owned(),
        reason: reason.into(),
    }
}
