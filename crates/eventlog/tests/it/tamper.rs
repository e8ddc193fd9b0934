//! Tamper evidence: changes made behind the log's back are found and located.

use eventlog::{Error, ExpectedVersion, record};

use crate::support::{close, event, open};

/// A log of `count` events in stream "s", each with a payload naming it, closed.
async fn write_closed_log(path: &std::path::Path, count: usize) {
    let log = open(path);
    for index in 0..count {
        log.append(
            "s",
            ExpectedVersion::Any,
            vec![event(&format!(
                "payload-marker-{index:05}-{}",
                "x".repeat(40)
            ))],
        )
        .await
        .expect("append");
    }
    close(log).await;
}

fn first_error(path: &std::path::Path) -> Error {
    match crate::support::open_after_release(path) {
        Err(error) => error,
        Ok(log) => log.verify().expect_err("verify must find the damage"),
    }
}

#[tokio::test]
async fn an_intact_log_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 50).await;
    let log = open(dir.path());
    let report = log.verify().expect("verify");
    assert_eq!(report.records, 50);
    assert_eq!(report.streams, 1);
}

#[tokio::test]
async fn a_flipped_byte_in_the_files_is_located() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 200).await;
    let file = dir.path().join("db");
    let mut bytes = std::fs::read(&file).expect("read db file");
    let marker = b"payload-marker-00120-";
    let at = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the record's payload is in the file");
    bytes[at + 3] ^= 0x01;
    std::fs::write(&file, bytes).expect("write db file");

    match first_error(dir.path()) {
        Error::Corrupt { position, reason } => {
            eprintln!("corrupt at {position}: {reason}");
            assert_eq!(position, 120, "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// Rewrites the record at `position` with `edit` applied to its body,
/// directly in sled, as someone with access to the files could.
fn rewrite_record(path: &std::path::Path, position: u64, rehash: bool) {
    let db = crate::support::open_sled_after_release(path);
    let key = record::record_key(position);
    let mut bytes = db.get(key).expect("get").expect("record exists").to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20; // the payload is the end of the body
    if rehash {
        let previous = db
            .get(record::record_key(position - 1))
            .expect("get")
            .expect("previous exists");
        let previous = record::RawRecord::parse(position - 1, &previous)
            .expect("parse")
            .hash;
        let body = bytes[33..].to_vec();
        let hash = record::chain_hash(&previous, bytes[0], &body);
        bytes[1..33].copy_from_slice(&hash);
    }
    db.insert(key, bytes).expect("insert");
    db.flush().expect("flush");
}

fn corrupt_position(error: Error) -> (u64, String) {
    match error {
        Error::Corrupt { position, reason } => (position, reason),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[tokio::test]
async fn an_edited_record_breaks_its_own_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 60).await;
    rewrite_record(dir.path(), 30, false);
    let (position, reason) = corrupt_position(first_error(dir.path()));
    assert_eq!(position, 30, "{reason}");
    assert!(reason.contains("hash"), "{reason}");
}

#[tokio::test]
async fn an_edited_and_rehashed_record_breaks_the_chain_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 60).await;
    rewrite_record(dir.path(), 30, true);
    let (position, reason) = corrupt_position(first_error(dir.path()));
    assert_eq!(position, 31, "{reason}");
}

#[tokio::test]
async fn a_removed_record_is_named_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 60).await;
    {
        let db = crate::support::open_sled_after_release(dir.path());
        db.remove(record::record_key(17)).expect("remove");
        db.flush().expect("flush");
    }
    let (position, reason) = corrupt_position(first_error(dir.path()));
    assert_eq!(position, 17, "{reason}");
    assert!(reason.contains("missing"), "{reason}");
}

#[tokio::test]
async fn a_truncated_tail_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 40).await;
    {
        let db = crate::support::open_sled_after_release(dir.path());
        for position in 35..40 {
            db.remove(record::record_key(position)).expect("remove");
        }
        db.flush().expect("flush");
    }
    let error = crate::support::open_after_release(dir.path()).expect_err("open must refuse");
    let (position, reason) = corrupt_position(error);
    assert_eq!(position, 35, "{reason}");
}

#[tokio::test]
async fn a_log_without_its_anchor_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 10).await;
    std::fs::remove_file(dir.path().join("ANCHOR")).expect("remove the anchor");
    let error = crate::support::open_after_release(dir.path()).expect_err("open must refuse");
    let (position, reason) = corrupt_position(error);
    assert_eq!(position, 0, "{reason}");
    assert!(reason.contains("anchor"), "{reason}");
    assert!(
        !dir.path().join("ANCHOR").exists(),
        "no new anchor may bless what the log now holds"
    );
    assert!(matches!(
        eventlog::verify_copy(dir.path()),
        Err(Error::Corrupt { position: 0, .. })
    ));
}

#[tokio::test]
async fn a_copy_is_verified_without_touching_the_original() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_closed_log(dir.path(), 200).await;
    let report = eventlog::verify_copy(dir.path()).expect("verify an intact log");
    assert_eq!(report.records, 200);

    let file = dir.path().join("db");
    let mut bytes = std::fs::read(&file).expect("read db file");
    let marker = b"payload-marker-00077-";
    let at = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the record's payload is in the file");
    bytes[at + 5] ^= 0x04;
    std::fs::write(&file, &bytes).expect("write db file");
    let anchor = std::fs::read(dir.path().join("ANCHOR")).expect("anchor");

    let (position, reason) =
        corrupt_position(eventlog::verify_copy(dir.path()).expect_err("the flip is found"));
    assert_eq!(position, 77, "{reason}");
    assert_eq!(
        std::fs::read(&file).expect("db file"),
        bytes,
        "the files are not changed"
    );
    assert_eq!(
        std::fs::read(dir.path().join("ANCHOR")).expect("anchor"),
        anchor
    );
}
