//! The stored format: how keys are laid out in the one sled tree, and how a
//! record is encoded, versioned and chained to the one before it.
//!
//! Everything lives in a single sled tree so that one `apply_batch` makes a
//! whole append atomic: the records, their stream index and id index entries.
//!
//! | key                                   | value                       |
//! |---------------------------------------|-----------------------------|
//! | `r` position (u64 BE)                 | record (below)              |
//! | `s` stream id `\0` version (u64 BE)   | position (u64 BE)           |
//! | `i` event id (16 bytes)               | position (u64 BE)           |
//! | `c` cursor name                       | position (u64 BE)           |
//! | `m` `format`                          | highest record format (u8)  |
//!
//! A record, format 1: `[format: u8 = 1][hash: 32 bytes][body]`, where body is
//! a protobuf `safeguard.events.v1.EventEnvelope` and
//! `hash = SHA-256(previous record's hash || format || body)`, the previous hash
//! of position 0 being 32 zero bytes. A later format gets a new number; this
//! build must go on reading format 1 (see `test-data/` and the golden tests).

use contract::events::v1::EventEnvelope;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub const FORMAT_V1: u8 = 1;
/// The newest record format this build writes and reads.
pub const CURRENT_FORMAT: u8 = FORMAT_V1;

pub const HASH_LEN: usize = 32;
pub type Hash = [u8; HASH_LEN];
/// The hash "before" position 0.
pub const GENESIS_HASH: Hash = [0; HASH_LEN];

const HEADER_LEN: usize = 1 + HASH_LEN;

pub const RECORD_PREFIX: u8 = b'r';
pub const STREAM_PREFIX: u8 = b's';
pub const ID_PREFIX: u8 = b'i';
pub const CURSOR_PREFIX: u8 = b'c';
pub const FORMAT_META_KEY: &[u8] = b"mformat";

/// The sled settings a log's files are written with. Anything that opens
/// them directly (tools, tests, benchmarks) must use these: sled refuses
/// files written with another segment size.
pub fn sled_config(path: &std::path::Path) -> sled::Config {
    sled::Config::new().path(path).segment_size(SEGMENT_BYTES)
}

/// sled's segment size (a power of two); see `MAX_EVENT_BYTES`.
const SEGMENT_BYTES: usize = 8 * 1024 * 1024;

