//! The registry's rule: conference outcomes become plan events. It keeps its
//! place in a durable cursor, written with the plan events
//! (`service_core::rule`), and derives each plan event's id from the outcome
//! that caused it, so a redelivered outcome changes nothing.
//!
//! Only the primary runs the rule. A read replica follows the same outcomes
//! and waits for each one's plan event to arrive from the primary
//! ([`mirror`]): the derived id says which event that is.

use contract::common::v1::Organisation;
use contract::conference::v1 as conference;
use contract::records::ConferenceEvent;
use contract::registry::v1 as wire;
use eventlog::NewEvent;
use service_core::event::Derived;
use service_core::follow::{Failure, Follower, Handler, Record};
use service_core::rule::{Applier, Effects, Rule};

use crate::service::PlanRegistry;

const PRODUCER: &str = contract::producers::CONFERENCE_SCHEDULER;

/// The purpose a plan event's id derives from the outcome with.
const PURPOSE: &str = "registry:plan";

/// Follows the scheduler from the rule's cursor; `applied` says how far its
/// outcomes are plans the projection shows.
pub async fn run(service: PlanRegistry, bus: bus::Bus, applied: service_core::Watermark) {
    let what = "the plan rule";
    let consumer = format!("{}.plan-rule", service.producer());
    let cursor = format!("rule:{PRODUCER}");
    let from = match service.log().cursor(&cursor) {
        Ok(position) => position.unwrap_or(0),
        Err(error) => return service.health().broken(what, error),
    };
    applied.advance_to(from);
    let quarantine = service.quarantine().clone();
    let Ok(follower) = Follower::bus(what, &bus, &consumer, PRODUCER, from, quarantine).await
    else {
        return;
    };
    let health = service.health().clone();
    let applier = Applier::start(service.log().clone(), cursor, health, {
        let service = service.clone();
        move |next, outcomes: Vec<eventlog::AppendOutcome>| {
            let service = service.clone();
            let applied = applied.clone();
            async move {
                if let Some(outcome) = outcomes.last()
                    && service.applied(outcome.positions.end).await.is_err()
                {
                    tracing::warn!("the registry's view is slow to show a new plan");
                }
                applied.advance_to(next);
            }
        }
    });
    let rule = Rule::new(
        applier,
        |record: Record<'_>, event: ConferenceEvent| -> Result<Effects, String> {
            Ok(plan_event(record, event)?
                .map(|(stream, event)| vec![(stream, vec![event])])
                .unwrap_or_default())
        },
    );
    follower.run(rule).await;
}

/// On a read replica: `applied` says how far the scheduler's outcomes are
/// plans this pod shows, having come from the primary. Reads the outcomes
/// from the first at every start; what it keeps is one id per plan event.
pub async fn mirror(service: PlanRegistry, bus: bus::Bus, applied: service_core::Watermark) {
    let what = "the replica's wait for the primary's plans";
    let consumer = format!("{}.plan-rule", service.producer());
    let quarantine = service.quarantine().clone();
    if let Ok(follower) = Follower::bus(what, &bus, &consumer, PRODUCER, 0, quarantine).await {
        follower.with_watermark(applied).run(Mirror(service)).await;
    }
}

/// Waits, for each outcome that makes a plan event, until that event has
/// come from the primary.
#[derive(Debug)]
struct Mirror(PlanRegistry);

impl Handler<ConferenceEvent> for Mirror {
    async fn handle(&mut self, record: Record<'_>, event: ConferenceEvent) -> Result<(), Failure> {
        // An outcome the primary could not turn into a plan event is the
        // primary's to quarantine, and one that names no plan can show
        // none (the primary may not even write it): nothing to wait for.
        let names_a_plan = matches!(&event, ConferenceEvent::OutcomeRecorded(recorded) if !recorded.plan_id.is_empty());
        if names_a_plan && let Ok(Some((_, event))) = plan_event(record, event) {
            self.0.shown(event.event_id).await;
        }
        Ok(())
    }
}

