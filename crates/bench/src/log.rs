//! `safeguard-bench log`: the event log against bare sled doing the same
//! durable writes with the same group commit, and replay against a bare scan
//! of the same data.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{EventId, EventLog, ExpectedVersion, NewEvent, Options};
use tokio::sync::{mpsc, oneshot};

use crate::report::{figure, per_second, percentile_ms};

const PAYLOAD_BYTES: usize = 256;
const WRITER_COUNTS: [usize; 3] = [1, 8, 64];
const CACHE_BYTES: u64 = 1024 * 1024 * 1024;
const REPLAY_CHUNK: usize = 256;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Durable single-event appends per writer, for each writer count.
    appends_per_writer: [usize; 3],
    replay_events: usize,
}

impl Scale {
    pub fn new(quick: bool) -> Self {
        if quick {
            Scale {
                appends_per_writer: [200, 100, 40],
                replay_events: 100_000,
            }
        } else {
            Scale {
                appends_per_writer: [1_000, 500, 200],
                replay_events: 1_000_000,
            }
        }
    }
}

pub async fn run(scale: Scale) -> Result<(), Error> {
    let mut ratio = 0.0;
    for (writers, per_writer) in WRITER_COUNTS.into_iter().zip(scale.appends_per_writer) {
        // Baseline first, then the log, each on a fresh directory.
        let raw = raw_sled_appends(writers, per_writer, RawShape::SameEntries).await?;
        let (log, mut latencies) = log_appends(writers, per_writer).await?;
        figure(&format!("append_events_per_s_w{writers}"), log);
        figure(&format!("raw_sled_events_per_s_w{writers}"), raw);
        if writers == 64 {
            ratio = log / raw;
            figure("append_p99_ms_w64", percentile_ms(&mut latencies, 99.0));
            let minimal = raw_sled_appends(writers, per_writer, RawShape::PayloadOnly).await?;
            figure("raw_sled_payload_only_events_per_s_w64", minimal);
        }
    }
    figure("append_vs_raw_sled_ratio", ratio);
    replay(scale.replay_events).await
}

fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES).map(|index| index as u8).collect()
}

fn log_options(path: &Path) -> Options {
    Options {
        cache_capacity_bytes: CACHE_BYTES,
        ..Options::new(path)
    }
}

/// `writers` tasks each appending `per_writer` one-event batches to a stream
/// of their own, each append durable before the next. Returns events per
/// second and every append's latency.
async fn log_appends(writers: usize, per_writer: usize) -> Result<(f64, Vec<Duration>), Error> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(log_options(dir.path()))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{writer}");
            let mut latencies = Vec::with_capacity(per_writer);
            for _ in 0..per_writer {
                let event = NewEvent::new("safeguard.bench.v1.Payload", payload());
                let sent = Instant::now();
                log.append(&stream, ExpectedVersion::Any, vec![event])
                    .await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, eventlog::Error>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(writers * per_writer);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let rate = per_second(writers * per_writer, started.elapsed());
    log.close().await?;
    Ok((rate, latencies))
}

/// What the raw baseline writes per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawShape {
    /// Exactly the entries the log writes: a record of the log's record size
    /// under its position, a stream index entry and an event id index entry.
    SameEntries,
    /// The same entries for records of this many bytes.
    SameEntriesOf(usize),
    /// Only the payload under its position: the least any durable log can do.
    PayloadOnly,
}

/// The same writes straight into sled, gathered by one writer thread into
/// one batch, one flush and one fdatasync per group as the log does, with
/// none of the log's own work (checks, encoding, hashing, pipelining).
pub async fn raw_sled_appends(
    writers: usize,
    per_writer: usize,
    shape: RawShape,
) -> Result<f64, Error> {
    type Write = (Vec<(Vec<u8>, Vec<u8>)>, oneshot::Sender<()>);
    let dir = tempfile::tempdir()?;
    let db = eventlog::record::sled_config(dir.path())
        .cache_capacity(CACHE_BYTES)
        .open()?;
    let file = File::options().write(true).open(dir.path().join("db"))?;
    let (requests, mut receiver) = mpsc::channel::<Write>(4096);
    let record_len = match shape {
        RawShape::SameEntriesOf(bytes) => bytes,
        _ => log_record_len().await?,
    };
    let group_commit = {
        let db = db.clone();
        std::thread::spawn(move || -> Result<(), sled::Error> {
            let mut next = 0_u64;
            while let Some(first) = receiver.blocking_recv() {
                let mut group = vec![first];
                while group.len() < 4096 {
                    match receiver.try_recv() {
                        Ok(request) => group.push(request),
                        Err(_) => break,
                    }
                }
                let mut batch = sled::Batch::default();
                for (entries, _) in &mut group {
                    let position = eventlog::record::record_key(next);
                    next += 1;
                    for (key, value) in entries.drain(..) {
                        // The record's key is its position, known only here.
                        let key = if key.is_empty() {
                            position.to_vec()
                        } else {
                            key
                        };
                        batch.insert(key, value);
                    }
                }
                db.apply_batch(batch)?;
                db.flush()?;
                file.sync_data()?;
                for (_, reply) in group {
                    let _ = reply.send(());
                }
            }
            Ok(())
        })
    };
    let requests = Arc::new(requests);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{writer}");
            for version in 0..per_writer as u64 {
                let mut record = payload();
                record.resize(
                    match shape {
                        RawShape::SameEntries | RawShape::SameEntriesOf(_) => record_len,
                        RawShape::PayloadOnly => PAYLOAD_BYTES,
                    },
                    0,
                );
                let mut entries = vec![(Vec::new(), record)];
                if shape != RawShape::PayloadOnly {
                    let id = EventId::new();
                    let position = 0_u64.to_be_bytes().to_vec();
                    entries.push((
                        eventlog::record::stream_key(&stream, version),
                        position.clone(),
                    ));
                    entries.push((eventlog::record::id_key(id.as_bytes()).to_vec(), position));
                }
                let (reply, written) = oneshot::channel();
                requests
                    .send((entries, reply))
                    .await
                    .map_err(|_| "writer gone")?;
                written.await.map_err(|_| "writer gone")?;
            }
            Ok::<_, &'static str>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = per_second(writers * per_writer, started.elapsed());
    drop(requests);
    group_commit.join().map_err(|_| "raw writer panicked")??;
    Ok(rate)
}

