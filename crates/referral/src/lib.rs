//! Referral intake: the MASH front door over gRPC.
//!
//! A referral arrives (`SubmitReferral`, idempotent by the client's key), is
//! decided within a working day (`RecordDecision`), may lead to strategy
//! discussions and a section 47 enquiry, and ends with or without a request
//! for an initial conference. Every fact is an event in this service's own
//! log (stream `referral-<id>`), published on the bus as producer
//! [`LOG`]; the state it answers from is a projection of that log.

mod convert;
mod projection;
mod service;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use domain::calendar::Calendar;
use eventlog::EventLog;
use service_core::Watermark;
use service_core::clock::Clock;
use service_core::settings::Settings;

pub use crate::service::ReferralIntake;

/// This service's name on the bus and in consistency tokens.
pub const LOG: &str = contract::producers::REFERRAL_INTAKE;

#[derive(Debug, Clone)]
pub struct Options {
    /// Where this service's log lives; no other service reads it.
    pub data_dir: PathBuf,
    pub calendar: Calendar,
    /// What day it is (the wall clock's unless a test fixes it).
    pub clock: Clock,
}

impl Options {
    /// The service with its log in `data_dir`, set up as `settings` say:
    /// how `safeguard up` and the `referral-intake` binary both build it.
    pub fn new(data_dir: impl Into<PathBuf>, settings: &Settings) -> Result<Self, String> {
        Ok(Options {
            data_dir: data_dir.into(),
            calendar: settings.calendar()?,
            clock: Clock::System,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the referral log: {0}")]
    Log(#[from] eventlog::Error),
    #[error("cannot rebuild referrals from the log: {0}")]
    Projection(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

/// Opens the service: its log, the projection rebuilt from it, a task that
/// keeps the projection current, and its registration as a producer.
pub async fn open(options: Options, bus: &bus::Bus) -> Result<ReferralIntake, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(LOG, log.clone()).await?;
    let health = service_core::Health::default();
    let quarantine = service_core::Quarantine::open(&log, LOG, health.clone())?;
    let projection = Arc::new(RwLock::new(projection::Projection::default()));
    let watermark = Watermark::new(LOG);
    service_core::projection::rebuild_and_follow(
        &log,
        LOG,
        quarantine,
        projection.clone(),
        watermark.clone(),
        projection::Projection::apply,
    )
    .await
    .map_err(Error::Projection)?;
    Ok(ReferralIntake::new(
        log,
        projection,
        watermark,
        options.calendar,
        options.clock,
        health,
    ))
}
