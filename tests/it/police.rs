//! The police intake, black-box: coming-to-notice reports posted over HTTPS
//! with a force's certificate and an officer's token, as a force's system
//! would; what the MASH, the chronology and a school then see.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use contract::common::v1::{OrganisationKind, Role};
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use serde_json::{Value, json};

use crate::fixtures::{self, Backbone, child, member_of, spawn};

/// Where the backbone's police intake listens.
fn intake(backbone: &Backbone) -> SocketAddr {
    backbone
        ._backbone
        .as_ref()
        .expect("our own backbone")
        .running
        .police
        .expect("the police intake")
}

fn officer() -> contract::common::v1::CallerIdentity {
    member_of("P99001", OrganisationKind::Police, Role::PoliceOfficer)
}

/// POSTs `body` to `path` with `who`'s organisation's certificate and, if
/// `token`, their token: the status and the JSON answer.
async fn post(
    backbone: &Backbone,
    who: &contract::common::v1::CallerIdentity,
    token: bool,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let ods = who
        .organisation
        .as_ref()
        .expect("organisation")
        .ods_code
        .clone();
    post_with(backbone, &ods, who, token, path, body).await
}

/// The same, presenting the certificate of `certificate_of`.
async fn post_with(
    backbone: &Backbone,
    certificate_of: &str,
    who: &contract::common::v1::CallerIdentity,
    token: bool,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let realm = backbone.agencies.realm();
    let ods = certificate_of;
    let issued = realm
        .organisation_certificate(&domain::OdsCode::parse(ods).expect("an ODS code"))
        .expect("a certificate");
    let bearer = format!(
        "Bearer {}",
        realm
            .token(&safeguard::agencies::person(who), Duration::from_secs(600))
            .expect("a token")
    );
    let mut headers = vec![("content-type", "application/json")];
    if token {
        headers.push(("authorization", bearer.as_str()));
    }
    let mut connection = trust::https::connect(
        &intake(backbone).to_string(),
        "localhost",
        realm.ca_pem(),
        Some((&issued.certificate, &issued.key)),
    )
    .await
    .expect("a connection");
    let answer = connection
        .send(http::Method::POST, path, &headers, body.to_owned().into())
        .await
        .expect("an answer");
    (
        answer.status.as_u16(),
        serde_json::from_slice(&answer.body).expect("JSON"),
    )
}

/// A moment as the report writes it.
fn moment(at: SystemTime) -> String {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    jiff::Timestamp::from_second(i64::try_from(seconds).expect("seconds"))
        .expect("a time")
        .to_string()
}

fn report(reference: &str, kind: &str) -> Value {
    let mut report = json!({
        "force_reference": reference,
        "kind": kind,
        "risk": "high",
        "child": { "nhs_number": "9990000018", "given_name": "Alex", "family_name": "Testchild",
                   "date_of_birth": "2019-04-02",
                   "school": { "ods_code": "S999001", "name": "Test Primary School" } },
        "circumstances": "officers attended a domestic incident; the child was at home",
        "officer": { "name": "PC Test Officer", "phone": "020 7946 0999" },
        "local_authority": { "ods_code": "E09000999", "name": "Test Borough" },
    });
    if kind == "formal-referral" {
        report["category"] = "emotional".into();
        report["consent"] =
            json!({ "status": "not-sought", "reason": "seeking it would place the child at risk" });
    }
    report
}

/// The MASH's queue once it reflects `token`.
async fn queue(backbone: &Backbone, token: &Value) -> referral::ListAwaitingDecisionResponse {
    let min_token = service_core::consistency::parse(token.as_str().expect("a token"))
        .expect("a consistency token");
    backbone
        .as_(&member_of(
            "E09000999",
            OrganisationKind::LocalAuthority,
            Role::MashOfficer,
        ))
        .referrals
        .list_awaiting_decision(referral::ListAwaitingDecisionRequest {
            local_authority_ods_code: "E09000999".into(),
            min_token: Some(min_token),
            purpose: "triage".into(),
            ..Default::default()
        })
        .await
        .expect("the MASH queue")
        .into_inner()
}

#[tokio::test]
async fn a_formal_referral_opens_a_referral_with_its_grading_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn(dir.path()).await;
    let body = report("MERLIN/2026/0001", "formal-referral").to_string();
    let (status, first) = post(&backbone, &officer(), true, "/reports", &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["recorded_as"], "referral");
    let queue = queue(&backbone, &first["token"]).await;
    assert_eq!(queue.referrals.len(), 1, "{queue:?}");
    let opened = &queue.referrals[0];
    assert_eq!(
        opened.referral_id,
        first["referral_id"].as_str().expect("id")
    );
    let assessment = &opened.police_risk_assessments[0];
    assert_eq!(assessment.reference, "MERLIN/2026/0001");
    assert_eq!(assessment.overall_rating(), referral::RiskRating::High);
    assert_eq!(
        assessment.kind(),
        referral::PoliceReportKind::FormalReferral
    );

    // The same report again: the same referral, nothing written.
    let heads = backbone.quiet_heads().await;
    let (status, again) = post(&backbone, &officer(), true, "/reports", &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["referral_id"], first["referral_id"]);
    assert_eq!(
        backbone.quiet_heads().await,
        heads,
        "a retry writes nothing"
    );
}

