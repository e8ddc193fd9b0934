//! Signed checkpoints of a service's own log: every `checkpoint_seconds` in
//! which it wrote, the service signs (its producer name, the position of
//! its last record, that record's chain hash) with its service key and
//! appends the statement as a `LogCheckpoint` to its own log (stream
//! [`STREAM`]), from where the bus publishes it like any other event. The
//! chain hash commits to every record before it, so whoever keeps a
//! checkpoint and the service's certificate can prove later, elsewhere,
//! that the history up to it was not rewritten (`safeguard verify
//! --signers`).

use std::sync::Arc;
use std::time::Duration;

use contract::events::v1::{Actor, LogCheckpoint, actor};
use eventlog::{EventLog, ExpectedVersion, NewEvent};
use prost::{Message, Name};

/// The stream of a service's log that holds its checkpoints.
pub const STREAM: &str = "checkpoints";

/// Signs a checkpoint of `log` every `interval` in which it was written
/// to, until the log closes. A failure is logged and tried again at the
/// next interval: a checkpoint missed is evidence postponed, not lost.
pub fn spawn(log: EventLog, producer: String, signer: Arc<trust::EventSigner>, interval: Duration) {
    tokio::spawn(async move {
        let mut last = match last_checkpoint(&log) {
            Ok(last) => last,
            Err(error) => {
                tracing::error!(%error, producer, "cannot read the last checkpoint; none will be signed");
                return;
            }
        };
        let mut ticks = crate::ticks::UntilClosed::new(&log, interval);
        while ticks.tick().await {
            match checkpoint(&log, &producer, &signer, last).await {
                Ok(Some(position)) => last = Some(position),
                Ok(None) => {}
                Err(eventlog::Error::Closed) => return,
                Err(error) => {
                    tracing::warn!(%error, producer, "checkpoint not signed; trying again later")
                }
            }
        }
    });
}

/// The position of the last checkpoint in `log`, if it has one.
fn last_checkpoint(log: &EventLog) -> Result<Option<u64>, eventlog::Error> {
    let Some(version) = log.stream_version(STREAM)? else {
        return Ok(None);
    };
    Ok(log
        .read_stream(STREAM, version, 1)?
        .first()
        .map(eventlog::RecordedEvent::position))
}

/// Signs and appends a checkpoint of the last record, unless that record
/// is the checkpoint at `last` (nothing was written since); returns the
/// new checkpoint's position.
async fn checkpoint(
    log: &EventLog,
    producer: &str,
    signer: &trust::EventSigner,
    last: Option<u64>,
) -> Result<Option<u64>, eventlog::Error> {
    let head = log.head();
    if head == 0 || last == Some(head - 1) {
        return Ok(None);
    }
    let Some(record) = log.read_all(head - 1, 1)?.pop() else {
        return Ok(None);
    };
    let hash = record.hash();
    let signature = signer
        .sign(producer, record.position(), &hash)
        .map_err(eventlog::Error::Storage)?;
    let checkpoint = LogCheckpoint {
        producer: producer.to_owned(),
        position: record.position(),
        chain_hash: hash.to_vec(),
        signature,
        signed_at: Some(std::time::SystemTime::now().into()),
    };
    let event = NewEvent {
        actor: Some(Actor {
            kind: Some(actor::Kind::System(producer.to_owned())),
        }),
        ..NewEvent::new(LogCheckpoint::full_name(), checkpoint.encode_to_vec())
    };
    let outcome = log
        .append(STREAM, ExpectedVersion::Any, vec![event])
        .await?;
    tracing::info!(
        producer,
        position = record.position(),
        "signed a checkpoint of the log"
    );
    Ok(Some(outcome.positions.start))
}

