//! The scheduler's rules: conferences it requests by itself, from events on
//! the bus. Each rule keeps its place in a durable cursor of this log,
//! written with the conferences it requests (`service_core::rule`), and
//! derives the new conference's id from the event that caused it, so a
//! redelivered event requests nothing twice.

use contract::conference::v1 as wire;
use contract::records::{ConferenceEvent, Records, ReferralEvent, RegistryEvent};
use domain::calendar::Calendar;
use domain::clocks;
use domain::codes::ConferenceKind;
use domain::date::Date;
use service_core::codes;
use service_core::event::Derived;
use service_core::follow::{Follower, Record};
use service_core::rule::{Applier, Effects, Rule};
use service_core::validate;

use crate::convert;
use crate::service::{ConferenceScheduler, default_invitees, invited_again};

/// Starts the rules; each runs until the bus or the log closes.
pub fn start(service: &ConferenceScheduler, bus: &bus::Bus) {
    tokio::spawn(follow(
        service.clone(),
        bus.clone(),
        contract::producers::REFERRAL_INTAKE,
        |service, record, event| requesting(service, record, event, on_referral_event),
    ));
    tokio::spawn(follow(
        service.clone(),
        bus.clone(),
        crate::LOG,
        |service, record, event| requesting(service, record, event, on_own_event),
    ));
    tokio::spawn(follow(
        service.clone(),
        bus.clone(),
        contract::producers::PLAN_REGISTRY,
        on_registry_event,
    ));
}

/// What a rule makes of one event: a conference to request, if any.
type Requests<E> = fn(&Calendar, Date, E) -> Result<Option<wire::ConferenceRequested>, String>;

/// The purpose the ids of a rule's requests derive from.
fn purpose(kind: i32) -> &'static str {
    if kind == i32::from(wire::ConferenceKind::Review) {
        "conference:review"
    } else {
        "conference:initial"
    }
}

async fn follow<E, F>(
    service: ConferenceScheduler,
    bus: bus::Bus,
    producer: &'static str,
    decide: F,
) where
    E: Records + 'static,
    F: Fn(&ConferenceScheduler, Record<'_>, E) -> Result<Effects, String> + Send + 'static,
{
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
    let rule = Rule::new(
        applier,
        move |record: Record<'_>, event: E| -> Result<Effects, String> {
            decide(&service, record, event)
        },
    );
    follower.spawn(rule);
}

/// The conference a rule requests from one event, if any, under an id
/// derived from that event.
fn requesting<E>(
    service: &ConferenceScheduler,
    record: Record<'_>,
    event: E,
    requests: Requests<E>,
) -> Result<Effects, String> {
    let Some(mut requested) = requests(service.calendar(), service.today(), event)? else {
        return Ok(Vec::new());
    };
    // Requested when what caused it happened (an enquiry concluded, a
    // conference held), however late the scheduler hears of it.
    let derived =
        Derived::from(record.envelope, crate::LOG, "conference-rule")?.occurring_with_source();
    let purpose = purpose(requested.kind);
    requested.conference_id = derived.id(purpose, 0).to_string();
    let stream = format!("conference-{}", requested.conference_id);
    Ok(vec![(stream, vec![derived.event(purpose, 0, &requested)])])
}

