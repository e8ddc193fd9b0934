//! The relay: the transactional outbox that publishes a producer's durable
//! events to its stream, from its cursor, after any failure again.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Instant;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use eventlog::{EventLog, RecordedEvent};

use super::*;
use crate::backoff::Backoff;

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// Publishes `producer`'s durable events for as long as its log is open,
/// starting again from the cursor after any failure.
pub(super) async fn relay(
    bus: JetStream,
    producer: String,
    log: EventLog,
    addressee: crate::Addressee,
) {
    let mut backoff = Backoff::default();
    let publisher = Publisher {
        producer: &producer,
        signer: &bus.options.signer,
        addressee,
    };
    loop {
        let started = Instant::now();
        match relay_from_cursor(&bus.context, &publisher, &log).await {
            Ok(()) => return,
            Err(error) => {
                if started.elapsed() > Backoff::MAX {
                    backoff.reset();
                }
                tracing::warn!(
                    error,
                    producer,
                    "relay interrupted; resuming from its cursor"
                );
                backoff.wait().await;
                // The stream may be what went (deleted by an operator,
                // say): make it again, idempotently, before publishing.
                if let Err(error) = bus.own_stream(&producer).await {
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
    publisher: &Publisher<'_>,
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
                        let ack = publisher.publish(context, &event).await?;
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

/// How one producer's records become messages.
struct Publisher<'a> {
    producer: &'a str,
    signer: &'a trust::EventSigner,
    addressee: crate::Addressee,
}

impl Publisher<'_> {
    async fn publish(
        &self,
        context: &jetstream::Context,
        event: &RecordedEvent,
    ) -> Result<jetstream::context::PublishAckFuture, String> {
        let producer = self.producer;
        let signature = self
            .signer
            .sign(producer, event.position(), &event.hash())?;
        let envelope = event.envelope().map_err(|error| error.to_string())?;
        let id = EventId::from_slice(&envelope.event_id)
            .map(|id| id.to_string())
            .unwrap_or_else(|| format!("{producer}-{}", event.position()));
        // An addressee that cannot be a subject token goes on the
        // producer's unaddressed subject: no organisation is sent it.
        let addressee = (self.addressee)(&envelope).filter(|addressee| is_token(addressee));
        let mut headers = HeaderMap::new();
        headers.insert(POSITION_HEADER, event.position().to_string().as_str());
        headers.insert(PRODUCER_HEADER, producer);
        headers.insert(CONTENT_TYPE_HEADER, envelope.content_type.as_str());
        headers.insert(SIGNATURE_HEADER, hex(&signature).as_str());
        if !envelope.traceparent.is_empty() {
            headers.insert(TRACEPARENT_HEADER, envelope.traceparent.as_str());
        }
        let message = PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(event.record()))
            .headers(headers)
            .message_id(id);
        context
            .send_publish(
                subject(producer, addressee.as_deref(), &envelope.content_type),
                message,
            )
            .await
            .map_err(|error| format!("cannot publish position {}: {error}", event.position()))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
