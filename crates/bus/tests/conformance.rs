//! The bus contract, run against both buses (in process, and NATS JetStream
//! with a real nats-server): order per producer, resumption from a
//! position, how far a producer has published, late producers, redelivery, duplicates dropped, gaps repaired
//! from the producer, and a NATS outage waited out with nothing lost.

use std::time::Duration;

use bus::{Bus, BusSubscription, JetStreamOptions};
use eventlog::{EventLog, ExpectedVersion, NewEvent, Options};
use natsd::NatsServer;
use tokio::time::timeout;

/// One bus under test, with what it needs kept alive.
struct World {
    bus: Bus,
    nats: Option<NatsServer>,
    /// The development realm whose keys sign and check records.
    trust: trust::Trust,
    realm: trust::Realm,
    _dirs: Vec<tempfile::TempDir>,
    logs: Vec<EventLog>,
}

#[derive(Debug, Clone, Copy)]
enum Flavour {
    InProcess,
    JetStream,
}

impl World {
    async fn new(flavour: Flavour) -> World {
        let realm_dir = tempfile::tempdir().expect("dir");
        let (realm, _) =
            trust::Realm::open_or_create(&realm_dir.path().join("realm")).expect("realm");
        let nats = match flavour {
            Flavour::InProcess => None,
            Flavour::JetStream => Some(
                NatsServer::for_realm(&realm, 2, &[natsd::access::NatsIdentity::Operator])
                    .expect("nats-server"),
            ),
        };
        // The tests' bus is the one-process backbone's NATS identity.
        let trust =
            trust::Trust::load(&realm.config_as("backbone").expect("config")).expect("trust");
        let bus = match &nats {
            None => Bus::in_process(),
            Some(server) => Bus::jetstream(options(server, &trust))
                .await
                .expect("connect"),
        };
        World {
            bus,
            nats,
            trust,
            realm,
            _dirs: vec![realm_dir],
            logs: Vec::new(),
        }
    }

    fn log(&mut self) -> EventLog {
        let dir = tempfile::tempdir().expect("dir");
        let log = EventLog::open(Options::new(dir.path())).expect("open");
        self._dirs.push(dir);
        self.logs.push(log.clone());
        log
    }

    /// A log registered as `producer`'s.
    async fn producer(&mut self, producer: &str) -> EventLog {
        let log = self.log();
        self.bus
            .register_producer(producer, log.clone())
            .await
            .expect("register");
        log
    }

    async fn subscribe(&self, consumer: &str, producer: &str, from: u64) -> BusSubscription {
        self.bus
            .subscribe(consumer, producer, from)
            .await
            .expect("subscribe")
    }

    /// A plain NATS client signed in as the realm's NATS user `name`
    /// ("operator", or a service's producer name).
    async fn client_as(&self, name: &str) -> async_nats::Client {
        let server = self.nats.as_ref().expect("a NATS server");
        let trust =
            trust::Trust::load(&self.realm.config_as(name).expect("config")).expect("trust");
        bus::connect_nats(
            &server.url(),
            trust.nats_client().expect("credentials").as_ref(),
        )
        .await
        .expect("connect")
    }

    async fn close(self) {
        for log in self.logs {
            log.close().await.expect("close");
        }
    }
}

/// The options of a process of the realm `trust` on `server`.
fn options(server: &NatsServer, trust: &trust::Trust) -> JetStreamOptions {
    JetStreamOptions::trusted(server.url(), trust).expect("options")
}

async fn positions(subscription: &mut BusSubscription, count: usize) -> Vec<u64> {
    let mut positions = Vec::new();
    for _ in 0..count {
        let delivery = timeout(Duration::from_secs(30), subscription.next())
            .await
            .expect("in time")
            .expect("delivery");
        assert_eq!(&*delivery.producer, subscription.producer());
        positions.push(delivery.event.position());
    }
    positions
}

async fn append(log: &EventLog, count: usize) {
    for _ in 0..count {
        log.append(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("safeguard.test.v1.Happened", b"x".to_vec())],
        )
        .await
        .expect("append");
    }
}

