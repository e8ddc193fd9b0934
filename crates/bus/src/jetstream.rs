//! The bus over NATS JetStream.
//!
//! Each producer has a stream of its own, `SAFEGUARD_<PRODUCER>`, holding
//! subjects `safeguard.<producer>.<event kind>` (the last part of the
//! event's content type: `safeguard.plan-registry.PlanStarted`). A message
//! is one record of the producer's log, byte for byte (format, chain hash,
//! envelope), with headers `Nats-Msg-Id` (the event id: the server drops a
//! republished duplicate), `Safeguard-Position`, `Safeguard-Producer`,
//! `Safeguard-Content-Type` and, when the event has one, `traceparent`.
//!
//! - The **relay** is a transactional outbox: it publishes only what is
//!   durable in the producer's log (it follows the log like any reader),
//!   keeps a window of publishes awaiting their acks, records how far
//!   JetStream has acknowledged in a durable cursor of the producer's log,
//!   and after any failure (NATS down, a crash) starts again from that
//!   cursor with backoff. Writes to the service never wait for it.
//! - A **consumer** is a durable JetStream consumer with explicit acks,
//!   created at the position the subscriber asks for (its own durable
//!   cursor is the authority; the stream sequence is only a hint). It
//!   passes each position on once: a redelivered or republished position
//!   below the next expected one is acknowledged and skipped; one above it
//!   reveals a gap, which is read from the producer (`repair`) before the
//!   message that revealed it. A consumer whose messages end or keep
//!   failing is made again, and so is its stream if it has gone; a stream
//!   made again starts its sequences afresh, so the consumer then reads it
//!   from the start and skips by position.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use eventlog::{EventId, EventLog, RecordedEvent};
use futures_util::StreamExt;

use crate::in_process::InProcess;
use crate::repair::Repair;
use crate::{Error, Result};

/// The producer's cursor: every position below it is acknowledged by
/// JetStream.
pub const RELAY_CURSOR: &str = "bus:jetstream-relay";
pub const POSITION_HEADER: &str = "Safeguard-Position";
pub const PRODUCER_HEADER: &str = "Safeguard-Producer";
pub const CONTENT_TYPE_HEADER: &str = "Safeguard-Content-Type";
/// The W3C trace context of the event, as the envelope keeps it, for
/// partners' tracing to continue.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Publishes awaiting their acks at once: enough to keep the link busy,
/// few enough that a failure republishes little.
const WINDOW: usize = 256;
/// How often the relay records its cursor while publishing.
const CURSOR_INTERVAL: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Consecutive errors from a consumer's messages before it is made again.
const REOPEN_AFTER_FAILURES: u32 = 5;
/// How long start-up waits for JetStream before giving up.
const START_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// `nats://host:port`, or several, comma-separated.
    pub url: String,
    /// Copies of each stream the cluster keeps (1 on a single server; 3 in
    /// the cluster configuration).
    pub replicas: usize,
    /// The gRPC address of each producer that runs in another process, for
    /// gap repair (`ReadEvents`), e.g. `conference-scheduler` →
    /// `http://scheduler:50052`.
    pub producer_urls: HashMap<String, String>,
    /// How long the server remembers message ids to drop duplicates.
    pub duplicate_window: Duration,
}

