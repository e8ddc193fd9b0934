//! The conference scheduler in the backbone: a section 47 enquiry requests
//! the initial conference by itself; the conference runs to a plan, and the
//! first review is requested on the statutory timetable.

use contract::common::v1::{AbuseCategory, NhsNumber, OrganisationKind, Role};
use contract::conference::v1::*;
use tonic::Code;

use crate::fixtures::*;

#[tokio::test]
async fn a_section_47_enquiry_leads_to_a_conference_a_plan_and_a_review() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let referral_id = refer_to_conference(&mut backbone).await;

    let icpc = conferences(&mut backbone, 1).await.remove(0);
    assert_eq!(icpc.kind(), ConferenceKind::Initial);
    assert_eq!(icpc.referral_id, referral_id);
    // 15 working days after the strategy discussion of Tuesday 6 January 2026.
    assert_eq!(icpc.due, date(2026, 1, 27));
    assert_eq!(
        icpc.child_nhs_number.as_ref().map(|n| n.value.as_str()),
        Some("9990000018")
    );
    let id = icpc.conference_id.clone();

    let police = invitee(InviteeRole::Police, "P99001", OrganisationKind::Police);
    let gp = invitee(InviteeRole::Gp, "Y99001", OrganisationKind::GpPractice);
    let school = invitee(InviteeRole::School, "S999001", OrganisationKind::School);
    let social_care = invitee(
        InviteeRole::SocialCare,
        "E09000999",
        OrganisationKind::LocalAuthority,
    );
    let updated = backbone
        .conferences
        .update_invitations(UpdateInvitationsRequest {
            conference_id: id.clone(),
            add: vec![police.clone(), gp.clone(), school.clone()],
            remove: vec![],
        })
        .await
        .expect("invite")
        .into_inner();
    assert_eq!(
        updated.conference.expect("conference").invitees.len(),
        5,
        "parent, social care and three agencies"
    );

    // An outcome before the conference is held is refused.
    let plan = Outcome {
        kind: Some(outcome::Kind::Initial(InitialOutcome {
            plan: true,
            category: AbuseCategory::Physical.into(),
        })),
        quorum_override_reason: String::new(),
    };
    let status = backbone
        .conferences
        .record_outcome(RecordOutcomeRequest {
            conference_id: id.clone(),
            outcome: Some(plan.clone()),
        })
        .await
        .expect_err("not held");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );

    backbone
        .conferences
        .schedule_conference(ScheduleConferenceRequest {
            conference_id: id.clone(),
            scheduled_for: Some(prost_types::Timestamp {
                seconds: 1_768_900_000,
                nanos: 0,
            }),
            venue: "Civic Centre, room 2".into(),
        })
        .await
        .expect("schedule");
    backbone
        .conferences
        .record_invite_reply(RecordInviteReplyRequest {
            conference_id: id.clone(),
            role: InviteeRole::Gp.into(),
            organisation_ods_code: "Y99001".into(),
            response: InviteResponse::SendingReport.into(),
        })
        .await
        .expect("reply");
    backbone
        .conferences
        .record_report_received(RecordReportReceivedRequest {
            conference_id: id.clone(),
            role: InviteeRole::Gp.into(),
            organisation_ods_code: "Y99001".into(),
            text: "Seen twice with minor injuries; immunisations behind.".into(),
            author: "Dr Test Practitioner".into(),
            written_on: date(2026, 1, 16),
        })
        .await
        .expect("report");
    // A health visitor and a school nurse of one trust are one agency: with
    // social care, not quorate by the default rule (two other agencies).
    let health_visitor = invitee(
        InviteeRole::HealthVisitor,
        "RXX01",
        OrganisationKind::NhsTrust,
    );
    let school_nurse = invitee(
        InviteeRole::SchoolNurse,
        "RXX01",
        OrganisationKind::NhsTrust,
    );
    inquorate(
        &mut backbone,
        &id,
        vec![social_care.clone(), health_visitor, school_nurse],
        &plan,
    )
    .await;
    // Social care and the police only: not quorate by the default rule.
    inquorate(
        &mut backbone,
        &id,
        vec![social_care.clone(), police.clone()],
        &plan,
    )
    .await;
    backbone
        .conferences
        .record_attendance(RecordAttendanceRequest {
            conference_id: id.clone(),
            present: vec![social_care, police, school],
            held_on: date(2026, 1, 20),
        })
        .await
        .expect("attendance corrected");
    let decided = backbone
        .conferences
        .record_outcome(RecordOutcomeRequest {
            conference_id: id.clone(),
            outcome: Some(plan),
        })
        .await
        .expect("outcome")
        .into_inner()
        .conference
        .expect("conference");
    assert!(!decided.plan_id.is_empty());
    let gp_view = decided
        .invitees
        .iter()
        .find(|invitee| invitee.role() == InviteeRole::Gp)
        .expect("gp");
    assert!(gp_view.report_received && !gp_view.attended);
    // The chair has the GP's report in front of them...
    assert_eq!(decided.reports.len(), 1, "{:?}", decided.reports);
    let report = &decided.reports[0];
    assert_eq!(
        (
            report.organisation_ods_code.as_str(),
            report.author.as_str(),
            report.written_on
        ),
        ("Y99001", "Dr Test Practitioner", date(2026, 1, 16))
    );
    assert!(report.text.contains("immunisations behind"));
    // ...and sees who neither came nor wrote: the trust, asked to attend
    // when the quorum was first tried.
    let silent: Vec<(InviteeRole, String)> = decided
        .neither_attended_nor_reported
        .iter()
        .map(|invitee| {
            (
                invitee.role(),
                invitee.organisation.clone().unwrap_or_default().ods_code,
            )
        })
        .collect();
    assert_eq!(
        silent,
        vec![
            (InviteeRole::HealthVisitor, "RXX01".to_owned()),
            (InviteeRole::SchoolNurse, "RXX01".to_owned()),
        ]
    );
    // An invited agency reads its own report, not another's.
    let seen_by = |ods: &str, kind, role| {
        let who = member_of(ods, kind, role);
        let id = id.clone();
        let clients = backbone.as_(&who);
        async move {
            let mut conferences = clients.conferences;
            conferences
                .get_conference(GetConferenceRequest {
                    conference_id: id,
                    purpose: "the conference".into(),
                    min_token: None,
                })
                .await
                .expect("get")
                .into_inner()
                .conference
                .expect("conference")
                .reports
                .len()
        }
    };
    assert_eq!(
        seen_by(
            "Y99001",
            OrganisationKind::GpPractice,
            Role::GeneralPractitioner
        )
        .await,
        1
    );
    assert_eq!(
        seen_by("P99001", OrganisationKind::Police, Role::PoliceOfficer).await,
        0
    );

    // The first review is requested by itself, 3 months after the ICPC.
    let review = conferences(&mut backbone, 1)
        .await
        .into_iter()
        .find(|conference| conference.kind() == ConferenceKind::Review)
        .expect("review requested");
    assert_eq!(review.due, date(2026, 4, 20));
    assert_eq!(review.plan_id, decided.plan_id);
}