async fn order_and_resumption(flavour: Flavour) {
    let mut world = World::new(flavour).await;
    // A consumer may subscribe before its producer exists.
    let early = {
        let bus = world.bus.clone();
        tokio::spawn(async move { bus.subscribe("test.early", "referral-intake", 0).await })
    };
    let referrals = world.log();
    let conferences = world.log();
    world
        .bus
        .register_producer("referral-intake", referrals.clone())
        .await
        .expect("register");
    world
        .bus
        .register_producer("conference-scheduler", conferences.clone())
        .await
        .expect("register");
    assert!(
        world
            .bus
            .register_producer("referral-intake", referrals.clone())
            .await
            .is_err()
    );
    append(&referrals, 5).await;
    append(&conferences, 3).await;

    let mut early = early.await.expect("task").expect("subscribe");
    assert_eq!(positions(&mut early, 5).await, [0, 1, 2, 3, 4]);
    let mut resumed = world.subscribe("test.resumed", "referral-intake", 3).await;
    assert_eq!(positions(&mut resumed, 2).await, [3, 4]);
    let mut other = world
        .subscribe("test.other", "conference-scheduler", 0)
        .await;
    assert_eq!(positions(&mut other, 3).await, [0, 1, 2]);
    // And live, as they come.
    append(&referrals, 2).await;
    assert_eq!(positions(&mut early, 2).await, [5, 6]);
    assert_eq!(positions(&mut resumed, 2).await, [5, 6]);
    // How far a follower must read to have everything published so far.
    let head = |producer: &'static str| {
        let bus = world.bus.clone();
        async move { bus.published_head(producer).await.expect("head") }
    };
    assert_eq!(head("referral-intake").await, 7);
    assert_eq!(head("conference-scheduler").await, 3);
    assert_eq!(
        head("plan-registry-1").await,
        0,
        "a producer yet to publish"
    );
    world.close().await;
}

/// A consumer that stops before it has handled an event gets it again when
/// it resumes from its cursor, and the rest after it.
async fn redelivery(flavour: Flavour) {
    let mut world = World::new(flavour).await;
    let log = world.producer("referral-intake").await;
    append(&log, 6).await;
    let mut first = world.subscribe("test.rule", "referral-intake", 0).await;
    assert_eq!(positions(&mut first, 3).await, [0, 1, 2]);
    drop(first);
    // Its cursor says 0..2 are handled: it resumes at 2, not yet handled.
    let mut again = world.subscribe("test.rule", "referral-intake", 2).await;
    assert_eq!(positions(&mut again, 4).await, [2, 3, 4, 5]);
    world.close().await;
}

/// However often the transport repeats an event, a subscription passes
/// each position on once, in order.
async fn duplicates_are_dropped(flavour: Flavour) {
    let mut world = World::new(flavour).await;
    let log = world.producer("referral-intake").await;
    append(&log, 4).await;
    let mut subscription = world.subscribe("test.dedup", "referral-intake", 0).await;
    assert_eq!(positions(&mut subscription, 4).await, [0, 1, 2, 3]);
    if world.nats.is_some() {
        // Publish the same records again: once with their event ids (the
        // server drops them), once under new ids (the server keeps them;
        // the subscription must not pass them on).
        let client = world.client_as("operator").await;
        let jetstream = async_nats::jetstream::new(client);
        for (event, fresh_id) in log
            .read_all(0, 4)
            .expect("read")
            .into_iter()
            .flat_map(|event| [(event.clone(), false), (event, true)])
        {
            let envelope = event.envelope().expect("envelope");
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Safeguard-Position", event.position().to_string().as_str());
            let id = if fresh_id {
                format!("again-{}", event.position())
            } else {
                eventlog::EventId::from_slice(&envelope.event_id)
                    .expect("id")
                    .to_string()
            };
            headers.insert("Nats-Msg-Id", id.as_str());
            jetstream
                .publish_with_headers(
                    bus::subject("referral-intake", None, &envelope.content_type),
                    headers,
                    event.record().to_vec().into(),
                )
                .await
                .expect("publish")
                .await
                .expect("ack");
        }
    }
    append(&log, 1).await;
    assert_eq!(positions(&mut subscription, 1).await, [4]);
    world.close().await;
}

/// Waits until the relay has published `count` of `producer`'s events,
/// then deletes them from the stream, as a JetStream loss would.
async fn lose_published(world: &World, producer: &str, count: u64) {
    let client = world.client_as("operator").await;
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream(bus::stream_name(producer))
        .await
        .expect("stream");
    for _ in 0..300 {
        if stream.info().await.expect("info").state.messages >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream.purge().await.expect("purge");
    assert_eq!(stream.info().await.expect("info").state.messages, 0);
}

/// Events lost from the transport are read from the producer: nothing is
/// lost for good while the producer's log exists.
async fn gaps_are_repaired(flavour: Flavour) {
    let mut world = World::new(flavour).await;
    let log = world.producer("referral-intake").await;
    append(&log, 5).await;
    if world.nats.is_some() {
        lose_published(&world, "referral-intake", 5).await;
    }
    append(&log, 3).await;
    let mut subscription = world.subscribe("test.repair", "referral-intake", 0).await;
    assert_eq!(
        positions(&mut subscription, 8).await,
        [0, 1, 2, 3, 4, 5, 6, 7]
    );
    world.close().await;
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Flavour::InProcess).await;
                }
            )*
        }
        mod jetstream {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Flavour::JetStream).await;
                }
            )*
        }
    };
}

