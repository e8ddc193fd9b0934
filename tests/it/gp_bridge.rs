//! The GP bridge, black-box: the backbone in this process, NHS England's
//! MESH sandbox (the real MESH API, mutual TLS and HMAC authorisation) and
//! the `gp-bridge` binary beside them. The tests act as each practice does:
//! they read its MESH inbox, check each message with an independent FHIR
//! STU3 library, and answer with an ITK3 acknowledgement.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contract::common::v1::{Organisation, OrganisationKind};
use contract::registry::v1 as registry_wire;
use gp_bridge::mesh::{Incoming, Mailbox, Outgoing};
use gp_bridge::sandbox::{self, Sandbox};
use serde_json::{Value, json};
use tonic::Code;

use crate::fixtures::{self, Backbone, council, date, nhs, organisation, spawn};
use crate::processes::binaries;

/// The sandbox's practices: ODS code, MESH mailbox, clinical system.
const PRACTICES: [(&str, &str, &str); 4] = [
    ("Y99001", "Y99001GP", "emis-web"),
    ("Y99002", "Y99002GP", "systm-one"),
    ("Y99003", "Y99003GP", "vision"),
    ("Y99004", "Y99004GP", "evolution"),
];

/// The backbone, the sandbox, and what the bridge is configured with.
struct Setup {
    dir: tempfile::TempDir,
    backbone: Backbone,
    sandbox: Sandbox,
    realm_dir: PathBuf,
    config: PathBuf,
}

/// The `gp-bridge` process, killed when dropped.
struct Bridge {
    child: Child,
    log: PathBuf,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bridge {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
    std::fs::write(path, text).expect("written");
}

/// Starts the backbone and the sandbox, and writes the bridge's
/// configuration for `practices` (with `extra` practices as given).
async fn setup(practices: &[(&str, &str, &str)], extra: Vec<Value>) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn(dir.path()).await;
    let realm = backbone.agencies.realm();
    let realm_dir = realm.dir().to_path_buf();
    let (sandbox, client) = Sandbox::start_in_realm(dir.path(), realm)
        .await
        .expect("the MESH sandbox (tests/run.sh installs it)");
    let (ca, _, _) = realm.tls_files();
    let mesh = dir.path().join("mesh");
    write(&mesh.join("password"), sandbox::PASSWORD);
    write(&mesh.join("shared-key"), &sandbox.shared_key);
    write(&mesh.join("client.pem"), &client.certificate);
    write(&mesh.join("client.key"), &client.key);
    let url = &backbone._backbone.as_ref().expect("our own backbone").url;
    let mut listed: Vec<Value> = practices
        .iter()
        .map(|(ods, mailbox, system)| {
            json!({ "ods_code": ods, "name": format!("Test Surgery {ods}"), "mailbox": mailbox, "system": system })
        })
        .collect();
    listed.extend(extra);
    let config = json!({
        "notifications": url,
        "sender": { "ods_code": "X26", "name": "Safeguard test partnership" },
        "mesh": {
            "url": sandbox.url,
            "mailbox": sandbox::BRIDGE_MAILBOX,
            "password_file": "mesh/password",
            "shared_key_file": "mesh/shared-key",
            "ca": ca,
            "certificate": "mesh/client.pem",
            "key": "mesh/client.key",
        },
        "practices": listed,
        "state_dir": "bridge-state",
        "retry_first_ms": 100,
        "retry_max_ms": 1000,
        "poll_ms": 200,
    });
    let path = dir.path().join("gp-bridge.json");
    write(&path, &config.to_string());
    Setup {
        dir,
        backbone,
        sandbox,
        realm_dir,
        config: path,
    }
}

