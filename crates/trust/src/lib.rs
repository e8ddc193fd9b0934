//! Who is calling, proven: agency systems and services by the client
//! certificate they present over mutual TLS, people by the signed access
//! token each request carries, established from verified credentials
//! alone; and, in `policy`, the one table of what each may do.

pub mod caller;
pub mod channel;
pub mod client;
pub mod config;
pub mod https;
pub mod layer;
pub mod names;
pub mod pipe;
pub mod policy;
pub mod realm;
pub mod signing;
pub mod token;

pub use caller::{Caller, Peer};
pub use config::{Config, NatsClient, NatsConfig, Trust};
pub use layer::Authenticate;
pub use realm::Realm;
pub use signing::{EventKeys, EventSigner};
