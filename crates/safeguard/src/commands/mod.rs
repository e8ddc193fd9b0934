//! The client subcommands: one per RPC of the contract, each turning flags
//! into the request, calling the backbone, and printing a summary a person
//! can read or, with `--json`, the response as one JSON document.
//!
//! Flags are passed through as given: the services validate them, so a
//! bad NHS number or a missing field gets the service's own error, naming
//! the field, exactly as any other client would.

pub mod conference;
pub mod plan;
pub mod referral;
pub mod registry;
pub mod verify;

use contract::common::v1::{
    ConsistencyToken, ContactDetails, Date, NhsNumber, Organisation, OrganisationKind,
};
use contract::events::v1::GetStatusRequest;
use contract::events::v1::service_status_client::ServiceStatusClient;
use prost::{Message, Name};
use trust::client::Authorised;

use crate::client::{Identity, to_json};

/// What every client subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[arg(
        long,
        env = "SAFEGUARD_SERVER",
        default_value = "https://127.0.0.1:50051"
    )]
    pub server: String,
    /// Print one JSON document instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Why you are reading or looking a child up: recorded with the read.
    #[arg(long, env = "SAFEGUARD_PURPOSE", default_value = "")]
    pub purpose: String,
    #[command(flatten)]
    pub identity: Identity,
}

impl Common {
    /// A channel to `--server`, presenting the identity's credentials.
    pub async fn channel(&self) -> Result<Authorised, String> {
        self.identity.connect(&self.server)
    }

    /// Prints a call's response as `print` does, or turns its refusal into
    /// the error the operator reads.
    pub fn answer<M: Message + Name>(
        &self,
        answer: Result<tonic::Response<M>, tonic::Status>,
        summary: impl FnOnce(&M) -> String,
    ) -> Result<(), String> {
        self.print(&answer.map_err(status)?.into_inner(), summary)
    }

    /// Prints `response` as JSON with `--json`, else `summary(response)`.
    pub fn print<M: Message + Name>(
        &self,
        response: &M,
        summary: impl FnOnce(&M) -> String,
    ) -> Result<(), String> {
        if self.json {
            println!("{}", to_json(response)?);
        } else {
            println!("{}", summary(response));
        }
        Ok(())
    }
}

/// `safeguard health`: is it serving?
#[derive(Debug, clap::Args)]
pub struct Health {
    #[arg(
        long,
        env = "SAFEGUARD_SERVER",
        default_value = "https://127.0.0.1:50051"
    )]
    server: String,
    /// One service's status, e.g.
    /// `safeguard.registry.v1.PlanRegistry`; the server's as a whole if not
    /// given.
    #[arg(long, default_value = "")]
    service: String,
    /// Who asks; always in the OPERATOR role, whatever --as-role says.
    #[command(flatten)]
    identity: Identity,
}

impl Health {
    pub async fn run(self) -> Result<(), String> {
        let channel = self
            .identity
            .credentials_in(contract::common::v1::Role::Operator)?
            .connect(&self.server)?;
        let answer = tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: self.service.clone(),
            })
            .await
            .map_err(status)?
            .into_inner();
        let serving =
            answer.status() == tonic_health::pb::health_check_response::ServingStatus::Serving;
        println!(
            "{} {}: {}",
            self.server,
            if self.service.is_empty() {
                "(all)"
            } else {
                &self.service
            },
            answer.status().as_str_name()
        );
        // Why: what stopped, and which records could not be applied.
        let services = ServiceStatusClient::new(channel)
            .get_status(GetStatusRequest {})
            .await
            .map_err(status)?
            .into_inner()
            .services;
        for service in services {
            println!(
                "{}: {}; {} record(s) quarantined",
                service.service,
                match service.serving {
                    true => "serving".to_owned(),
                    false => format!("stopped ({})", service.problem),
                },
                service.quarantined.len()
            );
            for record in service.quarantined {
                println!(
                    "  {}@{} {} ({}): {}",
                    record.producer,
                    record.position,
                    record.content_type,
                    record.consumer,
                    record.reason
                );
            }
        }
        if serving {
            Ok(())
        } else {
            Err("not serving".into())
        }
    }
}

/// A refusal from the backbone, as the operator needs it: the code and the
/// service's message, which names the field.
pub fn status(error: tonic::Status) -> String {
    format!("{:?}: {}", error.code(), error.message())
}

pub fn nhs(value: &str) -> Option<NhsNumber> {
    Some(NhsNumber {
        value: value.to_owned(),
    })
}

pub fn optional_nhs(value: Option<&String>) -> Option<NhsNumber> {
    value.and_then(|value| nhs(value))
}

/// `ODS:VALUE`: a council's local identifier for a child without an NHS
/// number, e.g. `E09000999:referral-0190…`.
pub fn local_id(
    flag: &str,
    value: Option<&String>,
) -> Result<Option<contract::common::v1::LocalChildId>, String> {
    value
        .map(|value| {
            let (ods, id) = value
                .split_once(':')
                .ok_or_else(|| format!("{flag}: expected ODS:VALUE, got {value:?}"))?;
            Ok(contract::common::v1::LocalChildId {
                local_authority_ods_code: ods.to_owned(),
                value: id.to_owned(),
            })
        })
        .transpose()
}

/// `YYYY-MM-DD`.
pub fn date(flag: &str, value: &str) -> Result<Date, String> {
    let date = domain::date::Date::parse(value).map_err(|error| format!("{flag}: {error}"))?;
    Ok(service_core::validate::to_wire_date(date))
}

pub fn optional_date(flag: &str, value: Option<&String>) -> Result<Option<Date>, String> {
    value.map(|value| date(flag, value)).transpose()
}

