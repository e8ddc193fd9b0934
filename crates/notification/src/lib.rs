//! Notification: what partners are told. Rules follow every service's
//! events on the bus and raise notifications (a referral's outcome to the
//! referrer, invitations to invitees, plan started or ended to the child's
//! care team, record accesses to the owning local authority, missed
//! statutory deadlines to the local authority) as events in this service's
//! own log (stream `recipient-<ods>`). Partners subscribe over a
//! server-streaming RPC with a filter and a resume point, receive each
//! notification at least once and in order, and acknowledge what they have
//! handled; acknowledgements are events too, so a partner's place survives
//! restarts of either side.

mod derive;
mod projection;
mod rules;
mod service;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventlog::EventLog;
use service_core::clock::Clock;
use service_core::settings::Settings;
use service_core::{Quarantine, Watermark};

pub(crate) use crate::projection::Acks;
pub use crate::service::Notification;

pub const LOG: &str = contract::producers::NOTIFICATION;

/// The producers whose events raise notifications, beside the registry's
/// pods.
const SOURCES: [&str; 2] = [
    contract::producers::REFERRAL_INTAKE,
    contract::producers::CONFERENCE_SCHEDULER,
];

#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// How often missed deadlines are looked for.
    pub deadline_check: Duration,
    /// How many plan-registry pods run: each audits its own lookups, and
    /// each lookup is told to the child's local authority.
    pub registry_pods: u32,
    /// What day it is, for which deadlines are missed (the wall clock's
    /// unless a test fixes it).
    pub clock: Clock,
}

impl Options {
    /// The service with its log in `data_dir`, following one registry pod,
    /// set up as `settings` say: how `safeguard up` and the
    /// `notification-service` binary both build it.
    pub fn new(data_dir: impl Into<PathBuf>, settings: &Settings) -> Self {
        Options {
            data_dir: data_dir.into(),
            deadline_check: settings.deadline_check(),
            registry_pods: 1,
            clock: Clock::System,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the notification log: {0}")]
    Log(#[from] eventlog::Error),
    #[error("cannot rebuild acknowledgements from the log: {0}")]
    Projection(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

/// The stream of the notifications for the organisation `ods`.
pub(crate) fn recipient_stream(ods: &str) -> String {
    format!("{RECIPIENT_STREAM}{ods}")
}

/// The stream of `subscriber`'s acknowledgements for the organisation `ods`.
pub(crate) fn acknowledgement_stream(ods: &str, subscriber: &str) -> String {
    format!("{ACKNOWLEDGEMENT_STREAM}{ods}-{subscriber}")
}

const RECIPIENT_STREAM: &str = "recipient-";
const ACKNOWLEDGEMENT_STREAM: &str = "ack-";

/// The organisation a notification event is for, from its stream: its
/// NATS subjects carry it (`safeguard.notification.<ODS>.<Kind>`), so a
/// partner can be allowed its own and no one else's. The service's other
/// events (reads, refusals) are for no organisation.
pub fn addressee(envelope: &contract::events::v1::EventEnvelope) -> Option<String> {
    let stream = envelope.stream_id.as_str();
    let ods = match stream.strip_prefix(RECIPIENT_STREAM) {
        Some(ods) => ods,
        None => stream
            .strip_prefix(ACKNOWLEDGEMENT_STREAM)?
            .split('-')
            .next()?,
    };
    domain::OdsCode::parse(ods).ok().map(|ods| ods.to_string())
}

pub async fn open(options: Options, bus: &bus::Bus) -> Result<Notification, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_addressed_producer(LOG, log.clone(), addressee)
        .await?;
    let quarantine = Quarantine::open(&log, LOG, service_core::Health::default())?;
    let acks: Acks = Arc::default();
    let watermark = Watermark::new(LOG);
    service_core::projection::rebuild_and_follow(
        &log,
        LOG,
        quarantine.clone(),
        acks.clone(),
        watermark.clone(),
        projection::apply_ack,
    )
    .await
    .map_err(Error::Projection)?;
    let memory = Arc::new(Mutex::new(derive::Memory::default()));
    let registry = contract::producers::plan_registry_pods(options.registry_pods);
    for producer in SOURCES.map(str::to_owned).into_iter().chain(registry) {
        tokio::spawn(rules::follow_source(
            log.clone(),
            bus.clone(),
            producer,
            memory.clone(),
            quarantine.clone(),
        ));
    }
    tokio::spawn(rules::check_deadlines(
        log.clone(),
        memory,
        options.deadline_check,
        options.clock,
    ));
    Ok(Notification::new(
        log,
        acks,
        watermark,
        quarantine.health().clone(),
    ))
}
