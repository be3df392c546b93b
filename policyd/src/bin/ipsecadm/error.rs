//! Errors of ipsecadm and their exit codes (documented in `man/ipsecadm.8`).

use std::fmt;

/// Exit code: success.
pub(crate) const EXIT_OK: i32 = 0;
/// Exit code: bad command line.
pub(crate) const EXIT_USAGE: i32 = 1;
/// Exit code: the change does not validate, or the store or a file cannot be used.
pub(crate) const EXIT_STORE: i32 = 2;
/// Exit code: a service (policyd, ikd) is not available.
pub(crate) const EXIT_SERVICE: i32 = 3;
/// Exit code: the kernel refused a request or cannot be reached.
pub(crate) const EXIT_KERNEL: i32 = 4;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Error {
    /// Bad arguments (exit 1).
    Usage(String),
    /// Validation, store or file error (exit 2).
    Store(String),
    /// A service is not available (exit 3).
    Service(String),
    /// Kernel error (exit 4).
    Kernel(String),
}

impl Error {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Store(_) => EXIT_STORE,
            Self::Service(_) => EXIT_SERVICE,
            Self::Kernel(_) => EXIT_KERNEL,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) | Self::Store(m) | Self::Service(m) | Self::Kernel(m) => f.write_str(m),
        }
    }
}

impl From<ipsec_policy::StoreError> for Error {
    fn from(e: ipsec_policy::StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<ipsec_policy::FileError> for Error {
    fn from(e: ipsec_policy::FileError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<ipsec_policy::ValidationErrors> for Error {
    fn from(e: ipsec_policy::ValidationErrors) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<pfkey::Error> for Error {
    fn from(e: pfkey::Error) -> Self {
        Self::Kernel(format!("kernel: {e}"))
    }
}

impl From<ipsec_agent::Error> for Error {
    fn from(e: ipsec_agent::Error) -> Self {
        Self::Kernel(format!("kernel policy: {e}"))
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Shorthand for a usage error.
pub(crate) fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

/// Shorthand for a store/validation error.
pub(crate) fn store(msg: impl Into<String>) -> Error {
    Error::Store(msg.into())
}
