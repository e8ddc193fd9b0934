//! Black-box tests of the event log: real sled files in a temp directory,
//! spoken to only through the public API (and, for tampering, sled itself).

mod append;
mod crash;
mod golden;
mod model;
mod subscribe;
mod support;
mod tamper;
