//! The bridge's configuration file (JSON): the backbone's notification
//! service, the MESH mailbox it sends from, and the practices it serves,
//! each with its MESH mailbox, its clinical system and the access token the
//! practice issued the bridge. Secrets (the MESH password and shared key,
//! tokens) are files, as mounted secrets are; relative paths are taken from
//! the configuration file's directory. A field it does not know is refused
//! by name.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::systems::ClinicalSystem;

/// GP Connect Send Document's MESH workflow (v1.x).
pub const SEND_DOCUMENT_WORKFLOW: &str = "GPFED_CONSULT_REPORT";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The notification service's gRPC URL (or the one-process backbone's).
    pub notifications: String,
    /// The organisation the documents come from (the partnership that runs
    /// the backbone).
    pub sender: Sender,
    pub mesh: Mesh,
    pub practices: Vec<Practice>,
    /// Where the delivery ledger is kept.
    pub state_dir: PathBuf,
    /// How long to wait after the first failed attempt, doubling up to
    /// `retry_max_ms`.
    #[serde(default = "default_retry_first_ms")]
    pub retry_first_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How often the bridge's own inbox is read for acknowledgements.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub ods_code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mesh {
    /// `https://host:port` of the MESH API.
    pub url: String,
    /// The bridge's own mailbox.
    pub mailbox: String,
    pub password_file: PathBuf,
    pub shared_key_file: PathBuf,
    /// The CA that signed MESH's server certificate (in a development
    /// realm, the realm's by default).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The bridge's MESH client certificate and key, PEM (in a development
    /// realm, one the realm issues by default).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default = "default_workflow")]
    pub workflow_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    pub ods_code: String,
    pub name: String,
    /// The practice's MESH mailbox.
    pub mailbox: String,
    pub system: ClinicalSystem,
    /// The access token the practice issued the bridge, re-read at each
    /// (re)connection so it can be rotated in place. Without it, in a
    /// development realm, the bridge asks the realm for one.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_workflow() -> String {
    SEND_DOCUMENT_WORKFLOW.to_owned()
}

fn default_retry_first_ms() -> u64 {
    500
}

fn default_retry_max_ms() -> u64 {
    30_000
}

fn default_poll_ms() -> u64 {
    2_000
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let config: Config =
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        config
            .relative_to(path.parent().unwrap_or(Path::new(".")))
            .checked()
    }

    fn relative_to(mut self, base: &Path) -> Config {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.state_dir);
        resolve(&mut self.mesh.password_file);
        resolve(&mut self.mesh.shared_key_file);
        for path in [
            &mut self.mesh.ca,
            &mut self.mesh.certificate,
            &mut self.mesh.key,
        ]
        .into_iter()
        .flatten()
        {
            resolve(path);
        }
        for practice in &mut self.practices {
            if let Some(path) = &mut practice.token_file {
                resolve(path);
            }
        }
        self
    }

    /// Refuses what the bridge could not serve, naming the field.
    pub fn checked(self) -> Result<Config, String> {
        if self.practices.is_empty() {
            return Err("practices: at least one practice is needed".into());
        }
        for (index, practice) in self.practices.iter().enumerate() {
            domain::OdsCode::parse(&practice.ods_code)
                .map_err(|error| format!("practices[{index}].ods_code: {error}"))?;
            if practice.mailbox.trim().is_empty() {
                return Err(format!("practices[{index}].mailbox: is required"));
            }
            if self.practices[..index]
                .iter()
                .any(|other| other.ods_code == practice.ods_code)
            {
                return Err(format!(
                    "practices[{index}].ods_code: {} is configured twice",
                    practice.ods_code
                ));
            }
        }
        domain::OdsCode::parse(&self.sender.ods_code)
            .map_err(|error| format!("sender.ods_code: {error}"))?;
        authority(&self.mesh.url)?;
        Ok(self)
    }
}

/// `host:port` and the host of an `https://host:port` URL.
pub fn authority(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("mesh.url: {url} is not an https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("mesh.url: {url} names no port"))?;
    port.parse::<u16>()
        .map_err(|_| format!("mesh.url: {url} has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((authority.to_owned(), host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(practices: &str) -> Result<Config, String> {
        let text = format!(
            r#"{{"notifications":"https://127.0.0.1:50051","sender":{{"ods_code":"X26","name":"Test"}},
            "mesh":{{"url":"https://localhost:8700","mailbox":"X26OT001","password_file":"p","shared_key_file":"k","ca":"ca.pem","certificate":"c.pem","key":"c.key"}},
            "practices":{practices},"state_dir":"state"}}"#
        );
        serde_json::from_str::<Config>(&text)
            .map_err(|error| error.to_string())
            .and_then(Config::checked)
    }

    #[test]
    fn bad_configuration_is_refused_by_name() {
        let good = r#"[{"ods_code":"Y99001","name":"Test Surgery","mailbox":"Y99001GP","system":"emis-web"}]"#;
        let parsed = config(good).expect("valid");
        assert_eq!(parsed.mesh.workflow_id, "GPFED_CONSULT_REPORT");
        let unknown_system =
            r#"[{"ods_code":"Y99001","name":"T","mailbox":"M","system":"lloyd-george"}]"#;
        assert!(
            config(unknown_system)
                .expect_err("refused")
                .contains("unknown variant")
        );
        let bad_ods = r#"[{"ods_code":"??","name":"T","mailbox":"M","system":"vision"}]"#;
        assert!(
            config(bad_ods)
                .expect_err("refused")
                .contains("practices[0].ods_code")
        );
        let twice = r#"[{"ods_code":"Y99001","name":"T","mailbox":"M","system":"vision"},{"ods_code":"Y99001","name":"T","mailbox":"N","system":"vision"}]"#;
        assert!(
            config(twice)
                .expect_err("refused")
                .contains("practices[1].ods_code")
        );
        assert!(config("[]").expect_err("refused").contains("practices"));
        assert_eq!(
            authority("https://localhost:8700").expect("valid"),
            ("localhost:8700".to_owned(), "localhost".to_owned())
        );
        assert!(authority("http://localhost:8700").is_err());
    }

    #[test]
    fn the_deployed_development_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gp-bridge/config.json");
        let config = Config::from_file(&path).expect("deploy/gp-bridge/config.json");
        assert_eq!(config.practices.len(), 4);
        assert!(config.mesh.password_file.ends_with("mesh/password"));
        assert!(config.mesh.password_file.exists());
    }
}