impl Setup {
    fn start_bridge(&self, run: u32) -> Bridge {
        let log = self.dir.path().join(format!("gp-bridge-{run}.log"));
        let file = std::fs::File::create(&log).expect("a log");
        let child = Command::new(binaries().join("gp-bridge"))
            .arg("--config")
            .arg(&self.config)
            .arg("--realm")
            .arg(&self.realm_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log"))
            .stderr(file)
            .spawn()
            .expect("gp-bridge");
        Bridge { child, log }
    }

    /// `mailbox`, as its practice (or the bridge) reads it.
    fn mailbox(&self, mailbox: &str, ods: &str) -> Mailbox {
        let realm = self.backbone.agencies.realm();
        let issued = realm
            .organisation_certificate(&domain::OdsCode::parse(ods).expect("an ODS code"))
            .expect("a certificate");
        self.sandbox
            .mailbox(mailbox, realm.ca_pem(), (&issued.certificate, &issued.key))
    }
}

/// The messages in `mailbox`'s inbox once there are at least `count`.
async fn inbox(mailbox: &Mailbox, count: usize) -> Vec<Incoming> {
    let started = Instant::now();
    loop {
        let ids = mailbox.inbox().await.expect("the inbox");
        if ids.len() >= count {
            let mut messages = Vec::new();
            for id in ids {
                messages.push(mailbox.download(&id).await.expect("a download"));
            }
            return messages;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} has {} of {count} messages",
            mailbox.mailbox_id,
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a practice reads in one message: its title, the NHS number it is
/// about, and the codes of the entry to file.
#[derive(Debug)]
struct Read {
    local_id: String,
    title: String,
    nhs_number: String,
    codes: Vec<(String, String)>,
}

/// Checks `message` as the practice's system would, and reads it.
fn read(message: &Incoming) -> Read {
    assert_eq!(message.header("mex-workflowid"), "GPFED_CONSULT_REPORT");
    assert_eq!(message.header("mex-from"), sandbox::BRIDGE_MAILBOX);
    let body = std::str::from_utf8(&message.body).expect("UTF-8");
    fixtures::validate_fhir("STU3", body);
    let bundle: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(bundle["type"], "message");
    let header = &bundle["entry"][0]["resource"];
    assert_eq!(header["resourceType"], "MessageHeader");
    assert_eq!(header["event"]["code"], "ITK007C");
    assert_eq!(header["id"], message.header("mex-localid"));
    let document = &bundle["entry"][1]["resource"];
    // The document on its own, as the practice files it.
    fixtures::validate_fhir("STU3", &document.to_string());
    assert_eq!(document["type"], "document");
    let resources: Vec<&Value> = document["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| &entry["resource"])
        .collect();
    assert_eq!(resources[0]["resourceType"], "Composition");
    let of = |kind: &str| {
        resources
            .iter()
            .find(|resource| resource["resourceType"] == kind)
            .copied()
    };
    let codes = of("Flag")
        .map(|flag| {
            flag["code"]["coding"]
                .as_array()
                .expect("codings")
                .iter()
                .map(|coding| {
                    (
                        coding["system"].as_str().unwrap_or_default().to_owned(),
                        coding["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Read {
        local_id: message.header("mex-localid").to_owned(),
        title: resources[0]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        nhs_number: of("Patient").expect("a patient")["identifier"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        codes,
    }
}

fn has(read: &Read, system: &str, code: &str) -> bool {
    read.codes
        .iter()
        .any(|(s, c)| s.ends_with(system) && c == code)
}

fn practice(ods: &str) -> Option<Organisation> {
    Some(organisation(ods, OrganisationKind::GpPractice))
}

/// Records `number` as looked after by the test council, registered with
/// `practice`.
async fn looked_after(
    backbone: &mut Backbone,
    number: &str,
    practice: Option<Organisation>,
) -> Result<tonic::Response<registry_wire::PlanResponse>, tonic::Status> {
    backbone
        .registry
        .record_looked_after(registry_wire::RecordLookedAfterRequest {
            gp_practice: practice,
            child_local_id: None,
            child_nhs_number: nhs(number),
            start_date: date(2026, 11, 2),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
}

#[tokio::test]
async fn each_practice_gets_one_send_document_per_change_coded_for_its_system() {
    // A fifth practice whose token is another organisation's: the
    // backbone refuses it, and the bridge says why.
    let setup_dir_token = |dir: &Path, realm: &trust::Realm| {
        let token = realm
            .token(
                &safeguard::agencies::person(&fixtures::member_of(
                    "Y99009",
                    OrganisationKind::GpPractice,
                    contract::common::v1::Role::GeneralPractitioner,
                )),
                Duration::from_secs(3600),
            )
            .expect("a token");
        let path = dir.join("tokens/Y99005");
        write(&path, &token);
        path
    };
    let mut setup = setup(&PRACTICES, vec![]).await;
    let token_file = setup_dir_token(setup.dir.path(), setup.backbone.agencies.realm());
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&setup.config).expect("config"))
            .expect("JSON");
    config["practices"]
        .as_array_mut()
        .expect("practices")
        .push(json!({
            "ods_code": "Y99005", "name": "Test Surgery Y99005", "mailbox": "Y99005GP",
            "system": "vision", "token_file": token_file,
        }));
    write(&setup.config, &config.to_string());
    let bridge = setup.start_bridge(1);
    let backbone = &mut setup.backbone;

    // A registered practice must be a GP practice.
    let status = looked_after(
        backbone,
        "9990000026",
        Some(organisation("Y99002", OrganisationKind::School)),
    )
    .await
    .expect_err("a school is no GP practice");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("gp_practice.kind"), "{status:?}");

    // EMIS Web: invited to the conference, then told of the plan it made.
    fixtures::make_plan(backbone).await;
    // SystmOne: a looked-after child.
    looked_after(backbone, "9990000026", practice("Y99002"))
        .await
        .expect("looked after");
    // Vision: an unborn plan on the mother, then the birth.
    let unborn = backbone
        .registry
        .record_unborn_plan(registry_wire::RecordUnbornPlanRequest {
            gp_practice: practice("Y99003"),
            mother_nhs_number: nhs("9990000034"),
            expected_date_of_delivery: date(2027, 1, 20),
            category: contract::common::v1::AbuseCategory::Neglect.into(),
            start_date: date(2026, 11, 3),
            local_authority: Some(council()),
            lead_social_worker: None,
        })
        .await
        .expect("unborn plan")
        .into_inner()
        .plan
        .expect("a plan");
    backbone
        .registry
        .link_birth(registry_wire::LinkBirthRequest {
            plan_id: unborn.plan_id,
            baby_nhs_number: nhs("9990000042"),
            born_on: date(2026, 11, 28),
        })
        .await
        .expect("birth linked");
    // Evolution: a plan transferred in, then ended.
    let moved = fixtures::transfer_in_with(
        backbone,
        "9990000050",
        date(2026, 11, 4),
        practice("Y99004"),
    )
    .await
    .plan
    .expect("a plan");
    backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: moved.plan_id,
            end_date: date(2026, 11, 27),
            reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
        })
        .await
        .expect("ended");
    // And the refused practice's child.
    looked_after(backbone, "9990000069", practice("Y99005"))
        .await
        .expect("looked after");

    let emis = inbox(&setup.mailbox("Y99001GP", "Y99001"), 2).await;
    let emis: Vec<Read> = emis.iter().map(read).collect();
    assert!(
        emis.iter()
            .any(|r| r.title.contains("Invitation") && r.codes.is_empty()),
        "{emis:?}"
    );
    let started = emis
        .iter()
        .find(|r| r.title == "Child protection plan started")
        .expect("the plan, in EMIS Web's terms");
    assert_eq!(started.nhs_number, "9990000018");
    assert!(has(started, "sct", "342191000000101") && has(started, "readv2", "13Iv."));

    let tpp = inbox(&setup.mailbox("Y99002GP", "Y99002"), 1).await;
    let tpp: Vec<Read> = tpp.iter().map(read).collect();
    assert_eq!(tpp.len(), 1, "{tpp:?}");
    assert_eq!(tpp[0].title, "Child now looked after");
    assert!(has(&tpp[0], "sct", "764841000000100"), "{tpp:?}");

    let vision = inbox(&setup.mailbox("Y99003GP", "Y99003"), 2).await;
    let vision: Vec<Read> = vision.iter().map(read).collect();
    assert_eq!(vision.len(), 2, "{vision:?}");
    let unborn = vision
        .iter()
        .find(|r| r.title == "Pre-birth child protection plan")
        .expect("the unborn plan");
    assert_eq!(unborn.nhs_number, "9990000034", "on the mother's record");
    assert!(has(unborn, "sct", "878111000000109") && has(unborn, "ctv3", "XaaNV"));
    let born = vision
        .iter()
        .find(|r| r.title.starts_with("Baby born"))
        .expect("the birth");
    assert_eq!(born.nhs_number, "9990000042", "on the baby's record");
    assert!(has(born, "sct", "342191000000101"));

    let evolution = inbox(&setup.mailbox("Y99004GP", "Y99004"), 2).await;
    let evolution: Vec<Read> = evolution.iter().map(read).collect();
    assert_eq!(evolution.len(), 2, "{evolution:?}");
    let ended = evolution
        .iter()
        .find(|r| r.title == "Child protection plan ended")
        .expect("the end");
    assert!(has(ended, "sct", "342891000000105") && has(ended, "readv2", "13Iw."));

    // One message per notification, across every practice.
    let mut ids: Vec<&str> = [&emis, &tpp, &vision, &evolution]
        .iter()
        .flat_map(|reads| reads.iter().map(|r| r.local_id.as_str()))
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "a notification was sent twice");

    // SystmOne's business acknowledgement reaches the bridge, which
    // collects it from its inbox.
    let tpp_mailbox = setup.mailbox("Y99002GP", "Y99002");
    let response = json!({
        "resourceType": "Bundle",
        "type": "message",
        "entry": [{ "resource": {
            "resourceType": "MessageHeader",
            "event": { "system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2", "code": "ITK008M" },
            "timestamp": "2026-11-30T09:00:00Z",
            "source": { "endpoint": "Y99002GP" },
            "response": { "identifier": tpp[0].local_id, "code": "ok" },
        }}],
    });
    fixtures::validate_fhir("STU3", &response.to_string());
    tpp_mailbox
        .send(&Outgoing {
            to: sandbox::BRIDGE_MAILBOX,
            workflow_id: "GPFED_CONSULT_REPORT_ACK",
            local_id: "ack-1",
            subject: "ITK3 business acknowledgement",
            file_name: "ack-1.json",
            content_type: "application/fhir+json",
            body: response.to_string().into(),
        })
        .await
        .expect("the acknowledgement sent");
    let bridge_mailbox = setup.mailbox(sandbox::BRIDGE_MAILBOX, "X26");
    let started = Instant::now();
    while !(bridge_mailbox.inbox().await.expect("inbox").is_empty()
        && bridge
            .log()
            .contains("the practice's system acknowledged the document"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the bridge did not collect the acknowledgement:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The practice with another organisation's token got nothing, and the
    // bridge's log says why.
    assert!(
        bridge
            .log()
            .contains("refused the bridge's credentials for practice Y99005"),
        "{}",
        bridge.log()
    );
}

/// Valid NHS numbers in the 999 test range, `count` of them from `from`.
fn test_numbers(from: u64, count: usize) -> Vec<String> {
    (from..)
        .map(|n| format!("999{n:06}"))
        .flat_map(|nine| (0..10).map(move |check| format!("{nine}{check}")))
        .filter(|candidate| domain::NhsNumber::parse(candidate).is_ok())
        .take(count)
        .collect()
}

#[tokio::test]
async fn a_bridge_killed_mid_delivery_loses_nothing_and_sends_nothing_twice() {
    const CHILDREN: usize = 40;
    let mut setup = setup(&PRACTICES[..1], vec![]).await;
    for number in test_numbers(2000, CHILDREN) {
        looked_after(&mut setup.backbone, &number, practice("Y99001"))
            .await
            .expect("looked after");
    }
    let practice_inbox = setup.mailbox("Y99001GP", "Y99001");
    let mut bridge = setup.start_bridge(1);
    let started = Instant::now();
    let delivered_before_kill = loop {
        let delivered = practice_inbox.inbox().await.expect("the inbox").len();
        if delivered > 0 {
            bridge.kill();
            break practice_inbox.inbox().await.expect("the inbox").len();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing delivered:\n{}",
            bridge.log()
        );
        // Each look is a new TLS connection: not so often that the
        // machine runs short of ports for the other tests.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        delivered_before_kill < CHILDREN,
        "the kill came after every delivery ({delivered_before_kill}): it proves nothing"
    );
    // As if each kill had come between MESH accepting a message and the
    // ledger saying so: every outcome in doubt. The bridge must ask MESH,
    // not send again.
    let in_doubt = {
        let ledger = gp_bridge::ledger::Ledger::open(&setup.dir.path().join("bridge-state"))
            .expect("the ledger");
        let all = ledger.all();
        for (local_id, _) in &all {
            ledger
                .put(local_id, &gp_bridge::ledger::Delivery::Sending)
                .await
                .expect("written");
        }
        all.len()
    };
    // And the last notification as if a bridge had sent it and died before
    // its ledger said so: the message is in MESH, the ledger in doubt.
    let last = fixtures::receive(
        &mut setup.backbone,
        fixtures::member_of(
            "Y99001",
            OrganisationKind::GpPractice,
            contract::common::v1::Role::GeneralPractitioner,
        ),
        &[contract::notification::v1::NotificationKind::PlanStarted],
        0,
        CHILDREN,
    )
    .await
    .pop()
    .expect("the last notification");
    let last = gp_bridge::local_id(&last);
    gp_bridge::ledger::Ledger::open(&setup.dir.path().join("bridge-state"))
        .expect("the ledger")
        .put(&last, &gp_bridge::ledger::Delivery::Sending)
        .await
        .expect("written");
    setup
        .mailbox(sandbox::BRIDGE_MAILBOX, "X26")
        .send(&Outgoing {
            to: "Y99001GP",
            workflow_id: "GPFED_CONSULT_REPORT",
            local_id: &last,
            subject: "sent by a bridge that died before its ledger said so",
            file_name: "last.json",
            content_type: "application/fhir+json",
            body: "{}".into(),
        })
        .await
        .expect("sent");
    let bridge = setup.start_bridge(2);
    let messages = inbox(&practice_inbox, CHILDREN).await;
    // Time for a duplicate to arrive, were one coming.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = if practice_inbox.inbox().await.expect("inbox").len() == messages.len() {
        messages
    } else {
        inbox(&practice_inbox, CHILDREN).await
    };
    let mut ids: Vec<String> = messages
        .iter()
        .map(|message| message.header("mex-localid").to_owned())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let resolved = bridge
        .log()
        .matches("an earlier attempt's outcome was in doubt")
        .count();
    println!(
        "gp_bridge_kill9: {delivered_before_kill} delivered before kill -9, {in_doubt} in doubt, {resolved} found in MESH, {} after restart, {} distinct, {} expected",
        messages.len(),
        ids.len(),
        CHILDREN
    );
    assert!(
        resolved >= 1,
        "the bridge asked MESH about what was in doubt"
    );
    assert_eq!(ids.len(), CHILDREN, "every notification delivered");
    assert_eq!(messages.len(), CHILDREN, "none delivered twice");
}
