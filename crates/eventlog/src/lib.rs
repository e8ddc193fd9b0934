//! The append-only event log that is safeguard's source of truth.
//!
//! Every fact (a referral, a decision, a plan, a lookup) is an event appended
//! to a stream; every other view is computed from the log. The log:
//! - appends atomically with optimistic concurrency per stream
//!   ([`ExpectedVersion`]) and permanent idempotency by [`EventId`];
//! - returns from an append only once the events are on disk (fsync), sharing
//!   one flush between all appends waiting at that moment (group commit);
//! - numbers events gap-free per stream (versions) and across the log
//!   (positions), and chains every record to the one before by hash;
//! - reads by stream or by position, and [`Subscription`]s catch up from disk
//!   then follow live with bounded memory;
//! - keeps named cursors for consumers, durably;
//! - never rewrites or deletes a record.
//!
//! It knows nothing of gRPC, services or the domain: payloads are bytes.

mod anchor;
mod error;
mod event;
pub mod record;
mod subscription;
mod verify;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use crate::error::{Error, Result};
pub use crate::event::{AppendOutcome, EventId, ExpectedVersion, NewEvent};
pub use crate::record::RecordedEvent;
pub use crate::subscription::Subscription;
pub use crate::verify::VerifyReport;

use crate::record::{GENESIS_HASH, Hash};
use crate::writer::{Request, Writer};

/// Longest stream id, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 256;
/// Longest cursor name, in bytes.
pub const MAX_CURSOR_NAME_LEN: usize = 256;
/// The largest event the log accepts, in bytes.
///
/// sled writes any page larger than a quarter of a segment to a separate
/// blob file that it never fsyncs, so no page may grow that large: a leaf
/// holds at most 17 entries, and with the log's 8 MiB segments
/// ([`record::sled_config`]) 17 events of this size stay well under it.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// How to open a log. The defaults suit a service; tests shrink the buffers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding sled's files and the anchor. Created if missing.
    pub path: PathBuf,
    /// sled's page cache, in bytes. Services read their log at its tail
    /// (their views live in memory), so a small cache serves; a large one
    /// fills with the whole history during a rebuild and stays full.
    pub cache_capacity_bytes: u64,
    /// Largest number of events one group commit gathers before flushing.
    pub max_group_events: usize,
    /// Largest batch one append may carry.
    pub max_batch_events: usize,
    /// Largest event, in bytes: its payload with its ids, content type and
    /// actor. At most [`MAX_EVENT_BYTES`].
    pub max_event_bytes: usize,
    /// How many committed groups are kept for live subscribers; one that
    /// falls further behind reads from disk instead.
    pub live_buffer_groups: usize,
}

impl Options {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Options {
            path: path.into(),
            cache_capacity_bytes: 32 * 1024 * 1024,
            max_group_events: 4096,
            max_batch_events: 1000,
            max_event_bytes: MAX_EVENT_BYTES,
            live_buffer_groups: 1024,
        }
    }
}

/// A handle on an open log: cheap to clone, usable from any task. The log
/// stays open while a handle or a [`Subscription`] lives; [`EventLog::close`]
/// ends it explicitly.
#[derive(Debug, Clone)]
pub struct EventLog {
    core: Arc<Core>,
    requests: mpsc::Sender<Request>,
    limits: Limits,
    writer: Arc<Mutex<Option<JoinHandle<Result<()>>>>>,
}

/// What readers share with the writer thread.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) db: sled::Db,
    pub(crate) path: PathBuf,
    /// Positions below this are durable; readers see nothing at or above it,
    /// so no one ever acts on an event that a crash could still take back.
    pub(crate) durable_end: AtomicU64,
    /// The writer owns the sender; subscribers upgrade this to subscribe, and
    /// learn the log has closed when they cannot.
    pub(crate) live: broadcast::WeakSender<LiveGroup>,
    /// Set when a write failed: what reached the disk is then unknown, so
    /// every later write is refused until the log is reopened.
    failure: Mutex<Option<String>>,
}

/// The events of one group commit, shared by every live subscriber.
pub(crate) type LiveGroup = Arc<[RecordedEvent]>;

