//! The notification rules at work: each producer followed from its first
//! event (so what `derive` remembers is whole), notifications raised from
//! the rule's cursor on with ids derived from their cause, and missed
//! deadlines looked for on the clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::events::v1::EventEnvelope;
use contract::notification::v1 as wire;
use contract::records::AnyEvent;
use eventlog::{EventLog, ExpectedVersion, NewEvent};
use service_core::Quarantine;
use service_core::clock::Clock;
use service_core::event::Derived;
use service_core::follow::{Follower, Record};
use service_core::rule::{Applier, Effects, Rule};

use crate::{LOG, derive};

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
    (crate::recipient_stream(&recipient), vec![event])
}

/// Reads a producer from its first event, so what the rules remember
/// (invitees, open deadlines) is whole, but raises only from its cursor on;
/// the derived ids make anything raised twice harmless anyway.
pub(crate) async fn follow_source(
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
                // Raised before: remembered, not built again.
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
    )
    .writing_from(raised_up_to);
    follower.run(rule).await;
}

pub(crate) async fn check_deadlines(
    log: EventLog,
    memory: Arc<Mutex<derive::Memory>>,
    every: Duration,
    clock: Clock,
) {
    let mut ticks = service_core::ticks::UntilClosed::new(&log, every);
    while ticks.tick().await {
        let today = clock.today();
        let (missed, unreachable) = match memory.lock() {
            Ok(mut memory) => (memory.missed(today), memory.unreachable(today)),
            Err(_) => return,
        };
        // A council with plans and nowhere to call is told each day: the
        // id derives from the council and the day, so told once a day
        // however often this runs or restarts.
        for notification in unreachable {
            let council = notification
                .recipient
                .as_ref()
                .map(|council| council.ods_code.clone())
                .unwrap_or_default();
            let source = EventEnvelope {
                event_id: eventlog::EventId::derived(
                    eventlog::EventId::from_bytes([0; 16]),
                    &format!("contacts-missing:{council}:{today}"),
                    0,
                )
                .as_bytes()
                .to_vec(),
                ..EventEnvelope::default()
            };
            let Ok(derived) = Derived::from(&source, LOG, "contacts-missing") else {
                continue;
            };
            let (stream, events) = raised_event(&derived, "contacts-missing", 0, &notification);
            if let Err(eventlog::Error::Closed) =
                log.append(&stream, ExpectedVersion::Any, events).await
            {
                return;
            }
        }
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
