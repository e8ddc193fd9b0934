//! What an operator's monitoring scrapes: each service's health and how
//! many records it quarantined, as Prometheus text on `GET /metrics`, so an
//! alert can fire on the first record a service could not apply, not only
//! when it stops.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::health::Watched;

/// Serves `/metrics` for `watched` on `listener` until the process ends,
/// and `/healthz` (200 while every watched service serves, else 503): what
/// a Kubernetes probe asks, since the gRPC port answers only over mutual
/// TLS, which kubelet's gRPC probe cannot speak.
pub fn serve(listener: tokio::net::TcpListener, watched: Vec<Watched>) {
    let probed = watched.clone();
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let text = render(&watched);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move || {
                let answer = healthz(&probed);
                async move { answer }
            }),
        );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
}

/// Binds `address` and serves `/metrics` there; returns where it listens.
pub async fn listen(address: SocketAddr, watched: Vec<Watched>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    serve(listener, watched);
    Ok(bound)
}

/// Whether every watched service does all its work, and if not, which
/// stopped and why.
pub fn healthz(watched: &[Watched]) -> (http::StatusCode, String) {
    let stopped: Vec<String> = watched
        .iter()
        .filter_map(|service| {
            service
                .health
                .problem()
                .map(|problem| format!("{}: {problem}", service.producer))
        })
        .collect();
    if stopped.is_empty() {
        (http::StatusCode::OK, "serving\n".into())
    } else {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not serving: {}\n", stopped.join("; ")),
        )
    }
}

/// The Prometheus text exposition of `watched`.
pub fn render(watched: &[Watched]) -> String {
    let mut text = String::new();
    gauge(
        &mut text,
        watched,
        "safeguard_service_serving",
        "1 while the service does all its work, 0 once a part of it stopped for good.",
        |health| u64::from(health.problem().is_none()),
    );
    gauge(
        &mut text,
        watched,
        "safeguard_quarantined_records",
        "Records the service could not apply and passed by (see `safeguard health`).",
        |health| health.quarantine().len() as u64,
    );
    gauge(
        &mut text,
        watched,
        "safeguard_bus_messages_refused",
        "Messages the bus brought that were not provably their producer's records, refused since the service started (security events).",
        crate::Health::bus_messages_refused,
    );
    gauge(
        &mut text,
        watched,
        "safeguard_health_warnings",
        "Things wrong that do not stop the service, e.g. a gap it cannot repair yet (see `safeguard health`).",
        |health| health.warnings().len() as u64,
    );
    text
}

/// One gauge, a line per service.
fn gauge(
    text: &mut String,
    watched: &[Watched],
    name: &str,
    help: &str,
    value: impl Fn(&crate::Health) -> u64,
) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
    for service in watched {
        let _ = writeln!(
            text,
            "{name}{{service=\"{}\"}} {}",
            service.producer,
            value(&service.health)
        );
    }
}
