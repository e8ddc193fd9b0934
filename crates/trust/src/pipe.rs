//! Connections between services in one process (`safeguard up`): an
//! in-memory pipe carries the very bytes a TCP connection would (TLS,
//! HTTP/2, gRPC), so who calls is proven exactly as across machines, but
//! without two trips through the kernel's network stack per message.

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// How much one direction of a pipe holds before the writer waits: a few
/// TLS records, as a socket's buffer would.
const PIPE_BUFFER: usize = 256 * 1024;

/// The calling end: each `connect` is a new connection to the listener.
#[derive(Debug, Clone)]
pub struct Connector {
    accept: mpsc::UnboundedSender<DuplexStream>,
}

/// The serving end: the connections made to it, as a server accepts them.
#[derive(Debug)]
pub struct Listener {
    accepted: mpsc::UnboundedReceiver<DuplexStream>,
}

/// A listener and the connector that reaches it.
pub fn pair() -> (Connector, Listener) {
    let (accept, accepted) = mpsc::unbounded_channel();
    (Connector { accept }, Listener { accepted })
}

impl Connector {
    /// A new connection, or an error once the listener is gone.
    pub fn connect(&self) -> std::io::Result<DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        self.accept.send(theirs).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the service in this process is no longer serving",
            )
        })?;
        Ok(ours)
    }
}

impl Listener {
    /// The next connection, or `None` once every connector is gone.
    pub async fn accept(&mut self) -> Option<DuplexStream> {
        self.accepted.recv().await
    }
}
