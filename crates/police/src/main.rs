//! `police-intake`: the police forces' edge, in front of referral intake.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// The police forces' edge: `POST /reports` over HTTPS with mutual TLS
/// and the officer's bearer token, each report one or two calls of
/// referral intake.
#[derive(Debug, Parser)]
#[command(name = "police-intake")]
struct Flags {
    /// Where to serve HTTPS.
    #[arg(
        long,
        env = "SAFEGUARD_POLICE_LISTEN",
        default_value = "127.0.0.1:8444"
    )]
    listen: SocketAddr,
    /// Referral intake's gRPC address (or the one-process backbone's).
    #[arg(
        long,
        env = "SAFEGUARD_REFERRALS",
        default_value = "https://127.0.0.1:50051"
    )]
    referrals: String,
    #[command(flatten)]
    trust: service_core::process::EdgeFlags,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    service_core::process::edge("police-intake", run(flags)).await
}

async fn run(flags: Flags) -> Result<(), String> {
    let (trust, listener, address) =
        service_core::process::edge_listener(&flags.trust, flags.listen).await?;
    println!(
        "police-intake: taking reports on https://{address}{}",
        police::REPORTS
    );
    police::serve(
        listener,
        police::Options {
            trust,
            referrals_url: flags.referrals,
            referrals_pipe: None,
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await
}
