//! Who may call at all, over real TLS against the backbone: every way of
//! failing to prove who one is is answered `UNAUTHENTICATED` (or, for a
//! certificate no trusted CA signed and for plaintext, not answered at
//! all), writes nothing, and the identity events record is the one the
//! certificate and token prove.

use std::time::{SystemTime, UNIX_EPOCH};

use contract::common::v1::{CareSetting, OrganisationKind, Role};
use contract::events::v1::GetStatusRequest;
use contract::events::v1::ReadEventsRequest;
use contract::events::v1::event_log_reader_client::EventLogReaderClient;
use contract::events::v1::service_status_client::ServiceStatusClient;
use contract::registry::v1 as registry_wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use tonic::Code;
use trust::client::{Authorised, Credentials};
use trust::token::Claims;
use trust::{Realm, realm};

use crate::fixtures::{self, child, member_of, nurse};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The nurse's claims as the development realm's issuer makes them.
fn nurse_claims() -> Claims {
    let now = now();
    Claims {
        iss: realm::ISSUER.into(),
        aud: realm::AUDIENCE.into(),
        sub: "nurse-0001".into(),
        exp: now + 600,
        nbf: now,
        iat: now,
        name: "Test Nurse".into(),
        org: "RXX01".into(),
        org_name: String::new(),
        role: "UNSCHEDULED_CARE_CLINICIAN".into(),
    }
}

fn registry(url: &str, credentials: &Credentials) -> PlanRegistryClient<Authorised> {
    PlanRegistryClient::new(credentials.connect(url).expect("channel"))
}

