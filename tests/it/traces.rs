//! One request followed across services: the W3C trace a caller sends with
//! a conference outcome reaches the plan it starts and the notifications
//! about that plan, through gRPC metadata, the events and NATS headers, on
//! each bus and across four processes.

use contract::common::v1::{OrganisationKind, Role};
use contract::notification::v1 as note;

use crate::fixtures::*;

/// The 32 hex digits naming the trace of a `traceparent`.
fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1).filter(|id| id.len() == 32)
}

/// Records an outcome under the caller's trace and follows it to the GP.
async fn an_outcome_is_followed_to_the_notifications(backbone: &mut Backbone) {
    let planned = make_plan(backbone).await;
    // Answered in the caller's trace, by a span of the service's own.
    assert_eq!(trace_id(&planned.traceparent), Some(CALLER_TRACE_ID));
    assert_ne!(planned.traceparent, CALLER_TRACEPARENT);

    // The plan the registry started, and the GP's notification of it, in
    // the same trace, each a span of its own.
    let gp = member_of(
        "Y99001",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    );
    let told = receive(backbone, gp, &[note::NotificationKind::PlanStarted], 0, 1).await;
    assert_eq!(
        trace_id(&told[0].traceparent),
        Some(CALLER_TRACE_ID),
        "{told:?}"
    );
    assert_ne!(told[0].traceparent, planned.traceparent);

    // A request without a trace starts one of its own.
    let untraced = lookup(backbone, safeguarding_lead(), true, None).await;
    assert_eq!(untraced.plans.len(), 1);
}

/// The `traceparent` headers of every message in `producer`'s stream.
async fn headers_in_stream(
    deployment: &crate::processes::Deployment,
    producer: &str,
) -> Vec<(String, String)> {
    let client = deployment.nats_client("operator").await;
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream(bus::stream_name(producer))
        .await
        .expect("the producer's stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut found = Vec::new();
    for sequence in 1..=last {
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("a stored message");
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|value| value.as_str().to_owned())
                .unwrap_or_default()
        };
        found.push((header("Safeguard-Content-Type"), header("traceparent")));
    }
    found
}

/// Waits until `producer`'s stream holds a message of `content_type` in the
/// caller's trace.
async fn traced_on_nats(nats: &crate::processes::Deployment, producer: &str, content_type: &str) {
    for _ in 0..100 {
        let headers = headers_in_stream(nats, producer).await;
        if headers.iter().any(|(kind, traceparent)| {
            kind == content_type && trace_id(traceparent) == Some(CALLER_TRACE_ID)
        }) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no {content_type} in the caller's trace on {producer}'s stream: {:#?}",
        headers_in_stream(nats, producer).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_followed_across_services_on_the_in_process_bus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    an_outcome_is_followed_to_the_notifications(&mut backbone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_followed_across_four_processes_and_in_nats_headers() {
    let deployment = crate::processes::Deployment::start().await;
    let mut clients = connect(&deployment.agencies());
    an_outcome_is_followed_to_the_notifications(&mut clients).await;
    let nats = &deployment;
    traced_on_nats(
        nats,
        "conference-scheduler",
        "safeguard.conference.v1.ConferenceOutcomeRecorded",
    )
    .await;
    traced_on_nats(nats, "plan-registry", "safeguard.registry.v1.PlanStarted").await;
    traced_on_nats(
        nats,
        "notification",
        "safeguard.notification.v1.NotificationRaised",
    )
    .await;
}
