//! The whole case of `safeguard demo`, asserted step by step.

use contract::notification::v1::NotificationKind;
use contract::registry::v1::PlanType;
use domain::calendar::Calendar;
use domain::clocks;
use domain::date::Date;

use crate::{spawn_backbone, spawn_backbone_over};

fn date(wire: Option<contract::common::v1::Date>) -> Date {
    let wire = wire.expect("a date");
    Date::from_ymd(wire.year, wire.month as u32, wire.day as u32).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_case_runs_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn_backbone(dir.path()).await;
    the_demo_case(&backbone.agencies(), crate::today()).await;
    backbone.running.stop().await.expect("stop");
}

/// The same case with the services' events carried by a real nats-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_case_runs_end_to_end_over_jetstream() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The backbone's realm (in its data directory), made first, so the
    // server knows the backbone's NATS key.
    let (realm, _) = trust::Realm::open_or_create(&dir.path().join("realm")).expect("realm");
    let nats = natsd::NatsServer::for_realm(&realm, 1, &[]).expect("nats-server");
    let backbone = spawn_backbone_over(dir.path(), Some(nats.url())).await;
    the_demo_case(&backbone.agencies(), crate::today()).await;
    backbone.running.stop().await.expect("stop");
}

/// The demo case against services wherever they run, asserted.
pub async fn the_demo_case(agencies: &safeguard::agencies::Agencies, today: Date) {
    let report = safeguard::demo::run_against(agencies, true, today)
        .await
        .expect("the demo runs");
    let calendar = Calendar::england_and_wales();

    // Due dates follow the statutory clocks.
    let received = Date::parse(&report.received_on).expect("date");
    assert_eq!(
        date(report.decision_due),
        clocks::referral_decision_due(&calendar, received)
    );
    let strategy = Date::parse(&report.strategy_held_on).expect("date");
    assert_eq!(date(report.icpc_due), clocks::icpc_due(&calendar, strategy));

    // The conference made a plan, and A&E sees it with whom to call, but
    // not its category.
    assert!(!report.plan_id.is_empty());
    assert_eq!(report.lookup.plans.len(), 1);
    let plan = &report.lookup.plans[0];
    assert_eq!(plan.plan_id, report.plan_id);
    assert_eq!(plan.r#type(), PlanType::ChildProtection);
    assert_eq!(plan.category, 0);
    let owner = plan.owner.clone().expect("owner");
    assert_eq!(owner.out_of_hours_phone, "01632 960999");
    assert_eq!(
        report.lookup.recent_accesses[0].purpose,
        "unscheduled care attendance"
    );

    // The council, the GP and the referrer are told.
    assert_eq!(report.council_told.kind(), NotificationKind::Access);
    assert_eq!(
        report
            .council_told
            .details
            .get("setting")
            .map(String::as_str),
        Some("emergency department")
    );
    assert_eq!(report.gp_told.kind(), NotificationKind::PlanStarted);
    assert_eq!(
        report.referrer_told.kind(),
        NotificationKind::ReferralOutcome
    );
    for told in [&report.council_told, &report.gp_told, &report.referrer_told] {
        assert_eq!(
            told.child_nhs_number.as_ref().map(|n| n.value.as_str()),
            Some(report.child.as_str())
        );
    }

    // The chronology tells the story in the order it happened. (The demo
    // runs a past case today: the scheduling and the replies, which carry
    // no date of their own, happened today, after the conference.)
    let story: Vec<&str> = report
        .chronology
        .iter()
        .map(|entry| entry.summary.as_str())
        .collect();
    assert!(
        story
            .iter()
            .any(|summary| summary.contains("conference scheduled")),
        "{story:#?}"
    );
    let expected = [
        "referral received",
        "MASH decision",
        "strategy discussion held",
        "section 47 enquiry concluded",
        "initial conference requested",
        "conference held",
        "plan started",
        "record viewed",
    ];
    let mut from = 0;
    for step in expected {
        let found = story[from..]
            .iter()
            .position(|summary| summary.contains(step))
            .unwrap_or_else(|| panic!("{step} missing after entry {from} of {story:#?}"));
        from += found + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_rpc_can_be_called_with_json_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn_backbone(dir.path()).await;
    let report = safeguard::demo::run(&backbone.agencies(), true, crate::today())
        .await
        .expect("demo");
    // Who calls is the nurse the identity flags name, proven by the
    // realm's certificate and token; the body says only what is asked.
    let nurse = safeguard::client::Identity {
        organisation: "RXX01".into(),
        organisation_name: String::new(),
        user: "nurse-1".into(),
        role: "UNSCHEDULED_CARE_CLINICIAN".into(),
        setting: "EMERGENCY_DEPARTMENT".into(),
        realm: backbone.running.realm.clone().expect("a development realm"),
        cert: None,
        cert_key: None,
        ca: None,
        token: None,
    };
    let request = format!(
        r#"{{"nhsNumber": {{"value": "{}"}}, "purpose": "json check",
            "careSetting": "CARE_SETTING_EMERGENCY_DEPARTMENT"}}"#,
        report.child
    );
    let response = safeguard::client::call(
        &backbone.url,
        &nurse,
        "safeguard.registry.v1.PlanRegistry/LookupChild",
        &request,
    )
    .await
    .expect("call");
    assert!(response.contains(&report.plan_id), "{response}");
    assert!(response.contains("01632 960999"), "{response}");
    let refused = safeguard::client::call(
        &backbone.url,
        &nurse,
        "safeguard.registry.v1.PlanRegistry/LookupChild",
        r#"{"purpose": "x"}"#,
    )
    .await
    .expect_err("no NHS number");
    assert!(
        refused.starts_with("InvalidArgument: nhs_number"),
        "{refused}"
    );
    // A body cannot say who is calling: the contract has no such field.
    let claimed = safeguard::client::call(
        &backbone.url,
        &nurse,
        "safeguard.registry.v1.PlanRegistry/LookupChild",
        r#"{"caller": {"userId": "someone-else"}, "purpose": "x"}"#,
    )
    .await
    .expect_err("no caller field");
    assert!(claimed.contains("caller"), "{claimed}");
    let unknown = safeguard::client::call(
        &backbone.url,
        &nurse,
        "safeguard.registry.v1.PlanRegistry/Nothing",
        "{}",
    )
    .await
    .expect_err("no such method");
    assert!(unknown.contains("has no method"), "{unknown}");
    backbone.running.stop().await.expect("stop");
}
