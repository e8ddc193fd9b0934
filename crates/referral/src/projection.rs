//! The referral intake's view of its own log: every referral's current state
//! (domain aggregate and wire view) and the idempotency keys seen, rebuilt
//! from the log at start and kept current by following it.

use std::collections::HashMap;

use contract::records::ReferralEvent;
use contract::referral::v1 as wire;
use domain::referral::{Event, Referral};
use service_core::follow::Record;

use crate::convert;

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
    /// Information shared without a referral, by council (ODS code), in
    /// the order recorded.
    pub information: HashMap<String, Vec<wire::InformationShared>>,
}

impl Projection {
    /// Applies one event of the log; an event it cannot apply is refused
    /// with the reason, and quarantined by the caller.
    pub fn apply(&mut self, record: Record<'_>, event: ReferralEvent) -> Result<(), String> {
        let referral_id = referral_of(&event).map(str::to_owned);
        let applied = self.apply_event(record, event);
        // The record is in the referral's stream all the same: a later
        // step is decided on the referral as it stands, at the stream's
        // real version, instead of failing its check for ever.
        if applied.is_err()
            && let Some(tracked) = referral_id.and_then(|id| self.referrals.get_mut(&id))
        {
            tracked.version = record.envelope.stream_version;
        }
        applied
    }

    fn apply_event(&mut self, record: Record<'_>, event: ReferralEvent) -> Result<(), String> {
        let version = record.envelope.stream_version;
        if let ReferralEvent::InformationShared(shared) = event {
            let council = shared
                .local_authority
                .as_ref()
                .map(|la| la.ods_code.clone())
                .ok_or("local_authority: is required")?;
            self.information.entry(council).or_default().push(shared);
            return Ok(());
        }
        let Some(change) = convert::to_domain(&event)? else {
            return Ok(());
        };
        match event {
            ReferralEvent::Submitted(submitted) => {
                let view = wire::Referral {
                    referral_id: submitted.referral_id.clone(),
                    status: wire::ReferralStatus::AwaitingDecision.into(),
                    referrer: submitted.referrer,
                    child: submitted.child,
                    category_of_concern: submitted.category_of_concern,
                    local_authority: submitted.local_authority,
                    received_at: submitted.received_at,
                    decision_due: submitted.decision_due,
                    police_risk_assessments: submitted
                        .police_risk_assessment
                        .map(|assessment| wire::PoliceRiskAssessment {
                            version: 1,
                            ..assessment
                        })
                        .into_iter()
                        .collect(),
                    ..wire::Referral::default()
                };
                self.keys
                    .insert(submitted.idempotency_key, submitted.referral_id.clone());
                let aggregate =
                    Referral::from_events(&[change]).ok_or("a submission makes a referral")?;
                self.referrals.insert(
                    submitted.referral_id,
                    Tracked {
                        aggregate,
                        view,
                        version,
                    },
                );
                return Ok(());
            }
            ReferralEvent::Decided(decided) => {
                let tracked = self.tracked(&decided.referral_id, &change, version)?;
                show_decided(&mut tracked.view, &decided);
            }
            ReferralEvent::StrategyDiscussionHeld(held) => {
                let tracked = self.tracked(&held.referral_id, &change, version)?;
                show_strategy(&mut tracked.view, held);
            }
            ReferralEvent::Section47Concluded(concluded) => {
                let tracked = self.tracked(&concluded.referral_id, &change, version)?;
                show_section_47(&mut tracked.view, &concluded);
            }
            ReferralEvent::AssessmentCompleted(completed) => {
                let tracked = self.tracked(&completed.referral_id, &change, version)?;
                tracked.view.assessment_completed_on = completed.completed_on;
                tracked.view.assessment_late_reason = completed.late_reason;
            }
            ReferralEvent::InformationShared(_)
            | ReferralEvent::DomesticAbuseIncidentReported(_)
            | ReferralEvent::Quarantined(_)
            | ReferralEvent::RecordsRead(_)
            | ReferralEvent::AccessRefused(_) => {}
        }
        Ok(())
    }

