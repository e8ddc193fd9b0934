//! `safeguard verify`: an auditor's check that event logs are whole and
//! unrewritten, read-only (each log is verified on a copy of its files).

use std::path::{Path, PathBuf};

/// Rechecks every record's hash, the chain, both indexes and the anchor of
/// the event log in `--data-dir`, or of each service's log beneath it (a
/// backbone's data directory); exits non-zero naming the first bad
/// position. Never writes to the directory: run it on a copy, or on the
/// live directory while its service runs.
#[derive(Debug, clap::Args)]
pub struct Verify {
    #[arg(long)]
    data_dir: PathBuf,
}

impl Verify {
    pub fn run(self) -> Result<(), String> {
        let logs = logs_in(&self.data_dir)?;
        let mut failed = Vec::new();
        for log in &logs {
            match eventlog::verify_copy(log) {
                Ok(report) => println!(
                    "{}: intact: {} records in {} streams, last hash {}",
                    log.display(),
                    report.records,
                    report.streams,
                    report.last_hash_hex()
                ),
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
