//! No record can stop the backbone: each kind of event that once could not
//! be applied is written through the public API, the backbone restarts and
//! serves, the other children's lookups are unchanged, the records are
//! listed by `GetStatus`, and the lookup of a child whose history could not
//! be applied fails closed, naming whom to call, and is audited as usual.

use std::time::Duration;

use contract::common::v1::{OrganisationKind, PlanEndReason, Role};
use contract::conference::v1::*;
use contract::events::v1::GetStatusRequest;
use contract::events::v1::service_status_client::ServiceStatusClient;
use contract::notification::v1 as note;
use contract::registry::v1 as registry_wire;
use tonic::Code;

use crate::fixtures::{self, Backbone, council, date, nhs, nurse};

/// A child on a plan recorded directly, whose review then ends a plan the
/// registry does not know (a mistyped plan id).
const MISTYPED: &str = "9990000026";

fn review(decision: review_outcome::Decision) -> outcome::Kind {
    outcome::Kind::Review(ReviewOutcome {
        decision: Some(decision),
    })
}

/// A child on a plan recorded directly, whose review conference was
/// created by hand with a mistyped plan id and ends "that" plan: the
/// registry cannot know which plan ended, so the child's record cannot be
/// shown as it is.
async fn plan_ended_under_a_mistyped_id(backbone: &mut Backbone) {
    fixtures::transfer_in(backbone, MISTYPED, date(2026, 2, 2)).await;
    let review_conference = backbone
        .conferences
        .create_conference(CreateConferenceRequest {
            child_local_id: None,
            kind: ConferenceKind::Review.into(),
            child_nhs_number: nhs(MISTYPED),
            child_name: "Sam Testchild".into(),
            local_authority: Some(council()),
            clock_starts: date(2026, 2, 2),
            referral_id: String::new(),
            plan_id: "plan-typed-by-hand".into(),
            idempotency_key: "mistyped-review".into(),
            expected_date_of_delivery: None,
        })
        .await
        .expect("create review")
        .into_inner()
        .conference
        .expect("conference");
    fixtures::hold(
        backbone,
        &review_conference,
        date(2026, 5, 5),
        review(review_outcome::Decision::EndPlan(PlanEnding {
            reason: PlanEndReason::SteppedDownToChildInNeed.into(),
            detail: String::new(),
        })),
    )
    .await;
}

/// What the registry quarantined, once it has at least `count`.
async fn quarantined(
    backbone: &Backbone,
    count: usize,
) -> Vec<contract::events::v1::RecordQuarantined> {
    let url = &backbone._backbone.as_ref().expect("backbone").url;
    let operator = fixtures::member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::Operator,
    );
    let mut status = ServiceStatusClient::new(
        backbone
            .agencies
            .authorised(&operator, url)
            .expect("credentials"),
    );
    for _ in 0..250 {
        let services = status
            .get_status(GetStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .services;
        assert_eq!(services.len(), 4, "{services:?}");
        for service in &services {
            assert!(service.serving, "{service:?}");
        }
        let registry = services
            .into_iter()
            .find(|service| service.service == "plan-registry")
            .expect("the registry's status");
        if registry.quarantined.len() >= count {
            return registry.quarantined;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the registry did not quarantine {count} records");
}

/// What `GET /metrics` answers, as a monitoring system scrapes it.
async fn scrape(address: std::net::SocketAddr) -> String {
    get(address, "/metrics").await
}

/// What `GET path` answers on the metrics port.
async fn get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: safeguard\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("response");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

async fn lookup(
    backbone: &mut Backbone,
    child: &str,
) -> Result<registry_wire::LookupChildResponse, tonic::Status> {
    backbone
        .as_(&nurse())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: nhs(child),
            purpose: "unscheduled care attendance".into(),
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The lookup of the child whose history could not be applied fails
/// closed: not "no plan", but that the record cannot be shown and whom to
/// call.
fn assert_fails_closed(answer: Result<registry_wire::LookupChildResponse, tonic::Status>) {
    let refused = answer.expect_err("never an answer from half a history");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let message = refused.message();
    for expected in [
        "nhs_number",
        "cannot be shown",
        "plan-registry@",
        "Test organisation E09000999",
        "0300 000 0001",
    ] {
        assert!(
            message.contains(expected),
            "{expected} missing in {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_cannot_be_applied_is_quarantined_and_its_child_fails_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    fixtures::set_contacts(&mut backbone, "0300 000 0001", "0300 000 0002").await;
    // The child everyone else is: a plan made as every day.
    let planned = fixtures::make_plan(&mut backbone).await;
    let before = fixtures::lookup(
        &mut backbone,
        fixtures::safeguarding_lead(),
        true,
        planned.token,
    )
    .await;
    assert_eq!(before.plans.len(), 1);

    // (A newborn without an NHS number, once the first such record, is
    // now held under the council's local identifier: practice.rs.)
    plan_ended_under_a_mistyped_id(&mut backbone).await;
    let records = quarantined(&backbone, 1).await;
    let reasons: Vec<(&str, &str)> = records
        .iter()
        .map(|record| (record.content_type.as_str(), record.reason.as_str()))
        .collect();
    assert!(
        reasons.iter().any(|(kind, why)| {
            *kind == "safeguard.registry.v1.PlanEnded" && why.contains("plan-typed-by-hand")
        }),
        "the end of a plan typed by hand is not quarantined: {reasons:#?}"
    );
    assert!(
        records
            .iter()
            .all(|record| record.producer == "plan-registry" && !record.event_id.is_empty())
    );
    assert_fails_closed(lookup(&mut backbone, MISTYPED).await);
    let metrics = backbone._backbone.as_ref().and_then(|b| b.running.metrics);
    let scraped = scrape(metrics.expect("metrics served")).await;
    // Records set aside do not stop a service: the probe says serving.
    let probed = get(metrics.expect("metrics served"), "/healthz").await;
    assert!(probed.ends_with("serving\n"), "{probed}");
    assert!(
        scraped.contains(&format!(
            "safeguard_quarantined_records{{service=\"plan-registry\"}} {}\n",
            records.len()
        )),
        "{scraped}"
    );
    for service in [
        "referral-intake",
        "conference-scheduler",
        "plan-registry",
        "notification",
    ] {
        assert!(
            scraped.contains(&format!(
                "safeguard_service_serving{{service=\"{service}\"}} 1\n"
            )),
            "{scraped}"
        );
    }

    // Restarted on the same data, the backbone starts and serves.
    let crate::Backbone { running, .. } = backbone._backbone.take().expect("backbone");
    drop(backbone);
    running.stop().await.expect("stop");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let after = quarantined(&backbone, 1).await;
    assert_eq!(
        after.len(),
        records.len(),
        "each record is quarantined once: {after:#?}"
    );
    let unchanged =
        fixtures::lookup(&mut backbone, fixtures::safeguarding_lead(), true, None).await;
    assert_eq!(unchanged.plans, before.plans);
    assert_fails_closed(lookup(&mut backbone, MISTYPED).await);

    // Each refused lookup was audited like any other: the council is told
    // of both (the nurse's lookups are not silent).
    let told = fixtures::receive(
        &mut backbone,
        fixtures::member_of(
            "E09000999",
            OrganisationKind::LocalAuthority,
            Role::SocialWorker,
        ),
        &[note::NotificationKind::Access],
        0,
        2,
    )
    .await;
    for message in told {
        assert_eq!(message.child_nhs_number, nhs(MISTYPED));
    }
}
