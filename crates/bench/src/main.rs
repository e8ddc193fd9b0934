//! `safeguard-bench`: measures the real components and prints one
//! `name: value` line per figure, for scripts to read.
//!
//! Machines here are shared and noisy, so every figure that has a goal is a
//! ratio against a baseline measured in the same run.

mod bus;
mod gp;
mod log;
mod lookup;
mod report;

use std::process::ExitCode;

const USAGE: &str = "usage: safeguard-bench log|lookup|bus|gp [--quick]

  log      append throughput and latency, replay speed and size on disk of
           the event log, beside bare sled doing the same work
  lookup   plan lookups over gRPC by 64 clients against a registry of
           100,000 children, beside a no-op RPC on the same server and the
           same searches through the FHIR edge; the registry's rebuild
           speed and memory
  bus      events relayed through a real nats-server beside plain
           JetStream publishes, a restarted consumer catching up, and a
           conference outcome's plan reaching a partner's NATS subscription
           at 1,000 outcomes/s
  gp       a plan started to the GP Connect document in the practice's
           MESH inbox (NHS England's MESH sandbox, the GP bridge), beside
           the same notification reaching a gRPC subscriber
  --quick  smaller counts: the same lines in under a minute";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let commands: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("safeguard-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match commands.as_slice() {
        [lookup::SERVE_COMMAND, data, realm] => {
            runtime.block_on(lookup::serve(data.into(), realm.into()))
        }
        [lookup::LOG_ALONE_COMMAND, data] => runtime.block_on(lookup::log_alone(data.into())),
        ["log"] => runtime.block_on(log::run(log::Scale::new(quick))),
        ["lookup"] => runtime.block_on(lookup::run(lookup::Scale::new(quick))),
        ["bus"] => runtime.block_on(bus::run(bus::Scale::new(quick))),
        ["gp"] => runtime.block_on(gp::run(gp::Scale::new(quick))),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("safeguard-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
