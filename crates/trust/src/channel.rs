//! gRPC over one HTTP/2 connection with mutual TLS, handed straight to
//! the connection: for an edge, whose every request is one call to a
//! service. tonic's `Channel` passes each call through a buffer task first
//! (one more hand-over between threads per call), which an edge answering
//! thousands of searches a second paid for on every one.
//!
//! In one process (`safeguard up`) the connection is an in-memory pipe to
//! the service (`trust::pipe`), the same TLS and HTTP/2 on it.
//!
//! A generated client is built on it as on a `Channel`
//! (`PlanRegistryClient::new(channel)`). A call made while the connection
//! is down fails `UNAVAILABLE`, and the next one connects again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::client::conn::http2::SendRequest;
use tonic::Status;
use tonic::body::Body;

use crate::{https, pipe};

/// One HTTP/2 connection to a service, connected on first use; cheap to
/// clone, every clone sharing it.
#[derive(Clone)]
pub struct Http2Channel {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<rustls::ClientConfig>,
    /// `host:port`, and the host the server's certificate must name.
    authority: http::uri::Authority,
    /// The way to a service in this same process, instead of TCP.
    pipe: Option<pipe::Connector>,
    /// The live connection, if there is one.
    sender: Mutex<Option<SendRequest<Body>>>,
    /// Held while connecting, so that calls arriving together make one
    /// connection between them.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Http2Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Channel")
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

impl Http2Channel {
    /// A channel to `url` (`https://host:port`, or a bare `host:port`),
    /// with `config` (see `Trust::service_client_config`). With `pipe`,
    /// the service runs in this same process and each connection is made
    /// through the pipe rather than TCP; `url` still names the server its
    /// certificate must prove.
    pub fn new(
        url: &str,
        config: Arc<rustls::ClientConfig>,
        pipe: Option<pipe::Connector>,
    ) -> Result<Http2Channel, String> {
        let url = crate::client::https(url);
        let uri: http::Uri = url.parse().map_err(|error| format!("{url}: {error}"))?;
        let authority = uri
            .authority()
            .filter(|authority| authority.port().is_some())
            .cloned()
            .ok_or_else(|| format!("{url}: expected https://host:port"))?;
        Ok(Http2Channel {
            inner: Arc::new(Inner {
                config,
                authority,
                pipe,
                sender: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The live connection's sender, connecting if there is none.
    async fn sender(&self) -> Result<SendRequest<Body>, Status> {
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let authority = &self.inner.authority;
        let unavailable = |error: String| Status::unavailable(format!("{authority}: {error}"));
        let sender = match &self.inner.pipe {
            None => {
                let tls =
                    https::connect_tls(&self.inner.config, authority.as_str(), authority.host())
                        .await
                        .map_err(Status::unavailable)?;
                https::http2(tls).await
            }
            Some(pipe) => {
                let io = pipe
                    .connect()
                    .map_err(|error| unavailable(error.to_string()))?;
                let tls = https::handshake(&self.inner.config, io, authority.host())
                    .await
                    .map_err(unavailable)?;
                https::http2(tls).await
            }
        }
        .map_err(unavailable)?;
        *self.held() = Some(sender.clone());
        Ok(sender)
    }

    fn live(&self) -> Option<SendRequest<Body>> {
        self.held()
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<SendRequest<Body>>> {
        // A poisoned lock held only a sender, which is still whole.
        self.inner
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type Answer = http::Response<hyper::body::Incoming>;

impl tower::Service<http::Request<Body>> for Http2Channel {
    type Response = Answer;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        // HTTP/2 carries many calls at once; the connection itself holds
        // back a call beyond the server's limit of concurrent streams.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let channel = self.clone();
        Box::pin(async move {
            // A generated client names only the method's path; HTTP/2
            // names the server too (`:scheme`, `:authority`).
            let mut parts = request.uri().clone().into_parts();
            parts.scheme = Some(http::uri::Scheme::HTTPS);
            parts.authority = Some(channel.inner.authority.clone());
            *request.uri_mut() = http::Uri::from_parts(parts)
                .map_err(|error| Status::internal(format!("a call's URI: {error}")))?;
            let mut sender = channel.sender().await?;
            let unavailable = |error: hyper::Error| {
                Status::unavailable(format!("{}: {error}", channel.inner.authority))
            };
            sender.ready().await.map_err(unavailable)?;
            sender.send_request(request).await.map_err(unavailable)
        })
    }
}
