//! NHS England's MESH sandbox (PyPI `mesh-sandbox`), run here: the real
//! MESH API over mutual TLS with full HMAC authorisation, for the tests, the
//! benchmark and a trial run of the bridge. Its mailboxes and workflows are
//! the ones in `sandbox/` (a bridge mailbox and one practice mailbox per
//! clinical system), written where the sandbox reads them, as its own
//! documentation mounts them. `tests/run.sh` installs it in a virtual
//! environment of its own (it pins its own FastAPI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mesh::Mailbox;

/// The sandbox's mailboxes: the bridge's, then one practice per system.
pub const MAILBOXES: &str = include_str!("../sandbox/mailboxes.jsonl");
pub const WORKFLOWS: &str = include_str!("../sandbox/workflows.jsonl");
/// The bridge's mailbox in [`MAILBOXES`].
pub const BRIDGE_MAILBOX: &str = "X26OT001";
/// Every sandbox mailbox's password (the sandbox's own convention).
pub const PASSWORD: &str = "password";

/// The sandbox's Python: `$MESH_SANDBOX_PYTHON`, or the virtual
/// environment `tests/run.sh` makes under the workspace's `target/`.
pub fn python() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MESH_SANDBOX_PYTHON") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let python = target.join("mesh-sandbox/bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "no MESH sandbox at {}: tests/run.sh installs it (or set MESH_SANDBOX_PYTHON)",
            python.display()
        ))
    }
}

/// The TLS files the sandbox serves with: its certificate and key, and the
/// CA its clients' certificates must chain to.
#[derive(Debug, Clone)]
pub struct Tls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// A running sandbox, stopped when dropped.
#[derive(Debug)]
pub struct Sandbox {
    child: Child,
    /// `https://localhost:<port>`.
    pub url: String,
    pub shared_key: String,
    pub log: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the mailboxes and workflows where the installed sandbox reads
/// them (replacing a file whole, so a sandbox starting meanwhile reads the
/// old or the new, never half).
fn install_mailboxes(python: &Path) -> Result<(), String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import mesh_sandbox, os; print(os.path.dirname(mesh_sandbox.__file__))",
        ])
        .output()
        .map_err(|error| format!("{}: {error}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the MESH sandbox is not installed for {}: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let data = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("store/data");
    for (name, text) in [
        ("mailboxes.jsonl", MAILBOXES),
        ("workflows.jsonl", WORKFLOWS),
    ] {
        let path = data.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text) {
            continue;
        }
        let temporary = data.join(format!("{name}.{}", std::process::id()));
        std::fs::write(&temporary, text).map_err(|error| format!("{name}: {error}"))?;
        std::fs::rename(&temporary, &path).map_err(|error| format!("{name}: {error}"))?;
    }
    Ok(())
}

impl Sandbox {
    /// Starts the sandbox on a free loopback port with its logs in `dir`,
    /// and waits until it answers `client` (certificate and key, PEM).
    pub async fn start(
        dir: &Path,
        tls: &Tls,
        ca_pem: &str,
        client: (&str, &str),
    ) -> Result<Sandbox, String> {
        let python = python()?;
        install_mailboxes(&python)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| error.to_string())?
            .port();
        let shared_key = uuid::Uuid::now_v7().simple().to_string();
        let log = dir.join("mesh-sandbox.log");
        let file = std::fs::File::create(&log).map_err(|error| error.to_string())?;
        let child = Command::new(&python)
            .args([
                "-m",
                "uvicorn",
                "mesh_sandbox.api:app",
                "--host",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string(), "--log-level", "warning"])
            .arg("--ssl-certfile")
            .arg(&tls.certificate)
            .arg("--ssl-keyfile")
            .arg(&tls.key)
            .arg("--ssl-ca-certs")
            .arg(&tls.client_ca)
            // ssl.CERT_REQUIRED: MESH is mutual TLS.
            .args(["--ssl-cert-reqs", "2"])
            .env("STORE_MODE", "memory")
            .env("AUTH_MODE", "full")
            .env("SHARED_KEY", &shared_key)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|error| error.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|error| format!("{}: {error}", python.display()))?;
        let mut sandbox = Sandbox {
            child,
            url: format!("https://localhost:{port}"),
            shared_key,
            log,
        };
        let authority = format!("127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(mut connection) =
                trust::https::connect(&authority, "localhost", ca_pem, Some(client)).await
                && let Ok(answer) = connection.get("/health", &[]).await
                && answer.status.is_success()
            {
                return Ok(sandbox);
            }
            if let Ok(Some(exit)) = sandbox.child.try_wait() {
                return Err(format!(
                    "the MESH sandbox stopped ({exit}): {}",
                    std::fs::read_to_string(&sandbox.log).unwrap_or_default()
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "the MESH sandbox did not answer within a minute: see {}",
                    sandbox.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the sandbox serving `realm`'s server certificate, trusting
    /// its CA for clients, and waits until it answers the certificate the
    /// realm issues the bridge (returned with it, for the bridge to use).
    pub async fn start_in_realm(
        dir: &Path,
        realm: &trust::Realm,
    ) -> Result<(Sandbox, trust::realm::Issued), String> {
        let (client_ca, certificate, key) = realm.tls_files();
        let client = realm.service_certificate(crate::SUBSCRIBER)?;
        let sandbox = Sandbox::start(
            dir,
            &Tls {
                certificate,
                key,
                client_ca,
            },
            realm.ca_pem(),
            (&client.certificate, &client.key),
        )
        .await?;
        Ok((sandbox, client))
    }

    /// `mailbox_id`'s client, presenting `client` (certificate and key).
    pub fn mailbox(&self, mailbox_id: &str, ca_pem: &str, client: (&str, &str)) -> Mailbox {
        let (authority, server_name) = crate::config::authority(&self.url).unwrap_or_default();
        Mailbox {
            authority,
            server_name,
            mailbox_id: mailbox_id.to_owned(),
            password: PASSWORD.to_owned(),
            shared_key: self.shared_key.clone(),
            ca_pem: ca_pem.to_owned(),
            certificate: client.0.to_owned(),
            key: client.1.to_owned(),
        }
    }
}
