//! A consumer of one producer over JetStream: a durable JetStream consumer
//! with explicit acks, made at the subscriber's own position, passing each
//! position on once, only records proven to be its producer's, and
//! repairing gaps from the producer.
//!
//! Proof: every message carries its producer's signature over (producer,
//! position, chain hash), checked against the producer's key before
//! anything else is made of the message, and each record passed on must
//! also chain to the one passed on before it. A consumer starting from
//! position 0 knows the first link (the genesis hash); one starting
//! mid-log takes its first record on the signature alone, and chains from
//! there. A message that fails is refused: never passed on, reported
//! (`Refused`, for the service's security log and health), and the position
//! it claimed is read from the producer itself if the producer has it.

use std::collections::VecDeque;

use async_nats::jetstream::{self, consumer::pull, stream};
use eventlog::RecordedEvent;
use eventlog::record::{GENESIS_HASH, Hash};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::backoff::Backoff;
use crate::repair::Need;

/// Refusals waiting for the service to record them; more are counted in
/// the log line but not queued, so a flood of forgeries cannot fill memory.
const REFUSALS_QUEUED: usize = 1024;
/// Failed attempts at a gap repair before the consumer says, in health,
/// that it is stuck (it goes on trying: it never skips).
const STALLED_AFTER_ATTEMPTS: u32 = 5;
/// The most records already waiting that one signature check vouches for:
/// the last record's signature covers its chain hash, which covers each
/// record before it, so a run that chains needs one check, not one each.
const RUN: usize = 256;

/// What the server's message stream yields.
type Item = Option<Result<jetstream::Message, pull::MessagesError>>;

/// A message the consumer refused to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub producer: String,
    /// The position it claimed, if it named one.
    pub position: Option<u64>,
    pub reason: String,
    pub subject: String,
    pub stream_sequence: u64,
}

/// What a subscription reports beside its records.
#[derive(Debug)]
pub struct Alarms {
    /// Each message refused, as it is refused.
    pub refused: mpsc::Receiver<Refused>,
    /// Why a gap repair cannot make progress, while it cannot.
    pub stalled: watch::Receiver<Option<String>>,
}

