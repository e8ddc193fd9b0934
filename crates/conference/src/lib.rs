//! The conference scheduler: child protection conferences from their
//! statutory due date to their outcome, over gRPC.
//!
//! Conferences are created by request, and by two rules that follow events
//! on the bus: a section 47 enquiry that concludes a conference is needed
//! requests an initial conference due 15 working days after the latest
//! strategy discussion; an outcome that starts or continues a plan requests
//! the next review (3 months after the initial conference, then 6 months
//! after each review). Every fact is an event in this service's own log
//! (stream `conference-<id>`), published as producer [`LOG`].

mod convert;
mod projection;
mod rules;
mod service;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use domain::calendar::Calendar;
use domain::conference::QuorumRule;
use eventlog::EventLog;
use service_core::Watermark;
use service_core::clock::Clock;
use service_core::settings::Settings;

pub use crate::service::ConferenceScheduler;

pub const LOG: &str = contract::producers::CONFERENCE_SCHEDULER;

#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub calendar: Calendar,
    pub quorum: QuorumRule,
    /// What day it is (the wall clock's unless a test fixes it).
    pub clock: Clock,
}

impl Options {
    /// The service with its log in `data_dir`, set up as `settings` say:
    /// how `safeguard up` and the `conference-scheduler` binary both build
    /// it.
    pub fn new(data_dir: impl Into<PathBuf>, settings: &Settings) -> Result<Self, String> {
        Ok(Options {
            data_dir: data_dir.into(),
            calendar: settings.calendar()?,
            quorum: settings.quorum(),
            clock: Clock::System,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the conference log: {0}")]
    Log(#[from] eventlog::Error),
    #[error("cannot rebuild conferences from the log: {0}")]
    Projection(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

/// Opens the service: its log, the projection rebuilt from it and kept
/// current, its rules following the bus, and its registration as a producer.
pub async fn open(options: Options, bus: &bus::Bus) -> Result<ConferenceScheduler, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(LOG, log.clone()).await?;
    let quarantine = service_core::Quarantine::open(&log, LOG, service_core::Health::default())?;
    let projection = Arc::new(RwLock::new(projection::Projection::default()));
    let watermark = Watermark::new(LOG);
    service_core::projection::rebuild_and_follow(
        &log,
        LOG,
        quarantine.clone(),
        projection.clone(),
        watermark.clone(),
        projection::Projection::apply,
    )
    .await
    .map_err(Error::Projection)?;
    let service = ConferenceScheduler::new(
        log,
        projection,
        watermark,
        options.calendar,
        options.quorum,
        options.clock,
        quarantine,
    );
    rules::start(&service, bus);
    Ok(service)
}