/// A plan that ends outside a conference (a transfer out, an 18th
/// birthday, a death, leaving the country) withdraws what was still to be
/// held for it, saying why: no review is due for a plan that has ended, and
/// no deadline survives it. A plan a review conference ended has nothing
/// pending, unless a review was added by hand, and that goes too.
fn on_registry_event(
    service: &ConferenceScheduler,
    record: Record<'_>,
    event: RegistryEvent,
) -> Result<Effects, String> {
    let ended = match event {
        RegistryEvent::PlanEnded(ended) => ended,
        RegistryEvent::PlanStarted(started) => return imported_review(record, started),
        _ => return Ok(Vec::new()),
    };
    let why = codes::end_reason(ended.reason).map_or("ended", |reason| reason.label());
    let reason = match ended.end_date {
        Some(date) => format!(
            "the plan ended on {:04}-{:02}-{:02}: {why}",
            date.year, date.month, date.day
        ),
        None => format!("the plan ended: {why}"),
    };
    let derived =
        Derived::from(record.envelope, crate::LOG, "plan-end-rule")?.occurring_with_source();
    let mut effects = Vec::new();
    for (conference_id, tracked) in service.conferences_of_plan(&ended.plan_id)? {
        // Held, decided or already withdrawn: nothing left to withdraw.
        let Ok(change) = tracked.aggregate.withdraw(&reason) else {
            continue;
        };
        let ConferenceEvent::Cancelled(cancelled) = convert::to_wire(&change) else {
            return Err("withdrawing gave another event".into());
        };
        let cancelled = wire::ConferenceCancelled {
            conference_id: conference_id.clone(),
            ..cancelled
        };
        // The purpose names the conference, so a redelivered end withdraws
        // each conference under the same id however the view has moved.
        let purpose = format!("conference:withdraw:{conference_id}");
        effects.push((
            format!("conference-{conference_id}"),
            vec![derived.event(&purpose, 0, &cancelled)],
        ));
    }
    Ok(effects)
}

/// A plan loaded at go-live (`ImportCaseload`) brings the review
/// conference its council had booked: requested here, due then, so its
/// clock runs from the first day like any other review's.
fn imported_review(
    record: Record<'_>,
    started: contract::registry::v1::PlanStarted,
) -> Result<Effects, String> {
    let Some(due) = started.next_review_due else {
        return Ok(Vec::new());
    };
    let local_authority = started
        .local_authority
        .ok_or("local_authority: is required")?;
    let unborn = started.r#type == i32::from(contract::registry::v1::PlanType::Unborn);
    let derived =
        Derived::from(record.envelope, crate::LOG, "plan-import-rule")?.occurring_with_source();
    let purpose = purpose(wire::ConferenceKind::Review.into());
    let conference_id = derived.id(purpose, 0).to_string();
    let requested = wire::ConferenceRequested {
        conference_id: conference_id.clone(),
        kind: wire::ConferenceKind::Review.into(),
        child_nhs_number: started.child_nhs_number,
        child_local_id: started.child_local_id,
        child_name: started.child_name,
        invitees: default_invitees(ConferenceKind::Review, &local_authority),
        local_authority: Some(local_authority),
        clock_starts: started.start_date,
        due: Some(due),
        referral_id: String::new(),
        plan_id: started.plan_id,
        expected_date_of_delivery: if unborn {
            started.expected_date_of_delivery
        } else {
            None
        },
        police_risk_assessments: Vec::new(),
    };
    Ok(vec![(
        format!("conference-{conference_id}"),
        vec![derived.event(purpose, 0, &requested)],
    )])
}

/// A section 47 enquiry that needs a conference requests the initial one.
fn on_referral_event(
    calendar: &Calendar,
    today: Date,
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
    let referrer = concluded
        .referrer
        .and_then(|referrer| referrer.organisation)
        .into_iter()
        .collect::<Vec<_>>();
    let due = concluded
        .icpc_due
        .or_else(|| Some(validate::to_wire_date(clocks::icpc_due(calendar, today))));
    // An unborn child is known by the mother's number until the birth is
    // linked: the conference is a pre-birth one.
    let expected_date_of_delivery = if child.nhs_number.is_none() {
        child.expected_date_of_delivery
    } else {
        None
    };
    let invitees = initial_invitees(
        &local_authority,
        &concluded.agencies,
        &referrer,
        &child,
        today,
    );
    Ok(Some(wire::ConferenceRequested {
        conference_id: String::new(),
        kind: wire::ConferenceKind::Initial.into(),
        expected_date_of_delivery,
        invitees,
        child_local_id: child.local_id.clone(),
        child_nhs_number: child.nhs_number.or(child.mother_nhs_number),
        child_name: format!("{} {}", child.given_name, child.family_name)
            .trim()
            .to_owned(),
        local_authority: Some(local_authority),
        clock_starts: concluded.concluded_on,
        due,
        referral_id: concluded.referral_id,
        plan_id: String::new(),
        police_risk_assessments: concluded.police_risk_assessments,
    }))
}

