//! `refer`, `decide`, `strategy`, `section47` and `referral …`: the MASH
//! front door from the command line.

use contract::common::v1::{ContactDetails, Organisation, OrganisationKind};
use contract::referral::v1 as wire;
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;

use super::{
    Common, agency, category, choice, date, optional_date, optional_nhs, organisation, show_token,
    spoken, time, token,
};
use crate::client::show_date;

/// `safeguard refer`: a referral from the caller's organisation.
#[derive(Debug, clap::Args)]
pub struct Refer {
    /// The child's NHS number, where known.
    #[arg(long)]
    nhs: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long)]
    born: Option<String>,
    /// For an unborn child: the expected date of delivery, YYYY-MM-DD.
    #[arg(long)]
    expected: Option<String>,
    #[arg(long)]
    mother_nhs: Option<String>,
    /// ODS:VALUE, for a born child without an NHS number: the receiving
    /// council's own identifier (intake issues one if not given).
    #[arg(long, conflicts_with = "nhs")]
    local_id: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    postcode: Option<String>,
    /// The child's GP practice, ODS[:NAME]: invited to the conferences.
    #[arg(long)]
    gp_practice: Option<String>,
    /// What the referrer is worried about.
    #[arg(long)]
    concerns: String,
    /// neglect, physical, sexual, emotional or multiple.
    #[arg(long)]
    category: String,
    /// given, refused or not-sought.
    #[arg(long)]
    consent: String,
    /// Why consent was refused or not sought.
    #[arg(long, default_value = "")]
    consent_reason: String,
    /// The local authority referred to: ODS[:NAME].
    #[arg(long)]
    local_authority: String,
    /// The person referring: NAME[:PHONE[:EMAIL]]; defaults to the caller.
    #[arg(long)]
    referrer: Option<String>,
    /// The referring organisation's kind, e.g. school, nhs-trust, police.
    #[arg(long, default_value = "other")]
    referrer_kind: String,
    /// Makes a retried submission safe; one is made up if not given.
    #[arg(long)]
    key: Option<String>,
    /// When it arrived, if not now (a call taken earlier): YYYY-MM-DDTHH:MM,
    /// UTC. The decision clock runs from it.
    #[arg(long)]
    received_at: Option<String>,
    #[command(flatten)]
    common: Common,
}

impl Refer {
    pub async fn run(self) -> Result<(), String> {
        let identity = &self.common.identity;
        let kind = OrganisationKind::from_str_name(&format!(
            "ORGANISATION_KIND_{}",
            self.referrer_kind.to_uppercase().replace('-', "_")
        ))
        .ok_or_else(|| format!("--referrer-kind: unknown kind {:?}", self.referrer_kind))?;
        let referring = Organisation {
            ods_code: identity.organisation.clone(),
            name: identity.organisation_name.clone(),
            kind: kind.into(),
        };
        let person = match &self.referrer {
            Some(value) => super::contact(value),
            None => ContactDetails {
                name: identity.user.clone(),
                ..ContactDetails::default()
            },
        };
        let key = self
            .key
            .clone()
            .unwrap_or_else(|| eventlog::EventId::new().to_string());
        let request = wire::SubmitReferralRequest {
            idempotency_key: key.clone(),
            referrer: Some(wire::Referrer {
                organisation: Some(referring),
                person: Some(person),
            }),
            child: Some(wire::Child {
                local_id: super::local_id("--local-id", self.local_id.as_ref())?,
                nhs_number: optional_nhs(self.nhs.as_ref()),
                given_name: self.given_name.unwrap_or_default(),
                family_name: self.family_name.unwrap_or_default(),
                date_of_birth: optional_date("--born", self.born.as_ref())?,
                expected_date_of_delivery: optional_date("--expected", self.expected.as_ref())?,
                mother_nhs_number: optional_nhs(self.mother_nhs.as_ref()),
                address: self.address.unwrap_or_default(),
                postcode: self.postcode.unwrap_or_default(),
                gp_practice: self
                    .gp_practice
                    .as_deref()
                    .map(|value| organisation(value, OrganisationKind::GpPractice)),
            }),
            concerns: self.concerns,
            category_of_concern: category("--category", &self.category)?,
            police_risk_assessment: None,
            consent: Some(wire::Consent {
                status: choice(
                    "--consent",
                    &self.consent,
                    "CONSENT_STATUS_",
                    wire::ConsentStatus::from_str_name,
                )?,
                reason: self.consent_reason,
            }),
            local_authority: Some(organisation(
                &self.local_authority,
                OrganisationKind::LocalAuthority,
            )),
            received_at: self
                .received_at
                .as_deref()
                .map(|value| time("--received-at", value))
                .transpose()?,
        };
        let mut client = ReferralIntakeClient::new(self.common.channel().await?);
        self.common
            .answer(client.submit_referral(request).await, |response| {
                format!(
                    "referral {} received (key {key}); MASH decision due {}\ntoken: {}",
                    response.referral_id,
                    show_date(response.decision_due.as_ref()),
                    show_token(response.token.as_ref())
                )
            })
    }
}

