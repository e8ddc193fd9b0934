//! `safeguard-bench bus`: the JetStream bus against a real nats-server
//! (fsync on every write), beside plain async-nats publishes of the same
//! messages to a stream with the same settings; how fast a restarted
//! consumer catches up; and how long a plan takes to reach a partner's NATS
//! subscription after the conference that made it, at a steady rate of
//! outcomes; then a registry read replica beside that backbone: how long it
//! takes to catch up, and how soon it shows a write made on the primary.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bus::{Bus, JetStreamOptions};
use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, Date, NhsNumber as WireNhs, Organisation,
    OrganisationKind, Role,
};
use contract::conference::v1 as wire;
use contract::conference::v1::conference_scheduler_client::ConferenceSchedulerClient;
use domain::NhsNumber;
use eventlog::{EventLog, Options, RecordedEvent};
use futures_util::StreamExt;
use natsd::NatsServer;
use natsd::access::NatsIdentity;
use trust::client::Authorised;

use crate::report::{figure, per_second, percentile_ms};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Publishes awaiting their acks at once in the raw baseline: the relay's
/// own window.
const WINDOW: usize = 256;
/// Concurrent requests while the conferences are being prepared.
const PREPARERS: usize = 32;
/// How long the last plans may take to reach the partner before they count
/// as not delivered.
const DELIVER_WITHIN: Duration = Duration::from_secs(60);
/// The start of every trace id the outcomes are sent under; the rest is the
/// outcome's number.
const TRACE_PREFIX: &str = "5afeba5e";

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Events relayed producer → NATS → consumer, and caught up after a
    /// restart.
    events: usize,
    /// Conference outcomes sent at `outcomes_per_s`.
    outcomes: usize,
    outcomes_per_s: u32,
    /// Writes on the registry's primary, each read back on a replica.
    replica_writes: usize,
}

impl Scale {
    pub fn new(quick: bool) -> Self {
        Scale {
            events: if quick { 20_000 } else { 100_000 },
            outcomes: if quick { 1_000 } else { 10_000 },
            outcomes_per_s: 1_000,
            replica_writes: if quick { 100 } else { 1_000 },
        }
    }
}

pub async fn run(scale: Scale) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    // One realm for everything on the server: the backbone's (in its data
    // directory), whose NATS users are the services, the bench's own
    // producer, a partner and an operator.
    let (realm, _) = trust::Realm::open_or_create(&dir.path().join("backbone").join("realm"))?;
    let nats = NatsServer::for_realm(
        &realm,
        2,
        &[
            NatsIdentity::Operator,
            NatsIdentity::Partner {
                ods: PARTNER.into(),
            },
            NatsIdentity::Service {
                producer: "bench".into(),
                follows: vec!["bench".into()],
            },
        ],
    )?;
    let operator = nats_credentials(&realm, "operator")?;
    let log = EventLog::open(Options::new(dir.path().join("producer")))?;
    crate::log::fill(&log, scale.events).await?;
    let records = log.read_all(0, scale.events)?;

    let trust = trust::Trust::load(&realm.config_as("bench")?)?;
    let options = || JetStreamOptions::trusted(nats.url(), &trust);

    // The baseline over the same TLS, signed in with an NKEY as the bus is.
    let raw = raw_jetstream_publishes(
        bus::connect_nats(&nats.url(), Some(&operator)).await?,
        &records,
        options()?.duplicate_window,
    )
    .await?;
    figure("raw_jetstream_publish_per_s", raw);
    let (signed, verified) = signatures(&trust, &records)?;
    figure("record_sign_per_s", signed);
    figure("record_verify_per_s", verified);
    let relayed = relayed_and_consumed(options()?, options()?, &log, scale.events).await?;
    figure("bus_events_per_s", relayed);
    figure(
        "bus_vs_raw_jetstream_ratio",
        (relayed / raw * 1000.0).round() / 1000.0,
    );
    // The share of one core that checking every record's signature alone
    // would take at the bus's rate: the most it costs, since a consumer
    // vouches for a run of waiting records with one check (signing is the
    // relay's, on the producer's side).
    figure(
        "record_check_core_share_at_bus_rate",
        (relayed / verified * 1000.0).round() / 1000.0,
    );
    let recovery = catch_up_after_restart(options()?, scale.events).await?;
    figure("recovery_events", scale.events as f64);
    figure(
        "recovery_s",
        (recovery.as_secs_f64() * 1000.0).round() / 1000.0,
    );
    log.close().await?;

    outcome_to_partner(&nats.url(), &realm, dir.path(), scale).await
}

