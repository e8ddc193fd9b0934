//! The development realm: what `safeguard up` makes in its data directory
//! on first start when no security is configured, so that one command still
//! runs the backbone, over mutual TLS with tokens like any other. A local
//! CA, the server's certificate (loopback names), a token-signing key and
//! its JWKS; the CLI, the demo, the tests and the benchmarks mint client
//! certificates and short-lived tokens from it. Nothing here is for
//! production: its config says `development`, and a backbone listening
//! beyond loopback refuses it unless a loudly named flag says otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use contract::common::v1::Role;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::client::Credentials;
use crate::config::Config;
use crate::names;
use crate::token::{IssuerConfig, Person, Signer};

/// The development identity provider's `iss`, and the backbone's `aud`.
pub const ISSUER: &str = "urn:safeguard:development-realm";
pub const AUDIENCE: &str = "safeguard";
const KID: &str = "development-1";

const CA: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER: &str = "server.pem";
const SERVER_KEY: &str = "server.key";
const SIGNING_KEY: &str = "token-signing.key";
const JWKS: &str = "jwks.json";

/// A development realm on disk, able to issue credentials.
pub struct Realm {
    dir: PathBuf,
    ca_pem: String,
    ca_key: KeyPair,
    signer: Signer,
}

impl std::fmt::Debug for Realm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realm")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "safeguard development realm CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn leaf_params(common_name: &str, names: Vec<SanType>, server: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.subject_alt_names = names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    params
}

fn uri(value: String) -> Result<SanType, String> {
    Ok(SanType::URI(
        value
            .try_into()
            .map_err(|error: rcgen::Error| error.to_string())?,
    ))
}

