//! Bad input to the conference scheduler, the plan registry and the
//! notification service (the referral service has its own table in
//! `crates/referral/tests`): each request is refused with the precise gRPC
//! code and a message naming the field, and no log moves.

use std::future::Future;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, Date, NhsNumber, Organisation, OrganisationKind, Role,
};
use contract::conference::v1::*;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry_wire;
use tonic::{Code, Status};

use crate::fixtures::*;

/// The cases that did not go as the table says, each with why.
#[derive(Default)]
struct Table {
    wrong: Vec<String>,
    cases: usize,
    /// Cases refused PERMISSION_DENIED, each a security event.
    refused: usize,
}

impl Table {
    /// Asserts every case went as the table says and nothing was written
    /// but the security event of each refusal by the access policy.
    async fn finish(self, case: &Case) {
        assert!(
            self.wrong.is_empty(),
            "{} of {} cases went wrong:\n{}",
            self.wrong.len(),
            self.cases,
            self.wrong.join("\n")
        );
        let written = case.b.written_since(&case.heads).await;
        assert_eq!(
            written,
            vec!["safeguard.events.v1.AccessRefused".to_owned(); self.refused],
            "a refused request wrote nothing but its refusal"
        );
    }

    async fn case<T>(
        &mut self,
        name: &str,
        call: impl Future<Output = Result<T, Status>>,
        code: Code,
        field: &str,
    ) {
        self.cases += 1;
        if code == Code::PermissionDenied {
            self.refused += 1;
        }
        match call.await {
            Ok(_) => self.wrong.push(format!("{name}: accepted")),
            Err(status) if status.code() != code || !status.message().contains(field) => {
                self.wrong.push(format!(
                    "{name}: {:?} {:?}, expected {code:?} naming {field:?}",
                    status.code(),
                    status.message()
                ));
            }
            Err(_) => {}
        }
    }
}

fn bad_nhs() -> Option<NhsNumber> {
    Some(NhsNumber {
        value: "9990000019".into(),
    })
}

fn gp() -> CallerIdentity {
    member_of(
        "Y99001",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    )
}

fn operator() -> CallerIdentity {
    let mut caller = chair();
    caller.role = Role::Operator.into();
    caller
}

fn month_13() -> Option<Date> {
    Some(Date {
        year: 2026,
        month: 13,
        day: 1,
    })
}

fn other_council() -> Organisation {
    organisation("E09000998", OrganisationKind::LocalAuthority)
}

/// A case to refuse requests in: a plan made by a conference (`held`,
/// `plan_id`), a conference not yet held (`requested`) and a plan already
/// ended (`ended`), and every log's head once all that is written.
struct Case {
    b: Backbone,
    held: String,
    plan_id: String,
    requested: String,
    ended: String,
    heads: Vec<u64>,
    _dir: tempfile::TempDir,
}

fn end(
    plan_id: &str,
    end_date: Option<Date>,
    reason: contract::common::v1::PlanEndReason,
) -> registry_wire::EndPlanRequest {
    registry_wire::EndPlanRequest {
        plan_id: plan_id.to_owned(),
        end_date,
        reason: reason.into(),
    }
}

