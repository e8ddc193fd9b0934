//! The plan registry over real gRPC, beside the referral intake and the
//! conference scheduler on the in-process bus: a conference outcome becomes
//! a plan, and an emergency department looking the child up sees it at once
//! (with what its role may see), while the lookup is recorded.

use std::path::Path;
use std::time::Duration;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, Date, NhsNumber, Organisation, OrganisationKind,
    Role,
};
use contract::conference::v1::conference_scheduler_client::ConferenceSchedulerClient;
use contract::conference::v1::*;
use contract::referral::v1 as referral;
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;
use contract::registry::v1 as registry_wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;

struct Backbone {
    referrals: ReferralIntakeClient<Channel>,
    conferences: ConferenceSchedulerClient<Channel>,
    registry: PlanRegistryClient<Channel>,
}

async fn spawn(dir: &Path) -> Backbone {
    let bus = bus::Bus::in_process();
    let calendar = domain::calendar::Calendar::england_and_wales();
    let referrals = ::referral::Options {
        data_dir: dir.join("referral-intake"),
        calendar: calendar.clone(),
    };
    let referrals = ::referral::open(referrals, &bus)
        .await
        .expect("referral intake");
    let conferences = conference::Options {
        data_dir: dir.join("conference-scheduler"),
        calendar,
        quorum: domain::conference::QuorumRule::default(),
    };
    let conferences = conference::open(conferences, &bus)
        .await
        .expect("scheduler");
    let registry = registry::open(
        registry::Options {
            data_dir: dir.join("plan-registry"),
            visibility_months: 12,
        },
        &bus,
    )
    .await
    .expect("registry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(referrals.into_server())
            .add_service(conferences.into_server())
            .add_service(registry.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let url = format!("http://{address}");
    Backbone {
        referrals: ReferralIntakeClient::connect(url.clone())
            .await
            .expect("connect"),
        conferences: ConferenceSchedulerClient::connect(url.clone())
            .await
            .expect("connect"),
        registry: PlanRegistryClient::connect(url).await.expect("connect"),
    }
}

fn organisation(ods: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: format!("Test organisation {ods}"),
        kind: kind.into(),
    }
}

fn council() -> Organisation {
    organisation("E09000999", OrganisationKind::LocalAuthority)
}

fn chair() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(council()),
        user_id: "chair-0001".into(),
        display_name: "Test Chair".into(),
        role: Role::ConferenceChair.into(),
        care_setting: CareSetting::SocialCare.into(),
    }
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn invitee(role: InviteeRole, ods: &str, kind: OrganisationKind) -> Invitee {
    Invitee {
        role: role.into(),
        organisation: Some(organisation(ods, kind)),
        ..Invitee::default()
    }
}

/// A referral taken to a section 47 enquiry that needs a conference.
async fn refer_to_conference(backbone: &mut Backbone) -> String {
    let submitted = backbone
        .referrals
        .submit_referral(referral::SubmitReferralRequest {
            caller: Some(chair()),
            idempotency_key: "case-0001".into(),
            referrer: Some(referral::Referrer {
                organisation: Some(organisation("S999001", OrganisationKind::School)),
                person: None,
            }),
            child: Some(referral::Child {
                nhs_number: Some(NhsNumber {
                    value: "9990000018".into(),
                }),
                given_name: "Alex".into(),
                family_name: "Testchild".into(),
                date_of_birth: date(2019, 4, 2),
                ..referral::Child::default()
            }),
            concerns: "unexplained bruising".into(),
            category_of_concern: AbuseCategory::Physical.into(),
            consent: Some(referral::Consent {
                status: referral::ConsentStatus::Given.into(),
                reason: String::new(),
            }),
            local_authority: Some(council()),
            received_at: Some(prost_types::Timestamp {
                seconds: 1_766_136_600,
                nanos: 0,
            }),
            ..referral::SubmitReferralRequest::default()
        })
        .await
        .expect("submit")
        .into_inner();
    let id = submitted.referral_id;
    backbone
        .referrals
        .record_decision(referral::RecordDecisionRequest {
            caller: Some(chair()),
            referral_id: id.clone(),
            rag_rating: referral::RagRating::Red.into(),
            outcome: referral::ReferralOutcome::StrategyDiscussion.into(),
            rationale: "significant harm suspected".into(),
            decided_at: Some(prost_types::Timestamp {
                seconds: 1_766_397_600,
                nanos: 0,
            }),
        })
        .await
        .expect("decide");
    backbone
        .referrals
        .record_strategy_discussion(referral::RecordStrategyDiscussionRequest {
            caller: Some(chair()),
            referral_id: id.clone(),
            held_on: date(2026, 1, 6),
            agencies_present: vec![council()],
            section_47_enquiry: true,
            notes: String::new(),
        })
        .await
        .expect("strategy");
    backbone
        .referrals
        .record_section47_outcome(referral::RecordSection47OutcomeRequest {
            caller: Some(chair()),
            referral_id: id.clone(),
            concluded_on: date(2026, 1, 9),
            conference_needed: true,
            rationale: "risk of significant harm".into(),
        })
        .await
        .expect("conclude");
    id
}

