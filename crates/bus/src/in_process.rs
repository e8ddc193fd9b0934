//! The one-process bus: a consumer reads the producer's log directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eventlog::EventLog;
use tokio::sync::watch;

use crate::{Error, Result};

/// The producers registered in this process, by name. The JetStream bus
/// keeps one too: a gap is repaired from a local producer's log directly.
#[derive(Debug, Clone)]
pub(crate) struct InProcess {
    producers: Arc<Mutex<HashMap<String, EventLog>>>,
    /// Bumped whenever a producer registers, so subscribers that started
    /// first can wait for theirs.
    registered: Arc<watch::Sender<u64>>,
}

impl Default for InProcess {
    fn default() -> Self {
        InProcess {
            producers: Arc::default(),
            registered: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl InProcess {
    pub(crate) fn register(&self, producer: &str, log: EventLog) -> Result<()> {
        let mut producers = self.producers.lock().map_err(|_| Error::Closed)?;
        if producers.contains_key(producer) {
            return Err(Error::DuplicateProducer(producer.to_owned()));
        }
        producers.insert(producer.to_owned(), log);
        self.registered.send_modify(|count| *count += 1);
        Ok(())
    }

    /// The producer's log if it is registered here.
    pub(crate) fn log(&self, producer: &str) -> Option<EventLog> {
        self.producers.lock().ok()?.get(producer).cloned()
    }

    pub(crate) async fn subscribe(
        &self,
        producer: &str,
        from_position: u64,
    ) -> Result<eventlog::Subscription> {
        let mut registered = self.registered.subscribe();
        loop {
            if let Some(log) = self.log(producer) {
                return Ok(log.subscribe(from_position));
            }
            registered.changed().await.map_err(|_| Error::Closed)?;
        }
    }
}
