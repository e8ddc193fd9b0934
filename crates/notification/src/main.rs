//! `notification-service`: the notification service alone in its process.
//!
//! `notification-service [--data-dir DIR] [--listen ADDR]`; the one-command
//! backbone runs it in-process beside the others instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: notification-service [--data-dir DIR] [--listen ADDR]";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut data_dir = PathBuf::from("./safeguard-data/notification-service");
    let mut listen: SocketAddr = ([127, 0, 0, 1], 50055).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--data-dir", Some(value)) => data_dir = value.into(),
            ("--listen", Some(value)) => match value.parse() {
                Ok(address) => listen = address,
                Err(error) => {
                    eprintln!("notification-service: --listen {value}: {error}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let bus = bus::Bus::in_process();
    let options = notification::Options::new(data_dir);
    let service = match notification::open(options, &bus).await {
        Ok(service) => service,
        Err(error) => {
            eprintln!("notification-service: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("notification-service listening on {listen}");
    let served = tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_shutdown(listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("notification-service: {error}");
            ExitCode::FAILURE
        }
    }
}
