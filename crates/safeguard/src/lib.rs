//! The one command: `safeguard up` runs the whole backbone (referral intake,
//! conference scheduler, plan registry, notification) in one process on one
//! gRPC port, over the in-process bus, with embedded storage under one data
//! directory; the other subcommands talk to a running backbone.

pub mod agencies;
pub mod backbone;
pub mod client;
pub mod commands;
pub mod demo;
