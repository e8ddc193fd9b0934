//! What every safeguard gRPC service shares, so each is consistent at its
//! boundary: validating wire types into domain types (`validate`), mapping
//! every failure to a precise gRPC status naming the field (`reject`), and
//! letting reads wait for the writes they must reflect (`consistency`),
//! writing what rules derive from other services' events with their cursor
//! (`rule`), saying when a service has stopped doing part of its work
//! (`health`), and following one request across services (`trace`).

pub mod consistency;
pub mod event;
pub mod health;
pub mod process;
pub mod projection;
pub mod reject;
pub mod rule;
pub mod trace;
pub mod validate;

pub use crate::consistency::Watermark;
pub use crate::health::Health;
pub use crate::reject::{Rejection, from_domain, from_log};
pub use crate::validate::Caller;
