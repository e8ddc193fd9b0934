//! A MESH client: NHS England's Message Exchange for Social Care and
//! Health, API version 2, over mutual TLS with the `NHSMESH` HMAC
//! authorisation header. One connection per call: the bridge sends a
//! message per notification, and a fresh connection never finds a stale one.

use hyper::body::Bytes;
use serde::Deserialize;

/// The media type that selects version 2 of the API.
const V2: &str = "application/vnd.mesh.v2+json";

/// Where a mailbox is and how it proves itself.
#[derive(Clone)]
pub struct Mailbox {
    /// `host:port` of the MESH API.
    pub authority: String,
    /// The name its certificate is checked against.
    pub server_name: String,
    pub mailbox_id: String,
    pub password: String,
    /// The environment's shared secret, the HMAC key.
    pub shared_key: String,
    /// The CA MESH's certificate is checked against.
    pub ca_pem: String,
    /// This client's certificate and key, PEM.
    pub certificate: String,
    pub key: String,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("authority", &self.authority)
            .field("mailbox_id", &self.mailbox_id)
            .finish_non_exhaustive()
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// MESH could not be reached, or failed on its side: try again.
    #[error("MESH unavailable: {0}")]
    Unavailable(String),
    /// MESH refused the request: trying again will not help until someone
    /// changes the configuration (an unknown recipient, a bad password).
    #[error("MESH refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub workflow_id: &'a str,
    /// The sender's own id for the message: MESH tracks it by this.
    pub local_id: &'a str,
    pub subject: &'a str,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub body: Bytes,
}

/// A message downloaded from an inbox.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    /// A `mex-*` header, as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

impl Mailbox {
    /// The `Authorization` value for one request: the mailbox, a fresh
    /// nonce, its count, the time (UTC, to the minute), and the HMAC-SHA256
    /// of them with the password under the shared key.
    fn authorization(&self) -> String {
        let nonce = uuid::Uuid::now_v7().to_string();
        let timestamp = jiff::Timestamp::now().strftime("%Y%m%d%H%M").to_string();
        let signed = format!(
            "{}:{nonce}:1:{}:{timestamp}",
            self.mailbox_id, self.password
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.shared_key.as_bytes());
        let tag = ring::hmac::sign(&key, signed.as_bytes());
        let hex: String = tag
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("NHSMESH {}:{nonce}:1:{timestamp}:{hex}", self.mailbox_id)
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<trust::https::Answer, MeshError> {
        let mut connection = trust::https::connect(
            &self.authority,
            &self.server_name,
            &self.ca_pem,
            Some((&self.certificate, &self.key)),
        )
        .await
        .map_err(MeshError::Unavailable)?;
        let authorization = self.authorization();
        let mut all = vec![("authorization", authorization.as_str()), ("accept", V2)];
        all.extend_from_slice(headers);
        let answer = connection
            .send(method, path, &all, body)
            .await
            .map_err(MeshError::Unavailable)?;
        let status = answer.status;
        if status.is_success() {
            return Ok(answer);
        }
        let detail = String::from_utf8_lossy(&answer.body)
            .chars()
            .take(300)
            .collect();
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            Err(MeshError::Unavailable(format!("{status}: {detail}")))
        } else {
            Err(MeshError::Refused {
                status: status.as_u16(),
                detail,
            })
        }
    }

    fn path(&self, tail: &str) -> String {
        format!("/messageexchange/{}{tail}", self.mailbox_id)
    }

    /// Sends `message`; MESH's id for it once MESH has accepted it.
    pub async fn send(&self, message: &Outgoing<'_>) -> Result<String, MeshError> {
        #[derive(Deserialize)]
        struct Sent {
            message_id: String,
        }
        let answer = self
            .call(
                http::Method::POST,
                &self.path("/outbox"),
                &[
                    ("mex-from", &self.mailbox_id),
                    ("mex-to", message.to),
                    ("mex-workflowid", message.workflow_id),
                    ("mex-localid", message.local_id),
                    ("mex-subject", message.subject),
                    ("mex-filename", message.file_name),
                    ("mex-messagetype", "DATA"),
                    ("mex-content-type", message.content_type),
                    ("content-type", message.content_type),
                ],
                message.body.clone(),
            )
            .await?;
        let sent: Sent = serde_json::from_slice(&answer.body)
            .map_err(|error| MeshError::Unavailable(format!("an unreadable answer: {error}")))?;
        Ok(sent.message_id)
    }

    /// MESH's id for the message this mailbox sent with `local_id`, if it
    /// sent one: how a sender whose last attempt's outcome it never heard
    /// knows whether to send again.
    pub async fn sent_with_local_id(&self, local_id: &str) -> Result<Option<String>, MeshError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Tracked {
            message_id: String,
        }
        match self
            .call(
                http::Method::GET,
                &self.path(&format!("/outbox/tracking/{local_id}")),
                &[],
                Bytes::new(),
            )
            .await
        {
            Ok(answer) => {
                let tracked: Tracked = serde_json::from_slice(&answer.body).map_err(|error| {
                    MeshError::Unavailable(format!("an unreadable tracking answer: {error}"))
                })?;
                Ok(Some(tracked.message_id))
            }
            Err(MeshError::Refused { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The ids of the messages waiting in this mailbox's inbox.
    pub async fn inbox(&self) -> Result<Vec<String>, MeshError> {
        #[derive(Deserialize)]
        struct Inbox {
            messages: Vec<String>,
        }
        let answer = self
            .call(
                http::Method::GET,
                &self.path("/inbox?max_results=5000"),
                &[],
                Bytes::new(),
            )
            .await?;
        let inbox: Inbox = serde_json::from_slice(&answer.body)
            .map_err(|error| MeshError::Unavailable(format!("an unreadable inbox: {error}")))?;
        Ok(inbox.messages)
    }

    /// Downloads one message (a single chunk: documents are small).
    pub async fn download(&self, message_id: &str) -> Result<Incoming, MeshError> {
        let answer = self
            .call(
                http::Method::GET,
                &self.path(&format!("/inbox/{message_id}")),
                &[],
                Bytes::new(),
            )
            .await?;
        Ok(Incoming {
            message_id: message_id.to_owned(),
            headers: answer.headers,
            body: answer.body,
        })
    }

    /// Tells MESH the message was collected: it leaves the inbox, and its
    /// sender's tracking shows it acknowledged.
    pub async fn acknowledge(&self, message_id: &str) -> Result<(), MeshError> {
        self.call(
            http::Method::PUT,
            &self.path(&format!("/inbox/{message_id}/status/acknowledged")),
            &[],
            Bytes::new(),
        )
        .await
        .map(drop)
    }
}
