//! The referral intake's view of its own log: every referral's current state
//! (domain aggregate and wire view) and the idempotency keys seen, rebuilt
//! from the log at start and kept current by following it.

use std::collections::HashMap;

use contract::records::ReferralEvent;
use contract::referral::v1 as wire;
use domain::referral::{Event, Referral};
use service_core::follow::Record;
use service_core::validate;

#[derive(Debug, Clone)]
pub struct Tracked {
    pub aggregate: Referral,
    pub view: wire::Referral,
    /// The version of the referral's stream's last event.
    pub version: u64,
}

#[derive(Debug, Default)]
pub struct Projection {
    pub referrals: HashMap<String, Tracked>,
    /// Idempotency key to referral id.
    pub keys: HashMap<String, String>,
}

impl Projection {
    /// Applies one event of the log; an event it cannot apply is refused
    /// with the reason, and quarantined by the caller.
    pub fn apply(&mut self, record: Record<'_>, event: ReferralEvent) -> Result<(), String> {
        let version = record.envelope.stream_version;
        match event {
            ReferralEvent::Submitted(submitted) => {
                let received_on = submitted
                    .received_at
                    .as_ref()
                    .map(validate::date_of)
                    .ok_or("received_at: is required")?;
                let view = wire::Referral {
                    referral_id: submitted.referral_id.clone(),
                    status: wire::ReferralStatus::AwaitingDecision.into(),
                    referrer: submitted.referrer,
                    child: submitted.child,
                    category_of_concern: submitted.category_of_concern,
                    local_authority: submitted.local_authority,
                    received_at: submitted.received_at,
                    decision_due: submitted.decision_due,
                    ..wire::Referral::default()
                };
                self.keys
                    .insert(submitted.idempotency_key, submitted.referral_id.clone());
                let aggregate = Referral::from_events(&[Event::Submitted { received_on }])
                    .ok_or("a submission makes a referral")?;
                self.referrals.insert(
                    submitted.referral_id,
                    Tracked {
                        aggregate,
                        view,
                        version,
                    },
                );
            }
            ReferralEvent::Decided(decided) => {
                let tracked = self.tracked(&decided.referral_id)?;
                apply_decided(tracked, &decided)?;
                tracked.version = version;
            }
            ReferralEvent::StrategyDiscussionHeld(held) => {
                let tracked = self.tracked(&held.referral_id)?;
                apply_strategy(tracked, &held)?;
                tracked.version = version;
            }
            ReferralEvent::Section47Concluded(concluded) => {
                let tracked = self.tracked(&concluded.referral_id)?;
                apply_section_47(tracked, &concluded)?;
                tracked.version = version;
            }
            ReferralEvent::Quarantined(_) => {}
        }
        Ok(())
    }

    fn tracked(&mut self, referral_id: &str) -> Result<&mut Tracked, String> {
        self.referrals
            .get_mut(referral_id)
            .ok_or_else(|| format!("event for unknown referral {referral_id}"))
    }
}

fn domain_date(date: Option<&contract::common::v1::Date>) -> Result<domain::date::Date, String> {
    validate::date("date", date).map_err(|status| status.message().to_owned())
}

fn apply_decided(tracked: &mut Tracked, decided: &wire::ReferralDecided) -> Result<(), String> {
    let outcome =
        crate::convert::outcome_to_domain(decided.outcome).ok_or("decision without an outcome")?;
    let decided_on = decided
        .decided_at
        .as_ref()
        .map(validate::date_of)
        .ok_or("decision without a time")?;
    tracked.aggregate.apply(&Event::Decided {
        outcome,
        decided_on,
    });
    let view = &mut tracked.view;
    view.rag_rating = decided.rag_rating;
    view.outcome = decided.outcome;
    view.decided_at = decided.decided_at;
    view.assessment_due = decided.assessment_due;
    view.status = if outcome == domain::codes::ReferralOutcome::StrategyDiscussion {
        wire::ReferralStatus::InStrategy
    } else {
        wire::ReferralStatus::Decided
    }
    .into();
    Ok(())
}

fn apply_strategy(
    tracked: &mut Tracked,
    held: &wire::StrategyDiscussionHeld,
) -> Result<(), String> {
    let discussion = held
        .discussion
        .clone()
        .ok_or("strategy discussion without details")?;
    tracked.aggregate.apply(&Event::StrategyDiscussionHeld {
        held_on: domain_date(discussion.held_on.as_ref())?,
        section_47: discussion.section_47_enquiry,
    });
    let view = &mut tracked.view;
    if discussion.section_47_enquiry {
        view.status = wire::ReferralStatus::Section47.into();
    }
    view.strategy_discussions.push(discussion);
    view.icpc_due = held.icpc_due;
    Ok(())
}

fn apply_section_47(
    tracked: &mut Tracked,
    concluded: &wire::Section47Concluded,
) -> Result<(), String> {
    tracked.aggregate.apply(&Event::Section47Concluded {
        concluded_on: domain_date(concluded.concluded_on.as_ref())?,
        conference_needed: concluded.conference_needed,
    });
    let view = &mut tracked.view;
    view.conference_needed = concluded.conference_needed;
    view.status = if concluded.conference_needed {
        wire::ReferralStatus::ConferenceRequested
    } else {
        wire::ReferralStatus::Closed
    }
    .into();
    Ok(())
}
