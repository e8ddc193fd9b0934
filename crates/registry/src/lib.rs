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
mod convert;
mod forward;
mod import;
mod lookup;
mod projection;
mod rate;
mod rules;
mod service;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use contract::records::{AnyEvent, Records, RegistryEvent};
use eventlog::EventLog;
use service_core::clock::Clock;
use service_core::follow::{Failure, Follower, Handler, Record};
use service_core::settings::Settings;
use service_core::{Quarantine, Watermark};
use tokio::sync::Notify;

use crate::service::Inner;
pub use crate::service::PlanRegistry;

/// The primary's producer name; a replica's is
/// [`contract::producers::plan_registry_pod`].
pub const LOG: &str = contract::producers::PLAN_REGISTRY;

/// The producers whose events make up the chronology, beside the registry.
const CHRONOLOGY_SOURCES: [&str; 3] = [
    contract::producers::REFERRAL_INTAKE,
    contract::producers::CONFERENCE_SCHEDULER,
    // For the reads it records (notifications delivered), which go in the
    // owning councils' access reports; its notifications are not history.
    contract::producers::NOTIFICATION,
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
    /// How many children one person may look up a minute.
    pub lookups_per_user_per_minute: u32,
    /// How many registry pods run: the primary and its read replicas.
    pub pods: u32,
    /// Which pod this is: 0 the primary, else a read replica.
    pub pod: u32,
    /// Where the primary serves gRPC: a read replica forwards plan writes
    /// there.
    pub primary_url: Option<String>,
    /// How a read replica reaches the primary: its CA, and this pod's own
    /// service certificate.
    pub primary_tls: Option<tonic::transport::ClientTlsConfig>,
    /// What day it is (the wall clock's unless a test fixes it).
    pub clock: Clock,
}

impl Options {
    /// The primary, alone, with its log in `data_dir`, set up as
    /// `settings` say: how `safeguard up` and the `plan-registry` binary
    /// both build it.
    pub fn new(data_dir: impl Into<PathBuf>, settings: &Settings) -> Self {
        Options {
            data_dir: data_dir.into(),
            visibility_months: settings.visibility_months,
            lookups_per_user_per_minute: settings.lookups_per_user_per_minute,
            pods: 1,
            pod: 0,
            primary_url: None,
            primary_tls: None,
            clock: Clock::System,
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
        (_, Some(url)) => Some(forward::primary(url, options.primary_tls.clone()).map_err(
            |reason| Error::PrimaryUrl {
                url: url.clone(),
                reason,
            },
        )?),
    };
    let log = EventLog::open(eventlog::Options::new(&options.data_dir))?;
    bus.register_producer(&own, log.clone()).await?;
    let quarantine = Quarantine::open(&log, own.as_str(), service_core::Health::default())?;
    let projection: Shared = Arc::new(RwLock::new(projection::Projection::new(primary.is_some())));
    let watermark = Watermark::new(own.as_str());
    service_core::projection::rebuild_and_follow(
        &log,
        &own,
        quarantine.clone(),
        projection.clone(),
        watermark.clone(),
        projection::Projection::apply,
    )
    .await
    .map_err(Error::Projection)?;
    let peer_applied = Arc::new(Notify::new());
    let mut peers = Vec::new();
    for peer in contract::producers::plan_registry_pods(options.pods) {
        if peer == own {
            continue;
        }
        let watermark = Watermark::new(peer.as_str());
        let view = PeerView {
            projection: projection.clone(),
            applied: peer_applied.clone(),
        };
        let follower = Follower::bus(
            format!("{own} follower of {peer}"),
            bus,
            &format!("{own}.peer.{peer}"),
            peer.as_str(),
            0,
            quarantine.clone(),
        );
        spawn_follower(follower, watermark.clone(), view);
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
        let follower = Follower::bus(
            format!("{own} chronology of {producer}"),
            bus,
            &format!("{own}.chronology.{producer}"),
            producer,
            0,
            quarantine.clone(),
        );
        spawn_follower(
            follower,
            watermark.clone(),
            ChronologyView(projection.clone()),
        );
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
        lookup_rate: rate::LookupRate::new(options.lookups_per_user_per_minute),
        clock: options.clock,
        quarantine,
        primary,
    });
    if service.is_replica() {
        tokio::spawn(rules::mirror(service.clone(), bus.clone(), plan_rule));
    } else {
        tokio::spawn(rules::run(service.clone(), bus.clone(), plan_rule));
    }
    Ok(service)
}

/// Runs a follower of another producer once it has subscribed, advancing
/// `watermark` past each record.
fn spawn_follower<E, H>(
    follower: impl Future<Output = Result<Follower, String>> + Send + 'static,
    watermark: Watermark,
    handler: H,
) where
    E: Records + 'static,
    H: Handler<E> + 'static,
{
    tokio::spawn(async move {
        if let Ok(follower) = follower.await {
            follower.with_watermark(watermark).run(handler).await;
        }
    });
}

/// Another registry pod's events: its lookups (and, from the primary, its
/// plans) into the projection, and into the chronology.
#[derive(Debug)]
struct PeerView {
    projection: Shared,
    /// Woken after each event, for a replica waiting for a plan event.
    applied: Arc<Notify>,
}

impl Handler<RegistryEvent> for PeerView {
    async fn handle(&mut self, record: Record<'_>, event: RegistryEvent) -> Result<(), Failure> {
        let applied = match self.projection.write() {
            Ok(mut state) => {
                state.chronology.add_from_pod(record, event.clone());
                state.apply(record, event).map_err(Failure::Unapplied)
            }
            Err(_) => Err(Failure::Stopped(
                "the registry's view was poisoned".to_owned(),
            )),
        };
        self.applied.notify_waiters();
        applied
    }
}

/// Another service's events about children, into their chronologies.
#[derive(Debug)]
struct ChronologyView(Shared);

impl Handler<AnyEvent> for ChronologyView {
    async fn handle(&mut self, record: Record<'_>, event: AnyEvent) -> Result<(), Failure> {
        let mut state = self
            .0
            .write()
            .map_err(|_| Failure::Stopped("the registry's view was poisoned".to_owned()))?;
        state.chronology.add(record, &event);
        // What other services record as read of children's records goes in
        // the owning councils' access reports.
        if let AnyEvent::RecordsRead(read) = &event {
            state.note_records_read(record, read);
        }
        Ok(())
    }
}
