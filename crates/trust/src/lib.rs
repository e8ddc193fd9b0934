//! Who is calling, proven: agency systems and services by the client
//! certificate they present over mutual TLS, people by the signed access
//! token each request carries. Nothing here decides what a caller may do;
//! it only establishes who the caller is, from verified credentials alone.

pub mod caller;
pub mod client;
pub mod config;
pub mod layer;
pub mod names;
pub mod realm;
pub mod token;

pub use caller::{Caller, Peer};
pub use config::{Config, Trust};
pub use layer::Authenticate;
pub use realm::Realm;
