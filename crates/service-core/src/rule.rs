//! Writing what a rule derives from the events it follows: each followed
//! event's effects go into this service's log together with the rule's
//! cursor past that event, in one atomic write, so the cursor never claims
//! an effect that is not on disk. Many are in flight at once (they share the
//! log's group commits) and they land in the order of the events that
//! caused them.
//!
//! Effects are events with ids derived from the followed event's and
//! `ExpectedVersion::Any`, so the log refuses them only if they are invalid
//! in themselves (then the rule stops at that event, logged, before queuing
//! anything after it) or the log has failed (then nothing queued after them
//! goes in either): the cursor never passes an effect that did not land.

use std::future::Future;

use eventlog::{AppendOutcome, EventLog, ExpectedVersion, NewEvent, Pending};
use tokio::sync::mpsc;

use crate::Health;
use crate::follow::{Failure, Handler, Record};

/// Followed events whose effects may be awaiting their fsync at once.
const IN_FLIGHT: usize = 1024;

/// The events one followed event causes: `(stream, events)` appends.
pub type Effects = Vec<(String, Vec<NewEvent>)>;

/// A rule's writer. Dropping it stops it once what is queued is durable.
#[derive(Debug)]
pub struct Applier {
    log: EventLog,
    cursor: String,
    queue: mpsc::Sender<Queued>,
    health: Health,
}

#[derive(Debug)]
struct Queued {
    /// The followed position after the event: where the cursor now stands.
    next: u64,
    appends: Vec<Pending<AppendOutcome>>,
    cursor_alone: Option<Pending<()>>,
}

impl Applier {
    /// Writes under the cursor named `cursor`. `after(next, outcomes)` runs
    /// once the effects of the event before position `next` are durable,
    /// in order: for what must wait for them (a view that must show them).
    /// A failure to write stops it and marks `health` broken.
    pub fn start<F, Fut>(
        log: EventLog,
        cursor: impl Into<String>,
        health: Health,
        mut after: F,
    ) -> Self
    where
        F: FnMut(u64, Vec<AppendOutcome>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let cursor = cursor.into();
        let (queue, mut queued) = mpsc::channel::<Queued>(IN_FLIGHT);
        let name = cursor.clone();
        let broken = health.clone();
        tokio::spawn(async move {
            let stopped = |error| stopped(&broken, &name, &error);
            while let Some(item) = queued.recv().await {
                let mut outcomes = Vec::with_capacity(item.appends.len());
                for pending in item.appends {
                    match pending.await {
                        Ok(outcome) => outcomes.push(outcome),
                        Err(error) => return stopped(error),
                    }
                }
                if let Some(pending) = item.cursor_alone
                    && let Err(error) = pending.await
                {
                    return stopped(error);
                }
                after(item.next, outcomes).await;
            }
        });
        Applier {
            log,
            cursor,
            queue,
            health,
        }
    }

    /// Queues `effects` of the followed event at `position`, the cursor
    /// moving past it with the last of them (or alone, if there are none).
    /// Returns once queued; fails once the log or the writer has stopped,
    /// and then the rule should stop too.
    /// Effects the log would refuse (a stream name or an event too long)
    /// are refused as a whole before any is queued
    /// (`eventlog::Error::InvalidArgument`), and the rule goes on: the
    /// event that caused them is the one to quarantine.
    pub async fn apply(&self, position: u64, effects: Effects) -> Result<(), eventlog::Error> {
        for (stream, events) in &effects {
            self.log.check_append(stream, events)?;
        }
        let applied = self.queue_effects(position, effects).await;
        if let Err(error) = &applied {
            stopped(&self.health, &self.cursor, error);
        }
        applied
    }

    async fn queue_effects(&self, position: u64, effects: Effects) -> Result<(), eventlog::Error> {
        // Once the writer task has stopped on a failure, nothing more may
        // be queued: its cursor would pass the effect that failed.
        if self.queue.is_closed() {
            return Err(eventlog::Error::Closed);
        }
        let next = position + 1;
        let count = effects.len();
        let mut appends = Vec::with_capacity(count);
        for (index, (stream, events)) in effects.into_iter().enumerate() {
            let cursor = (index + 1 == count).then_some((self.cursor.as_str(), next));
            appends.push(
                self.log
                    .queue_append(&stream, ExpectedVersion::Any, events, cursor)
                    .await?,
            );
        }
        let cursor_alone = if count == 0 {
            Some(self.log.queue_cursor(&self.cursor, next).await?)
        } else {
            None
        };
        self.queue
            .send(Queued {
                next,
                appends,
                cursor_alone,
            })
            .await
            .map_err(|_| eventlog::Error::Closed)
    }
}

/// A rule as a follower's handler: `derive` turns each followed event into
/// its effects, which the [`Applier`] writes with the cursor past it. An
/// event `derive` refuses is quarantined by the follower, and the cursor
/// passes it alone.
#[derive(Debug)]
pub struct Rule<F> {
    applier: Applier,
    derive: F,
    /// Below this position the rule only derives (to remember what it
    /// must), and writes nothing: its cursor is already past it.
    writes_from: u64,
}

