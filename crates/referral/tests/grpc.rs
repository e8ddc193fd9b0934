//! The referral intake over real gRPC: the service on port 0 with its log in
//! a temp directory, spoken to only through its client.

use std::path::Path;
use std::time::Duration;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, ContactDetails, Date, NhsNumber, Organisation,
    OrganisationKind, Role,
};
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;
use contract::referral::v1::*;
use tokio::sync::oneshot;
use tonic::Code;
use trust::client::Authorised;

struct App {
    /// The school's designated safeguarding lead.
    client: ReferralIntakeClient<Authorised>,
    /// The council's MASH officer.
    mash: ReferralIntakeClient<Authorised>,
    /// A police officer.
    police: ReferralIntakeClient<Authorised>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    log: eventlog::EventLog,
}

/// A client acting as `who`, through their organisation's system, in the
/// development realm at `realm`.
fn client_as(realm: &Path, who: &CallerIdentity, url: &str) -> ReferralIntakeClient<Authorised> {
    let organisation = who.organisation.clone().expect("organisation");
    let person = trust::token::Person {
        organisation: organisation.ods_code,
        organisation_name: organisation.name,
        user_id: who.user_id.clone(),
        display_name: who.display_name.clone(),
        role: who
            .role()
            .as_str_name()
            .trim_start_matches("ROLE_")
            .to_owned(),
    };
    let realm = trust::Realm::open(realm).expect("realm");
    let credentials = realm
        .credentials(&person, Duration::from_secs(600))
        .expect("credentials");
    ReferralIntakeClient::new(credentials.connect(url).expect("channel"))
}

async fn spawn(dir: &Path) -> App {
    let bus = bus::Bus::in_process();
    let options = referral::Options::new(dir, &Default::default()).expect("options");
    // A previous instance may still be letting go of the files.
    let mut service = None;
    for _ in 0..100 {
        match referral::open(options.clone(), &bus).await {
            Ok(opened) => {
                service = Some(opened);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let service = service.expect("the service opens");
    let log = service.log().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    // Beside the log, not in it: the realm of certificates and keys.
    let realm = dir.with_extension("realm");
    let (made, _) = trust::Realm::open_or_create(&realm).expect("realm");
    let trust = trust::Trust::load(&made.config()).expect("trust");
    let server = tokio::spawn(async move {
        service_core::process::server(&trust, &Default::default(), None)
            .expect("TLS")
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(
                service_core::connection::incoming(listener, None),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    let url = format!("https://{address}");
    App {
        client: client_as(&realm, &teacher(), &url),
        mash: client_as(&realm, &mash_officer(), &url),
        police: client_as(&realm, &police_officer(), &url),
        stop,
        server,
        log,
    }
}

impl App {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.expect("server");
        self.log.close().await.expect("close");
    }
}

fn organisation(ods: &str, name: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: name.into(),
        kind: kind.into(),
    }
}

fn council() -> Organisation {
    organisation(
        "E09000999",
        "London Borough of Northgate",
        OrganisationKind::LocalAuthority,
    )
}

fn teacher() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation(
            "S999001",
            "Northgate Primary School",
            OrganisationKind::School,
        )),
        user_id: "dsl-0001".into(),
        display_name: "Test Teacher".into(),
        role: Role::DesignatedSafeguardingLead.into(),
        care_setting: CareSetting::Education.into(),
    }
}

fn police_officer() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation(
            "P99001",
            "Test Constabulary",
            OrganisationKind::Police,
        )),
        user_id: "pc-0001".into(),
        display_name: "PC Test".into(),
        role: Role::PoliceOfficer.into(),
        care_setting: CareSetting::Other.into(),
    }
}

fn mash_officer() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(council()),
        user_id: "mash-0001".into(),
        display_name: "Test Officer".into(),
        role: Role::MashOfficer.into(),
        care_setting: CareSetting::SocialCare.into(),
    }
}

