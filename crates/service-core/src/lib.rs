//! What every safeguard gRPC service shares, so each is consistent at its
//! boundary: validating wire types into domain types (`validate`), mapping
//! every failure to a precise gRPC status naming the field (`reject`), and
//! letting reads wait for the writes they must reflect (`consistency`),
//! following a producer's records with one loop that no single record can
//! stop (`follow`, `projection`, `quarantine`), writing what rules derive
//! from other services' events with their cursor (`rule`), saying when a
//! service has stopped doing part of its work and what it could not apply
//! (`health`, `status`), and following one request across services
//! (`trace`).

pub mod audit;
pub mod checkpoint;
pub mod clock;
pub mod codes;
pub mod connection;
pub mod consistency;
pub mod event;
pub mod follow;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod process;
/// Who may call what: the one access policy (`trust::policy`).
pub use trust::policy;
pub mod projection;
pub mod quarantine;
pub mod reject;
pub mod rule;
pub mod settings;
pub mod status;
pub mod ticks;
pub mod trace;
pub mod validate;

pub use crate::consistency::Watermark;
pub use crate::health::Health;
pub use crate::quarantine::Quarantine;
pub use crate::reject::{Rejection, from_domain, from_log};
pub use crate::validate::Caller;
