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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use eventlog::{EventId, EventLog};

mod consumer;
mod relay;

pub(crate) use consumer::Consumer;
pub use consumer::{Alarms, Refused};
use relay::relay;

use crate::backoff::Backoff;
use crate::in_process::InProcess;
use crate::repair::Repair;
use crate::{Error, Result};

/// The producer's cursor: every position below it is acknowledged by
/// JetStream.
pub const RELAY_CURSOR: &str = "bus:jetstream-relay";
pub const POSITION_HEADER: &str = "Safeguard-Position";
pub const PRODUCER_HEADER: &str = "Safeguard-Producer";
pub const CONTENT_TYPE_HEADER: &str = "Safeguard-Content-Type";
/// The producer's signature over (producer, position, chain hash), hex:
/// what proves the record came from its log (`trust::signing`).
pub const SIGNATURE_HEADER: &str = "Safeguard-Signature";
/// The W3C trace context of the event, as the envelope keeps it, for
/// partners' tracing to continue.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Publishes awaiting their acks at once: enough to keep the link busy,
/// few enough that a failure republishes little.
const WINDOW: usize = 256;
/// How often the relay records its cursor while publishing.
const CURSOR_INTERVAL: Duration = Duration::from_millis(500);
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
    /// The TLS this process reads producers with: their CA, and its own
    /// service certificate (`ReadEvents` answers only the backbone's
    /// services). Without it, no producer in another process is asked.
    pub producer_tls: Option<tonic::transport::ClientTlsConfig>,
    /// How long the server remembers message ids to drop duplicates.
    pub duplicate_window: Duration,
    /// Signs the records this process publishes (its service key).
    pub signer: Arc<trust::EventSigner>,
    /// The keys of the producers whose records it applies: a message not
    /// signed by its producer's key is refused, never applied.
    pub keys: trust::EventKeys,
    /// Who this process is to the NATS server (its NKEY) and the mutual TLS
    /// it connects with. Without it, it connects with no credentials, which
    /// no server configured by this project accepts.
    pub nats: Option<trust::NatsClient>,
}

impl JetStreamOptions {
    pub fn new(
        url: impl Into<String>,
        signer: Arc<trust::EventSigner>,
        keys: trust::EventKeys,
    ) -> Self {
        JetStreamOptions {
            url: url.into(),
            replicas: 1,
            producer_urls: HashMap::new(),
            producer_tls: None,
            duplicate_window: Duration::from_secs(120),
            signer,
            keys,
            nats: None,
        }
    }

    /// The options of a process that trusts what `trust` says: it signs
    /// with its service key, checks producers' records against the keys
    /// configured for them (`event_signers`), and repairs gaps over mutual
    /// TLS with its service certificate.
    pub fn trusted(url: impl Into<String>, trust: &trust::Trust) -> Result<Self, String> {
        let mut options = JetStreamOptions::new(url, trust.event_signer()?, trust.event_keys()?);
        options.producer_tls = Some(trust.service_client_tls());
        options.nats = trust.nats_client()?;
        Ok(options)
    }
}

/// The stream that holds `producer`'s events.
pub fn stream_name(producer: &str) -> String {
    format!(
        "SAFEGUARD_{}",
        producer.to_uppercase().replace(['-', '.'], "_")
    )
}

/// The inbox prefix of the NATS user `name`: replies to its requests
/// arrive under it, and its permissions let only it subscribe there.
pub fn inbox_prefix(name: &str) -> String {
    format!("_INBOX_{name}")
}

/// Where every subject of `producer` starts: `safeguard.<producer>`.
pub fn subject_prefix(producer: &str) -> String {
    format!("safeguard.{producer}")
}

/// The subject of one of `producer`'s events: its kind is the last part of
/// the content type; an event addressed to an organisation has its ODS
/// code before the kind.
pub fn subject(producer: &str, addressee: Option<&str>, content_type: &str) -> String {
    let kind = content_type.rsplit('.').next().unwrap_or(content_type);
    match addressee {
        Some(addressee) => format!("{}.{addressee}.{kind}", subject_prefix(producer)),
        None => format!("{}.{kind}", subject_prefix(producer)),
    }
}

