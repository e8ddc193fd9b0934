//! The calling side of HTTPS/1.1, for what speaks to an HTTPS service as an
//! agency's system would: the black-box tests and the benchmark calling the
//! FHIR edge, and the GP bridge calling MESH. One connection, with the
//! organisation's certificate, sending requests one after another.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// An answer: its status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// One connection to a server.
#[derive(Debug, Clone)]
pub struct Connection {
    sender: Sender,
    host: String,
}

/// HTTP/1.1 sends one request at a time; HTTP/2 many at once, so its
/// sender is shared by every clone of the connection.
#[derive(Debug, Clone)]
enum Sender {
    Http1(Arc<tokio::sync::Mutex<SendRequest<Full<Bytes>>>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http1,
    /// HTTP/2, asked for by ALPN: one connection carries many requests at
    /// once (clone the connection for each).
    Http2,
}

/// Connects to `authority` (`host:port`), trusting `ca_pem` for the name
/// `server_name`, presenting `identity` (certificate and key, PEM) if given.
pub async fn connect(
    authority: &str,
    server_name: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Connection, String> {
    connect_with(Version::Http1, authority, server_name, ca_pem, identity).await
}

/// The same, speaking `version`.
pub async fn connect_with(
    version: Version,
    authority: &str,
    server_name: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Connection, String> {
    let config = client_config(version, ca_pem, identity)?;
    let tls = connect_tls(&config, authority, server_name).await?;
    let sender = match version {
        Version::Http1 => {
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|error| error.to_string())?;
            tokio::spawn(connection);
            Sender::Http1(Arc::new(tokio::sync::Mutex::new(sender)))
        }
        Version::Http2 => Sender::Http2(http2(tls).await?),
    };
    Ok(Connection {
        sender,
        host: server_name.to_owned(),
    })
}

/// TLS for calling a server: trusting `ca_pem`, presenting `identity`
/// (certificate and key, PEM) if given, asking for `version` by ALPN.
pub fn client_config(
    version: Version,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(certificate.map_err(|error| error.to_string())?)
            .map_err(|error| error.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((certificate, key)) => {
            let chain = CertificateDer::pem_slice_iter(certificate.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| error.to_string())?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| error.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    if version == Version::Http2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(Arc::new(config))
}

/// A TCP connection to `authority` (`host:port`) with TLS on it, the
/// server proven to be `server_name`.
pub async fn connect_tls(
    config: &Arc<rustls::ClientConfig>,
    authority: &str,
    server_name: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::time::timeout(HANDSHAKE, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| format!("{authority}: no connection within {HANDSHAKE:?}"))?
        .map_err(|error| format!("{authority}: {error}"))?;
    let _ = tcp.set_nodelay(true);
    handshake(config, tcp, server_name)
        .await
        .map_err(|error| format!("{authority}: {error}"))
}

/// TLS on a connection already made, the server proven to be
/// `server_name`.
pub async fn handshake<IO>(
    config: &Arc<rustls::ClientConfig>,
    io: IO,
    server_name: &str,
) -> Result<tokio_rustls::client::TlsStream<IO>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = ServerName::try_from(server_name.to_owned()).map_err(|error| error.to_string())?;
    let connecting = tokio_rustls::TlsConnector::from(config.clone()).connect(name, io);
    tokio::time::timeout(HANDSHAKE, connecting)
        .await
        .map_err(|_| format!("no TLS handshake within {HANDSHAKE:?}"))?
        .map_err(|error| error.to_string())
}

/// HTTP/2 on a TLS connection: the sender of requests, its connection
/// driven by a task of its own until the peer or every sender is gone.
pub async fn http2<IO, B>(
    tls: tokio_rustls::client::TlsStream<IO>,
) -> Result<hyper::client::conn::http2::SendRequest<B>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .map_err(|error| error.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

impl Connection {
    /// GETs `path` (with its query) with `headers`.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, String> {
        self.send(http::Method::GET, path, headers, Bytes::new())
            .await
    }

    /// Sends `method` to `path` with `headers` and `body`.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        // HTTP/2 names the server in the URI (`:authority`), HTTP/1.1 in
        // `Host`.
        let mut request = match &self.sender {
            Sender::Http1(_) => http::Request::builder()
                .uri(path)
                .header(http::header::HOST, &self.host),
            Sender::Http2(_) => {
                http::Request::builder().uri(format!("https://{}{path}", self.host))
            }
        }
        .method(method);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|error| error.to_string())?;
        let response = match &self.sender {
            Sender::Http1(sender) => {
                let mut sender = sender.lock().await;
                sender.ready().await.map_err(|error| error.to_string())?;
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                let mut sender = sender.clone();
                sender.ready().await.map_err(|error| error.to_string())?;
                sender.send_request(request).await
            }
        }
        .map_err(|error| error.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// The most of a request body an edge reads: a report or a search, never a
/// file.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Serves HTTPS/1.1 on `listener` with `config` (mutual TLS: see
/// `Trust::https_server_config`) until `shutdown` completes. Each request
/// is handed to `answer` with its body read whole (a larger one than
/// [`BODY_LIMIT`] is answered 413 without it) and the connection's verified
/// client certificate, for `Authenticate::identify_leaf`.
pub async fn serve<A, F>(
    listener: tokio::net::TcpListener,
    config: rustls::ServerConfig,
    answer: A,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String>
where
    A: Fn(http::Request<Bytes>, Option<Arc<[u8]>>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, answer) = (acceptor.clone(), answer.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else {
                return;
            };
            let leaf: Option<Arc<[u8]>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| Arc::from(leaf.as_ref()));
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let (answer, leaf) = (answer.clone(), leaf.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = match http_body_util::Limited::new(body, BODY_LIMIT)
                            .collect()
                            .await
                        {
                            Ok(collected) => collected.to_bytes(),
                            Err(_) => return Ok::<_, std::convert::Infallible>(too_large()),
                        };
                        Ok(answer(http::Request::from_parts(parts, body), leaf).await)
                    }
                });
            // HTTP/1.1, or HTTP/2 when the client asked for it (ALPN).
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
        });
    }
}

fn too_large() -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(
        b"the request body is larger than this service reads",
    )));
    *response.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
    response
}
