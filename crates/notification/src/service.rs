//! The `Notification` gRPC service: a filtered, resumable stream of a
//! recipient's notifications, and acknowledgements.

use std::pin::Pin;
use std::sync::Arc;

use contract::notification::v1 as wire;
use contract::notification::v1::notification_server::{self, NotificationServer};
use contract::records::{NotificationEvent, Records};
use eventlog::{EventLog, ExpectedVersion};
use service_core::audit;
use service_core::limits;
use service_core::policy::Parties;
use service_core::reject::{from_log, internal, invalid};
use service_core::validate::{self, Caller};
use service_core::{Watermark, consistency};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::Acks;

#[derive(Debug, Clone)]
pub struct Notification {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: EventLog,
    acks: Acks,
    watermark: Watermark,
    health: service_core::Health,
}

/// The RPCs, as the access policy (`service_core::policy`) names them.
mod rpc {
    pub const SUBSCRIBE: &str = "safeguard.notification.v1.Notification/Subscribe";
    pub const ACKNOWLEDGE: &str = "safeguard.notification.v1.Notification/Acknowledge";
}

/// A partner reads and acknowledges only its own organisation's
/// notifications (`rpc` asks the access policy).
async fn recipient(
    log: &EventLog,
    rpc: &str,
    caller: &Caller,
    ods: &str,
) -> Result<String, Status> {
    let ods = domain::OdsCode::parse(ods).map_err(|error| invalid("recipient_ods_code", error))?;
    audit::allow(log, rpc, caller, &Parties::for_recipient(ods.as_str())).await?;
    Ok(ods.to_string())
}

impl Notification {
    pub(crate) fn new(
        log: EventLog,
        acks: Acks,
        watermark: Watermark,
        health: service_core::Health,
    ) -> Self {
        Notification {
            inner: Arc::new(Inner {
                log,
                acks,
                watermark,
                health,
            }),
        }
    }

    /// Its health and its gRPC service name, for the server to report
    /// NOT_SERVING once its rules stop for good.
    pub fn watched(&self) -> service_core::health::Watched {
        service_core::health::Watched::new::<NotificationServer<Self>>(
            self.inner.health.clone(),
            crate::LOG,
        )
    }

    pub fn into_server(self) -> NotificationServer<Self> {
        NotificationServer::new(self).max_decoding_message_size(limits::MAX_REQUEST_BYTES)
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }
}

type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<wire::NotificationMessage, Status>> + Send>>;

#[tonic::async_trait]
impl notification_server::Notification for Notification {
    type SubscribeStream = NotificationStream;

    async fn subscribe(
        &self,
        request: Request<wire::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (caller, request) = limits::checked(request)?;
        let recipient = recipient(
            &self.inner.log,
            rpc::SUBSCRIBE,
            &caller,
            &request.recipient_ods_code,
        )
        .await?;
        let subscriber = validate::required_text("subscriber", &request.subscriber)?;
        let kinds = request
            .kinds
            .iter()
            .map(|kind| {
                validate::known_enum::<wire::NotificationKind>("kinds", *kind).map(i32::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let child =
            validate::optional_nhs_number("child_nhs_number", request.child_nhs_number.as_ref())?
                .map(|n| n.to_string());
        let after = if request.after_sequence > 0 {
            Some(request.after_sequence)
        } else {
            self.inner
                .acks
                .read()
                .map_err(|error| internal("reading acknowledgements", error))?
                .get(&(recipient.clone(), subscriber))
                .copied()
        };
        let first = after.map_or(0, |sequence| sequence + 1);
        let mut events = self.inner.log.subscribe(first);
        let (log, purpose) = (self.inner.log.clone(), request.purpose.clone());
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let event = match events.next().await {
                    Ok(event) => event,
                    Err(_) => return,
                };
                // What does not decode was quarantined by the service's
                // own follower of this log (GetStatus lists it).
                let Ok(envelope) = event.envelope() else {
                    continue;
                };
                let Ok(Some(NotificationEvent::Raised(raised))) =
                    NotificationEvent::decode(&envelope)
                else {
                    continue;
                };
                let to = raised
                    .recipient
                    .as_ref()
                    .map(|r| r.ods_code.as_str())
                    .unwrap_or_default();
                let about = raised.child_nhs_number.as_ref().map(|n| n.value.as_str());
                if to != recipient
                    || (!kinds.is_empty() && !kinds.contains(&raised.kind))
                    || child.as_deref().is_some_and(|child| about != Some(child))
                {
                    continue;
                }
                let message = wire::NotificationMessage {
                    sequence: event.position(),
                    kind: raised.kind,
                    recipient: raised.recipient,
                    child_nhs_number: raised.child_nhs_number,
                    occurred_at: raised.occurred_at,
                    summary: raised.summary,
                    source: raised.source,
                    details: raised.details,
                    traceparent: envelope.traceparent,
                };
                // Each notification is a read of a child's record: recorded,
                // durably, before it goes; one that cannot be recorded is
                // not sent, and the stream ends with why.
                let read = audit::reading(
                    rpc::SUBSCRIBE,
                    &purpose,
                    message.child_nhs_number.clone(),
                    [],
                    [format!("notification {}", message.sequence)],
                );
                if let Err(status) = audit::read(&log, &caller, &read).await {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                if sender.send(Ok(message)).await.is_err() {
                    return; // the subscriber went away
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn acknowledge(
        &self,
        request: Request<wire::AcknowledgeRequest>,
    ) -> Result<Response<wire::AcknowledgeResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let recipient = recipient(
            &self.inner.log,
            rpc::ACKNOWLEDGE,
            &caller,
            &request.recipient_ods_code,
        )
        .await?;
        let subscriber = validate::required_text("subscriber", &request.subscriber)?;
        if request.sequence >= self.inner.log.head() {
            return Err(invalid("sequence", "is beyond the last notification"));
        }
        let ack = wire::SubscriberAcknowledged {
            subscriber: subscriber.clone(),
            recipient_ods_code: recipient.clone(),
            sequence: request.sequence,
        };
        let event = service_core::event::by_person(&ack, &caller);
        let outcome = self
            .inner
            .log
            .append(
                &crate::acknowledgement_stream(&recipient, &subscriber),
                ExpectedVersion::Any,
                vec![event],
            )
            .await
            .map_err(from_log)?;
        let token = self.inner.watermark.token(outcome.positions.end);
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await?;
        Ok(Response::new(wire::AcknowledgeResponse {}))
    }
}
