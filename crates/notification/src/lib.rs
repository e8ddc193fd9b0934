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

use contract::notification::v1 as wire;
use eventlog::{EventId, EventLog, ExpectedVersion, NewEvent};
use prost::{Message, Name};
use service_core::Watermark;

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
}

impl Options {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            deadline_check: Duration::from_secs(60),
            registry_pods: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the notification log: {0}")]
    Log(#[from] eventlog::Error),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

/// Acknowledged sequence by (recipient ODS code, subscriber name).
pub(crate) type Acks = Arc<RwLock<HashMap<(String, String), u64>>>;

pub async fn open(options: Options, bus: &bus::Bus) -> Result<Notification, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(LOG, log.clone()).await?;
    let acks: Acks = Arc::default();
    let watermark = Watermark::new(LOG);
    let mut subscription = log.subscribe(0);
    while subscription.position() < log.head() {
        let event = subscription.next().await?;
        apply_ack(&acks, &event);
    }
    watermark.advance_to(subscription.position());
    tokio::spawn(follow_acks(subscription, acks.clone(), watermark.clone()));
    let memory = Arc::new(Mutex::new(derive::Memory::default()));
    let health = service_core::Health::default();
    let registry = contract::producers::plan_registry_pods(options.registry_pods);
    for producer in SOURCES.map(str::to_owned).into_iter().chain(registry) {
        tokio::spawn(follow_source(
            log.clone(),
            bus.clone(),
            producer,
            memory.clone(),
            health.clone(),
        ));
    }
    tokio::spawn(check_deadlines(log.clone(), memory, options.deadline_check));
    Ok(Notification::new(log, acks, watermark, health))
}

fn apply_ack(acks: &Acks, event: &eventlog::RecordedEvent) {
    let Ok(envelope) = event.envelope() else {
        return;
    };
    if envelope.content_type != wire::SubscriberAcknowledged::full_name() {
        return;
    }
    let Ok(ack) = wire::SubscriberAcknowledged::decode(envelope.payload.as_slice()) else {
        return;
    };
    if let Ok(mut acks) = acks.write() {
        let place = acks
            .entry((ack.recipient_ods_code, ack.subscriber))
            .or_default();
        *place = (*place).max(ack.sequence);
    }
}

async fn follow_acks(mut subscription: eventlog::Subscription, acks: Acks, watermark: Watermark) {
    while let Ok(event) = subscription.next().await {
        apply_ack(&acks, &event);
        watermark.advance_to(event.position() + 1);
    }
}

/// The event that raises `notification`, in its recipient's stream.
fn raised_event(
    id: EventId,
    source: &[u8],
    traceparent: String,
    notification: &wire::NotificationRaised,
) -> (String, Vec<NewEvent>) {
    let recipient = notification
        .recipient
        .as_ref()
        .map(|r| r.ods_code.clone())
        .unwrap_or_default();
    let event = NewEvent {
        event_id: id,
        causation_id: source.to_vec(),
        traceparent,
        actor: Some(contract::events::v1::Actor {
            kind: Some(contract::events::v1::actor::Kind::System(LOG.to_owned())),
        }),
        ..NewEvent::new(
            wire::NotificationRaised::full_name(),
            notification.encode_to_vec(),
        )
    };
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
    health: service_core::Health,
) {
    let cursor = format!("rule:{producer}");
    let what = format!("the notification rules following {producer}");
    let raised_up_to = match log.cursor(&cursor) {
        Ok(position) => position.unwrap_or_default(),
        Err(error) => return health.broken(&what, error),
    };
    let mut subscription = match bus
        .subscribe(&format!("{LOG}.rules.{producer}"), &producer, 0)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => return health.broken(&what, error),
    };
    let applier = service_core::rule::Applier::start(log, cursor, health.clone(), |_, _| async {});
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => return health.broken(&what, error),
        };
        let position = delivery.event.position();
        let envelope = match delivery.event.envelope() {
            Ok(envelope) => envelope,
            Err(error) => return health.broken(&what, error),
        };
        let notifications = match memory.lock() {
            Ok(mut memory) => memory.derive(&producer, position, &envelope),
            Err(_) => return health.broken(&what, "its memory was poisoned"),
        };
        if position < raised_up_to {
            continue;
        }
        let Some(source) = EventId::from_slice(&envelope.event_id) else {
            return health.broken(&what, format!("the event at {position} has no id"));
        };
        let traceparent = service_core::trace::follow(&envelope.traceparent, "notification");
        let effects = notifications
            .iter()
            .enumerate()
            .map(|(index, notification)| {
                raised_event(
                    EventId::derived(source, "notification", index as u32),
                    &envelope.event_id,
                    traceparent.clone(),
                    notification,
                )
            })
            .collect();
        if applier.apply(position, effects).await.is_err() {
            return;
        }
    }
}

async fn check_deadlines(log: EventLog, memory: Arc<Mutex<derive::Memory>>, every: Duration) {
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
            Ok(mut memory) => memory.missed(service_core::validate::today()),
            Err(_) => return,
        };
        for deadline in missed {
            let Some(source) = EventId::from_slice(&deadline.source_event) else {
                continue;
            };
            let id = EventId::derived(source, "deadline-missed", 0);
            // Time, not a request, raises it: a trace of its own.
            let traceparent = service_core::trace::follow("", "deadline-missed");
            let (stream, events) = raised_event(
                id,
                &deadline.source_event,
                traceparent,
                &deadline.notification,
            );
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
