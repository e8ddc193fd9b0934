//! One settings file means the same thing everywhere: given to the
//! one-process backbone (as `safeguard up --config` reads it) and to each
//! service's own binary (`--config`), every setting changes what the
//! services answer, and changes it the same way in both.

use std::path::Path;
use std::time::Duration;

use contract::common::v1::{Date, NhsNumber, OrganisationKind, Role};
use contract::conference::v1 as conference;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry_wire;
use domain::calendar::Calendar;
use domain::clocks;
use service_core::settings::Settings;

use crate::fixtures::{self, Backbone, council, date, invitee, safeguarding_lead};
use crate::processes::Deployment;

/// Every setting away from its default.
const SETTINGS: &str = r#"{
    "visibility_months": 1,
    "quorum_social_care_required": true,
    "quorum_min_other_agencies": 1,
    "extra_bank_holidays": ["2026-09-09"],
    "removed_bank_holidays": ["2026-08-31"],
    "deadline_check_seconds": 1
}"#;

/// What the services answered that each setting decides.
#[derive(Debug, PartialEq)]
struct Observed {
    /// A referral received on Friday 28 August 2026: the late-summer bank
    /// holiday on Monday 31st is removed, so its decision is due that day.
    decision_due_over_a_removed_holiday: Option<Date>,
    /// A referral received on Tuesday 8 September 2026: Wednesday 9th is
    /// an extra bank holiday.
    decision_due_over_an_extra_holiday: Option<Date>,
    /// An initial conference whose clock starts on 1 September 2026.
    conference_due: Option<Date>,
    /// An outcome recorded with social care and one other agency present.
    outcome_with_one_other_agency: Result<(), String>,
    /// Plans shown of a child whose plan ended on 15 September 2026.
    plans_shown_after_an_end_in_september: usize,
    /// Whether the council is told of a missed decision within 15 s.
    missed_deadline_told: bool,
}

fn wire(date: domain::date::Date) -> Option<Date> {
    Some(service_core::validate::to_wire_date(date))
}

fn day(year: i32, month: u32, day: u32) -> domain::date::Date {
    domain::date::Date::from_ymd(year, month, day).expect("a date")
}

/// What the services should answer with `calendar`, and the quorum,
/// visibility and deadline check that make the last three answers.
fn answers(
    calendar: &Calendar,
    outcome_with_one_other_agency: Result<(), String>,
    plans_shown_after_an_end_in_september: usize,
    missed_deadline_told: bool,
) -> Observed {
    Observed {
        decision_due_over_a_removed_holiday: wire(clocks::referral_decision_due(
            calendar,
            day(2026, 8, 28),
        )),
        decision_due_over_an_extra_holiday: wire(clocks::referral_decision_due(
            calendar,
            day(2026, 9, 8),
        )),
        conference_due: wire(clocks::icpc_due(calendar, day(2026, 9, 1))),
        outcome_with_one_other_agency,
        plans_shown_after_an_end_in_september,
        missed_deadline_told,
    }
}