/// Whether `token` can stand in a subject as one token.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// A NATS connection at `url` as the identity `credentials` names (its
/// NKEY, its inbox, mutual TLS with its certificate), or with none: how
/// the bus, and anything measuring or testing it, connects.
pub async fn connect(
    url: &str,
    credentials: Option<&trust::NatsClient>,
) -> Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new().event_callback(|event| async move {
        // A permissions violation is answered only here: the request that
        // caused it just times out.
        if let async_nats::Event::ServerError(error) = event {
            tracing::error!(%error, "the NATS server refused something");
        }
    });
    if let Some(client) = credentials {
        options = options
            .nkey(client.seed.clone())
            .name(&client.name)
            .custom_inbox_prefix(inbox_prefix(&client.name))
            .require_tls(true)
            .add_client_certificate(client.certificate.clone(), client.key.clone());
        for ca in &client.ca {
            options = options.add_root_certificates(ca.clone());
        }
    }
    options
        .connect(url)
        .await
        .map_err(|error| Error::Nats(format!("cannot connect to {url}: {error}")))
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
        let client = connect(&options.url, options.nats.as_ref()).await?;
        Ok(JetStream {
            context: jetstream::new(client),
            options: Arc::new(options),
            local: InProcess::default(),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.options.url
    }

    /// The producer's stream, made if missing: by its producer (the relay)
    /// alone, so no one else chooses its settings.
    async fn own_stream(&self, producer: &str) -> Result<stream::Stream> {
        let config = stream::Config {
            name: stream_name(producer),
            subjects: vec![format!("{}.>", subject_prefix(producer))],
            storage: stream::StorageType::File,
            num_replicas: self.options.replicas,
            duplicate_window: self.options.duplicate_window,
            ..stream::Config::default()
        };
        let started = Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match self.context.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(error) if started.elapsed() < START_WITHIN => {
                    tracing::warn!(%error, producer, "JetStream not ready; retrying");
                    backoff.wait().await;
                }
                Err(error) => return Err(nats(error)),
            }
        }
    }

    /// Another producer's stream, once it exists: a consumer that starts
    /// before its producer ever has waits for it.
    async fn stream(&self, producer: &str) -> Result<stream::Stream> {
        let mut backoff = Backoff::default();
        let mut attempts = 0_u32;
        loop {
            let error = match self.find_stream(producer).await {
                Ok(Some(stream)) => return Ok(stream),
                Ok(None) => format!("{} does not exist yet", stream_name(producer)),
                Err(error) => error.to_string(),
            };
            if attempts.is_multiple_of(10) {
                tracing::warn!(error, producer, "waiting for the producer's stream");
            }
            attempts += 1;
            backoff.wait().await;
        }
    }

    /// The producer's stream, or `None` if it has none (yet).
    async fn find_stream(&self, producer: &str) -> Result<Option<stream::Stream>> {
        use async_nats::jetstream::ErrorCode;
        use async_nats::jetstream::context::GetStreamErrorKind;
        match self.context.get_stream(stream_name(producer)).await {
            Ok(stream) => Ok(Some(stream)),
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(jetstream)
                    if jetstream.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(nats(error)),
            },
        }
    }

    pub(crate) async fn register(
        &self,
        producer: &str,
        log: EventLog,
        addressee: crate::Addressee,
    ) -> Result<()> {
        self.local.register(producer, log.clone())?;
        self.own_stream(producer).await?;
        tokio::spawn(relay(self.clone(), producer.to_owned(), log, addressee));
        Ok(())
    }

    pub(crate) async fn subscribe(
        &self,
        consumer: &str,
        producer: &str,
        from_position: u64,
    ) -> Result<(Consumer, Alarms)> {
        Consumer::start(self, consumer, producer, from_position).await
    }

    pub(crate) async fn published_head(&self, producer: &str) -> Result<u64> {
        // No stream: the producer has published nothing yet.
        let Some(stream) = self.find_stream(producer).await? else {
            return Ok(0);
        };
        Ok(last_message(&stream)
            .await?
            .map_or(0, |(_, position)| position + 1))
    }

    fn repair(&self, producer: &str) -> Option<Repair> {
        self.local.log(producer).map(Repair::Local).or_else(|| {
            let url = self.options.producer_urls.get(producer)?;
            let tls = self.options.producer_tls.clone()?;
            Some(Repair::Remote(url.clone(), tls))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_subject_reference() {
        assert_eq!(stream_name("plan-registry"), "SAFEGUARD_PLAN_REGISTRY");
        assert_eq!(
            subject("plan-registry", None, "safeguard.registry.v1.PlanStarted"),
            "safeguard.plan-registry.PlanStarted"
        );
        assert_eq!(
            subject(
                "notification",
                Some("RXX01"),
                "safeguard.notification.v1.NotificationRaised"
            ),
            "safeguard.notification.RXX01.NotificationRaised"
        );
        assert!(is_token("RXX01") && !is_token("a.b") && !is_token("*") && !is_token(""));
        assert_eq!(
            durable_name("plan-registry.plan-rule"),
            "plan-registry_plan-rule"
        );
    }
}
