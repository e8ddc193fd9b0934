//! Practice as Working Together 2023 describes it, in the cases
//! practitioners meet every week: a pre-birth conference's plan, a review
//! that ends a plan for its reason, a plan that ends outside a conference,
//! and a review added by hand.

use std::time::Duration;

use contract::common::v1::{AbuseCategory, ConsistencyToken, Date, LocalChildId, PlanEndReason};
use contract::conference::v1::*;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry_wire;
use tonic::Code;

use crate::fixtures::{self, Backbone, chair, child, council, date, nhs, safeguarding_lead};

const MOTHER: &str = "9990000026";

/// The child's chronology as the chair reads it, once an entry says
/// `said` (the registry hears of other services' events as they arrive).
async fn chronology_saying(
    backbone: &mut Backbone,
    said: &str,
) -> Vec<registry_wire::ChronologyEntry> {
    let mut entries = Vec::new();
    for _ in 0..250 {
        entries = backbone
            .as_(&chair())
            .registry
            .child_chronology(registry_wire::ChildChronologyRequest {
                nhs_number: child(),
                purpose: "case review".into(),
                ..registry_wire::ChildChronologyRequest::default()
            })
            .await
            .expect("chronology")
            .into_inner()
            .entries;
        if entries.iter().any(|entry| entry.summary == said) {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no entry {said:?} in {entries:#?}");
}

/// The plans a council's safeguarding lead sees for `number` once the
/// registry reflects `after`.
async fn plans_of(
    backbone: &mut Backbone,
    number: &str,
    after: Option<ConsistencyToken>,
) -> Vec<registry_wire::Plan> {
    backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: nhs(number),
            purpose: "child protection enquiry".into(),
            silent: true,
            min_token: after,
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner()
        .plans
}

/// The one conference of `kind` the council has for `plan_id` (or for no
/// plan yet), once the scheduler's rules have requested it.
async fn conference_of(backbone: &mut Backbone, kind: ConferenceKind, plan_id: &str) -> Conference {
    fixtures::open_conference(backbone, |c| c.kind() == kind && c.plan_id == plan_id).await
}

fn review_ending(reason: PlanEndReason, detail: &str) -> RecordOutcomeRequest {
    RecordOutcomeRequest {
        conference_id: String::new(),
        outcome: Some(Outcome {
            kind: Some(outcome::Kind::Review(ReviewOutcome {
                decision: Some(review_outcome::Decision::EndPlan(PlanEnding {
                    reason: reason.into(),
                    detail: detail.into(),
                })),
            })),
            quorum_override_reason: String::new(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_birth_conference_makes_an_unborn_plan_on_the_mothers_record_that_follows_the_baby() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let unborn = referral::Child {
        family_name: "Testunborn".into(),
        mother_nhs_number: nhs(MOTHER),
        expected_date_of_delivery: date(2026, 3, 1),
        ..referral::Child::default()
    };
    fixtures::refer_to_conference_with(&mut backbone, "pre-birth-0001", unborn).await;
    let conference = conference_of(&mut backbone, ConferenceKind::Initial, "").await;
    assert_eq!(conference.child_nhs_number, nhs(MOTHER));
    assert_eq!(conference.expected_date_of_delivery, date(2026, 3, 1));

    let decided = fixtures::hold(
        &mut backbone,
        &conference,
        date(2026, 1, 20),
        outcome::Kind::Initial(InitialOutcome {
            plan: true,
            category: AbuseCategory::Neglect.into(),
        }),
    )
    .await;
    let plans = plans_of(&mut backbone, MOTHER, decided).await;
    assert_eq!(plans.len(), 1, "{plans:?}");
    let plan = &plans[0];
    assert_eq!(
        plan.r#type(),
        registry_wire::PlanType::Unborn,
        "never a plan of the mother's own"
    );
    assert_eq!(plan.expected_date_of_delivery, date(2026, 3, 1));
    assert_eq!(plan.start_date, date(2026, 1, 20));

    let linked = backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
            plan_id: plan.plan_id.clone(),
            baby_nhs_number: child(),
            born_on: date(2026, 2, 27),
        })
        .await
        .expect("the birth is linked")
        .into_inner();
    let baby = child().expect("the baby's number").value;
    let babys = plans_of(&mut backbone, &baby, linked.token).await;
    assert_eq!(babys.len(), 1, "{babys:?}");
    assert_eq!(babys[0].plan_id, plan.plan_id, "the plan follows the baby");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_that_ends_a_plan_gives_one_of_the_contracts_reasons_and_the_plan_keeps_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let plan_id = planned.conference.plan_id.clone();
    let review = conference_of(&mut backbone, ConferenceKind::Review, &plan_id).await;
    fixtures::convene(&mut backbone, &review, date(2026, 4, 14)).await;
    let decide = |request: RecordOutcomeRequest| RecordOutcomeRequest {
        conference_id: review.conference_id.clone(),
        ..request
    };
    // (what, the decision, the field named in the refusal)
    let refused = [
        (
            "a death is not a conference's decision",
            review_ending(PlanEndReason::Died, ""),
            "outcome.review.end_plan.reason",
        ),
        (
            "a birth is not an end",
            review_ending(PlanEndReason::Born, ""),
            "outcome.review.end_plan.reason",
        ),
        (
            "no reason",
            review_ending(PlanEndReason::Unspecified, ""),
            "outcome.review.end_plan.reason",
        ),
        (
            "other, unsaid",
            review_ending(PlanEndReason::Other, "  "),
            "outcome.review.end_plan.detail",
        ),
    ];
    for (what, request, field) in refused {
        let status = backbone
            .conferences
            .record_outcome(decide(request))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{what}: {}",
            status.message()
        );
    }
    let ended = backbone
        .conferences
        .record_outcome(decide(review_ending(
            PlanEndReason::SteppedDownToChildInNeed,
            "support continues under a child in need plan",
        )))
        .await
        .expect("the review ends the plan")
        .into_inner();
    let plans = plans_of(&mut backbone, &child().expect("child").value, ended.token).await;
    let plan = plans
        .iter()
        .find(|plan| plan.plan_id == plan_id)
        .expect("an ended plan stays visible");
    assert_eq!(
        plan.end_reason(),
        PlanEndReason::SteppedDownToChildInNeed,
        "not \"other\""
    );
    assert_eq!(plan.end_date, date(2026, 4, 14));
    let chronology = backbone
        .as_(&chair())
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            nhs_number: child(),
            purpose: "review of the plan".into(),
            ..registry_wire::ChildChronologyRequest::default()
        })
        .await
        .expect("chronology")
        .into_inner();
    let said =
        "stepped down to a child-in-need plan (support continues under a child in need plan)";
    assert!(
        chronology
            .entries
            .iter()
            .any(|entry| entry.summary.contains(said)),
        "{:#?}",
        chronology.entries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_ends_outside_a_conference_withdraws_its_pending_review_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let plan_id = planned.conference.plan_id.clone();
    let review = conference_of(&mut backbone, ConferenceKind::Review, &plan_id).await;
    assert_eq!(review.due, date(2026, 4, 20));
    // The registry makes the plan from the outcome by itself: once it has.
    let number = child().expect("child").value;
    plans_of(&mut backbone, &number, planned.token.clone()).await;
    let status = backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: plan_id.clone(),
            end_date: date(2026, 2, 10),
            reason: PlanEndReason::NoLongerAtRisk.into(),
        })
        .await
        .expect_err("a review conference decides that");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("reason"),
        "{}",
        status.message()
    );
    backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: plan_id.clone(),
            end_date: date(2026, 2, 10),
            reason: PlanEndReason::LeftTheCountry.into(),
        })
        .await
        .expect("the family left the country");
    let mut cancelled = None;
    for _ in 0..250 {
        let seen = backbone
            .conferences
            .get_conference(GetConferenceRequest {
                conference_id: review.conference_id.clone(),
                ..GetConferenceRequest::default()
            })
            .await
            .expect("get")
            .into_inner()
            .conference
            .expect("conference");
        if seen.status() == ConferenceStatus::Withdrawn {
            cancelled = Some(seen);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled = cancelled.expect("the pending review is withdrawn");
    assert!(
        cancelled
            .history
            .iter()
            .any(|line| line.contains("the plan ended on 2026-02-10: left the UK")),
        "{:?}",
        cancelled.history
    );
    // No deadline survives the end of what it was for.
    let overdue = backbone
        .conferences
        .list_conferences(ListConferencesRequest {
            local_authority_ods_code: "E09000999".into(),
            as_of: date(2026, 5, 1),
            overdue_only: true,
            ..ListConferencesRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
        .conferences;
    assert!(overdue.is_empty(), "{overdue:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_added_by_hand_is_due_from_the_plans_last_conference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let plan_id = planned.conference.plan_id.clone();
    let by_hand = |key: &str, clock_starts: Option<Date>| CreateConferenceRequest {
        kind: ConferenceKind::Review.into(),
        child_nhs_number: child(),
        child_name: "Alex Testchild".into(),
        local_authority: Some(council()),
        clock_starts,
        plan_id: plan_id.clone(),
        idempotency_key: key.into(),
        ..CreateConferenceRequest::default()
    };
    // The initial conference was held on Tuesday 20 January 2026.
    let first = backbone
        .conferences
        .create_conference(by_hand("review-by-hand-1", None))
        .await
        .expect("a review by hand")
        .into_inner()
        .conference
        .expect("conference");
    assert_eq!(first.due, date(2026, 4, 20), "three months after the ICPC");
    let status = backbone
        .conferences
        .create_conference(by_hand("review-by-hand-2", date(2026, 3, 1)))
        .await
        .expect_err("another clock");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("clock_starts") && status.message().contains("2026-01-20"),
        "{}",
        status.message()
    );

    // Once a review is held, the next is due within six months of it.
    let review = conference_of(&mut backbone, ConferenceKind::Review, &plan_id).await;
    fixtures::hold(
        &mut backbone,
        &review,
        date(2026, 4, 14),
        outcome::Kind::Review(ReviewOutcome {
            decision: Some(review_outcome::Decision::ContinuePlan(true)),
        }),
    )
    .await;
    let second = backbone
        .conferences
        .create_conference(by_hand("review-by-hand-3", None))
        .await
        .expect("another review by hand")
        .into_inner()
        .conference
        .expect("conference");
    assert_eq!(
        second.due,
        date(2026, 10, 14),
        "six months after the review"
    );
}

/// The referral as the council sees it.
async fn referral_of(backbone: &mut Backbone, referral_id: &str) -> referral::Referral {
    backbone
        .referrals
        .get_referral(referral::GetReferralRequest {
            referral_id: referral_id.into(),
            purpose: "assessment".into(),
            ..referral::GetReferralRequest::default()
        })
        .await
        .expect("get")
        .into_inner()
        .referral
        .expect("referral")
}

/// Waits for the first notification of `kind` to the council whose summary
/// says `said`.
async fn council_told(backbone: &mut Backbone, kind: note::NotificationKind, said: &str) -> String {
    let council = fixtures::member_of(
        "E09000999",
        contract::common::v1::OrganisationKind::LocalAuthority,
        contract::common::v1::Role::TeamManager,
    );
    let mut after = 0;
    for _ in 0..20 {
        let told = fixtures::receive(backbone, council.clone(), &[kind], after, 1).await;
        if told[0].summary.contains(said) {
            return told[0].summary.clone();
        }
        after = told[0].sequence;
    }
    panic!("the council was not told that {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assessment_is_due_in_45_working_days_late_only_with_a_reason_and_told_when_missed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let referral_id = fixtures::refer_to_conference(&mut backbone).await;
    // Received Friday 19 December 2025: 45 working days, Christmas Day,
    // Boxing Day and New Year's Day aside.
    let open = referral_of(&mut backbone, &referral_id).await;
    assert_eq!(open.assessment_due, date(2026, 2, 25));
    assert!(open.assessment_overdue, "today is long past it");
    council_told(
        &mut backbone,
        note::NotificationKind::DeadlineMissed,
        "an assessment due 2026-02-25 has not been completed",
    )
    .await;

    let complete = |late_reason: &str| referral::RecordAssessmentCompletedRequest {
        referral_id: referral_id.clone(),
        completed_on: date(2026, 3, 2),
        late_reason: late_reason.into(),
    };
    let status = backbone
        .referrals
        .record_assessment_completed(complete("  "))
        .await
        .expect_err("late, and no reason");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("late_reason") && status.message().contains("2026-02-25"),
        "{}",
        status.message()
    );
    let completed = backbone
        .referrals
        .record_assessment_completed(complete("the family could not be seen until March"))
        .await
        .expect("completed late, with the reason")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(completed.assessment_completed_on, date(2026, 3, 2));
    assert_eq!(
        completed.assessment_late_reason,
        "the family could not be seen until March"
    );
    assert!(!completed.assessment_overdue);
    let status = backbone
        .referrals
        .record_assessment_completed(complete("again"))
        .await
        .expect_err("completed once");
    assert_eq!(status.code(), Code::FailedPrecondition);

    let said = "assessment completed on 2026-03-02, 3 working day(s) late: the family could not be seen until March";
    chronology_saying(&mut backbone, said).await;
    early_help_has_no_assessment(&mut backbone).await;
}

/// A referral decided for early help has no assessment to complete.
async fn early_help_has_no_assessment(backbone: &mut Backbone) {
    let submitted = backbone
        .referrals
        .submit_referral(fixtures::referral_of(
            "early-help-0001",
            fixtures::the_child(),
            None,
        ))
        .await
        .expect("submit")
        .into_inner();
    let decided = backbone
        .referrals
        .record_decision(referral::RecordDecisionRequest {
            referral_id: submitted.referral_id.clone(),
            rag_rating: referral::RagRating::Green.into(),
            outcome: referral::ReferralOutcome::EarlyHelp.into(),
            rationale: "family support".into(),
            reason_for_referrer: String::new(),
            decided_at: None,
        })
        .await
        .expect("decide")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(decided.assessment_due, None);
    assert!(!decided.assessment_overdue);
    let status = backbone
        .referrals
        .record_assessment_completed(referral::RecordAssessmentCompletedRequest {
            referral_id: submitted.referral_id,
            completed_on: date(2026, 3, 2),
            late_reason: String::new(),
        })
        .await
        .expect_err("no assessment was decided on");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_core_group_is_due_10_working_days_after_the_plan_and_told_when_missed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let plan_id = planned.conference.plan_id.clone();
    // The plan was made on Tuesday 20 January 2026.
    assert_eq!(planned.conference.first_core_group_due, date(2026, 2, 3));
    assert!(planned.conference.first_core_group_overdue, "long past");
    council_told(
        &mut backbone,
        note::NotificationKind::DeadlineMissed,
        "the plan's first core group meeting due 2026-02-03 has not been held",
    )
    .await;

    let meet = |plan_id: &str, held_on| RecordCoreGroupMeetingRequest {
        plan_id: plan_id.into(),
        held_on,
    };
    // (what, request, code, the field or words said)
    let refused = [
        (
            "before the conference",
            meet(&plan_id, date(2026, 1, 19)),
            Code::InvalidArgument,
            "held_on",
        ),
        (
            "no date",
            meet(&plan_id, None),
            Code::InvalidArgument,
            "held_on",
        ),
        (
            "no plan",
            meet("", date(2026, 2, 2)),
            Code::InvalidArgument,
            "plan_id",
        ),
        (
            "a plan no conference made",
            meet("no-such-plan", date(2026, 2, 2)),
            Code::NotFound,
            "plan made by a conference",
        ),
    ];
    for (what, request, code, said) in refused {
        let status = backbone
            .conferences
            .record_core_group_meeting(request)
            .await
            .expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(said),
            "{what}: {}",
            status.message()
        );
    }
    let met = backbone
        .conferences
        .record_core_group_meeting(meet(&plan_id, date(2026, 2, 5)))
        .await
        .expect("the core group met")
        .into_inner();
    let conference = met.conference.expect("the conference that made the plan");
    assert_eq!(conference.conference_id, planned.conference.conference_id);
    assert_eq!(conference.first_core_group_held_on, date(2026, 2, 5));
    assert!(!conference.first_core_group_overdue);
    let status = backbone
        .conferences
        .record_core_group_meeting(meet(&plan_id, date(2026, 2, 6)))
        .await
        .expect_err("the first meeting is recorded once");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let said = "first core group meeting held on 2026-02-05, 2 working day(s) late";
    chronology_saying(&mut backbone, said).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_conference_invites_the_agencies_the_referral_knows_puts_the_police_risk_assessment_before_the_chair_and_tells_them_of_changes()
 {
    use contract::common::v1::{Organisation, OrganisationKind as Kind, Role};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let trust = fixtures::organisation("RXX01", Kind::NhsTrust);
    let police = fixtures::organisation("P99001", Kind::Police);
    // Referred by the school; registered with a GP practice.
    let child = referral::Child {
        gp_practice: Some(fixtures::organisation("Y99001", Kind::GpPractice)),
        ..fixtures::the_child()
    };
    let referral_id = fixtures::refer_to_conference_discussed(
        &mut backbone,
        "invitations-0001",
        child,
        vec![council(), police.clone(), trust.clone()],
        Some(referral::PoliceRiskAssessment {
            reference: "TEST-MERLIN-0002".into(),
            kind: referral::PoliceReportKind::InformationExchange.into(),
            overall_rating: referral::RiskRating::High.into(),
            groups: vec![referral::RiskFactorGroup {
                subject: referral::RiskSubject::Household.into(),
                factors: vec![referral::RiskFactor {
                    question: "previous incidents at the address".into(),
                    present: true,
                    detail: "two calls this year".into(),
                }],
            }],
            assessed_on: date(2026, 1, 5),
            version: 0,
        }),
    )
    .await;
    let conference = conference_of(&mut backbone, ConferenceKind::Initial, "").await;
    // The police risk assessment travels: in front of the strategy
    // discussion and the chair, and of the police; not of the referrer or
    // of the GP.
    let assessments_seen_by = |who: Option<contract::common::v1::CallerIdentity>| {
        let clients = match &who {
            Some(who) => backbone.as_(who),
            None => backbone.as_(&chair()),
        };
        let (referral_id, conference_id) = (referral_id.clone(), conference.conference_id.clone());
        async move {
            let (mut referrals, mut conferences) = (clients.referrals, clients.conferences);
            let on_referral = referrals
                .get_referral(referral::GetReferralRequest {
                    referral_id,
                    purpose: "risk".into(),
                    ..referral::GetReferralRequest::default()
                })
                .await
                .map(|answer| {
                    answer
                        .into_inner()
                        .referral
                        .expect("referral")
                        .police_risk_assessments
                });
            let on_conference = conferences
                .get_conference(GetConferenceRequest {
                    conference_id,
                    purpose: "risk".into(),
                    min_token: None,
                })
                .await
                .map(|answer| {
                    answer
                        .into_inner()
                        .conference
                        .expect("conference")
                        .police_risk_assessments
                });
            (on_referral.ok(), on_conference.ok())
        }
    };
    let (on_referral, on_conference) = assessments_seen_by(None).await;
    let on_referral = on_referral.expect("the chair reads the referral");
    assert_eq!(on_referral.len(), 1, "{on_referral:?}");
    assert_eq!(
        (on_referral[0].version, on_referral[0].overall_rating()),
        (1, referral::RiskRating::High)
    );
    assert_eq!(on_conference, Some(on_referral.clone()));
    let officer = fixtures::member_of("P99001", Kind::Police, Role::PoliceOfficer);
    let (_, police_sees) = assessments_seen_by(Some(officer)).await;
    assert_eq!(police_sees.map(|seen| seen.len()), Some(1));
    let school = fixtures::member_of("S999001", Kind::School, Role::DesignatedSafeguardingLead);
    let (school_sees, _) = assessments_seen_by(Some(school)).await;
    assert_eq!(school_sees.map(|seen| seen.len()), Some(0), "the referrer");
    let gp = fixtures::member_of("Y99001", Kind::GpPractice, Role::GeneralPractitioner);
    let (_, gp_sees) = assessments_seen_by(Some(gp)).await;
    assert_eq!(gp_sees.map(|seen| seen.len()), Some(0), "an invited GP");

    let invited: Vec<(InviteeRole, String)> = conference
        .invitees
        .iter()
        .map(|invitee| {
            (
                invitee.role(),
                invitee
                    .organisation
                    .as_ref()
                    .map(|o| o.ods_code.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    // The child was born in 2019: the trust's school nurse, not its health
    // visitor.
    for expected in [
        (InviteeRole::SocialCare, "E09000999"),
        (InviteeRole::Police, "P99001"),
        (InviteeRole::SchoolNurse, "RXX01"),
        (InviteeRole::School, "S999001"),
        (InviteeRole::Gp, "Y99001"),
        (InviteeRole::Parent, ""),
    ] {
        assert!(
            invited.contains(&(expected.0, expected.1.to_owned())),
            "{expected:?} not in {invited:?}"
        );
    }

    let id = conference.conference_id.clone();
    backbone
        .conferences
        .schedule_conference(ScheduleConferenceRequest {
            conference_id: id.clone(),
            scheduled_for: Some(prost_types::Timestamp {
                seconds: 1_768_905_000,
                nanos: 0,
            }),
            venue: "Civic Centre, room 2".into(),
        })
        .await
        .expect("schedule");
    // A paediatrician of another trust, invited once it is scheduled.
    let paediatrics = Organisation {
        ods_code: "RYY02".into(),
        name: "Test paediatrics".into(),
        kind: Kind::NhsTrust.into(),
    };
    backbone
        .conferences
        .update_invitations(UpdateInvitationsRequest {
            conference_id: id.clone(),
            add: vec![Invitee {
                role: InviteeRole::Paediatrician.into(),
                organisation: Some(paediatrics),
                ..Invitee::default()
            }],
            remove: vec![],
        })
        .await
        .expect("invite");
    let paediatrician = fixtures::member_of("RYY02", Kind::NhsTrust, Role::Paediatrician);
    let invitation = fixtures::receive(
        &mut backbone,
        paediatrician,
        &[note::NotificationKind::ConferenceInvitation],
        0,
        1,
    )
    .await;
    assert_eq!(
        invitation[0].details.get("venue").map(String::as_str),
        Some("Civic Centre, room 2")
    );

    backbone
        .conferences
        .cancel_conference(CancelConferenceRequest {
            conference_id: id,
            reason: "the chair is unwell".into(),
        })
        .await
        .expect("cancel");
    let officer = fixtures::member_of("P99001", Kind::Police, Role::PoliceOfficer);
    let cancelled = fixtures::receive(
        &mut backbone,
        officer,
        &[note::NotificationKind::ConferenceCancelled],
        0,
        1,
    )
    .await;
    assert!(
        cancelled[0]
            .summary
            .contains("cancelled: the chair is unwell"),
        "{}",
        cancelled[0].summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_social_worker_is_allocated_changed_named_to_callers_and_in_the_chronology() {
    use contract::common::v1::ContactDetails;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let number = child().expect("child").value;
    let plan_id = fixtures::transfer_in(&mut backbone, &number, date(2026, 1, 5))
        .await
        .plan
        .expect("plan")
        .plan_id;
    let allocate = |name: &str, phone: &str, on| registry_wire::AllocateLeadSocialWorkerRequest {
        plan_id: plan_id.clone(),
        lead_social_worker: Some(ContactDetails {
            name: name.into(),
            phone: phone.into(),
            email: String::new(),
        }),
        allocated_on: on,
    };
    // (what, request, the field named)
    let refused = [
        (
            "no telephone",
            allocate("Sam Testworker", " ", date(2026, 1, 6)),
            "lead_social_worker.phone",
        ),
        (
            "before the plan",
            allocate("Sam Testworker", "0300 000 0101", date(2026, 1, 4)),
            "allocated_on",
        ),
    ];
    for (what, request, field) in refused {
        let status = backbone
            .registry
            .allocate_lead_social_worker(request)
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}");
        assert!(
            status.message().starts_with(field),
            "{what}: {}",
            status.message()
        );
    }
    backbone
        .registry
        .allocate_lead_social_worker(allocate(
            "Sam Testworker",
            "0300 000 0101",
            date(2026, 1, 6),
        ))
        .await
        .expect("allocated");
    let changed = backbone
        .registry
        .allocate_lead_social_worker(allocate(
            "Kim Testworker",
            "0300 000 0102",
            date(2026, 2, 2),
        ))
        .await
        .expect("changed")
        .into_inner();
    // The emergency department is told whom to call: the current one.
    let seen = fixtures::lookup(
        &mut backbone,
        fixtures::nurse(),
        false,
        changed.token.clone(),
    )
    .await;
    let worker = seen.plans[0]
        .lead_social_worker
        .clone()
        .expect("whom to call");
    assert_eq!(
        (worker.name.as_str(), worker.phone.as_str()),
        ("Kim Testworker", "0300 000 0102")
    );
    let entries = backbone
        .as_(&chair())
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            local_id: None,
            nhs_number: child(),
            purpose: "allocation".into(),
            min_token: changed.token,
        })
        .await
        .expect("chronology")
        .into_inner()
        .entries;
    for said in [
        "lead social worker from 2026-01-06: Sam Testworker (0300 000 0101)",
        "lead social worker from 2026-02-02: Kim Testworker (0300 000 0102), was Sam Testworker",
    ] {
        assert!(
            entries.iter().any(|entry| entry.summary == said),
            "{said} not in {entries:#?}"
        );
    }
    backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: plan_id.clone(),
            end_date: date(2026, 3, 2),
            reason: PlanEndReason::TransferredOut.into(),
        })
        .await
        .expect("ended");
    let status = backbone
        .registry
        .allocate_lead_social_worker(allocate(
            "Lee Testworker",
            "0300 000 0103",
            date(2026, 3, 3),
        ))
        .await
        .expect_err("the plan has ended");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_referrer_is_told_of_receipt_the_decision_and_each_later_step() {
    use contract::common::v1::{OrganisationKind as Kind, Role};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    fixtures::refer_to_conference(&mut backbone).await;
    let school = fixtures::member_of("S999001", Kind::School, Role::DesignatedSafeguardingLead);
    let told = fixtures::receive(
        &mut backbone,
        school,
        &[
            note::NotificationKind::ReferralAcknowledged,
            note::NotificationKind::ReferralOutcome,
            note::NotificationKind::ReferralProgress,
        ],
        0,
        4,
    )
    .await;
    let said: Vec<(note::NotificationKind, &str)> = told
        .iter()
        .map(|message| (message.kind(), message.summary.as_str()))
        .collect();
    assert_eq!(
        said,
        vec![
            (
                note::NotificationKind::ReferralAcknowledged,
                "your referral was received; a decision is due by 2025-12-22"
            ),
            (
                note::NotificationKind::ReferralOutcome,
                "your referral was decided: strategy discussion"
            ),
            (
                note::NotificationKind::ReferralProgress,
                "a strategy discussion was held on 2026-01-06; a section 47 enquiry was started"
            ),
            (
                note::NotificationKind::ReferralProgress,
                "the enquiry concluded: an initial child protection conference has been called, and you may be invited"
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_with_nowhere_to_call_says_so_and_its_council_is_told() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    // The council never registered its numbers.
    let planned = fixtures::make_plan(&mut backbone).await;
    let seen = fixtures::lookup(&mut backbone, fixtures::nurse(), false, planned.token).await;
    let owner = seen.plans[0].owner.clone().expect("whom to call");
    assert_eq!(
        owner.missing_numbers,
        "Test organisation E09000999 (E09000999) has registered no office-hours or out-of-hours \
         telephone number: call its main switchboard and ask for children's social care"
    );
    council_told(
        &mut backbone,
        note::NotificationKind::ContactsMissing,
        "with no office-hours or out-of-hours number to call",
    )
    .await;
    fixtures::set_contacts(&mut backbone, "0300 000 0001", "0300 000 0002").await;
    let seen = fixtures::lookup(&mut backbone, fixtures::nurse(), false, None).await;
    let owner = seen.plans[0].owner.clone().expect("whom to call");
    assert_eq!(owner.office_hours_phone, "0300 000 0001");
    assert_eq!(owner.missing_numbers, "", "nothing missing now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chronology_is_in_the_order_things_happened_with_when_each_was_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let referral_id = planned.conference.referral_id.clone();
    // The registry makes the plan from the outcome by itself: once it has.
    let number = child().expect("child").value;
    plans_of(&mut backbone, &number, planned.token.clone()).await;
    // Typed in after the conference, done before it.
    backbone
        .referrals
        .record_assessment_completed(referral::RecordAssessmentCompletedRequest {
            referral_id,
            completed_on: date(2026, 1, 15),
            late_reason: String::new(),
        })
        .await
        .expect("assessment");
    let said = "assessment completed on 2026-01-15";
    let entries = chronology_saying(&mut backbone, said).await;
    let at = |starts: &str| {
        entries
            .iter()
            .position(|entry| entry.summary.starts_with(starts))
            .unwrap_or_else(|| panic!("no entry {starts:?} in {entries:#?}"))
    };
    let decided = at("MASH decision: strategy discussion (red): significant harm suspected");
    let concluded = at("section 47 enquiry concluded");
    let assessed = at(said);
    let held = at(
        "conference held on 2026-01-20; present: social care (E09000999), police (P99001), gp (Y99001)",
    );
    let started = at("plan started on 2026-01-20");
    assert!(
        decided < concluded && concluded < assessed && assessed < held && held <= started,
        "{entries:#?}"
    );
    let recorded = |index: usize| entries[index].recorded_at.unwrap_or_default().seconds;
    assert!(
        recorded(assessed) >= recorded(held),
        "recorded after the conference, shown before it"
    );
}

/// A lookup by `child` (an NHS number or a local identifier) by the
/// council's safeguarding lead, once the registry reflects `after`.
async fn look_up_by(
    backbone: &mut Backbone,
    nhs_number: Option<contract::common::v1::NhsNumber>,
    local_id: Option<LocalChildId>,
    after: Option<ConsistencyToken>,
) -> Result<registry_wire::LookupChildResponse, tonic::Status> {
    backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number,
            local_id,
            purpose: "child protection enquiry".into(),
            silent: true,
            min_token: after,
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn unmatched(backbone: &mut Backbone) -> registry_wire::ListUnmatchedChildrenResponse {
    backbone
        .registry
        .list_unmatched_children(registry_wire::ListUnmatchedChildrenRequest {
            local_authority_ods_code: "E09000999".into(),
            min_token: None,
        })
        .await
        .expect("unmatched")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_without_an_nhs_number_is_held_under_the_councils_local_id_until_one_is_linked() {
    const NEWBORN: &str = "9990000034";
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;

    // A local identifier is the receiving council's own.
    let mut foreign = fixtures::referral_of(
        "foreign-id-0001",
        referral::Child {
            given_name: "Kim".into(),
            family_name: "Testchild".into(),
            date_of_birth: date(2020, 5, 5),
            local_id: Some(LocalChildId {
                local_authority_ods_code: "E09000998".into(),
                value: "LCS-1".into(),
            }),
            ..referral::Child::default()
        },
        None,
    );
    let refused = backbone
        .referrals
        .submit_referral(foreign.clone())
        .await
        .expect_err("another council's identifier");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("child.local_id.local_authority_ods_code"),
        "{refused:?}"
    );
    foreign.child.as_mut().expect("child").local_id = Some(LocalChildId {
        local_authority_ods_code: "E09000999".into(),
        value: "has space".into(),
    });
    let refused = backbone
        .referrals
        .submit_referral(foreign)
        .await
        .expect_err("bad value");
    assert!(
        refused.message().starts_with("child.local_id.value"),
        "{refused:?}"
    );

    // A newborn referred without an NHS number is issued one by intake,
    // and goes through conference and plan under it.
    let newborn = referral::Child {
        given_name: "Baby".into(),
        family_name: "Testnewborn".into(),
        date_of_birth: date(2025, 12, 2),
        ..referral::Child::default()
    };
    let referral_id =
        fixtures::refer_to_conference_with(&mut backbone, "newborn-0001", newborn).await;
    let issued = referral_of(&mut backbone, &referral_id)
        .await
        .child
        .and_then(|child| child.local_id)
        .expect("a local identifier issued");
    assert_eq!(
        (
            issued.local_authority_ods_code.as_str(),
            issued.value.clone()
        ),
        ("E09000999", format!("referral-{referral_id}"))
    );
    let initial = fixtures::open_conference(&mut backbone, |c| c.referral_id == referral_id).await;
    assert_eq!(initial.child_nhs_number, None);
    assert_eq!(initial.child_local_id.as_ref(), Some(&issued));
    let decided = fixtures::hold(
        &mut backbone,
        &initial,
        date(2026, 1, 20),
        outcome::Kind::Initial(InitialOutcome {
            plan: true,
            category: AbuseCategory::Physical.into(),
        }),
    )
    .await;
    let held = look_up_by(&mut backbone, None, Some(issued.clone()), decided)
        .await
        .expect("a lookup by local identifier");
    assert_eq!(
        (held.nhs_number.as_ref(), held.local_id.as_ref()),
        (None, Some(&issued))
    );
    assert_eq!(held.plans.len(), 1, "{held:?}");
    let plan = held.plans[0].clone();
    assert_eq!(plan.child_local_id.as_ref(), Some(&issued));
    assert_eq!(plan.r#type(), registry_wire::PlanType::ChildProtection);
    let review = fixtures::open_conference(&mut backbone, |c| {
        c.kind() == ConferenceKind::Review && c.plan_id == plan.plan_id
    })
    .await;
    assert_eq!(review.child_local_id.as_ref(), Some(&issued));

    // The council lists it as unmatched; a child with a number counts as
    // matched (unborn plans, the mother's, are not counted).
    fixtures::transfer_in(&mut backbone, MOTHER, date(2026, 1, 5)).await;
    let listed = unmatched(&mut backbone).await;
    assert_eq!(
        (listed.children_on_plans, listed.matched),
        (2, 1),
        "{listed:?}"
    );
    assert!((listed.match_rate_percent - 50.0).abs() < 1e-9);
    assert_eq!(listed.children.len(), 1);
    assert_eq!(listed.children[0].local_id.as_ref(), Some(&issued));
    assert_eq!(listed.children[0].child_name, "Baby Testnewborn");
    assert_eq!(listed.children[0].plans[0].plan_id, plan.plan_id);
    let before = fixtures::chronology_of(&mut backbone, None, Some(issued.clone())).await;
    assert!(
        before
            .iter()
            .any(|line| line.starts_with("referral received"))
            && before
                .iter()
                .any(|line| line == "plan started on 2026-01-20"),
        "{before:#?}"
    );

    // Only the council that issued it links it, once.
    let elsewhere = fixtures::member_of(
        "E09000998",
        contract::common::v1::OrganisationKind::LocalAuthority,
        contract::common::v1::Role::SocialWorker,
    );
    let link = registry_wire::LinkNhsNumberRequest {
        local_id: Some(issued.clone()),
        nhs_number: nhs(NEWBORN),
    };
    let refused = backbone
        .as_(&elsewhere)
        .registry
        .link_nhs_number(link.clone())
        .await
        .expect_err("another council");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let linked = backbone
        .registry
        .link_nhs_number(link.clone())
        .await
        .expect("linked")
        .into_inner();
    let again = backbone
        .registry
        .link_nhs_number(link)
        .await
        .expect("the same link again changes nothing")
        .into_inner();
    assert_eq!(again.token, linked.token);
    let refused = backbone
        .registry
        .link_nhs_number(registry_wire::LinkNhsNumberRequest {
            local_id: Some(issued.clone()),
            nhs_number: nhs("9990000042"),
        })
        .await
        .expect_err("a second number");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().starts_with("local_id"), "{refused:?}");

    // From then on the NHS number finds the plan, its history and its
    // accesses (the lookup by local identifier above).
    let found = look_up_by(&mut backbone, nhs(NEWBORN), None, linked.token.clone())
        .await
        .expect("lookup by NHS number");
    assert_eq!(found.plans.len(), 1);
    assert_eq!(found.plans[0].plan_id, plan.plan_id);
    assert_eq!(found.plans[0].child_nhs_number, nhs(NEWBORN));
    assert_eq!(found.plans[0].child_local_id, None);
    assert_eq!(
        found.recent_accesses.len(),
        2,
        "{:?}",
        found.recent_accesses
    );
    let by_local = look_up_by(&mut backbone, None, Some(issued.clone()), None)
        .await
        .expect("the local identifier still finds the child");
    assert_eq!(by_local.nhs_number, nhs(NEWBORN));
    let history = fixtures::chronology_of(&mut backbone, nhs(NEWBORN), None).await;
    for said in [
        "referral received from Test organisation S999001: physical",
        "plan started on 2026-01-20",
        "NHS number linked on ",
    ] {
        assert!(
            history.iter().any(|line| line.starts_with(said)),
            "{said}: {history:#?}"
        );
    }
    assert!(
        history
            .iter()
            .any(|line| line.ends_with(&format!("to E09000999 local id {}", issued.value))),
        "{history:#?}"
    );
    let listed = unmatched(&mut backbone).await;
    assert_eq!((listed.children_on_plans, listed.matched), (2, 2));
    assert!(listed.children.is_empty());
    assert!((listed.match_rate_percent - 100.0).abs() < 1e-9);

    // The review, still naming the local identifier, changes the linked
    // plan; and after a restart the link holds.
    let changed = fixtures::hold(
        &mut backbone,
        &review,
        date(2026, 4, 20),
        outcome::Kind::Review(ReviewOutcome {
            decision: Some(review_outcome::Decision::ChangeCategory(
                AbuseCategory::Neglect.into(),
            )),
        }),
    )
    .await;
    let found = plans_of(&mut backbone, NEWBORN, changed).await;
    assert_eq!(found[0].category(), AbuseCategory::Neglect);
    let crate::Backbone { running, .. } = backbone._backbone.take().expect("backbone");
    drop(backbone);
    running.stop().await.expect("stop");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let found = plans_of(&mut backbone, NEWBORN, None).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].category(), AbuseCategory::Neglect);
    assert_eq!(
        look_up_by(&mut backbone, nhs(NEWBORN), None, None)
            .await
            .expect("lookup")
            .recent_accesses
            .len(),
        6,
        "every lookup, by either identifier, this one included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_shared_without_a_referral_is_in_front_of_the_mash_and_in_the_chronology() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let officer = fixtures::member_of(
        "P99001",
        contract::common::v1::OrganisationKind::Police,
        contract::common::v1::Role::PoliceOfficer,
    );
    let share = referral::ShareInformationRequest {
        idempotency_key: "MERLIN-0001".into(),
        // The body cannot say who shares: the caller's organisation does.
        shared_by: Some(referral::Referrer {
            organisation: Some(fixtures::organisation(
                "Y99001",
                contract::common::v1::OrganisationKind::GpPractice,
            )),
            person: Some(contract::common::v1::ContactDetails {
                name: "PC Test Officer".into(),
                phone: "0300 000 0999".into(),
                email: String::new(),
            }),
        }),
        child: Some(fixtures::the_child()),
        circumstances: "child present at a domestic incident".into(),
        police_risk_assessment: Some(referral::PoliceRiskAssessment {
            reference: "MERLIN-0001".into(),
            kind: referral::PoliceReportKind::InformationExchange.into(),
            overall_rating: referral::RiskRating::Low.into(),
            ..Default::default()
        }),
        local_authority: Some(council()),
        received_at: None,
    };
    let shared = backbone
        .as_(&officer)
        .referrals
        .share_information(share.clone())
        .await
        .expect("shared")
        .into_inner();
    let again = backbone
        .as_(&officer)
        .referrals
        .share_information(share.clone())
        .await
        .expect("the same again")
        .into_inner();
    assert_eq!(again.information_id, shared.information_id);
    let refused = backbone
        .as_(&officer)
        .referrals
        .share_information(referral::ShareInformationRequest {
            circumstances: " ".into(),
            ..share
        })
        .await
        .expect_err("nothing said");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("circumstances"),
        "{refused:?}"
    );

    let queue = backbone
        .as_(&fixtures::member_of(
            "E09000999",
            contract::common::v1::OrganisationKind::LocalAuthority,
            contract::common::v1::Role::MashOfficer,
        ))
        .referrals
        .list_awaiting_decision(referral::ListAwaitingDecisionRequest {
            local_authority_ods_code: "E09000999".into(),
            min_token: shared.token,
            purpose: "triage".into(),
            ..Default::default()
        })
        .await
        .expect("the MASH queue")
        .into_inner();
    assert!(queue.referrals.is_empty(), "no referral is opened");
    assert_eq!(
        queue.information.len(),
        1,
        "shared once: {:?}",
        queue.information
    );
    let item = &queue.information[0];
    assert_eq!(
        item.shared_by
            .as_ref()
            .and_then(|by| by.organisation.as_ref())
            .map(|o| o.ods_code.as_str()),
        Some("P99001")
    );
    chronology_saying(
        &mut backbone,
        "information shared by Test organisation P99001 (no referral): child present at a domestic incident; police risk assessment: low (MERLIN-0001)",
    )
    .await;
}
