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

//!
//! A region runs several pods of it, because lookups far outnumber plan
//! writes. Pod 0 is the primary: it alone writes plans, so every plan has
//! one history. A read replica (pod n, producer `plan-registry-<n>`)
//! forwards plan writes to the primary, answers lookups and chronologies
//! from its own view, and audits its lookups in its own log; every pod
//! follows every other pod's events, so all of them show the same plans
//! and the same list of who looked.

mod chronology;
mod projection;
mod rules;
mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use eventlog::EventLog;
use service_core::Watermark;
use tokio::sync::Notify;

use crate::service::Inner;
pub use crate::service::PlanRegistry;

/// The primary's producer name; a replica's is
/// [`contract::producers::plan_registry_pod`].
pub const LOG: &str = contract::producers::PLAN_REGISTRY;

/// The producers whose events make up the chronology, beside the registry.
const CHRONOLOGY_SOURCES: [&str; 2] = [
    contract::producers::REFERRAL_INTAKE,
    contract::producers::CONFERENCE_SCHEDULER,
];

/// How long a replica waits at start to catch up with the primary's log:
/// with the bus's own start-up retries, within the 300 s a Kubernetes
/// startup probe allows (`deploy/k8s`), and far more than the about 2 s per
/// 100,000 events it takes.
const CATCH_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(180);

#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// How long an ended plan is still shown by a lookup (London
    /// procedures: 12 months). History keeps it for ever.
    pub visibility_months: u32,
    /// How many registry pods run: the primary and its read replicas.
    pub pods: u32,
    /// Which pod this is: 0 the primary, else a read replica.
    pub pod: u32,
    /// Where the primary serves gRPC: a read replica forwards plan writes
    /// there.
    pub primary_url: Option<String>,
}

impl Options {
    /// One registry alone, the primary, keeping ended plans visible for 12
    /// months.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            visibility_months: 12,
            pods: 1,
            pod: 0,
            primary_url: None,
        }
    }

    /// This pod's producer name.
    pub fn producer(&self) -> String {
        contract::producers::plan_registry_pod(self.pod)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the registry log: {0}")]
    Log(#[from] eventlog::Error),
    #[error("cannot rebuild the registry from the log: {0}")]
    Projection(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
    #[error(
        "registry pod {pod} is a read replica and needs the primary's address (--producer {LOG}=URL)"
    )]
    NoPrimary { pod: u32 },
    #[error("the primary's address {url}: {reason}")]
    PrimaryUrl { url: String, reason: String },
}

pub(crate) type Shared = Arc<RwLock<projection::Projection>>;

/// Opens the registry: its log and projection, the rule that turns
/// conference outcomes into plans (on a replica, the wait for the
/// primary's plans instead), and the followers of the other pods and of
/// the chronology's sources.
pub async fn open(options: Options, bus: &bus::Bus) -> Result<PlanRegistry, Error> {
    let own = options.producer();
    let primary = match (options.pod, &options.primary_url) {
        (0, _) => None,
        (pod, None) => return Err(Error::NoPrimary { pod }),
        (_, Some(url)) => Some(service::primary(url).map_err(|reason| Error::PrimaryUrl {
            url: url.clone(),
            reason,
        })?),
    };
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(&own, log.clone()).await?;
    let projection: Shared = Arc::new(RwLock::new(projection::Projection::new(primary.is_some())));
    let watermark = Watermark::new(own.as_str());
    service_core::projection::rebuild_and_follow(
        &log,
        projection.clone(),
        watermark.clone(),
        projection::Projection::apply,
    )
    .await
    .map_err(Error::Projection)?;
    let health = service_core::Health::default();
    let peer_applied = Arc::new(Notify::new());
    let mut peers = Vec::new();
    for peer in contract::producers::plan_registry_pods(options.pods) {
        if peer == own {
            continue;
        }
        let watermark = Watermark::new(peer.as_str());
        tokio::spawn(follow(
            bus.clone(),
            format!("{own}.peer.{peer}"),
            peer,
            projection.clone(),
            watermark.clone(),
            health.clone(),
            Some(peer_applied.clone()),
        ));
        peers.push(watermark);
    }
    // A replica that answered before it had the primary's plans would tell
    // a nurse a child on a plan has none: it serves only once it has
    // caught up with what the primary had published when it started. (The
    // primary waits for no one: other pods only add to who looked.)
    if primary.is_some()
        && let Some(watermark) = peers.iter().find(|watermark| watermark.log() == LOG)
    {
        let head = bus.published_head(LOG).await?;
        watermark
            .wait_for(Some(&watermark.token(head)), CATCH_UP_WITHIN)
            .await
            .map_err(|status| Error::Projection(status.message().to_owned()))?;
        tracing::info!(position = head, "caught up with the primary ({LOG})");
    }
    let mut sources = HashMap::new();
    for producer in CHRONOLOGY_SOURCES {
        let watermark = Watermark::new(producer);
        tokio::spawn(follow(
            bus.clone(),
            format!("{own}.chronology.{producer}"),
            producer.to_owned(),
            projection.clone(),
            watermark.clone(),
            health.clone(),
            None,
        ));
        sources.insert(producer, watermark);
    }
    // How far the scheduler's outcomes are plans the projection shows: a
    // lookup that passes the chair's token waits for it, so the chair and
    // the nurse agree, on whichever pod the nurse reaches.
    let plan_rule = Watermark::new(contract::producers::CONFERENCE_SCHEDULER);
    let service = PlanRegistry::new(Inner {
        producer: own,
        log,
        projection,
        watermark,
        peers,
        peer_applied,
        plan_rule: plan_rule.clone(),
        sources,
        visibility_months: options.visibility_months,
        health,
        primary,
    });
    if service.is_replica() {
        tokio::spawn(rules::mirror(service.clone(), bus.clone(), plan_rule));
    } else {
        tokio::spawn(rules::run(service.clone(), bus.clone(), plan_rule));
    }
    Ok(service)
}

/// Follows another producer from its first event: into the chronology, and
/// for another registry pod (`peer_applied` given) into the projection too.
async fn follow(
    bus: bus::Bus,
    consumer: String,
    producer: String,
    projection: Shared,
    watermark: Watermark,
    health: service_core::Health,
    peer_applied: Option<Arc<Notify>>,
) {
    let what = format!("the registry's follower of {producer}");
    let mut subscription = match bus.subscribe(&consumer, &producer, 0).await {
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
            if peer_applied.is_none() {
                state.chronology.add(&producer, position, &envelope);
            } else {
                if let Err(error) = state.apply(&delivery.event) {
                    tracing::error!(%error, producer, position, "cannot apply another registry pod's event");
                }
                state
                    .chronology
                    .add_from_pod(&producer, position, &envelope);
            }
        }
        watermark.advance_to(position + 1);
        if let Some(applied) = &peer_applied {
            applied.notify_waiters();
        }
    }
}
