//! What a handler answers when a record was not processed.

use std::fmt;

/// Why a record was not processed; decides what the trigger does next.
///
/// ```
/// use trigger_kafka_sdk::Error;
///
/// let e = Error::retryable(format!("database busy: {}", "locked"));
/// assert!(e.is_retryable());
/// assert_eq!(e.to_string(), "retryable: database busy: locked");
///
/// // `?` on a serde_json error makes it permanent: the payload will never parse.
/// fn parse(bytes: &[u8]) -> Result<serde_json::Value, Error> {
///     Ok(serde_json::from_slice(bytes)?)
/// }
/// assert!(matches!(parse(b"{nope"), Err(Error::Permanent(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The record itself is bad and will never succeed: the trigger
    /// dead-letters it at once, with this message in `kafka_dlt_error`.
    Permanent(String),
    /// A transient failure (a database busy, a dependency down): the trigger
    /// retries the record with exponential backoff, holding its partition.
    Retryable(String),
}

impl Error {
    pub fn permanent(message: impl fmt::Display) -> Self {
        Error::Permanent(message.to_string())
    }

    pub fn retryable(message: impl fmt::Display) -> Self {
        Error::Retryable(message.to_string())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retryable(_))
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Permanent(m) | Error::Retryable(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Permanent(m) => write!(f, "permanent: {m}"),
            Error::Retryable(m) => write!(f, "retryable: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A value that is not the expected JSON never will be.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::permanent(format!("invalid JSON: {e}"))
    }
}

/// A value that is not UTF-8 never will be.
impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error::permanent(format!("not UTF-8: {e}"))
    }
}
