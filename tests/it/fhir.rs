//! The FHIR edge as an emergency department's system meets it: HTTPS with
//! its organisation's certificate and a person's token, the national search
//! and headers, every body checked by an independent FHIR library
//! (`fhir.resources`, installed by `tests/run.sh`), and each search exactly
//! one lookup of the registry, audited and notified as any other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use contract::common::v1::{CallerIdentity, OrganisationKind, Role};
use contract::notification::v1 as note;
use serde_json::Value;

use crate::fixtures::{self, Backbone, nurse};

const NHS_SEARCH: &str = "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|";

/// The edge the backbone serves beside its services (as `safeguard up`
/// does), and the realm its callers' credentials come from.
fn edge_of(backbone: &Backbone) -> (SocketAddr, Arc<trust::Realm>) {
    let running = &backbone._backbone.as_ref().expect("backbone").running;
    let dir = running.realm.clone().expect("a development realm");
    let realm = trust::Realm::open(&dir).expect("the realm");
    (running.fhir.expect("the FHIR edge"), Arc::new(realm))
}

/// What an HTTPS GET came to: status, the consistency token header, and
/// the body as JSON.
struct Answer {
    status: u16,
    token: Option<String>,
    body: Value,
}

/// A GET as the system of `certificate_of` (none: no certificate), with
/// `token` as the bearer token (none: no Authorization header) and
/// `headers`; the body checked by the independent validator.
async fn get(
    address: SocketAddr,
    realm: &trust::Realm,
    certificate_of: Option<&str>,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let issued = certificate_of.map(|ods| {
        realm
            .organisation_certificate(&domain::OdsCode::parse(ods).expect("an ODS code"))
            .expect("a certificate")
    });
    let identity = issued
        .as_ref()
        .map(|issued| (issued.certificate.as_str(), issued.key.as_str()));
    let mut connection =
        trust::https::connect(&address.to_string(), "localhost", realm.ca_pem(), identity)
            .await
            .expect("a connection");
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(bearer) = &bearer {
        all.push(("authorization", bearer));
    }
    let answer = connection.get(path, &all).await.expect("an answer");
    assert_eq!(
        answer
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().ok()),
        Some(Some("application/fhir+json"))
    );
    let text = String::from_utf8(answer.body.to_vec()).expect("UTF-8");
    validate(&text);
    Answer {
        status: answer.status.as_u16(),
        token: answer
            .headers
            .get(fhir_token())
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_str(&text).expect("JSON"),
    }
}

fn fhir_token() -> &'static str {
    fhir::CONSISTENCY_TOKEN
}

/// Checks a body with `fhir.resources`' R4B models (R4B changed none of
/// these resources from R4).
fn validate(body: &str) {
    fixtures::validate_fhir("R4B", body);
}

/// A refusal case: what, whose certificate, which token, the path, the
/// headers, and the status and national code expected.
type Refused<'a> = (
    &'a str,
    Option<&'a str>,
    Option<String>,
    String,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

fn token_of(realm: &trust::Realm, who: &CallerIdentity) -> String {
    realm
        .token(&safeguard::agencies::person(who), Duration::from_secs(300))
        .expect("a token")
}