    /// The referral `referral_id`, with `change` applied to its aggregate
    /// at stream `version`.
    fn tracked(
        &mut self,
        referral_id: &str,
        change: &Event,
        version: u64,
    ) -> Result<&mut Tracked, String> {
        let tracked = self
            .referrals
            .get_mut(referral_id)
            .ok_or_else(|| format!("referral_id: no referral {referral_id} is known"))?;
        tracked.aggregate.apply(change);
        tracked.version = version;
        Ok(tracked)
    }
}

/// The referral an event is about.
fn referral_of(event: &ReferralEvent) -> Option<&str> {
    Some(match event {
        ReferralEvent::Submitted(e) => &e.referral_id,
        ReferralEvent::Decided(e) => &e.referral_id,
        ReferralEvent::StrategyDiscussionHeld(e) => &e.referral_id,
        ReferralEvent::Section47Concluded(e) => &e.referral_id,
        ReferralEvent::AssessmentCompleted(e) => &e.referral_id,
        ReferralEvent::InformationShared(_)
        | ReferralEvent::DomesticAbuseIncidentReported(_)
        | ReferralEvent::Quarantined(_)
        | ReferralEvent::RecordsRead(_)
        | ReferralEvent::AccessRefused(_) => return None,
    })
}

/// What a decision shows: its rating, outcome, time and the assessment due.
fn show_decided(view: &mut wire::Referral, decided: &wire::ReferralDecided) {
    view.rag_rating = decided.rag_rating;
    view.outcome = decided.outcome;
    view.decided_at = decided.decided_at;
    view.assessment_due = decided.assessment_due;
    view.status = if decided.outcome == i32::from(wire::ReferralOutcome::StrategyDiscussion) {
        wire::ReferralStatus::InStrategy
    } else {
        wire::ReferralStatus::Decided
    }
    .into();
}

/// What a strategy discussion shows: it, the enquiry it opens, and when the
/// initial conference is due.
fn show_strategy(view: &mut wire::Referral, held: wire::StrategyDiscussionHeld) {
    if let Some(discussion) = held.discussion {
        if discussion.section_47_enquiry {
            view.status = wire::ReferralStatus::Section47.into();
        }
        view.strategy_discussions.push(discussion);
    }
    view.icpc_due = held.icpc_due;
    if let Some(assessment) = held.police_risk_assessment {
        let version = view.police_risk_assessments.len() as u32 + 1;
        view.police_risk_assessments
            .push(wire::PoliceRiskAssessment {
                version,
                ..assessment
            });
    }
}

/// What an enquiry's conclusion shows: whether a conference follows.
fn show_section_47(view: &mut wire::Referral, concluded: &wire::Section47Concluded) {
    view.conference_needed = concluded.conference_needed;
    view.status = if concluded.conference_needed {
        wire::ReferralStatus::ConferenceRequested
    } else {
        wire::ReferralStatus::Closed
    }
    .into();
}

#[cfg(test)]
mod tests {
    use contract::common::v1::Date;

    use super::*;

    fn submitted(id: &str) -> ReferralEvent {
        wire::ReferralSubmitted {
            referral_id: id.into(),
            idempotency_key: format!("key-{id}"),
            received_at: Some(prost_types::Timestamp {
                seconds: 1_766_136_600,
                nanos: 0,
            }),
            ..wire::ReferralSubmitted::default()
        }
        .into()
    }

    fn decided(id: &str, outcome: wire::ReferralOutcome) -> ReferralEvent {
        wire::ReferralDecided {
            referral_id: id.into(),
            outcome: outcome.into(),
            decided_at: Some(prost_types::Timestamp {
                seconds: 1_766_397_600,
                nanos: 0,
            }),
            ..wire::ReferralDecided::default()
        }
        .into()
    }

    fn strategy(id: &str, section_47: bool) -> ReferralEvent {
        wire::StrategyDiscussionHeld {
            referral_id: id.into(),
            discussion: Some(wire::StrategyDiscussion {
                held_on: Some(Date {
                    year: 2026,
                    month: 1,
                    day: 6,
                }),
                section_47_enquiry: section_47,
                ..wire::StrategyDiscussion::default()
            }),
            ..wire::StrategyDiscussionHeld::default()
        }
        .into()
    }

