//! What callers hand to the log and what it hands back: event ids, new
//! events, expected versions and append outcomes.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use contract::events::v1::{Actor, EventEnvelope};

/// A unique, time-ordered event id: a UUID version 7. It is also the
/// idempotency key of the event, for ever.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 16]);

impl EventId {
    /// A fresh id: milliseconds since the Unix epoch, then random bits.
    pub fn new() -> Self {
        EventId(*uuid::Uuid::now_v7().as_bytes())
    }

    /// The id of the `index`-th event that `purpose` derives from `source`:
    /// the same inputs always give the same id, so a consumer that handles
    /// a redelivered event appends nothing new (the log deduplicates). It
    /// keeps the source's millisecond timestamp, so it stays time-ordered,
    /// and is marked as a version 7 UUID.
    pub fn derived(source: EventId, purpose: &str, index: u32) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(source.0)
            .chain_update(purpose.as_bytes())
            .chain_update(index.to_be_bytes())
            .finalize();
        let mut bytes = [0_u8; 16];
        bytes[..6].copy_from_slice(&source.0[..6]);
        bytes[6..].copy_from_slice(&digest[..10]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        EventId(bytes)
    }

    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(bytes)
    }

    /// Reads an id from the 16 bytes of an envelope's `event_id`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(EventId(bytes.try_into().ok()?))
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_distinct_and_keep_the_source_time() {
        let source = EventId::new();
        let id = EventId::derived(source, "registry:plan-started", 0);
        assert_eq!(id, EventId::derived(source, "registry:plan-started", 0));
        assert_ne!(id, EventId::derived(source, "registry:plan-started", 1));
        assert_ne!(id, EventId::derived(source, "notification", 0));
        assert_eq!(id.as_bytes()[..6], source.as_bytes()[..6]);
        let uuid = uuid::Uuid::from_bytes(*id.as_bytes());
        assert_eq!(uuid.get_version_num(), 7);
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// An event to append. The log adds the stream, both positions and the
/// recorded-at time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: EventId,
    pub occurred_at: SystemTime,
    pub correlation_id: Vec<u8>,
    pub causation_id: Vec<u8>,
    pub actor: Option<Actor>,
    /// Fully-qualified protobuf name of the payload message.
    pub content_type: String,
    pub content_version: u32,
    pub payload: Vec<u8>,
    /// The W3C `traceparent` of the span that caused the event; "" for none.
    pub traceparent: String,
}

impl NewEvent {
    /// An event with a fresh id, occurring now, at content version 1, with
    /// no correlation, causation, actor or trace.
    pub fn new(content_type: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        NewEvent {
            event_id: EventId::new(),
            occurred_at: SystemTime::now(),
            correlation_id: Vec::new(),
            causation_id: Vec::new(),
            actor: None,
            content_type: content_type.into(),
            content_version: 1,
            payload: payload.into(),
            traceparent: String::new(),
        }
    }

    /// Roughly the bytes the event takes in its record (an upper bound).
    pub(crate) fn encoded_len(&self) -> usize {
        use prost::Message;
        const FIXED: usize = 128; // ids, positions, times, tags
        FIXED
            + self.payload.len()
            + self.content_type.len()
            + self.correlation_id.len()
            + self.causation_id.len()
            + self.traceparent.len()
            + self.actor.as_ref().map_or(0, Message::encoded_len)
    }

    pub(crate) fn into_envelope(
        self,
        stream_id: String,
        stream_version: u64,
        global_position: u64,
        recorded_at: prost_types::Timestamp,
    ) -> EventEnvelope {
        EventEnvelope {
            event_id: self.event_id.as_bytes().to_vec(),
            stream_id,
            stream_version,
            global_position,
            occurred_at: Some(self.occurred_at.into()),
            recorded_at: Some(recorded_at),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            actor: self.actor,
            content_type: self.content_type,
            content_version: self.content_version,
            payload: self.payload,
            traceparent: self.traceparent,
        }
    }
}

/// What the caller believes about the stream it appends to: the optimistic
/// concurrency check that keeps two writers from deciding on stale state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream's last event must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    pub(crate) fn admits(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(version) => actual == Some(version),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// Where an append's events stand: contiguous in the log and in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Global positions of the batch's events, in the order given.
    pub positions: Range<u64>,
    /// Stream versions of the batch's events, in the order given.
    pub stream_versions: Range<u64>,
    /// True when every event id had been written before: nothing was
    /// written now and these are the original positions.
    pub deduplicated: bool,
}