/// Waits for the scheduler's rules to have requested what it lists.
async fn conferences(backbone: &mut Backbone, count: usize) -> Vec<Conference> {
    for _ in 0..200 {
        let listed = backbone
            .conferences
            .list_conferences(ListConferencesRequest {
                caller: Some(chair()),
                local_authority_ods_code: "E09000999".into(),
                as_of: date(2026, 1, 12),
                ..ListConferencesRequest::default()
            })
            .await
            .expect("list")
            .into_inner()
            .conferences;
        if listed.len() >= count {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the scheduler did not request {count} conference(s)");
}

fn nurse() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation("RXX01", OrganisationKind::NhsTrust)),
        user_id: "nurse-0001".into(),
        display_name: "Test Nurse".into(),
        role: Role::UnscheduledCareClinician.into(),
        care_setting: CareSetting::EmergencyDepartment.into(),
    }
}

fn child() -> Option<NhsNumber> {
    Some(NhsNumber {
        value: "9990000018".into(),
    })
}

/// Runs the initial conference to a plan (physical abuse).
async fn make_plan(backbone: &mut Backbone) -> Conference {
    refer_to_conference(backbone).await;
    let id = conferences(backbone, 1).await.remove(0).conference_id;
    let present = vec![
        invitee(
            InviteeRole::SocialCare,
            "E09000999",
            OrganisationKind::LocalAuthority,
        ),
        invitee(InviteeRole::Police, "P99001", OrganisationKind::Police),
        invitee(InviteeRole::Gp, "Y99001", OrganisationKind::GpPractice),
    ];
    backbone
        .conferences
        .update_invitations(UpdateInvitationsRequest {
            caller: Some(chair()),
            conference_id: id.clone(),
            add: present[1..].to_vec(),
            remove: vec![],
        })
        .await
        .expect("invite");
    backbone
        .conferences
        .schedule_conference(ScheduleConferenceRequest {
            caller: Some(chair()),
            conference_id: id.clone(),
            scheduled_for: Some(prost_types::Timestamp {
                seconds: 1_768_900_000,
                nanos: 0,
            }),
            venue: "Civic Centre".into(),
        })
        .await
        .expect("schedule");
    backbone
        .conferences
        .record_attendance(RecordAttendanceRequest {
            caller: Some(chair()),
            conference_id: id.clone(),
            present,
            held_on: date(2026, 1, 20),
        })
        .await
        .expect("attendance");
    backbone
        .conferences
        .record_outcome(RecordOutcomeRequest {
            caller: Some(chair()),
            conference_id: id,
            outcome: Some(Outcome {
                kind: Some(outcome::Kind::Initial(InitialOutcome {
                    plan: true,
                    category: AbuseCategory::Physical.into(),
                })),
                quorum_override_reason: String::new(),
            }),
        })
        .await
        .expect("outcome")
        .into_inner()
        .conference
        .expect("conference")
}