/// The partner whose notifications the bench receives: the GP practice on
/// every case's care team.
const PARTNER: &str = "Y99001";

/// How the realm's NATS user `name` connects.
fn nats_credentials(realm: &trust::Realm, name: &str) -> Result<trust::NatsClient, Error> {
    trust::Trust::load(&realm.config_as(name)?)?
        .nats_client()?
        .ok_or_else(|| format!("no NATS credentials for {name}").into())
}

/// The baseline: each record published with plain async-nats, with the
/// bus's headers and message id, to a stream with the bus's settings,
/// keeping the relay's window of publishes awaiting acks.
async fn raw_jetstream_publishes(
    client: async_nats::Client,
    records: &[RecordedEvent],
    duplicate_window: Duration,
) -> Result<f64, Error> {
    let context = jetstream::new(client);
    context
        .get_or_create_stream(stream::Config {
            name: "BENCH_RAW".into(),
            subjects: vec!["bench.raw.>".into()],
            storage: stream::StorageType::File,
            num_replicas: 1,
            duplicate_window,
            ..stream::Config::default()
        })
        .await?;
    let started = Instant::now();
    let mut in_flight = VecDeque::new();
    for event in records {
        if in_flight.len() == WINDOW
            && let Some(ack) = in_flight.pop_front()
        {
            let ack: jetstream::context::PublishAckFuture = ack;
            ack.await?;
        }
        let mut headers = HeaderMap::new();
        headers.insert(bus::POSITION_HEADER, event.position().to_string().as_str());
        headers.insert(bus::PRODUCER_HEADER, "bench-raw");
        headers.insert(bus::CONTENT_TYPE_HEADER, "safeguard.bench.v1.Payload");
        let message = jetstream::message::PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(event.record()))
            .headers(headers)
            .message_id(format!("raw-{}", event.position()));
        in_flight.push_back(context.send_publish("bench.raw.Payload", message).await?);
    }
    for ack in in_flight {
        ack.await?;
    }
    Ok(per_second(records.len(), started.elapsed()))
}

/// The bus: a producer's log, already written, relayed from its start to
/// JetStream and read by a consumer on a second connection, in order. The
/// clock runs from registering the producer to the consumer holding the
/// last event.
async fn relayed_and_consumed(
    producer: JetStreamOptions,
    consumer: JetStreamOptions,
    log: &EventLog,
    events: usize,
) -> Result<f64, Error> {
    let producer = Bus::jetstream(producer).await?;
    let consumer = Bus::jetstream(consumer).await?;
    let started = Instant::now();
    producer.register_producer("bench", log.clone()).await?;
    let mut subscription = consumer.subscribe("bench.consumer", "bench", 0).await?;
    for expected in 0..events as u64 {
        let delivery = subscription.next().await?;
        if delivery.event.position() != expected {
            return Err(format!(
                "the consumer received position {} where {expected} was due",
                delivery.event.position()
            )
            .into());
        }
    }
    Ok(per_second(events, started.elapsed()))
}

/// A consumer that starts again (a new connection, its cursor at 0) and
/// reads all `events` from the stream.
async fn catch_up_after_restart(
    options: JetStreamOptions,
    events: usize,
) -> Result<Duration, Error> {
    let restarted = Bus::jetstream(options).await?;
    let started = Instant::now();
    let mut subscription = restarted.subscribe("bench.restarted", "bench", 0).await?;
    for _ in 0..events {
        subscription.next().await?;
    }
    Ok(started.elapsed())
}

