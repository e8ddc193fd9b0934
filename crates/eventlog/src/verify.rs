//! Tamper evidence: walking the log and checking that it matches itself.

use std::collections::HashMap;

use crate::anchor::{self, Anchor};
use crate::record::{self, GENESIS_HASH, Hash, RawRecord};
use crate::{Error, EventId, Result};

/// What a successful walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked: positions `0..records`.
    pub records: u64,
    pub streams: u64,
    /// Hash of the last record: publish it elsewhere, and a later verify
    /// proves nothing before it changed.
    pub last_hash: Hash,
}

impl VerifyReport {
    pub fn last_hash_hex(&self) -> String {
        anchor::to_hex(&self.last_hash)
    }
}

/// Checks positions `0..end`: every record present, decodable, at the right
/// position and chained to the one before; every event id and stream version
/// indexed to it and nothing else indexed; the anchor satisfied.
pub(crate) fn verify(db: &sled::Db, end: u64, anchor: Option<Anchor>) -> Result<VerifyReport> {
    let mut expected_position = 0;
    let mut previous: Hash = GENESIS_HASH;
    let mut stream_versions: HashMap<String, u64> = HashMap::new();
    let records = db.range(record::record_key(0)..record::record_key(end));
    for entry in records {
        // sled reports a page failing its checksum as an error: the first
        // position not yet checked is the first that does not match.
        let (key, value) = entry.map_err(|error| unreadable(expected_position, error))?;
        let position = record::position_of_record_key(&key)
            .ok_or_else(|| record::corrupt(expected_position, "malformed record key"))?;
        if position != expected_position {
            return Err(record::corrupt(expected_position, "record is missing"));
        }
        let raw = RawRecord::parse(position, &value)?;
        if record::chain_hash(&previous, raw.format, raw.body) != raw.hash {
            return Err(record::corrupt(
                position,
                "hash does not match the record and the one before it",
            ));
        }
        let envelope = raw.envelope(position)?;
        let event_id = EventId::from_slice(&envelope.event_id)
            .ok_or_else(|| record::corrupt(position, "event id is not 16 bytes"))?;
        let version = stream_versions
            .entry(envelope.stream_id.clone())
            .or_insert(0);
        if envelope.stream_version != *version {
            return Err(record::corrupt(
                position,
                &format!(
                    "stream {} jumps to version {} from {}",
                    envelope.stream_id, envelope.stream_version, version
                ),
            ));
        }
        *version += 1;
        let indexed = |key: &[u8], what: &str| -> Result<()> {
            let value = db.get(key).map_err(|error| unreadable(position, error))?;
            match value.as_deref().and_then(record::decode_u64) {
                Some(indexed) if indexed == position => Ok(()),
                _ => Err(record::corrupt(
                    position,
                    &format!("{what} index does not point to it"),
                )),
            }
        };
        indexed(&record::id_key(event_id.as_bytes()), "event id")?;
        indexed(
            &record::stream_key(&envelope.stream_id, envelope.stream_version),
            "stream",
        )?;
        previous = raw.hash;
        expected_position += 1;
    }
    if expected_position != end {
        return Err(record::corrupt(expected_position, "record is missing"));
    }
    check_no_stray_index_entries(db, end)?;
    if let Some(anchor) = anchor {
        check_anchor(db, end, anchor)?;
    }
    Ok(VerifyReport {
        records: end,
        streams: stream_versions.len() as u64,
        last_hash: previous,
    })
}

/// Every index entry belongs to a record. With each record's own entries
/// checked above, equal counts below `end` leave no stray entry there; an
/// entry at or past `end` must belong to a record being appended right now
/// (applied, not yet durable).
fn check_no_stray_index_entries(db: &sled::Db, end: u64) -> Result<()> {
    for prefix in [record::ID_PREFIX, record::STREAM_PREFIX] {
        let mut entries = 0_u64;
        for entry in db.scan_prefix([prefix]) {
            let (_, value) = entry.map_err(|error| unreadable(end, error))?;
            match record::decode_u64(&value) {
                Some(position) if position < end => entries += 1,
                Some(position) => {
                    let in_flight = db
                        .contains_key(record::record_key(position))
                        .map_err(|error| unreadable(position, error))?;
                    if !in_flight {
                        return Err(record::corrupt(
                            position,
                            "indexed but beyond the end of the log",
                        ));
                    }
                }
                None => return Err(record::corrupt(end, "unreadable index entry")),
            }
        }
        if entries != end {
            return Err(record::corrupt(
                end,
                &format!("{entries} index entries for {end} records"),
            ));
        }
    }
    Ok(())
}

/// The log holds at least the records the anchor says were acknowledged, and
/// the last of them is the one the anchor names.
pub(crate) fn check_anchor(db: &sled::Db, end: u64, anchor: Anchor) -> Result<()> {
    if anchor.records == 0 {
        return Ok(());
    }
    if end < anchor.records {
        return Err(record::corrupt(
            end,
            &format!(
                "the log ends here but {} records were acknowledged",
                anchor.records
            ),
        ));
    }
    let position = anchor.records - 1;
    let bytes = db
        .get(record::record_key(position))
        .map_err(|error| unreadable(position, error))?
        .ok_or_else(|| record::corrupt(position, "anchored record is missing"))?;
    if RawRecord::parse(position, &bytes)?.hash != anchor.last_hash {
        return Err(record::corrupt(
            position,
            "hash differs from the one anchored when it was acknowledged",
        ));
    }
    Ok(())
}

fn unreadable(position: u64, error: sled::Error) -> Error {
    match error {
        sled::Error::Corruption { .. } => {
            record::corrupt(position, &format!("storage checksum failed: {error}"))
        }
        other => other.into(),
    }
}
