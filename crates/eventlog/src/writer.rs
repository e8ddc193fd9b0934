//! The writer: a two-stage pipeline that turns appends into durable,
//! hash-chained records (group commit).
//!
//! - The *stager* thread owns the head of the log (next position, last hash):
//!   it gathers every request waiting, checks and places them, and applies
//!   them to sled as one atomic batch. One thread placing everything is what
//!   makes positions gap-free and the chain linear without locks.
//! - The *syncer* thread makes applied groups durable: it takes every group
//!   applied since its last sync, flushes sled and fdatasyncs once for all of
//!   them, then marks them durable, publishes them live and answers.
//!
//! So the next group is checked and applied while the previous one is being
//! synced, and however many requests arrive during a sync share the next one.
//! Nothing is answered, published or readable before it is durable. If a
//! sync fails, the outcome of everything applied since is unknown, so the
//! log refuses all later writes until it is reopened.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::anchor::{self, Anchor};
use crate::record::{self, Hash};
use crate::{
    AppendOutcome, Core, Error, EventId, ExpectedVersion, LiveGroup, NewEvent, RecordedEvent,
    Result,
};

/// How often, at most, the anchor file is rewritten while appends flow.
const ANCHOR_INTERVAL: Duration = Duration::from_secs(1);
/// Applied groups that may wait for a sync before the stager waits too.
const GROUPS_IN_FLIGHT: usize = 64;
/// Stream heads the stager remembers before it starts over; a miss costs
/// one index lookup.
const STREAM_HEAD_CACHE: usize = 100_000;

#[derive(Debug)]
pub(crate) enum Request {
    Append {
        stream: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        /// A consumer's cursor to store in the same atomic write, if the
        /// append goes in.
        cursor: Option<(String, u64)>,
        reply: oneshot::Sender<Result<AppendOutcome>>,
    },
    /// Appends to several streams as one atomic write: all go in, or none.
    AppendAll {
        parts: Vec<(String, ExpectedVersion, Vec<NewEvent>)>,
        reply: AtomicReply,
    },
    SetCursor {
        name: String,
        position: u64,
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Everything the two threads start from.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) core: Arc<Core>,
    pub(crate) live: broadcast::Sender<LiveGroup>,
    pub(crate) db_file: File,
    pub(crate) next_position: u64,
    pub(crate) last_hash: Hash,
    pub(crate) max_group_events: usize,
}

impl Writer {
    /// Starts both threads; the handle returned ends when both have, with an
    /// error if either panicked.
    pub(crate) fn spawn(
        self,
        receiver: mpsc::Receiver<Request>,
    ) -> Result<std::thread::JoinHandle<Result<()>>> {
        let (applied, to_sync) = std_mpsc::sync_channel(GROUPS_IN_FLIGHT);
        let syncer = Syncer {
            core: self.core.clone(),
            live: self.live,
            db_file: self.db_file,
            anchored: self.next_position,
            durable: self.next_position,
            durable_hash: self.last_hash,
            last_anchor_write: Instant::now(),
        };
        let syncer = std::thread::Builder::new()
            .name("eventlog-syncer".into())
            .spawn(move || syncer.run(to_sync))?;
        let stager = Stager {
            core: self.core,
            next_position: self.next_position,
            last_hash: self.last_hash,
            max_group_events: self.max_group_events,
            stream_heads: HashMap::new(),
        };
        Ok(std::thread::Builder::new()
            .name("eventlog-stager".into())
            .spawn(move || {
                stager.run(receiver, applied);
                syncer
                    .join()
                    .map_err(|_| Error::Storage("the event log syncer panicked".into()))
            })?)
    }
}

/// An event id already placed: where, and in which stream.
#[derive(Debug, Clone)]
struct Placed {
    position: u64,
    stream: String,
    version: u64,
}

/// Where the outcome of an atomic write to several streams goes.
type AtomicReply = oneshot::Sender<Result<Vec<AppendOutcome>>>;

/// One group: staged by the stager, made durable and answered by the syncer.
#[derive(Debug, Default)]
struct Group {
    batch: sled::Batch,
    writes: usize,
    /// Set when the stager could not apply the batch.
    apply_error: Option<String>,
    committed: Vec<RecordedEvent>,
    ids: HashMap<EventId, Placed>,
    stream_versions: HashMap<String, u64>,
    appends: Vec<(
        oneshot::Sender<Result<AppendOutcome>>,
        Result<AppendOutcome>,
    )>,
    atomic: Vec<(AtomicReply, Result<Vec<AppendOutcome>>)>,
    cursors: Vec<oneshot::Sender<Result<()>>>,
    close: Vec<oneshot::Sender<Result<()>>>,
    /// The head of the log once this group is in.
    end_position: u64,
    end_hash: Hash,
}

