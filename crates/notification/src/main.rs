//! `notification-service`: the notification service alone in its process.
//!
//! `notification-service [--data-dir DIR] [--listen ADDR]`; the one-command
//! backbone runs it in-process beside the others instead.

use std::process::ExitCode;

use service_core::process;

const NAME: &str = "notification-service";

#[tokio::main]
async fn main() -> ExitCode {
    let args = match process::args(NAME, 50055) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let bus = bus::Bus::in_process();
    let options = notification::Options::new(args.data_dir);
    match notification::open(options, &bus).await {
        Ok(service) => {
            let router = tonic::transport::Server::builder().add_service(service.into_server());
            process::serve(NAME, router, args.listen).await
        }
        Err(error) => process::failed(NAME, error),
    }
}