/// The initial conference's invitations, filled from what the referral
/// knows (Working Together 2023: police always, the child's GP, health
/// visitor or school nurse, school, the referrer): social care and the
/// family, each agency at the strategy discussions, the referrer and the
/// child's GP practice, each in the role its kind of organisation plays.
/// The council edits them from there.
fn initial_invitees(
    local_authority: &contract::common::v1::Organisation,
    agencies: &[contract::common::v1::Organisation],
    referrer: &[contract::common::v1::Organisation],
    child: &contract::referral::v1::Child,
    today: Date,
) -> Vec<wire::Invitee> {
    use contract::common::v1::OrganisationKind as Kind;
    // Health visitors see children under five (and the unborn); school
    // nurses, children at school.
    let under_five = match validate::optional_date("date_of_birth", child.date_of_birth.as_ref()) {
        Ok(Some(born)) => born.add_months(60) > today,
        _ => child.expected_date_of_delivery.is_some(),
    };
    let mut invitees = default_invitees(ConferenceKind::Initial, local_authority);
    for organisation in agencies.iter().chain(referrer).chain(&child.gp_practice) {
        let role = match Kind::try_from(organisation.kind).unwrap_or_default() {
            Kind::LocalAuthority => continue,
            Kind::Police => wire::InviteeRole::Police,
            Kind::NhsTrust if under_five => wire::InviteeRole::HealthVisitor,
            Kind::NhsTrust => wire::InviteeRole::SchoolNurse,
            Kind::GpPractice => wire::InviteeRole::Gp,
            Kind::School => wire::InviteeRole::School,
            Kind::EarlyYears => wire::InviteeRole::EarlyYears,
            Kind::Probation => wire::InviteeRole::Probation,
            Kind::Housing => wire::InviteeRole::Housing,
            Kind::VoluntarySector | Kind::Other | Kind::Unspecified => wire::InviteeRole::Other,
        };
        let known = invitees.iter().any(|invitee| {
            invitee.role == i32::from(role)
                && invitee.organisation.as_ref().map(|o| &o.ods_code)
                    == Some(&organisation.ods_code)
        });
        if !known {
            invitees.push(wire::Invitee {
                role: role.into(),
                organisation: Some(organisation.clone()),
                ..wire::Invitee::default()
            });
        }
    }
    invitees
}