/// `safeguard decide`: the MASH decision on a referral.
#[derive(Debug, clap::Args)]
pub struct Decide {
    #[arg(long)]
    referral: String,
    /// red, amber or green.
    #[arg(long)]
    rag: String,
    /// no-further-action, early-help, child-in-need-assessment or
    /// strategy-discussion.
    #[arg(long)]
    outcome: String,
    #[arg(long)]
    rationale: String,
    /// What the referrer is told of why (the part that can be shared).
    #[arg(long, default_value = "")]
    reason_for_referrer: String,
    /// When it was decided, if not now: YYYY-MM-DDTHH:MM, UTC.
    #[arg(long)]
    decided_at: Option<String>,
    #[command(flatten)]
    common: Common,
}

impl Decide {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::RecordDecisionRequest {
            referral_id: self.referral,
            rag_rating: choice(
                "--rag",
                &self.rag,
                "RAG_RATING_",
                wire::RagRating::from_str_name,
            )?,
            outcome: choice(
                "--outcome",
                &self.outcome,
                "REFERRAL_OUTCOME_",
                wire::ReferralOutcome::from_str_name,
            )?,
            rationale: self.rationale,
            reason_for_referrer: self.reason_for_referrer,
            decided_at: self
                .decided_at
                .as_deref()
                .map(|value| time("--decided-at", value))
                .transpose()?,
        };
        let mut client = ReferralIntakeClient::new(self.common.channel().await?);
        self.common
            .answer(client.record_decision(request).await, |response| {
                written(response.referral.as_ref(), response.token.as_ref())
            })
    }
}

/// `safeguard strategy`: a strategy discussion held.
#[derive(Debug, clap::Args)]
pub struct Strategy {
    #[arg(long)]
    referral: String,
    /// YYYY-MM-DD.
    #[arg(long)]
    held_on: String,
    /// An agency present: KIND:ODS[:NAME]; repeat for each.
    #[arg(long = "agency")]
    agencies: Vec<String>,
    /// A section 47 enquiry starts.
    #[arg(long)]
    section_47: bool,
    #[arg(long, default_value = "")]
    notes: String,
    #[command(flatten)]
    common: Common,
}

impl Strategy {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::RecordStrategyDiscussionRequest {
            referral_id: self.referral,
            held_on: Some(date("--held-on", &self.held_on)?),
            agencies_present: self
                .agencies
                .iter()
                .map(|value| agency("--agency", value))
                .collect::<Result<_, _>>()?,
            section_47_enquiry: self.section_47,
            notes: self.notes,
            // Structured: sent with `safeguard call` and JSON.
            police_risk_assessment: None,
        };
        let mut client = ReferralIntakeClient::new(self.common.channel().await?);
        self.common.answer(
            client.record_strategy_discussion(request).await,
            |response| written(response.referral.as_ref(), response.token.as_ref()),
        )
    }
}

/// `safeguard section47`: the outcome of a section 47 enquiry.
#[derive(Debug, clap::Args)]
pub struct Section47 {
    #[arg(long)]
    referral: String,
    /// YYYY-MM-DD.
    #[arg(long)]
    concluded_on: String,
    /// An initial child protection conference is needed.
    #[arg(long)]
    conference_needed: bool,
    #[arg(long)]
    rationale: String,
    #[command(flatten)]
    common: Common,
}