#[derive(Debug)]
struct Stager {
    core: Arc<Core>,
    next_position: u64,
    last_hash: Hash,
    max_group_events: usize,
    stream_heads: HashMap<String, u64>,
}

impl Stager {
    fn run(mut self, mut receiver: mpsc::Receiver<Request>, applied: std_mpsc::SyncSender<Group>) {
        let mut closing = false;
        while !closing {
            let Some(first) = receiver.blocking_recv() else {
                break;
            };
            let mut group = Group::default();
            let mut events = self.stage(&mut group, first);
            while events < self.max_group_events {
                let Ok(next) = receiver.try_recv() else {
                    break;
                };
                events += self.stage(&mut group, next);
            }
            closing = !group.close.is_empty();
            self.apply(&mut group);
            if applied.send(group).is_err() {
                break;
            }
        }
        receiver.close();
        // Answer whatever raced with the close rather than dropping it.
        while let Ok(request) = receiver.try_recv() {
            let mut group = Group::default();
            self.stage(&mut group, request);
            self.apply(&mut group);
            if applied.send(group).is_err() {
                break;
            }
        }
    }

    /// Stages one request into the group; returns how many events it adds.
    fn stage(&mut self, group: &mut Group, request: Request) -> usize {
        match request {
            Request::Append {
                stream,
                expected,
                events,
                cursor,
                reply,
            } => {
                let count = events.len();
                let outcome = match self.core.failure() {
                    Some(failure) => Err(Error::Storage(failure)),
                    None => self.stage_append(group, stream, expected, events),
                };
                if let Err(Error::Storage(message)) = &outcome {
                    // The log could not read its own indexes while placing:
                    // nothing after this may go in either, or a consumer's
                    // cursor queued behind it could pass an effect that
                    // never landed.
                    self.core.fail(message);
                }
                if let (Ok(_), Some((name, position))) = (&outcome, cursor) {
                    group
                        .batch
                        .insert(record::cursor_key(&name), &record::encode_u64(position));
                    group.writes += 1;
                }
                group.appends.push((reply, outcome));
                count
            }
            Request::AppendAll { parts, reply } => {
                let count = parts.iter().map(|(_, _, events)| events.len()).sum();
                let outcome = match self.core.failure() {
                    Some(failure) => Err(Error::Storage(failure)),
                    None => self.stage_all(group, parts),
                };
                if let Err(Error::Storage(message)) = &outcome {
                    self.core.fail(message);
                }
                group.atomic.push((reply, outcome));
                count
            }
            Request::SetCursor {
                name,
                position,
                reply,
            } => {
                if let Some(failure) = self.core.failure() {
                    let _ = reply.send(Err(Error::Storage(failure)));
                    return 0;
                }
                group
                    .batch
                    .insert(record::cursor_key(&name), &record::encode_u64(position));
                group.writes += 1;
                group.cursors.push(reply);
                1
            }
            Request::Close { reply } => {
                group.close.push(reply);
                0
            }
        }
    }

