//! How every service keeps a view of its own log: rebuilt from the first
//! event before the service answers anything, then kept current by the one
//! follower loop (`crate::follow`), with a `Watermark` saying how far it has
//! got. A record the view cannot apply is quarantined, not fatal: the view
//! itself decides what it must then refuse to answer.

use std::sync::{Arc, RwLock};

use contract::records::Records;
use eventlog::EventLog;

use crate::follow::{Failure, Follower, Handler, Record};
use crate::{Quarantine, Watermark};

/// Applies one event of the log to a view.
pub type Apply<P, E> = fn(&mut P, Record<'_>, E) -> Result<(), String>;

/// A view behind its lock, applying each event with `apply`.
#[derive(Debug)]
pub struct View<P, E> {
    view: Arc<RwLock<P>>,
    apply: Apply<P, E>,
}

impl<P, E> View<P, E> {
    pub fn new(view: Arc<RwLock<P>>, apply: Apply<P, E>) -> Self {
        View { view, apply }
    }
}

impl<P: Send + Sync, E: Send> Handler<E> for View<P, E> {
    async fn handle(&mut self, record: Record<'_>, event: E) -> Result<(), Failure> {
        let mut state = self
            .view
            .write()
            .map_err(|_| Failure::Stopped("the view was poisoned".to_owned()))?;
        (self.apply)(&mut state, record, event).map_err(Failure::Unapplied)
    }
}

/// Rebuilds `view` from the whole of `log` (the service `producer`'s own),
/// then spawns the follower that applies each new durable event and
/// advances `watermark`. Fails only if the log does.
pub async fn rebuild_and_follow<P, E>(
    log: &EventLog,
    producer: &str,
    quarantine: Quarantine,
    view: Arc<RwLock<P>>,
    watermark: Watermark,
    apply: Apply<P, E>,
) -> Result<(), String>
where
    P: Send + Sync + 'static,
    E: Records + Send + 'static,
{
    let mut follower =
        Follower::own_log(format!("{producer} projection"), log, producer, quarantine)
            .with_watermark(watermark);
    let mut handler = View::new(view, apply);
    follower.catch_up(log.head(), &mut handler).await?;
    follower.spawn(handler);
    Ok(())
}
