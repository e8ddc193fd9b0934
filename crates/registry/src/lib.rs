//! The child-protection-plan registry: who is on a plan, which kind, since
//! when, and whom to call, answered in milliseconds to any authorised
//! agency, with every lookup recorded and (unless silent) reported to the
//! local authority that owns the plan.
//!
//! Plans come from conference outcomes (a rule following the scheduler on
//! the bus) and from plans recorded directly (transfer in, looked after,
//! unborn). Every fact is an event in this service's own log (streams
//! `plan-<id>`, `child-<nhs number>` for lookups, `la-<ods>` for contact
//! numbers), published as producer [`LOG`]. The chronology of each child is
//! built from every producer's events.

mod chronology;
mod projection;
mod rules;
mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use eventlog::EventLog;
use service_core::Watermark;

pub use crate::service::PlanRegistry;

pub const LOG: &str = contract::producers::PLAN_REGISTRY;

/// The producers whose events make up the chronology, beside this one.
const CHRONOLOGY_SOURCES: [&str; 2] = [
    contract::producers::REFERRAL_INTAKE,
    contract::producers::CONFERENCE_SCHEDULER,
];

#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// How long an ended plan is still shown by a lookup (London
    /// procedures: 12 months). History keeps it for ever.
    pub visibility_months: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the registry log: {0}")]
    Log(#[from] eventlog::Error),
    #[error("cannot rebuild the registry from the log: {0}")]
    Projection(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

pub(crate) type Shared = Arc<RwLock<projection::Projection>>;

/// Opens the registry: its log and projection, the rule that turns
/// conference outcomes into plans, and the chronology followers.
pub async fn open(options: Options, bus: &bus::Bus) -> Result<PlanRegistry, Error> {
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(LOG, log.clone())?;
    let projection: Shared = Arc::default();
    let watermark = Watermark::new(LOG);
    let mut subscription = log.subscribe(0);
    while subscription.position() < log.head() {
        let event = subscription.next().await?;
        apply_own(&projection, &event).map_err(Error::Projection)?;
    }
    watermark.advance_to(subscription.position());
    tokio::spawn(follow_own(
        subscription,
        projection.clone(),
        watermark.clone(),
    ));
    let mut sources = HashMap::new();
    for producer in CHRONOLOGY_SOURCES {
        let watermark = Watermark::new(producer);
        tokio::spawn(follow_source(
            bus.clone(),
            producer,
            projection.clone(),
            watermark.clone(),
        ));
        sources.insert(producer, watermark);
    }
    let service = PlanRegistry::new(
        log,
        projection,
        watermark,
        sources,
        options.visibility_months,
    );
    tokio::spawn(rules::run(service.clone(), bus.clone()));
    Ok(service)
}

fn apply_own(projection: &Shared, event: &eventlog::RecordedEvent) -> Result<(), String> {
    let mut state = projection
        .write()
        .map_err(|_| "registry state poisoned".to_owned())?;
    state.apply(event)?;
    if let Ok(envelope) = event.envelope() {
        state.chronology.add(LOG, event.position(), &envelope);
    }
    Ok(())
}

async fn follow_own(
    mut subscription: eventlog::Subscription,
    projection: Shared,
    watermark: Watermark,
) {
    loop {
        let event = match subscription.next().await {
            Ok(event) => event,
            Err(eventlog::Error::Closed) => return,
            Err(error) => {
                tracing::error!(%error, "registry projection stopped");
                return;
            }
        };
        if let Err(error) = apply_own(&projection, &event) {
            tracing::error!(%error, position = event.position(), "registry projection cannot apply an event");
        }
        watermark.advance_to(event.position() + 1);
    }
}

/// Builds the chronology from another producer's events, from its first.
async fn follow_source(
    bus: bus::Bus,
    producer: &'static str,
    projection: Shared,
    watermark: Watermark,
) {
    let mut subscription = match bus.subscribe(producer, 0).await {
        Ok(subscription) => subscription,
        Err(error) => {
            tracing::error!(%error, producer, "cannot follow for the chronology");
            return;
        }
    };
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => {
                tracing::error!(%error, producer, "chronology follower stopped");
                return;
            }
        };
        let position = delivery.event.position();
        if let (Ok(envelope), Ok(mut state)) = (delivery.event.envelope(), projection.write()) {
            state.chronology.add(producer, position, &envelope);
        }
        watermark.advance_to(position + 1);
    }
}
