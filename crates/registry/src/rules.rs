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
        // primary's to quarantine: there is nothing to wait for.
        if let Ok(Some((_, event))) = plan_event(record, event) {
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
    let derived = Derived::from(record.envelope, crate::LOG, "plan-rule")?;
    let stream = format!("plan-{}", recorded.plan_id);
    let event = match kind {
        conference::outcome::Kind::Initial(initial) if initial.plan => derived.event(
            PURPOSE,
            0,
            &wire::PlanStarted {
                plan_id: recorded.plan_id.clone(),
                r#type: wire::PlanType::ChildProtection.into(),
                child_nhs_number: recorded.child_nhs_number.clone(),
                category: initial.category,
                start_date: recorded.held_on,
                local_authority: recorded.local_authority.clone(),
                lead_social_worker: None,
                expected_date_of_delivery: None,
                conference_id: recorded.conference_id.clone(),
                care_team: care_team(&recorded.invitees),
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
            conference::review_outcome::Decision::EndReason(reason) => derived.event(
                PURPOSE,
                0,
                &wire::PlanEnded {
                    plan_id: recorded.plan_id.clone(),
                    end_date: recorded.held_on,
                    reason: wire::PlanEndReason::Other.into(),
                    detail: reason.clone(),
                    child_nhs_number: recorded.child_nhs_number.clone(),
                    local_authority: recorded.local_authority.clone(),
                    care_team: care_team(&recorded.invitees),
                },
            ),
        },
    };
    Ok(Some((stream, event)))
}