/// Ten in the morning, UTC, of a day.
fn at(year: i32, month: u32, day_of_month: u32) -> Option<prost_types::Timestamp> {
    let epoch = day(1970, 1, 1);
    let seconds = epoch.days_until(day(year, month, day_of_month)) * 86_400 + 10 * 3600;
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

async fn refer(
    backbone: &mut Backbone,
    key: &str,
    child: &str,
    received: Option<prost_types::Timestamp>,
) -> Option<Date> {
    let child = referral::Child {
        nhs_number: Some(NhsNumber {
            value: child.into(),
        }),
        ..fixtures::the_child()
    };
    backbone
        .referrals
        .submit_referral(fixtures::referral_of(key, child, received))
        .await
        .expect("submit")
        .into_inner()
        .decision_due
}

/// Plays what each setting decides against a backbone or the services.
async fn observe(backbone: &mut Backbone) -> Observed {
    let council_inbox = fixtures::member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let decision_due_over_a_removed_holiday =
        refer(backbone, "settings-1", "9990000018", at(2026, 8, 28)).await;
    let decision_due_over_an_extra_holiday =
        refer(backbone, "settings-2", "9990000026", at(2026, 9, 8)).await;
    let created = backbone
        .conferences
        .create_conference(conference::CreateConferenceRequest {
            kind: conference::ConferenceKind::Initial.into(),
            child_nhs_number: Some(NhsNumber {
                value: "9990000034".into(),
            }),
            child_name: "Sam Testchild".into(),
            local_authority: Some(council()),
            clock_starts: date(2026, 9, 1),
            idempotency_key: "settings-conference".into(),
            ..conference::CreateConferenceRequest::default()
        })
        .await
        .expect("create")
        .into_inner()
        .conference
        .expect("conference");
    let id = created.conference_id.clone();
    let present = vec![
        invitee(
            conference::InviteeRole::SocialCare,
            "E09000999",
            OrganisationKind::LocalAuthority,
        ),
        invitee(
            conference::InviteeRole::Police,
            "P99001",
            OrganisationKind::Police,
        ),
    ];
    backbone
        .conferences
        .update_invitations(conference::UpdateInvitationsRequest {
            conference_id: id.clone(),
            add: present[1..].to_vec(),
            remove: vec![],
        })
        .await
        .expect("invite");
    backbone
        .conferences
        .schedule_conference(conference::ScheduleConferenceRequest {
            conference_id: id.clone(),
            scheduled_for: at(2026, 9, 15),
            venue: "Civic Centre".into(),
        })
        .await
        .expect("schedule");
    backbone
        .conferences
        .record_attendance(conference::RecordAttendanceRequest {
            conference_id: id.clone(),
            present,
            held_on: date(2026, 9, 15),
        })
        .await
        .expect("attendance");
    let outcome_with_one_other_agency = backbone
        .conferences
        .record_outcome(conference::RecordOutcomeRequest {
            conference_id: id,
            outcome: Some(conference::Outcome {
                kind: Some(conference::outcome::Kind::Initial(
                    conference::InitialOutcome {
                        plan: false,
                        category: 0,
                    },
                )),
                quorum_override_reason: String::new(),
            }),
        })
        .await
        .map(|_| ())
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()));
    let ended_child = Some(NhsNumber {
        value: "9990000042".into(),
    });
    let plan = fixtures::transfer_in(backbone, "9990000042", date(2026, 1, 5)).await;
    let ended = backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: plan.plan.expect("plan").plan_id,
            end_date: date(2026, 9, 15),
            reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
        })
        .await
        .expect("end")
        .into_inner();
    let plans_shown_after_an_end_in_september = backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: ended_child,
            purpose: "settings check".into(),
            silent: true,
            min_token: ended.token,
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner()
        .plans
        .len();
    let missed_deadline_told = tokio::time::timeout(
        Duration::from_secs(15),
        fixtures::receive(
            backbone,
            council_inbox,
            &[note::NotificationKind::DeadlineMissed],
            0,
            1,
        ),
    )
    .await
    .is_ok();
    Observed {
        decision_due_over_a_removed_holiday,
        decision_due_over_an_extra_holiday,
        conference_due: created.due,
        outcome_with_one_other_agency,
        plans_shown_after_an_end_in_september,
        missed_deadline_told,
    }
}

fn settings_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("settings.json");
    std::fs::write(&path, SETTINGS).expect("write settings");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_settings_file_means_the_same_to_the_backbone_and_to_each_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = settings_file(dir.path());
    let settings = Settings::from_file(&path).expect("settings");
    let expected = answers(&settings.calendar().expect("calendar"), Ok(()), 0, true);
    // Each setting is away from its default, so an answer that ignored it
    // would differ.
    let default = answers(
        &Calendar::england_and_wales(),
        Err("not quorate".into()),
        1,
        false,
    );
    assert_ne!(
        expected.decision_due_over_a_removed_holiday,
        default.decision_due_over_a_removed_holiday
    );
    assert_ne!(
        expected.decision_due_over_an_extra_holiday,
        default.decision_due_over_an_extra_holiday
    );
    assert_ne!(expected.conference_due, default.conference_due);
    assert_ne!(
        expected.outcome_with_one_other_agency,
        default.outcome_with_one_other_agency
    );
    assert_ne!(
        expected.plans_shown_after_an_end_in_september,
        default.plans_shown_after_an_end_in_september
    );
    assert_ne!(expected.missed_deadline_told, default.missed_deadline_told);

    let running = crate::spawn_backbone_configured(&dir.path().join("backbone"), settings).await;
    let mut clients = fixtures::connect(&running.agencies());
    clients._backbone = Some(running);
    assert_eq!(observe(&mut clients).await, expected, "safeguard up");

    let deployment =
        Deployment::start_configured(1, &["--config".to_owned(), path.display().to_string()]).await;
    let mut services = fixtures::connect(&deployment.agencies());
    assert_eq!(
        observe(&mut services).await,
        expected,
        "the services as their own binaries"
    );
}