/// The stored size of one benchmark event, read from a real log.
async fn log_record_len() -> Result<usize, Error> {
    let dir = tempfile::tempdir()?;
    {
        let log = EventLog::open(log_options(dir.path()))?;
        let event = NewEvent::new("safeguard.bench.v1.Payload", payload());
        log.append("bench-0", ExpectedVersion::Any, vec![event])
            .await?;
        log.close().await?;
    }
    let db = eventlog::record::sled_config(dir.path()).open()?;
    let record = db
        .get(eventlog::record::record_key(0))?
        .ok_or("the sample record is missing")?;
    Ok(record.len())
}

/// Fills a log with `events` events, then reads them all back through
/// read-all, beside a bare sled scan of the same records.
async fn replay(events: usize) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    {
        let log = EventLog::open(log_options(dir.path()))?;
        fill(&log, events).await?;
        figure(
            "bytes_on_disk_per_event",
            (log.size_on_disk()? as f64 / events as f64).round(),
        );
        log.close().await?;
    }

    // The two sides take turns, twice, each reading twice per turn (the
    // first read of a turn warms sled's cache); the best of each is kept, so
    // neither is favoured by whatever else the machine is doing.
    let (mut replay_rate, mut decoded_rate, mut scan_rate) = (0.0_f64, 0.0_f64, 0.0_f64);
    for _ in 0..2 {
        let log = EventLog::open(log_options(dir.path()))?;
        replay_rate = replay_rate.max(best_of_two(|| {
            replay_through_read_all(&log, events, false)
        })?);
        // The same, decoding every envelope: what a projection rebuilding
        // from the log pays on top (reported, no goal).
        decoded_rate = decoded_rate.max(replay_through_read_all(&log, events, true)?);
        log.close().await?;
        drop(log);

        let db = eventlog::record::sled_config(dir.path())
            .cache_capacity(CACHE_BYTES)
            .open()?;
        scan_rate = scan_rate.max(best_of_two(|| raw_scan(&db, events))?);
    }
    figure("replay_events_per_s", replay_rate);
    figure("replay_decoded_events_per_s", decoded_rate);
    figure("raw_sled_scan_events_per_s", scan_rate);
    figure("replay_vs_raw_sled_scan_ratio", replay_rate / scan_rate);
    Ok(())
}

/// Every record straight from sled, in one iterator, touching each value.
fn raw_scan(db: &sled::Db, events: usize) -> Result<f64, Error> {
    let started = Instant::now();
    let (mut count, mut bytes) = (0_usize, 0_usize);
    let records = eventlog::record::record_key(0)..=eventlog::record::record_key(u64::MAX);
    for entry in db.range(records) {
        let (_, value) = entry?;
        count += 1;
        bytes += value.len();
    }
    if count != events || bytes < events * PAYLOAD_BYTES {
        return Err(format!("raw scan read {count} records, expected {events}").into());
    }
    Ok(per_second(count, started.elapsed()))
}

fn best_of_two(mut measure: impl FnMut() -> Result<f64, Error>) -> Result<f64, Error> {
    Ok(measure()?.max(measure()?))
}

/// Reads the whole log through `read_all`, checking it got every event, and
/// returns events per second.
fn replay_through_read_all(log: &EventLog, events: usize, decode: bool) -> Result<f64, Error> {
    let started = Instant::now();
    let (mut position, mut bytes) = (0, 0_usize);
    loop {
        let chunk = log.read_all(position, REPLAY_CHUNK)?;
        let Some(last) = chunk.last() else { break };
        position = last.position() + 1;
        for event in &chunk {
            bytes += if decode {
                event.envelope()?.payload.len()
            } else {
                event.encoded_envelope().len()
            };
        }
    }
    if position as usize != events || bytes < events * PAYLOAD_BYTES {
        return Err(format!("replay read {position} events, expected {events}").into());
    }
    Ok(per_second(events, started.elapsed()))
}

/// Appends `events` events in large batches from a few writers.
pub(crate) async fn fill(log: &EventLog, events: usize) -> Result<(), Error> {
    const WRITERS: usize = 8;
    const BATCH: usize = 500;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let log = log.clone();
        let share = events / WRITERS + usize::from(writer < events % WRITERS);
        tasks.push(tokio::spawn(async move {
            let mut left = share;
            while left > 0 {
                let size = left.min(BATCH);
                let batch = (0..size)
                    .map(|_| NewEvent::new("safeguard.bench.v1.Payload", payload()))
                    .collect();
                log.append(
                    &format!("fill-{writer}-{}", left % 97),
                    ExpectedVersion::Any,
                    batch,
                )
                .await?;
                left -= size;
            }
            Ok::<_, eventlog::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
