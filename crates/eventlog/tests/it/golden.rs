//! The stored format, pinned: `test-data/v1.json` is a log written by format
//! 1 (every key and value sled holds, in hex) and `v1.expected.json` is what
//! reading it must give. Every later build must read it the same way; a
//! change of format gets a new version and new golden files beside these.
//!
//! `SAFEGUARD_UPDATE_GOLDEN=1 cargo test -p eventlog golden` rewrites them,
//! which is only right when a new format version is introduced.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use contract::common::v1::{CallerIdentity, CareSetting, Organisation, OrganisationKind, Role};
use contract::events::v1::{Actor, EventEnvelope, actor};
use eventlog::{EventId, ExpectedVersion, NewEvent, record};
use prost::Message;
use serde_json::{Value, json};

use crate::support::{close, decoded, open};

fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-data")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

/// A small log with every envelope field in use; synthetic data only.
async fn write_sample(path: &Path) {
    let log = open(path);
    let nurse = Actor {
        kind: Some(actor::Kind::Person(CallerIdentity {
            organisation: Some(Organisation {
                ods_code: "RXX01".into(),
                name: "Northgate General Hospital NHS Trust".into(),
                kind: OrganisationKind::NhsTrust.into(),
            }),
            user_id: "user-0001".into(),
            display_name: "Test Nurse".into(),
            role: Role::UnscheduledCareClinician.into(),
            care_setting: CareSetting::EmergencyDepartment.into(),
        })),
    };
    let at = |seconds: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    let sample = |id: u8, content_type: &str, payload: &str, seconds: u64| NewEvent {
        event_id: EventId::from_bytes([id; 16]),
        occurred_at: at(seconds),
        correlation_id: vec![0xc0, id],
        causation_id: vec![0xca, id],
        actor: Some(nurse.clone()),
        content_type: content_type.into(),
        content_version: 1,
        payload: payload.as_bytes().to_vec(),
        // The golden log predates the envelope's traceparent.
        traceparent: String::new(),
    };
    log.append(
        "referral-1",
        ExpectedVersion::NoStream,
        vec![
            sample(
                1,
                "safeguard.test.v1.Submitted",
                "child 9990000018",
                1_767_225_600,
            ),
            sample(
                2,
                "safeguard.test.v1.Decided",
                "strategy discussion",
                1_767_312_000,
            ),
        ],
    )
    .await
    .expect("append");
    let mut system = sample(3, "safeguard.test.v1.Looked", "", 1_767_398_400);
    system.actor = Some(Actor {
        kind: Some(actor::Kind::System("registry".into())),
    });
    system.content_version = 2;
    log.append("plan-1", ExpectedVersion::NoStream, vec![system])
        .await
        .expect("append");
    log.set_cursor("projection", 3).await.expect("cursor");
    close(log).await;
}

fn describe(event: &EventEnvelope) -> Value {
    let time = |stamp: &Option<prost_types::Timestamp>| {
        stamp
            .as_ref()
            .map(|stamp| json!([stamp.seconds, stamp.nanos]))
    };
    json!({
        "event_id": hex(&event.event_id),
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "global_position": event.global_position,
        "occurred_at": time(&event.occurred_at),
        "recorded_at": time(&event.recorded_at),
        "correlation_id": hex(&event.correlation_id),
        "causation_id": hex(&event.causation_id),
        // Protobuf bytes, not Debug text: stable across prost versions.
        "actor": event.actor.as_ref().map(|actor| hex(&actor.encode_to_vec())),
        "content_type": event.content_type,
        "content_version": event.content_version,
        "payload": String::from_utf8_lossy(&event.payload),
    })
}

fn dump(path: &Path) -> Value {
    let db = crate::support::open_sled_after_release(path);
    let pairs: Vec<Value> = db
        .iter()
        .map(|entry| {
            let (key, value) = entry.expect("entry");
            json!([hex(&key), hex(&value)])
        })
        .collect();
    json!({ "format": 1, "tree": pairs })
}