/// The care team: every organisation invited to the child's conference.
fn care_team(invitees: &[conference::Invitee]) -> Vec<Organisation> {
    let mut team: Vec<Organisation> = Vec::new();
    for organisation in invitees
        .iter()
        .filter_map(|invitee| invitee.organisation.clone())
    {
        if !team
            .iter()
            .any(|known| known.ods_code == organisation.ods_code)
        {
            team.push(organisation);
        }
    }
    team
}

/// The plan event an outcome makes, if any, with its stream. The rule
/// writes what the conference decided as it stands; whether it can be
/// applied (a child without an NHS number, a plan the registry does not
/// know) is the projection's to judge, so that what could not be applied is
/// quarantined and the children it names fail closed.
fn plan_event(
    record: Record<'_>,
    event: ConferenceEvent,
) -> Result<Option<(String, NewEvent)>, String> {
    let ConferenceEvent::OutcomeRecorded(recorded) = event else {
        return Ok(None);
    };
    let kind = recorded
        .outcome
        .as_ref()
        .and_then(|outcome| outcome.kind.as_ref())
        .ok_or("outcome.kind: is required")?;
    let derived = Derived::from(record.envelope, crate::LOG, "plan-rule")?.occurring_with_source();
    let stream = format!("plan-{}", recorded.plan_id);
    let event = match kind {
        // A pre-birth conference's plan is an unborn plan on the mother's
        // record (the number the conference holds), never one of her own.
        conference::outcome::Kind::Initial(initial) if initial.plan => derived.event(
            PURPOSE,
            0,
            &wire::PlanStarted {
                plan_id: recorded.plan_id.clone(),
                r#type: if recorded.expected_date_of_delivery.is_some() {
                    wire::PlanType::Unborn
                } else {
                    wire::PlanType::ChildProtection
                }
                .into(),
                child_nhs_number: recorded.child_nhs_number.clone(),
                child_local_id: recorded.child_local_id.clone(),
                child_name: recorded.child_name.clone(),
                category: initial.category,
                start_date: recorded.held_on,
                local_authority: recorded.local_authority.clone(),
                lead_social_worker: None,
                expected_date_of_delivery: recorded.expected_date_of_delivery,
                conference_id: recorded.conference_id.clone(),
                care_team: care_team(&recorded.invitees),
                next_review_due: None,
            },
        ),
        conference::outcome::Kind::Initial(_) => return Ok(None),
        conference::outcome::Kind::Review(review) => match review
            .decision
            .as_ref()
            .ok_or("outcome.review.decision: is required")?
        {
            conference::review_outcome::Decision::ContinuePlan(_) => return Ok(None),
            conference::review_outcome::Decision::ChangeCategory(category) => derived.event(
                PURPOSE,
                0,
                &wire::PlanCategoryChanged {
                    plan_id: recorded.plan_id.clone(),
                    category: *category,
                    changed_on: recorded.held_on,
                    conference_id: recorded.conference_id.clone(),
                },
            ),
            conference::review_outcome::Decision::EndPlan(ending) => derived.event(
                PURPOSE,
                0,
                &wire::PlanEnded {
                    plan_id: recorded.plan_id.clone(),
                    end_date: recorded.held_on,
                    reason: ending.reason,
                    detail: ending.detail.clone(),
                    child_nhs_number: recorded.child_nhs_number.clone(),
                    child_local_id: recorded.child_local_id.clone(),
                    local_authority: recorded.local_authority.clone(),
                    care_team: care_team(&recorded.invitees),
                },
            ),
        },
    };
    Ok(Some((stream, event)))
}

#[cfg(test)]
mod tests {
    use contract::events::v1::EventEnvelope;
    use prost::Name;

    use super::*;

