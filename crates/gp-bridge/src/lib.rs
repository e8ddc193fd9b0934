//! The GP bridge: follows the backbone's notifications for the practices it
//! serves (a plan started, its category changed, ended; looked after; an
//! unborn plan; a birth linked; a conference invitation or cancellation)
//! and delivers each to the practice's MESH mailbox as a GP Connect "Send
//! Document" message, with the coded entry to file in that practice's
//! clinical system's terms. A notification is acknowledged to the backbone
//! only once MESH has accepted its message, and the MESH local id is the
//! notification's id, so across restarts and kill -9 nothing is lost and
//! nothing is sent twice. It speaks to the backbone only through the
//! notification service's public API.

pub mod config;
pub mod document;
pub mod ledger;
pub mod mesh;
pub mod sandbox;
pub mod systems;

use std::sync::Arc;
use std::time::Duration;

use contract::notification::v1::notification_client::NotificationClient;
use contract::notification::v1::{
    AcknowledgeRequest, NotificationKind, NotificationMessage, SubscribeRequest,
};
use hyper::body::Bytes;
use tonic::transport::ClientTlsConfig;

use crate::config::{Config, Practice};
use crate::ledger::{Delivery, Ledger};
use crate::mesh::{Incoming, Mailbox, MeshError, Outgoing};

/// The durable subscriber name the bridge reads each practice's
/// notifications under.
pub const SUBSCRIBER: &str = "gp-bridge";

/// Why the bridge reads: recorded with each read.
const PURPOSE: &str = "GP bridge: delivering the notification to the practice through MESH";

/// What the bridge sends to practices.
pub const FOLLOWED: [NotificationKind; 6] = [
    NotificationKind::PlanStarted,
    NotificationKind::PlanCategoryChanged,
    NotificationKind::PlanEnded,
    NotificationKind::BirthLinked,
    NotificationKind::ConferenceInvitation,
    NotificationKind::ConferenceCancelled,
];

/// A notification's id, which is its message's MESH local id.
pub fn local_id(note: &NotificationMessage) -> String {
    format!("safeguard-notification-{}", note.sequence)
}

/// A practice's access token: its `token_file`, or in a development
/// realm one the realm issues.
fn token(practice: &Practice, realm: Option<&trust::Realm>) -> Result<String, String> {
    if let Some(path) = &practice.token_file {
        return std::fs::read_to_string(path)
            .map(|token| token.trim().to_owned())
            .map_err(|error| format!("{}: {error}", path.display()));
    }
    let realm = realm.ok_or_else(|| {
        format!(
            "practices: {} has no token_file (only a development realm issues tokens)",
            practice.ods_code
        )
    })?;
    realm.token(
        &trust::token::Person {
            organisation: practice.ods_code.clone(),
            organisation_name: practice.name.clone(),
            user_id: SUBSCRIBER.to_owned(),
            display_name: format!("GP bridge for {}", practice.name),
            role: trust::caller::role_name(contract::common::v1::Role::GeneralPractitioner)
                .to_owned(),
        },
        Duration::from_secs(3600),
    )
}

/// Everything the bridge needs to run.
#[derive(Debug)]
pub struct Options {
    pub config: Config,
    /// TLS to the backbone, presenting the bridge's certificate.
    pub backbone_tls: ClientTlsConfig,
    /// A development realm, when the bridge runs in one: it issues the
    /// practices' tokens and the MESH client certificate the configuration
    /// does not give.
    pub realm: Option<Box<trust::Realm>>,
}

struct Shared {
    config: Config,
    backbone_tls: ClientTlsConfig,
    realm: Option<Box<trust::Realm>>,
    mesh: Mailbox,
    ledger: Ledger,
}

