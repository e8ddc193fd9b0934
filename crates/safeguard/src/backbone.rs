//! The whole backbone in one process: four services on one gRPC port (with
//! health checking and reflection), each with its own log under the data
//! directory, joined by the in-process bus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::calendar::Calendar;
use domain::conference::QuorumRule;
use domain::date::Date;
use serde::Deserialize;
use tokio::sync::oneshot;

/// Everything an operator can set. Read from a JSON file, then overridden by
/// flags and environment variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How long ended plans stay visible to lookups.
    pub visibility_months: u32,
    /// The quorum rule: social care present, and at least this many other
    /// agencies.
    pub quorum_social_care_required: bool,
    pub quorum_min_other_agencies: usize,
    /// One-off bank holidays announced after this release (YYYY-MM-DD).
    pub extra_bank_holidays: Vec<String>,
    /// Bank holidays moved away from their usual date (YYYY-MM-DD).
    pub removed_bank_holidays: Vec<String>,
    /// How often missed deadlines are looked for, in seconds.
    pub deadline_check_seconds: u64,
    /// Carry domain events over NATS JetStream at this URL instead of the
    /// in-process bus (`safeguard up --nats URL`).
    pub nats: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) here, if anywhere.
    pub metrics: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./safeguard-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            visibility_months: 12,
            quorum_social_care_required: true,
            quorum_min_other_agencies: 2,
            extra_bank_holidays: Vec::new(),
            removed_bank_holidays: Vec::new(),
            deadline_check_seconds: 60,
            nats: None,
            metrics: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("referral intake: {0}")]
    Referral(#[from] referral::Error),
    #[error("conference scheduler: {0}")]
    Conference(#[from] conference::Error),
    #[error("plan registry: {0}")]
    Registry(#[from] registry::Error),
    #[error("notification: {0}")]
    Notification(#[from] notification::Error),
    #[error("cannot listen on {address}: {error}")]
    Listen {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("server: {0}")]
    Serve(String),
    #[error("bus: {0}")]
    Bus(#[from] bus::Error),
}

impl Config {
    /// Reads a JSON config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::Config(format!("{}: {error}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|error| Error::Config(format!("{}: {error}", path.display())))
    }

    fn calendar(&self) -> Result<Calendar, Error> {
        let dates = |field: &str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    Date::parse(value).map_err(|error| Error::Config(format!("{field}: {error}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Calendar::england_and_wales().with_adjustments(
            dates("extra_bank_holidays", &self.extra_bank_holidays)?,
            dates("removed_bank_holidays", &self.removed_bank_holidays)?,
        ))
    }
}

/// A running backbone.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    /// Where `/metrics` is served, when asked for.
    pub metrics: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    logs: Vec<eventlog::EventLog>,
}

impl Running {
    /// The next position of each service's log, in the order they start
    /// (referral intake, conference scheduler, plan registry,
    /// notification): what an operator or a test reads to see that nothing
    /// was written.
    pub fn log_heads(&self) -> Vec<u64> {
        self.logs.iter().map(eventlog::EventLog::head).collect()
    }

    /// Stops serving, lets requests in flight finish, and closes every log.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self
            .server
            .await
            .map_err(|error| Error::Serve(error.to_string()))?;
        for log in &self.logs {
            if let Err(error) = log.close().await {
                tracing::error!(%error, "closing a log");
            }
        }
        served.map_err(|error| Error::Serve(error.to_string()))
    }
}

/// Opens every service and starts serving. If anything fails, what was
/// already opened is closed again, so a retry finds its files free.
pub async fn start(config: &Config) -> Result<Running, Error> {
    let mut opened = Vec::new();
    let started = start_services(config, &mut opened).await;
    if started.is_err() {
        for log in opened {
            let _ = log.close().await;
        }
    }
    started
}

async fn start_services(
    config: &Config,
    opened: &mut Vec<eventlog::EventLog>,
) -> Result<Running, Error> {
    let calendar = config.calendar()?;
    let bus = match &config.nats {
        Some(url) => bus::Bus::jetstream(bus::JetStreamOptions::new(url.clone())).await?,
        None => bus::Bus::in_process(),
    };
    let dir = &config.data_dir;
    let referrals = referral::open(
        referral::Options {
            data_dir: dir.join("referral-intake"),
            calendar: calendar.clone(),
        },
        &bus,
    )
    .await?;
    opened.push(referrals.log().clone());
    let conferences = conference::open(
        conference::Options {
            data_dir: dir.join("conference-scheduler"),
            calendar,
            quorum: QuorumRule {
                social_care_required: config.quorum_social_care_required,
                min_other_agencies: config.quorum_min_other_agencies,
            },
        },
        &bus,
    )
    .await?;
    opened.push(conferences.log().clone());
    let registry = registry::open(
        registry::Options {
            visibility_months: config.visibility_months,
            ..registry::Options::new(dir.join("plan-registry"))
        },
        &bus,
    )
    .await?;
    opened.push(registry.log().clone());
    let notifications = notification::open(
        notification::Options {
            deadline_check: Duration::from_secs(config.deadline_check_seconds.max(1)),
            ..notification::Options::new(dir.join("notification"))
        },
        &bus,
    )
    .await?;
    opened.push(notifications.log().clone());
    let logs = opened.clone();
    let reader = bus::LogReader::new()
        .with(referral::LOG, referrals.log().clone())
        .with(conference::LOG, conferences.log().clone())
        .with(registry::LOG, registry.log().clone())
        .with(notification::LOG, notifications.log().clone());

    let watched = [
        referrals.watched(),
        conferences.watched(),
        registry.watched(),
        notifications.watched(),
    ];
    let (health_service, status) = service_core::process::health_and_status(&watched).await;
    let metrics = match config.metrics {
        Some(address) => Some(
            service_core::metrics::listen(address, watched.to_vec())
                .await
                .map_err(|error| Error::Listen { address, error })?,
        ),
        None => None,
    };
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contract::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| Error::Reflection(error.to_string()))?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| Error::Listen {
            address: config.listen,
            error,
        })?;
    let address = listener.local_addr().map_err(|error| Error::Listen {
        address: config.listen,
        error,
    })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        service_core::process::server()
            .add_service(health_service)
            .add_service(status.into_server())
            .add_service(reflection)
            .add_service(reader.into_server())
            .add_service(referrals.into_server())
            .add_service(conferences.into_server())
            .add_service(registry.into_server())
            .add_service(notifications.into_server())
            .serve_with_incoming_shutdown(service_core::process::incoming(listener), async {
                let _ = stopped.await;
            }),
    );
    Ok(Running {
        address,
        metrics,
        stop: Some(stop),
        server,
        logs,
    })
}
