//! What a service's own binary does, the same for each: read its flags,
//! log to stderr, say where it listens, serve with health checking until
//! Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tower::layer::util::{Identity, Stack};
use trust::{Authenticate, Realm, Trust};

use crate::health::Watched;
use crate::settings::Settings;
use crate::status::Status;
use crate::trace::TraceLayer;

/// `<name> [--data-dir DIR] [--listen ADDR] [--nats URL [--producer NAME=URL]…]`.
#[derive(Debug, Clone)]
pub struct Args {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The NATS server(s) carrying domain events between processes; without
    /// it the service runs on the in-process bus, alone.
    pub nats: Option<String>,
    /// Where the other services listen, for repairing gaps in their events.
    pub producers: HashMap<String, String>,
    /// Copies of this service's stream in a NATS cluster (3 in a cluster).
    pub replicas: usize,
    /// How many plan-registry pods run: the primary and its read replicas.
    /// The registry follows its peers; notification follows them all.
    pub registry_pods: u32,
    /// Which plan-registry pod this is: 0 the primary, else a read replica.
    /// Given as a number or as a pod name ending in it (`plan-registry-2`),
    /// so a StatefulSet can pass its pod's name.
    pub pod: u32,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The settings file (`--config FILE` or `SAFEGUARD_CONFIG`) every way
    /// of running safeguard reads the same way; defaults without one.
    pub settings: Settings,
}

const USAGE: &str = "(--security FILE | --realm DIR [--insecure-development-realm-on-network]) [--config FILE] [--data-dir DIR] [--listen ADDR] [--metrics ADDR] [--nats URL [--nats-seed FILE] [--replicas N] [--producer NAME=URL]... [--registry-pods N [--pod ORDINAL]]]";

/// A flag's number, if it is in `range`; else says why and gives the exit code.
fn within<N>(
    name: &str,
    flag: &str,
    value: &str,
    range: std::ops::RangeInclusive<N>,
) -> Result<N, ExitCode>
where
    N: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    value
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            eprintln!(
                "{name}: {flag} {value}: expected {} to {}",
                range.start(),
                range.end()
            );
            ExitCode::from(2)
        })
}

