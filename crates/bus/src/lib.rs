//! The event bus: how services learn of each other's events.
//!
//! A producer's events are the records of its own log, in log order; a
//! consumer asks for them from a position and receives each at least once,
//! in order, each position once per subscription. Consumers keep their own
//! place (a durable cursor in their own log) and make their effects
//! idempotent by deriving the ids of the events they append from the ids of
//! the events they handle ([`eventlog::EventId::derived`]), so a redelivery
//! across a restart changes nothing.
//!
//! Two implementations behave the same behind [`Bus`]:
//! - [`Bus::in_process`] hands consumers the producer's log directly: the
//!   one-process default;
//! - [`Bus::jetstream`] carries the same records between processes through
//!   NATS JetStream (`jetstream`): a relay publishes each producer's durable
//!   events (a transactional outbox), consumers read durable JetStream
//!   consumers and repair any gap in positions from the producer itself
//!   (`repair`).

mod backoff;
mod in_process;
mod jetstream;
mod log_reader;
mod repair;

use std::sync::Arc;

use eventlog::{EventLog, RecordedEvent};

pub use crate::jetstream::{
    Alarms, CONTENT_TYPE_HEADER, JetStreamOptions, POSITION_HEADER, PRODUCER_HEADER, Refused,
    SIGNATURE_HEADER, TRACEPARENT_HEADER, connect as connect_nats, inbox_prefix, stream_name,
    subject, subject_prefix,
};
pub use crate::log_reader::LogReader;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("producer {0} is already registered")]
    DuplicateProducer(String),
    #[error("the bus is closed")]
    Closed,
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error(
        "{producer} skipped from position {expected} to {found} and the gap cannot be repaired: {reason}"
    )]
    Gap {
        producer: String,
        expected: u64,
        found: u64,
        reason: String,
    },
    #[error("an unreadable message from {producer}: {reason}")]
    Malformed { producer: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whom an event is addressed to, if anyone: a NATS subject token (an ODS
/// code).
pub type Addressee = fn(&contract::events::v1::EventEnvelope) -> Option<String>;

/// One event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The service whose log holds it.
    pub producer: Arc<str>,
    pub event: RecordedEvent,
}

/// A cheap handle on the bus; clone it into every service.
#[derive(Debug, Clone)]
pub struct Bus {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    InProcess(in_process::InProcess),
    JetStream(Box<jetstream::JetStream>),
}

impl Bus {
    /// The one-process bus: consumers read producers' logs directly.
    pub fn in_process() -> Self {
        Bus {
            kind: Kind::InProcess(in_process::InProcess::default()),
        }
    }

    /// The bus through NATS JetStream at `options.url`. Fails if the server
    /// cannot be reached at start; after that, outages are waited out.
    pub async fn jetstream(options: JetStreamOptions) -> Result<Self> {
        Ok(Bus {
            kind: Kind::JetStream(Box::new(jetstream::JetStream::connect(options).await?)),
        })
    }

    /// Makes `log` the source of `producer`'s events. On JetStream, starts
    /// the relay that publishes them.
    pub async fn register_producer(&self, producer: &str, log: EventLog) -> Result<()> {
        self.register_addressed_producer(producer, log, |_| None)
            .await
    }

    /// The same, for a producer whose events are each addressed to one
    /// organisation: on JetStream, an event `addressee` names (an ODS code)
    /// goes on `safeguard.<producer>.<addressee>.<Kind>`, so that
    /// organisation can be allowed its own subjects and no one else's.
    pub async fn register_addressed_producer(
        &self,
        producer: &str,
        log: EventLog,
        addressee: Addressee,
    ) -> Result<()> {
        match &self.kind {
            Kind::InProcess(bus) => bus.register(producer, log),
            Kind::JetStream(bus) => bus.register(producer, log, addressee).await,
        }
    }

    /// `producer`'s events from `from_position` on, in order, for the
    /// consumer named `consumer` (unique per consuming service and purpose,
    /// e.g. `plan-registry.plan-rule`). Waits for the producer if it has not
    /// started yet, so services can start in any order.
    pub async fn subscribe(
        &self,
        consumer: &str,
        producer: &str,
        from_position: u64,
    ) -> Result<BusSubscription> {
        let (source, alarms) = match &self.kind {
            Kind::InProcess(bus) => (
                Source::Log(bus.subscribe(producer, from_position).await?),
                None,
            ),
            Kind::JetStream(bus) => {
                let (consumer, alarms) = bus.subscribe(consumer, producer, from_position).await?;
                (Source::JetStream(Box::new(consumer)), Some(alarms))
            }
        };
        Ok(BusSubscription {
            producer: Arc::from(producer),
            source,
            alarms,
        })
    }

    /// The position after the last of `producer`'s events that a consumer
    /// could be given now: its log's head in process, the position of the
    /// last message in its stream on JetStream (0 if none). A follower that
    /// has reached it has seen everything published when it asked.
    pub async fn published_head(&self, producer: &str) -> Result<u64> {
        match &self.kind {
            Kind::InProcess(bus) => Ok(bus.log(producer).map_or(0, |log| log.head())),
            Kind::JetStream(bus) => bus.published_head(producer).await,
        }
    }

    /// Which bus this is, for the line a service prints when it starts.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::InProcess(_) => "the in-process bus".to_owned(),
            Kind::JetStream(bus) => format!("NATS JetStream at {}", bus.url()),
        }
    }
}

/// A consumer's view of one producer: every event from a position on.
#[derive(Debug)]
pub struct BusSubscription {
    producer: Arc<str>,
    source: Source,
    alarms: Option<Alarms>,
}

#[derive(Debug)]
enum Source {
    Log(eventlog::Subscription),
    JetStream(Box<jetstream::Consumer>),
}

impl BusSubscription {
    /// The next event. Asking for the next one also tells the bus that the
    /// previous one is handled (JetStream: it is acknowledged).
    pub async fn next(&mut self) -> Result<Delivery> {
        let event = match &mut self.source {
            Source::Log(events) => events.next().await.map_err(|error| match error {
                eventlog::Error::Closed => Error::Closed,
                other => Error::Log(other),
            })?,
            Source::JetStream(consumer) => consumer.next().await?,
        };
        Ok(Delivery {
            producer: self.producer.clone(),
            event,
        })
    }

    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// What this subscription reports beside its records (messages it
    /// refused, a repair that is stuck), once: for the service to record
    /// and show in its health. None in process, where records are read from
    /// the producer's log itself.
    pub fn take_alarms(&mut self) -> Option<Alarms> {
        self.alarms.take()
    }
}
