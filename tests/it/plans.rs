//! The plan registry in the backbone: a conference outcome becomes a plan,
//! and an emergency department looking the child up sees it at once (with
//! what its role may see), while the lookup is recorded.

use contract::common::v1::{AbuseCategory, CareSetting, NhsNumber, OrganisationKind, Role};
use contract::registry::v1 as registry_wire;
use tonic::Code;

use crate::fixtures::*;

#[tokio::test]
async fn an_emergency_department_sees_the_plan_and_whom_to_call_and_the_lookup_is_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = spawn(dir.path()).await;
    set_contacts(&mut backbone, "01632 960100", "01632 960999").await;
    let planned = make_plan(&mut backbone).await;
    let decided = planned.conference;

    // With the chair's token the nurse sees the plan at once.
    let seen = lookup(&mut backbone, nurse(), false, planned.token).await;
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
    let seen = lookup(&mut backbone, officer, true, None).await;
    assert_eq!(seen.plans[0].category, i32::from(AbuseCategory::Physical));
    assert_eq!(seen.recent_accesses.len(), 2);

    // Was the child on a plan the day before the conference? No.
    let before = backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: child(),
            purpose: "audit".into(),
            as_of: date(2026, 1, 19),
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("point in time")
        .into_inner();
    assert!(before.plans.is_empty());

    // Asked for the plans alone, the answer leaves the accesses out; the
    // lookup is recorded all the same.
    let plans_only = backbone
        .as_(&nurse())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: child(),
            purpose: "unscheduled care attendance".into(),
            view: registry_wire::LookupView::Plans.into(),
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("plans only")
        .into_inner();
    assert_eq!(plans_only.plans.len(), 1);
    assert!(plans_only.recent_accesses.is_empty());
    let seen = lookup(&mut backbone, nurse(), false, plans_only.token).await;
    assert_eq!(
        seen.recent_accesses.len(),
        5,
        "the nurse's, the officer's, the lead's, the plans-only and this"
    );

    let chronology = backbone
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            local_id: None,
            purpose: "a test of the backbone".into(),
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
        .as_(&nurse())
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            local_id: None,
            purpose: "a test of the backbone".into(),
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
            gp_practice: None,
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
    let linked = backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
            plan_id: planned.plan_id.clone(),
            baby_nhs_number: child(),
            born_on: date(2026, 2, 27),
        })
        .await
        .expect("link")
        .into_inner();
    let seen = lookup(&mut backbone, safeguarding_lead(), true, linked.token).await;
    assert_eq!(
        seen.plans[0].plan_id, planned.plan_id,
        "found by the baby's NHS number"
    );
    let status = backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
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
        plan_id: planned.plan_id.clone(),
        end_date: date(2026, 6, 1),
        reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
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
        .as_(&nurse())
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
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
        .as_(&nurse())
        .registry
        .record_looked_after(registry_wire::RecordLookedAfterRequest {
            gp_practice: None,
            child_local_id: None,
            child_nhs_number: child(),
            start_date: date(2026, 1, 5),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect_err("a nurse does not record plans");
    assert_eq!(status.code(), Code::PermissionDenied);
}
