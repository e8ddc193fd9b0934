//! Opening logs in temp directories and making events for tests.

use std::path::Path;

use contract::events::v1::EventEnvelope;
use eventlog::{EventId, EventLog, NewEvent, Options, RecordedEvent};

pub fn open(path: &Path) -> EventLog {
    open_after_release(path).expect("open the log")
}

/// Opens the log once whoever had its files last (a closed log, or sled
/// opened directly by a test) has let go of them: sled's background threads
/// release the file lock a moment after the handle is dropped.
pub fn open_after_release(path: &Path) -> eventlog::Result<EventLog> {
    for _ in 0..100 {
        match EventLog::open(Options::new(path)) {
            Err(eventlog::Error::Storage(message))
                if message.contains("could not acquire lock") =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
    EventLog::open(Options::new(path))
}

/// Opens the log's sled database directly, as a test that damages it does,
/// once the closed log has let go of its files.
pub fn open_sled_after_release(path: &Path) -> sled::Db {
    for _ in 0..100 {
        match eventlog::record::sled_config(path).open() {
            Err(sled::Error::Io(error)) if error.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("open sled directly"),
        }
    }
    eventlog::record::sled_config(path)
        .open()
        .expect("open sled directly")
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
