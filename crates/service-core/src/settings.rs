//! The settings of every service, in one JSON file that every way of
//! running safeguard reads the same way: `safeguard up --config FILE` and
//! each service's own binary (`--config FILE`, or `SAFEGUARD_CONFIG`). Each
//! service builds its `Options` from them with its own `Options::new`, the
//! one path both take, so a setting means the same thing everywhere. Where
//! each process listens and keeps its data are flags, not settings: they
//! differ from process to process.

use std::path::Path;
use std::time::Duration;

use domain::calendar::Calendar;
use domain::conference::QuorumRule;
use domain::date::Date;
use serde::Deserialize;

/// Everything an operator can set, each with its default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long an ended plan is still shown by a lookup, in months
    /// (London procedures: 12). The plan registry.
    pub visibility_months: u32,
    /// The quorum of a conference: social care present, and at least this
    /// many other agencies. The conference scheduler.
    pub quorum_social_care_required: bool,
    pub quorum_min_other_agencies: usize,
    /// One-off bank holidays announced after this release (YYYY-MM-DD).
    /// Referral intake and the conference scheduler count working days.
    pub extra_bank_holidays: Vec<String>,
    /// Bank holidays moved away from their usual date (YYYY-MM-DD).
    pub removed_bank_holidays: Vec<String>,
    /// How often missed statutory deadlines are looked for, in seconds.
    /// The notification service.
    pub deadline_check_seconds: u64,
    /// How many children one person may look up a minute, so that NHS
    /// numbers cannot be enumerated (RESOURCE_EXHAUSTED beyond it). The
    /// plan registry.
    pub lookups_per_user_per_minute: u32,
    /// How long a request may take before it is answered CANCELLED
    /// ("Timeout expired"), in seconds. Every server.
    pub request_timeout_seconds: u64,
    /// Requests one connection may have in flight at once; more wait
    /// their turn. Every server.
    pub requests_per_connection: usize,
    /// How often each service signs a checkpoint of its log (the position
    /// and chain hash it has reached), in seconds, when it has written
    /// since the last. Every service.
    pub checkpoint_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let quorum = QuorumRule::default();
        Settings {
            visibility_months: 12,
            quorum_social_care_required: quorum.social_care_required,
            quorum_min_other_agencies: quorum.min_other_agencies,
            extra_bank_holidays: Vec::new(),
            removed_bank_holidays: Vec::new(),
            deadline_check_seconds: 60,
            lookups_per_user_per_minute: 120,
            request_timeout_seconds: 30,
            requests_per_connection: 64,
            checkpoint_seconds: 300,
        }
    }
}

impl Settings {
    /// Reads a settings file; a setting it does not know is refused by name.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let settings: Settings =
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        settings
            .calendar()
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(settings)
    }

    /// The working days of England and Wales with the operator's changes.
    pub fn calendar(&self) -> Result<Calendar, String> {
        let dates = |field: &str, values: &[String]| {
            values
                .iter()
                .map(|value| Date::parse(value).map_err(|error| format!("{field}: {error}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Calendar::england_and_wales().with_adjustments(
            dates("extra_bank_holidays", &self.extra_bank_holidays)?,
            dates("removed_bank_holidays", &self.removed_bank_holidays)?,
        ))
    }

    pub fn quorum(&self) -> QuorumRule {
        QuorumRule {
            social_care_required: self.quorum_social_care_required,
            min_other_agencies: self.quorum_min_other_agencies,
        }
    }

    /// At least a second, so a zero cannot spin the check.
    pub fn deadline_check(&self) -> Duration {
        Duration::from_secs(self.deadline_check_seconds.max(1))
    }

    /// At least a second, likewise.
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_secs(self.checkpoint_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        serde_json::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn an_empty_file_is_every_default_and_unknown_settings_are_named() {
        assert_eq!(parse("{}"), Ok(Settings::default()));
        let refused = parse(r#"{"visibility_month": 6}"#).expect_err("a typo");
        assert!(refused.contains("visibility_month"), "{refused}");
        assert!(
            Settings {
                extra_bank_holidays: vec!["2026-02-30".into()],
                ..Settings::default()
            }
            .calendar()
            .expect_err("no such day")
            .contains("extra_bank_holidays")
        );
        assert_eq!(
            Settings {
                deadline_check_seconds: 0,
                ..Settings::default()
            }
            .deadline_check(),
            Duration::from_secs(1)
        );
    }
}
