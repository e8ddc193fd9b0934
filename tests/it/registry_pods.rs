//! The registry as a primary and a read replica, each its own process
//! beside the other services over a real nats-server: the demo case with
//! every registry call on the replica, a steady stream of lookups over
//! both pods while each in turn is killed with kill -9, a restarted
//! replica that must not answer before it has the primary's plans, plan
//! writes through a replica, and flags that cannot work.

use std::time::{Duration, Instant};

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, ConsistencyToken, NhsNumber, OrganisationKind, Role,
};
use contract::notification::v1::NotificationKind;
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use safeguard::agencies::Agencies;
use safeguard::demo::Endpoints;
use trust::client::Authorised;

use crate::fixtures::{
    chair, council, date, member_of, nhs, nurse, organisation, safeguarding_lead,
};
use crate::processes::{
    Deployment, assert_nothing_lost_or_repeated, published_up_to, told, transient,
};

const PRIMARY: &str = "plan-registry";
const REPLICA: &str = "plan-registry-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_case_runs_with_every_registry_call_on_a_read_replica() {
    let deployment = Deployment::start_with(2).await;
    // Contact numbers are written through the replica (forwarded to the
    // primary), the nurse's lookup waits there for the chair's outcome, the
    // council is told of it, and the chronology is read there.
    let agencies = deployment.agencies_at(Endpoints {
        registry: deployment.url(REPLICA),
        ..deployment.endpoints()
    });
    crate::scenario::the_demo_case(&agencies, service_core::validate::today()).await;

    // A caseload loaded, and a local identifier linked, through the
    // replica: the primary writes them, and the replica answers once it
    // shows them.
    let social_worker = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let mut on_replica = registry(&agencies, &deployment.url(REPLICA), &social_worker);
    let report = on_replica
        .import_caseload(futures_util::stream::iter([wire::ImportCaseloadChunk {
            local_authority: Some(council()),
            csv: "local_id,child_name,plan_type,start_date,lead_social_worker_name,lead_social_worker_phone\n\
                  UASC-9,Ali Testchild,LAC,2026-01-05,Sam Worker,0300 000 0102\n"
                .into(),
        }]))
        .await
        .expect("imported through the replica")
        .into_inner();
    assert_eq!(
        (report.imported, report.children, report.with_nhs_number),
        (1, 1, 0)
    );
    on_replica
        .link_nhs_number(wire::LinkNhsNumberRequest {
            local_id: Some(contract::common::v1::LocalChildId {
                local_authority_ods_code: "E09000999".into(),
                value: "UASC-9".into(),
            }),
            nhs_number: nhs("9990000115"),
        })
        .await
        .expect("linked through the replica");
    let found = on_replica
        .lookup_child(wire::LookupChildRequest {
            nhs_number: nhs("9990000115"),
            purpose: "asylum-seeking child's health assessment".into(),
            silent: true,
            ..wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(found.plans.len(), 1, "{found:?}");
    assert_eq!(found.plans[0].r#type(), wire::PlanType::LookedAfter);
}

/// One lookup of `child`, on the first of `pods` that takes the
/// connection, as a load balancer would route it, asserting it shows the
/// child's plan: its token, or `None` if it failed once sent (it may have
/// been audited: a retry would be a second lookup) or no pod answered.
async fn look_up(
    agencies: &Agencies,
    pods: &[String],
    child: &str,
    purpose: &str,
) -> Option<ConsistencyToken> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        for url in pods {
            let channel = agencies.channel("RXX01", url).expect("a channel");
            if channel_ready(channel).await.is_err() {
                continue;
            }
            let looked = registry(agencies, url, &nurse())
                .lookup_child(nurse_looks_up(child, purpose))
                .await;
            match looked {
                Ok(response) => {
                    let response = response.into_inner();
                    // Never "no plan" from a pod that has not caught up.
                    assert_eq!(response.plans.len(), 1, "{purpose} on {url}: {response:?}");
                    return response.token;
                }
                Err(status) => {
                    assert!(transient(&status), "lookup refused: {status:?}");
                    return None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A silent lookup on `url` once it reflects `after`: who looked, newest
/// first.
async fn accesses_on(
    agencies: &Agencies,
    url: String,
    child: &str,
    after: ConsistencyToken,
) -> (Vec<String>, ConsistencyToken) {
    let response = registry(agencies, &url, &safeguarding_lead())
        .lookup_child(wire::LookupChildRequest {
            silent: true,
            min_token: Some(after),
            ..nurse_looks_up(child, "who looked")
        })
        .await
        .expect("lookup")
        .into_inner();
    let purposes = response
        .recent_accesses
        .iter()
        .map(|access| access.purpose.clone())
        .collect();
    (purposes, response.token.expect("token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_on_either_pod_are_told_once_and_survive_kill_9_of_either() {
    let mut deployment = Deployment::start_with(2).await;
    let agencies = deployment.agencies();
    let report = safeguard::demo::run_against(&agencies, true, service_core::validate::today())
        .await
        .expect("a plan to look up");
    let child = report.child.clone();
    let pods = [deployment.url(PRIMARY), deployment.url(REPLICA)];
    // Forty lookups, alternating between the pods; a pod that is down
    // sends its lookups to the other.
    let looker = {
        let (pods, child, agencies) = (pods.clone(), child.clone(), agencies.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for serial in 0..40 {
                let purpose = format!("steady lookup {serial}");
                let order = [pods[serial % 2].clone(), pods[(serial + 1) % 2].clone()];
                if let Some(token) = look_up(&agencies, &order, &child, &purpose).await {
                    acknowledged.push((purpose, token, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    deployment.kill(REPLICA);
    tokio::time::sleep(Duration::from_millis(100)).await;
    deployment.restart(REPLICA).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    deployment.kill(PRIMARY);
    let primary_down = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let primary_up = Instant::now();
    deployment.restart(PRIMARY).await;
    let acknowledged = looker.await.expect("looker");
    let while_primary_down = acknowledged
        .iter()
        .filter(|(_, _, at)| *at > primary_down && *at < primary_up)
        .count();
    println!("registry primary down: lookups acknowledged meanwhile: {while_primary_down}");
    // One pod or the other was always up: only a lookup in flight to a pod
    // as it was killed can go unanswered.
    assert!(
        acknowledged.len() >= 38,
        "lookups were acknowledged throughout: {}",
        acknowledged.len()
    );
    assert!(
        while_primary_down >= 1,
        "the replica answered lookups while the primary was down"
    );

    // The council is told of each lookup once, whichever pod audited it.
    let council = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let purposes: Vec<String> = acknowledged.iter().map(|(p, _, _)| p.clone()).collect();
    let told = told(
        &deployment,
        council,
        NotificationKind::Access,
        "purpose",
        &purposes,
    )
    .await;
    told.print("kill -9 of each registry pod under lookups");
    assert_nothing_lost_or_repeated(&deployment, &told);

    // Both pods show the same list of who looked.
    let everything = ConsistencyToken {
        positions: acknowledged
            .iter()
            .flat_map(|(_, token, _)| token.positions.clone())
            .collect(),
    };
    let (on_primary, token) =
        accesses_on(&agencies, pods[0].clone(), &child, everything.clone()).await;
    let mut both = everything;
    both.positions.extend(token.positions);
    let (on_replica, _) = accesses_on(&agencies, pods[1].clone(), &child, both).await;
    assert_eq!(on_replica[0], "who looked");
    assert_eq!(
        on_replica[1..],
        on_primary[..on_replica.len() - 1],
        "the pods agree on who looked"
    );
    assert!(
        on_primary.contains(&"steady lookup 39".to_owned()),
        "{on_primary:?}"
    );
}

fn transfer_in(child: &str) -> wire::RecordTransferInRequest {
    wire::RecordTransferInRequest {
        gp_practice: None,
        child_local_id: None,
        child_nhs_number: Some(NhsNumber {
            value: child.to_owned(),
        }),
        category: AbuseCategory::Neglect.into(),
        start_date: date(2026, 1, 5),
        local_authority: Some(council()),
        previous_local_authority: Some(organisation("E09000998", OrganisationKind::LocalAuthority)),
        lead_social_worker: None,
    }
}

/// An A&E nurse looking `child` up.
fn nurse_looks_up(child: &str, purpose: &str) -> wire::LookupChildRequest {
    wire::LookupChildRequest {
        nhs_number: Some(NhsNumber {
            value: child.to_owned(),
        }),
        purpose: purpose.to_owned(),
        care_setting: CareSetting::EmergencyDepartment.into(),
        ..wire::LookupChildRequest::default()
    }
}

/// A nurse's lookup of `child`, answered.
async fn look(
    registry: &mut PlanRegistryClient<Authorised>,
    child: &str,
    purpose: &str,
) -> wire::LookupChildResponse {
    registry
        .lookup_child(nurse_looks_up(child, purpose))
        .await
        .expect("lookup")
        .into_inner()
}

/// The registry at `url`, acting as `who`.
fn registry(
    agencies: &Agencies,
    url: &str,
    who: &CallerIdentity,
) -> PlanRegistryClient<Authorised> {
    agencies
        .at(Endpoints::one(url))
        .clients(who)
        .expect("credentials")
        .registry
}

/// Whether `channel` connects now.
async fn channel_ready(channel: tonic::transport::Channel) -> Result<(), String> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    client
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|status| status.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_serves_only_with_the_primarys_plans_and_refuses_writes_without_it() {
    let mut deployment = Deployment::start_with(2).await;
    deployment.kill(REPLICA);
    // While the replica is away, a thousand events before a new plan: a
    // replica that answered before reading them would say it has none.
    let child = domain::NhsNumber::test_number(7001).to_string();
    let agencies = deployment.agencies();
    let lookups: Vec<_> = (0..16)
        .map(|worker| {
            // A person each: one person's lookups are limited per minute.
            let lead = CallerIdentity {
                user_id: format!("named-nurse-{worker}"),
                ..safeguarding_lead()
            };
            let mut primary = registry(&agencies, &deployment.url(PRIMARY), &lead);
            let child = child.clone();
            tokio::spawn(async move {
                for serial in 0..64 {
                    primary
                        .lookup_child(wire::LookupChildRequest {
                            nhs_number: Some(NhsNumber {
                                value: child.clone(),
                            }),
                            purpose: format!("before the plan {worker}-{serial}"),
                            silent: true,
                            ..wire::LookupChildRequest::default()
                        })
                        .await
                        .expect("lookup");
                }
            })
        })
        .collect();
    for lookup in lookups {
        lookup.await.expect("lookups");
    }
    let recorded = registry(&agencies, &deployment.url(PRIMARY), &chair())
        .record_transfer_in(transfer_in(&child))
        .await
        .expect("a plan recorded on the primary")
        .into_inner();
    let plan = recorded.plan.expect("plan");
    // What the replica promises: everything published when it starts.
    let recorded_to = recorded.token.expect("token").positions[0].position;
    published_up_to(&deployment, PRIMARY, recorded_to).await;

    deployment.restart(REPLICA).await;
    let said = deployment.log_of(REPLICA);
    assert!(said.contains("caught up with the primary"), "{said}");
    let mut replica = registry(&agencies, &deployment.url(REPLICA), &chair());
    let mut replica_nurse = registry(&agencies, &deployment.url(REPLICA), &nurse());
    let looked = look(&mut replica_nurse, &child, "first lookup after a restart").await;
    assert_eq!(looked.plans.len(), 1, "{looked:?}");
    assert_eq!(looked.plans[0].plan_id, plan.plan_id);

    // Plan writes through the replica, and both pods tell the same story of
    // an unborn plan, for the mother and for the baby.
    let (mother, baby) = (
        domain::NhsNumber::test_number(7003).to_string(),
        domain::NhsNumber::test_number(7004).to_string(),
    );
    let unborn = replica
        .record_unborn_plan(wire::RecordUnbornPlanRequest {
            gp_practice: None,
            mother_nhs_number: Some(NhsNumber {
                value: mother.clone(),
            }),
            expected_date_of_delivery: date(2026, 9, 1),
            category: AbuseCategory::Neglect.into(),
            start_date: date(2026, 6, 1),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect("an unborn plan through the replica")
        .into_inner();
    let linked = replica
        .link_birth(wire::LinkBirthRequest {
            plan_id: unborn.plan.expect("plan").plan_id,
            baby_nhs_number: Some(NhsNumber {
                value: baby.clone(),
            }),
            born_on: date(2026, 8, 28),
        })
        .await
        .expect("a birth linked through the replica")
        .into_inner();
    let token = linked.token.expect("token");
    for person in [&mother, &baby] {
        let on_primary = story(&agencies, deployment.url(PRIMARY), person, &token).await;
        let on_replica = story(&agencies, deployment.url(REPLICA), person, &token).await;
        assert!(
            on_primary.iter().any(|line| line.starts_with("born on")),
            "{on_primary:?}"
        );
        assert_eq!(on_replica, on_primary, "the pods agree on {person}'s story");
    }

    // Without the primary, the replica still answers lookups, and refuses
    // plan writes with a reason, recording nothing.
    deployment.kill(PRIMARY);
    let refused = replica
        .record_transfer_in(transfer_in(
            &domain::NhsNumber::test_number(7002).to_string(),
        ))
        .await
        .expect_err("no primary");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("primary"), "{refused:?}");
    let looked = look(&mut replica_nurse, &child, "lookup without the primary").await;
    assert_eq!(looked.plans.len(), 1, "{looked:?}");
    // The refused write made nothing.
    deployment.restart(PRIMARY).await;
    let mut primary = registry(&agencies, &deployment.url(PRIMARY), &nurse());
    let refused_child = domain::NhsNumber::test_number(7002).to_string();
    let looked = look(&mut primary, &refused_child, "after the refused write").await;
    assert!(looked.plans.is_empty(), "{looked:?}");
}

/// A child's chronology on `url` once it reflects `after`: its summaries.
async fn story(
    agencies: &Agencies,
    url: String,
    child: &str,
    after: &ConsistencyToken,
) -> Vec<String> {
    registry(agencies, &url, &chair())
        .child_chronology(wire::ChildChronologyRequest {
            local_id: None,
            purpose: "a test of the backbone".into(),
            nhs_number: Some(NhsNumber {
                value: child.to_owned(),
            }),
            min_token: Some(after.clone()),
        })
        .await
        .expect("chronology")
        .into_inner()
        .entries
        .into_iter()
        .map(|entry| entry.summary)
        .collect()
}

#[test]
fn registry_pod_flags_that_cannot_work_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let nats = ["--nats", "nats://127.0.0.1:1"];
    let refusals: [(&[&str], &str); 6] = [
        (
            &["--registry-pods", "2", "--pod", "2"],
            "--pod 2: only 2 registry pods run",
        ),
        (
            &["--registry-pods", "0"],
            "--registry-pods 0: expected 1 to 16",
        ),
        (&["--pod", "primary"], "--pod primary: expected an ordinal"),
        (&["--pod", "-1"], "--pod -1: expected an ordinal"),
        (
            &["--registry-pods", "2"],
            "registry pods share their events over NATS",
        ),
        (
            &[
                &nats[..],
                &["--registry-pods", "2", "--pod", "plan-registry-1"],
            ]
            .concat(),
            "a read replica needs the primary's address (--producer plan-registry=URL)",
        ),
    ];
    for (flags, reason) in refusals {
        let ran = std::process::Command::new(crate::processes::binaries().join("plan-registry"))
            .arg("--data-dir")
            .arg(dir.path().join("registry"))
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .output()
            .expect("run plan-registry");
        let said = String::from_utf8_lossy(&ran.stderr);
        assert!(!ran.status.success(), "{flags:?} started");
        assert!(said.contains(reason), "{flags:?}: {said}");
    }
    // Refused before anything was written.
    assert!(!dir.path().join("registry").exists());
}