pub fn record_key(position: u64) -> [u8; 9] {
    let mut key = [RECORD_PREFIX; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// The position a record key names, or `None` if it is not a record key.
pub fn position_of_record_key(key: &[u8]) -> Option<u64> {
    match key {
        [RECORD_PREFIX, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// `s` stream `\0`: every key of one stream starts with this. Stream ids can
/// hold no NUL (checked on append), so no stream's prefix is another's.
pub fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 2 + 8);
    key.push(STREAM_PREFIX);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key
}

pub fn stream_key(stream: &str, version: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub fn id_key(event_id: &[u8; 16]) -> [u8; 17] {
    let mut key = [ID_PREFIX; 17];
    key[1..].copy_from_slice(event_id);
    key
}

pub fn cursor_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(CURSOR_PREFIX);
    key.extend_from_slice(name.as_bytes());
    key
}

pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The chain hash of a record with this format and body, following `previous`.
pub fn chain_hash(previous: &Hash, format: u8, body: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update([format]);
    hasher.update(body);
    hasher.finalize().into()
}

/// Encodes an envelope as a current-format record chained to `previous`.
/// Returns the record bytes and its hash.
pub fn encode_record(previous: &Hash, envelope: &EventEnvelope) -> (Vec<u8>, Hash) {
    let body_len = envelope.encoded_len();
    let mut record = Vec::with_capacity(HEADER_LEN + body_len);
    record.push(CURRENT_FORMAT);
    record.extend_from_slice(&[0; HASH_LEN]);
    // Encoding into a Vec with enough capacity cannot fail.
    envelope
        .encode(&mut record)
        .expect("a Vec with reserved capacity accepts the whole message");
    let hash = chain_hash(previous, CURRENT_FORMAT, &record[HEADER_LEN..]);
    record[1..HEADER_LEN].copy_from_slice(&hash);
    (record, hash)
}

/// A stored record split into its parts, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub format: u8,
    pub hash: Hash,
    pub body: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Splits the bytes stored at `position`.
    pub fn parse(position: u64, bytes: &'a [u8]) -> Result<Self> {
        let Some((&format, rest)) = bytes.split_first() else {
            return Err(corrupt(position, "empty record"));
        };
        if format == 0 || format > CURRENT_FORMAT {
            return Err(Error::UnsupportedFormat {
                position,
                version: format,
                supported: CURRENT_FORMAT,
            });
        }
        if rest.len() < HASH_LEN {
            return Err(corrupt(position, "record shorter than its header"));
        }
        let (hash, body) = rest.split_at(HASH_LEN);
        Ok(RawRecord {
            format,
            hash: hash.try_into().expect("split at HASH_LEN"),
            body,
        })
    }

    pub fn envelope(&self, position: u64) -> Result<EventEnvelope> {
        let envelope = EventEnvelope::decode(self.body)
            .map_err(|error| corrupt(position, &format!("body does not decode: {error}")))?;
        if envelope.global_position != position {
            return Err(corrupt(
                position,
                &format!("record says it is at position {}", envelope.global_position),
            ));
        }
        Ok(envelope)
    }
}

/// Decodes the record stored at `position`.
pub fn decode_record(position: u64, bytes: &[u8]) -> Result<EventEnvelope> {
    RawRecord::parse(position, bytes)?.envelope(position)
}

pub fn corrupt(position: u64, reason: &str) -> Error {
    Error::Corrupt {
        position,
        reason: reason.to_owned(),
    }
}

/// An event as stored: its position and its record, shared with sled's
/// cache rather than copied, and decoded only when asked. A replay or a relay
/// that forwards envelopes (their protobuf bytes are the record's body) pays
/// for no decoding; a projection decodes what it reads.
#[derive(Clone)]
pub struct RecordedEvent {
    position: u64,
    record: sled::IVec,
}

impl RecordedEvent {
    /// Wraps the record stored at `position`, checking its header.
    pub(crate) fn new(position: u64, record: sled::IVec) -> Result<Self> {
        RawRecord::parse(position, &record)?;
        Ok(RecordedEvent { position, record })
    }

    /// A record that came from elsewhere (over the bus, or read from its
    /// producer over gRPC), checked as one read from disk is.
    pub fn from_record(position: u64, record: &[u8]) -> Result<Self> {
        Self::new(position, sled::IVec::from(record))
    }

    /// The record exactly as the log stores it: format, chain hash,
    /// envelope. What the bus carries.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// Wraps a record this build has just encoded.
    pub(crate) fn from_encoded(position: u64, record: sled::IVec) -> Self {
        RecordedEvent { position, record }
    }

    /// The event's global position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The record's chain hash.
    pub fn hash(&self) -> Hash {
        self.raw().hash
    }

    /// Whether this record's chain hash is the one it would have following a
    /// record with hash `previous`: whether it is the next record of the
    /// same history.
    pub fn follows(&self, previous: &Hash) -> bool {
        let raw = self.raw();
        chain_hash(previous, raw.format, raw.body) == raw.hash
    }

    /// The envelope, protobuf-encoded exactly as stored: a
    /// `safeguard.events.v1.EventEnvelope`.
    pub fn encoded_envelope(&self) -> &[u8] {
        self.raw().body
    }

    /// The envelope, decoded.
    pub fn envelope(&self) -> Result<EventEnvelope> {
        self.raw().envelope(self.position)
    }

    fn raw(&self) -> RawRecord<'_> {
        RawRecord::parse(self.position, &self.record)
            .expect("the header was checked when the event was read")
    }
}

impl std::fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("position", &self.position)
            .field("bytes", &self.record.len())
            .finish()
    }
}

impl PartialEq for RecordedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position && self.record == other.record
    }
}