/// How fast a record's signature is made (by a relay) and checked (by a
/// consumer), over the records the bus carries.
fn signatures(trust: &trust::Trust, records: &[RecordedEvent]) -> Result<(f64, f64), Error> {
    let signer = trust.event_signer()?;
    let keys = trust.event_keys()?;
    let started = Instant::now();
    let signatures = records
        .iter()
        .map(|event| signer.sign("bench", event.position(), &event.hash()))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = per_second(records.len(), started.elapsed());
    let started = Instant::now();
    for (event, signature) in records.iter().zip(&signatures) {
        keys.verify("bench", event.position(), &event.hash(), signature)?;
    }
    Ok((signed, per_second(records.len(), started.elapsed())))
}

fn council() -> Organisation {
    organisation("E09000999", OrganisationKind::LocalAuthority)
}

fn organisation(ods: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: format!("Bench organisation {ods}"),
        kind: kind.into(),
    }
}

fn chair() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(council()),
        user_id: "bench-chair".into(),
        display_name: "Bench Chair".into(),
        role: Role::ConferenceChair.into(),
        care_setting: CareSetting::SocialCare.into(),
    }
}

fn invitee(role: wire::InviteeRole, ods: &str, kind: OrganisationKind) -> wire::Invitee {
    wire::Invitee {
        role: role.into(),
        organisation: Some(organisation(ods, kind)),
        ..wire::Invitee::default()
    }
}

/// The W3C trace context outcome `number` is sent under.
fn traceparent(number: usize) -> String {
    format!("00-{TRACE_PREFIX}{number:024x}-{:016x}-01", number + 1)
}

/// The outcome number a `traceparent` header was sent under, if the bench
/// sent it.
fn outcome_number(traceparent: &str) -> Option<usize> {
    let trace_id = traceparent.split('-').nth(1)?;
    usize::from_str_radix(trace_id.strip_prefix(TRACE_PREFIX)?, 16).ok()
}