fn referral(key: &str) -> SubmitReferralRequest {
    SubmitReferralRequest {
        idempotency_key: key.into(),
        referrer: Some(Referrer {
            organisation: teacher().organisation,
            person: Some(ContactDetails {
                name: "Test Teacher".into(),
                phone: "01632 960001".into(),
                email: "dsl@example.invalid".into(),
            }),
        }),
        child: Some(Child {
            nhs_number: Some(NhsNumber {
                value: "9990000018".into(),
            }),
            given_name: "Alex".into(),
            family_name: "Testchild".into(),
            date_of_birth: Some(Date {
                year: 2019,
                month: 4,
                day: 2,
            }),
            postcode: "ZZ99 3AA".into(),
            ..Child::default()
        }),
        concerns: "bruising noticed on arm; child withdrawn".into(),
        category_of_concern: AbuseCategory::Physical.into(),
        consent: Some(Consent {
            status: ConsentStatus::Given.into(),
            reason: String::new(),
        }),
        local_authority: Some(council()),
        // Friday 19 December 2025, 09:30: decision due Monday 22 December.
        received_at: Some(prost_types::Timestamp {
            seconds: 1_766_136_600,
            nanos: 0,
        }),
        ..SubmitReferralRequest::default()
    }
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

#[tokio::test]
async fn a_referral_goes_from_the_front_door_to_a_conference_request_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn(dir.path()).await;

    let submitted = app
        .client
        .submit_referral(referral("school-2026-0001"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(submitted.decision_due, date(2025, 12, 22));
    // A retry is answered from the first submission.
    let retried = app
        .client
        .submit_referral(referral("school-2026-0001"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried.referral_id, submitted.referral_id);
    assert_eq!(retried.token, submitted.token);

    let awaiting = app
        .mash
        .list_awaiting_decision(ListAwaitingDecisionRequest {
            purpose: "a test of the backbone".into(),
            local_authority_ods_code: "E09000999".into(),
            as_of: date(2025, 12, 23),
            min_token: submitted.token.clone(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(awaiting.referrals.len(), 1);
    assert!(
        awaiting.referrals[0].decision_overdue,
        "due the 22nd, asked on the 23rd"
    );

    let decided = app
        .mash
        .record_decision(RecordDecisionRequest {
            referral_id: submitted.referral_id.clone(),
            rag_rating: RagRating::Red.into(),
            outcome: ReferralOutcome::StrategyDiscussion.into(),
            rationale: "injury unexplained; police and health to be consulted".into(),
            reason_for_referrer: String::new(),
            decided_at: Some(prost_types::Timestamp {
                seconds: 1_766_397_600,
                nanos: 0,
            }),
        })
        .await
        .expect("decide")
        .into_inner();
    let view = decided.referral.expect("referral");
    assert_eq!(view.status(), ReferralStatus::InStrategy);
    // 45 working days after Friday 19 December 2025.
    assert_eq!(view.assessment_due, date(2026, 2, 25));

    let strategy = app
        .mash
        .record_strategy_discussion(RecordStrategyDiscussionRequest {
            referral_id: submitted.referral_id.clone(),
            held_on: date(2026, 1, 6),
            agencies_present: vec![council()],
            section_47_enquiry: true,
            notes: String::new(),
            police_risk_assessment: None,
        })
        .await
        .expect("strategy")
        .into_inner();
    assert_eq!(
        strategy.referral.expect("referral").icpc_due,
        date(2026, 1, 27)
    );
    // A later strategy discussion does not move the initial conference's
    // clock: it runs from the one that started the enquiry.
    let again = app
        .mash
        .record_strategy_discussion(RecordStrategyDiscussionRequest {
            referral_id: submitted.referral_id.clone(),
            held_on: date(2026, 1, 8),
            agencies_present: vec![council()],
            section_47_enquiry: true,
            notes: "police update".into(),
            police_risk_assessment: None,
        })
        .await
        .expect("a second strategy discussion")
        .into_inner();
    assert_eq!(
        again.referral.expect("referral").icpc_due,
        date(2026, 1, 27)
    );

    let concluded = app
        .mash
        .record_section47_outcome(RecordSection47OutcomeRequest {
            referral_id: submitted.referral_id.clone(),
            concluded_on: date(2026, 1, 9),
            conference_needed: true,
            rationale: "risk of significant harm".into(),
        })
        .await
        .expect("conclude")
        .into_inner();
    let before = app
        .mash
        .get_referral(GetReferralRequest {
            purpose: "a test of the backbone".into(),
            referral_id: submitted.referral_id.clone(),
            min_token: concluded.token.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(before.status(), ReferralStatus::ConferenceRequested);
    // Five changes, and the two reads (the list and the referral), each
    // recorded before its answer.
    assert_eq!(app.log.head(), 7);

    // Restart on the same directory: the state is rebuilt from the log.
    app.stop().await;
    let mut app = spawn(dir.path()).await;
    let after = app
        .mash
        .get_referral(GetReferralRequest {
            purpose: "a test of the backbone".into(),
            referral_id: submitted.referral_id.clone(),
            min_token: concluded.token,
        })
        .await
        .expect("get after restart")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(after, before);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn(dir.path()).await;
    let submitted = app
        .client
        .submit_referral(referral("school-2026-0002"))
        .await
        .expect("submit")
        .into_inner();
    let head = app.log.head();

    let mut submissions: Vec<(&str, SubmitReferralRequest, Code, &str)> = Vec::new();
    let mut case = |name, edit: &dyn Fn(&mut SubmitReferralRequest), code, field| {
        let mut request = referral(name);
        edit(&mut request);
        submissions.push((name, request, code, field));
    };
    case(
        "no key",
        &|r| r.idempotency_key = " ".into(),
        Code::InvalidArgument,
        "idempotency_key",
    );
    case(
        "check digit",
        &|r| {
            r.child.as_mut().expect("child").nhs_number = Some(NhsNumber {
                value: "9990000019".into(),
            })
        },
        Code::InvalidArgument,
        "child.nhs_number",
    );
    case(
        "future birth",
        &|r| r.child.as_mut().expect("child").date_of_birth = date(2099, 1, 1),
        Code::InvalidArgument,
        "child.date_of_birth",
    );
    case(
        "no such day",
        &|r| r.child.as_mut().expect("child").date_of_birth = date(2021, 2, 29),
        Code::InvalidArgument,
        "child.date_of_birth",
    );
    case(
        "no category",
        &|r| r.category_of_concern = 0,
        Code::InvalidArgument,
        "category_of_concern",
    );
    case(
        "unknown category",
        &|r| r.category_of_concern = 42,
        Code::InvalidArgument,
        "category_of_concern",
    );
    case(
        "consent not sought without reason",
        &|r| {
            r.consent = Some(Consent {
                status: ConsentStatus::NotSought.into(),
                reason: String::new(),
            })
        },
        Code::InvalidArgument,
        "consent.reason",
    );
    case(
        "no council",
        &|r| r.local_authority = None,
        Code::InvalidArgument,
        "local_authority",
    );
    case(
        "bad ods",
        &|r| r.local_authority.as_mut().expect("la").ods_code = "E-9".into(),
        Code::InvalidArgument,
        "local_authority.ods_code",
    );
    case(
        "no concerns",
        &|r| r.concerns = String::new(),
        Code::InvalidArgument,
        "concerns",
    );
    for (name, request, code, field) in submissions {
        let status = app.client.submit_referral(request).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert!(
            status.message().starts_with(field),
            "{name}: {}",
            status.message()
        );
    }

    let decision = |id: &str| RecordDecisionRequest {
        referral_id: id.into(),
        rag_rating: RagRating::Green.into(),
        outcome: ReferralOutcome::EarlyHelp.into(),
        rationale: "family support".into(),
        reason_for_referrer: String::new(),
        decided_at: None,
    };
    let status = app
        .client
        .record_decision(decision(&submitted.referral_id))
        .await
        .expect_err("a school cannot decide");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    let status = app
        .mash
        .record_decision(decision("no-such-referral"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
    let status = app
        .mash
        .record_strategy_discussion(RecordStrategyDiscussionRequest {
            referral_id: submitted.referral_id.clone(),
            held_on: date(2025, 12, 22),
            ..RecordStrategyDiscussionRequest::default()
        })
        .await
        .expect_err("no decision yet");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    // Nothing was written but the security event of the school's refusal.
    assert_eq!(app.log.head(), head + 1, "nothing else was written");
    let last = app.log.read_all(head, 1).expect("read");
    assert_eq!(
        last[0].envelope().expect("envelope").content_type,
        "safeguard.events.v1.AccessRefused"
    );

    app.mash
        .record_decision(decision(&submitted.referral_id))
        .await
        .expect("decide");
    let status = app
        .mash
        .record_decision(decision(&submitted.referral_id))
        .await
        .expect_err("decided twice");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    // The refusal's security event and the one decision.
    assert_eq!(app.log.head(), head + 2);
    app.stop().await;
}

/// A referral's clock starts on the UK civil date it arrived: 23:30 UTC on
/// Thursday 2 July 2026 is 00:30 on Friday the 3rd in British Summer Time,
/// so it was received on the Friday and its decision is due on Monday the
/// 6th (one working day), not on the Friday as its UTC date would make it.
/// In winter UK time is UTC: 23:30 UTC on Thursday 31 December is still
/// that Thursday, due Monday 4 January (New Year's Day a bank holiday).
#[tokio::test]
async fn the_clock_starts_on_the_uk_date_summer_time_included() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn(dir.path()).await;
    for (key, seconds, due) in [
        ("summer-night", 1_783_035_000, date(2026, 7, 6)),
        ("winter-night", 1_798_759_800, date(2027, 1, 4)),
    ] {
        let submitted = app
            .client
            .submit_referral(SubmitReferralRequest {
                received_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                ..referral(key)
            })
            .await
            .expect("submit")
            .into_inner();
        assert_eq!(submitted.decision_due, due, "{key}");
        let awaiting = app
            .mash
            .list_awaiting_decision(ListAwaitingDecisionRequest {
                purpose: "a test of the backbone".into(),
                local_authority_ods_code: "E09000999".into(),
                as_of: due,
                min_token: submitted.token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        let listed = awaiting
            .referrals
            .iter()
            .find(|listed| listed.referral_id == submitted.referral_id)
            .expect("awaiting its decision");
        assert_eq!(listed.decision_due, due, "{key}");
        assert!(
            !listed.decision_overdue,
            "{key}: not overdue on its due day"
        );
    }
    app.stop().await;
}

fn incident(reference: &str) -> RecordDomesticAbuseIncidentRequest {
    RecordDomesticAbuseIncidentRequest {
        police_reference: reference.into(),
        child: Some(Child {
            given_name: "Alex".into(),
            family_name: "Testchild".into(),
            date_of_birth: date(2019, 4, 2),
            ..Child::default()
        }),
        school: Some(organisation(
            "S999001",
            "Northgate Primary School",
            OrganisationKind::School,
        )),
        local_authority: Some(council()),
        // Monday 30 November 2026, 22:15 UTC.
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_796_076_900,
            nanos: 0,
        }),
        location: "the family home".into(),
        child_present: true,
        child_said: String::new(),
        officer: None,
    }
}

/// Operation Encompass: an incident is due at the school by the start of
/// the next school day; a bad one is refused naming its field, a retry is
/// the first, and only the police report one.
#[tokio::test]
async fn a_domestic_abuse_incident_is_due_by_the_next_school_day_and_recorded_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn(dir.path()).await;
    let head = app.log.head();
    type Edit = dyn Fn(&mut RecordDomesticAbuseIncidentRequest);
    let cases: Vec<(&str, &Edit, &str)> = vec![
        (
            "no reference",
            &|r| r.police_reference = " ".into(),
            "police_reference",
        ),
        (
            "no date of birth",
            &|r| r.child.as_mut().expect("child").date_of_birth = None,
            "child.date_of_birth",
        ),
        (
            "no family name",
            &|r| r.child.as_mut().expect("child").family_name = String::new(),
            "child.given_name",
        ),
        (
            "in the future",
            &|r| r.occurred_at.as_mut().expect("time").seconds = 4_000_000_000,
            "occurred_at",
        ),
        ("no time", &|r| r.occurred_at = None, "occurred_at"),
        ("nowhere", &|r| r.location = String::new(), "location"),
        (
            "a surgery is no school",
            &|r| r.school.as_mut().expect("school").kind = OrganisationKind::GpPractice.into(),
            "school.kind",
        ),
        (
            "no council",
            &|r| r.local_authority = None,
            "local_authority",
        ),
    ];
    for (name, edit, field) in cases {
        let mut request = incident("MERLIN-9");
        edit(&mut request);
        let status = app
            .police
            .record_domestic_abuse_incident(request)
            .await
            .expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(status.message().starts_with(field), "{name}: {status:?}");
    }
    assert_eq!(app.log.head(), head, "nothing refused was written");

    let first = app
        .police
        .record_domestic_abuse_incident(incident("MERLIN-9"))
        .await
        .expect("recorded")
        .into_inner();
    // Tuesday 1 December, 08:30 UK time (GMT).
    assert_eq!(
        first.due_by.as_ref().map(|d| d.seconds),
        Some(1_796_113_800)
    );
    assert_eq!(
        first.told.as_ref().map(|t| t.ods_code.as_str()),
        Some("S999001")
    );
    let again = app
        .police
        .record_domestic_abuse_incident(incident("MERLIN-9"))
        .await
        .expect("the retry")
        .into_inner();
    assert_eq!(again.incident_id, first.incident_id);
    assert_eq!(app.log.head(), head + 1, "recorded once");

    let status = app
        .client
        .record_domestic_abuse_incident(incident("MERLIN-10"))
        .await
        .expect_err("a school does not report incidents");
    assert_eq!(status.code(), Code::PermissionDenied);
    app.stop().await;
}
