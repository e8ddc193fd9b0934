//! The wire contract of safeguard: Rust types generated from `proto/`.
//!
//! Every package `safeguard.<area>.v1` in `proto/` appears here as
//! `contract::<area>::v1`. Nothing but generated code and tiny conversions
//! lives in this crate, so that what goes over the wire is decided in one
//! place: the `.proto` files.

/// `safeguard.common.v1`: identities, organisations, dates.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("safeguard.common.v1");
    }
}

/// `safeguard.events.v1`: the envelope every domain event travels in.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("safeguard.events.v1");
    }
}
