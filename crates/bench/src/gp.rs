//! `gp`: a plan started, to the document in the practice's MESH inbox. The
//! backbone runs in this process with the GP bridge beside it, NHS England's
//! MESH sandbox (the real MESH API, started as the tests start it) in its
//! own. Each plan is recorded one at a time; the same plan's notification
//! reaching a gRPC subscriber of the practice is the baseline, so the ratio
//! is what MESH and the bridge add.

use std::time::{Duration, Instant};

use contract::common::v1::{
    CallerIdentity, CareSetting, NhsNumber, Organisation, OrganisationKind, Role,
};
use contract::notification::v1::notification_client::NotificationClient;
use contract::notification::v1::{NotificationKind, SubscribeRequest};
use contract::registry::v1::RecordLookedAfterRequest;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use gp_bridge::sandbox::{self, Sandbox};

use crate::report::{figure, percentile_ms};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    plans: usize,
}

impl Scale {
    pub fn new(quick: bool) -> Scale {
        Scale {
            plans: if quick { 30 } else { 200 },
        }
    }
}

fn organisation(ods: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: format!("Bench organisation {ods}"),
        kind: kind.into(),
    }
}

fn member(ods: &str, kind: OrganisationKind, role: Role) -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation(ods, kind)),
        user_id: format!("bench-{ods}"),
        display_name: "Bench User".into(),
        role: role.into(),
        care_setting: CareSetting::Other.into(),
    }
}

/// Valid NHS numbers in the 999 test range, from 999100000x.
fn test_numbers(count: usize) -> Vec<String> {
    (100_000_u64..)
        .flat_map(|n| (0..10).map(move |check| format!("999{n:06}{check}")))
        .filter(|candidate| domain::NhsNumber::parse(candidate).is_ok())
        .take(count)
        .collect()
}

pub async fn run(scale: Scale) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let running = safeguard::backbone::start(&safeguard::backbone::Config {
        data_dir: dir.path().join("backbone"),
        listen: ([127, 0, 0, 1], 0).into(),
        settings: service_core::settings::Settings {
            deadline_check_seconds: 24 * 60 * 60,
            ..Default::default()
        },
        ..safeguard::backbone::Config::default()
    })
    .await?;
    let url = format!("https://{}", running.address);
    let realm_dir = running.realm.clone().ok_or("no development realm")?;
    let realm = trust::Realm::open(&realm_dir)?;
    let (sandbox, client) = Sandbox::start_in_realm(dir.path(), &realm).await?;
    let (ca, _, _) = realm.tls_files();
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, Error> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let config = gp_bridge::config::Config {
        notifications: url.clone(),
        sender: gp_bridge::config::Sender {
            ods_code: "X26".into(),
            name: "Safeguard bench".into(),
        },
        mesh: gp_bridge::config::Mesh {
            url: sandbox.url.clone(),
            mailbox: sandbox::BRIDGE_MAILBOX.into(),
            password_file: write("password", sandbox::PASSWORD)?,
            shared_key_file: write("shared-key", &sandbox.shared_key)?,
            ca: Some(ca),
            certificate: Some(write("client.pem", &client.certificate)?),
            key: Some(write("client.key", &client.key)?),
            workflow_id: gp_bridge::config::SEND_DOCUMENT_WORKFLOW.into(),
        },
        practices: vec![gp_bridge::config::Practice {
            ods_code: "Y99001".into(),
            name: "Bench Surgery".into(),
            mailbox: "Y99001GP".into(),
            system: gp_bridge::systems::ClinicalSystem::EmisWeb,
            token_file: None,
        }],
        state_dir: dir.path().join("bridge"),
        retry_first_ms: 100,
        retry_max_ms: 1_000,
        poll_ms: 1_000,
    }
    .checked()?;
    let trust = trust::Trust::load(&realm.config())?;
    let bridge = tokio::spawn(gp_bridge::run(
        gp_bridge::Options {
            config,
            backbone_tls: trust.service_client_tls(),
            realm: Some(Box::new(trust::Realm::open(&realm_dir)?)),
        },
        std::future::pending(),
    ));

    let agencies = safeguard::agencies::Agencies::new(
        trust::Realm::open(&realm_dir)?,
        safeguard::demo::Endpoints::one(&url),
    );
    let council = member(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let mut registry = PlanRegistryClient::new(agencies.authorised(&council, &url)?);
    // The baseline: the practice's own gRPC subscriber.
    let gp = member(
        "Y99001",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    );
    let mut notifications = NotificationClient::new(agencies.authorised(&gp, &url)?);
    let mut stream = notifications
        .subscribe(SubscribeRequest {
            subscriber: "bench".into(),
            recipient_ods_code: "Y99001".into(),
            kinds: vec![NotificationKind::PlanStarted.into()],
            purpose: "benchmark".into(),
            ..SubscribeRequest::default()
        })
        .await?
        .into_inner();
    let practice = sandbox.mailbox(
        "Y99001GP",
        realm.ca_pem(),
        (&client.certificate, &client.key),
    );
    let (mut to_subscriber, mut to_inbox) = (Vec::new(), Vec::new());
    for (sent, number) in test_numbers(scale.plans).into_iter().enumerate() {
        let started = Instant::now();
        registry
            .record_looked_after(RecordLookedAfterRequest {
                child_nhs_number: Some(NhsNumber { value: number }),
                start_date: Some(contract::common::v1::Date {
                    year: 2026,
                    month: 11,
                    day: 2,
                }),
                local_authority: Some(organisation("E09000999", OrganisationKind::LocalAuthority)),
                gp_practice: Some(organisation("Y99001", OrganisationKind::GpPractice)),
                ..RecordLookedAfterRequest::default()
            })
            .await?;
        stream
            .message()
            .await?
            .ok_or("the notification stream ended")?;
        to_subscriber.push(started.elapsed());
        loop {
            if practice.inbox().await?.len() > sent {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("a document did not reach the practice's inbox in a minute".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        to_inbox.push(started.elapsed());
    }
    bridge.abort();
    let subscriber_p50 = percentile_ms(&mut to_subscriber, 50.0);
    let inbox_p50 = percentile_ms(&mut to_inbox, 50.0);
    figure("gp_plans", scale.plans as f64);
    figure("gp_plan_to_subscriber_p50_ms", subscriber_p50);
    figure("gp_plan_to_mesh_inbox_p50_ms", inbox_p50);
    figure(
        "gp_plan_to_mesh_inbox_p99_ms",
        percentile_ms(&mut to_inbox, 99.0),
    );
    figure(
        "gp_mesh_inbox_vs_subscriber_p50_ratio",
        inbox_p50 / subscriber_p50.max(0.001),
    );
    drop(sandbox);
    Ok(())
}
