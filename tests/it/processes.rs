//! The services as four separate processes over a real nats-server, as
//! `deploy/local.sh` runs them: the demo case across them, and faults under
//! a steady stream of writes (kill -9 of each service in turn, nats-server
//! stopped for seconds, messages deleted from a stream), each with nothing
//! acknowledged lost and no notification raised twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use contract::common::v1::OrganisationKind;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use natsd::NatsServer;
use safeguard::agencies::Agencies;
use safeguard::demo::Endpoints;

use crate::fixtures::*;

/// binary, producer
const SERVICES: [(&str, &str); 4] = [
    ("referral-intake", "referral-intake"),
    ("conference-scheduler", "conference-scheduler"),
    ("plan-registry", "plan-registry"),
    ("notification-service", "notification"),
];

/// The directory cargo puts this build's binaries in, with the service
/// binaries brought up to date there (`cargo test -p tests` alone does not
/// build other packages' binaries; a no-op when they are current).
pub fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        // Always: a binary left from an older build would test old code.
        // With the targets and features of `tests/run.sh`'s `cargo test
        // --workspace --all-targets`, so that after it this is a no-op: a
        // narrower build resolves features differently and rebuilds.
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.args(["build", "--workspace", "--all-targets"]);
        // Without what cargo set for this test binary (its package's name
        // and paths): build scripts that read them would run again, and
        // everything after them be rebuilt.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_for_this_test = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name);
            if set_for_this_test {
                build.env_remove(&*name);
            }
        }
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo build").success(),
            "building the services failed"
        );
        dir
    })
}

/// A port free now for a service to listen on, and again after a restart.
fn free_port() -> u16 {
    natsd::free_port().expect("a free port")
}

struct Service {
    /// The binary's name, or for a registry read replica its producer name.
    name: String,
    binary: &'static str,
    producer: String,
    /// Flags beside the common ones.
    flags: Vec<String>,
    port: u16,
    child: Option<Child>,
}

pub struct Deployment {
    pub nats: NatsServer,
    dir: tempfile::TempDir,
    /// The development realm every service runs in (`--realm`).
    realm: PathBuf,
    services: Vec<Service>,
}

impl Deployment {
    pub async fn start() -> Deployment {
        Self::start_with(1).await
    }

    /// The four services with `registry_pods` registry pods: the primary
    /// (`plan-registry`) and read replicas named by their producers
    /// (`plan-registry-1`, …).
    pub async fn start_with(registry_pods: u32) -> Deployment {
        Self::start_configured(registry_pods, &[]).await
    }

    /// The same, with `flags` given to every service.
    pub async fn start_configured(registry_pods: u32, flags: &[String]) -> Deployment {
        let dir = tempfile::tempdir().expect("dir");
        let realm = dir.path().join("realm");
        let (opened, _) = trust::Realm::open_or_create(&realm).expect("a development realm");
        // The services, an operator, and the demo case's agencies as
        // partners.
        let mut others = vec![natsd::access::NatsIdentity::Operator];
        others.extend(
            ["E09000999", "S999001", "P99001", "Y99001", "RXX01"]
                .map(|ods| natsd::access::NatsIdentity::Partner { ods: ods.into() }),
        );
        let nats = NatsServer::for_realm(&opened, registry_pods, &others).expect("nats-server");
        let pods = [
            &["--registry-pods".to_owned(), registry_pods.to_string()],
            flags,
        ]
        .concat();
        let mut services: Vec<Service> = SERVICES
            .iter()
            .map(|(binary, producer)| Service {
                name: (*binary).to_owned(),
                binary,
                producer: (*producer).to_owned(),
                flags: pods.to_vec(),
                port: free_port(),
                child: None,
            })
            .collect();
        for pod in 1..registry_pods {
            let producer = contract::producers::plan_registry_pod(pod);
            services.push(Service {
                name: producer.clone(),
                binary: "plan-registry",
                producer,
                flags: [&pods[..], &["--pod".to_owned(), pod.to_string()]].concat(),
                port: free_port(),
                child: None,
            });
        }
        let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
        let mut deployment = Deployment {
            nats,
            dir,
            realm,
            services,
        };
        for name in &names {
            deployment.launch(name);
        }
        for name in &names {
            deployment.wait_until_serving(name).await;
        }
        deployment
    }

