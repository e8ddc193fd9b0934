//! `safeguard`: run the backbone, play the demo, or ask it something.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use safeguard::backbone::{self, Config};
use safeguard::commands;

#[derive(Debug, Parser)]
#[command(
    name = "safeguard",
    about = "The safeguarding information-sharing backbone",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs all four services in this process on one gRPC port.
    Up(Box<Up>),
    /// Makes a development realm (a local CA, a server certificate, a
    /// token-signing key and its JWKS) in a directory, for services run as
    /// separate processes (`--realm DIR`) or containers; `safeguard up`
    /// makes its own. For development only.
    Realm {
        #[arg(long, default_value = safeguard::client::DEFAULT_REALM)]
        dir: PathBuf,
        /// A host name the services are reached by, beside loopback (e.g.
        /// each compose service's name); repeat for each.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        /// How many plan-registry pods the NATS users are for.
        #[arg(long, default_value_t = 2)]
        registry_pods: u32,
        /// An agency's system (ODS code) to give NATS credentials for its
        /// own notifications; repeat for each.
        #[arg(long = "partner")]
        partners: Vec<String>,
    },
    /// Prints who may call each RPC (the access matrix of docs/access.md),
    /// from the policy every service enforces.
    Policy,
    /// Plays a whole case against a running backbone, with synthetic data.
    Demo {
        #[arg(
            long,
            env = "SAFEGUARD_SERVER",
            default_value = "https://127.0.0.1:50051"
        )]
        server: String,
        /// Where referral intake listens, when each service runs alone
        /// (likewise --conferences, --registry, --notifications); --server
        /// otherwise.
        #[arg(long)]
        referrals: Option<String>,
        #[arg(long)]
        conferences: Option<String>,
        #[arg(long)]
        registry: Option<String>,
        #[arg(long)]
        notifications: Option<String>,
        /// The development realm whose agencies the demo acts as.
        #[arg(long, env = "SAFEGUARD_REALM", default_value = safeguard::client::DEFAULT_REALM)]
        realm: PathBuf,
    },
    /// Refers a child to a local authority's front door (MASH).
    Refer(Box<commands::referral::Refer>),
    /// Records the MASH decision on a referral.
    Decide(commands::referral::Decide),
    /// Records a strategy discussion.
    Strategy(commands::referral::Strategy),
    /// Records the outcome of a section 47 enquiry.
    Section47(commands::referral::Section47),
    /// Reads referrals: one, or those awaiting a decision.
    #[command(subcommand)]
    Referral(commands::referral::ReferralCommand),
    /// Child protection conferences: create, schedule, rearrange, cancel,
    /// invite, reply, report, attend, outcome, get, list.
    #[command(subcommand)]
    Conference(commands::conference::ConferenceCommand),
    /// Plans recorded directly: transfer-in, looked-after, unborn,
    /// link-birth, end, and the local authority's contact numbers.
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
    /// Is this child on a plan, and whom do I call?
    Lookup(commands::registry::Lookup),
    /// Every event about a child, in order (local authority roles).
    Chronology(commands::registry::Chronology),
    /// Who read the records of your local authority's children over a
    /// period, and why (local authority roles).
    Accesses(commands::registry::Accesses),
    /// Streams the notifications of the caller's organisation.
    Subscribe(commands::registry::Subscribe),
    /// Acknowledges notifications up to a sequence number.
    Acknowledge(commands::registry::Acknowledge),
    /// Asks a backbone or service whether it is serving (gRPC health
    /// checking), and lists for each service what stopped and the records
    /// it quarantined; exits non-zero if not serving. For scripts and
    /// container probes.
    Health(commands::Health),
    /// Rechecks event logs on disk (every record's hash, the chain, the
    /// indexes and the anchor) without changing them; exits non-zero
    /// naming the first bad position.
    Verify(commands::verify::Verify),
    /// Calls any RPC with a JSON request and prints the JSON response, e.g.
    /// `safeguard call safeguard.referral.v1.ReferralIntake/GetReferral
    /// '{"referralId": "..."}'`, acting as the person the identity flags say.
    Call {
        /// `<package>.<Service>/<Method>`.
        method: String,
        /// The request in the protobuf JSON mapping.
        request: String,
        #[arg(
            long,
            env = "SAFEGUARD_SERVER",
            default_value = "https://127.0.0.1:50051"
        )]
        server: String,
        #[command(flatten)]
        identity: safeguard::client::Identity,
    },
}