/// Loads a golden tree into a fresh sled directory.
fn load(golden: &Value, path: &Path) {
    let db = crate::support::open_sled_after_release(path);
    for pair in golden["tree"].as_array().expect("tree") {
        db.insert(
            unhex(pair[0].as_str().expect("key")),
            unhex(pair[1].as_str().expect("value")),
        )
        .expect("insert");
    }
    db.flush().expect("flush");
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(test_data().join(name)).expect("golden file");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn format_1_logs_read_as_they_always_did() {
    if std::env::var_os("SAFEGUARD_UPDATE_GOLDEN").is_some() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_sample(dir.path()).await;
        let log = open(dir.path());
        let events: Vec<Value> = decoded(&log.read_all(0, 100).expect("read"))
            .iter()
            .map(describe)
            .collect();
        let expected = json!({
            "events": events,
            "last_hash": log.verify().expect("verify").last_hash_hex(),
        });
        close(log).await;
        std::fs::create_dir_all(test_data()).expect("test-data");
        let pretty = |value: &Value| serde_json::to_string_pretty(value).expect("json") + "\n";
        std::fs::write(test_data().join("v1.json"), pretty(&dump(dir.path()))).expect("write");
        std::fs::write(test_data().join("v1.expected.json"), pretty(&expected)).expect("write");
    }

    let golden = read_json("v1.json");
    let expected = read_json("v1.expected.json");
    let dir = tempfile::tempdir().expect("temp dir");
    load(&golden, dir.path());
    // The anchor lives beside sled's files, in its own format (version 1).
    let records = expected["events"].as_array().expect("events").len();
    let last_hash = expected["last_hash"].as_str().expect("hash");
    std::fs::write(
        dir.path().join("ANCHOR"),
        format!("safeguard-eventlog-anchor 1\nrecords {records}\nlast_hash {last_hash}\n"),
    )
    .expect("write the anchor");
    let log = open(dir.path());
    let events = decoded(&log.read_all(0, 100).expect("read"));
    let described: Vec<Value> = events.iter().map(describe).collect();
    assert_eq!(Value::from(described), expected["events"]);
    // Fields added to the envelope since read as empty from old records.
    assert!(events.iter().all(|event| event.traceparent.is_empty()));
    let report = log.verify().expect("verify");
    assert_eq!(
        report.last_hash_hex(),
        expected["last_hash"].as_str().expect("hash")
    );
    assert_eq!(log.cursor("projection").expect("cursor"), Some(3));
    // The indexes are read in place: by stream, and by id for idempotency.
    let plan = log.read_stream("plan-1", 0, 10).expect("read stream");
    assert_eq!(plan.len(), 1);
    let retry = log
        .append(
            "plan-1",
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::from_bytes([3; 16]),
                ..NewEvent::new("safeguard.test.v1.Looked", Vec::new())
            }],
        )
        .await
        .expect("retry");
    assert!(retry.deduplicated);
    assert_eq!(retry.positions, 2..3);
    // And the log goes on from where format 1 left it.
    let next = log
        .append(
            "plan-1",
            ExpectedVersion::Exact(0),
            vec![NewEvent::new("t", b"x".to_vec())],
        )
        .await
        .expect("append");
    assert_eq!((next.positions, next.stream_versions), (3..4, 1..2));
    assert_eq!(log.verify().expect("verify").records, 4);
}

/// Encoding the golden envelopes again gives the golden bytes: the current
/// build still writes format 1 exactly, or it must bump the version.
#[test]
fn format_1_encoding_is_stable() {
    let golden = read_json("v1.json");
    let mut previous = record::GENESIS_HASH;
    let mut records = 0;
    for pair in golden["tree"].as_array().expect("tree") {
        let key = unhex(pair[0].as_str().expect("key"));
        let Some(position) = record::position_of_record_key(&key) else {
            continue;
        };
        let stored = unhex(pair[1].as_str().expect("value"));
        let envelope = record::decode_record(position, &stored).expect("decode");
        let (encoded, hash) = record::encode_record(&previous, &envelope);
        assert_eq!(hex(&encoded), hex(&stored), "position {position}");
        previous = hash;
        records += 1;
    }
    assert_eq!(records, 3);
}
