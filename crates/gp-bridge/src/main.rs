//! `gp-bridge`: the GP practices' edge, delivering the backbone's
//! notifications to practices through MESH.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Follows the notifications of the practices in its configuration and
/// delivers each as a GP Connect Send Document message through MESH.
#[derive(Debug, Parser)]
#[command(name = "gp-bridge")]
struct Flags {
    /// The bridge's configuration (JSON; see docs/gp-bridge.md).
    #[arg(long, env = "SAFEGUARD_GP_BRIDGE")]
    config: PathBuf,
    /// The security file: the certificate the bridge presents to the
    /// backbone and the CA it trusts, as every service's.
    #[arg(long, env = "SAFEGUARD_SECURITY", conflicts_with = "realm")]
    security: Option<PathBuf>,
    /// A development realm's directory, instead of --security: it also
    /// issues the practices' tokens where no token_file is configured.
    #[arg(long, env = "SAFEGUARD_REALM")]
    realm: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    service_core::process::edge("gp-bridge", run(flags)).await
}

async fn run(flags: Flags) -> Result<(), String> {
    let config = gp_bridge::config::Config::from_file(&flags.config)?;
    // The bridge listens on nothing: loopback is only what the check of a
    // development realm needs to be told.
    let trust = service_core::process::edge_trust(
        flags.security.as_deref(),
        flags.realm.as_deref(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        false,
    )?;
    let realm = flags
        .realm
        .as_deref()
        .map(trust::Realm::open)
        .transpose()?
        .map(Box::new);
    println!(
        "gp-bridge: delivering to {} practice(s) through MESH mailbox {} at {}",
        config.practices.len(),
        config.mesh.mailbox,
        config.mesh.url
    );
    gp_bridge::run(
        gp_bridge::Options {
            config,
            backbone_tls: trust.service_client_tls(),
            realm,
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await
}