fn a_lookup() -> registry_wire::LookupChildRequest {
    registry_wire::LookupChildRequest {
        nhs_number: child(),
        purpose: "unscheduled care attendance".into(),
        care_setting: CareSetting::EmergencyDepartment.into(),
        ..registry_wire::LookupChildRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_trusted_certificate_and_a_valid_token_of_the_same_organisation_are_answered() {
    let dir = tempfile::tempdir().expect("dir");
    let backbone = fixtures::spawn(&dir.path().join("backbone")).await;
    let running = backbone._backbone.as_ref().expect("backbone");
    let url = running.url.clone();
    let realm = Realm::open(running.running.realm.as_ref().expect("realm")).expect("realm");
    let (elsewhere, _) = Realm::open_or_create(&dir.path().join("elsewhere")).expect("realm");
    let heads = backbone.quiet_heads().await;

    let hospital = realm
        .organisation_certificate(&domain::OdsCode::parse("RXX01").expect("ods"))
        .expect("certificate");
    let with = |claims: &Claims| {
        Credentials::new(realm.ca_pem(), &hospital)
            .with_token(realm.signer().sign(claims).expect("signed"))
    };
    let base = nurse_claims();
    let refusals: Vec<(&str, Credentials, &str)> = vec![
        (
            "no client certificate",
            Credentials::anonymous(realm.ca_pem())
                .with_token(realm.signer().sign(&base).expect("signed")),
            "a client certificate is required",
        ),
        (
            "no access token",
            Credentials::new(realm.ca_pem(), &hospital),
            "a bearer access token",
        ),
        (
            "an expired token",
            with(&Claims {
                exp: base.nbf - 300,
                nbf: base.nbf - 900,
                ..base.clone()
            }),
            "ExpiredSignature",
        ),
        (
            "a token not valid yet",
            with(&Claims {
                nbf: base.nbf + 900,
                exp: base.exp + 900,
                ..base.clone()
            }),
            "ImmatureSignature",
        ),
        (
            "a token signed with another key",
            Credentials::new(realm.ca_pem(), &hospital)
                .with_token(elsewhere.signer().sign(&base).expect("signed")),
            "InvalidSignature",
        ),
        (
            "a token from an issuer not trusted",
            with(&Claims {
                iss: "https://idp.elsewhere.example".into(),
                ..base.clone()
            }),
            "issuer https://idp.elsewhere.example is not trusted",
        ),
        (
            "a token for another audience",
            with(&Claims {
                aud: "another-service".into(),
                ..base.clone()
            }),
            "InvalidAudience",
        ),
        (
            "a role the issuer's mapping does not have",
            with(&Claims {
                role: "R9999".into(),
                ..base.clone()
            }),
            "role R9999 is not mapped",
        ),
        (
            "the hospital's certificate with a GP practice's token",
            with(&Claims {
                org: "Y99001".into(),
                role: "GENERAL_PRACTITIONER".into(),
                ..base.clone()
            }),
            "the client certificate is RXX01's but the access token is for Y99001",
        ),
        (
            "a certificate naming no organisation",
            Credentials::new(
                realm.ca_pem(),
                &realm
                    .certificate_naming("no one", &["https://example.invalid/"])
                    .expect("certificate"),
            )
            .with_token(realm.signer().sign(&base).expect("signed")),
            "names no organisation",
        ),
        (
            "a malformed authorization header",
            Credentials::new(realm.ca_pem(), &hospital).with_token("not a token".into()),
            "cannot be read",
        ),
    ];
    let mut cells = 0;
    for (case, credentials, says) in &refusals {
        let refused = registry(&url, credentials)
            .lookup_child(a_lookup())
            .await
            .expect_err(case);
        assert_eq!(refused.code(), Code::Unauthenticated, "{case}: {refused:?}");
        assert!(
            refused.message().contains(says),
            "{case}: {:?} should say {says:?}",
            refused.message()
        );
        cells += 1;
    }

    // Never answered at all: a certificate no trusted CA signed (the TLS
    // handshake fails), and plaintext.
    let stranger = elsewhere
        .organisation_certificate(&domain::OdsCode::parse("RXX01").expect("ods"))
        .expect("certificate");
    let untrusted = registry(
        &url,
        &Credentials::new(realm.ca_pem(), &stranger)
            .with_token(realm.signer().sign(&base).expect("signed")),
    )
    .lookup_child(a_lookup())
    .await
    .expect_err("an untrusted certificate");
    assert_ne!(untrusted.code(), Code::Ok);
    let plaintext = tonic::transport::Channel::from_shared(url.replace("https://", "http://"))
        .expect("url")
        .connect()
        .await;
    let plain_answer = match plaintext {
        Ok(channel) => PlanRegistryClient::new(channel)
            .lookup_child(a_lookup())
            .await
            .map(|_| ()),
        Err(error) => Err(tonic::Status::unavailable(error.to_string())),
    };
    assert!(plain_answer.is_err(), "plaintext was answered");
    cells += 2;
    println!("unauthenticated cases refused: {cells}");

    // No lookup was audited; each refusal that reached the backbone is a
    // security event in the log of the service called (the registry's),
    // naming what is known of the caller.
    let after = backbone.quiet_heads().await;
    let answered = refusals.len() as u64;
    assert_eq!(
        (after[0], after[1], after[2], after[3]),
        (heads[0], heads[1], heads[2] + answered, heads[3]),
        "only the security events were written"
    );
    let service = realm
        .service_credentials("credentials-test")
        .expect("service");
    let mut records = EventLogReaderClient::new(service.connect(&url).expect("channel"))
        .read_events(ReadEventsRequest {
            log: "plan-registry".into(),
            from_position: heads[2],
            limit: answered as u32,
        })
        .await
        .expect("read the registry's log")
        .into_inner();
    let mut recorded = Vec::new();
    while let Some(record) = records.message().await.expect("stream") {
        let event =
            eventlog::RecordedEvent::from_record(record.position, &record.record).expect("record");
        let envelope = event.envelope().expect("envelope");
        assert_eq!(envelope.content_type, "safeguard.events.v1.AccessRefused");
        recorded.push(
            <contract::events::v1::AccessRefused as prost::Message>::decode(
                envelope.payload.as_slice(),
            )
            .expect("a refusal"),
        );
    }
    assert_eq!(recorded.len(), refusals.len(), "{recorded:?}");
    assert!(recorded.iter().all(|refusal| {
        refusal.rpc == "safeguard.registry.v1.PlanRegistry/LookupChild"
            && refusal.remote.starts_with("127.0.0.1:")
    }));
    assert!(
        recorded
            .iter()
            .any(|refusal| refusal.peer == "urn:ods:RXX01"
                && refusal.rule.contains("ExpiredSignature")),
        "{recorded:?}"
    );
    assert!(
        recorded
            .iter()
            .any(|refusal| refusal.peer.is_empty() && refusal.rule.contains("client certificate")),
        "{recorded:?}"
    );

    // Health is open to a probe that presents nothing.
    let probe = trust::client::endpoint(&url, Credentials::anonymous(realm.ca_pem()).tls())
        .expect("endpoint")
        .connect()
        .await
        .expect("TLS without a certificate");
    let health = tonic_health::pb::health_client::HealthClient::new(probe)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health is open")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_recorded_is_the_tokens_and_whole_logs_are_for_services_only() {
    let dir = tempfile::tempdir().expect("dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    fixtures::set_contacts(&mut backbone, "0300 000 0001", "0300 000 0002").await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let url = backbone._backbone.as_ref().expect("backbone").url.clone();
    let agencies = backbone.agencies.clone();
    let realm = agencies.realm();

    // The access a lookup records names the person the token proves, in the
    // care setting the request gives, and their organisation.
    let looked = fixtures::lookup(&mut backbone, nurse(), false, planned.token).await;
    let access = looked.recent_accesses.first().expect("this lookup");
    let organisation = access.organisation.clone().expect("organisation");
    assert_eq!(organisation.ods_code, "RXX01");
    assert_eq!(
        organisation.kind(),
        OrganisationKind::NhsTrust,
        "the kind the role implies"
    );
    assert_eq!(access.user_display_name, "Test Nurse");
    assert_eq!(access.role(), Role::UnscheduledCareClinician);
    assert_eq!(access.care_setting(), CareSetting::EmergencyDepartment);

    // Whole events, about any child, are for the backbone's services alone.
    let read = ReadEventsRequest {
        log: "plan-registry".into(),
        from_position: 0,
        limit: 10,
    };
    let as_agency = EventLogReaderClient::new(
        backbone
            .agencies
            .authorised(&fixtures::chair(), &url)
            .expect("credentials"),
    )
    .read_events(read.clone())
    .await
    .expect_err("an agency reads whole logs");
    assert_eq!(as_agency.code(), Code::PermissionDenied, "{as_agency:?}");
    let service = realm.service_credentials("plan-registry").expect("service");
    let mut records = EventLogReaderClient::new(service.connect(&url).expect("channel"))
        .read_events(read)
        .await
        .expect("a service reads a log")
        .into_inner();
    assert!(records.message().await.expect("stream").is_some());

    // What stopped and what was set aside: for operators.
    let social_worker = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let refused = ServiceStatusClient::new(
        backbone
            .agencies
            .authorised(&social_worker, &url)
            .expect("credentials"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect_err("status for a social worker");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let operator = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::Operator,
    );
    ServiceStatusClient::new(
        backbone
            .agencies
            .authorised(&operator, &url)
            .expect("credentials"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect("status for an operator");

    // A service passing on a person's call (a registry replica forwarding a
    // plan write) sends the person's own token: the primary verifies it and
    // its policy decides on the person, not on the service's certificate.
    let plan_id = planned.conference.plan_id.clone();
    let end = |who: contract::common::v1::CallerIdentity| {
        let token = realm
            .token(
                &safeguard::agencies::person(&who),
                std::time::Duration::from_secs(300),
            )
            .expect("token");
        let forwarded = service.clone().with_token(token);
        let plan_id = plan_id.clone();
        let url = url.clone();
        async move {
            PlanRegistryClient::new(forwarded.connect(&url).expect("channel"))
                .end_plan(registry_wire::EndPlanRequest {
                    plan_id,
                    end_date: fixtures::date(2026, 3, 1),
                    reason: contract::common::v1::PlanEndReason::LeftTheCountry.into(),
                })
                .await
        }
    };
    let refused = end(nurse()).await.expect_err("a nurse ends a plan");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    end(fixtures::chair())
        .await
        .expect("the chair ends the plan, passed on by a service");
}

#[tokio::test]
async fn a_development_realm_is_refused_beyond_loopback_unless_a_loud_flag_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let config = safeguard::backbone::Config {
        data_dir: dir.path().to_owned(),
        listen: ([0, 0, 0, 0], 0).into(),
        ..safeguard::backbone::Config::default()
    };
    let refused = safeguard::backbone::start(&config)
        .await
        .expect_err("a development realm on the network");
    let said = refused.to_string();
    assert!(
        said.contains("--insecure-development-realm-on-network"),
        "{said}"
    );
    let running = safeguard::backbone::start(&safeguard::backbone::Config {
        development_realm_on_network: true,
        ..config
    })
    .await
    .expect("allowed by the flag");
    running.stop().await.expect("stop");
}