#[tokio::test]
async fn an_information_exchange_is_recorded_without_a_referral_and_the_school_is_told_in_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let mut exchange = report("MERLIN/2026/0002", "information-exchange");
    exchange["risk"] = "low".into();
    // An hour ago, at home, with the child present.
    exchange["domestic_abuse"] = json!({
        "occurred_at": moment(SystemTime::now() - Duration::from_secs(3600)),
        "location": "the family home",
        "child_present": true,
        "child_said": "I hid upstairs",
    });
    let (status, answer) = post(
        &backbone,
        &officer(),
        true,
        "/reports",
        &exchange.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recorded_as"], "information");
    let encompass = &answer["operation_encompass"];
    assert_eq!(encompass["told"]["ods_code"], "S999001");
    let due: jiff::Timestamp = encompass["due_by"]
        .as_str()
        .expect("due by")
        .parse()
        .expect("a time");
    assert!(
        due > jiff::Timestamp::now(),
        "due at the start of the next school day: {due}"
    );

    let queue = queue(&backbone, &answer["token"]).await;
    assert!(queue.referrals.is_empty(), "no referral is opened");
    assert_eq!(queue.information.len(), 1);

    // The school's designated safeguarding lead is told, in time.
    let told = fixtures::receive(
        &mut backbone,
        member_of(
            "S999001",
            OrganisationKind::School,
            Role::DesignatedSafeguardingLead,
        ),
        &[note::NotificationKind::DomesticAbuseIncident],
        0,
        1,
    )
    .await;
    let details = &told[0].details;
    assert_eq!(details["police_reference"], "MERLIN/2026/0002");
    assert_eq!(details["child_name"], "Alex Testchild");
    assert_eq!(details["date_of_birth"], "2019-04-02");
    assert_eq!(details["child_present"], "true");
    assert_eq!(details["child_said"], "I hid upstairs");
    assert_eq!(details["on_time"], "true");
    assert_eq!(
        details["due_by"],
        encompass["due_by"].as_str().expect("due")
    );

    // In the child's chronology, the exchange and the incident.
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = fixtures::chronology_of(&mut backbone, child(), None).await;
        if entries.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with("information shared by")),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with("domestic abuse incident reported by")
                && e.contains("Test Primary School to know by")),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_late_report_says_so_and_a_child_educated_at_home_is_the_councils_to_know() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let mut late = report("MERLIN/2026/0003", "information-exchange");
    late["child"]
        .as_object_mut()
        .expect("child")
        .remove("school");
    late["child"]["educated_at_home"] = true.into();
    late["domestic_abuse"] = json!({
        "occurred_at": moment(SystemTime::now() - Duration::from_secs(8 * 24 * 3600)),
        "location": "a car park",
        "child_present": false,
    });
    let (status, answer) = post(&backbone, &officer(), true, "/reports", &late.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["operation_encompass"]["told"]["ods_code"],
        "E09000999"
    );
    let told = fixtures::receive(
        &mut backbone,
        member_of(
            "E09000999",
            OrganisationKind::LocalAuthority,
            Role::MashOfficer,
        ),
        &[note::NotificationKind::DomesticAbuseIncident],
        0,
        1,
    )
    .await;
    assert_eq!(told[0].details["educated_at_home"], "true");
    assert_eq!(told[0].details["on_time"], "false", "eight days late");
    assert!(told[0].summary.contains("late"), "{}", told[0].summary);
}

#[tokio::test]
async fn bad_reports_and_wrong_callers_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn(dir.path()).await;
    let heads = backbone.quiet_heads().await;

    // Field by field.
    let mut bad = report("MERLIN/2026/0004", "formal-referral");
    bad["child"]["nhs_number"] = "9990000019".into();
    bad["risk"] = "medium".into();
    bad["officer"] = json!({ "name": "PC Test Officer" });
    bad.as_object_mut().expect("report").remove("category");
    let (status, refused) = post(&backbone, &officer(), true, "/reports", &bad.to_string()).await;
    assert_eq!(status, 400, "{refused}");
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["field"].as_str().expect("a field"))
        .collect();
    assert_eq!(
        fields,
        ["risk", "child.nhs_number", "officer.phone", "category"]
    );
    let (status, refused) = post(&backbone, &officer(), true, "/reports", "{not json").await;
    assert_eq!(status, 400, "{refused}");

    let good = report("MERLIN/2026/0005", "formal-referral").to_string();
    // No token: 401.
    let (status, refused) = post(&backbone, &officer(), false, "/reports", &good).await;
    assert_eq!(status, 401, "{refused}");
    // A school's certificate and its safeguarding lead's token: not police.
    let lead = member_of(
        "S999001",
        OrganisationKind::School,
        Role::DesignatedSafeguardingLead,
    );
    let (status, refused) = post(&backbone, &lead, true, "/reports", &good).await;
    assert_eq!(status, 403, "{refused}");
    // Another force's officer's token over this force's connection.
    let elsewhere = member_of("P99002", OrganisationKind::Police, Role::PoliceOfficer);
    let (status, refused) =
        post_with(&backbone, "P99001", &elsewhere, true, "/reports", &good).await;
    assert_eq!(status, 401, "{refused}");
    // Somewhere else than /reports.
    let (status, _) = post(&backbone, &officer(), true, "/referrals", &good).await;
    assert_eq!(status, 404);

    assert_eq!(
        backbone.quiet_heads().await,
        heads,
        "nothing refused was written"
    );
}