    fn concluded(id: &str, conference_needed: bool) -> ReferralEvent {
        wire::Section47Concluded {
            referral_id: id.into(),
            concluded_on: Some(Date {
                year: 2026,
                month: 1,
                day: 9,
            }),
            conference_needed,
            ..wire::Section47Concluded::default()
        }
        .into()
    }

    fn check(events: Vec<ReferralEvent>) -> (Projection, Vec<Result<(), String>>) {
        let mut projection = Projection::default();
        let outcomes =
            service_core::follow::apply_in_order("referral-intake", events, |record, event| {
                projection.apply(record, event)
            });
        (projection, outcomes)
    }

    #[test]
    fn each_step_of_a_referral_shows_its_status() {
        use wire::ReferralStatus::*;
        // (what, events of referral "r", its status then)
        let cases = vec![
            ("submitted", vec![submitted("r")], AwaitingDecision),
            (
                "decided: no further action",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::NoFurtherAction),
                ],
                Decided,
            ),
            (
                "decided: a strategy discussion",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::StrategyDiscussion),
                ],
                InStrategy,
            ),
            (
                "a discussion that opens an enquiry",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::StrategyDiscussion),
                    strategy("r", true),
                ],
                Section47,
            ),
            (
                "an enquiry that needs a conference",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::StrategyDiscussion),
                    strategy("r", true),
                    concluded("r", true),
                ],
                ConferenceRequested,
            ),
            (
                "an enquiry that does not",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::StrategyDiscussion),
                    strategy("r", true),
                    concluded("r", false),
                ],
                Closed,
            ),
        ];
        for (what, events, status) in cases {
            let count = events.len();
            let (projection, outcomes) = check(events);
            assert!(outcomes.iter().all(Result::is_ok), "{what}: {outcomes:?}");
            let tracked = &projection.referrals["r"];
            assert_eq!(tracked.view.status, i32::from(status), "{what}");
            assert_eq!(tracked.version, count as u64 - 1, "{what}");
            assert_eq!(projection.keys["key-r"], "r", "{what}");
        }
    }

    #[test]
    fn what_cannot_be_applied_is_refused_naming_the_field() {
        // (what, events, the field the last one's refusal names)
        let cases = vec![
            (
                "a decision on a referral never submitted",
                vec![decided("r", wire::ReferralOutcome::EarlyHelp)],
                "referral_id",
            ),
            (
                "a submission without a time",
                vec![
                    wire::ReferralSubmitted {
                        referral_id: "r".into(),
                        ..wire::ReferralSubmitted::default()
                    }
                    .into(),
                ],
                "received_at",
            ),
            (
                "a decision without an outcome",
                vec![
                    submitted("r"),
                    decided("r", wire::ReferralOutcome::Unspecified),
                ],
                "outcome",
            ),
            (
                "a discussion without its details",
                vec![
                    submitted("r"),
                    wire::StrategyDiscussionHeld {
                        referral_id: "r".into(),
                        ..wire::StrategyDiscussionHeld::default()
                    }
                    .into(),
                ],
                "discussion",
            ),
        ];
        for (what, events, field) in cases {
            let (projection, outcomes) = check(events);
            let refused = outcomes
                .last()
                .expect("an outcome")
                .as_ref()
                .expect_err(what);
            assert!(refused.starts_with(field), "{what}: {refused}");
            // Nothing of a refused event shows, but its place in the
            // stream counts, so the next step is not refused for ever.
            if let Some(tracked) = projection.referrals.get("r") {
                assert_eq!(
                    tracked.view.status,
                    i32::from(wire::ReferralStatus::AwaitingDecision),
                    "{what}"
                );
                assert_eq!(tracked.version, 1, "{what}");
                assert_eq!(tracked.aggregate.outcome, None, "{what}");
            }
        }
    }
}