impl EventLog {
    /// Opens (or creates) the log at `options.path` and starts its writer.
    ///
    /// Fails with [`Error::Corrupt`] if the log holds fewer records than it
    /// once acknowledged, or its last acknowledged record changed: the log
    /// must not hand out those positions again.
    pub fn open(options: Options) -> Result<Self> {
        if options.max_group_events == 0 || options.max_batch_events == 0 {
            return Err(invalid(
                "options",
                "group and batch limits must be positive",
            ));
        }
        if options.max_event_bytes > MAX_EVENT_BYTES {
            return Err(invalid(
                "options",
                &format!("max_event_bytes is at most {MAX_EVENT_BYTES}"),
            ));
        }
        std::fs::create_dir_all(&options.path)?;
        let db = record::sled_config(&options.path)
            .cache_capacity(options.cache_capacity_bytes)
            .open()?;
        check_format(&db)?;
        let (next_position, last_hash) = recover_head(&db)?;
        verify::check_anchor(
            &db,
            next_position,
            required_anchor(&options.path, next_position)?,
        )?;
        // sled only calls sync_file_range, which neither flushes the drive's
        // cache nor the file's size; the writer fdatasyncs this file itself.
        let db_file = File::options()
            .read(true)
            .write(true)
            .open(options.path.join("db"))?;
        // What a crashed process left in the page cache reads back as if it
        // were on disk: make it so before anyone reads it or a retry is
        // answered from it, and anchor it.
        db.flush()?;
        db_file.sync_data()?;
        File::open(&options.path)?.sync_all()?;
        anchor::write(
            &options.path,
            anchor::Anchor {
                records: next_position,
                last_hash,
            },
        )?;

        let (live, _) = broadcast::channel(options.live_buffer_groups.max(1));
        let core = Arc::new(Core {
            db: db.clone(),
            path: options.path.clone(),
            durable_end: AtomicU64::new(next_position),
            live: live.downgrade(),
            failure: Mutex::new(None),
        });
        let (requests, receiver) = mpsc::channel(options.max_group_events);
        let writer = Writer {
            core: core.clone(),
            live,
            db_file,
            next_position,
            last_hash,
            max_group_events: options.max_group_events,
        }
        .spawn(receiver)?;
        Ok(EventLog {
            core,
            requests,
            limits: Limits::from(&options),
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Appends `events` to `stream` as one atomic batch and returns once they
    /// are durable. If every event id was appended before (a retry), returns
    /// the original positions and writes nothing.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        self.queue_append(stream, expected, events, None)
            .await?
            .await
    }

    /// Appends to several streams as one atomic write, each part with its
    /// own expected version, and returns once it is durable: every part
    /// goes in, or none does (a wrong version or a partly written retry in
    /// any part refuses the whole). A part whose event ids were all
    /// appended before is a retry, answered with its original place; so a
    /// whole write made again writes nothing. At most ten batches' worth of
    /// events in all.
    pub async fn append_all(
        &self,
        parts: Vec<(String, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendOutcome>> {
        let total: usize = parts.iter().map(|(_, _, events)| events.len()).sum();
        if total > 10 * self.limits.max_batch_events {
            return Err(invalid(
                "events",
                &format!(
                    "{total} events in one atomic write, at most {} allowed",
                    10 * self.limits.max_batch_events
                ),
            ));
        }
        for (stream, _, events) in &parts {
            self.limits.check_append(stream, events)?;
        }
        let (reply, outcome) = oneshot::channel();
        self.send(Request::AppendAll { parts, reply }).await?;
        Pending(outcome).await
    }

    /// Queues an append and returns once the writer has it, without waiting
    /// for it to be durable: the returned [`Pending`] says when it is, and
    /// requests queued one after another are placed in that order. With
    /// `cursor`, the consumer cursor `(name, position)` is stored in the
    /// same atomic write as the events (if they go in, or were in already),
    /// so a consumer never claims an effect that is not on disk. A request
    /// refused for a storage failure fails the log, so nothing queued after
    /// it goes in; the other refusals (expected version, mixed retry,
    /// limits) depend only on the request itself.
    /// Whether an append of `events` to `stream` would pass the checks
    /// every append passes (stream name, batch size, event size, ids),
    /// without appending: for a writer that must know all its appends are
    /// valid before it queues any of them.
    pub fn check_append(&self, stream: &str, events: &[NewEvent]) -> Result<()> {
        self.limits.check_append(stream, events)
    }

    pub async fn queue_append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        cursor: Option<(&str, u64)>,
    ) -> Result<Pending<AppendOutcome>> {
        self.limits.check_append(stream, &events)?;
        if let Some((name, _)) = cursor {
            check_name("cursor", name, MAX_CURSOR_NAME_LEN)?;
        }
        let (reply, outcome) = oneshot::channel();
        self.send(Request::Append {
            stream: stream.to_owned(),
            expected,
            events,
            cursor: cursor.map(|(name, position)| (name.to_owned(), position)),
            reply,
        })
        .await?;
        Ok(Pending(outcome))
    }

    /// Durably records that consumer `name` has handled everything before
    /// `position`.
    pub async fn set_cursor(&self, name: &str, position: u64) -> Result<()> {
        self.queue_cursor(name, position).await?.await
    }

    /// Queues a cursor like [`EventLog::queue_append`] queues an append.
    pub async fn queue_cursor(&self, name: &str, position: u64) -> Result<Pending<()>> {
        check_name("cursor", name, MAX_CURSOR_NAME_LEN)?;
        let (reply, done) = oneshot::channel();
        self.send(Request::SetCursor {
            name: name.to_owned(),
            position,
            reply,
        })
        .await?;
        Ok(Pending(done))
    }

    /// The position consumer `name` last stored, if any.
    pub fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let value = self.core.db.get(record::cursor_key(name))?;
        value
            .map(|bytes| {
                record::decode_u64(&bytes)
                    .ok_or_else(|| Error::Storage(format!("cursor {name} is unreadable")))
            })
            .transpose()
    }

    /// Up to `limit` events of `stream` from `from_version` on, in order.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.core.read_stream(stream, from_version, limit)
    }

    /// Up to `limit` events from global `from_position` on, in order.
    pub fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        self.core.read_all(from_position, limit)
    }