impl JetStreamOptions {
    pub fn new(url: impl Into<String>) -> Self {
        JetStreamOptions {
            url: url.into(),
            replicas: 1,
            producer_urls: HashMap::new(),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The stream that holds `producer`'s events.
pub fn stream_name(producer: &str) -> String {
    format!(
        "SAFEGUARD_{}",
        producer.to_uppercase().replace(['-', '.'], "_")
    )
}

/// The subject of one of `producer`'s events: its kind is the last part of
/// the content type.
pub fn subject(producer: &str, content_type: &str) -> String {
    let kind = content_type.rsplit('.').next().unwrap_or(content_type);
    format!("safeguard.{producer}.{kind}")
}

fn nats(error: impl std::fmt::Display) -> Error {
    Error::Nats(error.to_string())
}

#[derive(Debug, Clone)]
pub(crate) struct JetStream {
    context: jetstream::Context,
    options: Arc<JetStreamOptions>,
    /// Producers in this process: their relays run here, and a gap in one is
    /// repaired from its log directly.
    local: InProcess,
}

impl JetStream {
    pub(crate) async fn connect(options: JetStreamOptions) -> Result<Self> {
        let client = async_nats::connect(options.url.as_str())
            .await
            .map_err(|error| Error::Nats(format!("cannot connect to {}: {error}", options.url)))?;
        Ok(JetStream {
            context: jetstream::new(client),
            options: Arc::new(options),
            local: InProcess::default(),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.options.url
    }

    /// The producer's stream, created if missing, by producer and consumers
    /// alike, with the same settings: whoever starts first makes it.
    async fn stream(&self, producer: &str) -> Result<stream::Stream> {
        let config = stream::Config {
            name: stream_name(producer),
            subjects: vec![format!("safeguard.{producer}.>")],
            storage: stream::StorageType::File,
            num_replicas: self.options.replicas,
            duplicate_window: self.options.duplicate_window,
            ..stream::Config::default()
        };
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.context.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(error) if started.elapsed() < START_WITHIN => {
                    tracing::warn!(%error, producer, "JetStream not ready; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => return Err(nats(error)),
            }
        }
    }

    pub(crate) async fn register(&self, producer: &str, log: EventLog) -> Result<()> {
        self.local.register(producer, log.clone())?;
        self.stream(producer).await?;
        tokio::spawn(relay(self.clone(), producer.to_owned(), log));
        Ok(())
    }

    pub(crate) async fn subscribe(
        &self,
        consumer: &str,
        producer: &str,
        from_position: u64,
    ) -> Result<Consumer> {
        let stream = self.stream(producer).await?;
        let name = durable_name(consumer);
        let messages = open(&stream, &name, from_position).await?;
        Ok(Consumer {
            producer: producer.to_owned(),
            name,
            stream,
            expected: from_position,
            messages,
            unacked: None,
            pending: VecDeque::new(),
            held: None,
            bus: self.clone(),
        })
    }

    pub(crate) async fn published_head(&self, producer: &str) -> Result<u64> {
        let stream = self.stream(producer).await?;
        Ok(last_message(&stream)
            .await?
            .map_or(0, |(_, position)| position + 1))
    }

    fn repair(&self, producer: &str) -> Option<Repair> {
        self.local.log(producer).map(Repair::Local).or_else(|| {
            self.options
                .producer_urls
                .get(producer)
                .cloned()
                .map(Repair::Remote)
        })
    }
}

/// A durable consumer name: JetStream allows letters, digits, `-` and `_`.
fn durable_name(consumer: &str) -> String {
    consumer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// (Re)creates the durable consumer `name` to deliver from `from_position`
/// on: the subscriber's cursor decides where, not what the server
/// remembers.
async fn open(stream: &stream::Stream, name: &str, from_position: u64) -> Result<pull::Stream> {
    // Not found is the usual case; any other failure shows in the create.
    let _ = stream.delete_consumer(name).await;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            deliver_policy: match start_sequence(stream, from_position).await {
                Some(start_sequence) if start_sequence > 1 => {
                    DeliverPolicy::ByStartSequence { start_sequence }
                }
                _ => DeliverPolicy::All,
            },
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..pull::Config::default()
        })
        .await
        .map_err(nats)?;
    consumer.messages().await.map_err(nats)
}

/// The stream sequence that holds `position`, judged from the stream's last
/// message: sequences start at 1 for position 0 and keep step with
/// positions, run ahead of them after a loss, and start again at 1 in a
/// stream made again (by then at the relay's cursor). Starting a little
/// early only means skipping by position, a little late only a repair from
/// the producer; `None` (an empty or unreadable stream) means from the
/// start.
async fn start_sequence(stream: &stream::Stream, position: u64) -> Option<u64> {
    if position == 0 {
        return None;
    }
    let (last_sequence, last_position) = last_message(stream).await.ok()??;
    (position + last_sequence).checked_sub(last_position)
}

/// How many messages back from the end to look for the last record, past
/// messages that are not (a stray publish) or are gone.
const LAST_RECORD_WITHIN: u64 = 100;

/// The stream's last record: its sequence and the position it carries;
/// `None` if the stream has none near its end.
async fn last_message(stream: &stream::Stream) -> Result<Option<(u64, u64)>> {
    let last_sequence = stream.get_info().await.map_err(nats)?.state.last_sequence;
    let first = last_sequence.saturating_sub(LAST_RECORD_WITHIN).max(1);
    for sequence in (first..=last_sequence).rev() {
        let message = match stream.get_raw_message(sequence).await {
            Ok(message) => message,
            Err(error) if error.kind() == stream::RawMessageErrorKind::NoMessageFound => continue,
            // Not "nothing there": a caller must not take it for an empty stream.
            Err(error) => return Err(nats(error)),
        };
        let position = message
            .headers
            .get(POSITION_HEADER)
            .and_then(|value| value.as_str().parse::<u64>().ok());
        if let Some(position) = position {
            return Ok(Some((sequence, position)));
        }
    }
    Ok(None)
}

/// One subscriber's durable JetStream consumer.
pub(crate) struct Consumer {
    producer: String,
    name: String,
    stream: stream::Stream,
    /// The next position to pass on.
    expected: u64,
    messages: pull::Stream,
    /// The message last passed on, acknowledged when the next is asked for.
    unacked: Option<jetstream::Message>,
    /// Events read from the producer to fill a gap.
    pending: VecDeque<RecordedEvent>,
    /// The message that revealed the gap, passed on after it.
    held: Option<(RecordedEvent, jetstream::Message)>,
    bus: JetStream,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("producer", &self.producer)
            .field("name", &self.name)
            .field("expected", &self.expected)
            .finish()
    }
}

impl Consumer {
    pub(crate) async fn next(&mut self) -> Result<RecordedEvent> {
        if let Some(message) = self.unacked.take() {
            // A lost ack only means a redelivery, which the position check
            // skips.
            let _ = message.ack().await;
        }
        let mut backoff = FIRST_BACKOFF;
        let mut failures = 0;
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.expected = event.position() + 1;
                return Ok(event);
            }
            if let Some((event, message)) = self.held.take() {
                self.expected = event.position() + 1;
                self.unacked = Some(message);
                return Ok(event);
            }
            let message = match self.messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    // Missed heartbeats while the server is away, and the
                    // like: the consumer lives on the server, so wait; but
                    // if errors go on (the consumer was deleted, the stream
                    // recreated), make it again from the expected position.
                    failures += 1;
                    tracing::debug!(%error, consumer = self.name, failures, "JetStream consumer interrupted");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if failures >= REOPEN_AFTER_FAILURES {
                        failures = 0;
                        self.reopen().await;
                    }
                    continue;
                }
                None => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    self.reopen().await;
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            failures = 0;
            let event = match self.event_of(&message) {
                Ok(event) => event,
                Err(error) => {
                    // Not a record of the producer's log (someone else
                    // published on its subjects): stopping here would stop
                    // this consumer for good. Positions, not messages, say
                    // what is missing, so passing it by loses nothing.
                    tracing::error!(%error, consumer = self.name, "passing by a message that is not an event");
                    let _ = message.ack().await;
                    continue;
                }
            };
            let position = event.position();
            if position < self.expected {
                let _ = message.ack().await;
                continue;
            }
            if position > self.expected {
                self.pending = self.repair(position).await?.into();
                self.held = Some((event, message));
                continue;
            }
            self.expected = position + 1;
            self.unacked = Some(message);
            return Ok(event);
        }
    }

