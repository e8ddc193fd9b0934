//! Records a service could not apply, kept so that one record cannot stop
//! it. Each is logged, held in the service's [`Health`] (served by
//! `ServiceStatus`), and written as a `RecordQuarantined` event to the
//! service's own log (stream [`STREAM`]) with an id derived from the record
//! and the consumer, so it is written once however often a restart meets
//! the record again, and is still known after a restart that does not.
//!
//! A message the bus refused (not provably its producer's record) is a
//! security event instead: `BusMessageRefused`, stream [`SECURITY_STREAM`],
//! counted in health; a gap repair that cannot make progress is a warning
//! in health while it lasts.

use contract::events::v1::{Actor, BusMessageRefused, RecordQuarantined, actor};
use eventlog::{EventId, EventLog, ExpectedVersion, NewEvent};
use prost::{Message, Name};

use crate::Health;
use crate::follow::Record;

/// The stream of a service's log that holds what it quarantined.
pub const STREAM: &str = "quarantine";

/// The stream of a service's log that holds security events.
pub const SECURITY_STREAM: &str = crate::audit::SECURITY;

/// How many quarantine events are read at a time at start.
const READ_CHUNK: usize = 1000;

/// Where a service records what it could not apply. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Quarantine {
    log: EventLog,
    /// The service's producer name: the actor of its quarantine events.
    service: String,
    health: Health,
}

impl Quarantine {
    /// The quarantine of `service`, whose log is `log`: what earlier runs
    /// quarantined is read from the log into `health` first.
    pub fn open(
        log: &EventLog,
        service: impl Into<String>,
        health: Health,
    ) -> Result<Self, eventlog::Error> {
        let mut from = 0;
        loop {
            let events = log.read_stream(STREAM, from, READ_CHUNK)?;
            for event in &events {
                let envelope = event.envelope()?;
                if let Ok(quarantined) = RecordQuarantined::decode(envelope.payload.as_slice()) {
                    health.quarantined(quarantined);
                }
            }
            if events.len() < READ_CHUNK {
                break;
            }
            from += events.len() as u64;
        }
        Ok(Quarantine {
            log: log.clone(),
            service: service.into(),
            health,
        })
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// `consumer` could not apply `record` because of `reason`: logs it,
    /// holds it in health and makes it durable before the consumer passes
    /// the record by.
    pub async fn record(
        &self,
        consumer: &str,
        record: Record<'_>,
        reason: &str,
    ) -> Result<(), eventlog::Error> {
        let event_id = &record.envelope.event_id;
        tracing::error!(
            consumer,
            producer = record.producer,
            position = record.position,
            content_type = record.envelope.content_type,
            reason,
            "a record cannot be applied: quarantined and passed by"
        );
        let quarantined = RecordQuarantined {
            consumer: consumer.to_owned(),
            producer: record.producer.to_owned(),
            position: record.position,
            event_id: event_id.clone(),
            content_type: record.envelope.content_type.clone(),
            reason: reason.to_owned(),
            quarantined_at: Some(std::time::SystemTime::now().into()),
        };
        let source = EventId::from_slice(event_id).unwrap_or(EventId::from_bytes([0; 16]));
        let purpose = format!(
            "quarantine:{consumer}:{}:{}",
            record.producer, record.position
        );
        let event = NewEvent {
            event_id: EventId::derived(source, &purpose, 0),
            causation_id: event_id.clone(),
            correlation_id: record.envelope.correlation_id.clone(),
            traceparent: crate::trace::follow(&record.envelope.traceparent, "quarantine"),
            actor: Some(Actor {
                kind: Some(actor::Kind::System(self.service.clone())),
            }),
            ..NewEvent::new(RecordQuarantined::full_name(), quarantined.encode_to_vec())
        };
        self.log
            .append(STREAM, ExpectedVersion::Any, vec![event])
            .await?;
        self.health.quarantined(quarantined);
        Ok(())
    }
}

impl Quarantine {
    /// Records what `consumer`'s bus subscription reports, for as long as
    /// it reports: each refused message as a security event in the log and
    /// a count in health, a stuck repair as a warning in health.
    pub async fn keep_alarms(self, consumer: String, alarms: bus::Alarms) {
        let bus::Alarms {
            mut refused,
            mut stalled,
        } = alarms;
        let stalls = {
            let health = self.health.clone();
            let consumer = consumer.clone();
            async move {
                while stalled.changed().await.is_ok() {
                    let now = stalled.borrow_and_update().clone();
                    health.warn(&consumer, now);
                }
            }
        };
        let refusals = async {
            while let Some(message) = refused.recv().await {
                self.health.refused_bus_message();
                if let Err(error) = self.record_refused(&consumer, message).await {
                    tracing::error!(%error, consumer, "cannot record a refused bus message");
                }
            }
        };
        tokio::join!(stalls, refusals);
    }

    async fn record_refused(
        &self,
        consumer: &str,
        message: bus::Refused,
    ) -> Result<(), eventlog::Error> {
        let refused = BusMessageRefused {
            consumer: consumer.to_owned(),
            producer: message.producer,
            position: message.position.unwrap_or_default(),
            reason: message.reason,
            subject: message.subject,
            stream_sequence: message.stream_sequence,
            refused_at: Some(std::time::SystemTime::now().into()),
        };
        // Once per message on the stream, however often a consumer made
        // again meets it.
        let purpose = format!(
            "bus-refused:{consumer}:{}:{}:{}",
            refused.producer, refused.stream_sequence, refused.position
        );
        let event = NewEvent {
            event_id: EventId::derived(EventId::from_bytes([0; 16]), &purpose, 0),
            actor: Some(Actor {
                kind: Some(actor::Kind::System(self.service.clone())),
            }),
            ..NewEvent::new(BusMessageRefused::full_name(), refused.encode_to_vec())
        };
        self.log
            .append(SECURITY_STREAM, ExpectedVersion::Any, vec![event])
            .await
            .map(|_| ())
    }
}