/// `present` attended conference `id`, which is then too few agencies for
/// its outcome: refused as the wrong moment, with no override.
async fn inquorate(backbone: &mut Backbone, id: &str, present: Vec<Invitee>, plan: &Outcome) {
    backbone
        .conferences
        .record_attendance(RecordAttendanceRequest {
            conference_id: id.to_owned(),
            present,
            held_on: date(2026, 1, 20),
        })
        .await
        .expect("attendance");
    let status = backbone
        .conferences
        .record_outcome(RecordOutcomeRequest {
            conference_id: id.to_owned(),
            outcome: Some(plan.clone()),
        })
        .await
        .expect_err("inquorate");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn only_the_local_authority_changes_conferences_and_unknown_ones_are_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let mut nurse = chair();
    nurse.organisation = Some(organisation("RXX01", OrganisationKind::NhsTrust));
    nurse.role = Role::UnscheduledCareClinician.into();
    let status = backbone
        .as_(&nurse)
        .conferences
        .cancel_conference(CancelConferenceRequest {
            conference_id: "anything".into(),
            reason: "x".into(),
        })
        .await
        .expect_err("not entitled");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    let status = backbone
        .conferences
        .cancel_conference(CancelConferenceRequest {
            conference_id: "no-such-conference".into(),
            reason: "x".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
    let status = backbone
        .conferences
        .create_conference(CreateConferenceRequest {
            kind: ConferenceKind::TransferIn.into(),
            child_nhs_number: Some(NhsNumber {
                value: "9990000019".into(),
            }),
            local_authority: Some(council()),
            clock_starts: date(2026, 1, 5),
            idempotency_key: "t-1".into(),
            ..CreateConferenceRequest::default()
        })
        .await
        .expect_err("bad nhs number");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("child_nhs_number"),
        "{}",
        status.message()
    );
}
