//! The event bus: how services learn of each other's events.
//!
//! A producer's events are the records of its own log, in log order; a
//! consumer asks for them from a position and receives each at least once,
//! in order. Consumers keep their own place (a durable cursor in their own
//! log) and make their effects idempotent by deriving the ids of the events
//! they append from the ids of the events they handle
//! ([`eventlog::EventId::derived`]), so a redelivery changes nothing.
//!
//! [`Bus::in_process`] hands consumers the producer's log directly: the
//! one-process default. A NATS JetStream implementation behind the same
//! interface carries the same records between processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eventlog::{EventLog, RecordedEvent};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("producer {0} is already registered")]
    DuplicateProducer(String),
    #[error("the bus is closed")]
    Closed,
    #[error(transparent)]
    Log(#[from] eventlog::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    producers: Arc<Mutex<HashMap<String, EventLog>>>,
    /// Bumped whenever a producer registers, so subscribers that started
    /// first can wait for theirs.
    registered: Arc<watch::Sender<u64>>,
}

impl Bus {
    /// The one-process bus: consumers read producers' logs directly.
    pub fn in_process() -> Self {
        Bus {
            producers: Arc::default(),
            registered: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Makes `log` the source of `producer`'s events.
    pub fn register_producer(&self, producer: &str, log: EventLog) -> Result<()> {
        let mut producers = self.producers.lock().map_err(|_| Error::Closed)?;
        if producers.contains_key(producer) {
            return Err(Error::DuplicateProducer(producer.to_owned()));
        }
        producers.insert(producer.to_owned(), log);
        self.registered.send_modify(|count| *count += 1);
        Ok(())
    }

    /// `producer`'s events from `from_position` on, in order. Waits for the
    /// producer to register if it has not yet, so services can start in any
    /// order.
    pub async fn subscribe(&self, producer: &str, from_position: u64) -> Result<BusSubscription> {
        let mut registered = self.registered.subscribe();
        loop {
            let log = {
                let producers = self.producers.lock().map_err(|_| Error::Closed)?;
                producers.get(producer).cloned()
            };
            if let Some(log) = log {
                return Ok(BusSubscription {
                    producer: Arc::from(producer),
                    events: log.subscribe(from_position),
                });
            }
            registered.changed().await.map_err(|_| Error::Closed)?;
        }
    }
}

/// A consumer's view of one producer: every event from a position on.
#[derive(Debug)]
pub struct BusSubscription {
    producer: Arc<str>,
    events: eventlog::Subscription,
}

impl BusSubscription {
    pub async fn next(&mut self) -> Result<Delivery> {
        let event = self.events.next().await.map_err(|error| match error {
            eventlog::Error::Closed => Error::Closed,
            other => Error::Log(other),
        })?;
        Ok(Delivery {
            producer: self.producer.clone(),
            event,
        })
    }

    pub fn producer(&self) -> &str {
        &self.producer
    }
}
