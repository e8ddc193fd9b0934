//! The one loop every projection, rule and follower runs: take a producer's
//! records in order (from a service's own log, or from the bus), decode
//! each once into the producer's event enum, hand it to a [`Handler`], and
//! advance a [`Watermark`]. A record that cannot be decoded or applied is
//! quarantined ([`Quarantine`]) and passed by, so no single record can stop
//! a service; a failure of the log or the bus stops the loop and turns the
//! service's health NOT_SERVING.

use std::future::Future;

use contract::events::v1::EventEnvelope;
use contract::records::Records;
use eventlog::{EventLog, RecordedEvent};

use crate::{Health, Quarantine, Watermark};

/// One record as a handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Whose log it is in.
    pub producer: &'a str,
    pub position: u64,
    pub envelope: &'a EventEnvelope,
}

/// Why a handler did not apply a record.
#[derive(Debug)]
pub enum Failure {
    /// This record cannot be applied: it is quarantined and passed by.
    Unapplied(String),
    /// The handler cannot go on (its log failed): the loop stops for good.
    Stopped(String),
    /// The handler's log is closing: the service is stopping.
    Closing,
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Unapplied(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Self {
        Failure::Unapplied(reason.to_owned())
    }
}

/// What a follower does with each record of a producer whose events are `E`.
pub trait Handler<E>: Send {
    /// Applies one record.
    fn handle(
        &mut self,
        record: Record<'_>,
        event: E,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// A record passed by: of a type this build does not know, or
    /// quarantined. A rule moves its cursor past it here.
    fn pass(&mut self, record: Record<'_>) -> impl Future<Output = Result<(), Failure>> + Send {
        let _ = record;
        async { Ok(()) }
    }
}

/// A handler that applies each record at once, without waiting for
/// anything: a projection or a view.
#[derive(Debug)]
pub struct Apply<F>(pub F);

impl<E, F> Handler<E> for Apply<F>
where
    E: Send,
    F: FnMut(Record<'_>, E) -> Result<(), String> + Send,
{
    async fn handle(&mut self, record: Record<'_>, event: E) -> Result<(), Failure> {
        (self.0)(record, event).map_err(Failure::Unapplied)
    }
}

/// Applies `events` in order as a follower would, the n-th at position
/// and stream version n of `producer`'s log, and says what each came to:
/// how the table tests of a view or a rule feed it without a log.
pub fn apply_in_order<E>(
    producer: &str,
    events: Vec<E>,
    mut apply: impl FnMut(Record<'_>, E) -> Result<(), String>,
) -> Vec<Result<(), String>> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let envelope = EventEnvelope {
                stream_version: index as u64,
                global_position: index as u64,
                ..EventEnvelope::default()
            };
            let record = Record {
                producer,
                position: index as u64,
                envelope: &envelope,
            };
            apply(record, event)
        })
        .collect()
}

/// Where a follower's records come from.
#[derive(Debug)]
enum Source {
    Log(eventlog::Subscription),
    Bus(bus::BusSubscription),
}

/// Why the loop ended.
enum Ended {
    /// The log or bus is closing: the service is stopping.
    Closed,
    Failed(String),
}

impl Source {
    async fn next(&mut self) -> Result<RecordedEvent, Ended> {
        match self {
            Source::Log(subscription) => subscription.next().await.map_err(|error| match error {
                eventlog::Error::Closed => Ended::Closed,
                other => Ended::Failed(other.to_string()),
            }),
            Source::Bus(subscription) => match subscription.next().await {
                Ok(delivery) => Ok(delivery.event),
                Err(bus::Error::Closed) => Err(Ended::Closed),
                Err(error) => Err(Ended::Failed(error.to_string())),
            },
        }
    }
}

/// One follower: a named consumer of one producer's records.
#[derive(Debug)]
pub struct Follower {
    /// What it is, for logs, health and quarantine records:
    /// "plan-registry projection", "the plan rule".
    what: String,
    producer: std::sync::Arc<str>,
    source: Source,
    health: Health,
    quarantine: Quarantine,
    watermark: Option<Watermark>,
    /// The next position it will be handed.
    next: u64,
}

impl Follower {
    /// Follows `log` (the service's own, named `producer`) from its first
    /// record.
    pub fn own_log(
        what: impl Into<String>,
        log: &EventLog,
        producer: impl Into<String>,
        quarantine: Quarantine,
    ) -> Self {
        Follower {
            what: what.into(),
            producer: producer.into().into(),
            source: Source::Log(log.subscribe(0)),
            health: quarantine.health().clone(),
            quarantine,
            watermark: None,
            next: 0,
        }
    }

