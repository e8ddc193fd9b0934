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
    bus.register_producer(LOG, log.clone()).await?;
    let projection: Shared = Arc::default();
    let watermark = Watermark::new(LOG);
    service_core::projection::rebuild_and_follow(
        &log,
        projection.clone(),
        watermark.clone(),
        projection::Projection::apply,
    )
    .await
    .map_err(Error::Projection)?;
    let health = service_core::Health::default();
    let mut sources = HashMap::new();
    for producer in CHRONOLOGY_SOURCES {
        let watermark = Watermark::new(producer);
        tokio::spawn(follow_source(
            bus.clone(),
            producer,
            projection.clone(),
            watermark.clone(),
            health.clone(),
        ));
        sources.insert(producer, watermark);
    }
    // How far the plan rule has turned the scheduler's outcomes into plans
    // the projection shows: a lookup that passes the chair's token waits
    // for it, so the chair and the nurse agree.
    let plan_rule = Watermark::new(contract::producers::CONFERENCE_SCHEDULER);
    let service = PlanRegistry::new(
        log,
        projection,
        watermark,
        plan_rule.clone(),
        sources,
        options.visibility_months,
        health,
    );
    tokio::spawn(rules::run(service.clone(), bus.clone(), plan_rule));
    Ok(service)
}

/// Builds the chronology from another producer's events, from its first.
async fn follow_source(
    bus: bus::Bus,
    producer: &'static str,
    projection: Shared,
    watermark: Watermark,
    health: service_core::Health,
) {
    let what = format!("chronology follower of {producer}");
    let mut subscription = match bus
        .subscribe(&format!("{LOG}.chronology.{producer}"), producer, 0)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => return health.broken(&what, error),
    };
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => return health.broken(&what, error),
        };
        let position = delivery.event.position();
        if let (Ok(envelope), Ok(mut state)) = (delivery.event.envelope(), projection.write()) {
            state.chronology.add(producer, position, &envelope);
        }
        watermark.advance_to(position + 1);
    }
}