fn failed(error: impl std::fmt::Display) -> String {
    format!("development realm: {error}")
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub certificate: String,
    pub key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

impl Realm {
    /// The realm in `dir`, made there first if there is none yet; says
    /// whether it was made now.
    pub fn open_or_create(dir: &Path) -> Result<(Realm, bool), String> {
        Realm::open_or_create_for(dir, &[])
    }

    /// The same, its server certificate naming `server_names` too (the
    /// hosts of a compose file, say) beside loopback.
    pub fn open_or_create_for(
        dir: &Path,
        server_names: &[String],
    ) -> Result<(Realm, bool), String> {
        if dir.join(CA).exists() {
            return Ok((Realm::open(dir)?, false));
        }
        Realm::create(dir, server_names)?;
        Ok((Realm::open(dir)?, true))
    }

    /// A realm made before.
    pub fn open(dir: &Path) -> Result<Realm, String> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|error| failed(format!("{}: {error}", dir.join(name).display())))
        };
        let ca_pem = read(CA)?;
        let ca_key = KeyPair::from_pem(&read(CA_KEY)?).map_err(failed)?;
        let signing = KeyPair::from_pem(&read(SIGNING_KEY)?).map_err(failed)?;
        Ok(Realm {
            dir: dir.to_owned(),
            ca_pem,
            ca_key,
            signer: Signer::new(ISSUER, AUDIENCE, KID, signing.serialized_der()),
        })
    }

    fn create(dir: &Path, server_names: &[String]) -> Result<(), String> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(failed)?;
        // Made beside and renamed into place, so no process ever sees half a realm.
        let making = tempdir_in(parent)?;
        let ca_key = KeyPair::generate().map_err(failed)?;
        let ca = ca_params().self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca_params(), &ca_key);
        let server_key = KeyPair::generate().map_err(failed)?;
        let mut names = vec![
            SanType::DnsName("localhost".try_into().map_err(failed)?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            uri(names::service_uri("backbone"))?,
        ];
        for name in server_names {
            names.push(SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|error| failed(format!("server name {name}: {error}")))?,
            ));
        }
        let server = leaf_params("safeguard development backbone", names, true)
            .signed_by(&server_key, &issuer)
            .map_err(failed)?;
        let signing = KeyPair::generate().map_err(failed)?;
        let signer = Signer::new(ISSUER, AUDIENCE, KID, signing.serialized_der());
        let files = [
            (CA, ca.pem(), false),
            (CA_KEY, ca_key.serialize_pem(), true),
            (SERVER, server.pem(), false),
            (SERVER_KEY, server_key.serialize_pem(), true),
            (SIGNING_KEY, signing.serialize_pem(), true),
            (JWKS, signer.jwks()?, false),
        ];
        for (name, contents, secret) in files {
            write(&making.join(name), &contents, secret)?;
        }
        match std::fs::rename(&making, dir) {
            Ok(()) => Ok(()),
            // Another process made it first: theirs stands.
            Err(_) if dir.join(CA).exists() => {
                let _ = std::fs::remove_dir_all(&making);
                Ok(())
            }
            Err(error) => Err(failed(format!("{}: {error}", dir.display()))),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The security configuration a backbone or service runs with in this
    /// realm. Its issuer's role codes are the contract's role names.
    pub fn config(&self) -> Config {
        let roles: HashMap<String, String> = (1..)
            .map_while(|value| Role::try_from(value).ok())
            .map(|role| {
                let name = crate::caller::role_name(role).to_owned();
                (name.clone(), name)
            })
            .collect();
        Config {
            server_certificate: self.dir.join(SERVER),
            server_key: self.dir.join(SERVER_KEY),
            client_ca: vec![self.dir.join(CA)],
            service_certificate: None,
            service_key: None,
            server_ca: Vec::new(),
            issuers: vec![IssuerConfig {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                jwks: self.dir.join(JWKS),
                roles,
            }],
            event_signers: [(
                crate::signing::ANY_PRODUCER.to_owned(),
                self.dir.join(SERVER),
            )]
            .into(),
            nats: None,
            clock_skew_seconds: 30,
            development: true,
        }
    }

    /// The same configuration for the process known to NATS as `name`:
    /// with its NKEY (made on first use).
    pub fn config_as(&self, name: &str) -> Result<Config, String> {
        Ok(Config {
            nats: Some(crate::config::NatsConfig {
                nkey_seed: self.nats_seed_file(name)?,
                name: name.to_owned(),
                ca: Vec::new(),
            }),
            ..self.config()
        })
    }

    /// Where the realm keeps what a NATS server needs: its users' NKEY
    /// seeds (`<name>.nk`), the key that encrypts its store, and the
    /// `users.conf` made from them.
    pub fn nats_dir(&self) -> PathBuf {
        self.dir.join("nats")
    }

    /// The file holding the NKEY seed of the NATS user `name`, made on
    /// first use (a new user key; never replaced).
    pub fn nats_seed_file(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(failed(format!(
                "a NATS user name must be letters, digits, - or _: {name:?}"
            )));
        }
        let path = self.nats_dir().join(format!("{name}.nk"));
        if !path.exists() {
            let seed = nkeys::KeyPair::new_user().seed().map_err(failed)?;
            write_once(&self.nats_dir(), &path, &seed)?;
        }
        Ok(path)
    }

    /// The public NKEY of the NATS user `name` (made on first use): what the
    /// server's configuration lists.
    pub fn nats_public_key(&self, name: &str) -> Result<String, String> {
        let path = self.nats_seed_file(name)?;
        let seed = std::fs::read_to_string(&path)
            .map_err(|error| failed(format!("{}: {error}", path.display())))?;
        Ok(nkeys::KeyPair::from_seed(seed.trim())
            .map_err(failed)?
            .public_key())
    }

    /// The key that encrypts the NATS server's store (its `cipher`), made on
    /// first use.
    pub fn nats_store_key(&self) -> Result<String, String> {
        use ring::rand::SecureRandom as _;
        let path = self.nats_dir().join("store.key");
        if !path.exists() {
            let mut bytes = [0_u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| failed("no randomness for the store key"))?;
            let key: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            write_once(&self.nats_dir(), &path, &key)?;
        }
        std::fs::read_to_string(&path)
            .map(|key| key.trim().to_owned())
            .map_err(|error| failed(format!("{}: {error}", path.display())))
    }

    /// This realm's CA, the server certificate and its key, as files: what a
    /// NATS server of the realm presents and trusts.
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.dir.join(CA),
            self.dir.join(SERVER),
            self.dir.join(SERVER_KEY),
        )
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate for the system of the organisation `ods`.
    pub fn organisation_certificate(&self, ods: &domain::OdsCode) -> Result<Issued, String> {
        self.issue(&ods.to_string(), names::organisation_uri(ods))
    }

    /// A client certificate for one of the backbone's services.
    pub fn service_certificate(&self, name: &str) -> Result<Issued, String> {
        self.issue(name, names::service_uri(name))
    }

    /// A client certificate naming anything at all: for tests of what the
    /// backbone refuses.
    pub fn certificate_naming(&self, common_name: &str, uris: &[&str]) -> Result<Issued, String> {
        let issuer = Issuer::new(ca_params(), &self.ca_key);
        let key = KeyPair::generate().map_err(failed)?;
        let names = uris
            .iter()
            .map(|value| uri((*value).to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        let certificate = leaf_params(common_name, names, false)
            .signed_by(&key, &issuer)
            .map_err(failed)?;
        Ok(Issued {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        })
    }

    fn issue(&self, common_name: &str, san: String) -> Result<Issued, String> {
        self.certificate_naming(common_name, &[&san])
    }

    /// An access token for `person`, whose role code is a contract role
    /// name (`SOCIAL_WORKER`), valid for `lifetime`.
    pub fn token(&self, person: &Person, lifetime: Duration) -> Result<String, String> {
        self.signer.token(person, lifetime)
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Credentials of `person` acting through their organisation's system:
    /// its certificate, and a token valid for `lifetime`.
    pub fn credentials(&self, person: &Person, lifetime: Duration) -> Result<Credentials, String> {
        let ods = domain::OdsCode::parse(&person.organisation)
            .map_err(|error| format!("organisation {}: {error}", person.organisation))?;
        let issued = self.organisation_certificate(&ods)?;
        Ok(Credentials::new(self.ca_pem(), &issued).with_token(self.token(person, lifetime)?))
    }

    /// Credentials of one of the backbone's services (no person).
    pub fn service_credentials(&self, name: &str) -> Result<Credentials, String> {
        Ok(Credentials::new(
            self.ca_pem(),
            &self.service_certificate(name)?,
        ))
    }
}

fn tempdir_in(parent: &Path) -> Result<PathBuf, String> {
    let name = format!(
        ".realm-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    );
    let path = parent.join(name);
    std::fs::create_dir(&path).map_err(|error| failed(format!("{}: {error}", path.display())))?;
    Ok(path)
}

/// Writes a secret to `path` unless another process has just done so: made
/// beside and linked into place, so no one reads half a key and the first
/// key made stands.
fn write_once(dir: &Path, path: &Path, contents: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| failed(format!("{}: {error}", dir.display())))?;
    let making = dir.join(format!(
        ".{}.{}",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("key"),
        std::process::id()
    ));
    write(&making, contents, true)?;
    let linked = std::fs::hard_link(&making, path);
    let _ = std::fs::remove_file(&making);
    match linked {
        Ok(()) => Ok(()),
        Err(_) if path.exists() => Ok(()),
        Err(error) => Err(failed(format!("{}: {error}", path.display()))),
    }
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|error| failed(format!("{}: {error}", path.display())))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| failed(format!("{}: {error}", path.display())))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}