/// `YYYY-MM-DDTHH:MM` (or with a space), UTC.
pub fn time(flag: &str, value: &str) -> Result<prost_types::Timestamp, String> {
    let (day, clock) = value
        .split_once(['T', ' '])
        .ok_or_else(|| format!("{flag}: expected YYYY-MM-DDTHH:MM, got {value:?}"))?;
    let day = domain::date::Date::parse(day).map_err(|error| format!("{flag}: {error}"))?;
    let (hours, minutes) = clock
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
        .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
        .ok_or_else(|| format!("{flag}: expected HH:MM after the date, got {clock:?}"))?;
    let epoch = domain::date::Date::from_ymd(1970, 1, 1).map_err(|error| error.to_string())?;
    Ok(prost_types::Timestamp {
        seconds: epoch.days_until(day) * 86_400 + hours * 3_600 + minutes * 60,
        nanos: 0,
    })
}

/// One of a contract enum's values, named without its prefix, in any case,
/// with `-` for `_`: `--category physical`, `--outcome strategy-discussion`.
pub fn choice<E: Into<i32>>(
    flag: &str,
    value: &str,
    prefix: &str,
    from_str_name: fn(&str) -> Option<E>,
) -> Result<i32, String> {
    let name = format!("{prefix}{}", value.trim().to_uppercase().replace('-', "_"));
    from_str_name(&name)
        .map(Into::into)
        .ok_or_else(|| format!("{flag}: unknown value {value:?}"))
}

pub fn category(flag: &str, value: &str) -> Result<i32, String> {
    choice(
        flag,
        value,
        "ABUSE_CATEGORY_",
        contract::common::v1::AbuseCategory::from_str_name,
    )
}

/// `ODS[:NAME]`, of the given kind.
pub fn organisation(value: &str, kind: OrganisationKind) -> Organisation {
    let (ods, name) = value.split_once(':').unwrap_or((value, ""));
    Organisation {
        ods_code: ods.to_owned(),
        name: name.to_owned(),
        kind: kind.into(),
    }
}

/// `KIND:ODS[:NAME]`, e.g. `police:P99001:Northgate Police`.
pub fn agency(flag: &str, value: &str) -> Result<Organisation, String> {
    let (kind, rest) = value
        .split_once(':')
        .ok_or_else(|| format!("{flag}: expected KIND:ODS[:NAME], got {value:?}"))?;
    let kind = OrganisationKind::from_str_name(&format!(
        "ORGANISATION_KIND_{}",
        kind.to_uppercase().replace('-', "_")
    ))
    .ok_or_else(|| format!("{flag}: unknown organisation kind {kind:?}"))?;
    Ok(organisation(rest, kind))
}

/// `NAME[:PHONE[:EMAIL]]`.
pub fn contact(value: &str) -> ContactDetails {
    let mut parts = value.splitn(3, ':');
    ContactDetails {
        name: parts.next().unwrap_or_default().to_owned(),
        phone: parts.next().unwrap_or_default().to_owned(),
        email: parts.next().unwrap_or_default().to_owned(),
    }
}

/// `log@position[,log@position…]`, as write summaries print them.
pub fn token(flag: &str, value: Option<&String>) -> Result<Option<ConsistencyToken>, String> {
    value
        .map(|value| {
            service_core::consistency::parse(value).map_err(|why| format!("{flag}: {why}"))
        })
        .transpose()
}

/// How a write's token prints, for a later read's `--after`.
pub fn show_token(token: Option<&ConsistencyToken>) -> String {
    token.map_or_else(String::new, service_core::consistency::show)
}

/// An enum value as a person reads it: `CONFERENCE_KIND_TRANSFER_IN` is
/// "transfer in".
pub fn spoken(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

pub fn show_time(at: Option<&prost_types::Timestamp>) -> String {
    at.map_or_else(
        || "-".into(),
        |at| {
            let day = service_core::validate::date_of(at);
            let seconds = at.seconds.rem_euclid(86_400);
            format!("{day} {:02}:{:02}", seconds / 3_600, (seconds % 3_600) / 60)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_read_as_utc() {
        let at = time("--at", "2026-01-20T10:30").expect("time");
        assert_eq!(at.seconds, 1_768_905_000);
        assert_eq!(show_time(Some(&at)), "2026-01-20 10:30");
        assert!(time("--at", "2026-01-20").is_err());
        assert!(time("--at", "2026-01-20T25:00").is_err());
    }

    #[test]
    fn enum_values_are_named_as_people_write_them() {
        assert_eq!(
            category("--category", "physical"),
            Ok(contract::common::v1::AbuseCategory::Physical.into())
        );
        let outcome = choice(
            "--outcome",
            "strategy-discussion",
            "REFERRAL_OUTCOME_",
            contract::referral::v1::ReferralOutcome::from_str_name,
        );
        assert_eq!(
            outcome,
            Ok(contract::referral::v1::ReferralOutcome::StrategyDiscussion.into())
        );
        assert!(category("--category", "bruising").is_err());
    }

    #[test]
    fn tokens_print_as_they_are_read() {
        let token = token(
            "--after",
            Some(&"plan-registry@12,referral-intake@3".into()),
        )
        .expect("token")
        .expect("some");
        assert_eq!(
            show_token(Some(&token)),
            "plan-registry@12,referral-intake@3"
        );
        assert!(super::token("--after", Some(&"plan-registry".into())).is_err());
    }

    #[test]
    fn agencies_name_their_kind() {
        let police = agency("--agency", "police:P99001:Northgate Police").expect("agency");
        assert_eq!(police.kind(), OrganisationKind::Police);
        assert_eq!(police.ods_code, "P99001");
        assert_eq!(police.name, "Northgate Police");
        assert!(agency("--agency", "P99001").is_err());
        assert!(agency("--agency", "army:P99001").is_err());
    }
}
