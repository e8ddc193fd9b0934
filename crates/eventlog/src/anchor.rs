//! The anchor: a small file beside sled's own, saying how many records the
//! log had acknowledged and the hash of the last one.
//!
//! sled treats a record that fails its checksum during recovery as a torn
//! write and silently ends its log there, so a flipped byte in the middle of
//! its files would make every later event vanish without a word. The anchor
//! is written outside sled (atomically: temp file, fsync, rename, fsync the
//! directory) after writes are durable, at most once a second and at
//! shutdown, so it never claims more than the disk holds; a log found shorter
//! than its anchor, or with another hash at the anchored position, is corrupt.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::{HASH_LEN, Hash};
use crate::{Error, Result};

const FILE_NAME: &str = "ANCHOR";
const HEADER: &str = "safeguard-eventlog-anchor 1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Number of records acknowledged: positions `0..records`.
    pub records: u64,
    /// Hash of the record at `records - 1` (meaningless when `records` is 0).
    pub last_hash: Hash,
}

pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

pub fn read(dir: &Path) -> Result<Option<Anchor>> {
    let text = match fs::read_to_string(path_in(dir)) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    parse(&text).map(Some).ok_or_else(|| {
        Error::Storage(format!(
            "anchor file {} is unreadable",
            path_in(dir).display()
        ))
    })
}

fn parse(text: &str) -> Option<Anchor> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let records = lines.next()?.strip_prefix("records ")?.parse().ok()?;
    let hex = lines.next()?.strip_prefix("last_hash ")?;
    Some(Anchor {
        records,
        last_hash: from_hex(hex)?,
    })
}

pub fn write(dir: &Path, anchor: Anchor) -> Result<()> {
    let text = format!(
        "{HEADER}\nrecords {}\nlast_hash {}\n",
        anchor.records,
        to_hex(&anchor.last_hash)
    );
    let temp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&temp, path_in(dir))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn from_hex(hex: &str) -> Option<Hash> {
    if hex.len() != HASH_LEN * 2 {
        return None;
    }
    let mut hash = [0; HASH_LEN];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path()).expect("read"), None);
        let anchor = Anchor {
            records: 42,
            last_hash: [7; HASH_LEN],
        };
        write(dir.path(), anchor).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(anchor));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(
            path_in(dir.path()),
            "safeguard-eventlog-anchor 1\nrecords x\n",
        )
        .expect("write");
        assert!(matches!(read(dir.path()), Err(Error::Storage(_))));
    }
}
