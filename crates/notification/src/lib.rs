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
mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use contract::events::v1::EventEnvelope;
use contract::notification::v1 as wire;
use contract::records::{AnyEvent, NotificationEvent};
use eventlog::{EventLog, ExpectedVersion, NewEvent};
use service_core::clock::Clock;
use service_core::event::Derived;
use service_core::follow::{Follower, Record};
use service_core::rule::{Applier, Effects, Rule};
use service_core::settings::Settings;
use service_core::{Quarantine, Watermark};

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

/// Acknowledged sequence by (recipient ODS code, subscriber name).
pub(crate) type Acks = Arc<RwLock<HashMap<(String, String), u64>>>;

pub async fn open(options: Options, bus: &bus::Bus) -> Result<Notification, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(LOG, log.clone()).await?;
    let quarantine = Quarantine::open(&log, LOG, service_core::Health::default())?;
    let acks: Acks = Arc::default();
    let watermark = Watermark::new(LOG);
    service_core::projection::rebuild_and_follow(
        &log,
        LOG,
        quarantine.clone(),
        acks.clone(),
        watermark.clone(),
        apply_ack,
    )
    .await
    .map_err(Error::Projection)?;
    let memory = Arc::new(Mutex::new(derive::Memory::default()));
    let registry = contract::producers::plan_registry_pods(options.registry_pods);
    for producer in SOURCES.map(str::to_owned).into_iter().chain(registry) {
        tokio::spawn(follow_source(
            log.clone(),
            bus.clone(),
            producer,
            memory.clone(),
            quarantine.clone(),
        ));
    }
    tokio::spawn(check_deadlines(
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

/// How far each subscriber has acknowledged: the highest sequence each
/// acknowledgement names.
fn apply_ack(
    acks: &mut HashMap<(String, String), u64>,
    _: Record<'_>,
    event: NotificationEvent,
) -> Result<(), String> {
    if let NotificationEvent::Acknowledged(ack) = event {
        let place = acks
            .entry((ack.recipient_ods_code, ack.subscriber))
            .or_default();
        *place = (*place).max(ack.sequence);
    }
    Ok(())
}

/// The event that raises `notification`, the `index`-th that `derived`
/// comes to for `purpose`, in its recipient's stream.
fn raised_event(
    derived: &Derived<'_>,
    purpose: &str,
    index: u32,
    notification: &wire::NotificationRaised,
) -> (String, Vec<NewEvent>) {
    let recipient = notification
        .recipient
        .as_ref()
        .map(|r| r.ods_code.clone())
        .unwrap_or_default();
    let event = derived.event(purpose, index, notification);
    (format!("recipient-{recipient}"), vec![event])
}

/// Reads a producer from its first event, so what the rules remember
/// (invitees, open deadlines) is whole, but raises only from its cursor on;
/// the derived ids make anything raised twice harmless anyway.
async fn follow_source(
    log: EventLog,
    bus: bus::Bus,
    producer: String,
    memory: Arc<Mutex<derive::Memory>>,
    quarantine: Quarantine,
) {
    let cursor = format!("rule:{producer}");
    let what = format!("the notification rules following {producer}");
    let health = quarantine.health().clone();
    let raised_up_to = match log.cursor(&cursor) {
        Ok(position) => position.unwrap_or_default(),
        Err(error) => return health.broken(&what, error),
    };
    let consumer = format!("{LOG}.rules.{producer}");
    let Ok(follower) = Follower::bus(what, &bus, &consumer, producer, 0, quarantine).await else {
        return;
    };
    let applier = Applier::start(log, cursor, health, |_, _| async {});
    let rule = Rule::new(
        applier,
        move |record: Record<'_>, event: AnyEvent| -> Result<Effects, String> {
            let notifications = memory
                .lock()
                .map_err(|_| "the rules' memory was poisoned".to_owned())?
                .derive(record, &event);
            if record.position < raised_up_to {
                return Ok(Vec::new());
            }
            let derived = Derived::from(record.envelope, LOG, "notification")?;
            Ok(notifications
                .iter()
                .enumerate()
                .map(|(index, notification)| {
                    raised_event(&derived, "notification", index as u32, notification)
                })
                .collect())
        },
    );
    follower.run(rule).await;
}

async fn check_deadlines(
    log: EventLog,
    memory: Arc<Mutex<derive::Memory>>,
    every: Duration,
    clock: Clock,
) {
    // Following the log's head tells this task when the log closes, so it
    // lets go of it at once instead of at its next check.
    let mut closing = log.subscribe(log.head());
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            next = closing.next() => match next {
                Ok(_) => continue,
                Err(_) => return,
            },
        }
        let missed = match memory.lock() {
            Ok(mut memory) => memory.missed(clock.today()),
            Err(_) => return,
        };
        for deadline in missed {
            // Time, not a request, raises it: a trace of its own.
            let source = EventEnvelope {
                event_id: deadline.source_event.clone(),
                ..EventEnvelope::default()
            };
            let Ok(derived) = Derived::from(&source, LOG, "deadline-missed") else {
                continue;
            };
            let (stream, events) =
                raised_event(&derived, "deadline-missed", 0, &deadline.notification);
            loop {
                match log
                    .append(&stream, ExpectedVersion::Any, events.clone())
                    .await
                {
                    Ok(_) => break,
                    Err(eventlog::Error::Closed) => return,
                    Err(error) => {
                        tracing::warn!(%error, "could not raise a missed deadline; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }
}
