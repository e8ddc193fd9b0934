//! The whole backbone in one process: four services on one gRPC port (with
//! health checking and reflection), each with its own log under the data
//! directory, joined by the in-process bus.

use std::net::SocketAddr;
use std::path::PathBuf;

use service_core::clock::Clock;
use service_core::settings::Settings;
use tokio::sync::oneshot;

/// How the backbone runs: where it listens and keeps its data (flags and
/// environment), and the settings every service reads
/// (`service_core::settings`, from `--config FILE`).
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Carry domain events over NATS JetStream at this URL instead of the
    /// in-process bus (`safeguard up --nats URL`).
    pub nats: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) here, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Serve the FHIR edge (the CP-IS-compatible API) here, if anywhere:
    /// beside the services, speaking to the registry over its gRPC API.
    pub fhir: Option<SocketAddr>,
    /// Serve the police intake (`POST /reports`) here, if anywhere: beside
    /// the services, speaking to referral intake over its gRPC API.
    pub police: Option<SocketAddr>,
    pub settings: Settings,
    /// Whom to trust and how to prove this backbone (`--security FILE`);
    /// without it, the development realm in the data directory.
    pub security: Option<trust::Config>,
    /// What day it is for every service: the wall clock's, unless a test
    /// or a replay fixes it. Not a setting: no deployment should pretend.
    pub clock: Clock,
    /// Listen beyond loopback with the development realm all the same
    /// (`--insecure-development-realm-on-network`).
    pub development_realm_on_network: bool,
}

impl Config {
    /// Where the development realm is kept when no security is configured.
    pub fn realm_dir(&self) -> PathBuf {
        self.data_dir.join("realm")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./safeguard-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            nats: None,
            metrics: None,
            fhir: None,
            police: None,
            settings: Settings::default(),
            security: None,
            clock: Clock::System,
            development_realm_on_network: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("security: {0}")]
    Trust(String),
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

/// A running backbone.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    /// Where `/metrics` is served, when asked for.
    pub metrics: Option<SocketAddr>,
    /// Where the FHIR edge serves HTTPS, when asked for.
    pub fhir: Option<SocketAddr>,
    /// Where the police intake serves HTTPS, when asked for.
    pub police: Option<SocketAddr>,
    /// The development realm it runs in, when no security is configured:
    /// where the CLI finds the certificates and keys to act with.
    pub realm: Option<PathBuf>,
    /// Said once, when the development realm was made on this start.
    pub realm_made: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    edges: Vec<tokio::task::JoinHandle<Result<(), String>>>,
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
        for edge in self.edges.drain(..) {
            edge.abort();
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
    let settings = &config.settings;
    let realm = config.security.is_none().then(|| config.realm_dir());
    let (trust, realm_made) = service_core::process::trust(
        config.security.as_ref(),
        realm.as_deref(),
        config.listen,
        config.development_realm_on_network,
        Some("backbone"),
    )
    .map_err(Error::Trust)?;
    let bus = match &config.nats {
        Some(url) => {
            bus::Bus::jetstream(
                bus::JetStreamOptions::trusted(url.clone(), &trust).map_err(Error::Trust)?,
            )
            .await?
        }
        None => bus::Bus::in_process(),
    };
    let dir = &config.data_dir;
    let referrals = referral::open(
        referral::Options {
            clock: config.clock,
            ..referral::Options::new(dir.join(referral::LOG), settings).map_err(Error::Config)?
        },
        &bus,
    )
    .await?;
    opened.push(referrals.log().clone());
    let conferences = conference::open(
        conference::Options {
            clock: config.clock,
            ..conference::Options::new(dir.join(conference::LOG), settings)
                .map_err(Error::Config)?
        },
        &bus,
    )
    .await?;
    opened.push(conferences.log().clone());
    let registry = registry::open(
        registry::Options {
            clock: config.clock,
            ..registry::Options::new(dir.join(registry::LOG), settings)
        },
        &bus,
    )
    .await?;
    opened.push(registry.log().clone());
    let notifications = notification::open(
        notification::Options {
            clock: config.clock,
            ..notification::Options::new(dir.join(notification::LOG), settings)
        },
        &bus,
    )
    .await?;
    opened.push(notifications.log().clone());
    let logs = opened.clone();
    service_core::process::sign_checkpoints(
        &trust,
        settings,
        &[
            (referral::LOG, referrals.log()),
            (conference::LOG, conferences.log()),
            (registry::LOG, registry.log()),
            (notification::LOG, notifications.log()),
        ],
    );
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
    // A call refused for its credentials is recorded in the log of the
    // service it was for; the registry's takes the rest (status, reflection).
    let refusals = service_core::audit::unauthenticated(vec![
        (
            "/safeguard.referral.v1.".to_owned(),
            referrals.log().clone(),
        ),
        (
            "/safeguard.conference.v1.".to_owned(),
            conferences.log().clone(),
        ),
        (
            "/safeguard.notification.v1.".to_owned(),
            notifications.log().clone(),
        ),
        ("/".to_owned(), registry.log().clone()),
    ]);
    // The edges in this process reach the services through in-memory
    // pipes: the same TLS, HTTP/2 and gRPC as over TCP, without the
    // kernel's network stack twice per message.
    let (pipe, piped) = trust::pipe::pair();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        service_core::process::server(&trust, &config.settings, Some(refusals))
            .map_err(Error::Trust)?
            .add_service(health_service)
            .add_service(status.into_server())
            .add_service(reflection)
            .add_service(reader.into_server())
            .add_service(referrals.into_server())
            .add_service(conferences.into_server())
            .add_service(registry.into_server())
            .add_service(notifications.into_server())
            .serve_with_incoming_shutdown(
                service_core::connection::incoming(listener, Some(piped)),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let mut edges = Vec::new();
    let fhir = match config.fhir {
        Some(wanted) => {
            let (listener, at) = bind(wanted).await?;
            let options = fhir::Options {
                trust: trust.clone(),
                registry_url: format!("https://{address}"),
                registry_pipe: Some(pipe.clone()),
                base_url: format!("https://{at}"),
            };
            edges.push(tokio::spawn(fhir::serve(
                listener,
                options,
                std::future::pending(),
            )));
            Some(at)
        }
        None => None,
    };
    let police = match config.police {
        Some(wanted) => {
            let (listener, at) = bind(wanted).await?;
            let options = police::Options {
                trust: trust.clone(),
                referrals_url: format!("https://{address}"),
                referrals_pipe: Some(pipe.clone()),
            };
            edges.push(tokio::spawn(police::serve(
                listener,
                options,
                std::future::pending(),
            )));
            Some(at)
        }
        None => None,
    };
    Ok(Running {
        address,
        metrics,
        fhir,
        police,
        edges,
        realm,
        realm_made,
        stop: Some(stop),
        server,
        logs,
    })
}

/// An edge's listener on `wanted`, and where it ended up (port 0 picks one).
async fn bind(wanted: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|error| Error::Listen {
            address: wanted,
            error,
        })?;
    let at = listener.local_addr().map_err(|error| Error::Listen {
        address: wanted,
        error,
    })?;
    Ok((listener, at))
}
