//! What the NATS server lets each party do, over a deployment whose
//! services run as separate processes: a partner receives its own
//! organisation's notifications and nothing else; a producer's stream is
//! refused to it; a client without credentials is not let in.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::processes::Deployment;

/// The GP practice of the demo case: invited to its conferences and on its
/// child's care team.
const GP: &str = "Y99001";
/// The school that referred the child: told of the referral's outcome.
const SCHOOL: &str = "S999001";

/// A plain NATS client signed in as `name`, with the server's refusals
/// (which NATS sends apart from the request that caused them) collected.
async fn client_with_refusals(
    deployment: &Deployment,
    name: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let credentials = deployment.nats_credentials(name);
    let (refusals, refused) = mpsc::unbounded_channel();
    let mut options = async_nats::ConnectOptions::with_nkey(credentials.seed.clone())
        .custom_inbox_prefix(bus::inbox_prefix(&credentials.name))
        .require_tls(true)
        .add_client_certificate(credentials.certificate.clone(), credentials.key.clone())
        .event_callback(move |event| {
            let refusals = refusals.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = refusals.send(error.to_string());
                }
            }
        });
    for ca in &credentials.ca {
        options = options.add_root_certificates(ca.clone());
    }
    let client = options
        .connect(deployment.nats.url())
        .await
        .expect("connect to NATS");
    (client, refused)
}

/// The next refusal the server sends, within a few seconds, lower-cased.
async fn refusal(refused: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(Duration::from_secs(10), refused.recv())
        .await
        .expect("the server refuses in time")
        .expect("a refusal")
        .to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_receives_its_own_notifications_and_nothing_else() {
    let deployment = Deployment::start().await;
    crate::scenario::the_demo_case(&deployment.agencies(), crate::today()).await;

    // The GP's system reads its own notifications through a durable
    // consumer of its own, filtered to its organisation.
    let (gp, mut refused) = client_with_refusals(&deployment, &format!("partner-{GP}")).await;
    let jetstream = async_nats::jetstream::new(gp.clone());
    let stream = jetstream
        .get_stream_no_info(bus::stream_name("notification"))
        .await
        .expect("the stream, by name");
    let own = format!("safeguard.notification.{GP}.>");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(format!("partner-{GP}")),
            filter_subject: own.clone(),
            ack_policy: AckPolicy::Explicit,
            ..pull::Config::default()
        })
        .await
        .expect("its own consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let mut received = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        received.push(message.subject.to_string());
        message.ack().await.expect("ack");
    }
    assert!(
        !received.is_empty(),
        "the GP was told of the conference and the plan"
    );
    assert!(
        received
            .iter()
            .all(|subject| subject.starts_with(&format!("safeguard.notification.{GP}."))),
        "{received:?}"
    );

    // Another organisation's notifications: refused by the server, whether
    // subscribed to or asked of JetStream.
    let _ = gp
        .subscribe(format!("safeguard.notification.{SCHOOL}.>"))
        .await;
    let said = refusal(&mut refused).await;
    assert!(said.contains("permissions violation"), "{said}");
    assert!(said.contains(&SCHOOL.to_lowercase()), "{said}");
    let wider = timeout(
        Duration::from_secs(15),
        stream.create_consumer(pull::Config {
            durable_name: Some(format!("partner-{GP}")),
            filter_subject: "safeguard.notification.>".into(),
            ..pull::Config::default()
        }),
    )
    .await;
    assert!(!matches!(wider, Ok(Ok(_))), "a wider consumer: {wider:?}");
    assert!(
        refusal(&mut refused)
            .await
            .contains("permissions violation")
    );

    // A producer's stream: refused.
    let raw = timeout(
        Duration::from_secs(15),
        jetstream.get_stream(bus::stream_name("referral-intake")),
    )
    .await;
    assert!(!matches!(raw, Ok(Ok(_))), "a producer's stream: {raw:?}");
    let _ = gp.subscribe("safeguard.referral-intake.>").await;
    assert!(
        refusal(&mut refused)
            .await
            .contains("permissions violation")
    );

    // Publishing anything: refused.
    gp.publish(
        format!("safeguard.notification.{GP}.NotificationRaised"),
        "forged".into(),
    )
    .await
    .expect("sent");
    gp.flush().await.expect("flush");
    assert!(
        refusal(&mut refused)
            .await
            .contains("permissions violation")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_credentials_is_not_let_in() {
    let deployment = Deployment::start_with(1).await;
    // No certificate, no key: the TLS handshake fails.
    assert!(
        bus::connect_nats(&deployment.nats.url(), None)
            .await
            .is_err()
    );
    // A certificate from the realm but an NKEY the server does not know.
    let mut stranger = deployment.nats_credentials(&format!("partner-{GP}"));
    stranger.seed = nkeys::KeyPair::new_user().seed().expect("seed");
    assert!(
        bus::connect_nats(&deployment.nats.url(), Some(&stranger))
            .await
            .is_err()
    );
}

/// A record forged with a producer's own NATS key (stolen: the server lets
/// it publish) is refused by a service that follows that producer, which
/// goes on serving and shows the refusal in its health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_record_on_the_bus_is_refused_by_the_services_and_shown_in_health() {
    use contract::common::v1::{OrganisationKind, Role};
    use contract::events::v1::GetStatusRequest;
    use contract::events::v1::service_status_client::ServiceStatusClient;

    let deployment = Deployment::start_with(1).await;
    crate::scenario::the_demo_case(&deployment.agencies(), crate::today()).await;
    let producer = "referral-intake";
    let operator = deployment.nats_client("operator").await;
    let mut stream = async_nats::jetstream::new(operator)
        .get_stream(bus::stream_name(producer))
        .await
        .expect("stream");
    let next = stream.info().await.expect("info").state.last_sequence;
    let last = stream.get_raw_message(next).await.expect("the last record");

    // The last record again, claiming the next position, with a signature
    // that is not the producer's.
    let thief = async_nats::jetstream::new(deployment.nats_client(producer).await);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(bus::POSITION_HEADER, next.to_string().as_str());
    headers.insert(bus::SIGNATURE_HEADER, "00".repeat(64).as_str());
    thief
        .publish_with_headers(
            format!("{}.ReferralDecided", bus::subject_prefix(producer)),
            headers,
            last.payload,
        )
        .await
        .expect("the server lets the producer's key publish")
        .await
        .expect("stored");

    let operator = crate::fixtures::member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::Operator,
    );
    let url = deployment.url("conference-scheduler");
    let mut status = ServiceStatusClient::new(
        deployment
            .agencies()
            .authorised(&operator, &url)
            .expect("credentials"),
    );
    let started = std::time::Instant::now();
    loop {
        let services = status
            .get_status(GetStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .services;
        let scheduler = services.first().expect("the scheduler");
        if scheduler.bus_messages_refused > 0 {
            assert!(scheduler.serving, "{scheduler:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the forgery was refused: {scheduler:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
