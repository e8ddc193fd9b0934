//! `safeguard-bench lookup`: the emergency department's question against a
//! registry of 100,000 children, over real gRPC with mutual TLS and a
//! nurse's access token on every call, beside the transport's own ceiling
//! (a no-op RPC, gRPC health `Check`, on the same server with the same
//! clients, certificates and token, verified the same way); what verifying
//! a token costs, first seen and remembered; and how fast and how big the
//! registry's projection is when rebuilt from a log of 1,000,000 events.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, Date, NhsNumber as WireNhs, Organisation,
    OrganisationKind, Role,
};
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use domain::NhsNumber;
use eventlog::{EventLog, ExpectedVersion, NewEvent};
use prost::{Message, Name};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use trust::client::{Authorised, Bearer};
use trust::token::Person;

use crate::report::{figure, per_second, percentile_ms};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const CLIENTS: usize = 64;
const CONNECTIONS: usize = 8;
/// The hidden subcommand that runs the registry's side of the benchmark.
pub const SERVE_COMMAND: &str = "lookup-registry";
/// The hidden subcommand that measures the log's own memory.
pub const LOG_ALONE_COMMAND: &str = "lookup-log-alone";

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    children: usize,
    /// Events in the registry's log in all: one plan per child, the rest
    /// earlier lookups.
    events: usize,
    measure_for: Duration,
    /// Turns each of gRPC and FHIR lookups take, each half `measure_for`.
    rounds: usize,
    /// Lookup-sized events each client writes straight to sled.
    raw_writes_per_client: usize,
}

impl Scale {
    pub fn new(quick: bool) -> Self {
        if quick {
            Scale {
                children: 10_000,
                events: 100_000,
                measure_for: Duration::from_secs(2),
                rounds: 6,
                raw_writes_per_client: 200,
            }
        } else {
            Scale {
                children: 100_000,
                events: 1_000_000,
                measure_for: Duration::from_secs(5),
                rounds: 6,
                raw_writes_per_client: 1_000,
            }
        }
    }
}

fn council() -> Organisation {
    Organisation {
        ods_code: "E09000999".into(),
        name: "London Borough of Northgate (bench)".into(),
        kind: OrganisationKind::LocalAuthority.into(),
    }
}

fn nurse() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(Organisation {
            ods_code: "RXX01".into(),
            name: "Northgate General Hospital (bench)".into(),
            kind: OrganisationKind::NhsTrust.into(),
        }),
        user_id: "bench-nurse".into(),
        display_name: "Bench Nurse".into(),
        role: Role::UnscheduledCareClinician.into(),
        care_setting: CareSetting::EmergencyDepartment.into(),
    }
}

fn nurse_person() -> Person {
    Person {
        organisation: "RXX01".into(),
        organisation_name: "Northgate General Hospital (bench)".into(),
        user_id: "bench-nurse".into(),
        display_name: "Bench Nurse".into(),
        role: "UNSCHEDULED_CARE_CLINICIAN".into(),
    }
}

