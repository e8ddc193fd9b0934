//! The errors the log reports, each a case a caller can act on.

use crate::ExpectedVersion;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream was not at the version the caller expected: reload and retry.
    #[error("stream {stream} is at {}, expected {expected}", describe_version(*.actual))]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        /// The version of the stream's last event, `None` if it has none.
        actual: Option<u64>,
    },

    /// Some event ids of the batch were written before and some were not, or
    /// they were written to another stream: this is not a retry of one
    /// earlier append, so nothing is written.
    #[error("idempotency conflict: {reason}")]
    IdempotencyConflict { reason: String },

    /// The request itself is malformed; `field` names what is wrong.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// The stored log does not match itself at `position` (a record that does
    /// not decode, a broken hash chain, a missing or extra record or index
    /// entry). Every position before it was checked and is intact.
    #[error("corrupt record at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },

    /// A record was written in a format this build does not know.
    #[error(
        "record at position {position} has format version {version}, this build reads up to {supported}"
    )]
    UnsupportedFormat {
        position: u64,
        version: u8,
        supported: u8,
    },

    /// The disk or sled failed. After a failed write the log refuses further
    /// writes: what reached the disk is unknown until it is reopened.
    #[error("storage failure: {0}")]
    Storage(String),

    /// The log was closed while the request was in flight.
    #[error("the event log is closed")]
    Closed,
}

impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Self {
        Error::Storage(error.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Storage(error.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe_version(actual: Option<u64>) -> String {
    match actual {
        Some(version) => format!("version {version}"),
        None => "no stream".to_owned(),
    }
}
