//! The child-protection domain, pure: no I/O, no async, no clock.
//!
//! Values that cannot be invalid once parsed (`NhsNumber`, `OdsCode`, `Date`),
//! the working-day calendar of England and Wales, the statutory clocks
//! computed from it, and the aggregates (referral, conference, plan) that
//! turn commands into events and enforce their invariants.

pub mod calendar;
pub mod clocks;
pub mod codes;
pub mod conference;
pub mod date;
pub mod error;
pub mod ids;
pub mod plan;
pub mod referral;

pub use crate::error::DomainError;
pub use crate::ids::{ChildId, IdError, LocalChildId, NhsNumber, OdsCode};
