//! Waking now and then for as long as a log is open: for a task that works
//! on a timer (deadline checks, checkpoints) and must let go of the log as
//! soon as it closes, not at its next tick.

use std::time::Duration;

use eventlog::EventLog;

/// Ticks every `every` (the first at once) until the log closes.
#[derive(Debug)]
pub struct UntilClosed {
    /// Following the log's head is what tells the task the log closed.
    closing: eventlog::Subscription,
    ticks: tokio::time::Interval,
}

impl UntilClosed {
    pub fn new(log: &EventLog, every: Duration) -> Self {
        UntilClosed {
            closing: log.subscribe(log.head()),
            ticks: tokio::time::interval(every),
        }
    }

    /// Waits for the next tick: `false` once the log has closed.
    pub async fn tick(&mut self) -> bool {
        loop {
            tokio::select! {
                _ = self.ticks.tick() => return true,
                next = self.closing.next() => match next {
                    Ok(_) => continue,
                    Err(_) => return false,
                },
            }
        }
    }
}
