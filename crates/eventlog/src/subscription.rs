//! Following the log: catch up from disk, then switch to live groups from the
//! writer, with no gap and no duplicate at the switch.
//!
//! The subscriber joins the live channel *before* it reads the tail from
//! disk, and the writer marks a group durable *before* it sends it live, so
//! every event is either on disk when read or arrives live; live events
//! already read are skipped by position. A subscriber that falls more than
//! the channel's capacity behind is told it lagged, drops the channel and
//! reads from disk again: a slow subscriber costs disk reads, never memory.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::{Core, Error, LiveGroup, RecordedEvent, Result};

/// How many events one catch-up read takes from disk.
const CATCH_UP_CHUNK: usize = 512;

/// Every event from a position on, in order, each exactly once.
#[derive(Debug)]
pub struct Subscription {
    core: Arc<Core>,
    next_position: u64,
    ready: VecDeque<RecordedEvent>,
    live: Option<broadcast::Receiver<LiveGroup>>,
    fell_behind: u64,
}

impl Subscription {
    pub(crate) fn new(core: Arc<Core>, from_position: u64) -> Self {
        Subscription {
            core,
            next_position: from_position,
            ready: VecDeque::new(),
            live: None,
            fell_behind: 0,
        }
    }

    /// The position of the next event this subscription will yield.
    pub fn position(&self) -> u64 {
        self.next_position
    }

    /// How many times this subscription fell further behind the live buffer
    /// than it holds, and went back to reading from disk.
    pub fn times_fell_behind(&self) -> u64 {
        self.fell_behind
    }

    /// The next event, waiting for one to be appended if need be. Fails with
    /// [`Error::Closed`] once the log is closed and everything durable has
    /// been yielded.
    pub async fn next(&mut self) -> Result<RecordedEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.next_position = event.position() + 1;
                return Ok(event);
            }
            if self.live.is_none() {
                // Join before reading the disk: see the module comment.
                self.live = self.core.live.upgrade().map(|sender| sender.subscribe());
            }
            let from = self.next_position;
            let caught_up = self.core.read_all(from, CATCH_UP_CHUNK)?;
            if !caught_up.is_empty() {
                self.ready.extend(caught_up);
                continue;
            }
            let Some(live) = self.live.as_mut() else {
                return Err(Error::Closed);
            };
            match live.recv().await {
                Ok(group) => {
                    let fresh = group.iter().filter(|event| event.position() >= from);
                    for (expected, event) in (from..).zip(fresh) {
                        if event.position() != expected {
                            // A gap: what is missing is on disk; read it there.
                            self.ready.clear();
                            break;
                        }
                        self.ready.push_back(event.clone());
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    self.fell_behind += 1;
                    self.live = None;
                }
                Err(RecvError::Closed) => {
                    // The writer is gone: drain the disk, then report closed.
                    self.live = None;
                }
            }
        }
    }
}