both!(
    order_and_resumption,
    redelivery,
    duplicates_are_dropped,
    gaps_are_repaired
);

/// With NATS down, the producer keeps writing; once NATS is back, the
/// relay publishes what it missed and the consumer gets everything, once.
#[tokio::test]
async fn a_nats_outage_is_waited_out_with_nothing_lost() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    let mut subscription = world.subscribe("test.outage", "referral-intake", 0).await;
    append(&log, 3).await;
    assert_eq!(positions(&mut subscription, 3).await, [0, 1, 2]);
    world.nats.as_mut().expect("server").stop();
    // Writes are accepted while the bus is away.
    timeout(Duration::from_secs(5), append(&log, 4))
        .await
        .expect("writes do not wait for NATS");
    tokio::time::sleep(Duration::from_secs(1)).await;
    world
        .nats
        .as_mut()
        .expect("server")
        .resume()
        .expect("resume");
    assert_eq!(positions(&mut subscription, 4).await, [3, 4, 5, 6]);
    world.close().await;
}

/// A consumer in another process repairs a gap over the producer's
/// `ReadEvents` RPC.
#[tokio::test]
async fn a_gap_is_repaired_from_a_producer_in_another_process() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    // The producer's process serves its log.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    // Over mutual TLS, as between the backbone's processes: the reader
    // answers only a service's certificate.
    let trust = world.trust.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(trust.server_tls())
            .expect("TLS")
            .layer(trust.authenticate())
            .add_service(
                bus::LogReader::new()
                    .with("referral-intake", log.clone())
                    .into_server(),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    append(&log, 5).await;
    lose_published(&world, "referral-intake", 5).await;
    let server = world.nats.as_ref().expect("server");
    append(&log, 2).await;

    // The consumer's process knows the producer only by its address.
    let mut options = options(server, &trust);
    options
        .producer_urls
        .insert("referral-intake".into(), format!("https://{address}"));
    let elsewhere = Bus::jetstream(options).await.expect("connect");
    let mut subscription = elsewhere
        .subscribe("test.remote-repair", "referral-intake", 0)
        .await
        .expect("subscribe");
    assert_eq!(positions(&mut subscription, 7).await, [0, 1, 2, 3, 4, 5, 6]);
    world.close().await;
}

/// Over JetStream: three events delivered, then `fault` done to the server
/// by a client of its own, then three more, which must arrive in order.
async fn delivery_goes_on_after<F, Fault>(consumer: &str, fault: F)
where
    F: FnOnce(async_nats::jetstream::Context) -> Fault,
    Fault: Future<Output = ()>,
{
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    let mut subscription = world.subscribe(consumer, "referral-intake", 0).await;
    append(&log, 3).await;
    assert_eq!(positions(&mut subscription, 3).await, [0, 1, 2]);
    let server = world.nats.as_ref().expect("server");
    let _ = server;
    let client = world.client_as("operator").await;
    fault(async_nats::jetstream::new(client)).await;
    append(&log, 3).await;
    assert_eq!(positions(&mut subscription, 3).await, [3, 4, 5]);
    world.close().await;
}

/// A consumer deleted on the server (by an operator, say) is made again
/// from the subscriber's position, and delivery goes on where it was.
#[tokio::test]
async fn a_consumer_deleted_on_the_server_is_made_again() {
    delivery_goes_on_after("test.deleted", |context| async move {
        context
            .get_stream(bus::stream_name("referral-intake"))
            .await
            .expect("stream")
            .delete_consumer("test_deleted")
            .await
            .expect("delete the consumer");
    })
    .await;
}

/// A stream deleted on the server is made again by the relay and the
/// consumer; what was published after it went is delivered, in order.
#[tokio::test]
async fn a_stream_deleted_on_the_server_is_made_again() {
    delivery_goes_on_after("test.stream-deleted", |context| async move {
        context
            .delete_stream(bus::stream_name("referral-intake"))
            .await
            .expect("delete the stream");
    })
    .await;
}

