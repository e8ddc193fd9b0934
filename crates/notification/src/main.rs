//! `notification-service`: the notification service alone in its process.
//!
//! `notification-service [--data-dir DIR] [--listen ADDR] [--nats URL [--producer NAME=URL]...]`;
//! alone it runs on the in-process bus, with `--nats` beside the other
//! services over JetStream. The one-command
//! backbone runs it in-process beside the others instead.

use std::process::ExitCode;

use service_core::process;

const NAME: &str = "notification-service";

#[tokio::main]
async fn main() -> ExitCode {
    let (args, trust) = match process::args(NAME, 50055) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let bus = match process::bus(NAME, &args, &trust).await {
        Ok(bus) => bus,
        Err(code) => return code,
    };
    let options = notification::Options {
        registry_pods: args.registry_pods,
        ..notification::Options::new(&args.data_dir, &args.settings)
    };
    match notification::open(options, &bus).await {
        Ok(service) => {
            // Its own log, for consumers elsewhere that find a gap.
            let reader = bus::LogReader::new().with(notification::LOG, service.log().clone());
            process::sign_checkpoints(
                &trust,
                &args.settings,
                &[(notification::LOG, service.log())],
            );
            let watched = [service.watched()];
            // A call refused for its credentials is recorded in this
            // service's own log.
            let refusals =
                service_core::audit::unauthenticated(vec![("/".to_owned(), service.log().clone())]);
            let mut server = match process::server(&trust, &args.settings, Some(refusals)) {
                Ok(server) => server,
                Err(error) => return process::failed(NAME, error),
            };
            let router = server
                .add_service(reader.into_server())
                .add_service(service.into_server());
            process::serve(NAME, router, &args, &watched).await
        }
        Err(error) => process::failed(NAME, error),
    }
}
