//! The referral's wire values into domain values and back: its codes, and
//! its events (`to_domain`, what the projection applies to the aggregate;
//! `to_wire`, the payload of what the aggregate decided, which the service
//! completes with who, why and the copies partners need). The two agree:
//! an event taken to the wire and back is itself (tested).

use contract::records::ReferralEvent;
use contract::referral::v1 as wire;
use domain::codes::ReferralOutcome;
use domain::referral::Event;
use service_core::validate;

pub fn outcome_to_domain(value: i32) -> Option<ReferralOutcome> {
    match wire::ReferralOutcome::try_from(value).ok()? {
        wire::ReferralOutcome::NoFurtherAction => Some(ReferralOutcome::NoFurtherAction),
        wire::ReferralOutcome::EarlyHelp => Some(ReferralOutcome::EarlyHelp),
        wire::ReferralOutcome::ChildInNeedAssessment => {
            Some(ReferralOutcome::ChildInNeedAssessment)
        }
        wire::ReferralOutcome::StrategyDiscussion => Some(ReferralOutcome::StrategyDiscussion),
        wire::ReferralOutcome::Unspecified => None,
    }
}

pub fn outcome_to_wire(outcome: ReferralOutcome) -> wire::ReferralOutcome {
    match outcome {
        ReferralOutcome::NoFurtherAction => wire::ReferralOutcome::NoFurtherAction,
        ReferralOutcome::EarlyHelp => wire::ReferralOutcome::EarlyHelp,
        ReferralOutcome::ChildInNeedAssessment => wire::ReferralOutcome::ChildInNeedAssessment,
        ReferralOutcome::StrategyDiscussion => wire::ReferralOutcome::StrategyDiscussion,
    }
}

fn date(
    field: &str,
    value: Option<&contract::common::v1::Date>,
) -> Result<domain::date::Date, String> {
    validate::date(field, value).map_err(|status| status.message().to_owned())
}

fn time_of(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<domain::date::Date, String> {
    value
        .map(validate::date_of)
        .ok_or_else(|| format!("{field}: is required"))
}

/// The noon (UTC) of a day, where the wire keeps a time and the domain a
/// day; the service puts the caller's own time there.
fn noon(day: domain::date::Date) -> Option<prost_types::Timestamp> {
    Some(validate::noon_of(day).into())
}

/// What a stored event means to the aggregate; `None` for what is not a
/// referral's (a quarantine record).
pub fn to_domain(event: &ReferralEvent) -> Result<Option<Event>, String> {
    Ok(Some(match event {
        ReferralEvent::Submitted(submitted) => Event::Submitted {
            received_on: time_of("received_at", submitted.received_at.as_ref())?,
        },
        ReferralEvent::Decided(decided) => Event::Decided {
            outcome: outcome_to_domain(decided.outcome).ok_or("outcome: is required")?,
            decided_on: time_of("decided_at", decided.decided_at.as_ref())?,
        },
        ReferralEvent::StrategyDiscussionHeld(held) => {
            let discussion = held.discussion.as_ref().ok_or("discussion: is required")?;
            Event::StrategyDiscussionHeld {
                held_on: date("discussion.held_on", discussion.held_on.as_ref())?,
                section_47: discussion.section_47_enquiry,
            }
        }
        ReferralEvent::Section47Concluded(concluded) => Event::Section47Concluded {
            concluded_on: date("concluded_on", concluded.concluded_on.as_ref())?,
            conference_needed: concluded.conference_needed,
        },
        ReferralEvent::AssessmentCompleted(completed) => Event::AssessmentCompleted {
            completed_on: date("completed_on", completed.completed_on.as_ref())?,
        },
        ReferralEvent::InformationShared(_)
        | ReferralEvent::DomesticAbuseIncidentReported(_)
        | ReferralEvent::Quarantined(_)
        | ReferralEvent::RecordsRead(_)
        | ReferralEvent::AccessRefused(_) => return Ok(None),
    }))
}

/// The payload of what the aggregate decided, with the values the domain
/// holds; the service completes it.
pub fn to_wire(event: &Event) -> ReferralEvent {
    match *event {
        Event::Submitted { received_on } => wire::ReferralSubmitted {
            received_at: noon(received_on),
            ..wire::ReferralSubmitted::default()
        }
        .into(),
        Event::Decided {
            outcome,
            decided_on,
        } => wire::ReferralDecided {
            outcome: outcome_to_wire(outcome).into(),
            decided_at: noon(decided_on),
            ..wire::ReferralDecided::default()
        }
        .into(),
        Event::StrategyDiscussionHeld {
            held_on,
            section_47,
        } => wire::StrategyDiscussionHeld {
            discussion: Some(wire::StrategyDiscussion {
                held_on: Some(validate::to_wire_date(held_on)),
                section_47_enquiry: section_47,
                ..wire::StrategyDiscussion::default()
            }),
            ..wire::StrategyDiscussionHeld::default()
        }
        .into(),
        Event::Section47Concluded {
            concluded_on,
            conference_needed,
        } => wire::Section47Concluded {
            concluded_on: Some(validate::to_wire_date(concluded_on)),
            conference_needed,
            ..wire::Section47Concluded::default()
        }
        .into(),
        Event::AssessmentCompleted { completed_on } => wire::AssessmentCompleted {
            completed_on: Some(validate::to_wire_date(completed_on)),
            ..wire::AssessmentCompleted::default()
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_taken_to_the_wire_and_back_is_itself() {
        let day = domain::date::Date::from_ymd(2026, 1, 6).expect("a date");
        let mut events = vec![
            Event::Submitted { received_on: day },
            Event::StrategyDiscussionHeld {
                held_on: day,
                section_47: true,
            },
            Event::Section47Concluded {
                concluded_on: day,
                conference_needed: false,
            },
            Event::AssessmentCompleted { completed_on: day },
        ];
        for outcome in [
            ReferralOutcome::NoFurtherAction,
            ReferralOutcome::EarlyHelp,
            ReferralOutcome::ChildInNeedAssessment,
            ReferralOutcome::StrategyDiscussion,
        ] {
            events.push(Event::Decided {
                outcome,
                decided_on: day,
            });
        }
        for event in events {
            assert_eq!(
                to_domain(&to_wire(&event)),
                Ok(Some(event.clone())),
                "{event:?}"
            );
        }
    }

    #[test]
    fn what_the_domain_cannot_read_is_refused_naming_the_field() {
        let cases: [(ReferralEvent, &str); 5] = [
            (wire::ReferralSubmitted::default().into(), "received_at"),
            (
                wire::ReferralDecided {
                    decided_at: noon(domain::date::Date::MIN),
                    ..wire::ReferralDecided::default()
                }
                .into(),
                "outcome",
            ),
            (wire::StrategyDiscussionHeld::default().into(), "discussion"),
            (wire::Section47Concluded::default().into(), "concluded_on"),
            (wire::AssessmentCompleted::default().into(), "completed_on"),
        ];
        for (event, field) in cases {
            let refused = to_domain(&event).expect_err(field);
            assert!(refused.starts_with(field), "{refused}");
        }
    }
}
