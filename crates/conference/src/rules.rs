//! The scheduler's rules: conferences it requests by itself, from events on
//! the bus. Each rule keeps its place in a durable cursor of this log,
//! written with the conferences it requests (`service_core::rule`), and
//! derives the new conference's id from the event that caused it, so a
//! redelivered event requests nothing twice.

use contract::conference::v1 as wire;
use contract::referral::v1 as referral;
use domain::clocks;
use domain::codes::ConferenceKind;
use eventlog::EventId;
use prost::{Message, Name};
use service_core::validate;

use crate::service::{Acting, ConferenceScheduler, default_invitees, requested_event};

/// Runs both rules until the bus or the log closes.
pub async fn run(service: ConferenceScheduler, bus: bus::Bus) {
    let referrals = follow(
        service.clone(),
        bus.clone(),
        contract::producers::REFERRAL_INTAKE,
        on_referral_event,
    );
    let reviews = follow(service, bus, crate::LOG, on_own_event);
    let _ = tokio::join!(referrals, reviews);
}

type Rule = fn(
    &ConferenceScheduler,
    &contract::events::v1::EventEnvelope,
) -> Option<(EventId, wire::ConferenceRequested)>;

async fn follow(service: ConferenceScheduler, bus: bus::Bus, producer: &'static str, rule: Rule) {
    let cursor = format!("rule:{producer}");
    let what = format!("the rule following {producer}");
    let health = service.health().clone();
    let from = match service.log().cursor(&cursor) {
        Ok(position) => position.unwrap_or(0),
        Err(error) => return health.broken(&what, error),
    };
    let mut subscription = match bus
        .subscribe(&format!("{}.{cursor}", crate::LOG), producer, from)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => return health.broken(&what, error),
    };
    let applier = service_core::rule::Applier::start(
        service.log().clone(),
        cursor,
        health.clone(),
        |_, _| async {},
    );
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(bus::Error::Closed) => return,
            Err(error) => return health.broken(&what, error),
        };
        let envelope = match delivery.event.envelope() {
            Ok(envelope) => envelope,
            Err(error) => return health.broken(&what, error),
        };
        let effects = rule(&service, &envelope)
            .map(|(id, requested)| {
                let (stream, mut event) = requested_event(id, &requested, Acting::System);
                event.traceparent =
                    service_core::trace::follow(&envelope.traceparent, "conference-rule");
                vec![(stream, vec![event])]
            })
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

fn source_id(envelope: &contract::events::v1::EventEnvelope) -> Option<EventId> {
    EventId::from_slice(&envelope.event_id)
}

/// A section 47 enquiry that needs a conference requests the initial one.
fn on_referral_event(
    service: &ConferenceScheduler,
    envelope: &contract::events::v1::EventEnvelope,
) -> Option<(EventId, wire::ConferenceRequested)> {
    if envelope.content_type != referral::Section47Concluded::full_name() {
        return None;
    }
    let concluded = referral::Section47Concluded::decode(envelope.payload.as_slice()).ok()?;
    if !concluded.conference_needed {
        return None;
    }
    let local_authority = concluded.local_authority?;
    let child = concluded.child.unwrap_or_default();
    let id = EventId::derived(source_id(envelope)?, "conference:initial", 0);
    let due = concluded.icpc_due.or_else(|| {
        Some(validate::to_wire_date(clocks::icpc_due(
            service_calendar(service),
            validate::today(),
        )))
    });
    Some((
        id,
        wire::ConferenceRequested {
            conference_id: id.to_string(),
            kind: wire::ConferenceKind::Initial.into(),
            child_nhs_number: child.nhs_number.or(child.mother_nhs_number),
            child_name: format!("{} {}", child.given_name, child.family_name)
                .trim()
                .to_owned(),
            invitees: default_invitees(ConferenceKind::Initial, &local_authority),
            local_authority: Some(local_authority),
            clock_starts: concluded.concluded_on,
            due,
            referral_id: concluded.referral_id,
            plan_id: String::new(),
        },
    ))
}

fn service_calendar(service: &ConferenceScheduler) -> &domain::calendar::Calendar {
    service.calendar()
}

/// An outcome that starts or continues a plan requests the next review.
fn on_own_event(
    _: &ConferenceScheduler,
    envelope: &contract::events::v1::EventEnvelope,
) -> Option<(EventId, wire::ConferenceRequested)> {
    if envelope.content_type != wire::ConferenceOutcomeRecorded::full_name() {
        return None;
    }
    let recorded = wire::ConferenceOutcomeRecorded::decode(envelope.payload.as_slice()).ok()?;
    let held_on = validate::date("held_on", recorded.held_on.as_ref()).ok()?;
    let due = match recorded.outcome.as_ref()?.kind.as_ref()? {
        wire::outcome::Kind::Initial(initial) if initial.plan => clocks::first_review_due(held_on),
        wire::outcome::Kind::Review(review) => match review.decision.as_ref()? {
            wire::review_outcome::Decision::EndReason(_) => return None,
            _ => clocks::next_review_due(held_on),
        },
        wire::outcome::Kind::Initial(_) => return None,
    };
    let local_authority = recorded.local_authority?;
    let id = EventId::derived(source_id(envelope)?, "conference:review", 0);
    Some((
        id,
        wire::ConferenceRequested {
            conference_id: id.to_string(),
            kind: wire::ConferenceKind::Review.into(),
            child_nhs_number: recorded.child_nhs_number,
            child_name: recorded.child_name,
            invitees: recorded
                .invitees
                .into_iter()
                .map(|invitee| wire::Invitee {
                    response: 0,
                    report_received: false,
                    attended: false,
                    ..invitee
                })
                .collect(),
            local_authority: Some(local_authority),
            clock_starts: recorded.held_on,
            due: Some(validate::to_wire_date(due)),
            referral_id: String::new(),
            plan_id: recorded.plan_id,
        },
    ))
}
