//! Notifications in the backbone: each partner is told what concerns it, at
//! least once, in order, and resumes after what it acknowledged.

use contract::common::v1::{AbuseCategory, OrganisationKind, Role};
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use tonic::Code;

use crate::fixtures::*;

#[tokio::test]
async fn each_partner_is_told_what_concerns_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    let planned = make_plan(&mut backbone).await;

    // The school that referred is told the outcome.
    let school = member_of(
        "S999001",
        OrganisationKind::School,
        Role::DesignatedSafeguardingLead,
    );
    let outcome = receive(
        &mut backbone,
        school,
        &[note::NotificationKind::ReferralOutcome],
        0,
        1,
    )
    .await;
    assert!(
        outcome[0].summary.contains("strategy discussion"),
        "{}",
        outcome[0].summary
    );

    // The GP practice, invited, is told the plan started.
    let gp = member_of(
        "Y99001",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    );
    let started = receive(
        &mut backbone,
        gp.clone(),
        &[note::NotificationKind::PlanStarted],
        0,
        1,
    )
    .await;
    assert_eq!(started[0].child_nhs_number, child());

    // An A&E lookup is reported to the council; a silent one is not.
    let council_inbox = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let mut silent_nurse = safeguarding_lead();
    silent_nurse.display_name = "Silent Nurse".into();
    // The chair's token: the plan is there when the nurse looks.
    lookup(&mut backbone, silent_nurse, true, planned.token.clone()).await;
    lookup(&mut backbone, nurse(), false, None).await;
    let accesses = receive(
        &mut backbone,
        council_inbox.clone(),
        &[note::NotificationKind::Access],
        0,
        1,
    )
    .await;
    assert!(
        accesses[0].summary.contains("viewed by"),
        "{}",
        accesses[0].summary
    );
    assert_eq!(
        accesses[0].details.get("setting").map(String::as_str),
        Some("emergency department")
    );

    // Acknowledge, then resume: only later notifications arrive.
    backbone
        .as_(&council_inbox)
        .notifications
        .acknowledge(note::AcknowledgeRequest {
            subscriber: "inbox".into(),
            recipient_ods_code: "E09000999".into(),
            sequence: accesses[0].sequence,
        })
        .await
        .expect("acknowledge");
    lookup(&mut backbone, nurse(), false, None).await;
    let next = receive(
        &mut backbone,
        council_inbox,
        &[note::NotificationKind::Access],
        0,
        1,
    )
    .await;
    assert!(
        next[0].sequence > accesses[0].sequence,
        "resumed after the acknowledged one"
    );

    // Nobody reads another organisation's notifications.
    let status = backbone
        .as_(&gp)
        .notifications
        .subscribe(note::SubscribeRequest {
            subscriber: "inbox".into(),
            recipient_ods_code: "E09000999".into(),
            ..note::SubscribeRequest::default()
        })
        .await
        .expect_err("not its own");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_missed_decision_deadline_is_reported_to_the_council() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    // Received in December 2025 and never decided: long overdue.
    backbone
        .referrals
        .submit_referral(referral::SubmitReferralRequest {
            idempotency_key: "late-0001".into(),
            referrer: Some(referral::Referrer {
                organisation: Some(organisation("S999001", OrganisationKind::School)),
                person: None,
            }),
            child: Some(referral::Child {
                nhs_number: child(),
                date_of_birth: date(2019, 4, 2),
                ..referral::Child::default()
            }),
            concerns: "neglect".into(),
            category_of_concern: AbuseCategory::Neglect.into(),
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
        .expect("submit");
    let council_inbox = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let missed = receive(
        &mut backbone,
        council_inbox,
        &[note::NotificationKind::DeadlineMissed],
        0,
        1,
    )
    .await;
    assert!(
        missed[0].summary.contains("2025-12-22"),
        "{}",
        missed[0].summary
    );
}
