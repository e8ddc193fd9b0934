//! `conference-scheduler`: the conference scheduler alone in its process.
//!
//! `conference-scheduler [--data-dir DIR] [--listen ADDR]`; the one-command
//! backbone runs it in-process beside the others instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use domain::calendar::Calendar;

const USAGE: &str = "usage: conference-scheduler [--data-dir DIR] [--listen ADDR]";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut data_dir = PathBuf::from("./safeguard-data/conference-scheduler");
    let mut listen: SocketAddr = ([127, 0, 0, 1], 50053).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--data-dir", Some(value)) => data_dir = value.into(),
            ("--listen", Some(value)) => match value.parse() {
                Ok(address) => listen = address,
                Err(error) => {
                    eprintln!("conference-scheduler: --listen {value}: {error}");
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
    let options = conference::Options {
        data_dir,
        calendar: Calendar::england_and_wales(),
        quorum: domain::conference::QuorumRule::default(),
    };
    let service = match conference::open(options, &bus).await {
        Ok(service) => service,
        Err(error) => {
            eprintln!("conference-scheduler: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("conference-scheduler listening on {listen}");
    let served = tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_shutdown(listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conference-scheduler: {error}");
            ExitCode::FAILURE
        }
    }
}