    /// How the realm's NATS user `name` connects ("operator", a service's
    /// producer name, or `partner-<ODS>`).
    pub fn nats_credentials(&self, name: &str) -> trust::NatsClient {
        let (realm, _) = trust::Realm::open_or_create(&self.realm).expect("realm");
        trust::Trust::load(&realm.config_as(name).expect("config"))
            .expect("trust")
            .nats_client()
            .expect("credentials")
            .expect("a NATS user")
    }

    /// The development realm every service of the deployment runs in.
    pub fn realm(&self) -> trust::Realm {
        trust::Realm::open(&self.realm).expect("the realm")
    }

    /// A plain NATS client signed in as the realm's NATS user `name`.
    pub async fn nats_client(&self, name: &str) -> async_nats::Client {
        bus::connect_nats(&self.nats.url(), Some(&self.nats_credentials(name)))
            .await
            .expect("connect to NATS")
    }

    pub fn url(&self, name: &str) -> String {
        let service = self.service(name);
        format!("https://127.0.0.1:{}", service.port)
    }

    /// Every agency's system, in the deployment's development realm.
    pub fn agencies(&self) -> Agencies {
        self.agencies_at(self.endpoints())
    }

    /// The same, with the services at `endpoints`.
    pub fn agencies_at(&self, endpoints: Endpoints) -> Agencies {
        Agencies::open(&self.realm, endpoints).expect("the realm")
    }

    fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|service| service.name == name)
            .expect("a known service")
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            referrals: self.url("referral-intake"),
            conferences: self.url("conference-scheduler"),
            registry: self.url("plan-registry"),
            notifications: self.url("notification-service"),
        }
    }

    fn launch(&mut self, name: &str) {
        let producers: HashMap<String, String> = self
            .services
            .iter()
            .map(|service| {
                (
                    service.producer.clone(),
                    format!("https://127.0.0.1:{}", service.port),
                )
            })
            .collect();
        let nats = self.nats.url();
        let data = self.dir.path().to_path_buf();
        let realm = self.realm.clone();
        let service = self
            .services
            .iter_mut()
            .find(|service| service.name == name)
            .expect("a known service");
        let log = std::fs::File::create(data.join(format!("{name}.log"))).expect("log");
        let mut command = Command::new(binaries().join(service.binary));
        command
            .arg("--data-dir")
            .arg(data.join(&service.producer))
            .args(["--listen", &format!("127.0.0.1:{}", service.port)])
            .args(["--nats", &nats])
            .arg("--realm")
            .arg(&realm)
            .args(&service.flags);
        for (producer, url) in &producers {
            command.args(["--producer", &format!("{producer}={url}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the service");
        service.child = Some(child);
    }

    pub async fn wait_until_serving(&self, name: &str) {
        let url = self.url(name);
        let realm = trust::Realm::open(&self.realm).expect("the realm");
        let health = trust::client::Credentials::anonymous(realm.ca_pem());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let endpoint = trust::client::endpoint(&url, health.tls()).expect("url");
            if let Ok(channel) = endpoint.connect().await {
                let checked = tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if checked.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} did not start: {}", self.log_of(name));
    }

    pub fn log_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush beyond what was already fsynced.
    pub fn kill(&mut self, name: &str) {
        let service = self
            .services
            .iter_mut()
            .find(|service| service.name == name)
            .expect("a known service");
        if let Some(mut child) = service.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
        }
    }

    pub async fn restart(&mut self, name: &str) {
        // sled lets go of its lock once the process is gone; a moment
        // after, at worst, which the health wait covers.
        self.launch(name);
        self.wait_until_serving(name).await;
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for service in &mut self.services {
            if let Some(mut child) = service.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_case_runs_across_four_processes_over_jetstream() {
    let deployment = Deployment::start().await;
    crate::scenario::the_demo_case(&deployment.agencies(), service_core::validate::today()).await;
}

fn school() -> contract::common::v1::CallerIdentity {
    member_of(
        "S999001",
        OrganisationKind::School,
        contract::common::v1::Role::DesignatedSafeguardingLead,
    )
}

/// What a service that is restarting answers: worth a retry. Anything
/// else is the test's mistake, not the fault's.
pub fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// One referral and its decision, retried with the same idempotency key
/// until both are acknowledged: the referral id, or `None` if the service
/// stayed away too long.
async fn refer_and_decide(agencies: &Agencies, serial: u32) -> Option<String> {
    let request = referral::SubmitReferralRequest {
        idempotency_key: format!("fault-{serial}"),
        referrer: Some(referral::Referrer {
            organisation: Some(organisation("S999001", OrganisationKind::School)),
            person: None,
        }),
        child: Some(referral::Child {
            nhs_number: Some(contract::common::v1::NhsNumber {
                value: domain::NhsNumber::test_number(serial).to_string(),
            }),
            given_name: "Test".into(),
            family_name: format!("Child{serial}"),
            date_of_birth: date(2018, 6, 1),
            ..referral::Child::default()
        }),
        concerns: "a steady stream of referrals".into(),
        category_of_concern: contract::common::v1::AbuseCategory::Neglect.into(),
        consent: Some(referral::Consent {
            status: referral::ConsentStatus::Given.into(),
            reason: String::new(),
        }),
        local_authority: Some(council()),
        ..referral::SubmitReferralRequest::default()
    };
    let started = Instant::now();
    let mut referral_id = None;
    while started.elapsed() < Duration::from_secs(30) {
        let mut school = agencies.clients(&school()).expect("credentials").referrals;
        let mut mash = agencies.clients(&chair()).expect("credentials").referrals;
        if referral_id.is_none() {
            match school.submit_referral(request.clone()).await {
                Ok(submitted) => referral_id = Some(submitted.into_inner().referral_id),
                Err(status) => {
                    assert!(transient(&status), "submit refused: {status:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let id = referral_id.clone()?;
        let decided = mash
            .record_decision(referral::RecordDecisionRequest {
                referral_id: id.clone(),
                rag_rating: referral::RagRating::Green.into(),
                outcome: referral::ReferralOutcome::EarlyHelp.into(),
                rationale: "early help offered".into(),
                reason_for_referrer: String::new(),
                decided_at: None,
            })
            .await;
        match decided {
            Ok(_) => return Some(id),
            // A retry after a decision that was written but not answered.
            Err(status) if status.code() == tonic::Code::FailedPrecondition => return Some(id),
            Err(status) => {
                assert!(transient(&status), "decision refused: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    None
}

/// A steady stream of `count` referrals and decisions from `first` on, one
/// every 20 ms; the ids acknowledged, each with when it was.
fn write_steadily(
    agencies: Agencies,
    first: u32,
    count: u32,
) -> tokio::task::JoinHandle<Vec<(String, Instant)>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for serial in first..first + count {
            if let Some(id) = refer_and_decide(&agencies, serial).await {
                acknowledged.push((id, Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acknowledged
    })
}

/// Waits until `producer`'s stream holds its log up to `end` (no message
/// lost from it yet): the stream.
pub async fn published_up_to(
    deployment: &Deployment,
    producer: &str,
    end: u64,
) -> async_nats::jetstream::stream::Stream {
    let context = async_nats::jetstream::new(deployment.nats_client("operator").await);
    let mut stream = context
        .get_stream(bus::stream_name(producer))
        .await
        .expect("stream");
    let started = Instant::now();
    while stream.info().await.expect("info").state.last_sequence < end {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the relay published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream
}

/// How the notifications a recipient was told compare with the writes
/// acknowledged.
#[derive(Debug)]
pub struct Told {
    acknowledged: usize,
    delivered: usize,
    /// Writes told more than once, and how often.
    duplicated: Vec<(String, usize)>,
    lost: Vec<String>,
}

impl Told {
    pub fn print(&self, fault: &str) {
        println!(
            "{fault}: writes acknowledged: {}, notifications delivered: {}, duplicates applied: {}, lost: {}",
            self.acknowledged,
            self.delivered,
            self.duplicated.len(),
            self.lost.len()
        );
    }
}

/// Reads `recipient`'s notifications of `kind` naming (in detail `key`) an
/// acknowledged write, until one for each has come (or a minute has
/// passed), then a moment more for any duplicate.
pub async fn told(
    deployment: &Deployment,
    recipient: contract::common::v1::CallerIdentity,
    kind: note::NotificationKind,
    key: &str,
    acknowledged: &[String],
) -> Told {
    let ods = recipient
        .organisation
        .as_ref()
        .map(|o| o.ods_code.clone())
        .unwrap_or_default();
    let mut stream = deployment
        .agencies()
        .clients(&recipient)
        .expect("credentials")
        .notifications
        .subscribe(note::SubscribeRequest {
            subscriber: "fault-test".into(),
            recipient_ods_code: ods,
            kinds: vec![kind.into()],
            ..note::SubscribeRequest::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut told: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut patience = Duration::from_secs(10);
    loop {
        if acknowledged.iter().all(|id| told.contains_key(id)) {
            // Anything further would be a duplicate: wait a moment for one.
            patience = Duration::from_secs(2);
        }
        if Instant::now() > deadline {
            break;
        }
        let Ok(Ok(Some(message))) = tokio::time::timeout(patience, stream.message()).await else {
            break;
        };
        let id = message.details.get(key).cloned().unwrap_or_default();
        if !acknowledged.contains(&id) {
            continue; // not one of the writes counted
        }
        *told.entry(id).or_default() += 1;
    }
    Told {
        acknowledged: acknowledged.len(),
        delivered: told.values().sum(),
        lost: acknowledged
            .iter()
            .filter(|id| !told.contains_key(*id))
            .cloned()
            .collect(),
        duplicated: told.into_iter().filter(|(_, count)| *count > 1).collect(),
    }
}

/// The school's notifications of the decisions acknowledged.
async fn told_to_the_school(deployment: &Deployment, acknowledged: &[String]) -> Told {
    told(
        deployment,
        school(),
        note::NotificationKind::ReferralOutcome,
        "referral_id",
        acknowledged,
    )
    .await
}

pub fn assert_nothing_lost_or_repeated(deployment: &Deployment, told: &Told) {
    assert!(
        told.lost.is_empty(),
        "lost: {:?}\n{}",
        told.lost,
        deployment.log_of("notification-service")
    );
    assert!(
        told.duplicated.is_empty(),
        "told twice: {:?}",
        told.duplicated
    );
}

fn ids(acknowledged: &[(String, Instant)]) -> Vec<String> {
    acknowledged.iter().map(|(id, _)| id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_each_service_under_writes_loses_nothing_and_repeats_nothing() {
    let mut deployment = Deployment::start().await;
    let writer = write_steadily(deployment.agencies(), 1, 60);
    for (binary, _) in SERVICES {
        tokio::time::sleep(Duration::from_millis(250)).await;
        deployment.kill(binary);
        tokio::time::sleep(Duration::from_millis(100)).await;
        deployment.restart(binary).await;
    }
    let acknowledged = ids(&writer.await.expect("writer"));
    let told = told_to_the_school(&deployment, &acknowledged).await;
    told.print("kill -9 of each service");
    assert!(
        acknowledged.len() >= 50,
        "most writes were acknowledged: {}",
        acknowledged.len()
    );
    assert_nothing_lost_or_repeated(&deployment, &told);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_seconds_under_writes_loses_nothing_and_repeats_nothing() {
    let mut deployment = Deployment::start().await;
    let writer = write_steadily(deployment.agencies(), 101, 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    deployment.nats.stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up = Instant::now();
    deployment.nats.resume().expect("nats-server again");
    let acknowledged = writer.await.expect("writer");
    let while_down = acknowledged
        .iter()
        .filter(|(_, at)| *at > down && *at < up)
        .count();
    println!("nats-server down for 3 s: writes acknowledged meanwhile: {while_down}");
    // Writes go on while NATS is away: only the relay waits for it.
    assert_eq!(acknowledged.len(), 100, "every write was acknowledged");
    assert!(
        while_down >= 20,
        "writes were accepted while NATS was down: {while_down}"
    );
    let told = told_to_the_school(&deployment, &ids(&acknowledged)).await;
    told.print("nats-server stopped for 3 s");
    assert_nothing_lost_or_repeated(&deployment, &told);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_lost_from_a_stream_are_repaired_from_the_producer() {
    let mut deployment = Deployment::start().await;
    // The notification service is away while the referrals it would read
    // are published and then lost from the stream.
    deployment.kill("notification-service");
    let before = write_steadily(deployment.agencies(), 301, 20)
        .await
        .expect("writer");
    let stream = bus::stream_name("referral-intake");
    // Everything the relay has published so far, then nothing.
    let published = 2 * before.len() as u64;
    let referrals = published_up_to(&deployment, "referral-intake", published).await;
    let purged = referrals.purge().await.expect("purge").purged;
    let after = write_steadily(deployment.agencies(), 401, 20)
        .await
        .expect("writer");
    deployment.restart("notification-service").await;
    let acknowledged = ids(&[before, after].concat());
    let told = told_to_the_school(&deployment, &acknowledged).await;
    println!("stream {stream}: messages deleted: {purged}");
    told.print("messages deleted from a stream");
    assert!(purged >= published, "the purge deleted {purged}");
    assert_nothing_lost_or_repeated(&deployment, &told);
    assert!(
        deployment
            .log_of("notification-service")
            .contains("repaired a gap from the producer"),
        "the gap was repaired from the producer: {}",
        deployment.log_of("notification-service")
    );
}