    /// Follows `producer` on the bus from position `from`, as the durable
    /// consumer `consumer`, once subscribed. A failure to subscribe marks
    /// health broken.
    pub fn bus(
        what: impl Into<String>,
        bus: &bus::Bus,
        consumer: &str,
        producer: impl Into<String>,
        from: u64,
        quarantine: Quarantine,
    ) -> impl Future<Output = Result<Self, String>> + Send + 'static {
        let (what, producer) = (what.into(), producer.into());
        let (bus, consumer) = (bus.clone(), consumer.to_owned());
        async move {
            let health = quarantine.health().clone();
            match bus.subscribe(&consumer, &producer, from).await {
                Ok(mut subscription) => {
                    if let Some(alarms) = subscription.take_alarms() {
                        tokio::spawn(quarantine.clone().keep_alarms(what.clone(), alarms));
                    }
                    Ok(Follower {
                        what,
                        producer: producer.into(),
                        source: Source::Bus(subscription),
                        health,
                        quarantine,
                        watermark: None,
                        next: from,
                    })
                }
                Err(error) => {
                    health.broken(&what, &error);
                    Err(error.to_string())
                }
            }
        }
    }

    /// Advances `watermark` past each record once it is handled.
    pub fn with_watermark(mut self, watermark: Watermark) -> Self {
        watermark.advance_to(self.next);
        self.watermark = Some(watermark);
        self
    }

