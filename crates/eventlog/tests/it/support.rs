//! Opening logs in temp directories and making events for tests.

use std::path::Path;

use contract::events::v1::EventEnvelope;
use eventlog::{EventId, EventLog, NewEvent, Options, RecordedEvent};

pub fn open(path: &Path) -> EventLog {
    EventLog::open(Options::new(path)).expect("open the log")
}

/// An event whose payload names it, so tests can tell events apart.
pub fn event(label: &str) -> NewEvent {
    NewEvent::new("safeguard.test.v1.Labelled", label.as_bytes().to_vec())
}

pub fn event_with_id(id: EventId, label: &str) -> NewEvent {
    NewEvent {
        event_id: id,
        ..event(label)
    }
}

pub fn events(labels: &[&str]) -> Vec<NewEvent> {
    labels.iter().map(|label| event(label)).collect()
}

/// The envelopes of recorded events, decoded.
pub fn decoded(events: &[RecordedEvent]) -> Vec<EventEnvelope> {
    events
        .iter()
        .map(|event| event.envelope().expect("decodes"))
        .collect()
}

pub fn labels(events: &[RecordedEvent]) -> Vec<String> {
    decoded(events)
        .iter()
        .map(|event| String::from_utf8_lossy(&event.payload).into_owned())
        .collect()
}

/// Closes the log and releases sled's files, so it can be opened again.
pub async fn close(log: EventLog) {
    log.close().await.expect("close");
    drop(log);
}
