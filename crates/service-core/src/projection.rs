//! How every service keeps a view of its own log: rebuilt from the first
//! event before the service answers anything, then kept current by following
//! the log, with a `Watermark` saying how far it has got.

use std::sync::{Arc, RwLock};

use eventlog::{EventLog, RecordedEvent};

use crate::Watermark;

/// Applies one event of the log to a view.
pub type Apply<P> = fn(&mut P, &RecordedEvent) -> Result<(), String>;

/// Rebuilds `view` from the whole log, then spawns a task that applies each
/// new durable event and advances `watermark`. Fails if an event of the
/// history cannot be applied: a service must not answer from half a history.
pub async fn rebuild_and_follow<P: Send + Sync + 'static>(
    log: &EventLog,
    view: Arc<RwLock<P>>,
    watermark: Watermark,
    apply: Apply<P>,
) -> Result<(), String> {
    let mut subscription = log.subscribe(0);
    while subscription.position() < log.head() {
        let event = subscription
            .next()
            .await
            .map_err(|error| error.to_string())?;
        let mut state = view.write().map_err(|_| "view poisoned".to_owned())?;
        apply(&mut state, &event)?;
    }
    watermark.advance_to(subscription.position());
    tokio::spawn(async move {
        loop {
            let event = match subscription.next().await {
                Ok(event) => event,
                Err(eventlog::Error::Closed) => return,
                Err(error) => {
                    tracing::error!(%error, log = watermark.log(), "projection stopped");
                    return;
                }
            };
            let applied = match view.write() {
                Ok(mut state) => apply(&mut state, &event),
                Err(_) => return,
            };
            if let Err(error) = applied {
                tracing::error!(%error, log = watermark.log(), position = event.position(), "projection cannot apply an event");
            }
            watermark.advance_to(event.position() + 1);
        }
    });
    Ok(())
}
