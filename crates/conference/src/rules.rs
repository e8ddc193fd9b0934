//! The scheduler's rules: conferences it requests by itself, from events on
//! the bus. Each rule keeps its place in a durable cursor of this log,
//! written with the conferences it requests (`service_core::rule`), and
//! derives the new conference's id from the event that caused it, so a
//! redelivered event requests nothing twice.

use contract::conference::v1 as wire;
use contract::records::{ConferenceEvent, Records, ReferralEvent};
use domain::clocks;
use domain::codes::ConferenceKind;
use service_core::event::Derived;
use service_core::follow::{Follower, Record};
use service_core::rule::{Applier, Effects, Rule};
use service_core::validate;

use crate::service::{ConferenceScheduler, default_invitees};

/// Starts both rules; each runs until the bus or the log closes.
pub fn start(service: &ConferenceScheduler, bus: &bus::Bus) {
    tokio::spawn(follow(
        service.clone(),
        bus.clone(),
        contract::producers::REFERRAL_INTAKE,
        on_referral_event,
    ));
    tokio::spawn(follow(
        service.clone(),
        bus.clone(),
        crate::LOG,
        on_own_event,
    ));
}

/// What a rule makes of one event: a conference to request, if any.
type Requests<E> = fn(&ConferenceScheduler, E) -> Result<Option<wire::ConferenceRequested>, String>;

/// The purpose the ids of a rule's requests derive from.
fn purpose(kind: i32) -> &'static str {
    if kind == i32::from(wire::ConferenceKind::Review) {
        "conference:review"
    } else {
        "conference:initial"
    }
}

async fn follow<E: Records + 'static>(
    service: ConferenceScheduler,
    bus: bus::Bus,
    producer: &'static str,
    requests: Requests<E>,
) {
    let cursor = format!("rule:{producer}");
    let what = format!("the rule following {producer}");
    let health = service.health().clone();
    let from = match service.log().cursor(&cursor) {
        Ok(position) => position.unwrap_or(0),
        Err(error) => return health.broken(&what, error),
    };
    let consumer = format!("{}.{cursor}", crate::LOG);
    let Ok(follower) = Follower::bus(
        what,
        &bus,
        &consumer,
        producer,
        from,
        service.quarantine().clone(),
    )
    .await
    else {
        return;
    };
    let applier = Applier::start(service.log().clone(), cursor, health, |_, _| async {});
    let rule_service = service.clone();
    let rule = Rule::new(
        applier,
        move |record: Record<'_>, event: E| -> Result<Effects, String> {
            let Some(mut requested) = requests(&rule_service, event)? else {
                return Ok(Vec::new());
            };
            let derived = Derived::from(record.envelope, crate::LOG, "conference-rule")?;
            let purpose = purpose(requested.kind);
            requested.conference_id = derived.id(purpose, 0).to_string();
            let stream = format!("conference-{}", requested.conference_id);
            Ok(vec![(stream, vec![derived.event(purpose, 0, &requested)])])
        },
    );
    follower.spawn(rule);
}

/// A section 47 enquiry that needs a conference requests the initial one.
fn on_referral_event(
    service: &ConferenceScheduler,
    event: ReferralEvent,
) -> Result<Option<wire::ConferenceRequested>, String> {
    let ReferralEvent::Section47Concluded(concluded) = event else {
        return Ok(None);
    };
    if !concluded.conference_needed {
        return Ok(None);
    }
    let local_authority = concluded
        .local_authority
        .ok_or("local_authority: is required")?;
    let child = concluded.child.unwrap_or_default();
    let due = concluded.icpc_due.or_else(|| {
        Some(validate::to_wire_date(clocks::icpc_due(
            service.calendar(),
            validate::today(),
        )))
    });
    Ok(Some(wire::ConferenceRequested {
        conference_id: String::new(),
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
    }))
}

/// An outcome that starts or continues a plan requests the next review.
fn on_own_event(
    _: &ConferenceScheduler,
    event: ConferenceEvent,
) -> Result<Option<wire::ConferenceRequested>, String> {
    let ConferenceEvent::OutcomeRecorded(recorded) = event else {
        return Ok(None);
    };
    let held_on = validate::date("held_on", recorded.held_on.as_ref())
        .map_err(|status| status.message().to_owned())?;
    let due = match outcome_kind(&recorded)? {
        wire::outcome::Kind::Initial(initial) if initial.plan => clocks::first_review_due(held_on),
        wire::outcome::Kind::Review(review) => match review
            .decision
            .as_ref()
            .ok_or("outcome.review.decision: is required")?
        {
            wire::review_outcome::Decision::EndReason(_) => return Ok(None),
            _ => clocks::next_review_due(held_on),
        },
        wire::outcome::Kind::Initial(_) => return Ok(None),
    };
    let local_authority = recorded
        .local_authority
        .ok_or("local_authority: is required")?;
    Ok(Some(wire::ConferenceRequested {
        conference_id: String::new(),
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
    }))
}

fn outcome_kind(
    recorded: &wire::ConferenceOutcomeRecorded,
) -> Result<&wire::outcome::Kind, String> {
    recorded
        .outcome
        .as_ref()
        .and_then(|outcome| outcome.kind.as_ref())
        .ok_or_else(|| "outcome.kind: is required".to_owned())
}