/// Every checkpoint in `log`, checked: the record at each position has the
/// chain hash it states and, with `keys`, the signature is its producer's.
/// Says how many; names the first that fails.
pub fn verify(log: &EventLog, keys: Option<&trust::EventKeys>) -> Result<u64, String> {
    let mut checked = 0;
    let mut from = 0;
    loop {
        let events = log
            .read_stream(STREAM, from, 1000)
            .map_err(|error| error.to_string())?;
        for event in &events {
            let envelope = event.envelope().map_err(|error| error.to_string())?;
            let checkpoint =
                LogCheckpoint::decode(envelope.payload.as_slice()).map_err(|error| {
                    format!(
                        "the checkpoint at position {} is unreadable: {error}",
                        event.position()
                    )
                })?;
            let record = log
                .read_all(checkpoint.position, 1)
                .map_err(|error| error.to_string())?
                .pop()
                .filter(|record| record.position() == checkpoint.position)
                .ok_or_else(|| {
                    format!("the checkpoint at position {} names position {}, which the log does not hold", event.position(), checkpoint.position)
                })?;
            if record.hash().as_slice() != checkpoint.chain_hash {
                return Err(format!(
                    "position {}: its chain hash is not the one signed in the checkpoint at position {}: the history was rewritten",
                    checkpoint.position,
                    event.position()
                ));
            }
            if let Some(keys) = keys {
                keys.verify(
                    &checkpoint.producer,
                    checkpoint.position,
                    &checkpoint.chain_hash,
                    &checkpoint.signature,
                )
                .map_err(|reason| {
                    format!("the checkpoint at position {}: {reason}", event.position())
                })?;
            }
            checked += 1;
        }
        if events.len() < 1000 {
            return Ok(checked);
        }
        from += events.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer_and_keys() -> (trust::EventSigner, trust::EventKeys, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let (realm, _) = trust::Realm::open_or_create(&dir.path().join("realm")).expect("realm");
        let _ = realm;
        let read = |name: &str| {
            std::fs::read_to_string(dir.path().join("realm").join(name)).expect("realm file")
        };
        let signer = trust::EventSigner::from_pem(&read("server.key")).expect("signer");
        let keys = trust::EventKeys::from_pems(&[("*", &read("server.pem"))]).expect("keys");
        (signer, keys, dir)
    }

    async fn log_of(dir: &std::path::Path, labels: &[&str]) -> EventLog {
        let log = EventLog::open(eventlog::Options::new(dir)).expect("open");
        for label in labels {
            log.append(
                "s",
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    "safeguard.test.v1.Labelled",
                    label.as_bytes().to_vec(),
                )],
            )
            .await
            .expect("append");
        }
        log
    }

    #[tokio::test]
    async fn a_history_rewritten_under_a_checkpoint_is_found() {
        let (signer, keys, _realm) = signer_and_keys();
        let dir = tempfile::tempdir().expect("dir");
        let original = log_of(&dir.path().join("a"), &["a", "b", "c"]).await;
        let signed = checkpoint(&original, "test-producer", &signer, None)
            .await
            .expect("checkpoint")
            .expect("something to sign");
        assert_eq!(signed, 3);
        assert_eq!(
            checkpoint(&original, "test-producer", &signer, Some(signed))
                .await
                .expect("again"),
            None,
            "nothing written since"
        );
        assert_eq!(verify(&original, Some(&keys)), Ok(1));

        // The same history with one record changed, and the checkpoint
        // carried over as it was: the record no longer has the signed hash.
        let statement = original.read_all(3, 1).expect("read").remove(0);
        let rewritten = log_of(&dir.path().join("b"), &["a", "B", "c"]).await;
        let envelope = statement.envelope().expect("envelope");
        rewritten
            .append(
                STREAM,
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    envelope.content_type.clone(),
                    envelope.payload.clone(),
                )],
            )
            .await
            .expect("append");
        let found = verify(&rewritten, Some(&keys)).expect_err("rewritten");
        assert!(found.contains("rewritten"), "{found}");

        // And a checkpoint re-made to match, but not signed by the key.
        let again = log_of(&dir.path().join("c"), &["a", "B", "c"]).await;
        let mut forged = LogCheckpoint::decode(envelope.payload.as_slice()).expect("decode");
        forged.chain_hash = again.read_all(2, 1).expect("read")[0].hash().to_vec();
        again
            .append(
                STREAM,
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    LogCheckpoint::full_name(),
                    forged.encode_to_vec(),
                )],
            )
            .await
            .expect("append");
        assert_eq!(verify(&again, None), Ok(1), "it matches the history");
        let found = verify(&again, Some(&keys)).expect_err("not signed by the key");
        assert!(found.contains("signature"), "{found}");
    }
}