    /// The version of the last durable event of `stream`, `None` if it has none.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        self.core.stream_version(stream)
    }

    /// The position the next event will take: every position below is durable.
    pub fn head(&self) -> u64 {
        self.core.durable_end.load(Ordering::Acquire)
    }

    /// Every event from `from_position` on: what is on disk, then live.
    pub fn subscribe(&self, from_position: u64) -> Subscription {
        Subscription::new(self.core.clone(), from_position)
    }

    /// Walks the whole log, checking every record, the hash chain, both
    /// indexes and the anchor; names the first position that does not match.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify::verify(&self.core.db, self.head(), anchor::read(&self.core.path)?)
    }

    /// Bytes the log occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.core.db.size_on_disk()?)
    }

    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// Finishes what is queued, writes the anchor and stops the writer
    /// thread, returning once it has stopped. Other handles then get
    /// [`Error::Closed`] on writes; reads go on working. sled's files are
    /// released when the last handle and subscription are dropped.
    pub async fn close(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        let closed = match self.requests.send(Request::Close { reply }).await {
            Ok(()) => done.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        let thread = self
            .writer
            .lock()
            .map_err(|_| Error::Storage("writer handle poisoned".into()))?
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|error| Error::Storage(error.to_string()))?
                .map_err(|_| Error::Storage("the event log stager panicked".into()))??;
        }
        closed
    }

    async fn send(&self, request: Request) -> Result<()> {
        self.requests.send(request).await.map_err(|_| Error::Closed)
    }
}

/// A request the writer has queued: resolves once it is durable (or
/// refused).
#[derive(Debug)]
#[must_use = "a queued write is only known to be durable once awaited"]
pub struct Pending<T>(oneshot::Receiver<Result<T>>);

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(context)
            .map(|answer| answer.unwrap_or(Err(Error::Closed)))
    }
}

/// The checks an append passes before it reaches the writer, so that a bad
/// request costs the writer nothing.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_batch_events: usize,
    max_event_bytes: usize,
}

impl From<&Options> for Limits {
    fn from(options: &Options) -> Self {
        Limits {
            max_batch_events: options.max_batch_events,
            max_event_bytes: options.max_event_bytes,
        }
    }
}

