//! What a service's gRPC server accepts: TCP connections from other
//! processes and machines, and pipes from the edges running in its own
//! process (`trust::pipe`), as one kind of connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// One accepted connection, TLS not yet begun.
#[derive(Debug)]
pub enum Connection {
    Tcp(TcpStream),
    Pipe(DuplexStream),
}

/// The connections `listener` accepts, and those made through `pipe`.
/// Nagle's algorithm is off, as `serve_with_shutdown` has it: with it on,
/// a response written in more than one piece waits for the client's
/// delayed ACK, and every lookup took 40 ms however idle the server.
pub fn incoming(
    listener: tokio::net::TcpListener,
    pipe: Option<trust::pipe::Listener>,
) -> impl Stream<Item = io::Result<Connection>> + Send + 'static {
    let tcp = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(Connection::Tcp));
    let piped = futures_util::stream::unfold(pipe, |pipe| async move {
        let mut pipe = pipe?;
        let connection = pipe.accept().await?;
        Some((Ok(Connection::Pipe(connection)), Some(pipe)))
    });
    tcp.merge(piped)
}

impl Connected for Connection {
    // The same as a TCP connection's, so that everything reading who is
    // connected (`trust::layer`) reads it one way; a pipe has no addresses.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Connection::Tcp(tcp) => tcp.connect_info(),
            Connection::Pipe(_) => TcpConnectInfo {
                local_addr: None,
                remote_addr: None,
            },
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Connection::Pipe(pipe) => Pin::new(pipe).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Connection::Pipe(pipe) => Pin::new(pipe).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Connection::Pipe(pipe) => Pin::new(pipe).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Tcp(tcp) => tcp.is_write_vectored(),
            Connection::Pipe(pipe) => pipe.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Connection::Pipe(pipe) => Pin::new(pipe).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Connection::Pipe(pipe) => Pin::new(pipe).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use contract::registry::v1 as wire;
    use contract::registry::v1::plan_registry_client::PlanRegistryClient;
    use tonic::Code;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use trust::channel::Http2Channel;

    /// Who calls through a pipe is proven as over TCP, by the certificate
    /// presented in the TLS on it: a service's passes the credentials
    /// check (and finds no such method here), an organisation's without a
    /// person's token does not; and once the server is gone, a call
    /// through the pipe is `UNAVAILABLE`.
    #[tokio::test]
    async fn a_pipe_proves_who_calls_as_tcp_does() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (realm, _) = trust::Realm::open_or_create(dir.path()).expect("a realm");
        let trust = trust::Trust::load(&realm.config()).expect("trust");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        // Nothing listens at the address the channel names: only the pipe
        // reaches the server (the certificate still has to name it).
        let url = "https://127.0.0.1:9";
        let (pipe, piped) = trust::pipe::pair();
        let (_health, health) = tonic_health::server::health_reporter();
        let server = tokio::spawn(
            crate::process::server(&trust, &Default::default(), None)
                .expect("a server")
                .add_service(health)
                .serve_with_incoming(super::incoming(listener, Some(piped))),
        );
        let through =
            |config| Http2Channel::new(url, config, Some(pipe.clone())).expect("a channel");
        let service = through(trust.service_client_config());
        let serving = HealthClient::new(service.clone())
            .check(HealthCheckRequest::default())
            .await
            .expect("health over the pipe");
        assert_eq!(
            serving.get_ref().status,
            tonic_health::ServingStatus::Serving as i32
        );
        let lookup = || wire::LookupChildRequest::default();
        let as_service = PlanRegistryClient::new(service)
            .lookup_child(lookup())
            .await;
        assert_eq!(
            as_service.map(|_| ()).map_err(|s| s.code()),
            Err(Code::Unimplemented)
        );

        let issued = realm
            .organisation_certificate(&domain::OdsCode::parse("RXX01").expect("an ODS code"))
            .expect("a certificate");
        let organisation = trust::https::client_config(
            trust::https::Version::Http2,
            realm.ca_pem(),
            Some((&issued.certificate, &issued.key)),
        )
        .expect("a client config");
        let refused = PlanRegistryClient::new(through(organisation))
            .lookup_child(lookup())
            .await
            .expect_err("an organisation's system without a person's token");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

        server.abort();
        let _ = server.await;
        let gone = HealthClient::new(through(trust.service_client_config()))
            .check(HealthCheckRequest::default())
            .await
            .expect_err("no server");
        assert_eq!(gone.code(), Code::Unavailable, "{gone:?}");
    }
}