/// `safeguard up`: where it listens and keeps its data, and what it trusts.
#[derive(Debug, clap::Args)]
struct Up {
    /// A JSON config file; flags and environment override it.
    #[arg(long, env = "SAFEGUARD_CONFIG")]
    config: Option<PathBuf>,
    /// The security file: the server's certificate, the client CA
    /// bundles, the trusted identity providers and their role codes.
    /// Without it, a development realm in the data directory.
    #[arg(long, env = "SAFEGUARD_SECURITY")]
    security: Option<PathBuf>,
    #[arg(long, env = "SAFEGUARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "SAFEGUARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Carry domain events over NATS JetStream at this URL (the four
    /// services still run in this process).
    #[arg(long, env = "SAFEGUARD_NATS")]
    nats: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`: each service's health
    /// and the records it quarantined) at this address.
    #[arg(long, env = "SAFEGUARD_METRICS")]
    metrics: Option<SocketAddr>,
    /// Serve the FHIR edge (the CP-IS-compatible FHIR R4 API an emergency
    /// department's system calls) at this address.
    #[arg(long, env = "SAFEGUARD_FHIR", default_value = "127.0.0.1:8443")]
    fhir: SocketAddr,
    /// Serve the police intake (coming-to-notice reports, `POST /reports`)
    /// at this address.
    #[arg(long, env = "SAFEGUARD_POLICE", default_value = "127.0.0.1:8444")]
    police: SocketAddr,
    /// Listen beyond loopback with the development realm (whose keys
    /// sit in the data directory) all the same. Never in production:
    /// give --security FILE instead.
    #[arg(long = "insecure-development-realm-on-network")]
    development_realm_on_network: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(flags) => up(*flags).await,
        Command::Demo {
            server,
            referrals,
            conferences,
            registry,
            notifications,
            realm,
        } => {
            demo(
                safeguard::demo::Endpoints {
                    referrals: referrals.unwrap_or_else(|| server.clone()),
                    conferences: conferences.unwrap_or_else(|| server.clone()),
                    registry: registry.unwrap_or_else(|| server.clone()),
                    notifications: notifications.unwrap_or_else(|| server.clone()),
                },
                &realm,
            )
            .await
        }
        Command::Realm {
            dir,
            server_names,
            registry_pods,
            partners,
        } => realm(&dir, &server_names, registry_pods, &partners),
        Command::Policy => {
            print!("{}", service_core::policy::matrix());
            Ok(())
        }
        Command::Refer(command) => command.run().await,
        Command::Decide(command) => command.run().await,
        Command::Strategy(command) => command.run().await,
        Command::Section47(command) => command.run().await,
        Command::Referral(command) => command.run().await,
        Command::Conference(command) => command.run().await,
        Command::Plan(command) => command.run().await,
        Command::Lookup(command) => command.run().await,
        Command::Chronology(command) => command.run().await,
        Command::Accesses(command) => command.run().await,
        Command::Subscribe(command) => command.run().await,
        Command::Acknowledge(command) => command.run().await,
        Command::Health(command) => command.run().await,
        Command::Verify(command) => command.run().await,
        Command::Call {
            method,
            request,
            server,
            identity,
        } => safeguard::client::call(&server, &identity, &method, &request)
            .await
            .map(|json| println!("{json}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("safeguard: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `safeguard realm`: the realm, and what a NATS server of it needs.
fn realm(
    dir: &std::path::Path,
    server_names: &[String],
    registry_pods: u32,
    partners: &[String],
) -> Result<(), String> {
    let (realm, made) = trust::Realm::open_or_create_for(dir, server_names)?;
    println!(
        "{} development realm in {} (for development only: its keys are on this disk)",
        if made { "made a" } else { "kept the" },
        dir.display()
    );
    let mut identities = natsd::access::services(registry_pods);
    identities.push(natsd::access::NatsIdentity::Operator);
    for ods in partners {
        let ods =
            domain::OdsCode::parse(ods).map_err(|error| format!("--partner {ods}: {error}"))?;
        identities.push(natsd::access::NatsIdentity::Partner {
            ods: ods.to_string(),
        });
    }
    let users = identities
        .iter()
        .map(|identity| Ok((realm.nats_public_key(&identity.name())?, identity.clone())))
        .collect::<Result<Vec<_>, String>>()?;
    let nats = realm.nats_dir();
    let write = |name: &str, text: String| {
        std::fs::write(nats.join(name), text)
            .map_err(|error| format!("{}: {error}", nats.join(name).display()))
    };
    write("users.conf", natsd::access::users_conf(&users))?;
    write(
        "nats.env",
        format!("SAFEGUARD_NATS_STORE_KEY={}\n", realm.nats_store_key()?),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            nats.join("nats.env"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|error| format!("{}: {error}", nats.join("nats.env").display()))?;
    }
    println!(
        "NATS: {} users (seeds {}/<name>.nk), their permissions in {}/users.conf, the store key in {}/nats.env",
        users.len(),
        nats.display(),
        nats.display(),
        nats.display()
    );
    Ok(())
}

async fn demo(
    endpoints: safeguard::demo::Endpoints,
    realm: &std::path::Path,
) -> Result<(), String> {
    let agencies = safeguard::agencies::Agencies::open(realm, endpoints)?;
    safeguard::demo::run_against(&agencies, false, service_core::validate::today())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

async fn up(flags: Up) -> Result<(), String> {
    let Up {
        config: file,
        security,
        data_dir,
        listen,
        nats,
        metrics,
        fhir,
        police,
        development_realm_on_network,
    } = flags;
    let mut config = Config {
        development_realm_on_network,
        ..Config::default()
    };
    if let Some(path) = file {
        config.settings = service_core::settings::Settings::from_file(&path)?;
    }
    if let Some(path) = security {
        config.security =
            Some(trust::Config::from_file(&path).map_err(|error| format!("--security {error}"))?);
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if nats.is_some() {
        config.nats = nats;
    }
    if metrics.is_some() {
        config.metrics = metrics;
    }
    config.fhir = Some(fhir);
    config.police = Some(police);
    let running = backbone::start(&config)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(made) = &running.realm_made {
        println!("safeguard: {made}");
    }
    let trust = running.realm.as_ref().map_or_else(
        || "the configured certificates and identity providers".to_owned(),
        |realm| {
            format!(
                "the development realm in {}, which the CLI uses with --realm or SAFEGUARD_REALM",
                realm.display()
            )
        },
    );
    println!(
        "safeguard listening on https://{} (mutual TLS and access tokens: {trust}; data in {}, events over {}); Ctrl-C or SIGTERM stops it",
        running.address,
        config.data_dir.display(),
        config.nats.as_deref().map_or_else(
            || "the in-process bus".to_owned(),
            |url| format!("NATS JetStream at {url}")
        )
    );
    if let Some(metrics) = running.metrics {
        println!("safeguard metrics on http://{metrics}/metrics");
    }
    if let Some(fhir) = running.fhir {
        println!("safeguard FHIR API (CP-IS compatible) on https://{fhir}");
    }
    if let Some(police) = running.police {
        println!(
            "safeguard police intake on https://{police}{}",
            police::REPORTS
        );
    }
    service_core::process::stopping().await;
    eprintln!("safeguard: stopping");
    running.stop().await.map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_has_flags_that_clap_can_tell_apart() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
