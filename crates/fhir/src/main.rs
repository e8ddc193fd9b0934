//! `fhir-edge`: the CP-IS-compatible FHIR API, in front of a registry.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The agencies' FHIR edge: `GET /CareTeam`, `GET /AuditEvent` and
/// `GET /metadata` over HTTPS with mutual TLS and bearer tokens, each
/// search one lookup of the plan registry.
#[derive(Debug, Parser)]
#[command(name = "fhir-edge")]
struct Flags {
    /// Where to serve HTTPS.
    #[arg(long, env = "SAFEGUARD_FHIR_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The plan registry's gRPC address (or the one-process backbone's).
    #[arg(
        long,
        env = "SAFEGUARD_REGISTRY",
        default_value = "https://127.0.0.1:50051"
    )]
    registry: String,
    /// This API's base URL as callers reach it (for each entry's fullUrl);
    /// https://<listen> if not given.
    #[arg(long)]
    base_url: Option<String>,
    /// The security file: the server certificate, client CA bundles and
    /// identity providers, as every service's.
    #[arg(long, env = "SAFEGUARD_SECURITY", conflicts_with = "realm")]
    security: Option<PathBuf>,
    /// A development realm's directory, instead of --security.
    #[arg(long, env = "SAFEGUARD_REALM")]
    realm: Option<PathBuf>,
    #[arg(long = "insecure-development-realm-on-network")]
    on_network: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    service_core::process::logging();
    let flags = Flags::parse();
    match run(flags).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fhir-edge: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), String> {
    let security = flags
        .security
        .as_ref()
        .map(|path| {
            trust::Config::from_file(path).map(|config| {
                config.relative_to(path.parent().unwrap_or(std::path::Path::new(".")))
            })
        })
        .transpose()?;
    let (trust, made) = service_core::process::trust(
        security.as_ref(),
        flags.realm.as_deref(),
        flags.listen,
        flags.on_network,
        None,
    )?;
    if let Some(made) = made {
        tracing::warn!("{made}");
    }
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .map_err(|error| format!("--listen {}: {error}", flags.listen))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let options = fhir::Options {
        trust,
        registry_url: flags.registry,
        base_url: flags
            .base_url
            .unwrap_or_else(|| format!("https://{address}")),
    };
    println!("fhir-edge: serving the FHIR API on https://{address}");
    fhir::serve(listener, options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
