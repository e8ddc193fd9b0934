//! Why the domain refuses a command: a bad value, or the wrong moment.

/// A refusal, naming the field or the thing that is wrong; the service maps
/// `Invalid` to INVALID_ARGUMENT and `FailedPrecondition` to
/// FAILED_PRECONDITION.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{subject}: {reason}")]
    FailedPrecondition {
        subject: &'static str,
        reason: String,
    },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: &str) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.to_owned(),
        }
    }

    pub fn precondition(subject: &'static str, reason: &str) -> Self {
        DomainError::FailedPrecondition {
            subject,
            reason: reason.to_owned(),
        }
    }
}
