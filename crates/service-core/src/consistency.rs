//! Consistency tokens: a write returns the log positions it produced; a read
//! that passes them waits until its projection has applied them, so the
//! chair who records a plan and the nurse who looks the child up a moment
//! later agree.

use std::time::Duration;

use contract::common::v1::{ConsistencyToken, LogPosition};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tonic::Status;

/// How long a read waits for its projection before answering UNAVAILABLE.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How many reads may wait at once for one view to reach their tokens;
/// beyond it a read is refused RESOURCE_EXHAUSTED rather than queued, so
/// tokens naming positions far ahead cannot pile up waiters.
pub const MAX_WAITING: usize = 1_000;

/// A token as people and headers carry it: `log@position,…`.
pub fn show(token: &ConsistencyToken) -> String {
    token
        .positions
        .iter()
        .map(|position| format!("{}@{}", position.log, position.position))
        .collect::<Vec<_>>()
        .join(",")
}

/// The token `show` printed, or why `text` is not one.
pub fn parse(text: &str) -> Result<ConsistencyToken, String> {
    let positions = text
        .split(',')
        .map(|part| {
            let (log, position) = part
                .trim()
                .split_once('@')
                .ok_or_else(|| format!("expected log@position, got {part:?}"))?;
            let position = position
                .parse()
                .map_err(|_| format!("{position:?} is not a position"))?;
            Ok(LogPosition {
                log: log.to_owned(),
                position,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(ConsistencyToken { positions })
}

/// How far one projection has applied one log: every position below the
/// mark. Cheap to clone; the projection's task advances it.
///
/// Waiters are kept by the position they wait for, and an advance wakes only
/// those it satisfies: with many readers waiting on a busy log, waking every
/// waiter on every event would cost more than the reads themselves.
#[derive(Debug, Clone)]
pub struct Watermark {
    log: Arc<str>,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    applied: u64,
    waiting: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

impl Watermark {
    pub fn new(log: impl Into<Arc<str>>) -> Self {
        Watermark {
            log: log.into(),
            state: Arc::default(),
        }
    }

    pub fn log(&self) -> &str {
        &self.log
    }

    pub fn advance_to(&self, next_position: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if next_position <= state.applied {
            return;
        }
        state.applied = next_position;
        let still_waiting = state.waiting.split_off(&(next_position + 1));
        let satisfied = std::mem::replace(&mut state.waiting, still_waiting);
        drop(state);
        for waiter in satisfied.into_values().flatten() {
            let _ = waiter.send(());
        }
    }

    pub fn applied(&self) -> u64 {
        self.state.lock().map_or(0, |state| state.applied)
    }

    /// Waits until every position the token names for this log is applied.
    /// Positions of other logs are not this projection's to wait for.
    pub async fn wait_for(
        &self,
        token: Option<&ConsistencyToken>,
        within: Duration,
    ) -> Result<(), Status> {
        let Some(wanted) = token
            .into_iter()
            .flat_map(|token| &token.positions)
            .filter(|position| *position.log == *self.log)
            .map(|position| position.position)
            .max()
        else {
            return Ok(());
        };
        let reached = {
            let mut state = self
                .state
                .lock()
                .map_err(|error| crate::reject::internal("waiting for a view", error))?;
            if state.applied >= wanted {
                return Ok(());
            }
            // Readers that gave up (timed out, went away) no longer count.
            state.waiting.retain(|_, senders| {
                senders.retain(|sender| !sender.is_closed());
                !senders.is_empty()
            });
            let waiting: usize = state.waiting.values().map(Vec::len).sum();
            if waiting >= MAX_WAITING {
                return Err(Status::resource_exhausted(format!(
                    "min_token: {waiting} reads are already waiting for {} to catch up, the limit is {MAX_WAITING}; retry shortly",
                    self.log
                )));
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.entry(wanted).or_default().push(sender);
            receiver
        };
        match tokio::time::timeout(within, reached).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Status::unavailable(format!(
                "{} has not yet applied position {wanted} (at {}); retry shortly",
                self.log,
                self.applied()
            ))),
        }
    }

    /// The token a write returns: the log's position after its events.
    pub fn token(&self, next_position: u64) -> ConsistencyToken {
        ConsistencyToken {
            positions: vec![LogPosition {
                log: self.log.to_string(),
                position: next_position,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(position: u64) -> ConsistencyToken {
        Watermark::new("log").token(position)
    }

    #[tokio::test]
    async fn only_so_many_readers_wait_at_once_and_those_gone_do_not_count() {
        let mark = Watermark::new("log");
        let mut waiters: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let mark = mark.clone();
                tokio::spawn(async move { mark.wait_for(Some(&token(9)), DEFAULT_WAIT).await })
            })
            .collect();
        while mark
            .state
            .lock()
            .expect("state")
            .waiting
            .values()
            .map(Vec::len)
            .sum::<usize>()
            < MAX_WAITING
        {
            tokio::task::yield_now().await;
        }
        let refused = mark
            .wait_for(Some(&token(9)), DEFAULT_WAIT)
            .await
            .expect_err("one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("the limit is 1000"),
            "{refused:?}"
        );
        // One gives up: another may wait in its place.
        let gone = waiters.remove(0);
        gone.abort();
        assert!(gone.await.expect_err("aborted").is_cancelled());
        let room = {
            let mark = mark.clone();
            tokio::spawn(async move { mark.wait_for(Some(&token(9)), DEFAULT_WAIT).await })
        };
        tokio::task::yield_now().await;
        mark.advance_to(9);
        assert!(room.await.expect("task").is_ok());
        for waiter in waiters {
            assert!(waiter.await.expect("task").is_ok());
        }
    }

    #[tokio::test]
    async fn readers_wait_for_the_positions_they_name_and_no_longer() {
        let mark = Watermark::new("log");
        let waiting = {
            let mark = mark.clone();
            tokio::spawn(
                async move { mark.wait_for(Some(&token(5)), Duration::from_secs(5)).await },
            )
        };
        tokio::task::yield_now().await;
        mark.advance_to(4);
        assert!(!waiting.is_finished());
        mark.advance_to(5);
        assert!(waiting.await.expect("task").is_ok());
        // Already applied: no wait; another log's position: not ours.
        assert!(mark.wait_for(Some(&token(3)), Duration::ZERO).await.is_ok());
        let other = Watermark::new("other").token(99);
        assert!(mark.wait_for(Some(&other), Duration::ZERO).await.is_ok());
        let late = mark
            .wait_for(Some(&token(6)), Duration::from_millis(10))
            .await;
        assert_eq!(
            late.expect_err("times out").code(),
            tonic::Code::Unavailable
        );
    }
}
