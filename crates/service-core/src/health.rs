//! Whether a service still does all its work. A rule or follower that stops
//! for good (its log failed, the bus gave up) marks the service broken, and
//! its gRPC health then answers NOT_SERVING: an orchestrator restarts it,
//! and the restart resumes from the durable cursors. Without this a broken
//! rule would only be a log line while the service looked healthy.
//!
//! A record that could not be applied does not break a service: it is
//! quarantined (`crate::quarantine`) and listed here, so that `GetStatus`
//! (`crate::status`) shows an operator which records to look at.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use contract::events::v1::{RecordQuarantined, ServiceHealth};

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A service as the server it runs in watches it: its health, its gRPC
/// service name (for gRPC health) and its producer name (for `GetStatus`).
#[derive(Debug, Clone)]
pub struct Watched {
    pub health: Health,
    pub grpc_service: &'static str,
    pub producer: String,
}

impl Watched {
    /// The service served as `S`, producer `producer`.
    pub fn new<S: tonic::server::NamedService>(
        health: Health,
        producer: impl Into<String>,
    ) -> Self {
        Watched {
            health,
            grpc_service: S::NAME,
            producer: producer.into(),
        }
    }
}

/// One service's health, shared by everything it runs.
#[derive(Debug, Clone)]
pub struct Health {
    broken: Arc<watch::Sender<Option<String>>>,
    quarantined: Arc<Mutex<Vec<RecordQuarantined>>>,
    bus_messages_refused: Arc<AtomicU64>,
    /// What is wrong but does not stop the service, by what says so.
    warnings: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            broken: Arc::new(watch::Sender::new(None)),
            quarantined: Arc::default(),
            bus_messages_refused: Arc::default(),
            warnings: Arc::default(),
        }
    }
}

impl Health {
    /// `what` (a rule, a follower) has stopped for good because of `error`.
    pub fn broken(&self, what: &str, error: impl std::fmt::Display) {
        tracing::error!(what, %error, "stopped for good; health is now NOT_SERVING");
        self.broken.send_replace(Some(format!("{what}: {error}")));
    }

    /// What broke first, if anything has.
    pub fn problem(&self) -> Option<String> {
        self.broken.borrow().clone()
    }

    /// A record was quarantined; the first time a consumer meets a record
    /// is the one kept.
    pub fn quarantined(&self, record: RecordQuarantined) {
        let Ok(mut quarantined) = self.quarantined.lock() else {
            return;
        };
        let same = |known: &RecordQuarantined| {
            (&known.consumer, &known.producer, known.position)
                == (&record.consumer, &record.producer, record.position)
        };
        if !quarantined.iter().any(same) {
            quarantined.push(record);
        }
    }

    /// The records quarantined so far, in the order they were first met.
    pub fn quarantine(&self) -> Vec<RecordQuarantined> {
        self.quarantined
            .lock()
            .map(|quarantined| quarantined.clone())
            .unwrap_or_default()
    }

    /// The bus brought a message that was refused (a security event).
    pub fn refused_bus_message(&self) {
        self.bus_messages_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bus_messages_refused(&self) -> u64 {
        self.bus_messages_refused.load(Ordering::Relaxed)
    }

    /// `what` says something is wrong that does not stop the service (a gap
    /// it cannot repair yet), or, with `None`, that it no longer is.
    pub fn warn(&self, what: &str, warning: Option<String>) {
        let Ok(mut warnings) = self.warnings.lock() else {
            return;
        };
        match warning {
            Some(warning) => {
                tracing::warn!(what, warning, "health warning");
                warnings.insert(what.to_owned(), warning);
            }
            None => {
                warnings.remove(what);
            }
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|warnings| warnings.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How `service` is, as `GetStatus` tells it.
    pub fn status(&self, service: &str) -> ServiceHealth {
        let problem = self.problem();
        ServiceHealth {
            service: service.to_owned(),
            serving: problem.is_none(),
            problem: problem.unwrap_or_default(),
            quarantined: self.quarantine(),
            bus_messages_refused: self.bus_messages_refused(),
            warnings: self.warnings(),
        }
    }

    /// Once broken, reports `service` (its full gRPC name) and the server as
    /// a whole (`""`) NOT_SERVING to `reporter`. Spawn it beside the server.
    pub async fn report(self, reporter: HealthReporter, service: &'static str) {
        let mut changes = self.broken.subscribe();
        if changes.wait_for(Option::is_some).await.is_ok() {
            reporter
                .set_service_status(service, ServingStatus::NotServing)
                .await;
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::health_client::HealthClient;

    #[tokio::test]
    async fn a_broken_rule_turns_the_served_health_to_not_serving() {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("safeguard.test.v1.Test", ServingStatus::Serving)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(crate::connection::incoming(listener, None)),
        );
        let health = Health::default();
        tokio::spawn(health.clone().report(reporter, "safeguard.test.v1.Test"));
        let mut client = HealthClient::new(
            tonic::transport::Channel::from_shared(format!("http://{address}"))
                .expect("url")
                .connect_lazy(),
        );
        let status = |client: &mut HealthClient<tonic::transport::Channel>, service: &str| {
            let mut client = client.clone();
            let service = service.to_owned();
            async move {
                client
                    .check(HealthCheckRequest { service })
                    .await
                    .expect("check")
                    .into_inner()
                    .status()
            }
        };
        assert_eq!(status(&mut client, "").await, Wire::Serving);
        assert_eq!(health.problem(), None);
        health.broken("plan rule", "the log failed");
        let started = std::time::Instant::now();
        while status(&mut client, "").await != Wire::NotServing {
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            status(&mut client, "safeguard.test.v1.Test").await,
            Wire::NotServing
        );
        assert_eq!(
            health.problem().as_deref(),
            Some("plan rule: the log failed")
        );
    }
}