    /// Handles records until it reaches `head` (a log's head when the
    /// service opened): how a view is rebuilt before the service answers.
    /// Fails only if the log does; unappliable records are quarantined.
    pub async fn catch_up<E, H>(&mut self, head: u64, handler: &mut H) -> Result<(), String>
    where
        E: Records,
        H: Handler<E>,
    {
        while self.next < head {
            match self.step(handler).await {
                Ok(()) => {}
                Err(Ended::Closed) => return Err("the log closed".to_owned()),
                Err(Ended::Failed(reason)) => {
                    self.health.broken(&self.what, &reason);
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    /// Handles records until the log or bus closes. A failure of either,
    /// or of the handler, marks health broken and ends it.
    pub async fn run<E, H>(mut self, mut handler: H)
    where
        E: Records,
        H: Handler<E>,
    {
        loop {
            match self.step(&mut handler).await {
                Ok(()) => {}
                Err(Ended::Closed) => return,
                Err(Ended::Failed(reason)) => return self.health.broken(&self.what, reason),
            }
        }
    }

    /// Spawns [`Follower::run`].
    pub fn spawn<E, H>(self, handler: H)
    where
        E: Records + 'static,
        H: Handler<E> + 'static,
    {
        tokio::spawn(self.run(handler));
    }

    async fn step<E, H>(&mut self, handler: &mut H) -> Result<(), Ended>
    where
        E: Records,
        H: Handler<E>,
    {
        let recorded = self.source.next().await?;
        let producer = self.producer.clone();
        let position = recorded.position();
        let (envelope, unreadable) = match recorded.envelope() {
            Ok(envelope) => (envelope, None),
            // The log checked the record's hash: this is a format this
            // build cannot read, not a torn write.
            Err(error) => (EventEnvelope::default(), Some(error.to_string())),
        };
        let record = Record {
            producer: &producer,
            position,
            envelope: &envelope,
        };
        let handled = match unreadable {
            Some(reason) => Err(Failure::Unapplied(reason)),
            None => match E::decode(&envelope) {
                Ok(Some(event)) => handler.handle(record, event).await,
                Ok(None) => handler.pass(record).await,
                Err(undecodable) => Err(Failure::Unapplied(undecodable.to_string())),
            },
        };
        match handled {
            Ok(()) => {}
            Err(Failure::Unapplied(reason)) => {
                self.quarantine(record, &reason).await?;
                handler.pass(record).await.map_err(failed)?;
            }
            Err(failure) => return Err(failed(failure)),
        }
        self.advance(position);
        Ok(())
    }

    fn advance(&mut self, position: u64) {
        self.next = position + 1;
        if let Some(watermark) = &self.watermark {
            watermark.advance_to(self.next);
        }
    }

    async fn quarantine(&self, record: Record<'_>, reason: &str) -> Result<(), Ended> {
        self.quarantine
            .record(&self.what, record, reason)
            .await
            .map_err(|error| match error {
                eventlog::Error::Closed => Ended::Closed,
                other => Ended::Failed(format!("cannot record a quarantined record: {other}")),
            })
    }
}

fn failed(failure: Failure) -> Ended {
    match failure {
        Failure::Unapplied(reason) | Failure::Stopped(reason) => Ended::Failed(reason),
        Failure::Closing => Ended::Closed,
    }
}

#[cfg(test)]
mod tests {
    use contract::records::NotificationEvent;
    use eventlog::{EventId, ExpectedVersion, NewEvent};
    use prost::{Message, Name};

    use super::*;

    /// Applies acknowledgements, refusing sequence 0 as unappliable and
    /// stopping for good at sequence 99.
    struct Acks(Vec<u64>);

    impl Handler<NotificationEvent> for Acks {
        async fn handle(&mut self, _: Record<'_>, event: NotificationEvent) -> Result<(), Failure> {
            match event {
                NotificationEvent::Acknowledged(ack) if ack.sequence == 0 => {
                    Err(Failure::Unapplied("sequence: is zero".into()))
                }
                NotificationEvent::Acknowledged(ack) if ack.sequence == 99 => {
                    Err(Failure::Stopped("the test says stop".into()))
                }
                NotificationEvent::Acknowledged(ack) => {
                    self.0.push(ack.sequence);
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    async fn acknowledge(log: &EventLog, sequence: u64) {
        let ack = contract::notification::v1::SubscriberAcknowledged {
            sequence,
            ..Default::default()
        };
        log.append(
            "acks",
            ExpectedVersion::Any,
            vec![NewEvent::new(
                contract::notification::v1::SubscriberAcknowledged::full_name(),
                ack.encode_to_vec(),
            )],
        )
        .await
        .expect("append");
    }

    #[tokio::test]
    async fn what_cannot_be_applied_is_quarantined_once_and_passed_by() {
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(eventlog::Options::new(dir.path())).expect("open");
        for sequence in [1, 0, 2] {
            acknowledge(&log, sequence).await;
        }
        // Not an acknowledgement at all: its payload does not decode.
        log.append(
            "acks",
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::new(),
                ..NewEvent::new(
                    contract::notification::v1::SubscriberAcknowledged::full_name(),
                    vec![0xff, 0xff],
                )
            }],
        )
        .await
        .expect("append");
        acknowledge(&log, 3).await;
        let head = log.head();
        let health = Health::default();
        let quarantine = Quarantine::open(&log, "test", health.clone()).expect("quarantine");
        let watermark = Watermark::new("test");
        let mut follower = Follower::own_log("the test view", &log, "test", quarantine)
            .with_watermark(watermark.clone());
        let mut acks = Acks(Vec::new());
        follower.catch_up(head, &mut acks).await.expect("caught up");
        assert_eq!(acks.0, [1, 2, 3], "the others are applied, in order");
        assert!(health.problem().is_none(), "a bad record does not stop it");
        let quarantined = health.quarantine();
        let reasons: Vec<(u64, &str)> = quarantined
            .iter()
            .map(|record| (record.position, record.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0], (1, "sequence: is zero"));
        assert_eq!(reasons[1].0, 3);
        assert!(reasons[1].1.contains("does not decode"), "{reasons:?}");
        // Each is durable in the log, and read back by a new quarantine.
        let again = Health::default();
        Quarantine::open(&log, "test", again.clone()).expect("quarantine");
        assert_eq!(again.quarantine(), quarantined);
        drop(follower);
        log.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_handler_that_stops_marks_the_service_broken() {
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(eventlog::Options::new(dir.path())).expect("open");
        acknowledge(&log, 1).await;
        acknowledge(&log, 99).await;
        let health = Health::default();
        let quarantine = Quarantine::open(&log, "test", health.clone()).expect("quarantine");
        let follower = Follower::own_log("the test view", &log, "test", quarantine);
        follower.run(Acks(Vec::new())).await;
        let problem = health.problem().expect("broken");
        assert!(problem.contains("the test view"), "{problem}");
        assert!(problem.contains("the test says stop"), "{problem}");
        assert!(health.quarantine().is_empty());
        log.close().await.expect("close");
    }
}