fn issue_code(answer: &Answer) -> &str {
    answer.body["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_department_searches_over_fhir_as_it_would_the_national_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    fixtures::set_contacts(&mut backbone, "0300 000 0001", "0300 000 0002").await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let (edge, realm) = edge_of(&backbone);
    let nurse_token = token_of(&realm, &nurse());
    let child = fixtures::child().expect("the child").value;
    let after = planned
        .token
        .as_ref()
        .map(service_core::consistency::show)
        .expect("the plan's token");

    // The capability statement, to anyone with a trusted certificate.
    let metadata = get(edge, &realm, Some("RXX01"), None, "/metadata", &[]).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");

    // The child on a plan: one CareTeam, with the council and its numbers,
    // once the registry shows the chair's outcome.
    let found = get(
        edge,
        &realm,
        Some("RXX01"),
        Some(&nurse_token),
        &format!("{NHS_SEARCH}{child}"),
        &[
            ("TraceID", "7d4a2b8e-1c3f-4e5a-9b6c-0d1e2f3a4b5c"),
            (fhir_token(), &after),
        ],
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["type"], "searchset");
    assert_eq!(found.body["total"], 1);
    let team = &found.body["entry"][0]["resource"];
    assert_eq!(team["resourceType"], "CareTeam");
    assert_eq!(team["category"][0]["coding"][0]["code"], "342191000000101");
    assert_eq!(team["subject"]["identifier"]["value"], child.as_str());
    assert_eq!(team["period"]["start"], "2026-01-20");
    assert_eq!(
        team["managingOrganization"][0]["identifier"]["system"],
        "https://fhir.nhs.uk/Id/ods-organization-code"
    );
    assert_eq!(
        team["managingOrganization"][0]["identifier"]["value"],
        "E09000999"
    );
    assert_eq!(team["telecom"][0]["use"], "work");
    assert_eq!(team["telecom"][0]["value"], "0300 000 0001");
    assert_eq!(team["telecom"][1]["use"], "mobile");
    assert!(found.token.is_some(), "the lookup's token is returned");

    // The same search twice at once over one HTTP/2 connection, as a busy
    // system multiplexing its searches would send it.
    let issued = realm
        .organisation_certificate(&domain::OdsCode::parse("RXX01").expect("an ODS code"))
        .expect("a certificate");
    let h2 = trust::https::connect_with(
        trust::https::Version::Http2,
        &edge.to_string(),
        "localhost",
        realm.ca_pem(),
        Some((&issued.certificate, &issued.key)),
    )
    .await
    .expect("an HTTP/2 connection");
    let bearer = format!("Bearer {nurse_token}");
    let search = format!("{NHS_SEARCH}{child}");
    let headers = [("authorization", bearer.as_str())];
    let (mut one, mut two) = (h2.clone(), h2);
    let (first, second) = tokio::join!(one.get(&search, &headers), two.get(&search, &headers));
    for answer in [first.expect("an answer"), second.expect("an answer")] {
        assert_eq!(answer.status, 200);
        let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(body["total"], 1, "{body}");
    }

    // A looked-after child, and an unborn plan found on the mother's
    // number, each under its own SNOMED CT concept.
    let looked_after = backbone
        .registry
        .record_looked_after(contract::registry::v1::RecordLookedAfterRequest {
            child_nhs_number: fixtures::nhs("9990000034"),
            start_date: fixtures::date(2026, 2, 2),
            local_authority: Some(fixtures::council()),
            ..Default::default()
        })
        .await
        .expect("looked after")
        .into_inner();
    backbone
        .registry
        .record_unborn_plan(contract::registry::v1::RecordUnbornPlanRequest {
            gp_practice: None,
            mother_nhs_number: fixtures::nhs("9990000026"),
            expected_date_of_delivery: fixtures::date(2027, 2, 1),
            category: contract::common::v1::AbuseCategory::Neglect.into(),
            start_date: fixtures::date(2026, 11, 2),
            local_authority: Some(fixtures::council()),
            lead_social_worker: None,
        })
        .await
        .expect("unborn");
    let written = looked_after
        .token
        .as_ref()
        .map(service_core::consistency::show)
        .expect("a token");
    for (number, concept) in [
        ("9990000034", "764841000000100"),
        ("9990000026", "818901000000100"),
    ] {
        let found = get(
            edge,
            &realm,
            Some("RXX01"),
            Some(&nurse_token),
            &format!("{NHS_SEARCH}{number}"),
            &[(fhir_token(), &written)],
        )
        .await;
        assert_eq!(found.body["total"], 1, "{number}: {}", found.body);
        let team = &found.body["entry"][0]["resource"];
        assert_eq!(
            team["category"][0]["coding"][0]["code"], concept,
            "{number}"
        );
    }

    // No record: 200 with total 0, never 404.
    let none = get(
        edge,
        &realm,
        Some("RXX01"),
        Some(&nurse_token),
        &format!("{NHS_SEARCH}9990000107"),
        &[],
    )
    .await;
    assert_eq!((none.status, none.body["total"].as_u64()), (200, Some(0)));

    // The accesses, each with the viewer's role and organisation.
    let audit = get(
        edge,
        &realm,
        Some("RXX01"),
        Some(&nurse_token),
        &format!("/AuditEvent?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{child}"),
        &[],
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let events = audit.body["entry"].as_array().expect("entries");
    assert!(events.len() >= 2, "{}", audit.body);
    assert_eq!(
        events[0]["resource"]["agent"][0]["who"]["identifier"]["value"],
        "RXX01"
    );
    assert_eq!(
        events[0]["resource"]["agent"][0]["role"][0]["text"],
        "unscheduled care clinician"
    );

    // Refusals, as the national API gives them.
    let cases: Vec<Refused<'_>> = vec![
        (
            "a bad NHS number",
            Some("RXX01"),
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}9990000019"),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
        ),
        (
            "no patient searched for",
            Some("RXX01"),
            Some(nurse_token.clone()),
            "/CareTeam".into(),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
        ),
        (
            "an unreadable header",
            Some("RXX01"),
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}{child}"),
            vec![("IsUnscheduledAccessEvent", "maybe")],
            400,
            "PRECONDITION_FAILED",
        ),
        (
            "a TraceID that is not a GUID",
            Some("RXX01"),
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}{child}"),
            vec![("TraceID", "abc")],
            400,
            "PRECONDITION_FAILED",
        ),
        (
            "no token",
            Some("RXX01"),
            None,
            format!("{NHS_SEARCH}{child}"),
            vec![],
            401,
            "UNAUTHORISED",
        ),
        (
            "no certificate",
            None,
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}{child}"),
            vec![],
            401,
            "UNAUTHORISED",
        ),
        (
            "a token of another organisation",
            Some("Y99001"),
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}{child}"),
            vec![],
            401,
            "UNAUTHORISED",
        ),
        (
            "a silent read by a role that may not",
            Some("RXX01"),
            Some(nurse_token.clone()),
            format!("{NHS_SEARCH}{child}"),
            vec![("IsUnscheduledAccessEvent", "false")],
            403,
            "ACCESS_DENIED",
        ),
    ];
    for (what, certificate, token, path, headers, status, code) in cases {
        let refused = get(edge, &realm, certificate, token.as_deref(), &path, &headers).await;
        assert_eq!(refused.status, status, "{what}: {}", refused.body);
        assert_eq!(refused.body["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(issue_code(&refused), code, "{what}: {}", refused.body);
    }

    // Each search was one lookup: the council is told of the nurse's
    // (not silent) lookups as of any other, the refused ones aside.
    let council = fixtures::member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let told = fixtures::receive(
        &mut backbone,
        council,
        &[note::NotificationKind::Access],
        0,
        2,
    )
    .await;
    assert!(
        told.iter().all(
            |message| message.summary.contains("Test organisation RXX01")
                || message.summary.contains("RXX01")
        ),
        "{told:#?}"
    );
}

/// The edge's connection to the registry outlives the registry: a search
/// while it is away (killed) is refused 503 with the national code, never
/// answered "no plan", and the first search once it is back is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_while_the_registry_is_away_is_unavailable_and_answered_once_it_is_back() {
    let mut deployment = crate::processes::Deployment::start().await;
    let realm = deployment.realm();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(fhir::serve(
        listener,
        fhir::Options {
            trust: trust::Trust::load(&realm.config()).expect("trust"),
            registry_url: deployment.url("plan-registry"),
            registry_pipe: None,
            base_url: format!("https://{address}"),
        },
        std::future::pending(),
    ));
    let token = token_of(&realm, &nurse());
    let search = format!("{NHS_SEARCH}{}", domain::NhsNumber::test_number(41));
    let search = || get(address, &realm, Some("RXX01"), Some(&token), &search, &[]);

    let before = search().await;
    assert_eq!((before.status, &before.body["total"]), (200, &0.into()));

    deployment.kill("plan-registry");
    let away = search().await;
    assert_eq!(
        (away.status, issue_code(&away)),
        (503, "SERVICE_UNAVAILABLE"),
        "{}",
        away.body
    );

    deployment.restart("plan-registry").await;
    let back = search().await;
    assert_eq!(
        (back.status, &back.body["total"]),
        (200, &0.into()),
        "{}",
        back.body
    );
}