/// The ordinal a `--pod` value names: `2`, or a name ending in `-2`.
fn pod_ordinal(value: &str) -> Option<u32> {
    let digits = match value.rsplit_once('-') {
        Some((name, digits)) if !name.is_empty() => digits,
        Some(_) => return None,
        None => value,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Logs to standard error, as every binary of the backbone does: operators
/// see warnings and milestones (a gap repaired, a relay resuming) unless
/// RUST_LOG says otherwise.
pub fn logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// An agency's edge binary (`fhir-edge`, `police-intake`, `gp-bridge`)
/// from its flags parsed to the end: logging, then `run`; an error is
/// printed as `<name>: <error>` and the process exits 1.
pub async fn edge(name: &str, run: impl Future<Output = Result<(), String>>) -> ExitCode {
    logging();
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The flags whom an HTTPS edge trusts and how it proves itself.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeFlags {
    /// The security file: the server certificate, client CA bundles and
    /// identity providers, as every service's.
    #[arg(long, env = "SAFEGUARD_SECURITY", conflicts_with = "realm")]
    pub security: Option<PathBuf>,
    /// A development realm's directory, instead of --security.
    #[arg(long, env = "SAFEGUARD_REALM")]
    pub realm: Option<PathBuf>,
    #[arg(long = "insecure-development-realm-on-network")]
    pub on_network: bool,
}

/// Whom an edge trusts and how it proves itself (`--security FILE`, or a
/// development realm `--realm DIR`, only read), for one that serves on
/// `listen` (a development realm off loopback only if `on_network`).
pub fn edge_trust(
    security: Option<&Path>,
    realm: Option<&Path>,
    listen: SocketAddr,
    on_network: bool,
) -> Result<Trust, String> {
    let security = security.map(trust::Config::from_file).transpose()?;
    let (trust, made) = trust(security.as_ref(), realm, listen, on_network, None)?;
    if let Some(made) = made {
        tracing::warn!("{made}");
    }
    Ok(trust)
}

/// An edge's trust and its HTTPS listener on `listen`, with the address
/// it ended up on.
pub async fn edge_listener(
    flags: &EdgeFlags,
    listen: SocketAddr,
) -> Result<(Trust, tokio::net::TcpListener, SocketAddr), String> {
    let trust = edge_trust(
        flags.security.as_deref(),
        flags.realm.as_deref(),
        listen,
        flags.on_network,
    )?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("--listen {listen}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    Ok((trust, listener, address))
}

/// Reads the flags, and loads whom the process trusts and how it proves
/// itself (`--security FILE`, or a development realm `--realm DIR`); on a
/// bad flag, prints why and gives the exit code.
pub fn args(name: &str, default_port: u16) -> Result<(Args, Trust), ExitCode> {
    logging();
    let mut parsed = Args {
        data_dir: PathBuf::from(format!("./safeguard-data/{name}")),
        listen: ([127, 0, 0, 1], default_port).into(),
        nats: std::env::var("SAFEGUARD_NATS").ok(),
        producers: HashMap::new(),
        replicas: 1,
        registry_pods: 1,
        pod: 0,
        metrics: None,
        settings: Settings::default(),
    };
    let mut config = std::env::var_os("SAFEGUARD_CONFIG").map(PathBuf::from);
    let mut realm = std::env::var_os("SAFEGUARD_REALM").map(PathBuf::from);
    let mut security = std::env::var_os("SAFEGUARD_SECURITY").map(PathBuf::from);
    let mut on_network = false;
    let mut nats_seed = std::env::var_os("SAFEGUARD_NATS_SEED").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(value)) => config = Some(value.into()),
            ("--realm", Some(value)) => realm = Some(value.into()),
            ("--security", Some(value)) => security = Some(value.into()),
            (DEVELOPMENT_REALM_ON_NETWORK, value) => {
                on_network = true;
                // A flag without a value: what followed it is the next flag.
                if let Some(value) = value {
                    eprintln!("{name}: {DEVELOPMENT_REALM_ON_NETWORK} takes no value, not {value}");
                    return Err(ExitCode::from(2));
                }
            }
            ("--data-dir", Some(value)) => parsed.data_dir = value.into(),
            ("--listen", Some(value)) => {
                parsed.listen = value.parse().map_err(|error| {
                    eprintln!("{name}: --listen {value}: {error}");
                    ExitCode::from(2)
                })?;
            }
            ("--metrics", Some(value)) => {
                parsed.metrics = Some(value.parse().map_err(|error| {
                    eprintln!("{name}: --metrics {value}: {error}");
                    ExitCode::from(2)
                })?);
            }
            ("--nats", Some(value)) => parsed.nats = Some(value),
            ("--nats-seed", Some(value)) => nats_seed = Some(value.into()),
            ("--replicas", Some(value)) => {
                parsed.replicas = within(name, "--replicas", &value, 1..=5)?;
            }
            ("--registry-pods", Some(value)) => {
                parsed.registry_pods = within(name, "--registry-pods", &value, 1..=16)?;
            }
            ("--pod", Some(value)) => {
                parsed.pod = pod_ordinal(&value).ok_or_else(|| {
                    eprintln!(
                        "{name}: --pod {value}: expected an ordinal, or a name ending in one"
                    );
                    ExitCode::from(2)
                })?;
            }
            ("--producer", Some(value)) => {
                let Some((producer, url)) = value.split_once('=') else {
                    eprintln!("{name}: --producer {value}: expected NAME=URL");
                    return Err(ExitCode::from(2));
                };
                parsed.producers.insert(producer.to_owned(), url.to_owned());
            }
            _ => {
                eprintln!("usage: {name} {USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    if let Some(path) = config {
        parsed.settings = Settings::from_file(&path).map_err(|error| {
            eprintln!("{name}: --config {error}");
            ExitCode::from(2)
        })?;
    }
    let refusal = if parsed.pod >= parsed.registry_pods {
        Some(format!(
            "--pod {}: only {} registry pods run (--registry-pods)",
            parsed.pod, parsed.registry_pods
        ))
    } else if parsed.pod > 0 && name != contract::producers::PLAN_REGISTRY {
        Some(format!(
            "--pod {}: only the plan registry runs as pods",
            parsed.pod
        ))
    } else if parsed.registry_pods > 1 && parsed.nats.is_none() {
        Some(format!(
            "--registry-pods {}: registry pods share their events over NATS (--nats URL)",
            parsed.registry_pods
        ))
    } else if parsed.pod > 0
        && !parsed
            .producers
            .contains_key(contract::producers::PLAN_REGISTRY)
    {
        Some(format!(
            "--pod {}: a read replica needs the primary's address (--producer {}=URL)",
            parsed.pod,
            contract::producers::PLAN_REGISTRY
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        eprintln!("{name}: {refusal}");
        return Err(ExitCode::from(2));
    }
    let security = match (security, &realm) {
        (None, None) => {
            eprintln!(
                "{name}: no security is configured: give --security FILE (certificates and identity providers), or --realm DIR for a development realm"
            );
            return Err(ExitCode::from(2));
        }
        (Some(_), Some(_)) => {
            eprintln!("{name}: --security and --realm both name whom to trust; give one");
            return Err(ExitCode::from(2));
        }
        (Some(path), None) => Some(trust::Config::from_file(&path).map_err(|error| {
            eprintln!("{name}: --security {error}");
            ExitCode::from(2)
        })?),
        (None, Some(_)) => None,
    };
    // A process's own NKEY, when the security file is shared by every
    // process: named by its producer, from a secret of its own.
    let security = match (security, nats_seed) {
        (Some(mut security), Some(seed)) => {
            security.nats = Some(trust::NatsConfig {
                nkey_seed: seed,
                name: producer_of(name, parsed.pod),
                ca: security.nats.map(|nats| nats.ca).unwrap_or_default(),
            });
            Some(security)
        }
        (None, Some(_)) => {
            eprintln!("{name}: --nats-seed goes with --security; a realm keeps its own NKEYs");
            return Err(ExitCode::from(2));
        }
        (security, None) => security,
    };
    let (trust, made) = trust(
        security.as_ref(),
        realm.as_deref(),
        parsed.listen,
        on_network,
        Some(&producer_of(name, parsed.pod)),
    )
    .map_err(|error| {
        eprintln!("{name}: {error}");
        ExitCode::from(2)
    })?;
    if let Some(made) = made {
        println!("{name}: {made}");
    }
    Ok((parsed, trust))
}

/// Starts signing checkpoints of each `(producer, log)` with this
/// process's service key, every `checkpoint_seconds` in which it wrote
/// (`crate::checkpoint`). Without a key that can sign, says so and signs
/// none.
pub fn sign_checkpoints(trust: &Trust, settings: &Settings, logs: &[(&str, &eventlog::EventLog)]) {
    let signer = match trust.event_signer() {
        Ok(signer) => signer,
        Err(error) => {
            tracing::error!(%error, "no checkpoints of the logs will be signed");
            return;
        }
    };
    for (producer, log) in logs {
        crate::checkpoint::spawn(
            (*log).clone(),
            (*producer).to_owned(),
            signer.clone(),
            settings.checkpoint_interval(),
        );
    }
}

/// The producer a service's binary publishes as: its name, the
/// notification service's `notification`, a registry pod's by its ordinal.
pub fn producer_of(binary: &str, pod: u32) -> String {
    match binary {
        contract::producers::PLAN_REGISTRY => contract::producers::plan_registry_pod(pod),
        "notification-service" => contract::producers::NOTIFICATION.to_owned(),
        other => other.to_owned(),
    }
}

/// The bus the flags ask for: JetStream at `--nats`, else in-process; gaps
/// are repaired from producers elsewhere over TLS with this process's
/// service certificate.
pub async fn bus(name: &str, args: &Args, trust: &Trust) -> Result<bus::Bus, ExitCode> {
    let Some(url) = &args.nats else {
        return Ok(bus::Bus::in_process());
    };
    let mut options =
        bus::JetStreamOptions::trusted(url.clone(), trust).map_err(|error| failed(name, error))?;
    options.producer_urls = args.producers.clone();
    options.replicas = args.replicas;
    bus::Bus::jetstream(options)
        .await
        .map_err(|error| failed(name, error))
}

/// The flag without which a development realm is refused beyond loopback.
pub const DEVELOPMENT_REALM_ON_NETWORK: &str = "--insecure-development-realm-on-network";

/// Whom a process trusts: its `security` configuration, else the
/// development realm in `realm` (made there on first start, when it says
/// so). A development realm is refused on an address beyond loopback
/// unless `on_network` (the loudly named flag) says so.
///
/// In a realm, the process is known to NATS as `nats_user` (its producer
/// name, or `backbone`), with the NKEY the realm keeps for that name; a
/// process that never speaks to NATS (an agency's edge) gives none, and the
/// realm is only read.
pub fn trust(
    security: Option<&trust::Config>,
    realm: Option<&Path>,
    listen: SocketAddr,
    on_network: bool,
    nats_user: Option<&str>,
) -> Result<(Trust, Option<String>), String> {
    let (config, made) = match (security, realm) {
        (Some(security), _) => (security.clone(), None),
        (None, Some(dir)) => {
            let (realm, made) = Realm::open_or_create(dir)?;
            let said = made.then(|| {
                format!(
                    "made a development realm in {} (a local CA, this server's certificate, a token-signing key): for development only",
                    dir.display()
                )
            });
            let config = match nats_user {
                Some(user) => realm.config_as(user)?,
                None => realm.config(),
            };
            (config, said)
        }
        (None, None) => return Err("no security is configured".into()),
    };
    if config.development && !listen.ip().is_loopback() && !on_network {
        return Err(format!(
            "refusing to listen on {listen} with a development realm, whose keys sit on this disk: configure \"security\" with your certificates and identity providers, listen on loopback, or pass {DEVELOPMENT_REALM_ON_NETWORK} if you mean it"
        ));
    }
    Ok((Trust::load(&config)?, made))
}

/// What every request runs through: [`TraceLayer`], then the credentials
/// are checked ([`Authenticate`]).
pub type Layers = Stack<Authenticate, Stack<TraceLayer, Identity>>;

/// A service's gRPC router.
pub type Router = tonic::transport::server::Router<Layers>;

/// The gRPC server every service (and the one-process backbone) builds its
/// router on: mutual TLS, each request continuing its caller's trace and
/// carrying only the identity its certificate and token prove, within the
/// time, concurrency and stream limits of `limits`.
pub fn server(
    trust: &Trust,
    settings: &Settings,
    refusals: Option<trust::layer::Refusals>,
) -> Result<tonic::transport::Server<Layers>, String> {
    let authenticate = match refusals {
        Some(refusals) => trust.authenticate().with_refusals(refusals),
        None => trust.authenticate(),
    };
    use crate::limits;
    Ok(tonic::transport::Server::builder()
        .tls_config(trust.server_tls())
        .map_err(|error| format!("TLS: {error}"))?
        .timeout(std::time::Duration::from_secs(
            settings.request_timeout_seconds.max(1),
        ))
        .concurrency_limit_per_connection(settings.requests_per_connection.max(1))
        .max_concurrent_streams(limits::STREAMS_PER_CONNECTION)
        .layer(TraceLayer)
        .layer(authenticate))
}

/// Serves `router`, with gRPC health checking beside it (what load
/// balancers and Kubernetes probes ask) and `ServiceStatus` (what an
/// operator asks), on `--listen` until Ctrl-C or SIGTERM; requests in
/// flight finish first. Each watched service turns the server NOT_SERVING
/// once its health breaks. With `--metrics`, serves their metrics there.
pub async fn serve(name: &str, router: Router, args: &Args, watched: &[Watched]) -> ExitCode {
    let listen = args.listen;
    let (health, status) = health_and_status(watched).await;
    if let Some(address) = args.metrics {
        match crate::metrics::listen(address, watched.to_vec()).await {
            Ok(bound) => println!("{name} metrics on http://{bound}/metrics"),
            Err(error) => return failed(name, format!("--metrics {address}: {error}")),
        }
    }
    println!("{name} listening on https://{listen}");
    let served = router
        .add_service(health)
        .add_service(status.into_server())
        .serve_with_shutdown(listen, stopping())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed(name, error),
    }
}

/// gRPC health, starting SERVING for the server as a whole and for each
/// watched service and turning NOT_SERVING as each breaks, and the
/// `ServiceStatus` that says why.
pub async fn health_and_status(
    watched: &[Watched],
) -> (
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    Status,
) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let mut status = Status::new();
    for service in watched {
        reporter
            .set_service_status(service.grpc_service, tonic_health::ServingStatus::Serving)
            .await;
        tokio::spawn(
            service
                .health
                .clone()
                .report(reporter.clone(), service.grpc_service),
        );
        status = status.with(service.producer.clone(), service.health.clone());
    }
    (health, status)
}

/// Resolves on Ctrl-C (a terminal) or SIGTERM (Kubernetes, systemd,
/// `docker stop`, `deploy/local.sh stop`).
pub async fn stopping() {
    let interrupted = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminated) => {
                tokio::select! {
                    _ = interrupted => {}
                    _ = terminated.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupted.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupted.await;
    }
}

pub fn failed(name: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{name}: {error}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pod_is_named_by_its_ordinal_or_a_name_ending_in_it() {
        assert_eq!(super::pod_ordinal("2"), Some(2));
        assert_eq!(super::pod_ordinal("plan-registry-0"), Some(0));
        for refused in [
            "plan-registry",
            "-x",
            "-1",
            "+1",
            "pod-+1",
            "",
            "pod-",
            "99999999999",
        ] {
            assert_eq!(super::pod_ordinal(refused), None, "{refused}");
        }
    }
}