    fn recorded(kind: Option<conference::outcome::Kind>) -> ConferenceEvent {
        ConferenceEvent::OutcomeRecorded(conference::ConferenceOutcomeRecorded {
            conference_id: "c1".into(),
            plan_id: "p1".into(),
            child_nhs_number: Some(contract::common::v1::NhsNumber {
                value: "9990000018".into(),
            }),
            outcome: Some(conference::Outcome {
                kind,
                quorum_override_reason: String::new(),
            }),
            ..conference::ConferenceOutcomeRecorded::default()
        })
    }

    fn review(decision: Option<conference::review_outcome::Decision>) -> ConferenceEvent {
        recorded(Some(conference::outcome::Kind::Review(
            conference::ReviewOutcome { decision },
        )))
    }

    fn initial(plan: bool) -> ConferenceEvent {
        recorded(Some(conference::outcome::Kind::Initial(
            conference::InitialOutcome { plan, category: 1 },
        )))
    }

    /// The stream and content type of the event an outcome makes.
    type Made = Result<Option<(String, String)>, String>;

    fn check(event: ConferenceEvent, event_id: Vec<u8>) -> Made {
        let envelope = EventEnvelope {
            event_id,
            ..EventEnvelope::default()
        };
        let record = Record {
            producer: PRODUCER,
            position: 7,
            envelope: &envelope,
        };
        plan_event(record, event)
            .map(|made| made.map(|(stream, event)| (stream, event.content_type)))
    }

    #[test]
    fn each_outcome_makes_its_plan_event_as_decided() {
        use conference::review_outcome::Decision;
        let id = eventlog::EventId::new().as_bytes().to_vec();
        let made = |content: String| Ok(Some(("plan-p1".to_owned(), content)));
        // (what, event, its event id, the stream and content type made)
        type Case = (&'static str, ConferenceEvent, Vec<u8>, Made);
        let cases: Vec<Case> = vec![
            (
                "an initial plan",
                initial(true),
                id.clone(),
                made(wire::PlanStarted::full_name()),
            ),
            ("no plan", initial(false), id.clone(), Ok(None)),
            (
                "a plan continued",
                review(Some(Decision::ContinuePlan(true))),
                id.clone(),
                Ok(None),
            ),
            (
                "a category changed",
                review(Some(Decision::ChangeCategory(2))),
                id.clone(),
                made(wire::PlanCategoryChanged::full_name()),
            ),
            (
                "a plan ended",
                review(Some(Decision::EndPlan(conference::PlanEnding {
                    reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
                    detail: String::new(),
                }))),
                id.clone(),
                made(wire::PlanEnded::full_name()),
            ),
            (
                "a review without a decision",
                review(None),
                id.clone(),
                Err("outcome.review.decision: is required".into()),
            ),
            (
                "an outcome of no kind",
                recorded(None),
                id.clone(),
                Err("outcome.kind: is required".into()),
            ),
            (
                "an outcome without an event id to derive from",
                initial(true),
                vec![1, 2, 3],
                Err("event_id".into()),
            ),
            (
                "another event",
                ConferenceEvent::Cancelled(conference::ConferenceCancelled::default()),
                id.clone(),
                Ok(None),
            ),
        ];
        for (what, event, event_id, expected) in cases {
            let made = check(event, event_id);
            match (&made, &expected) {
                (Err(reason), Err(start)) => assert!(reason.starts_with(start), "{what}: {reason}"),
                _ => assert_eq!(made, expected, "{what}"),
            }
        }
    }

    #[test]
    fn a_redelivered_outcome_makes_the_same_event() {
        let envelope = EventEnvelope {
            event_id: eventlog::EventId::new().as_bytes().to_vec(),
            ..EventEnvelope::default()
        };
        let record = Record {
            producer: PRODUCER,
            position: 3,
            envelope: &envelope,
        };
        let once = plan_event(record, initial(true))
            .expect("made")
            .expect("an event");
        let again = plan_event(record, initial(true))
            .expect("made")
            .expect("an event");
        assert_eq!(once.1.event_id, again.1.event_id);
        assert_eq!(once.1.causation_id, envelope.event_id);
    }
}
