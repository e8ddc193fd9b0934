//! Who read what, and who was refused, as events in the service's own log:
//! every read of children's records (`RecordsRead`, stream `reads`) is
//! durable before the answer, and every call the access policy refuses is a
//! security event (`AccessRefused`, stream `security`) naming the caller,
//! the RPC and the rule. Handlers ask the policy through [`allow`] and
//! [`allow_role`], which record a refusal before returning it; calls the
//! authentication layer refuses are recorded through [`unauthenticated`].

use contract::common::v1::NhsNumber;
use contract::events::v1::{AccessRefused, RecordsRead};
use eventlog::{EventLog, ExpectedVersion};
use tonic::{Code, Status};
use trust::Caller;
use trust::policy::{self, Parties};

use crate::reject::from_log;

/// The stream of reads in each service's log.
pub const READS: &str = "reads";
/// The stream of refusals in each service's log.
pub const SECURITY: &str = "security";

/// A read by `rpc` of what `read` names, about `children`, owned by `owners`.
pub fn reading(
    rpc: &str,
    purpose: &str,
    children: impl IntoIterator<Item = NhsNumber>,
    owners: impl IntoIterator<Item = String>,
    read: impl IntoIterator<Item = String>,
) -> RecordsRead {
    let mut owners: Vec<String> = owners.into_iter().collect();
    owners.sort();
    owners.dedup();
    let mut children: Vec<NhsNumber> = children.into_iter().collect();
    children.sort_by(|a, b| a.value.cmp(&b.value));
    children.dedup();
    RecordsRead {
        rpc: rpc.to_owned(),
        purpose: purpose.trim().to_owned(),
        children,
        owners,
        read: read.into_iter().collect(),
    }
}

/// Records `read` by `caller` in `log`, durably: call before answering.
pub async fn read(log: &EventLog, caller: &Caller, read: &RecordsRead) -> Result<(), Status> {
    log.append(
        READS,
        ExpectedVersion::Any,
        vec![crate::event::by_person(read, caller)],
    )
    .await
    .map_err(from_log)?;
    Ok(())
}

/// `status`, once a refusal of `rpc` to `caller` is recorded in `log` if
/// it is one (PERMISSION_DENIED). A refusal that cannot be recorded is
/// still a refusal: it is logged and returned all the same.
pub async fn refused(log: &EventLog, caller: &Caller, rpc: &str, status: Status) -> Status {
    if status.code() != Code::PermissionDenied {
        return status;
    }
    let event = AccessRefused {
        rpc: rpc.to_owned(),
        rule: status.message().to_owned(),
        ..AccessRefused::default()
    };
    tracing::warn!(
        rpc,
        organisation = %caller.organisation,
        user = caller.user_id,
        role = caller.role_name(),
        rule = status.message(),
        "security: a call the access policy refused"
    );
    let appended = log
        .append(
            SECURITY,
            ExpectedVersion::Any,
            vec![crate::event::by_person(&event, caller)],
        )
        .await;
    if let Err(error) = appended {
        tracing::error!(%error, rpc, "a refusal could not be recorded");
    }
    status
}

/// `policy::allow`, recording a refusal in `log`.
pub async fn allow(
    log: &EventLog,
    rpc: &str,
    caller: &Caller,
    parties: &Parties,
) -> Result<(), Status> {
    match policy::allow(rpc, caller, parties) {
        Ok(()) => Ok(()),
        Err(status) => Err(refused(log, caller, rpc, status).await),
    }
}

/// `policy::allow_role`, recording a refusal in `log`.
pub async fn allow_role(log: &EventLog, rpc: &str, caller: &Caller) -> Result<(), Status> {
    match policy::allow_role(rpc, caller) {
        Ok(()) => Ok(()),
        Err(status) => Err(refused(log, caller, rpc, status).await),
    }
}

/// How many unauthenticated refusals a process records a second; beyond
/// it they are counted in the log line but not written, so that a flood of
/// bad calls cannot fill the disk.
pub const REFUSALS_PER_SECOND: u32 = 50;

/// Records each call refused as UNAUTHENTICATED as an `AccessRefused` in
/// the log of the service the call was for: `logs` pairs a path prefix
/// (`/safeguard.registry.v1.`) with a log, the last one taking the rest.
pub fn unauthenticated(logs: Vec<(String, EventLog)>) -> trust::layer::Refusals {
    let window = std::sync::Mutex::new((std::time::Instant::now(), 0_u32));
    std::sync::Arc::new(move |refusal: trust::layer::Unauthenticated| {
        let admitted = window.lock().is_ok_and(|mut window| {
            if window.0.elapsed() >= std::time::Duration::from_secs(1) {
                *window = (std::time::Instant::now(), 0);
            }
            window.1 += 1;
            window.1 <= REFUSALS_PER_SECOND
        });
        if !admitted {
            tracing::warn!(
                rpc = refusal.rpc,
                "security: refusals beyond {REFUSALS_PER_SECOND} a second are not recorded"
            );
            return;
        }
        let Some(log) = logs
            .iter()
            .find(|(prefix, _)| refusal.rpc.starts_with(prefix.as_str()))
            .or(logs.last())
            .map(|(_, log)| log.clone())
        else {
            return;
        };
        let event = AccessRefused {
            rpc: refusal.rpc.trim_start_matches('/').to_owned(),
            rule: refusal.reason,
            peer: refusal.peer,
            remote: refusal.remote,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let appended = log
                    .append(
                        SECURITY,
                        ExpectedVersion::Any,
                        vec![crate::event::by_system(&event, "authentication")],
                    )
                    .await;
                if let Err(error) = appended {
                    tracing::error!(%error, "an unauthenticated refusal could not be recorded");
                }
            });
        }
    })
}