impl Limits {
    fn check_append(&self, stream: &str, events: &[NewEvent]) -> Result<()> {
        check_name("stream_id", stream, MAX_STREAM_ID_LEN)?;
        if events.is_empty() {
            return Err(invalid("events", "a batch needs at least one event"));
        }
        if events.len() > self.max_batch_events {
            return Err(invalid(
                "events",
                &format!(
                    "{} events in one batch, at most {} allowed",
                    events.len(),
                    self.max_batch_events
                ),
            ));
        }
        let mut ids = std::collections::HashSet::with_capacity(events.len());
        for event in events {
            if !ids.insert(event.event_id) {
                return Err(invalid(
                    "event_id",
                    &format!("{} appears twice in one batch", event.event_id),
                ));
            }
            if event.content_type.is_empty() {
                return Err(invalid("content_type", "must not be empty"));
            }
            let size = event.encoded_len();
            if size > self.max_event_bytes {
                return Err(invalid(
                    "payload",
                    &format!(
                        "the event is {size} bytes, at most {} allowed",
                        self.max_event_bytes
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: &str) -> Error {
    Error::InvalidArgument {
        field,
        reason: reason.to_owned(),
    }
}

/// Stream ids and cursor names: 1 to `max` bytes, no control characters
/// (NUL separates a stream id from its version in the index).
fn check_name(field: &'static str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if name.len() > max {
        return Err(invalid(
            field,
            &format!("{} bytes, at most {max} allowed", name.len()),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Refuses a log written by a newer build; stamps a new one with ours.
fn check_format(db: &sled::Db) -> Result<()> {
    match db.get(record::FORMAT_META_KEY)? {
        Some(stored) => {
            let version = stored.first().copied().unwrap_or(0);
            if version > record::CURRENT_FORMAT {
                return Err(Error::UnsupportedFormat {
                    position: 0,
                    version,
                    supported: record::CURRENT_FORMAT,
                });
            }
        }
        None => {
            db.insert(record::FORMAT_META_KEY, &[record::CURRENT_FORMAT])?;
        }
    }
    Ok(())
}

/// The log's anchor. Every log has had one since its first open, before
/// any record: records without one mean the anchor was removed, and with it
/// the proof of what was acknowledged, so the log is refused rather than
/// given a new anchor that would bless whatever it now holds.
fn required_anchor(dir: &Path, records: u64) -> Result<anchor::Anchor> {
    match anchor::read(dir)? {
        Some(anchor) => Ok(anchor),
        None if records == 0 => Ok(anchor::Anchor {
            records: 0,
            last_hash: GENESIS_HASH,
        }),
        None => Err(Error::Corrupt {
            position: 0,
            reason: format!(
                "the log holds {records} records but its anchor ({}) is missing; \
                 restore it from a backup of this directory, never make a new one",
                anchor::path_in(dir).display()
            ),
        }),
    }
}

/// Verifies the log in `dir` without changing it: its files are copied to
/// a temporary directory and the copy is opened and walked (sled recovers a
/// log by writing to it, and holds a lock a running service has taken).
/// Checks what [`EventLog::verify`] checks, and that the anchor is there.
pub fn verify_copy(dir: &Path) -> Result<VerifyReport> {
    if !dir.join("db").is_file() {
        return Err(Error::Storage(format!(
            "{} holds no event log (no file named db)",
            dir.display()
        )));
    }
    let copy = copy_of(dir)?;
    let db = match record::sled_config(copy.path()).open() {
        Ok(db) => db,
        // sled's snapshot claims more than its log now yields (a damaged
        // message ends sled's recovery there): recover from the log alone,
        // which stops at the damage, so the walk below names the first
        // record lost with it.
        Err(sled::Error::Corruption { .. }) => {
            for file in std::fs::read_dir(copy.path())? {
                let path = file?.path();
                if path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("snap."))
                {
                    std::fs::remove_file(path)?;
                }
            }
            record::sled_config(copy.path()).open()?
        }
        Err(error) => return Err(error.into()),
    };
    let anchor = anchor::read(dir)?;
    // A damaged last page must not end the walk before it starts: then the
    // anchor says how far to look, and the walk names the first position
    // it cannot read.
    let end = match (recover_head(&db), anchor) {
        (Ok((end, _)), _) => end,
        (Err(_), Some(anchor)) => anchor.records,
        (Err(error), None) => return Err(error),
    };
    let anchor = required_anchor(dir, end)?;
    verify::verify(&db, end.max(anchor.records), Some(anchor))
}

/// The log in `dir` opened on a copy of its files, for reading without
/// touching them (the copy lives as long as the returned directory).
pub fn open_copy(dir: &Path) -> Result<(EventLog, tempfile::TempDir)> {
    let copy = copy_of(dir)?;
    let log = EventLog::open(Options::new(copy.path()))?;
    Ok((log, copy))
}

/// A copy of the files of the log in `dir`.
fn copy_of(dir: &Path) -> Result<tempfile::TempDir> {
    let copy = tempfile::tempdir()?;
    for entry in walk(dir)? {
        let relative = entry.strip_prefix(dir).unwrap_or(&entry);
        let target = copy.path().join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&entry, &target)?;
    }
    Ok(copy)
}

/// Every file under `dir`, the anchor's temporary file aside.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut directories = vec![dir.to_owned()];
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory)? {
            let path = entry?.path();
            if path.is_dir() {
                directories.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// The next position and the hash to chain it to, from the last record.
fn recover_head(db: &sled::Db) -> Result<(u64, Hash)> {
    let last = db
        .range(record::record_key(0)..=record::record_key(u64::MAX))
        .next_back()
        .transpose()?;
    let Some((key, value)) = last else {
        return Ok((0, GENESIS_HASH));
    };
    let position = record::position_of_record_key(&key)
        .ok_or_else(|| Error::Storage("record key of the wrong length".into()))?;
    let raw = record::RawRecord::parse(position, &value)?;
    Ok((position + 1, raw.hash))
}

impl Core {
    fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub(crate) fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let end = self.durable_end().min(from.saturating_add(limit as u64));
        if from >= end {
            return Ok(Vec::new());
        }
        let mut events = Vec::with_capacity(((end - from) as usize).min(4096));
        let mut expected = from;
        let records = self
            .db
            .range(record::record_key(from)..record::record_key(end));
        for entry in records {
            let (key, value) = entry?;
            let position = record::position_of_record_key(&key)
                .ok_or_else(|| Error::Storage("record key of the wrong length".into()))?;
            // Positions below the durable head have no gaps: a hole is damage.
            if position != expected {
                return Err(record::corrupt(expected, "record is missing"));
            }
            events.push(RecordedEvent::new(position, value)?);
            expected += 1;
        }
        if expected != end {
            return Err(record::corrupt(expected, "record is missing"));
        }
        Ok(events)
    }

    fn read_stream(&self, stream: &str, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let end = self.durable_end();
        let prefix = record::stream_prefix(stream);
        let mut events = Vec::new();
        for entry in self
            .db
            .range(record::stream_key(stream, from)..)
            .take(limit)
        {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            let position = record::decode_u64(&value)
                .ok_or_else(|| Error::Storage(format!("index of stream {stream} is unreadable")))?;
            if position >= end {
                break;
            }
            let bytes = self
                .db
                .get(record::record_key(position))?
                .ok_or_else(|| record::corrupt(position, "indexed by its stream but missing"))?;
            events.push(RecordedEvent::new(position, bytes)?);
        }
        Ok(events)
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().map_or_else(
            |_| Some("failure flag poisoned".into()),
            |failure| failure.clone(),
        )
    }

    pub(crate) fn fail(&self, message: &str) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert_with(|| message.to_owned());
        }
    }

    pub(crate) fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        self.stream_version_before(stream, self.durable_end())
    }

    /// The stream's last version among positions below `end`.
    pub(crate) fn stream_version_before(&self, stream: &str, end: u64) -> Result<Option<u64>> {
        for entry in self.db.scan_prefix(record::stream_prefix(stream)).rev() {
            let (key, value) = entry?;
            let position = record::decode_u64(&value)
                .ok_or_else(|| Error::Storage(format!("index of stream {stream} is unreadable")))?;
            if position < end {
                let version =
                    record::decode_u64(key.get(key.len().saturating_sub(8)..).unwrap_or_default())
                        .ok_or_else(|| Error::Storage("stream key of the wrong length".into()))?;
                return Ok(Some(version));
            }
        }
        Ok(None)
    }
}