async fn lookup(
    backbone: &mut Backbone,
    caller: CallerIdentity,
    silent: bool,
) -> registry_wire::LookupChildResponse {
    // The plan arrives from the scheduler through the bus: wait for it.
    for _ in 0..200 {
        let found = backbone
            .registry
            .lookup_child(registry_wire::LookupChildRequest {
                caller: Some(caller.clone()),
                nhs_number: child(),
                purpose: "unscheduled care attendance".into(),
                silent,
                ..registry_wire::LookupChildRequest::default()
            })
            .await
            .expect("lookup")
            .into_inner();
        if !found.plans.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the plan never reached the registry");
}

#[tokio::test]
async fn an_emergency_department_sees_the_plan_and_whom_to_call_and_the_lookup_is_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    backbone
        .registry
        .set_local_authority_contacts(registry_wire::SetLocalAuthorityContactsRequest {
            caller: Some(chair()),
            contacts: Some(registry_wire::LocalAuthorityContacts {
                local_authority: Some(council()),
                office_hours_phone: "01632 960100".into(),
                out_of_hours_phone: "01632 960999".into(),
            }),
        })
        .await
        .expect("contacts");
    let decided = make_plan(&mut backbone).await;

    let seen = lookup(&mut backbone, nurse(), false).await;
    assert_eq!(seen.plans.len(), 1);
    let plan = &seen.plans[0];
    assert_eq!(plan.plan_id, decided.plan_id);
    assert_eq!(plan.r#type(), registry_wire::PlanType::ChildProtection);
    assert_eq!(plan.start_date, date(2026, 1, 20));
    assert_eq!(
        plan.category, 0,
        "an emergency department is not told the category"
    );
    let owner = plan.owner.as_ref().expect("owner");
    assert_eq!(owner.out_of_hours_phone, "01632 960999");
    assert_eq!(seen.recent_accesses.len(), 1);
    assert_eq!(
        seen.recent_accesses[0].purpose,
        "unscheduled care attendance"
    );

    // The police may see the category; a silent read is still recorded.
    let mut officer = chair();
    officer.organisation = Some(organisation("P99001", OrganisationKind::Police));
    officer.role = Role::PoliceOfficer.into();
    officer.care_setting = CareSetting::Police.into();
    let seen = lookup(&mut backbone, officer, true).await;
    assert_eq!(seen.plans[0].category, i32::from(AbuseCategory::Physical));
    assert_eq!(seen.recent_accesses.len(), 2);

    // Was the child on a plan the day before the conference? No.
    let before = backbone
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            caller: Some(nurse()),
            nhs_number: child(),
            purpose: "audit".into(),
            as_of: date(2026, 1, 19),
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("point in time")
        .into_inner();
    assert!(before.plans.is_empty());

    let chronology = backbone
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            caller: Some(chair()),
            nhs_number: child(),
            min_token: before.token,
        })
        .await
        .expect("chronology")
        .into_inner()
        .entries;
    let summaries: Vec<&str> = chronology
        .iter()
        .map(|entry| entry.summary.as_str())
        .collect();
    for expected in [
        "referral received",
        "MASH decision",
        "strategy discussion",
        "section 47",
        "requested",
        "conference held",
        "plan started",
        "record viewed",
    ] {
        assert!(
            summaries.iter().any(|summary| summary.contains(expected)),
            "{expected} missing from {summaries:?}"
        );
    }
    let status = backbone
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            caller: Some(nurse()),
            nhs_number: child(),
            min_token: None,
        })
        .await
        .expect_err("not for an emergency department");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_unborn_plan_follows_the_baby_and_ends_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let mother = Some(NhsNumber {
        value: "9990000026".into(),
    });
    let planned = backbone
        .registry
        .record_unborn_plan(registry_wire::RecordUnbornPlanRequest {
            caller: Some(chair()),
            mother_nhs_number: mother.clone(),
            expected_date_of_delivery: date(2026, 3, 1),
            category: AbuseCategory::Neglect.into(),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect("unborn plan")
        .into_inner()
        .plan
        .expect("plan");
    assert_eq!(planned.r#type(), registry_wire::PlanType::Unborn);
    backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
            caller: Some(chair()),
            plan_id: planned.plan_id.clone(),
            baby_nhs_number: child(),
            born_on: date(2026, 2, 27),
        })
        .await
        .expect("link");
    let seen = lookup(&mut backbone, nurse(), true).await;
    assert_eq!(
        seen.plans[0].plan_id, planned.plan_id,
        "found by the baby's NHS number"
    );
    let status = backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
            caller: Some(chair()),
            plan_id: planned.plan_id.clone(),
            baby_nhs_number: child(),
            born_on: date(2026, 2, 27),
        })
        .await
        .expect_err("linked twice");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    let end = || registry_wire::EndPlanRequest {
        caller: Some(chair()),
        plan_id: planned.plan_id.clone(),
        end_date: date(2026, 6, 1),
        reason: registry_wire::PlanEndReason::NoLongerAtRisk.into(),
    };
    let ended = backbone
        .registry
        .end_plan(end())
        .await
        .expect("end")
        .into_inner()
        .plan
        .expect("plan");
    assert_eq!(ended.end_date, date(2026, 6, 1));
    assert_eq!(ended.visible_until, date(2027, 6, 1));
    let status = backbone
        .registry
        .end_plan(end())
        .await
        .expect_err("ended twice");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );

    let bad = backbone
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            caller: Some(nurse()),
            nhs_number: Some(NhsNumber {
                value: "9990000019".into(),
            }),
            purpose: "x".into(),
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect_err("bad number");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("nhs_number"), "{}", bad.message());
    let status = backbone
        .registry
        .record_looked_after(registry_wire::RecordLookedAfterRequest {
            caller: Some(nurse()),
            child_nhs_number: child(),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect_err("a nurse does not record plans");
    assert_eq!(status.code(), Code::PermissionDenied);
}
