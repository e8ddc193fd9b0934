//! Every way a request fails, mapped in one place to a small set of gRPC
//! codes, with a message that names the field or the thing that is wrong.

use domain::DomainError;
use tonic::{Code, Status};

/// A failed request, as the caller will see it.
pub type Rejection = Status;

pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

pub fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {id} does not exist"))
}

pub fn denied(reason: impl std::fmt::Display) -> Status {
    Status::permission_denied(reason.to_string())
}

/// A domain refusal: a bad value is INVALID_ARGUMENT, the wrong moment is
/// FAILED_PRECONDITION.
pub fn from_domain(error: DomainError) -> Status {
    match error {
        DomainError::Invalid { field, reason } => invalid(field, reason),
        DomainError::FailedPrecondition { subject, reason } => {
            Status::failed_precondition(format!("{subject}: {reason}"))
        }
    }
}

/// A log failure. A lost race (wrong expected version) is ABORTED: the
/// caller may retry. Corruption and storage failures are INTERNAL and are
/// logged here, since the caller can do nothing about them.
pub fn from_log(error: eventlog::Error) -> Status {
    match error {
        eventlog::Error::WrongExpectedVersion { .. } => Status::new(
            Code::Aborted,
            format!("{error}: another change got there first, retry"),
        ),
        eventlog::Error::IdempotencyConflict { .. } => Status::already_exists(error.to_string()),
        eventlog::Error::InvalidArgument { field, reason } => invalid(field, reason),
        eventlog::Error::Closed => Status::unavailable("the service is shutting down"),
        other => internal("the event log", other),
    }
}

/// A failure inside the service (storage, a view that cannot be read, a
/// bug): logged here with its cause, for the operator; the caller learns
/// only what failed, never the internals.
pub fn internal(what: &str, cause: impl std::fmt::Display) -> Status {
    tracing::error!(what, %cause, "internal failure");
    Status::internal(format!("{what} failed; the operator has been told"))
}