/// One subscriber's durable JetStream consumer.
pub(crate) struct Consumer {
    producer: String,
    name: String,
    stream: stream::Stream,
    /// The next position to pass on.
    expected: u64,
    /// The chain hash of the record at `expected - 1`, once known.
    previous: Option<Hash>,
    messages: pull::Stream,
    /// The message last passed on, acknowledged when the next is asked for.
    unacked: Option<jetstream::Message>,
    /// Events ready to pass on: read from the producer to fill a gap (no
    /// message), or a run of messages vouched for by one signature.
    pending: VecDeque<(RecordedEvent, Option<jetstream::Message>)>,
    /// Items taken from the server's stream while gathering a run but not
    /// part of it: read again before the stream.
    replay: VecDeque<Item>,
    /// The message that revealed the gap, passed on after it.
    held: Option<(RecordedEvent, jetstream::Message)>,
    refused: mpsc::Sender<Refused>,
    stalled: watch::Sender<Option<String>>,
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
    /// `consumer`'s durable consumer of `producer`, from `from_position`,
    /// with the alarms it raises.
    pub(super) async fn start(
        bus: &JetStream,
        consumer: &str,
        producer: &str,
        from_position: u64,
    ) -> Result<(Self, Alarms)> {
        let stream = bus.stream(producer).await?;
        let name = durable_name(consumer);
        let messages = open(&stream, &name, from_position).await?;
        let (refused, refusals) = mpsc::channel(REFUSALS_QUEUED);
        let (stalled, stalls) = watch::channel(None);
        let consumer = Consumer {
            producer: producer.to_owned(),
            name,
            stream,
            expected: from_position,
            previous: (from_position == 0).then_some(GENESIS_HASH),
            messages,
            unacked: None,
            pending: VecDeque::new(),
            replay: VecDeque::new(),
            held: None,
            refused,
            stalled,
            bus: bus.clone(),
        };
        let alarms = Alarms {
            refused: refusals,
            stalled: stalls,
        };
        Ok((consumer, alarms))
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
            if let Some((event, message)) = self.pending.pop_front() {
                // From the producer itself, or vouched for by a signature
                // later in its run: it must still chain.
                self.chain(&event)?;
                self.unacked = message;
                return Ok(event);
            }
            if let Some((event, message)) = self.held.take() {
                if self.follows(&event) {
                    self.chain(&event)?;
                    self.unacked = Some(message);
                    return Ok(event);
                }
                self.refuse_and_fill(
                    &message,
                    Some(event.position()),
                    "it does not follow the record before it".into(),
                )
                .await;
                continue;
            }
            let item = match self.replay.pop_front() {
                Some(item) => item,
                None => self.messages.next().await,
            };
            let message = match item {
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
                    // Not a record at all: positions, not messages, say
                    // what is missing, so refusing it loses nothing.
                    self.refuse(&message, None, error.to_string());
                    let _ = message.ack().await;
                    continue;
                }
            };
            let position = event.position();
            if position < self.expected {
                let _ = message.ack().await;
                continue;
            }
            if position == self.expected && self.follows(&event) {
                let mut run = self.run(event, message);
                let vouched = run
                    .last()
                    .is_some_and(|(last, message)| self.signed(message, last).is_ok());
                if vouched {
                    self.pending.extend(
                        run.into_iter()
                            .map(|(event, message)| (event, Some(message))),
                    );
                    continue;
                }
                // The run's last record is not vouched for: each on its
                // own, so a forgery is found where it is.
                let rest = run.split_off(1);
                for (_, message) in rest.into_iter().rev() {
                    self.replay.push_front(Some(Ok(message)));
                }
                let Some((event, message)) = run.pop() else {
                    continue;
                };
                if let Err(reason) = self.signed(&message, &event) {
                    self.refuse_and_fill(&message, Some(position), reason).await;
                    continue;
                }
                self.chain(&event)?;
                self.unacked = Some(message);
                return Ok(event);
            }
            if let Err(reason) = self.signed(&message, &event) {
                self.refuse_and_fill(&message, Some(position), reason).await;
                continue;
            }
            if position > self.expected {
                self.pending = self
                    .repair(position)
                    .await?
                    .into_iter()
                    .map(|event| (event, None))
                    .collect();
                self.held = Some((event, message));
                continue;
            }
            self.refuse_and_fill(
                &message,
                Some(position),
                "it does not follow the record before it".into(),
            )
            .await;
        }
    }

    /// `first` and the records already waiting after it that chain to it,
    /// up to [`RUN`]: what one signature can vouch for. Whatever else was
    /// waiting is kept to be read next.
    fn run(
        &mut self,
        first: RecordedEvent,
        message: jetstream::Message,
    ) -> Vec<(RecordedEvent, jetstream::Message)> {
        let mut run = vec![(first, message)];
        while run.len() < RUN && self.replay.is_empty() {
            let Some(item) = self.messages.next().now_or_never() else {
                break;
            };
            let Some(Ok(message)) = item else {
                self.replay.push_back(item);
                break;
            };
            let next = self.event_of(&message).ok().filter(|next| {
                run.last().is_some_and(|(last, _)| {
                    next.position() == last.position() + 1 && next.follows(&last.hash())
                })
            });
            match next {
                Some(next) => run.push((next, message)),
                None => {
                    self.replay.push_back(Some(Ok(message)));
                    break;
                }
            }
        }
        run
    }

    /// Whether `event` is the next record of the history passed on so far.
    fn follows(&self, event: &RecordedEvent) -> bool {
        self.previous
            .is_none_or(|previous| event.follows(&previous))
    }

    /// Passes `event` on as the next record, if it is.
    fn chain(&mut self, event: &RecordedEvent) -> Result<()> {
        if event.position() != self.expected || !self.follows(event) {
            return Err(Error::Gap {
                producer: self.producer.clone(),
                expected: self.expected,
                found: event.position(),
                reason: "the producer's own record does not follow the one before it: its history is not the one followed so far".into(),
            });
        }
        self.expected = event.position() + 1;
        self.previous = Some(event.hash());
        Ok(())
    }

    /// Whether the message carries the producer's signature over the record.
    fn signed(&self, message: &jetstream::Message, event: &RecordedEvent) -> Result<(), String> {
        let signature = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(SIGNATURE_HEADER))
            .ok_or_else(|| format!("it carries no {SIGNATURE_HEADER}"))?;
        let signature = unhex(signature.as_str())
            .ok_or_else(|| format!("its {SIGNATURE_HEADER} is not hex"))?;
        self.bus
            .options
            .keys
            .verify(&self.producer, event.position(), &event.hash(), &signature)
    }

    /// Reports a refused message (it is never passed on).
    fn refuse(&self, message: &jetstream::Message, position: Option<u64>, reason: String) {
        let stream_sequence = message.info().map_or(0, |info| info.stream_sequence);
        tracing::error!(
            consumer = self.name,
            producer = self.producer,
            position,
            stream_sequence,
            subject = %message.subject,
            reason,
            "refused a message that is not provably the producer's record"
        );
        let refused = Refused {
            producer: self.producer.clone(),
            position,
            reason,
            subject: message.subject.to_string(),
            stream_sequence,
        };
        if self.refused.try_send(refused).is_err() {
            tracing::warn!(
                consumer = self.name,
                "too many refusals waiting to be recorded: this one is only logged"
            );
        }
    }

    /// Refuses the message, and fills what it claimed, up to `position`,
    /// from the producer if the producer has it: one attempt, since a
    /// position that only a refused message claimed may not exist (a
    /// genuine record revealing a gap is what makes the consumer insist).
    async fn refuse_and_fill(
        &mut self,
        message: &jetstream::Message,
        position: Option<u64>,
        reason: String,
    ) {
        self.refuse(message, position, reason);
        let _ = message.ack().await;
        let Some(position) = position else { return };
        let Some(repair) = self.bus.repair(&self.producer) else {
            return;
        };
        match repair
            .read(&self.producer, self.expected, position + 1, Need::Available)
            .await
        {
            Ok(events) => self
                .pending
                .extend(events.into_iter().map(|event| (event, None))),
            Err(reason) => tracing::warn!(
                reason,
                producer = self.producer,
                "cannot read the refused position from the producer now; it will come again or show as a gap"
            ),
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
    /// skip, and after a few attempts says so in health.
    async fn repair(&self, found: u64) -> Result<Vec<RecordedEvent>> {
        let gap = |reason: String| Error::Gap {
            producer: self.producer.clone(),
            expected: self.expected,
            found,
            reason,
        };
        let mut backoff = Backoff::default();
        let mut attempts = 0;
        loop {
            let repair = self.bus.repair(&self.producer).ok_or_else(|| {
                gap("the producer runs elsewhere and no address is configured for it".into())
            })?;
            match repair
                .read(&self.producer, self.expected, found, Need::All)
                .await
            {
                Ok(events) => {
                    tracing::info!(
                        producer = self.producer,
                        from = self.expected,
                        to = found,
                        "repaired a gap from the producer"
                    );
                    self.stalled.send_replace(None);
                    return Ok(events);
                }
                Err(reason) => {
                    attempts += 1;
                    tracing::warn!(
                        reason,
                        attempts,
                        producer = self.producer,
                        "gap repair failed; retrying"
                    );
                    if attempts >= STALLED_AFTER_ATTEMPTS {
                        self.stalled.send_replace(Some(format!(
                            "{}: positions {} to {} of {} are missing and cannot be read from it yet ({attempts} attempts): {reason}",
                            self.name,
                            self.expected,
                            found - 1,
                            self.producer
                        )));
                    }
                    backoff.wait().await;
                }
            }
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}
