//! Black-box tests of the whole backbone: `spawn_backbone` starts it as
//! `safeguard up` does, on port 0 over a temp directory, and the tests speak
//! to it over gRPC only.

mod access;
mod audit;
mod bad_input;
mod conferences;
mod credentials;
mod fhir;
mod fixtures;
mod gp_bridge;
mod import;
mod nats_access;
mod notifications;
mod plans;
mod police;
mod practice;
mod processes;
mod quarantine;
mod registry_pods;
mod restart;
mod scenario;
mod settings;
mod traces;

use std::path::Path;
use std::time::Duration;

use safeguard::backbone::{self, Config, Running};
use service_core::settings::Settings;

#[derive(Debug)]
pub struct Backbone {
    pub url: String,
    pub running: Running,
}

impl Backbone {
    /// Every agency's system, in this backbone's development realm.
    pub fn agencies(&self) -> safeguard::agencies::Agencies {
        let realm = self.running.realm.as_ref().expect("a development realm");
        safeguard::agencies::Agencies::open(realm, safeguard::demo::Endpoints::one(&self.url))
            .expect("the realm")
    }
}

/// Starts the backbone on a free port with its data under `dir`. Retries
/// while a previous backbone on the same directory lets go of its files.
pub async fn spawn_backbone(dir: &Path) -> Backbone {
    spawn_backbone_over(dir, None).await
}

/// The same, with domain events over NATS JetStream at `nats` when given.
pub async fn spawn_backbone_over(dir: &Path, nats: Option<String>) -> Backbone {
    let settings = Settings {
        deadline_check_seconds: 1,
        ..Settings::default()
    };
    spawn(Config {
        nats,
        ..config(dir, settings)
    })
    .await
}

/// The same, set up as `settings` say.
pub async fn spawn_backbone_configured(dir: &Path, settings: Settings) -> Backbone {
    spawn(config(dir, settings)).await
}

/// The day every backbone these tests start believes it is, whenever they
/// run: no assertion depends on the calendar date of the run. (The
/// services run as their own binaries keep the wall clock; what those
/// tests assert holds on any day after this one.)
pub fn today() -> domain::date::Date {
    domain::date::Date::from_ymd(2026, 11, 30).expect("a date")
}

fn config(dir: &Path, settings: Settings) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        metrics: Some(([127, 0, 0, 1], 0).into()),
        fhir: Some(([127, 0, 0, 1], 0).into()),
        police: Some(([127, 0, 0, 1], 0).into()),
        settings,
        clock: service_core::clock::Clock::Fixed(today()),
        ..Config::default()
    }
}

async fn spawn(config: Config) -> Backbone {
    let mut last = None;
    for _ in 0..100 {
        match backbone::start(&config).await {
            Ok(running) => {
                return Backbone {
                    url: format!("https://{}", running.address),
                    running,
                };
            }
            Err(error) => {
                last = Some(error);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("the backbone did not start: {last:?}");
}