/// An outcome that starts or continues a plan requests the next review.
fn on_own_event(
    _: &Calendar,
    _: Date,
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
            wire::review_outcome::Decision::EndPlan(_) => return Ok(None),
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
        child_local_id: recorded.child_local_id,
        child_name: recorded.child_name,
        expected_date_of_delivery: recorded.expected_date_of_delivery,
        invitees: invited_again(recorded.invitees),
        local_authority: Some(local_authority),
        clock_starts: recorded.held_on,
        due: Some(validate::to_wire_date(due)),
        referral_id: String::new(),
        plan_id: recorded.plan_id,
        police_risk_assessments: Vec::new(),
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

#[cfg(test)]
mod tests {
    use contract::common::v1::{Date, NhsNumber, Organisation};
    use contract::referral::v1 as referral;

    use super::*;

    fn today() -> domain::date::Date {
        domain::date::Date::from_ymd(2026, 1, 12).expect("a date")
    }

    fn council() -> Option<Organisation> {
        Some(Organisation {
            ods_code: "E09000999".into(),
            ..Organisation::default()
        })
    }

    fn date(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    fn concluded(needed: bool, child: referral::Child) -> ReferralEvent {
        ReferralEvent::Section47Concluded(referral::Section47Concluded {
            referral_id: "r1".into(),
            conference_needed: needed,
            local_authority: council(),
            child: Some(child),
            icpc_due: date(2026, 1, 30),
            ..referral::Section47Concluded::default()
        })
    }

    fn number(value: &str) -> Option<NhsNumber> {
        Some(NhsNumber {
            value: value.into(),
        })
    }

    #[test]
    fn a_section_47_that_needs_a_conference_requests_the_initial_one() {
        let calendar = Calendar::england_and_wales();
        let named = referral::Child {
            nhs_number: number("9990000018"),
            given_name: "Alex".into(),
            family_name: "Testchild".into(),
            ..referral::Child::default()
        };
        let unborn = referral::Child {
            mother_nhs_number: number("9990000026"),
            ..referral::Child::default()
        };
        // (what, event, the child the request names, or why none)
        type Case = (
            &'static str,
            ReferralEvent,
            Result<Option<Option<NhsNumber>>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a child",
                concluded(true, named.clone()),
                Ok(Some(number("9990000018"))),
            ),
            (
                "an unborn child: the mother",
                concluded(true, unborn),
                Ok(Some(number("9990000026"))),
            ),
            (
                "no NHS number at all",
                concluded(true, referral::Child::default()),
                Ok(Some(None)),
            ),
            (
                "no conference needed",
                concluded(false, named.clone()),
                Ok(None),
            ),
            (
                "no local authority",
                ReferralEvent::Section47Concluded(referral::Section47Concluded {
                    conference_needed: true,
                    ..referral::Section47Concluded::default()
                }),
                Err("local_authority"),
            ),
            (
                "another event",
                ReferralEvent::Decided(referral::ReferralDecided::default()),
                Ok(None),
            ),
        ];
        for (what, event, expected) in cases {
            let requested = on_referral_event(&calendar, today(), event);
            match (requested, expected) {
                (Ok(requested), Ok(expected)) => assert_eq!(
                    requested.as_ref().map(|r| r.child_nhs_number.clone()),
                    expected,
                    "{what}"
                ),
                (Err(reason), Err(field)) => assert!(reason.starts_with(field), "{what}: {reason}"),
                (requested, _) => panic!("{what}: {requested:?}"),
            }
        }
        let requested = on_referral_event(&calendar, today(), concluded(true, named))
            .expect("made")
            .expect("requested");
        assert_eq!(requested.kind, i32::from(wire::ConferenceKind::Initial));
        assert_eq!(requested.due, date(2026, 1, 30));
        assert_eq!(requested.child_name, "Alex Testchild");
    }

    fn outcome(kind: wire::outcome::Kind) -> ConferenceEvent {
        ConferenceEvent::OutcomeRecorded(wire::ConferenceOutcomeRecorded {
            plan_id: "p1".into(),
            held_on: date(2026, 1, 20),
            local_authority: council(),
            invitees: vec![wire::Invitee {
                response: 1,
                attended: true,
                report_received: true,
                ..wire::Invitee::default()
            }],
            outcome: Some(wire::Outcome {
                kind: Some(kind),
                quorum_override_reason: String::new(),
            }),
            ..wire::ConferenceOutcomeRecorded::default()
        })
    }

    #[test]
    fn an_outcome_that_starts_or_continues_a_plan_requests_the_next_review() {
        use wire::review_outcome::Decision;
        let calendar = Calendar::england_and_wales();
        let review = |decision| {
            outcome(wire::outcome::Kind::Review(wire::ReviewOutcome {
                decision: Some(decision),
            }))
        };
        let initial = |plan| {
            outcome(wire::outcome::Kind::Initial(wire::InitialOutcome {
                plan,
                category: 1,
            }))
        };
        // (what, event, the review's due date if one is requested)
        let cases = vec![
            (
                "a plan: three months on",
                initial(true),
                Some(date(2026, 4, 20)),
            ),
            ("no plan", initial(false), None),
            (
                "a plan continued: six months on",
                review(Decision::ContinuePlan(true)),
                Some(date(2026, 7, 20)),
            ),
            (
                "a category changed",
                review(Decision::ChangeCategory(2)),
                Some(date(2026, 7, 20)),
            ),
            (
                "a plan ended",
                review(Decision::EndPlan(wire::PlanEnding {
                    reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
                    detail: String::new(),
                })),
                None,
            ),
        ];
        for (what, event, due) in cases {
            let requested = on_own_event(&calendar, today(), event).expect(what);
            assert_eq!(requested.as_ref().map(|r| r.due), due, "{what}");
            if let Some(requested) = requested {
                assert_eq!(requested.plan_id, "p1", "{what}");
                // The review invites the same agencies afresh.
                assert_eq!(requested.invitees[0].response, 0, "{what}");
                assert!(!requested.invitees[0].attended, "{what}");
            }
        }
    }
}
