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
use contract::registry::v1 as wire;
use eventlog::{EventId, NewEvent};
use prost::{Message, Name};

use crate::service::PlanRegistry;

const PRODUCER: &str = contract::producers::CONFERENCE_SCHEDULER;

/// Follows the scheduler from the rule's cursor; `applied` says how far its
/// outcomes are plans the projection shows.
pub async fn run(service: PlanRegistry, bus: bus::Bus, applied: service_core::Watermark) {
    let consumer = format!("{}.plan-rule", service.producer());
    let cursor = format!("rule:{PRODUCER}");
    let from = match service.log().cursor(&cursor) {
        Ok(position) => position.unwrap_or(0),
        Err(error) => return service.health().broken("plan rule", error),
    };
    applied.advance_to(from);
    let mut subscription = match bus.subscribe(&consumer, PRODUCER, from).await {
        Ok(subscription) => subscription,
        Err(error) => return service.health().broken("plan rule", error),
    };
    let health = service.health().clone();
    let applier = service_core::rule::Applier::start(service.log().clone(), cursor, health, {
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
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => return service.health().broken("plan rule", error),
        };
        let envelope = match delivery.event.envelope() {
            Ok(envelope) => envelope,
            Err(error) => return service.health().broken("plan rule", error),
        };
        let effects = plan_event(&envelope)
            .map(|(stream, event)| vec![(stream, vec![event])])
            .unwrap_or_default();
        if applier
            .apply(delivery.event.position(), effects)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// On a read replica: `applied` says how far the scheduler's outcomes are
/// plans this pod shows, having come from the primary. Reads the outcomes
/// from the first at every start; what it keeps is one id per plan event.
pub async fn mirror(service: PlanRegistry, bus: bus::Bus, applied: service_core::Watermark) {
    let what = "the replica's wait for the primary's plans";
    let mut subscription = match bus
        .subscribe(&format!("{}.plan-rule", service.producer()), PRODUCER, 0)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => return service.health().broken(what, error),
    };
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => return service.health().broken(what, error),
        };
        let envelope = match delivery.event.envelope() {
            Ok(envelope) => envelope,
            Err(error) => return service.health().broken(what, error),
        };
        if let Some((_, event)) = plan_event(&envelope) {
            service.shown(event.event_id).await;
        }
        applied.advance_to(delivery.event.position() + 1);
    }
}

/// Whether the rule makes events of this content type.
pub fn makes(content_type: &str) -> bool {
    [
        wire::PlanStarted::full_name(),
        wire::PlanCategoryChanged::full_name(),
        wire::PlanEnded::full_name(),
    ]
    .iter()
    .any(|made| made == content_type)
}

fn system_event<M: Message + Name>(
    source: &contract::events::v1::EventEnvelope,
    payload: &M,
) -> Option<NewEvent> {
    let source_id = EventId::from_slice(&source.event_id)?;
    Some(NewEvent {
        event_id: EventId::derived(source_id, "registry:plan", 0),
        occurred_at: source
            .occurred_at
            .and_then(|at| std::time::SystemTime::try_from(at).ok())
            .unwrap_or_else(std::time::SystemTime::now),
        correlation_id: source.correlation_id.clone(),
        causation_id: source.event_id.clone(),
        traceparent: service_core::trace::follow(&source.traceparent, "plan-rule"),
        actor: Some(contract::events::v1::Actor {
            kind: Some(contract::events::v1::actor::Kind::System(
                crate::LOG.to_owned(),
            )),
        }),
        ..NewEvent::new(M::full_name(), payload.encode_to_vec())
    })
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

fn plan_event(envelope: &contract::events::v1::EventEnvelope) -> Option<(String, NewEvent)> {
    if envelope.content_type != conference::ConferenceOutcomeRecorded::full_name() {
        return None;
    }
    let recorded =
        conference::ConferenceOutcomeRecorded::decode(envelope.payload.as_slice()).ok()?;
    if recorded.plan_id.is_empty() {
        return None;
    }
    let stream = format!("plan-{}", recorded.plan_id);
    let event = match recorded.outcome.as_ref()?.kind.as_ref()? {
        conference::outcome::Kind::Initial(initial) if initial.plan => system_event(
            envelope,
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
        )?,
        conference::outcome::Kind::Initial(_) => return None,
        conference::outcome::Kind::Review(review) => match review.decision.as_ref()? {
            conference::review_outcome::Decision::ContinuePlan(_) => return None,
            conference::review_outcome::Decision::ChangeCategory(category) => system_event(
                envelope,
                &wire::PlanCategoryChanged {
                    plan_id: recorded.plan_id.clone(),
                    category: *category,
                    changed_on: recorded.held_on,
                    conference_id: recorded.conference_id.clone(),
                },
            )?,
            conference::review_outcome::Decision::EndReason(reason) => system_event(
                envelope,
                &wire::PlanEnded {
                    plan_id: recorded.plan_id.clone(),
                    end_date: recorded.held_on,
                    reason: wire::PlanEndReason::Other.into(),
                    detail: reason.clone(),
                    child_nhs_number: recorded.child_nhs_number.clone(),
                    local_authority: recorded.local_authority.clone(),
                    care_team: care_team(&recorded.invitees),
                },
            )?,
        },
    };
    Some((stream, event))
}