    /// Makes the consumer again on the server, from the expected position.
    async fn reopen(&mut self) {
        match self.bus.stream(&self.producer).await {
            Ok(stream) => self.stream = stream,
            Err(error) => {
                tracing::warn!(%error, consumer = self.name, "cannot find the stream");
                return;
            }
        }
        match open(&self.stream, &self.name, self.expected).await {
            Ok(messages) => self.messages = messages,
            Err(error) => {
                tracing::warn!(%error, consumer = self.name, "cannot reopen the consumer")
            }
        }
    }

    fn event_of(&self, message: &jetstream::Message) -> Result<RecordedEvent> {
        let malformed = |reason: String| Error::Malformed {
            producer: self.producer.clone(),
            reason,
        };
        let position = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(POSITION_HEADER))
            .and_then(|value| value.as_str().parse::<u64>().ok())
            .ok_or_else(|| malformed(format!("no {POSITION_HEADER} header")))?;
        RecordedEvent::from_record(position, &message.payload)
            .map_err(|error| malformed(error.to_string()))
    }

    /// The events from the expected position up to `found`, from the
    /// producer. Retries while the producer is unreachable: nothing is lost
    /// for good while its log exists, so the consumer waits rather than
    /// skip.
    async fn repair(&self, found: u64) -> Result<Vec<RecordedEvent>> {
        let gap = |reason: String| Error::Gap {
            producer: self.producer.clone(),
            expected: self.expected,
            found,
            reason,
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            let repair = self.bus.repair(&self.producer).ok_or_else(|| {
                gap("the producer runs elsewhere and no address is configured for it".into())
            })?;
            match repair.read(&self.producer, self.expected, found).await {
                Ok(events) => {
                    tracing::info!(
                        producer = self.producer,
                        from = self.expected,
                        to = found,
                        "repaired a gap from the producer"
                    );
                    return Ok(events);
                }
                Err(reason) => {
                    tracing::warn!(
                        reason,
                        producer = self.producer,
                        "gap repair failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// Publishes `producer`'s durable events for as long as its log is open,
/// starting again from the cursor after any failure.
async fn relay(bus: JetStream, producer: String, log: EventLog) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match relay_from_cursor(&bus.context, &producer, &log).await {
            Ok(()) => return,
            Err(error) => {
                if started.elapsed() > MAX_BACKOFF {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(
                    error,
                    producer,
                    "relay interrupted; resuming from its cursor"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // The stream may be what went (deleted by an operator,
                // say): make it again, idempotently, before publishing.
                if let Err(error) = bus.stream(&producer).await {
                    tracing::warn!(%error, producer, "cannot make the stream again");
                }
            }
        }
    }
}

/// Publishes from the relay's cursor until the log closes (`Ok`) or a
/// publish fails (`Err`), recording in the cursor what JetStream has
/// acknowledged.
async fn relay_from_cursor(
    context: &jetstream::Context,
    producer: &str,
    log: &EventLog,
) -> Result<(), String> {
    let from = match log.cursor(RELAY_CURSOR) {
        Ok(cursor) => cursor.unwrap_or(0),
        Err(eventlog::Error::Closed) => return Ok(()),
        Err(error) => return Err(error.to_string()),
    };
    let mut events = log.subscribe(from);
    let mut in_flight: VecDeque<(u64, AckFuture)> = VecDeque::new();
    let mut acked = from;
    let mut recorded = from;
    let mut tick = tokio::time::interval(CURSOR_INTERVAL);
    let outcome = loop {
        tokio::select! {
            biased;
            ack = async {
                match in_flight.front_mut() {
                    Some((_, ack)) => ack.as_mut().await,
                    None => std::future::pending().await,
                }
            }, if !in_flight.is_empty() => {
                let Some((position, _)) = in_flight.pop_front() else {
                    continue;
                };
                match ack {
                    Ok(_) => acked = position + 1,
                    Err(error) => break Err(format!("JetStream did not acknowledge position {position}: {error}")),
                }
            }
            _ = tick.tick() => {
                if acked > recorded {
                    match log.set_cursor(RELAY_CURSOR, acked).await {
                        Ok(()) => recorded = acked,
                        Err(eventlog::Error::Closed) => break Ok(()),
                        Err(error) => break Err(error.to_string()),
                    }
                }
            }
            event = events.next(), if in_flight.len() < WINDOW => {
                match event {
                    Ok(event) => {
                        let ack = publish(context, producer, &event).await?;
                        in_flight.push_back((event.position(), Box::pin(ack.into_future())));
                    }
                    Err(eventlog::Error::Closed) => break Ok(()),
                    Err(error) => break Err(error.to_string()),
                }
            }
        }
    };
    if acked > recorded {
        // The log may be closing: then the next start republishes a little,
        // which the server's duplicate window and consumers' positions drop.
        let _ = log.set_cursor(RELAY_CURSOR, acked).await;
    }
    outcome
}

async fn publish(
    context: &jetstream::Context,
    producer: &str,
    event: &RecordedEvent,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let envelope = event.envelope().map_err(|error| error.to_string())?;
    let id = EventId::from_slice(&envelope.event_id)
        .map(|id| id.to_string())
        .unwrap_or_else(|| format!("{producer}-{}", event.position()));
    let mut headers = HeaderMap::new();
    headers.insert(POSITION_HEADER, event.position().to_string().as_str());
    headers.insert(PRODUCER_HEADER, producer);
    headers.insert(CONTENT_TYPE_HEADER, envelope.content_type.as_str());
    if !envelope.traceparent.is_empty() {
        headers.insert(TRACEPARENT_HEADER, envelope.traceparent.as_str());
    }
    let message = PublishMessage::build()
        .payload(bytes::Bytes::copy_from_slice(event.record()))
        .headers(headers)
        .message_id(id);
    context
        .send_publish(subject(producer, &envelope.content_type), message)
        .await
        .map_err(|error| format!("cannot publish position {}: {error}", event.position()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_subject_reference() {
        assert_eq!(stream_name("plan-registry"), "SAFEGUARD_PLAN_REGISTRY");
        assert_eq!(
            subject("plan-registry", "safeguard.registry.v1.PlanStarted"),
            "safeguard.plan-registry.PlanStarted"
        );
        assert_eq!(
            durable_name("plan-registry.plan-rule"),
            "plan-registry_plan-rule"
        );
    }
}