/// The backbone in one process over NATS; `scale.outcomes` initial
/// conferences prepared (created, invitations, date, attendance), then
/// their outcomes recorded at a steady rate, each making a plan. A partner
/// (the GP practice on each care team) subscribes to its own
/// `safeguard.notification.<ODS>.NotificationRaised` with plain NATS, as
/// its credentials allow, and matches each notification to its outcome by
/// trace id.
async fn outcome_to_partner(
    url: &str,
    realm: &trust::Realm,
    dir: &std::path::Path,
    scale: Scale,
) -> Result<(), Error> {
    let running = safeguard::backbone::start(&safeguard::backbone::Config {
        data_dir: dir.join("backbone"),
        listen: ([127, 0, 0, 1], 0).into(),
        nats: Some(url.to_owned()),
        // The cases are dated in the past, so their reviews are overdue: no
        // deadline check may add its notifications to the measurement.
        settings: service_core::settings::Settings {
            deadline_check_seconds: 24 * 60 * 60,
            // One nurse reads after every write: not what the limit is for.
            lookups_per_user_per_minute: u32::MAX,
            ..Default::default()
        },
        ..safeguard::backbone::Config::default()
    })
    .await?;
    let endpoint = format!("https://{}", running.address);
    // The chair's system, over mutual TLS with the chair's token, as any
    // agency's would: four connections.
    let realm_dir = running.realm.clone().ok_or("no development realm")?;
    let chair_person = safeguard::agencies::person(&chair());
    let mut clients = Vec::new();
    for _ in 0..4 {
        let credentials = realm.credentials(&chair_person, safeguard::agencies::SESSION)?;
        clients.push(ConferenceSchedulerClient::new(
            credentials.connect(&endpoint)?,
        ));
    }

    let conferences = prepare(&clients, scale.outcomes).await?;
    // The preparation's own consequences (invitations notified) must not
    // queue ahead of the outcomes.
    quiet(&running).await;

    let partner = bus::connect_nats(
        url,
        Some(&nats_credentials(
            realm,
            &natsd::access::partner_consumer(PARTNER),
        )?),
    )
    .await?;
    let mut notifications = partner
        .subscribe(format!(
            "{}.{PARTNER}.NotificationRaised",
            bus::subject_prefix(contract::producers::NOTIFICATION)
        ))
        .await?;
    let received: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; scale.outcomes]));
    let listener = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(message) = notifications.next().await {
                let at = Instant::now();
                let number = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(bus::TRACEPARENT_HEADER))
                    .and_then(|value| outcome_number(value.as_str()));
                if let Some(number) = number
                    && let Ok(mut received) = received.lock()
                    && let Some(slot) = received.get_mut(number)
                {
                    slot.get_or_insert(at);
                }
            }
        })
    };

    let messages_before = jetstream_messages(url, realm).await?;
    let returned: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; scale.outcomes]));
    let interval = Duration::from_secs(1) / scale.outcomes_per_s;
    let started = tokio::time::Instant::now();
    let mut sends = Vec::with_capacity(scale.outcomes);
    for (number, conference_id) in conferences.into_iter().enumerate() {
        tokio::time::sleep_until(started + interval * number as u32).await;
        let mut client = clients[number % clients.len()].clone();
        let returned = returned.clone();
        sends.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(wire::RecordOutcomeRequest {
                conference_id,
                outcome: Some(wire::Outcome {
                    kind: Some(wire::outcome::Kind::Initial(wire::InitialOutcome {
                        plan: true,
                        category: AbuseCategory::Neglect.into(),
                    })),
                    quorum_override_reason: String::new(),
                }),
            });
            request
                .metadata_mut()
                .insert("traceparent", traceparent(number).parse()?);
            client.record_outcome(request).await?;
            let at = Instant::now();
            if let Ok(mut returned) = returned.lock() {
                returned[number] = Some(at);
            }
            Ok::<_, Error>(())
        }));
    }
    let mut failed = 0;
    for send in sends {
        if send
            .await
            .map_err(Error::from)
            .and_then(|sent| sent)
            .is_err()
        {
            failed += 1;
        }
    }
    let sent_for = started.elapsed();

    let waited = Instant::now();
    let mut latencies = loop {
        let latencies = delivered_latencies(&returned, &received);
        if latencies.len() + failed >= scale.outcomes || waited.elapsed() > DELIVER_WITHIN {
            break latencies;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let last_received = received
        .lock()
        .map(|received| received.iter().flatten().max().copied())
        .ok()
        .flatten();
    listener.abort();
    quiet(&running).await;
    let messages = jetstream_messages(url, realm).await? - messages_before;

    figure("e2e_outcomes", scale.outcomes as f64);
    figure("e2e_outcomes_per_s", per_second(scale.outcomes, sent_for));
    figure("e2e_outcome_failures", failed as f64);
    figure("e2e_delivered", latencies.len() as f64);
    if let Some(last) = last_received {
        let span = last.saturating_duration_since(started.into_std());
        figure("e2e_delivered_per_s", per_second(latencies.len(), span));
    }
    figure(
        "e2e_jetstream_messages_per_outcome",
        (messages as f64 / scale.outcomes as f64 * 10.0).round() / 10.0,
    );
    figure("e2e_p50_ms", percentile_ms(&mut latencies, 50.0));
    figure("e2e_p99_ms", percentile_ms(&mut latencies, 99.0));
    // The backbone, now holding every plan, as the registry's primary.
    let replica = replica_reads(url, dir, &endpoint, &realm_dir, scale).await;
    running.stop().await?;
    replica?;
    if failed > 0 || latencies.len() < scale.outcomes {
        return Err(format!(
            "{failed} outcomes failed and {} plans did not reach the partner within {DELIVER_WITHIN:?}",
            scale.outcomes - failed - latencies.len()
        )
        .into());
    }
    Ok(())
}

/// A registry read replica beside the backbone (its primary): how long it
/// takes to start, catching up with every plan and lookup the primary has
/// published; and how long after a write on the primary a read passing its
/// token answers on the replica, against the same read on the primary.
async fn replica_reads(
    url: &str,
    dir: &std::path::Path,
    primary_url: &str,
    realm_dir: &std::path::Path,
    scale: Scale,
) -> Result<(), Error> {
    let realm = trust::Realm::open(realm_dir)?;
    let trust = trust::Trust::load(&realm.config_as(&contract::producers::plan_registry_pod(1))?)?;
    use contract::registry::v1 as registry_wire;
    use contract::registry::v1::plan_registry_client::PlanRegistryClient;

    let bus = Bus::jetstream(JetStreamOptions::trusted(url.to_owned(), &trust)?).await?;
    let published = bus
        .published_head(contract::producers::PLAN_REGISTRY)
        .await?;
    let started = Instant::now();
    let replica = registry::open(
        registry::Options {
            pods: 2,
            pod: 1,
            primary_url: Some(primary_url.to_owned()),
            primary_tls: Some(trust.service_client_tls()),
            ..registry::Options::new(
                dir.join("replica"),
                &service_core::settings::Settings {
                    lookups_per_user_per_minute: u32::MAX,
                    ..Default::default()
                },
            )
        },
        &bus,
    )
    .await?;
    let caught_up = started.elapsed();
    figure("replica_catch_up_events", published as f64);
    figure(
        "replica_catch_up_s",
        (caught_up.as_secs_f64() * 1000.0).round() / 1000.0,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let replica_url = format!("https://{}", listener.local_addr()?);
    let log = replica.log().clone();
    let server = tokio::spawn(
        service_core::process::server(&trust, &Default::default(), None)?
            .add_service(replica.into_server())
            .serve_with_incoming(service_core::connection::incoming(listener, None)),
    );

    let agencies =
        safeguard::agencies::Agencies::new(realm, safeguard::demo::Endpoints::one(primary_url));
    let mut primary = PlanRegistryClient::new(agencies.authorised(&chair(), primary_url)?);
    let nurse = CallerIdentity {
        organisation: Some(organisation("RXX01", OrganisationKind::NhsTrust)),
        user_id: "bench-nurse".into(),
        display_name: "Bench Nurse".into(),
        // Reads after each write are silent: a role that may read so.
        role: Role::NamedSafeguardingProfessional.into(),
        care_setting: CareSetting::EmergencyDepartment.into(),
    };
    let primary_nurse = PlanRegistryClient::new(agencies.authorised(&nurse, primary_url)?);
    let replica = PlanRegistryClient::new(agencies.authorised(&nurse, &replica_url)?);
    let (mut on_primary, mut on_replica) = (Vec::new(), Vec::new());
    for write in 0..scale.replica_writes {
        // A write on the primary: a new out-of-hours number.
        let written = primary
            .set_local_authority_contacts(registry_wire::SetLocalAuthorityContactsRequest {
                contacts: Some(registry_wire::LocalAuthorityContacts {
                    local_authority: Some(council()),
                    office_hours_phone: "01632 960000".into(),
                    out_of_hours_phone: format!("01632 96{:04}", write % 10_000),
                    missing_numbers: String::new(),
                }),
            })
            .await?
            .into_inner();
        let returned = Instant::now();
        let read = registry_wire::LookupChildRequest {
            care_setting: CareSetting::EmergencyDepartment.into(),
            nhs_number: Some(WireNhs {
                value: NhsNumber::test_number(write as u32).to_string(),
            }),
            purpose: "bench read after a write".into(),
            silent: true,
            min_token: written.token,
            ..registry_wire::LookupChildRequest::default()
        };
        // Both at once, each timed from the write's answer.
        let timed = |client: &PlanRegistryClient<Authorised>, read| {
            let mut client = client.clone();
            async move {
                client.lookup_child(read).await?;
                Ok::<_, Error>(returned.elapsed())
            }
        };
        let (read_on_replica, read_on_primary) =
            tokio::join!(timed(&replica, read.clone()), timed(&primary_nurse, read));
        on_replica.push(read_on_replica?);
        on_primary.push(read_on_primary?);
    }
    server.abort();
    log.close().await?;
    figure(
        "replica_read_your_write_p50_ms",
        percentile_ms(&mut on_replica, 50.0),
    );
    figure(
        "replica_read_your_write_p99_ms",
        percentile_ms(&mut on_replica, 99.0),
    );
    figure(
        "primary_read_your_write_p50_ms",
        percentile_ms(&mut on_primary, 50.0),
    );
    Ok(())
}

/// Messages in the services' streams, all told.
async fn jetstream_messages(url: &str, realm: &trust::Realm) -> Result<u64, Error> {
    let context =
        jetstream::new(bus::connect_nats(url, Some(&nats_credentials(realm, "operator")?)).await?);
    let mut total = 0;
    for producer in contract::producers::ALL {
        let mut stream = context.get_stream(bus::stream_name(producer)).await?;
        total += stream.info().await?.state.messages;
    }
    Ok(total)
}

/// Waits until no service has written for a second.
async fn quiet(running: &safeguard::backbone::Running) {
    let mut heads = running.log_heads();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = running.log_heads();
        if now != heads {
            heads = now;
            quiet_since = Instant::now();
        }
    }
}

/// From each outcome's return to its first notification at the partner,
/// for those that have both.
fn delivered_latencies(
    returned: &Mutex<Vec<Option<Instant>>>,
    received: &Mutex<Vec<Option<Instant>>>,
) -> Vec<Duration> {
    let (Ok(returned), Ok(received)) = (returned.lock(), received.lock()) else {
        return Vec::new();
    };
    returned
        .iter()
        .zip(received.iter())
        .filter_map(|pair| match pair {
            (Some(returned), Some(received)) => Some(received.saturating_duration_since(*returned)),
            _ => None,
        })
        .collect()
}

/// `count` initial conferences, each for a child of its own, ready for an
/// outcome: created, police and GP invited, scheduled, quorate attendance
/// recorded. Returns their ids in order.
async fn prepare(
    clients: &[ConferenceSchedulerClient<Authorised>],
    count: usize,
) -> Result<Vec<String>, Error> {
    let mut tasks = Vec::new();
    for preparer in 0..PREPARERS {
        let mut client = clients[preparer % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut prepared = Vec::new();
            for number in (preparer..count).step_by(PREPARERS) {
                prepared.push((number, prepare_one(&mut client, number).await?));
            }
            Ok::<_, Error>(prepared)
        }));
    }
    let mut ids = vec![String::new(); count];
    for task in tasks {
        for (number, id) in task.await?? {
            ids[number] = id;
        }
    }
    Ok(ids)
}