/// A message on a producer's subjects that is not one of its records
/// (published by someone else) is passed by; the events go on arriving.
#[tokio::test]
async fn a_message_that_is_not_an_event_is_passed_by() {
    delivery_goes_on_after("test.not-an-event", |context| async move {
        context
            .publish("safeguard.referral-intake.Bogus", "not a record".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    })
    .await;
}

/// How far a producer has published is judged from its last record, past
/// a message at the end of its stream that is not one.
#[tokio::test]
async fn the_published_head_is_found_past_a_message_that_is_not_an_event() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    let mut subscription = world.subscribe("test.head", "referral-intake", 0).await;
    append(&log, 3).await;
    assert_eq!(positions(&mut subscription, 3).await, [0, 1, 2]);
    let server = world.nats.as_ref().expect("server");
    let _ = server;
    let client = world.client_as("referral-intake").await;
    async_nats::jetstream::new(client)
        .publish("safeguard.referral-intake.Bogus", "not a record".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let head = world.bus.published_head("referral-intake").await;
    assert_eq!(head.expect("head"), 3);
    world.close().await;
}

/// A record published on a producer's subject by someone holding NATS
/// credentials that let them (a compromised key) but not the producer's
/// signing key: it chains correctly, claims the next position and even the
/// true record's event id (so the server drops the true one as a
/// duplicate), yet it is refused, reported, and the true record is read
/// from the producer in its place.
#[tokio::test]
async fn a_forged_record_is_refused_and_the_true_one_repaired_from_the_producer() {
    use eventlog::record::encode_record;

    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    let mut subscription = world.subscribe("test.forged", "referral-intake", 0).await;
    let mut alarms = subscription
        .take_alarms()
        .expect("JetStream reports refusals");
    append(&log, 3).await;
    assert_eq!(positions(&mut subscription, 3).await, [0, 1, 2]);

    let genuine_id = eventlog::EventId::new();
    let last = log.read_all(2, 1).expect("read").remove(0);
    let mut envelope = last.envelope().expect("envelope");
    envelope.event_id = genuine_id.as_bytes().to_vec();
    envelope.global_position = 3;
    envelope.stream_version = 3;
    envelope.payload = b"forged".to_vec();
    let (record, hash) = encode_record(&last.hash(), &envelope);
    let other_dir = tempfile::tempdir().expect("dir");
    trust::Realm::open_or_create(other_dir.path()).expect("another realm");
    let other_key = std::fs::read_to_string(other_dir.path().join("server.key")).expect("key");
    let signature = trust::EventSigner::from_pem(&other_key)
        .expect("signer")
        .sign("referral-intake", 3, &hash)
        .expect("sign");
    let server = world.nats.as_ref().expect("server");
    let _ = server;
    // The producer's own NATS key, stolen: the server lets it publish.
    let client = world.client_as("referral-intake").await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(bus::POSITION_HEADER, "3");
    headers.insert(
        bus::SIGNATURE_HEADER,
        signature
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
            .as_str(),
    );
    headers.insert("Nats-Msg-Id", genuine_id.to_string().as_str());
    async_nats::jetstream::new(client)
        .publish_with_headers("safeguard.referral-intake.Happened", headers, record.into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    log.append(
        "s",
        ExpectedVersion::Any,
        vec![NewEvent {
            event_id: genuine_id,
            ..NewEvent::new("safeguard.test.v1.Happened", b"genuine".to_vec())
        }],
    )
    .await
    .expect("append");
    append(&log, 1).await;
    let delivered = timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(delivered.event.position(), 3);
    let payload = delivered.event.envelope().expect("envelope").payload;
    assert_eq!(payload, b"genuine", "the true record, not the forged one");
    assert_eq!(positions(&mut subscription, 1).await, [4]);

    let refused = timeout(Duration::from_secs(5), alarms.refused.recv())
        .await
        .expect("reported in time")
        .expect("a refusal");
    assert_eq!(refused.position, Some(3));
    assert_eq!(refused.producer, "referral-intake");
    assert!(refused.reason.contains("signature"), "{}", refused.reason);
    assert!(refused.stream_sequence > 0);
    world.close().await;
}

/// An unsigned message far ahead of the producer's log, undecodable or
/// not: refused at once, without a repair that could never finish.
#[tokio::test]
async fn an_unsigned_record_far_ahead_neither_wedges_nor_stops_a_consumer() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    let mut subscription = world
        .subscribe("test.far-ahead", "referral-intake", 0)
        .await;
    let mut alarms = subscription.take_alarms().expect("alarms");
    append(&log, 2).await;
    assert_eq!(positions(&mut subscription, 2).await, [0, 1]);
    let record = log
        .read_all(1, 1)
        .expect("read")
        .remove(0)
        .record()
        .to_vec();
    let server = world.nats.as_ref().expect("server");
    let _ = server;
    let client = world.client_as("referral-intake").await;
    let context = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(bus::POSITION_HEADER, "1000000000000");
    context
        .publish_with_headers("safeguard.referral-intake.Happened", headers, record.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    append(&log, 2).await;
    assert_eq!(positions(&mut subscription, 2).await, [2, 3]);
    let refused = alarms.refused.recv().await.expect("a refusal");
    assert_eq!(refused.position, Some(1_000_000_000_000));
    assert!(
        refused.reason.contains("no Safeguard-Signature"),
        "{}",
        refused.reason
    );
    assert!(alarms.stalled.borrow().is_none(), "no repair was attempted");
    world.close().await;
}

/// The server itself refuses what an identity's permissions do not allow:
/// a service publishing on another producer's subjects, or reading a
/// stream it does not follow; a client without credentials is not let in.
#[tokio::test]
async fn the_server_refuses_what_an_identity_may_not_do() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    append(&log, 2).await;
    let started = std::time::Instant::now();
    while stored(&world, "referral-intake").await < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "relayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The scheduler's NATS key, on the referral service's subjects.
    let scheduler = async_nats::jetstream::new(world.client_as("conference-scheduler").await);
    let forged = timeout(Duration::from_secs(15), async {
        scheduler
            .publish(
                "safeguard.referral-intake.ReferralSubmitted",
                "forged".into(),
            )
            .await?
            .await
    })
    .await;
    assert!(!matches!(forged, Ok(Ok(_))), "published: {forged:?}");
    assert_eq!(
        stored(&world, "referral-intake").await,
        2,
        "nothing was stored"
    );

    // The referral service follows no one: it cannot read the scheduler's
    // stream, or anyone's but its own.
    let referrals = async_nats::jetstream::new(world.client_as("referral-intake").await);
    let read = timeout(
        Duration::from_secs(15),
        referrals.get_stream(bus::stream_name("notification")),
    )
    .await;
    assert!(!matches!(read, Ok(Ok(_))), "read: {read:?}");

    // No credentials at all: refused before anything is asked.
    let server = world.nats.as_ref().expect("server");
    assert!(bus::connect_nats(&server.url(), None).await.is_err());
    world.close().await;
}

/// How many messages `producer`'s stream holds, as the operator sees.
async fn stored(world: &World, producer: &str) -> u64 {
    let mut stream = async_nats::jetstream::new(world.client_as("operator").await)
        .get_stream(bus::stream_name(producer))
        .await
        .expect("stream");
    stream.info().await.expect("info").state.messages
}

/// A gap that cannot be repaired (its producer cannot be reached) is not
/// skipped: the consumer keeps trying, and says so where health shows it.
#[tokio::test]
async fn a_gap_that_cannot_be_repaired_yet_is_a_warning_not_a_skip() {
    let mut world = World::new(Flavour::JetStream).await;
    let log = world.producer("referral-intake").await;
    append(&log, 3).await;
    lose_published(&world, "referral-intake", 3).await;
    append(&log, 1).await;
    // A consumer elsewhere, whose producer's address answers nothing.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address");
    let server = world.nats.as_ref().expect("server");
    let mut options = options(server, &world.trust);
    options
        .producer_urls
        .insert("referral-intake".into(), format!("https://{closed}"));
    let elsewhere = Bus::jetstream(options).await.expect("connect");
    let mut subscription = elsewhere
        .subscribe("test.unrepairable", "referral-intake", 0)
        .await
        .expect("subscribe");
    let mut alarms = subscription.take_alarms().expect("alarms");
    let reading =
        tokio::spawn(async move { subscription.next().await.map(|d| d.event.position()) });
    let said = timeout(Duration::from_secs(30), async {
        loop {
            if let Some(said) = alarms.stalled.borrow_and_update().clone() {
                return said;
            }
            alarms.stalled.changed().await.expect("the consumer lives");
        }
    })
    .await
    .expect("a warning in time");
    assert!(
        said.contains("positions 0 to 2 of referral-intake"),
        "{said}"
    );
    assert!(!reading.is_finished(), "nothing was passed on past the gap");
    reading.abort();
    world.close().await;
}
