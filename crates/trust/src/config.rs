//! What a process trusts, as the operator configures it (a security file,
//! `--security FILE`): its own certificate, the CA bundles whose client
//! certificates it accepts, the identity providers whose tokens it accepts
//! and what their role codes mean. A file of its own, not a setting: each
//! process has its own certificate. Certificates, keys and JWKS are files
//! beside it: mounted secrets, never part of an image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::layer::Authenticate;
use crate::signing::{EventKeys, EventSigner};
use crate::token::{IssuerConfig, Verifier};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This server's certificate chain and key (PEM).
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
    /// The CA bundles (PEM) whose client certificates are accepted: one per
    /// issuing authority (the NHS, a police force's PKI, the backbone's own).
    pub client_ca: Vec<PathBuf>,
    /// The certificate and key this process presents when it calls another
    /// of the backbone's services (a registry replica passing a write to the
    /// primary, a service repairing a gap from a producer). Naming
    /// `urn:safeguard:service:<name>`; defaults to the server's own.
    #[serde(default)]
    pub service_certificate: Option<PathBuf>,
    #[serde(default)]
    pub service_key: Option<PathBuf>,
    /// The CA bundles that sign the services' server certificates, trusted
    /// when this process calls another service; defaults to `client_ca`.
    #[serde(default)]
    pub server_ca: Vec<PathBuf>,
    /// The identity providers whose access tokens are accepted.
    pub issuers: Vec<IssuerConfig>,
    /// The certificate (PEM) whose key signs each producer's records on the
    /// bus, by producer name (`*` for every producer: a development realm,
    /// whose services share one certificate). This process signs its own
    /// records with its service key. A record of a producer not named here
    /// is never applied from the bus.
    #[serde(default)]
    pub event_signers: BTreeMap<String, PathBuf>,
    /// Who this process is to the NATS server, when it runs over NATS.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// How far apart the issuers' clocks and ours may be, for `exp` and `nbf`.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Set only in a development realm (`Realm`): a backbone refuses to
    /// listen beyond loopback with one unless told so by a loud flag.
    #[serde(default)]
    pub development: bool,
}

/// This process's identity on the NATS server: its NKEY, and the TLS it
/// connects with (mutual: its service certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The file holding its NKEY seed (`SU…`, a secret).
    pub nkey_seed: PathBuf,
    /// The name the server's configuration gives that key; its inbox
    /// prefix is `_INBOX_<name>` (`proto/SUBJECTS.md`).
    pub name: String,
    /// The CA bundles that sign the NATS servers' certificates; defaults to
    /// `server_ca`, else `client_ca`.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
}

/// How a process connects to NATS: read from its configuration once.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsClient {
    pub name: String,
    /// The NKEY seed.
    pub seed: String,
    pub ca: Vec<PathBuf>,
    /// Its client certificate and key for mutual TLS.
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl std::fmt::Debug for NatsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn default_skew() -> u64 {
    30
}

impl Config {
    /// Reads a security file; a field it does not know is refused by name,
    /// and relative paths are taken from the file's directory, as a mounted
    /// secret's are.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = read(path)?;
        let config: Config =
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(config.relative_to(path.parent().unwrap_or(Path::new("."))))
    }

    /// The same configuration with every relative path taken from `base`
    /// (the directory of the file it was read from).
    pub fn relative_to(mut self, base: &Path) -> Config {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.server_certificate);
        resolve(&mut self.server_key);
        self.client_ca.iter_mut().for_each(resolve);
        self.server_ca.iter_mut().for_each(resolve);
        self.service_certificate.iter_mut().for_each(resolve);
        self.service_key.iter_mut().for_each(resolve);
        for issuer in &mut self.issuers {
            resolve(&mut issuer.jwks);
        }
        self.event_signers.values_mut().for_each(resolve);
        if let Some(nats) = &mut self.nats {
            resolve(&mut nats.nkey_seed);
            nats.ca.iter_mut().for_each(resolve);
        }
        self
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

fn bundle(paths: &[PathBuf]) -> Result<String, String> {
    let mut joined = String::new();
    for path in paths {
        joined.push_str(&read(path)?);
        joined.push('\n');
    }
    Ok(joined)
}

