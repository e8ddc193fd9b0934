//! The first thing every gRPC request meets: the client certificate and the
//! bearer token are verified and who they name is put on the request
//! (`Peer`, `Caller`), or the request is answered `UNAUTHENTICATED` here,
//! before any service sees it. Only gRPC health checking is open to a caller
//! with no credentials at all (a load balancer's or Kubernetes' probe): it
//! says whether the backbone serves, nothing about any child.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::caller::{Caller, Peer};
use crate::names::{self, Named};
use crate::token::Verifier;

/// The metadata key of the access token: `authorization: Bearer <JWT>`.
pub const AUTHORIZATION: &str = "authorization";

const OPEN: &[&str] = &["/grpc.health.v1.Health/"];
/// gRPC reflection: what the API is, to any trusted certificate.
const REFLECTION: &str = "/grpc.reflection.";

/// A call refused as UNAUTHENTICATED, for the security record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated {
    /// The request's path, `/<package>.<Service>/<Method>`.
    pub rpc: String,
    pub reason: String,
    /// What a presented certificate named, if it named anyone.
    pub peer: String,
    pub remote: String,
}

/// Where refusals go to be recorded: it must not block.
pub type Refusals = Arc<dyn Fn(Unauthenticated) + Send + Sync>;

#[derive(Clone)]
pub struct Authenticate {
    verifier: Arc<Verifier>,
    refusals: Option<Refusals>,
    /// Who each client certificate seen names: a connection presents the
    /// same one on every request, and reading it is not free.
    peers: Arc<Mutex<HashMap<Vec<u8>, Peer>>>,
}

/// How many certificates' names are remembered before starting again.
const PEERS_REMEMBERED: usize = 10_000;

impl Authenticate {
    pub fn new(verifier: Arc<Verifier>) -> Authenticate {
        Authenticate {
            verifier,
            refusals: None,
            peers: Arc::default(),
        }
    }

    /// The same, recording each refusal through `refusals`.
    pub fn with_refusals(mut self, refusals: Refusals) -> Authenticate {
        self.refusals = Some(refusals);
        self
    }

    /// Who a verified leaf certificate names.
    fn peer(&self, leaf: &[u8]) -> Result<Peer, Status> {
        if let Some(peer) = self
            .peers
            .lock()
            .ok()
            .and_then(|peers| peers.get(leaf).cloned())
        {
            return Ok(peer);
        }
        let peer = match names::of_certificate(leaf).map_err(Status::unauthenticated)? {
            Named::Organisation(ods) => Peer::Organisation(ods),
            Named::Service(name) => Peer::Service(name),
        };
        if let Ok(mut peers) = self.peers.lock() {
            if peers.len() >= PEERS_REMEMBERED {
                peers.clear();
            }
            peers.insert(leaf.to_vec(), peer.clone());
        }
        Ok(peer)
    }

    /// Who a request's credentials prove, or why they prove nobody.
    pub fn identify(
        &self,
        connection: Option<&TlsConnectInfo<TcpConnectInfo>>,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<(Peer, Option<Caller>), Status> {
        let certificates = connection.and_then(TlsConnectInfo::peer_certs);
        let leaf = certificates.as_ref().and_then(|chain| chain.first());
        self.identify_leaf(
            leaf.map(|leaf| leaf.as_ref()),
            authorization.map(|value| value.to_str().unwrap_or("")),
        )
    }

    /// Who a connection's verified leaf certificate and a request's
    /// `Authorization` header prove: the same checks for any protocol (the
    /// agencies' edges serve HTTPS with them).
    pub fn identify_leaf(
        &self,
        leaf: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<(Peer, Option<Caller>), Status> {
        let leaf = leaf.ok_or_else(|| {
            Status::unauthenticated(
                "a client certificate is required: connect with mutual TLS, presenting your organisation's certificate",
            )
        })?;
        let peer = self.peer(leaf)?;
        let Some(authorization) = authorization else {
            return Ok((peer, None));
        };
        let token = Some(authorization)
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("authorization: expected \"Bearer <access token>\"")
            })?;
        let caller = self
            .verifier
            .verify(token)
            .map_err(|refused| Status::unauthenticated(refused.0))?;
        match &peer {
            Peer::Organisation(ods) if *ods != caller.organisation => {
                return Err(Status::unauthenticated(format!(
                    "the client certificate is {ods}'s but the access token is for {}: a person acts only through their own organisation's system",
                    caller.organisation
                )));
            }
            // A service passes on a caller it has itself verified (a read
            // replica forwarding a write to the primary), with their token.
            Peer::Organisation(_) | Peer::Service(_) => {}
        }
        Ok((peer, Some(caller)))
    }
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("verifier", &self.verifier)
            .field("records_refusals", &self.refusals.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> tower::Layer<S> for Authenticate {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            authenticate: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    authenticate: Authenticate,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let connection = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let authorization = request.headers().get(AUTHORIZATION);
        // Health checking is open to a probe that presents nothing; whoever
        // presents credentials has them verified, here as everywhere.
        let anonymous = authorization.is_none()
            && connection
                .and_then(TlsConnectInfo::peer_certs)
                .is_none_or(|chain| chain.is_empty());
        if anonymous && OPEN.iter().any(|open| path.starts_with(open)) {
            return Box::pin(self.inner.call(request));
        }
        let identified = self
            .authenticate
            .identify(connection, authorization)
            .and_then(|(peer, caller)| {
                // An agency's system acts for a person, who must be named:
                // only the backbone's own services call with no token, and
                // anyone may ask health and reflection.
                let reflection =
                    path.starts_with(REFLECTION) || OPEN.iter().any(|open| path.starts_with(open));
                match (&peer, &caller) {
                    (Peer::Organisation(_), None) if !reflection => Err(Status::unauthenticated(
                        "a bearer access token (authorization: Bearer ...) is required",
                    )),
                    _ => Ok((peer, caller)),
                }
            });
        match identified {
            Ok((peer, caller)) => {
                request.extensions_mut().insert(peer);
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                let remote = request
                    .extensions()
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|info| info.get_ref().remote_addr());
                tracing::warn!(
                    path,
                    remote = ?remote,
                    refused = status.message(),
                    "security: unauthenticated request refused"
                );
                if let Some(refusals) = &self.authenticate.refusals {
                    let peer = connection
                        .and_then(TlsConnectInfo::peer_certs)
                        .and_then(|chain| chain.first().cloned())
                        .and_then(|leaf| names::of_certificate(&leaf).ok())
                        .map(|named| match named {
                            Named::Organisation(ods) => names::organisation_uri(&ods),
                            Named::Service(name) => names::service_uri(&name),
                        })
                        .unwrap_or_default();
                    refusals(Unauthenticated {
                        rpc: path.to_owned(),
                        reason: status.message().to_owned(),
                        peer,
                        remote: remote
                            .map(|address| address.to_string())
                            .unwrap_or_default(),
                    });
                }
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