impl Section47 {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::RecordSection47OutcomeRequest {
            referral_id: self.referral,
            concluded_on: Some(date("--concluded-on", &self.concluded_on)?),
            conference_needed: self.conference_needed,
            rationale: self.rationale,
        };
        let mut client = ReferralIntakeClient::new(self.common.channel().await?);
        self.common
            .answer(client.record_section47_outcome(request).await, |response| {
                written(response.referral.as_ref(), response.token.as_ref())
            })
    }
}

/// `safeguard referral get|awaiting`.
#[derive(Debug, clap::Subcommand)]
pub enum ReferralCommand {
    /// One referral as it stands.
    Get {
        #[arg(long)]
        referral: String,
        /// Answer only once these writes show: a write's printed token.
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Referrals awaiting a MASH decision, overdue first.
    Awaiting {
        /// The local authority: its ODS code.
        #[arg(long)]
        local_authority: String,
        /// As of this date (YYYY-MM-DD); today if not given.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

impl ReferralCommand {
    pub async fn run(self) -> Result<(), String> {
        match self {
            ReferralCommand::Get {
                referral,
                after,
                common,
            } => {
                let request = wire::GetReferralRequest {
                    referral_id: referral,
                    min_token: token("--after", after.as_ref())?,
                    purpose: common.purpose.clone(),
                };
                let mut client = ReferralIntakeClient::new(common.channel().await?);
                common.answer(client.get_referral(request).await, |response| {
                    response.referral.as_ref().map(describe).unwrap_or_default()
                })
            }
            ReferralCommand::Awaiting {
                local_authority,
                as_of,
                after,
                common,
            } => {
                let request = wire::ListAwaitingDecisionRequest {
                    local_authority_ods_code: local_authority,
                    as_of: optional_date("--as-of", as_of.as_ref())?,
                    min_token: token("--after", after.as_ref())?,
                    purpose: common.purpose.clone(),
                };
                let mut client = ReferralIntakeClient::new(common.channel().await?);
                common.answer(client.list_awaiting_decision(request).await, |response| {
                    if response.referrals.is_empty() {
                        return "no referral awaits a decision".into();
                    }
                    response
                        .referrals
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
        }
    }
}

fn written(
    referral: Option<&wire::Referral>,
    token: Option<&contract::common::v1::ConsistencyToken>,
) -> String {
    format!(
        "{}\ntoken: {}",
        referral.map(describe).unwrap_or_default(),
        show_token(token)
    )
}

/// One line a MASH manager reads, with the clocks that run.
pub fn describe(referral: &wire::Referral) -> String {
    let child = referral.child.clone().unwrap_or_default();
    let mut line = format!(
        "referral {}: {} {} ({}), {}",
        referral.referral_id,
        child.given_name,
        child.family_name,
        child
            .nhs_number
            .map(|number| number.value)
            .unwrap_or_else(|| "no NHS number".into()),
        spoken(referral.status().as_str_name(), "REFERRAL_STATUS_")
    );
    if referral.outcome != 0 {
        line += &format!(
            "; decided {} ({})",
            spoken(referral.outcome().as_str_name(), "REFERRAL_OUTCOME_"),
            spoken(referral.rag_rating().as_str_name(), "RAG_RATING_")
        );
    } else {
        line += &format!(
            "; decision due {}{}",
            show_date(referral.decision_due.as_ref()),
            if referral.decision_overdue {
                " (OVERDUE)"
            } else {
                ""
            }
        );
    }
    if referral.assessment_due.is_some() {
        line += &format!(
            "; assessment due {}",
            show_date(referral.assessment_due.as_ref())
        );
    }
    if referral.icpc_due.is_some() {
        line += &format!("; ICPC due {}", show_date(referral.icpc_due.as_ref()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::nhs;

    #[test]
    fn a_referral_reads_with_its_clocks() {
        let referral = wire::Referral {
            referral_id: "r-1".into(),
            status: wire::ReferralStatus::AwaitingDecision.into(),
            child: Some(wire::Child {
                nhs_number: nhs("9990000018"),
                given_name: "Alex".into(),
                family_name: "Example".into(),
                ..wire::Child::default()
            }),
            decision_due: Some(contract::common::v1::Date {
                year: 2026,
                month: 1,
                day: 6,
            }),
            decision_overdue: true,
            ..wire::Referral::default()
        };
        assert_eq!(
            describe(&referral),
            "referral r-1: Alex Example (9990000018), awaiting decision; decision due 2026-01-06 (OVERDUE)"
        );
    }
}