/// The configuration loaded: TLS for serving and for calling, and the
/// token verifier, each read once at start.
#[derive(Clone)]
pub struct Trust {
    config: Config,
    server: ServerTlsConfig,
    client: ClientTlsConfig,
    service_client: Arc<rustls::ClientConfig>,
    verifier: Arc<Verifier>,
    event_signer: Result<Arc<EventSigner>, String>,
    event_keys: EventKeys,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

impl Trust {
    pub fn load(config: &Config) -> Result<Trust, String> {
        if config.client_ca.is_empty() {
            return Err("client_ca: name at least one CA bundle".into());
        }
        if config.issuers.is_empty() {
            return Err("issuers: name at least one identity provider".into());
        }
        let server_identity =
            Identity::from_pem(read(&config.server_certificate)?, read(&config.server_key)?);
        let client_ca = bundle(&config.client_ca)?;
        let server = ServerTlsConfig::new()
            .identity(server_identity)
            .client_ca_root(Certificate::from_pem(&client_ca))
            // A caller without a certificate is answered UNAUTHENTICATED by
            // the authentication layer, which says why, rather than cut off
            // mid-handshake; one that presents a certificate is still
            // verified against the bundles here, by rustls.
            .client_auth_optional(true)
            .timeout(HANDSHAKE);
        let service_key = config.service_key.as_ref().unwrap_or(&config.server_key);
        let event_signer = EventSigner::from_file(service_key).map(Arc::new);
        let event_keys = EventKeys::from_certificates(&config.event_signers)?;
        let (service_certificate, service_key) =
            match (&config.service_certificate, &config.service_key) {
                (Some(certificate), Some(key)) => (read(certificate)?, read(key)?),
                (None, None) => (read(&config.server_certificate)?, read(&config.server_key)?),
                _ => {
                    return Err("service_certificate and service_key: give both or neither".into());
                }
            };
        let server_ca = if config.server_ca.is_empty() {
            client_ca
        } else {
            bundle(&config.server_ca)?
        };
        let service_client = crate::https::client_config(
            crate::https::Version::Http2,
            &server_ca,
            Some((&service_certificate, &service_key)),
        )?;
        let client = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(server_ca))
            .identity(Identity::from_pem(service_certificate, service_key))
            .timeout(HANDSHAKE);
        let verifier = Verifier::new(
            &config.issuers,
            Duration::from_secs(config.clock_skew_seconds),
        )
        .map_err(|error| format!("issuers: {error}"))?;
        Ok(Trust {
            config: config.clone(),
            server,
            client,
            service_client,
            verifier: Arc::new(verifier),
            event_signer,
            event_keys,
        })
    }

    /// TLS for an HTTPS edge (FHIR): the same server certificate and client
    /// CA bundles as gRPC, a client certificate optional at the handshake
    /// (so a caller without one is told why, in the protocol's terms) and
    /// verified against the bundles when presented.
    pub fn https_server_config(&self) -> Result<rustls::ServerConfig, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let config = &self.config;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for path in &config.client_ca {
            for certificate in CertificateDer::pem_file_iter(path)
                .map_err(|error| format!("{}: {error}", path.display()))?
            {
                let certificate =
                    certificate.map_err(|error| format!("{}: {error}", path.display()))?;
                roots
                    .add(certificate)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
        let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|error| format!("client_ca: {error}"))?;
        let chain = CertificateDer::pem_file_iter(&config.server_certificate)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|error| format!("{}: {error}", config.server_certificate.display()))?;
        let key = PrivateKeyDer::from_pem_file(&config.server_key)
            .map_err(|error| format!("{}: {error}", config.server_key.display()))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain, key)
            .map_err(|error| format!("server_certificate: {error}"))?;
        // HTTP/2 for a system that keeps a few connections busy with many
        // searches at once; HTTP/1.1 for every other.
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(server)
    }

    /// What signs this process's records on the bus: its service key.
    pub fn event_signer(&self) -> Result<Arc<EventSigner>, String> {
        self.event_signer
            .clone()
            .map_err(|error| format!("service_key: {error}"))
    }

    /// How this process connects to NATS, if its configuration says.
    pub fn nats_client(&self) -> Result<Option<NatsClient>, String> {
        let Some(nats) = &self.config.nats else {
            return Ok(None);
        };
        let seed = read(&nats.nkey_seed)
            .map_err(|error| format!("nats.nkey_seed: {error}"))?
            .trim()
            .to_owned();
        let config = &self.config;
        let ca = [&nats.ca, &config.server_ca, &config.client_ca]
            .into_iter()
            .find(|bundles| !bundles.is_empty())
            .cloned()
            .unwrap_or_default();
        Ok(Some(NatsClient {
            name: nats.name.clone(),
            seed,
            ca,
            certificate: config
                .service_certificate
                .clone()
                .unwrap_or_else(|| config.server_certificate.clone()),
            key: config
                .service_key
                .clone()
                .unwrap_or_else(|| config.server_key.clone()),
        }))
    }

    /// The keys that sign the records of each producer this process may
    /// follow over the bus (`event_signers`).
    pub fn event_keys(&self) -> Result<EventKeys, String> {
        if self.event_keys.is_empty() {
            return Err(
                "event_signers: name the certificate of each producer followed over the bus".into(),
            );
        }
        Ok(self.event_keys.clone())
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_development(&self) -> bool {
        self.config.development
    }

    /// TLS for this process's gRPC listener: mutual, against the client CAs.
    pub fn server_tls(&self) -> ServerTlsConfig {
        self.server.clone()
    }

    /// TLS for this process's calls to the backbone's other services,
    /// presenting its service certificate.
    pub fn service_client_tls(&self) -> ClientTlsConfig {
        self.client.clone()
    }

    /// The same TLS as rustls has it, for an [`crate::channel::Http2Channel`].
    pub fn service_client_config(&self) -> Arc<rustls::ClientConfig> {
        self.service_client.clone()
    }

    /// The layer every gRPC server runs requests through first.
    pub fn authenticate(&self) -> Authenticate {
        Authenticate::new(self.verifier.clone())
    }

    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}
