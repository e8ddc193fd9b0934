//! What a service's own binary does, the same for each: read its flags,
//! log to stderr, say where it listens, serve until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `<name> [--data-dir DIR] [--listen ADDR]`.
#[derive(Debug, Clone)]
pub struct Args {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
}

/// Reads the flags; on a bad one, prints why and gives the exit code.
pub fn args(name: &str, default_port: u16) -> Result<Args, ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut parsed = Args {
        data_dir: PathBuf::from(format!("./safeguard-data/{name}")),
        listen: ([127, 0, 0, 1], default_port).into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--data-dir", Some(value)) => parsed.data_dir = value.into(),
            ("--listen", Some(value)) => {
                parsed.listen = value.parse().map_err(|error| {
                    eprintln!("{name}: --listen {value}: {error}");
                    ExitCode::from(2)
                })?;
            }
            _ => {
                eprintln!("usage: {name} [--data-dir DIR] [--listen ADDR]");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(parsed)
}

/// Serves `router` on `listen` until Ctrl-C.
pub async fn serve(
    name: &str,
    router: tonic::transport::server::Router,
    listen: SocketAddr,
) -> ExitCode {
    println!("{name} listening on {listen}");
    let served = router
        .serve_with_shutdown(listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed(name, error),
    }
}

pub fn failed(name: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{name}: {error}");
    ExitCode::FAILURE
}

/// The connections `listener` accepts, ready to serve gRPC on. Nagle's
/// algorithm is off, as `serve_with_shutdown` has it: with it on, a response
/// written in more than one piece waits for the client's delayed ACK, and
/// every lookup took 40 ms however idle the server.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