/// Runs the bridge until `shutdown` completes.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let config = options.config;
    std::fs::create_dir_all(&config.state_dir)
        .map_err(|error| format!("{}: {error}", config.state_dir.display()))?;
    let ledger = Ledger::open(&config.state_dir)?;
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let (authority, server_name) = config::authority(&config.mesh.url)?;
    let realm = options.realm;
    let from_realm =
        |field: &str| format!("mesh.{field}: is required (only a development realm gives one)");
    let ca_pem = match (&config.mesh.ca, &realm) {
        (Some(path), _) => read(path)?,
        (None, Some(realm)) => realm.ca_pem().to_owned(),
        (None, None) => return Err(from_realm("ca")),
    };
    let (certificate, key) = match (&config.mesh.certificate, &config.mesh.key, &realm) {
        (Some(certificate), Some(key), _) => (read(certificate)?, read(key)?),
        (None, None, Some(realm)) => {
            let issued = realm.service_certificate(SUBSCRIBER)?;
            (issued.certificate, issued.key)
        }
        _ => return Err(from_realm("certificate and mesh.key")),
    };
    let mesh = Mailbox {
        authority,
        server_name,
        mailbox_id: config.mesh.mailbox.clone(),
        password: read(&config.mesh.password_file)?.trim().to_owned(),
        shared_key: read(&config.mesh.shared_key_file)?.trim().to_owned(),
        ca_pem,
        certificate,
        key,
    };
    let shared = Arc::new(Shared {
        config,
        backbone_tls: options.backbone_tls,
        realm,
        mesh,
        ledger,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for practice in shared.config.practices.clone() {
        tasks.spawn(follow(shared.clone(), practice));
    }
    tasks.spawn(collect_answers(shared.clone()));
    shutdown.await;
    tasks.shutdown().await;
    Ok(())
}

/// Doubling waits between attempts, up to a ceiling.
struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    fn new(config: &Config) -> Backoff {
        let first = Duration::from_millis(config.retry_first_ms.max(1));
        Backoff {
            next: first,
            first,
            max: Duration::from_millis(config.retry_max_ms.max(config.retry_first_ms)),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Follows one practice's notifications for as long as the bridge runs,
/// following again after each interruption.
async fn follow(shared: Arc<Shared>, practice: Practice) {
    let mut backoff = Backoff::new(&shared.config);
    loop {
        match follow_once(&shared, &practice, &mut backoff).await {
            Ok(()) => {
                tracing::info!(practice = %practice.ods_code, "the notification stream ended; following again")
            }
            Err(error) => {
                tracing::warn!(practice = %practice.ods_code, "following notifications: {error}")
            }
        }
        backoff.wait().await;
    }
}

async fn follow_once(
    shared: &Shared,
    practice: &Practice,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let token = token(practice, shared.realm.as_deref())?;
    let channel =
        trust::client::endpoint(&shared.config.notifications, shared.backbone_tls.clone())?
            .connect()
            .await
            .map_err(|error| format!("{}: {error}", shared.config.notifications))?;
    let mut client =
        NotificationClient::with_interceptor(channel, trust::client::Bearer::new(&token));
    let mut stream = client
        .subscribe(SubscribeRequest {
            subscriber: SUBSCRIBER.to_owned(),
            recipient_ods_code: practice.ods_code.clone(),
            kinds: FOLLOWED.iter().map(|kind| i32::from(*kind)).collect(),
            purpose: PURPOSE.to_owned(),
            ..SubscribeRequest::default()
        })
        .await
        .map_err(|status| refused(practice, &status))?
        .into_inner();
    while let Some(note) = stream
        .message()
        .await
        .map_err(|status| refused(practice, &status))?
    {
        deliver(shared, practice, &note).await;
        client
            .acknowledge(AcknowledgeRequest {
                subscriber: SUBSCRIBER.to_owned(),
                recipient_ods_code: practice.ods_code.clone(),
                sequence: note.sequence,
            })
            .await
            .map_err(|status| refused(practice, &status))?;
        backoff.reset();
    }
    Ok(())
}

/// A refusal from the backbone, with what to do about it.
fn refused(practice: &Practice, status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => format!(
            "the backbone refused the bridge's credentials for practice {}: {} (check the practice's token_file: it must be a token the practice issued, for its own organisation)",
            practice.ods_code,
            status.message()
        ),
        _ => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Sends `note` to the practice's mailbox, returning once MESH has
/// accepted it (now or before): tries again, with backoff, until it has.
async fn deliver(shared: &Shared, practice: &Practice, note: &NotificationMessage) {
    let local_id = local_id(note);
    let Some(letter) = document::letter(note, practice.system) else {
        return;
    };
    let parties = document::Parties {
        sender_ods_code: &shared.config.sender.ods_code,
        sender_name: &shared.config.sender.name,
        sender_mailbox: &shared.config.mesh.mailbox,
        practice_ods_code: &practice.ods_code,
        practice_name: &practice.name,
    };
    let mut backoff = Backoff::new(&shared.config);
    loop {
        match already(shared, &local_id).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%local_id, "before sending: {error}");
                backoff.wait().await;
                continue;
            }
        }
        let now = jiff::Timestamp::now().to_string();
        let body = document::message(&letter, &parties, &local_id, &now).to_string();
        let subject = document::subject(&letter, &parties);
        let file_name = format!("{local_id}.json");
        let outgoing = Outgoing {
            to: &practice.mailbox,
            workflow_id: &shared.config.mesh.workflow_id,
            local_id: &local_id,
            subject: &subject,
            file_name: &file_name,
            content_type: "application/fhir+json",
            body: Bytes::from(body),
        };
        match shared.mesh.send(&outgoing).await {
            Ok(message_id) => {
                match shared
                    .ledger
                    .put(
                        &local_id,
                        &Delivery::Accepted {
                            message_id: message_id.clone(),
                        },
                    )
                    .await
                {
                    Ok(()) => {
                        tracing::info!(%local_id, %message_id, practice = %practice.ods_code, "MESH accepted the document")
                    }
                    // MESH has it: the next attempt finds it by local id.
                    Err(error) => {
                        tracing::warn!(%local_id, "recording MESH's acceptance: {error}");
                        backoff.wait().await;
                        continue;
                    }
                }
                return;
            }
            Err(error @ MeshError::Refused { .. }) => {
                tracing::error!(%local_id, practice = %practice.ods_code, "{error}: the notification waits until MESH takes it");
            }
            Err(error) => tracing::warn!(%local_id, "{error}"),
        }
        backoff.wait().await;
    }
}

/// Whether MESH already has the message for `local_id`: from the ledger,
/// or, when an earlier attempt's outcome is in doubt, from MESH's tracking.
/// Records that an attempt is starting when it does not.
async fn already(shared: &Shared, local_id: &str) -> Result<bool, String> {
    match shared.ledger.get(local_id)? {
        Some(Delivery::Accepted { .. } | Delivery::Answered { .. }) => Ok(true),
        Some(Delivery::Sending) => {
            match shared
                .mesh
                .sent_with_local_id(local_id)
                .await
                .map_err(|error| error.to_string())?
            {
                Some(message_id) => {
                    tracing::info!(%local_id, %message_id, "an earlier attempt's outcome was in doubt: MESH has the message, so it is not sent again");
                    shared
                        .ledger
                        .put(local_id, &Delivery::Accepted { message_id })
                        .await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        None => {
            shared.ledger.put(local_id, &Delivery::Sending).await?;
            Ok(false)
        }
    }
}

/// Reads the bridge's own inbox for the practices' ITK3 acknowledgements
/// and MESH's error reports, records each against its notification, and
/// acknowledges it to MESH.
async fn collect_answers(shared: Arc<Shared>) {
    let every = Duration::from_millis(shared.config.poll_ms.max(10));
    loop {
        match shared.mesh.inbox().await {
            Ok(ids) => {
                for id in ids {
                    if let Err(error) = collect(&shared, &id).await {
                        tracing::warn!(message_id = %id, "collecting an answer: {error}");
                    }
                }
            }
            Err(error) => tracing::warn!("reading the bridge's MESH inbox: {error}"),
        }
        tokio::time::sleep(every).await;
    }
}

async fn collect(shared: &Shared, id: &str) -> Result<(), String> {
    let incoming = shared
        .mesh
        .download(id)
        .await
        .map_err(|error| error.to_string())?;
    match answer(&incoming) {
        Some((local_id, outcome)) => {
            let message_id = match shared.ledger.get(&local_id)? {
                Some(Delivery::Accepted { message_id } | Delivery::Answered { message_id, .. }) => {
                    message_id
                }
                _ => String::new(),
            };
            if outcome == "ok" {
                tracing::info!(%local_id, "the practice's system acknowledged the document");
            } else {
                tracing::error!(%local_id, %outcome, "the document was not filed: the practice needs telling another way");
            }
            shared
                .ledger
                .put(
                    &local_id,
                    &Delivery::Answered {
                        message_id,
                        outcome,
                    },
                )
                .await?;
        }
        None => tracing::warn!(
            message_id = %id,
            workflow = incoming.header("mex-workflowid"),
            "a message the bridge does not expect: collected and set aside"
        ),
    }
    shared
        .mesh
        .acknowledge(id)
        .await
        .map_err(|error| error.to_string())
}

/// The notification an incoming message answers, and how: an ITK3
/// response names the MessageHeader it answers (whose id is the local id);
/// a MESH error report carries the local id of what it could not deliver.
fn answer(incoming: &Incoming) -> Option<(String, String)> {
    if incoming
        .header("mex-messagetype")
        .eq_ignore_ascii_case("REPORT")
    {
        let local_id = incoming.header("mex-localid");
        return (!local_id.is_empty()).then(|| (local_id.to_owned(), "undeliverable".to_owned()));
    }
    let bundle: serde_json::Value = serde_json::from_slice(&incoming.body).ok()?;
    let header = bundle["entry"]
        .as_array()?
        .iter()
        .map(|entry| &entry["resource"])
        .find(|resource| resource["resourceType"] == "MessageHeader")?;
    let response = &header["response"];
    Some((
        response["identifier"].as_str()?.to_owned(),
        response["code"].as_str()?.to_owned(),
    ))
}
