//! A consumer of one producer over JetStream: a durable JetStream consumer
//! with explicit acks, made at the subscriber's own position, passing each
//! position on once and repairing gaps from the producer.

use std::collections::VecDeque;

use async_nats::jetstream::{self, consumer::pull, stream};
use eventlog::RecordedEvent;
use futures_util::StreamExt;

use super::*;
use crate::backoff::Backoff;

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
    /// `consumer`'s durable consumer of `producer`, from `from_position`.
    pub(super) async fn start(
        bus: &JetStream,
        consumer: &str,
        producer: &str,
        from_position: u64,
    ) -> Result<Self> {
        let stream = bus.stream(producer).await?;
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
            bus: bus.clone(),
        })
    }

    pub(crate) async fn next(&mut self) -> Result<RecordedEvent> {
        if let Some(message) = self.unacked.take() {
            // A lost ack only means a redelivery, which the position check
            // skips.
            let _ = message.ack().await;
        }
        let mut backoff = Backoff::default();
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
                    backoff.wait().await;
                    if failures >= REOPEN_AFTER_FAILURES {
                        failures = 0;
                        self.reopen().await;
                    }
                    continue;
                }
                None => {
                    backoff.wait().await;
                    self.reopen().await;
                    continue;
                }
            };
            backoff.reset();
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
        let mut backoff = Backoff::default();
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
                    backoff.wait().await;
                }
            }
        }
    }
}