async fn case() -> Case {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut b = spawn(dir.path()).await;
    let planned = make_plan(&mut b).await;
    let held = planned.conference.conference_id.clone();
    let plan_id = planned.conference.plan_id.to_owned();
    // A conference not yet held, and a plan already ended.
    let requested = b
        .conferences
        .create_conference(CreateConferenceRequest {
            kind: ConferenceKind::TransferIn.into(),
            child_nhs_number: Some(NhsNumber {
                value: "9990000026".into(),
            }),
            child_name: "Sam Testchild".into(),
            local_authority: Some(council()),
            clock_starts: date(2026, 2, 2),
            idempotency_key: "bad-input-transfer".into(),
            ..CreateConferenceRequest::default()
        })
        .await
        .expect("create")
        .into_inner()
        .conference
        .expect("conference")
        .conference_id;
    let ended = b
        .registry
        .record_looked_after(registry_wire::RecordLookedAfterRequest {
            gp_practice: None,
            child_local_id: None,
            child_nhs_number: Some(NhsNumber {
                value: "9990000034".into(),
            }),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect("looked after")
        .into_inner()
        .plan
        .expect("plan")
        .plan_id;
    b.registry
        .end_plan(end(
            &ended,
            date(2026, 3, 1),
            contract::common::v1::PlanEndReason::NoLongerAtRisk,
        ))
        .await
        .expect("end");
    let heads = b.quiet_heads().await;
    Case {
        b,
        held,
        plan_id,
        requested,
        ended,
        heads,
        _dir: dir,
    }
}

/// The conference scheduler's table.
#[tokio::test]
async fn the_conference_scheduler_refuses_bad_input_precisely() {
    let case = case().await;
    let (held, requested) = (case.held.as_str(), case.requested.as_str());
    let mut t = Table::default();
    let c = case.b.conferences.clone();
    // The conference scheduler.
    let create = || CreateConferenceRequest {
        kind: ConferenceKind::Review.into(),
        child_nhs_number: child(),
        local_authority: Some(council()),
        clock_starts: date(2026, 2, 2),
        idempotency_key: "bad-input-create".into(),
        ..CreateConferenceRequest::default()
    };
    let edit = |change: &dyn Fn(&mut CreateConferenceRequest)| {
        let mut request = create();
        change(&mut request);
        request
    };
    let (mut c1, mut c2, mut c3, mut c4, mut c5) =
        (c.clone(), c.clone(), c.clone(), c.clone(), c.clone());
    t.case(
        "create: NHS number with a wrong check digit",
        c1.create_conference(edit(&|r| r.child_nhs_number = bad_nhs())),
        Code::InvalidArgument,
        "child_nhs_number",
    )
    .await;
    t.case(
        "create: no kind",
        c2.create_conference(edit(&|r| r.kind = 0)),
        Code::InvalidArgument,
        "kind",
    )
    .await;
    t.case(
        "create: a kind the contract does not have",
        c3.create_conference(edit(&|r| r.kind = 99)),
        Code::InvalidArgument,
        "kind",
    )
    .await;
    t.case(
        "create: no local authority",
        c4.create_conference(edit(&|r| r.local_authority = None)),
        Code::InvalidArgument,
        "local_authority",
    )
    .await;
    t.case(
        "create: clock start not a date",
        c5.create_conference(edit(&|r| r.clock_starts = month_13())),
        Code::InvalidArgument,
        "clock_starts",
    )
    .await;
    t.case(
        "create: by an emergency department",
        case.b
            .as_(&nurse())
            .conferences
            .create_conference(edit(&|_| {})),
        Code::PermissionDenied,
        "CreateConference: only a local authority social care role",
    )
    .await;
    let schedule = |id: &str, at: Option<prost_types::Timestamp>| ScheduleConferenceRequest {
        conference_id: id.to_owned(),
        scheduled_for: at,
        venue: "Civic Centre".into(),
    };
    let at = Some(prost_types::Timestamp {
        seconds: 1_770_000_000,
        nanos: 0,
    });
    let mut c = c.clone();
    t.case(
        "schedule: a conference that does not exist",
        c.schedule_conference(schedule("no-such-conference", at)),
        Code::NotFound,
        "conference",
    )
    .await;
    t.case(
        "schedule: no time",
        c.schedule_conference(schedule(requested, None)),
        Code::InvalidArgument,
        "scheduled_for",
    )
    .await;
    t.case(
        "schedule: a conference already held",
        c.schedule_conference(schedule(held, at)),
        Code::FailedPrecondition,
        "held",
    )
    .await;
    t.case(
        "rearrange: no reason",
        c.rearrange_conference(RearrangeConferenceRequest {
            conference_id: requested.to_owned(),
            scheduled_for: at,
            venue: "Room 2".into(),
            reason: " ".into(),
        }),
        Code::InvalidArgument,
        "reason",
    )
    .await;
    t.case(
        "cancel: a conference already held",
        c.cancel_conference(CancelConferenceRequest {
            conference_id: held.to_owned(),
            reason: "no longer needed".into(),
        }),
        Code::FailedPrecondition,
        "held",
    )
    .await;
    t.case(
        "invite: an organisation with an invalid ODS code",
        c.update_invitations(UpdateInvitationsRequest {
            conference_id: requested.to_owned(),
            add: vec![invitee(
                InviteeRole::Gp,
                "not an ods code!",
                OrganisationKind::GpPractice,
            )],
            remove: vec![],
        }),
        Code::InvalidArgument,
        "add[0].organisation.ods_code",
    )
    .await;
    t.case(
        "reply: no response",
        c.record_invite_reply(RecordInviteReplyRequest {
            conference_id: requested.to_owned(),
            role: InviteeRole::SocialCare.into(),
            organisation_ods_code: "E09000999".into(),
            response: 0,
        }),
        Code::InvalidArgument,
        "response",
    )
    .await;
    t.case(
        "reply: from an agency not invited",
        c.record_invite_reply(RecordInviteReplyRequest {
            conference_id: requested.to_owned(),
            role: InviteeRole::Housing.into(),
            organisation_ods_code: "H99001".into(),
            response: InviteResponse::Attending.into(),
        }),
        Code::InvalidArgument,
        "invitee",
    )
    .await;
    t.case(
        "attendance: no date held",
        c.record_attendance(RecordAttendanceRequest {
            conference_id: requested.to_owned(),
            present: vec![],
            held_on: None,
        }),
        Code::InvalidArgument,
        "held_on",
    )
    .await;
    let outcome = |id: &str, kind: Option<outcome::Kind>| RecordOutcomeRequest {
        conference_id: id.to_owned(),
        outcome: kind.map(|kind| Outcome {
            kind: Some(kind),
            quorum_override_reason: String::new(),
        }),
    };
    let plan = || {
        Some(outcome::Kind::Review(ReviewOutcome {
            decision: Some(review_outcome::Decision::ContinuePlan(true)),
        }))
    };
    t.case(
        "outcome: none given",
        c.record_outcome(outcome(requested, None)),
        Code::InvalidArgument,
        "outcome",
    )
    .await;
    t.case(
        "outcome: for a conference not held",
        c.record_outcome(outcome(requested, plan())),
        Code::FailedPrecondition,
        "held",
    )
    .await;
    t.case(
        "outcome: a second one",
        c.record_outcome(outcome(
            held,
            Some(outcome::Kind::Initial(InitialOutcome {
                plan: true,
                category: AbuseCategory::Neglect.into(),
            })),
        )),
        Code::FailedPrecondition,
        "outcome",
    )
    .await;
    t.case(
        "get: a conference that does not exist",
        c.get_conference(GetConferenceRequest {
            purpose: "a test of the backbone".into(),
            conference_id: "no-such-conference".into(),
            min_token: None,
        }),
        Code::NotFound,
        "conference",
    )
    .await;
    t.case(
        "list: as of no date",
        c.list_conferences(ListConferencesRequest {
            local_authority_ods_code: "E09000999".into(),
            as_of: month_13(),
            ..ListConferencesRequest::default()
        }),
        Code::InvalidArgument,
        "as_of",
    )
    .await;
    t.finish(&case).await;
}

/// The plan registry's table.
#[tokio::test]
async fn the_registry_refuses_bad_input_precisely() {
    let case = case().await;
    let (plan_id, ended) = (case.plan_id.as_str(), case.ended.as_str());
    let mut t = Table::default();
    let mut r = case.b.registry.clone();
    // The plan registry: lookups by an A&E nurse.
    let mut a_and_e = case.b.as_(&nurse()).registry;
    let lookup = |change: &dyn Fn(&mut registry_wire::LookupChildRequest)| {
        let mut request = registry_wire::LookupChildRequest {
            nhs_number: child(),
            purpose: "unscheduled care attendance".into(),
            ..registry_wire::LookupChildRequest::default()
        };
        change(&mut request);
        request
    };
    t.case(
        "lookup: NHS number with a wrong check digit",
        a_and_e.lookup_child(lookup(&|l| l.nhs_number = bad_nhs())),
        Code::InvalidArgument,
        "nhs_number",
    )
    .await;
    t.case(
        "lookup: no purpose",
        a_and_e.lookup_child(lookup(&|l| l.purpose = String::new())),
        Code::InvalidArgument,
        "purpose",
    )
    .await;
    t.case(
        "lookup: as of no date",
        a_and_e.lookup_child(lookup(&|l| l.as_of = month_13())),
        Code::InvalidArgument,
        "as_of",
    )
    .await;
    t.case(
        "lookup: by the people who run the service",
        case.b
            .as_(&operator())
            .registry
            .lookup_child(lookup(&|_| {})),
        Code::PermissionDenied,
        "LookupChild: only a professional role",
    )
    .await;
    t.case(
        "lookup: a care setting the contract does not have",
        a_and_e.lookup_child(lookup(&|l| l.care_setting = 99)),
        Code::InvalidArgument,
        "care_setting",
    )
    .await;
    t.case(
        "lookup: a view the contract does not have",
        a_and_e.lookup_child(lookup(&|l| l.view = 99)),
        Code::InvalidArgument,
        "view",
    )
    .await;
    t.case(
        "chronology: for an emergency department",
        a_and_e.child_chronology(registry_wire::ChildChronologyRequest {
            local_id: None,
            purpose: "a test of the backbone".into(),
            nhs_number: child(),
            min_token: None,
        }),
        Code::PermissionDenied,
        "ChildChronology: only a local authority social care role",
    )
    .await;
    let transfer = |change: &dyn Fn(&mut registry_wire::RecordTransferInRequest)| {
        let mut request = registry_wire::RecordTransferInRequest {
            gp_practice: None,
            child_local_id: None,
            child_nhs_number: Some(NhsNumber {
                value: "9990000042".into(),
            }),
            category: AbuseCategory::Emotional.into(),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            previous_local_authority: Some(other_council()),
            lead_social_worker: None,
        };
        change(&mut request);
        request
    };
    t.case(
        "transfer in: from no local authority",
        r.record_transfer_in(transfer(&|t| t.previous_local_authority = None)),
        Code::InvalidArgument,
        "previous_local_authority",
    )
    .await;
    t.case(
        "transfer in: a child protection plan without a category",
        r.record_transfer_in(transfer(&|t| t.category = 0)),
        Code::InvalidArgument,
        "category",
    )
    .await;
    t.case(
        "transfer in: a category the contract does not have",
        r.record_transfer_in(transfer(&|t| t.category = 42)),
        Code::InvalidArgument,
        "category",
    )
    .await;
    t.case(
        "transfer in: by a GP",
        case.b
            .as_(&gp())
            .registry
            .record_transfer_in(transfer(&|_| {})),
        Code::PermissionDenied,
        "RecordTransferIn: only a local authority social care role",
    )
    .await;
    t.case(
        "unborn plan: no expected date of delivery",
        r.record_unborn_plan(registry_wire::RecordUnbornPlanRequest {
            gp_practice: None,
            mother_nhs_number: Some(NhsNumber {
                value: "9990000026".into(),
            }),
            expected_date_of_delivery: None,
            category: AbuseCategory::Neglect.into(),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            lead_social_worker: None,
        }),
        Code::InvalidArgument,
        "expected_date_of_delivery",
    )
    .await;
    let link = |plan_id: &str| registry_wire::LinkBirthRequest {
        plan_id: plan_id.to_owned(),
        baby_nhs_number: Some(NhsNumber {
            value: "9990000050".into(),
        }),
        born_on: date(2026, 2, 27),
    };
    t.case(
        "link birth: a plan that does not exist",
        r.link_birth(link("no-such-plan")),
        Code::NotFound,
        "plan",
    )
    .await;
    t.case(
        "link birth: to a plan that is not for an unborn child",
        r.link_birth(link(plan_id)),
        Code::FailedPrecondition,
        "unborn",
    )
    .await;
    t.case(
        "end plan: a reason the contract does not have",
        r.end_plan(registry_wire::EndPlanRequest {
            reason: 99,
            ..end(
                plan_id,
                date(2026, 6, 1),
                contract::common::v1::PlanEndReason::Other,
            )
        }),
        Code::InvalidArgument,
        "reason",
    )
    .await;
    t.case(
        "end plan: one already ended",
        r.end_plan(end(
            ended,
            date(2026, 4, 1),
            contract::common::v1::PlanEndReason::NoLongerAtRisk,
        )),
        Code::FailedPrecondition,
        "ended",
    )
    .await;
    t.case(
        "end plan: before it started",
        r.end_plan(end(
            plan_id,
            date(2025, 12, 1),
            contract::common::v1::PlanEndReason::NoLongerAtRisk,
        )),
        Code::InvalidArgument,
        "end_date",
    )
    .await;
    let contacts = |local_authority: Organisation, out_of_hours: &str| {
        registry_wire::SetLocalAuthorityContactsRequest {
            contacts: Some(registry_wire::LocalAuthorityContacts {
                local_authority: Some(local_authority),
                office_hours_phone: "01632 960100".into(),
                out_of_hours_phone: out_of_hours.into(),
                missing_numbers: String::new(),
            }),
        }
    };
    t.case(
        "contacts: another local authority's",
        r.set_local_authority_contacts(contacts(other_council(), "01632 960999")),
        Code::PermissionDenied,
        "SetLocalAuthorityContacts: only a local authority social care role as the local authority that owns it",
    )
    .await;
    t.case(
        "contacts: no out-of-hours number",
        r.set_local_authority_contacts(contacts(council(), "")),
        Code::InvalidArgument,
        "contacts.out_of_hours_phone",
    )
    .await;
    t.finish(&case).await;
}

/// The notification service's table.
#[tokio::test]
async fn the_notification_service_refuses_bad_input_precisely() {
    let case = case().await;
    let mut t = Table::default();
    // The notification service, asked by the council's inbox.
    let inbox = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let mut n = case.b.as_(&inbox).notifications;
    let subscribe = |change: &dyn Fn(&mut note::SubscribeRequest)| {
        let mut request = note::SubscribeRequest {
            subscriber: "inbox".into(),
            recipient_ods_code: "E09000999".into(),
            ..note::SubscribeRequest::default()
        };
        change(&mut request);
        request
    };
    t.case(
        "subscribe: to another organisation's notifications",
        n.subscribe(subscribe(&|s| s.recipient_ods_code = "E09000998".into())),
        Code::PermissionDenied,
        "Subscribe: only a professional role as the organisation the notifications are for",
    )
    .await;
    t.case(
        "subscribe: no subscriber name",
        n.subscribe(subscribe(&|s| s.subscriber = String::new())),
        Code::InvalidArgument,
        "subscriber",
    )
    .await;
    t.case(
        "subscribe: a kind the contract does not have",
        n.subscribe(subscribe(&|s| s.kinds = vec![77])),
        Code::InvalidArgument,
        "kinds",
    )
    .await;
    t.case(
        "subscribe: about an invalid NHS number",
        n.subscribe(subscribe(&|s| s.child_nhs_number = bad_nhs())),
        Code::InvalidArgument,
        "child_nhs_number",
    )
    .await;
    let acknowledge = |recipient: &str, sequence| note::AcknowledgeRequest {
        subscriber: "inbox".into(),
        recipient_ods_code: recipient.into(),
        sequence,
    };
    t.case(
        "acknowledge: another organisation's notifications",
        n.acknowledge(acknowledge("E09000998", 1)),
        Code::PermissionDenied,
        "Acknowledge: only a professional role as the organisation the notifications are for",
    )
    .await;
    t.case(
        "acknowledge: a notification not yet sent",
        n.acknowledge(acknowledge("E09000999", 1_000_000)),
        Code::InvalidArgument,
        "sequence",
    )
    .await;
    t.finish(&case).await;
}

/// The limits no caller may pass: each refused precisely (the field and the
/// limit, or the size and the limit), with nothing written; and one
/// person's lookups a minute.
#[tokio::test]
async fn limits_are_refused_precisely_and_change_nothing() {
    let case = case().await;
    let mut t = Table::default();
    let mut referrals = case.b.referrals.clone();
    let over = |bytes: usize| "x".repeat(bytes);
    let refer = |change: &dyn Fn(&mut referral::SubmitReferralRequest)| {
        let mut request = referral_of("limits", the_child(), None);
        change(&mut request);
        request
    };
    t.case(
        "a request larger than any service reads",
        referrals.submit_referral(refer(&|r| r.concerns = over(100_000))),
        Code::OutOfRange,
        "the limit is: 65536 bytes",
    )
    .await;
    t.case(
        "free text over its limit",
        referrals.submit_referral(refer(&|r| r.concerns = over(10_001))),
        Code::InvalidArgument,
        "concerns: at most 10000 bytes, not 10001",
    )
    .await;
    t.case(
        "a name over its limit, deep in the request",
        referrals.submit_referral(refer(&|r| {
            if let Some(referrer) = r.referrer.as_mut() {
                referrer.person = Some(contract::common::v1::ContactDetails {
                    name: over(300),
                    ..Default::default()
                });
            }
        })),
        Code::InvalidArgument,
        "referrer.person.name: at most 256 bytes, not 300",
    )
    .await;
    t.case(
        "a purpose over its limit",
        case.b
            .as_(&nurse())
            .registry
            .lookup_child(registry_wire::LookupChildRequest {
                nhs_number: child(),
                purpose: over(257),
                ..registry_wire::LookupChildRequest::default()
            }),
        Code::InvalidArgument,
        "purpose: at most 256 bytes, not 257",
    )
    .await;
    t.case(
        "more invitees than a list may hold",
        case.b
            .conferences
            .clone()
            .update_invitations(UpdateInvitationsRequest {
                conference_id: case.requested.clone(),
                add: vec![invitee(InviteeRole::Gp, "Y99001", OrganisationKind::GpPractice); 51],
                remove: vec![],
            }),
        Code::InvalidArgument,
        "add: at most 50 items, not 51",
    )
    .await;
    t.finish(&case).await;
}

#[tokio::test]
async fn one_person_may_look_up_only_so_many_children_a_minute() {
    let dir = tempfile::tempdir().expect("dir");
    let settings = service_core::settings::Settings {
        lookups_per_user_per_minute: 3,
        ..service_core::settings::Settings::default()
    };
    let running = crate::spawn_backbone_configured(dir.path(), settings).await;
    let mut backbone = connect(&running.agencies());
    backbone._backbone = Some(running);
    let look = |who: &CallerIdentity| {
        let mut registry = backbone.as_(who).registry;
        async move {
            registry
                .lookup_child(registry_wire::LookupChildRequest {
                    nhs_number: child(),
                    purpose: "unscheduled care attendance".into(),
                    care_setting: contract::common::v1::CareSetting::EmergencyDepartment.into(),
                    ..registry_wire::LookupChildRequest::default()
                })
                .await
        }
    };
    for _ in 0..3 {
        look(&nurse()).await.expect("within the limit");
    }
    let heads = backbone.quiet_heads().await;
    let refused = look(&nurse()).await.expect_err("a fourth in a minute");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("LookupChild: at most 3 lookups a minute by one person; retry in"),
        "{refused:?}"
    );
    assert_eq!(backbone.heads(), heads, "a refused lookup is not audited");
    // Another person of the same hospital is not held back by the first.
    let colleague = CallerIdentity {
        user_id: "nurse-0002".into(),
        ..nurse()
    };
    look(&colleague).await.expect("a colleague's own allowance");
}

/// The server's own limits: a request over its time is cancelled; a
/// connection's requests beyond its allowance wait their turn, while
/// another connection's do not; streams beyond a connection's allowance
/// wait for one to close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_bounds_time_requests_and_streams_per_connection() {
    let far_ahead = || {
        Some(contract::common::v1::ConsistencyToken {
            positions: vec![contract::common::v1::LogPosition {
                log: "plan-registry".into(),
                position: 1_000_000,
            }],
        })
    };
    let lookup = |min_token| registry_wire::LookupChildRequest {
        nhs_number: child(),
        purpose: "unscheduled care attendance".into(),
        min_token,
        ..registry_wire::LookupChildRequest::default()
    };
    // A read waiting five seconds for a write that never comes, on a
    // server that allows one.
    let dir = tempfile::tempdir().expect("dir");
    let settings = service_core::settings::Settings {
        request_timeout_seconds: 1,
        ..service_core::settings::Settings::default()
    };
    let running = crate::spawn_backbone_configured(&dir.path().join("a"), settings).await;
    let timed = connect(&running.agencies());
    let cancelled = timed
        .as_(&nurse())
        .registry
        .lookup_child(lookup(far_ahead()))
        .await
        .expect_err("over its time");
    assert_eq!(cancelled.code(), Code::Cancelled, "{cancelled:?}");
    assert!(
        cancelled.message().contains("Timeout expired"),
        "{cancelled:?}"
    );
    running.running.stop().await.expect("stop");

    // One request in flight a connection: the nurse's second waits for
    // her first, a lookup from the council's own connection does not.
    let settings = service_core::settings::Settings {
        requests_per_connection: 1,
        ..service_core::settings::Settings::default()
    };
    let running = crate::spawn_backbone_configured(&dir.path().join("b"), settings).await;
    let mut backbone = connect(&running.agencies());
    backbone._backbone = Some(running);
    let nurse_registry = backbone.as_(&nurse()).registry;
    let done = |mut client: contract::registry::v1::plan_registry_client::PlanRegistryClient<
        trust::client::Authorised,
    >,
                request| {
        tokio::spawn(async move {
            let answer = client.lookup_child(request).await;
            (answer.map(|_| ()), std::time::Instant::now())
        })
    };
    // The connection is made before the first request holds it.
    done(nurse_registry.clone(), lookup(None))
        .await
        .expect("task")
        .0
        .expect("a lookup");
    let first = done(nurse_registry.clone(), lookup(far_ahead()));
    // Time for the first to reach the server and hold the connection's
    // one slot, on a machine busy with other tests.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let second = done(nurse_registry, lookup(None));
    let other = done(backbone.as_(&chair()).registry, lookup(None));
    let (first, first_at) = first.await.expect("task");
    let (second, second_at) = second.await.expect("task");
    let (other, other_at) = other.await.expect("task");
    assert_eq!(
        first.expect_err("the write never came").code(),
        Code::Unavailable
    );
    second.expect("answered in its turn");
    other.expect("answered at once");
    assert!(
        second_at > first_at,
        "the second request waited for the first"
    );
    assert!(other_at < first_at, "another connection did not wait");

    // Streams beyond a connection's allowance wait for one to close.
    let inbox = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let notifications = backbone.as_(&inbox).notifications;
    let subscribe = || {
        let mut client = notifications.clone();
        async move {
            client
                .subscribe(note::SubscribeRequest {
                    subscriber: "limits".into(),
                    recipient_ods_code: "E09000999".into(),
                    // A child nobody is told of: the streams stay quiet.
                    child_nhs_number: Some(NhsNumber {
                        value: "9990000042".into(),
                    }),
                    purpose: "a test of the stream limit".into(),
                    ..note::SubscribeRequest::default()
                })
                .await
        }
    };
    let mut open = Vec::new();
    for _ in 0..service_core::limits::STREAMS_PER_CONNECTION {
        open.push(subscribe().await.expect("a stream within the allowance"));
    }
    let beyond = tokio::spawn(subscribe());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!beyond.is_finished(), "a stream beyond the allowance waits");
    drop(open.pop());
    tokio::time::timeout(std::time::Duration::from_secs(10), beyond)
        .await
        .expect("opened once another closed")
        .expect("task")
        .expect("a stream");
}