impl<F> Rule<F> {
    pub fn new<E>(applier: Applier, derive: F) -> Self
    where
        F: FnMut(Record<'_>, E) -> Result<Effects, String>,
    {
        Rule {
            applier,
            derive,
            writes_from: 0,
        }
    }

    /// For a rule that reads its producer from the first event but wrote
    /// its effects up to `cursor` already: below it, nothing is written
    /// again, not even the cursor, which must never move back.
    pub fn writing_from(mut self, cursor: u64) -> Self {
        self.writes_from = cursor;
        self
    }
}

impl<E, F> Handler<E> for Rule<F>
where
    E: Send,
    F: FnMut(Record<'_>, E) -> Result<Effects, String> + Send,
{
    async fn handle(&mut self, record: Record<'_>, event: E) -> Result<(), Failure> {
        let effects = (self.derive)(record, event).map_err(Failure::Unapplied)?;
        if record.position < self.writes_from {
            return Ok(());
        }
        self.applier
            .apply(record.position, effects)
            .await
            .map_err(failure)
    }

    async fn pass(&mut self, record: Record<'_>) -> Result<(), Failure> {
        if record.position < self.writes_from {
            return Ok(());
        }
        self.applier
            .apply(record.position, Vec::new())
            .await
            .map_err(failure)
    }
}

/// What a failed write means to the follower: effects the log refuses make
/// their cause unappliable; a closing log ends it; anything else stops it.
fn failure(error: eventlog::Error) -> Failure {
    match error {
        eventlog::Error::InvalidArgument { field, reason } => Failure::Unapplied(format!(
            "what it causes cannot be written: {field}: {reason}"
        )),
        eventlog::Error::Closed => Failure::Closing,
        other => Failure::Stopped(other.to_string()),
    }
}

/// A rule stops: for good, unless its log is simply closing.
fn stopped(health: &Health, cursor: &str, error: &eventlog::Error) {
    if !matches!(error, eventlog::Error::Closed) {
        health.broken(&format!("the rule keeping cursor {cursor}"), error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn event(label: &str) -> NewEvent {
        NewEvent::new("safeguard.test.v1.Labelled", label.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn effects_land_in_order_with_the_cursor_and_after_runs_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(eventlog::Options::new(dir.path())).expect("open");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let applier = {
            let seen = seen.clone();
            Applier::start(
                log.clone(),
                "rule:test",
                Health::default(),
                move |next, outcomes| {
                    let seen = seen.clone();
                    async move {
                        let ends: Vec<u64> = outcomes.iter().map(|o| o.positions.end).collect();
                        seen.lock().expect("lock").push((next, ends));
                    }
                },
            )
        };
        for position in 0..100u64 {
            let effects = match position % 3 {
                0 => Vec::new(),
                1 => vec![(format!("s-{position}"), vec![event("one")])],
                _ => vec![
                    ("x".to_owned(), vec![event("two")]),
                    ("y".to_owned(), vec![event("three"), event("four")]),
                ],
            };
            applier.apply(position, effects).await.expect("queued");
        }
        while seen.lock().expect("lock").len() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen.iter().map(|(next, _)| *next).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        let ends: Vec<u64> = seen.iter().flat_map(|(_, ends)| ends.clone()).collect();
        assert!(ends.windows(2).all(|pair| pair[0] < pair[1]), "{ends:?}");
        assert_eq!(log.cursor("rule:test").expect("cursor"), Some(100));
        // 33 single events and 33 × 3 events.
        assert_eq!(log.head(), 33 + 33 * 3);
        drop(applier);
        log.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_rule_writing_from_its_cursor_writes_nothing_below_it() {
        use contract::events::v1::EventEnvelope;
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(eventlog::Options::new(dir.path())).expect("open");
        log.set_cursor("rule:test", 10).await.expect("cursor");
        let applier = Applier::start(log.clone(), "rule:test", Health::default(), |_, _| async {});
        let mut derived = Vec::new();
        let mut rule = Rule::new(applier, |record: Record<'_>, label: &'static str| {
            derived.push(record.position);
            Ok(vec![(format!("s-{}", record.position), vec![event(label)])])
        })
        .writing_from(10);
        let envelope = EventEnvelope::default();
        let at = |position| Record {
            producer: "test",
            position,
            envelope: &envelope,
        };
        rule.handle(at(3), "old").await.expect("handled");
        rule.pass(at(4)).await.expect("passed");
        assert_eq!(
            log.cursor("rule:test").expect("cursor"),
            Some(10),
            "never moves back"
        );
        assert_eq!(log.head(), 0, "nothing written again below the cursor");
        rule.handle(at(10), "new").await.expect("handled");
        drop(rule);
        for _ in 0..100 {
            if log.head() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(log.cursor("rule:test").expect("cursor"), Some(11));
        assert_eq!(log.head(), 1);
        assert_eq!(
            derived,
            [3, 10],
            "derived below the cursor too, to remember"
        );
        log.close().await.expect("close");
    }

    #[tokio::test]
    async fn effects_the_log_refuses_make_their_cause_unappliable_not_the_rule_stop() {
        use contract::events::v1::EventEnvelope;
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(eventlog::Options::new(dir.path())).expect("open");
        let health = Health::default();
        let applier = Applier::start(log.clone(), "rule:test", health.clone(), |_, _| async {});
        let mut rule = Rule::new(applier, |_: Record<'_>, stream: String| {
            Ok(vec![
                ("fine".to_owned(), vec![event("one")]),
                (stream, vec![event("two")]),
            ])
        });
        let envelope = EventEnvelope::default();
        let record = Record {
            producer: "test",
            position: 0,
            envelope: &envelope,
        };
        let refused = rule.handle(record, "x".repeat(10_000)).await;
        assert!(
            matches!(&refused, Err(Failure::Unapplied(reason)) if reason.contains("stream_id")),
            "{refused:?}"
        );
        assert_eq!(health.problem(), None, "the rule goes on");
        rule.pass(record).await.expect("passed");
        drop(rule);
        for _ in 0..100 {
            if log.cursor("rule:test").expect("cursor") == Some(1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(log.cursor("rule:test").expect("cursor"), Some(1));
        assert_eq!(log.head(), 0, "none of the refused effects was written");
        log.close().await.expect("close");
    }
}
