//! `safeguard verify`: an auditor's check that event logs are whole and
//! unrewritten, read-only (each log is verified on a copy of its files).

use std::path::{Path, PathBuf};

/// Rechecks every record's hash, the chain, both indexes and the anchor of
/// the event log in `--data-dir`, or of each service's log beneath it (a
/// backbone's data directory), and each signed checkpoint in it against
/// the record it names; exits non-zero naming the first bad position.
/// Never writes to the directory: run it on a copy, or on the live
/// directory while its service runs.
#[derive(Debug, clap::Args)]
pub struct Verify {
    #[arg(long)]
    data_dir: PathBuf,
    /// The certificate whose key signs a producer's checkpoints,
    /// `PRODUCER=CERT.pem` (or `CERT.pem` for every producer): each
    /// checkpoint's signature is then checked too. Repeat for each.
    #[arg(long = "signers")]
    signers: Vec<String>,
}

impl Verify {
    pub async fn run(self) -> Result<(), String> {
        let logs = logs_in(&self.data_dir)?;
        let keys = self.keys()?;
        let mut failed = Vec::new();
        for log in &logs {
            match check(log, keys.as_ref()).await {
                Ok(said) => println!("{}: intact: {said}", log.display()),
                Err(error) => {
                    println!("{}: NOT INTACT: {error}", log.display());
                    failed.push(format!("{}: {error}", log.display()));
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }
}

impl Verify {
    fn keys(&self) -> Result<Option<trust::EventKeys>, String> {
        if self.signers.is_empty() {
            return Ok(None);
        }
        let certificates = self
            .signers
            .iter()
            .map(|signer| match signer.split_once('=') {
                Some((producer, path)) => (producer.to_owned(), PathBuf::from(path)),
                None => (
                    trust::signing::ANY_PRODUCER.to_owned(),
                    PathBuf::from(signer),
                ),
            })
            .collect();
        trust::EventKeys::from_certificates(&certificates)
            .map(Some)
            .map_err(|error| format!("--signers: {error}"))
    }
}

/// One log: the walk, then its checkpoints.
async fn check(dir: &Path, keys: Option<&trust::EventKeys>) -> Result<String, String> {
    let report = eventlog::verify_copy(dir).map_err(|error| error.to_string())?;
    let (log, _copy) = eventlog::open_copy(dir).map_err(|error| error.to_string())?;
    let checkpoints = service_core::checkpoint::verify(&log, keys);
    let _ = log.close().await;
    let checkpoints = checkpoints?;
    Ok(format!(
        "{} records in {} streams, last hash {}; {checkpoints} checkpoint(s) match{}",
        report.records,
        report.streams,
        report.last_hash_hex(),
        if keys.is_some() {
            ", their signatures checked"
        } else {
            " (give --signers to check their signatures)"
        }
    ))
}

/// The log in `dir` itself, else the logs one level beneath it, in name
/// order.
fn logs_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let is_log = |path: &Path| path.join("db").is_file();
    if is_log(dir) {
        return Ok(vec![dir.to_owned()]);
    }
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("--data-dir {}: {error}", dir.display()))?;
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| is_log(path))
        .collect();
    logs.sort();
    if logs.is_empty() {
        return Err(format!(
            "--data-dir {}: no event log there or in the directories beneath it",
            dir.display()
        ));
    }
    Ok(logs)
}
