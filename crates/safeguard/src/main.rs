//! `safeguard`: run the backbone, play the demo, or ask it something.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contract::common::v1::NhsNumber;
use contract::notification::v1 as note;
use contract::notification::v1::notification_client::NotificationClient;
use contract::registry::v1 as registry;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use safeguard::backbone::{self, Config};
use safeguard::client::{Identity, show_date, to_json};

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
    Up {
        /// A JSON config file; flags and environment override it.
        #[arg(long, env = "SAFEGUARD_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, env = "SAFEGUARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "SAFEGUARD_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Plays a whole case against a running backbone, with synthetic data.
    Demo {
        #[arg(
            long,
            env = "SAFEGUARD_SERVER",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
    },
    /// Is this child on a plan, and whom do I call?
    Lookup {
        #[arg(long)]
        nhs: String,
        #[arg(long, default_value = "unscheduled care attendance")]
        purpose: String,
        /// Do not notify the owning local authority.
        #[arg(long)]
        silent: bool,
        /// Answer as of this date (YYYY-MM-DD), from history.
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Every event about a child, in order (local authority roles).
    Chronology {
        #[arg(long)]
        nhs: String,
        #[command(flatten)]
        common: Common,
    },
    /// Calls any RPC with a JSON request and prints the JSON response, e.g.
    /// `safeguard call safeguard.referral.v1.ReferralIntake/GetReferral
    /// '{"caller": {...}, "referralId": "..."}'`.
    Call {
        /// `<package>.<Service>/<Method>`.
        method: String,
        /// The request in the protobuf JSON mapping.
        request: String,
        #[arg(
            long,
            env = "SAFEGUARD_SERVER",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
    },
    /// Streams the notifications of the caller's organisation.
    Subscribe {
        #[arg(long, default_value = "cli")]
        subscriber: String,
        /// Resume after this sequence number (0: after the last acknowledged).
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    #[arg(
        long,
        env = "SAFEGUARD_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Print one JSON document instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    identity: Identity,
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
        Command::Up {
            config,
            data_dir,
            listen,
        } => up(config, data_dir, listen).await,
        Command::Demo { server } => safeguard::demo::run(&server, false)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string()),
        Command::Lookup {
            nhs,
            purpose,
            silent,
            as_of,
            common,
        } => lookup(nhs, purpose, silent, as_of, common).await,
        Command::Chronology { nhs, common } => chronology(nhs, common).await,
        Command::Subscribe {
            subscriber,
            after,
            common,
        } => subscribe(subscriber, after, common).await,
        Command::Call {
            method,
            request,
            server,
        } => safeguard::client::call(&server, &method, &request)
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

async fn up(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> Result<(), String> {
    let mut config = match file {
        Some(path) => Config::from_file(&path).map_err(|error| error.to_string())?,
        None => Config::default(),
    };
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let running = backbone::start(&config)
        .await
        .map_err(|error| error.to_string())?;
    println!(
        "safeguard listening on {} (data in {}); Ctrl-C stops it",
        running.address,
        config.data_dir.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("safeguard: stopping");
    running.stop().await.map_err(|error| error.to_string())
}

fn status(error: tonic::Status) -> String {
    format!("{:?}: {}", error.code(), error.message())
}

async fn lookup(
    nhs: String,
    purpose: String,
    silent: bool,
    as_of: Option<String>,
    common: Common,
) -> Result<(), String> {
    let as_of = match as_of {
        Some(text) => {
            let date =
                domain::date::Date::parse(&text).map_err(|error| format!("--as-of: {error}"))?;
            Some(contract::common::v1::Date {
                year: date.year(),
                month: date.month() as i32,
                day: date.day() as i32,
            })
        }
        None => None,
    };
    let mut client = PlanRegistryClient::connect(common.server.clone())
        .await
        .map_err(|error| error.to_string())?;
    let response = client
        .lookup_child(registry::LookupChildRequest {
            caller: Some(common.identity.caller()?),
            nhs_number: Some(NhsNumber { value: nhs.clone() }),
            purpose,
            silent,
            as_of,
            min_token: None,
        })
        .await
        .map_err(status)?
        .into_inner();
    if common.json {
        println!("{}", to_json(&response)?);
        return Ok(());
    }
    if response.plans.is_empty() {
        println!(
            "child {nhs}: no child protection plan, looked-after status or unborn plan on record"
        );
    }
    for plan in &response.plans {
        let owner = plan.owner.clone().unwrap_or_default();
        let la = owner.local_authority.unwrap_or_default();
        println!(
            "child {nhs}: {} since {}{}{}",
            plan.r#type()
                .as_str_name()
                .trim_start_matches("PLAN_TYPE_")
                .to_lowercase()
                .replace('_', " "),
            show_date(plan.start_date.as_ref()),
            plan.end_date
                .as_ref()
                .map(|end| format!(", ended {}", show_date(Some(end))))
                .unwrap_or_default(),
            if plan.category == 0 {
                String::new()
            } else {
                format!(
                    " ({})",
                    plan.category()
                        .as_str_name()
                        .trim_start_matches("ABUSE_CATEGORY_")
                        .to_lowercase()
                )
            },
        );
        println!(
            "  call {} ({}): {} office hours, {} out of hours",
            la.name, la.ods_code, owner.office_hours_phone, owner.out_of_hours_phone
        );
    }
    println!("last {} accesses:", response.recent_accesses.len());
    for access in &response.recent_accesses {
        let organisation = access.organisation.clone().unwrap_or_default();
        println!(
            "  {} {} — {}",
            access
                .at
                .map(|at| service_core::validate::date_of(&at).to_string())
                .unwrap_or_default(),
            organisation.name,
            access.purpose
        );
    }
    Ok(())
}

async fn chronology(nhs: String, common: Common) -> Result<(), String> {
    let mut client = PlanRegistryClient::connect(common.server.clone())
        .await
        .map_err(|error| error.to_string())?;
    let response = client
        .child_chronology(registry::ChildChronologyRequest {
            caller: Some(common.identity.caller()?),
            nhs_number: Some(NhsNumber { value: nhs }),
            min_token: None,
        })
        .await
        .map_err(status)?
        .into_inner();
    if common.json {
        println!("{}", to_json(&response)?);
        return Ok(());
    }
    for entry in &response.entries {
        let at = entry
            .occurred_at
            .map(|at| service_core::validate::date_of(&at).to_string())
            .unwrap_or_default();
        println!(
            "{at}  {:<22} {}  [{}]",
            entry.log, entry.summary, entry.actor
        );
    }
    Ok(())
}

async fn subscribe(subscriber: String, after: u64, common: Common) -> Result<(), String> {
    let caller = common.identity.caller()?;
    let mut client = NotificationClient::connect(common.server.clone())
        .await
        .map_err(|error| error.to_string())?;
    let mut stream = client
        .subscribe(note::SubscribeRequest {
            caller: Some(caller),
            subscriber,
            recipient_ods_code: common.identity.organisation.clone(),
            kinds: vec![],
            child_nhs_number: None,
            after_sequence: after,
        })
        .await
        .map_err(status)?
        .into_inner();
    while let Some(message) = stream.message().await.map_err(status)? {
        if common.json {
            println!("{}", to_json(&message)?);
        } else {
            println!(
                "#{} {} {}",
                message.sequence,
                message
                    .kind()
                    .as_str_name()
                    .trim_start_matches("NOTIFICATION_KIND_")
                    .to_lowercase(),
                message.summary
            );
        }
    }
    Ok(())
}