async fn prepare_one(
    client: &mut ConferenceSchedulerClient<Authorised>,
    number: usize,
) -> Result<String, Error> {
    let date = |day| {
        Some(Date {
            year: 2026,
            month: 1,
            day,
        })
    };
    let created = client
        .create_conference(wire::CreateConferenceRequest {
            kind: wire::ConferenceKind::Initial.into(),
            child_nhs_number: Some(WireNhs {
                value: NhsNumber::test_number(number as u32).to_string(),
            }),
            child_name: format!("Bench Child {number}"),
            local_authority: Some(council()),
            clock_starts: date(6),
            idempotency_key: format!("bench-conference-{number}"),
            ..wire::CreateConferenceRequest::default()
        })
        .await?
        .into_inner();
    let id = created
        .conference
        .ok_or("CreateConference answered without a conference")?
        .conference_id;
    let present = vec![
        invitee(
            wire::InviteeRole::SocialCare,
            "E09000999",
            OrganisationKind::LocalAuthority,
        ),
        invitee(
            wire::InviteeRole::Police,
            "P99001",
            OrganisationKind::Police,
        ),
        invitee(
            wire::InviteeRole::Gp,
            "Y99001",
            OrganisationKind::GpPractice,
        ),
    ];
    client
        .update_invitations(wire::UpdateInvitationsRequest {
            conference_id: id.clone(),
            add: present[1..].to_vec(),
            remove: vec![],
        })
        .await?;
    client
        .schedule_conference(wire::ScheduleConferenceRequest {
            conference_id: id.clone(),
            scheduled_for: Some(prost_types::Timestamp {
                seconds: 1_768_900_000,
                nanos: 0,
            }),
            venue: "Civic Centre".into(),
        })
        .await?;
    client
        .record_attendance(wire::RecordAttendanceRequest {
            conference_id: id.clone(),
            present,
            held_on: date(20),
        })
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_found_again_from_its_traceparent() {
        for number in [0, 1, 999, 123_456] {
            assert_eq!(outcome_number(&traceparent(number)), Some(number));
        }
        assert_eq!(traceparent(0).len(), 55);
        assert_eq!(
            outcome_number("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None
        );
    }
}
