//! `fhir-edge`: the CP-IS-compatible FHIR API, in front of a registry.

use std::net::SocketAddr;
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
    #[command(flatten)]
    trust: service_core::process::EdgeFlags,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    service_core::process::edge("fhir-edge", run(flags)).await
}

async fn run(flags: Flags) -> Result<(), String> {
    let (trust, listener, address) =
        service_core::process::edge_listener(&flags.trust, flags.listen).await?;
    let options = fhir::Options {
        trust,
        registry_url: flags.registry,
        registry_pipe: None,
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