    /// Stages every part, having checked them all first (expected
    /// versions, retries, ids), so that either every part is placed or
    /// none is. A part whose ids were all written before is a retry and
    /// answered with its original place.
    fn stage_all(
        &mut self,
        group: &mut Group,
        parts: Vec<(String, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendOutcome>> {
        let mut streams = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for (stream, expected, events) in &parts {
            if !streams.insert(stream.as_str()) {
                return Err(Error::InvalidArgument {
                    field: "stream_id",
                    reason: format!("{stream} appears twice in one atomic write"),
                });
            }
            for event in events {
                if !ids.insert(event.event_id) {
                    return Err(Error::InvalidArgument {
                        field: "event_id",
                        reason: format!("{} appears twice in one atomic write", event.event_id),
                    });
                }
            }
            if self.find_retry(group, stream, events)?.is_none() {
                let current = self.stream_head(group, stream)?;
                if !expected.admits(current) {
                    return Err(Error::WrongExpectedVersion {
                        stream: stream.clone(),
                        expected: *expected,
                        actual: current,
                    });
                }
            }
        }
        parts
            .into_iter()
            .map(|(stream, expected, events)| self.stage_append(group, stream, expected, events))
            .collect()
    }

    fn stage_append(
        &mut self,
        group: &mut Group,
        stream: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        if let Some(outcome) = self.find_retry(group, &stream, &events)? {
            return Ok(outcome);
        }
        let current = self.stream_head(group, &stream)?;
        if !expected.admits(current) {
            return Err(Error::WrongExpectedVersion {
                stream,
                expected,
                actual: current,
            });
        }
        let first_position = self.next_position;
        let first_version = current.map_or(0, |version| version + 1);
        let recorded_at = prost_types::Timestamp::from(SystemTime::now());
        let count = events.len() as u64;
        for (offset, event) in events.into_iter().enumerate() {
            let offset = offset as u64;
            let (position, version) = (first_position + offset, first_version + offset);
            let event_id = event.event_id;
            let envelope = event.into_envelope(stream.clone(), version, position, recorded_at);
            let (bytes, hash) = record::encode_record(&self.last_hash, &envelope);
            let bytes = sled::IVec::from(bytes);
            group
                .batch
                .insert(&record::record_key(position), bytes.clone());
            group.batch.insert(
                record::stream_key(&stream, version),
                &record::encode_u64(position),
            );
            group.batch.insert(
                &record::id_key(event_id.as_bytes()),
                &record::encode_u64(position),
            );
            group.writes += 3;
            group.ids.insert(
                event_id,
                Placed {
                    position,
                    stream: stream.clone(),
                    version,
                },
            );
            group
                .committed
                .push(RecordedEvent::from_encoded(position, bytes));
            self.last_hash = hash;
        }
        self.next_position += count;
        group
            .stream_versions
            .insert(stream, first_version + count - 1);
        Ok(AppendOutcome {
            positions: first_position..first_position + count,
            stream_versions: first_version..first_version + count,
            deduplicated: false,
        })
    }

    /// The stream's last version including groups applied but not yet
    /// durable: they are ahead of this one in the same order.
    fn stream_head(&mut self, group: &Group, stream: &str) -> Result<Option<u64>> {
        if let Some(version) = group.stream_versions.get(stream) {
            return Ok(Some(*version));
        }
        if let Some(version) = self.stream_heads.get(stream) {
            return Ok(Some(*version));
        }
        self.core.stream_version_before(stream, u64::MAX)
    }

    /// If the batch's ids were all appended before, as one contiguous run of
    /// this stream, the original outcome; if none were, `None`; anything
    /// in between is a conflict.
    fn find_retry(
        &self,
        group: &Group,
        stream: &str,
        events: &[NewEvent],
    ) -> Result<Option<AppendOutcome>> {
        let mut placed = Vec::with_capacity(events.len());
        for event in events {
            placed.push(self.find_placed(group, event.event_id)?);
        }
        let written = placed.iter().filter(|place| place.is_some()).count();
        if written == 0 {
            return Ok(None);
        }
        if written < events.len() {
            return Err(Error::IdempotencyConflict {
                reason: format!(
                    "{written} of the batch's {} event ids were already written",
                    events.len()
                ),
            });
        }
        let placed: Vec<Placed> = placed.into_iter().flatten().collect();
        let first = &placed[0];
        let contiguous = placed.iter().enumerate().all(|(offset, place)| {
            place.stream == stream
                && place.position == first.position + offset as u64
                && place.version == first.version + offset as u64
        });
        if !contiguous {
            return Err(Error::IdempotencyConflict {
                reason: format!(
                    "the event ids were written, but not as this batch of stream {stream}"
                ),
            });
        }
        let count = placed.len() as u64;
        Ok(Some(AppendOutcome {
            positions: first.position..first.position + count,
            stream_versions: first.version..first.version + count,
            deduplicated: true,
        }))
    }

    fn find_placed(&self, group: &Group, event_id: EventId) -> Result<Option<Placed>> {
        if let Some(placed) = group.ids.get(&event_id) {
            return Ok(Some(placed.clone()));
        }
        let Some(value) = self.core.db.get(record::id_key(event_id.as_bytes()))? else {
            return Ok(None);
        };
        let position = record::decode_u64(&value)
            .ok_or_else(|| Error::Storage(format!("id index of {event_id} is unreadable")))?;
        let bytes = self
            .core
            .db
            .get(record::record_key(position))?
            .ok_or_else(|| record::corrupt(position, "indexed by its event id but missing"))?;
        let envelope = record::decode_record(position, &bytes)?;
        Ok(Some(Placed {
            position,
            stream: envelope.stream_id,
            version: envelope.stream_version,
        }))
    }

    /// Applies the group's batch to sled (not yet durable) and remembers the
    /// stream heads it moved.
    fn apply(&mut self, group: &mut Group) {
        group.end_position = self.next_position;
        group.end_hash = self.last_hash;
        if group.writes == 0 {
            return;
        }
        match self.core.db.apply_batch(std::mem::take(&mut group.batch)) {
            Ok(()) => {
                if self.stream_heads.len() + group.stream_versions.len() > STREAM_HEAD_CACHE {
                    self.stream_heads.clear();
                }
                self.stream_heads.extend(group.stream_versions.drain());
            }
            Err(error) => {
                let message = format!("write failed, reopen the log: {error}");
                self.core.fail(&message);
                group.apply_error = Some(message);
            }
        }
    }
}

#[derive(Debug)]
struct Syncer {
    core: Arc<Core>,
    live: broadcast::Sender<LiveGroup>,
    db_file: File,
    /// Records covered by the anchor file on disk.
    anchored: u64,
    /// The durable head and its hash.
    durable: u64,
    durable_hash: Hash,
    last_anchor_write: Instant,
}

impl Syncer {
    fn run(mut self, applied: std_mpsc::Receiver<Group>) {
        let mut closers = Vec::new();
        loop {
            let first = match applied.recv_timeout(ANCHOR_INTERVAL) {
                Ok(group) => group,
                // Idle: anchor what the last burst acknowledged now, not at
                // the next append, which may be hours away.
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(error) = self.write_anchor() {
                        tracing::warn!(%error, "could not write the anchor");
                    }
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut groups = vec![first];
            groups.extend(applied.try_iter());
            for group in &mut groups {
                closers.append(&mut group.close);
            }
            self.sync(groups);
        }
        let anchored = self.write_anchor();
        if let Err(error) = &anchored {
            tracing::error!(%error, "could not write the anchor at close");
        }
        for reply in closers {
            let _ = reply.send(match &anchored {
                Ok(()) => Ok(()),
                Err(error) => Err(Error::Storage(error.to_string())),
            });
        }
    }

    /// Makes the groups durable with one flush and one fsync, then publishes
    /// and answers them in order.
    fn sync(&mut self, groups: Vec<Group>) {
        let writes: usize = groups.iter().map(|group| group.writes).sum();
        let mut failure = self.core.failure();
        if failure.is_none()
            && writes > 0
            && let Err(error) = self.make_durable()
        {
            let message = format!("write failed, reopen the log: {error}");
            tracing::error!(%error, "event log sync failed; refusing further writes");
            self.core.fail(&message);
            failure = Some(message);
        }
        for group in groups {
            let Group {
                committed,
                appends,
                atomic,
                cursors,
                end_position,
                end_hash,
                apply_error,
                ..
            } = group;
            if let Some(message) = apply_error.or_else(|| failure.clone()) {
                for (reply, outcome) in appends {
                    let _ = reply.send(outcome.and(Err(Error::Storage(message.clone()))));
                }
                for (reply, outcome) in atomic {
                    let _ = reply.send(outcome.and(Err(Error::Storage(message.clone()))));
                }
                for reply in cursors {
                    let _ = reply.send(Err(Error::Storage(message.clone())));
                }
                continue;
            }
            self.durable = end_position;
            self.durable_hash = end_hash;
            self.core.durable_end.store(end_position, Ordering::Release);
            if !committed.is_empty() {
                // No live subscriber is not an error: they read from disk.
                let _ = self.live.send(committed.into());
            }
            for (reply, outcome) in appends {
                let _ = reply.send(outcome);
            }
            for (reply, outcome) in atomic {
                let _ = reply.send(outcome);
            }
            for reply in cursors {
                let _ = reply.send(Ok(()));
            }
        }
        if self.last_anchor_write.elapsed() >= ANCHOR_INTERVAL
            && let Err(error) = self.write_anchor()
        {
            tracing::warn!(%error, "could not write the anchor");
        }
    }

    fn make_durable(&self) -> Result<()> {
        self.core.db.flush()?;
        // sled only calls sync_file_range, which neither flushes the drive's
        // cache nor the file's size: fdatasync does both.
        self.db_file.sync_data()?;
        Ok(())
    }

    fn write_anchor(&mut self) -> Result<()> {
        if self.core.failure().is_some() || self.anchored == self.durable {
            return Ok(());
        }
        anchor::write(
            &self.core.path,
            Anchor {
                records: self.durable,
                last_hash: self.durable_hash,
            },
        )?;
        self.anchored = self.durable;
        self.last_anchor_write = Instant::now();
        Ok(())
    }
}
