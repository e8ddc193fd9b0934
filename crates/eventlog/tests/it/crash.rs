//! Crash safety: a child process appends under load and is killed with
//! SIGKILL at random moments; after each kill the log must hold every
//! acknowledged event exactly once with the same bytes, no half batch, no
//! gap, and verify.
//!
//! The child is this test binary itself, run with `CRASH_CHILD_DIR` set so
//! that `crash::child_appends_until_killed` does the appending.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use eventlog::{EventId, ExpectedVersion, NewEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::support::{close, decoded, open};

const CHILD_DIR: &str = "CRASH_CHILD_DIR";
const KILL_CYCLES: usize = 50;
const WRITERS: usize = 16;

/// The payload of an event: derived from its id, so the parent can check the
/// bytes of every event without being told them.
fn payload_for(id: &EventId) -> Vec<u8> {
    let seed: [u8; 32] = Sha256::digest(id.as_bytes()).into();
    let length = 64 + usize::from(seed[0]);
    seed.iter().copied().cycle().take(length).collect()
}

/// Not a test of its own: the body of the child process. Without
/// `CRASH_CHILD_DIR` it returns at once.
#[test]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let log = open(Path::new(&dir));
        println!("ready");
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let log = log.clone();
            writers.push(tokio::spawn(async move {
                let mut rng = StdRng::from_os_rng();
                loop {
                    let size = rng.random_range(1..=4);
                    let batch = EventId::new();
                    let events: Vec<NewEvent> = (0..size)
                        .map(|_| {
                            let id = EventId::new();
                            NewEvent {
                                event_id: id,
                                correlation_id: batch.as_bytes().to_vec(),
                                causation_id: vec![size as u8],
                                ..NewEvent::new("safeguard.test.v1.Crash", payload_for(&id))
                            }
                        })
                        .collect();
                    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
                    let stream = format!("w{writer}-{}", rng.random_range(0..4));
                    let outcome = log
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                    // One write per line, so a kill cannot interleave lines.
                    println!("ack {} {}", outcome.positions.start, ids.join(" "));
                }
            }));
        }
        for writer in writers {
            let _ = writer.await;
        }
    });
}

#[tokio::test]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Every id acknowledged, with the position its append returned.
    let mut acknowledged: HashMap<EventId, u64> = HashMap::new();
    let mut rng = rand::rng();
    for cycle in 0..KILL_CYCLES {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "crash::child_appends_until_killed",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // libtest prints its own lines first.
        while lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the child starts")
            != "ready"
        {}
        // Killed at a random moment once it has acknowledged something: a
        // fixed delay alone would sometimes fall before a slow first fsync,
        // and the cycle would test nothing.
        let first_ack = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the child acknowledges an append");
        std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");

        let mut this_cycle = 0;
        for line in std::iter::once(first_ack).chain(lines.try_iter()) {
            let mut words = line.split(' ');
            if words.next() != Some("ack") {
                continue;
            }
            let Some(Ok(start)) = words.next().map(str::parse::<u64>) else {
                continue; // the last line may be cut short by the kill
            };
            for (offset, id) in words.enumerate() {
                let id: uuid::Uuid = match id.parse() {
                    Ok(id) => id,
                    Err(_) => break,
                };
                acknowledged.insert(EventId::from_bytes(*id.as_bytes()), start + offset as u64);
                this_cycle += 1;
            }
        }
        assert!(
            this_cycle > 0,
            "cycle {cycle}: the child acknowledged nothing"
        );
        check_log(dir.path(), &acknowledged).await;
    }
    let log = open(dir.path());
    eprintln!(
        "crash: kill_cycles: {KILL_CYCLES}, acknowledged: {}, records: {}, lost: 0, duplicated: 0",
        acknowledged.len(),
        log.head()
    );
}

async fn check_log(path: &Path, acknowledged: &HashMap<EventId, u64>) {
    let log = open(path);
    let head = log.head();
    let all = decoded(&log.read_all(0, usize::MAX).expect("read all"));
    assert_eq!(all.len() as u64, head, "read-all returns exactly the head");
    let mut seen: HashMap<EventId, u64> = HashMap::with_capacity(all.len());
    let mut batches: HashMap<Vec<u8>, (usize, u8)> = HashMap::new();
    for (index, event) in all.iter().enumerate() {
        assert_eq!(
            event.global_position, index as u64,
            "positions are gap-free"
        );
        let id = EventId::from_slice(&event.event_id).expect("16-byte id");
        assert!(
            seen.insert(id, event.global_position).is_none(),
            "{id} twice"
        );
        assert_eq!(event.payload, payload_for(&id), "bytes of {id}");
        let batch = batches.entry(event.correlation_id.clone()).or_default();
        batch.0 += 1;
        batch.1 = event.causation_id[0];
    }
    for (batch, (found, size)) in &batches {
        assert_eq!(*found, usize::from(*size), "batch {batch:?} is whole");
    }
    for (id, position) in acknowledged {
        assert_eq!(
            seen.get(id),
            Some(position),
            "acknowledged {id} is where it was"
        );
    }
    assert_eq!(log.verify().expect("verify").records, head);
    close(log).await;
}