/// Tokens verified per second by the verifier every server runs: each
/// seen for the first time (its signature checked), and each seen before
/// (remembered until it expires).
fn token_verification(realm: &trust::Realm) -> Result<(), Error> {
    const TOKENS: usize = 2_000;
    let verifier = trust::Trust::load(&realm.config())?.verifier().clone();
    let tokens = (0..TOKENS)
        .map(|user| {
            realm.token(
                &Person {
                    user_id: format!("bench-nurse-{user}"),
                    ..nurse_person()
                },
                Duration::from_secs(3600),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for token in &tokens {
        verifier.verify(token).map_err(|refused| refused.0)?;
    }
    figure(
        "token_verify_first_per_s",
        per_second(TOKENS, started.elapsed()),
    );
    let started = Instant::now();
    for round in 0..50 {
        for token in &tokens[..100] {
            verifier.verify(token).map_err(|refused| refused.0)?;
        }
        std::hint::black_box(round);
    }
    figure(
        "token_verify_remembered_per_s",
        per_second(5_000, started.elapsed()),
    );
    Ok(())
}

fn child(serial: usize) -> WireNhs {
    WireNhs {
        value: NhsNumber::test_number(serial as u32).to_string(),
    }
}

fn event<M: Message + Name>(payload: &M) -> NewEvent {
    NewEvent::new(M::full_name(), payload.encode_to_vec())
}

/// Writes the registry's log through the log's own API: a plan per child,
/// then earlier lookups until the log holds `scale.events` events.
async fn fill(log: &EventLog, scale: Scale) -> Result<(), Error> {
    let writers = 16;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for serial in (writer..scale.children).step_by(writers) {
                let started = wire::PlanStarted {
                    plan_id: format!("bench-plan-{serial}"),
                    r#type: wire::PlanType::ChildProtection.into(),
                    child_nhs_number: Some(child(serial)),
                    category: AbuseCategory::Neglect.into(),
                    start_date: Some(Date {
                        year: 2026,
                        month: 1,
                        day: 5,
                    }),
                    local_authority: Some(council()),
                    ..wire::PlanStarted::default()
                };
                log.append(
                    &format!("plan-bench-plan-{serial}"),
                    ExpectedVersion::NoStream,
                    vec![event(&started)],
                )
                .await?;
                let lookups = (scale.events - scale.children) / scale.children;
                if lookups > 0 {
                    let looked = wire::ChildLookedUp {
                        local_id: None,
                        nhs_number: Some(child(serial)),
                        caller: Some(nurse()),
                        purpose: "unscheduled care attendance".into(),
                        silent: false,
                        owners: vec![council()],
                        as_of: None,
                    };
                    let batch = (0..lookups).map(|_| event(&looked)).collect();
                    log.append(
                        &format!("child-{}", child(serial).value),
                        ExpectedVersion::Any,
                        batch,
                    )
                    .await?;
                }
            }
            Ok::<_, eventlog::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub async fn run(scale: Scale) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("plan-registry");
    let record_bytes;
    {
        let log = EventLog::open(eventlog::Options::new(&data))?;
        fill(&log, scale).await?;
        let events = log.head() as usize;
        let last = log.read_all(log.head() - 1, 1)?;
        record_bytes = last
            .first()
            .map_or(0, |event| 1 + 32 + event.encoded_envelope().len());
        log.close().await?;
        if events < scale.events - scale.children {
            return Err(format!(
                "the log holds {events} events, expected about {}",
                scale.events
            )
            .into());
        }
    }

    // The log alone first, opened and read through as the registry does at
    // start: the part of the registry's memory that is the storage engine's.
    let alone = Command::new(std::env::current_exe()?)
        .arg(LOG_ALONE_COMMAND)
        .arg(&data)
        .output()
        .await?;
    if !alone.status.success() {
        return Err(format!(
            "the log-alone process failed: {}",
            String::from_utf8_lossy(&alone.stderr)
        )
        .into());
    }
    let mib: f64 = String::from_utf8_lossy(&alone.stdout).trim().parse()?;
    figure(
        "log_alone_rss_mib_per_100k_children",
        (mib * 100_000.0 / scale.children as f64).round(),
    );

    // The registry runs in a process of its own, as it would in service:
    // its memory is its own, not what filling the log left behind here.
    let realm_dir = dir.path().join("realm");
    let (realm, _) = trust::Realm::open_or_create(&realm_dir)?;
    token_verification(&realm)?;
    let mut server = Command::new(std::env::current_exe()?)
        .arg(SERVE_COMMAND)
        .arg(&data)
        .arg(&realm_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().ok_or("no stdout")?).lines();
    let mut address = None;
    let mut fhir_address = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(value) = line.strip_prefix("registry_rss_mib: ") {
            let mib: f64 = value.parse()?;
            figure(
                "registry_rss_mib_per_100k_children",
                (mib * 100_000.0 / scale.children as f64).round(),
            );
        } else if let Some(value) = line.strip_prefix("fhir_listening: ") {
            fhir_address = Some(value.parse::<std::net::SocketAddr>()?);
        } else if let Some(value) = line.strip_prefix("listening: ") {
            address = Some(value.to_owned());
            break;
        } else {
            println!("{line}");
        }
    }
    let address = address.ok_or("the registry process ended before it listened")?;
    let url = format!("https://{address}");
    // The hospital's system, presenting its certificate, and the nurse's
    // token on every call: what an emergency department's would send.
    let credentials = realm.credentials(&nurse_person(), Duration::from_secs(3600))?;
    let (mut channels, mut untokened) = (Vec::new(), Vec::new());
    for _ in 0..CONNECTIONS {
        let channel = trust::client::endpoint(&url, credentials.tls())?
            .connect()
            .await?;
        untokened.push(InterceptedService::new(channel.clone(), Bearer::none()));
        channels.push(InterceptedService::new(channel, credentials.bearer()));
    }

    // The transport's ceiling first, then lookups, the same clients each.
    let (noop, _) = drive(&channels, scale, health_check).await?;
    // The same no-op with the certificate alone, no token: what verifying
    // (remembering) the token adds to each call.
    let (noop_without_token, _) = drive(&untokened, scale, health_check).await?;
    let children = scale.children;
    let (lookups, mut latencies) = drive(&channels, scale, move |channel, n| {
        lookup(channel, n, children, wire::LookupView::Full)
    })
    .await?;
    // The same question through the FHIR edge, with the same certificate
    // and token: as a hospital's integration engine calls a FHIR API
    // (HTTP/1.1, a keep-alive connection for each client at work), and
    // over HTTP/2 on as many connections as the gRPC clients.
    let fhir_address = fhir_address.ok_or("the registry process named no FHIR address")?;
    let issued = realm.organisation_certificate(&domain::OdsCode::parse("RXX01")?)?;
    let bearer = format!(
        "Bearer {}",
        realm.token(&nurse_person(), Duration::from_secs(3600))?
    );
    let connect = |version, count| {
        let (address, ca) = (fhir_address.to_string(), realm.ca_pem());
        let identity = (issued.certificate.clone(), issued.key.clone());
        async move {
            let mut connections = Vec::new();
            for _ in 0..count {
                connections.push(
                    trust::https::connect_with(
                        version,
                        &address,
                        "localhost",
                        ca,
                        Some((&identity.0, &identity.1)),
                    )
                    .await?,
                );
            }
            Ok::<_, String>(connections)
        }
    };
    let http1 = connect(trust::https::Version::Http1, CLIENTS).await?;
    let http2 = connect(trust::https::Version::Http2, CONNECTIONS).await?;
    // Against gRPC lookups asking for what a CareTeam search shows (the
    // plans), taking turns with the searches so that a machine growing
    // busier or quieter, or the log's own background work, weighs on
    // each alike.
    let turn = Scale {
        measure_for: scale.measure_for / 2,
        ..scale
    };
    let (mut plan_lookups, mut grpc_time) = (0, Duration::ZERO);
    let (mut searches, mut fhir_time) = (0, Duration::ZERO);
    let (mut http2_searches, mut http2_time) = (0, Duration::ZERO);
    for _ in 0..scale.rounds {
        let started = Instant::now();
        let ask = move |channel, n| lookup(channel, n, children, wire::LookupView::Plans);
        plan_lookups += drive(&channels, turn, ask).await?.1.len();
        grpc_time += started.elapsed();
        let started = Instant::now();
        searches += search_fhir(&http1, &bearer, turn).await?;
        fhir_time += started.elapsed();
        let started = Instant::now();
        http2_searches += search_fhir(&http2, &bearer, turn).await?;
        http2_time += started.elapsed();
    }
    let plan_lookups = per_second(plan_lookups, grpc_time);
    let fhir_lookups = per_second(searches, fhir_time);
    let http2_lookups = per_second(http2_searches, http2_time);
    figure("lookup_plans_only_per_s", plan_lookups);
    figure("fhir_lookup_per_s", fhir_lookups);
    figure("fhir_vs_grpc_lookup_ratio", fhir_lookups / plan_lookups);
    figure("fhir_http2_lookup_per_s", http2_lookups);
    figure(
        "fhir_http2_vs_grpc_lookup_ratio",
        http2_lookups / plan_lookups,
    );
    figure("lookup_per_s", lookups);
    figure("lookup_p99_ms", percentile_ms(&mut latencies, 99.0));
    figure("noop_grpc_per_s", noop);
    figure("noop_grpc_without_token_per_s", noop_without_token);
    figure("lookup_vs_noop_ratio", lookups / noop);
    // What bare sled needs to store the lookups' events durably, on the same
    // machine with the same writers: if a no-op RPC and that write each
    // took the whole machine, lookups could reach noop·raw/(noop+raw) per
    // second at best, whatever the registry did.
    let raw = crate::log::raw_sled_appends(
        CLIENTS,
        scale.raw_writes_per_client,
        crate::log::RawShape::SameEntriesOf(record_bytes),
    )
    .await?;
    figure("raw_sled_lookup_events_per_s", raw);
    figure("lookup_vs_noop_ceiling_with_sled", raw / (noop + raw));
    drop(server.stdin.take());
    let status = server.wait().await?;
    if !status.success() {
        return Err(format!("the registry process ended with {status}").into());
    }
    Ok(())
}

/// The log-alone process: opens the registry's log and reads every event,
/// as the registry does when it starts, and prints how much memory that
/// took, in MiB.
pub async fn log_alone(data: PathBuf) -> Result<(), Error> {
    let before = rss_mib();
    let log = EventLog::open(eventlog::Options::new(&data))?;
    let mut subscription = log.subscribe(0);
    while subscription.position() < log.head() {
        subscription.next().await?;
    }
    println!("{:.1}", rss_mib() - before);
    drop(subscription);
    log.close().await?;
    Ok(())
}

/// The registry process: rebuilds the registry from the log at `data`,
/// reports how fast and how much memory it took, serves it with gRPC
/// health beside it on a free port, and stops when its stdin closes.
pub async fn serve(data: PathBuf, realm: PathBuf) -> Result<(), Error> {
    let trust = trust::Trust::load(&trust::Realm::open(&realm)?.config())?;
    let before = rss_mib();
    let bus = bus::Bus::in_process();
    let started = Instant::now();
    // One nurse's token drives every lookup: the per-person rate limit,
    // there against enumeration, is lifted to measure the registry itself.
    let settings = service_core::settings::Settings {
        lookups_per_user_per_minute: u32::MAX,
        ..Default::default()
    };
    let registry = registry::open(registry::Options::new(data, &settings), &bus).await?;
    let rebuilt = started.elapsed();
    let head = registry.log().head() as usize;
    figure("registry_rebuild_events_per_s", per_second(head, rebuilt));
    println!("registry_rss_mib: {:.1}", rss_mib() - before);

    let (_health, health_service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // The FHIR edge beside it, in the same process, as `safeguard up` runs
    // it: each search one lookup over the registry's gRPC API, through an
    // in-memory pipe (TLS and HTTP/2 on it as on TCP).
    let edge = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (pipe, piped) = trust::pipe::pair();
    let edge_address = edge.local_addr()?;
    tokio::spawn(fhir::serve(
        edge,
        fhir::Options {
            trust: trust.clone(),
            registry_url: format!("https://{}", listener.local_addr()?),
            registry_pipe: Some(pipe),
            base_url: format!("https://{edge_address}"),
        },
        std::future::pending(),
    ));
    println!("fhir_listening: {edge_address}");
    println!("listening: {}", listener.local_addr()?);
    let log = registry.log().clone();
    let server = tokio::spawn(
        service_core::process::server(&trust, &Default::default(), None)?
            .add_service(health_service)
            .add_service(registry.into_server())
            .serve_with_incoming(service_core::connection::incoming(listener, Some(piped))),
    );
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    stdin.read_to_end(&mut sink).await?;
    server.abort();
    log.close().await?;
    Ok(())
}

/// The emergency department's question over gRPC: a child of the
/// registry's, each call one lookup, answered in `view`.
async fn lookup(
    channel: Authorised,
    n: usize,
    children: usize,
    view: wire::LookupView,
) -> Result<(), tonic::Status> {
    let response = PlanRegistryClient::new(channel)
        .lookup_child(wire::LookupChildRequest {
            nhs_number: Some(child(n % children)),
            purpose: "unscheduled care attendance".into(),
            care_setting: CareSetting::EmergencyDepartment.into(),
            view: view.into(),
            ..wire::LookupChildRequest::default()
        })
        .await?;
    if response.get_ref().plans.is_empty() {
        return Err(tonic::Status::internal(
            "a child with a plan was found without one",
        ));
    }
    Ok(())
}

/// The same question over the FHIR edge, by `CLIENTS` clients sharing
/// `connections` for `scale.measure_for`; returns how many were answered.
async fn search_fhir(
    connections: &[trust::https::Connection],
    bearer: &str,
    scale: Scale,
) -> Result<usize, Error> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let mut connection = connections[client % connections.len()].clone();
        let bearer = bearer.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut done = 0_usize;
            let mut n = client * 7919;
            while started.elapsed() < scale.measure_for {
                let path = format!(
                    "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                    child(n % scale.children).value
                );
                let answer = connection.get(&path, &[("authorization", &bearer)]).await?;
                if answer.status != 200 || !answer.body.windows(8).any(|w| w == b"CareTeam") {
                    return Err(format!("a FHIR search answered {}", answer.status));
                }
                done += 1;
                n += CLIENTS;
            }
            Ok::<_, String>(done)
        }));
    }
    let mut searches = 0;
    for task in tasks {
        searches += task.await??;
    }
    Ok(searches)
}

/// The no-op: gRPC health `Check`, through the same layers as a lookup.
async fn health_check(channel: Authorised, _: usize) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

/// `CLIENTS` tasks calling `call` back to back for `scale.measure_for`;
/// returns calls per second and every call's latency.
async fn drive<F, Fut>(
    channels: &[Authorised],
    scale: Scale,
    call: F,
) -> Result<(f64, Vec<Duration>), Error>
where
    F: Fn(Authorised, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let channel = channels[client % channels.len()].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = client * 7919;
            while started.elapsed() < scale.measure_for {
                let sent = Instant::now();
                call(channel.clone(), n).await?;
                latencies.push(sent.elapsed());
                n += CLIENTS;
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok((per_second(latencies.len(), started.elapsed()), latencies))
}
