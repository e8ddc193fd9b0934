//! Consistency tokens: a write returns the log positions it produced; a read
//! that passes them waits until its projection has applied them, so the
//! chair who records a plan and the nurse who looks the child up a moment
//! later agree.

use std::time::Duration;

use contract::common::v1::{ConsistencyToken, LogPosition};
use tokio::sync::watch;
use tonic::Status;

/// How long a read waits for its projection before answering UNAVAILABLE.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How far one projection has applied one log: every position below the
/// mark. Cheap to clone; the projection's task advances it.
#[derive(Debug, Clone)]
pub struct Watermark {
    log: &'static str,
    applied: watch::Sender<u64>,
}

impl Watermark {
    pub fn new(log: &'static str) -> Self {
        Watermark {
            log,
            applied: watch::Sender::new(0),
        }
    }

    pub fn log(&self) -> &'static str {
        self.log
    }

    pub fn advance_to(&self, next_position: u64) {
        self.applied.send_if_modified(|applied| {
            let moved = next_position > *applied;
            if moved {
                *applied = next_position;
            }
            moved
        });
    }

    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
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
            .filter(|position| position.log == self.log)
            .map(|position| position.position)
            .max()
        else {
            return Ok(());
        };
        let mut applied = self.applied.subscribe();
        let reached =
            tokio::time::timeout(within, applied.wait_for(|applied| *applied >= wanted)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
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
                log: self.log.to_owned(),
                position: next_position,
            }],
        }
    }
}
