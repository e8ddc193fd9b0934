//! The conference's wire values into domain values and back: its codes,
//! invitees and outcomes, and its events (`to_domain`, what the projection
//! applies to the aggregate; `to_wire`, the payload of what the aggregate
//! decided, which the service completes with times, venues and the
//! invitees' details). The two agree: an event taken to the wire and back
//! is itself (tested).

use contract::common::v1::AbuseCategory as WireCategory;
use contract::conference::v1 as wire;
use contract::records::ConferenceEvent;
use domain::OdsCode;
use domain::codes::{AbuseCategory, ConferenceKind, InviteResponse};
use domain::conference::{Event, InviteeKey, InviteeRole, Outcome, ReviewDecision};
use domain::date::Date;
use service_core::codes::{self, category_to_wire};
use service_core::reject::invalid;
use service_core::validate;
use tonic::Status;

pub fn kind(value: i32) -> Result<ConferenceKind, Status> {
    match validate::known_enum::<wire::ConferenceKind>("kind", value)? {
        wire::ConferenceKind::Initial => Ok(ConferenceKind::Initial),
        wire::ConferenceKind::Review => Ok(ConferenceKind::Review),
        wire::ConferenceKind::TransferIn => Ok(ConferenceKind::TransferIn),
        wire::ConferenceKind::Unspecified => Err(invalid("kind", "is required")),
    }
}

const ROLES: [(wire::InviteeRole, InviteeRole); 14] = [
    (wire::InviteeRole::Parent, InviteeRole::Parent),
    (wire::InviteeRole::Child, InviteeRole::Child),
    (wire::InviteeRole::SocialCare, InviteeRole::SocialCare),
    (wire::InviteeRole::Police, InviteeRole::Police),
    (wire::InviteeRole::Gp, InviteeRole::Gp),
    (wire::InviteeRole::HealthVisitor, InviteeRole::HealthVisitor),
    (wire::InviteeRole::SchoolNurse, InviteeRole::SchoolNurse),
    (wire::InviteeRole::Paediatrician, InviteeRole::Paediatrician),
    (wire::InviteeRole::School, InviteeRole::School),
    (wire::InviteeRole::EarlyYears, InviteeRole::EarlyYears),
    (wire::InviteeRole::Camhs, InviteeRole::Camhs),
    (wire::InviteeRole::Probation, InviteeRole::Probation),
    (wire::InviteeRole::Housing, InviteeRole::Housing),
    (wire::InviteeRole::Other, InviteeRole::Other),
];

pub fn role(field: &str, value: i32) -> Result<InviteeRole, Status> {
    let role = validate::known_enum::<wire::InviteeRole>(field, value)?;
    ROLES
        .iter()
        .find(|(wire_role, _)| *wire_role == role)
        .map(|(_, role)| *role)
        .ok_or_else(|| invalid(field, "is required"))
}

pub fn role_to_wire(role: InviteeRole) -> wire::InviteeRole {
    ROLES
        .iter()
        .find(|(_, domain_role)| *domain_role == role)
        .map_or(wire::InviteeRole::Other, |(wire_role, _)| *wire_role)
}

/// The key an invitee is known by: its role and organisation.
pub fn key(field: &str, role_value: i32, ods: &str) -> Result<InviteeKey, Status> {
    let role = role(&format!("{field}.role"), role_value)?;
    let organisation = if ods.trim().is_empty() {
        if role.is_agency() {
            return Err(invalid(
                &format!("{field}.organisation"),
                "is required for an agency",
            ));
        }
        None
    } else {
        Some(
            OdsCode::parse(ods)
                .map_err(|error| invalid(&format!("{field}.organisation.ods_code"), error))?,
        )
    };
    Ok(InviteeKey { role, organisation })
}

pub fn invitee_key(field: &str, invitee: &wire::Invitee) -> Result<InviteeKey, Status> {
    let ods = invitee
        .organisation
        .as_ref()
        .map(|organisation| organisation.ods_code.as_str())
        .unwrap_or_default();
    key(field, invitee.role, ods)
}

pub fn response(value: i32) -> Result<InviteResponse, Status> {
    match validate::known_enum::<wire::InviteResponse>("response", value)? {
        wire::InviteResponse::Attending => Ok(InviteResponse::Attending),
        wire::InviteResponse::SendingReport => Ok(InviteResponse::SendingReport),
        wire::InviteResponse::Declined => Ok(InviteResponse::Declined),
        wire::InviteResponse::Unspecified => Err(invalid("response", "is required")),
    }
}

pub fn category(field: &str, value: i32) -> Result<AbuseCategory, Status> {
    validate::known_enum::<WireCategory>(field, value)?;
    codes::category(value).ok_or_else(|| invalid(field, "is required"))
}

/// The outcome a request or an event carries, as the domain sees it.
pub fn outcome(outcome: Option<&wire::Outcome>) -> Result<Outcome, Status> {
    let outcome = outcome.ok_or_else(|| invalid("outcome", "is required"))?;
    match &outcome.kind {
        Some(wire::outcome::Kind::Initial(initial)) => Ok(Outcome::Initial {
            plan: if initial.plan {
                Some(category("outcome.initial.category", initial.category)?)
            } else {
                None
            },
        }),
        Some(wire::outcome::Kind::Review(review)) => match &review.decision {
            Some(wire::review_outcome::Decision::ContinuePlan(_)) => {
                Ok(Outcome::Review(ReviewDecision::Continue))
            }
            Some(wire::review_outcome::Decision::ChangeCategory(value)) => Ok(Outcome::Review(
                ReviewDecision::ChangeCategory(category("outcome.review.change_category", *value)?),
            )),
            Some(wire::review_outcome::Decision::EndPlan(ending)) => {
                let field = "outcome.review.end_plan.reason";
                let reason = match validate::known_enum(field, ending.reason)? {
                    contract::common::v1::PlanEndReason::Unspecified => {
                        return Err(invalid(field, "is required"));
                    }
                    contract::common::v1::PlanEndReason::Born => {
                        return Err(invalid(
                            field,
                            "a birth is not an end: the plan follows the baby",
                        ));
                    }
                    _ => codes::end_reason(ending.reason)
                        .ok_or_else(|| invalid(field, "is not an end reason"))?,
                };
                Ok(Outcome::Review(ReviewDecision::End {
                    reason,
                    detail: ending.detail.trim().to_owned(),
                }))
            }
            None => Err(invalid("outcome.review.decision", "is required")),
        },
        None => Err(invalid("outcome.kind", "is required")),
    }
}

pub fn invitee_view(key: &InviteeKey, known: Option<&wire::Invitee>) -> wire::Invitee {
    let mut view = known.cloned().unwrap_or_default();
    view.role = role_to_wire(key.role).into();
    if view.organisation.is_none() {
        view.organisation =
            key.organisation
                .as_ref()
                .map(|ods| contract::common::v1::Organisation {
                    ods_code: ods.to_string(),
                    ..Default::default()
                });
    }
    view
}

pub fn kind_to_wire(kind: ConferenceKind) -> wire::ConferenceKind {
    match kind {
        ConferenceKind::Initial => wire::ConferenceKind::Initial,
        ConferenceKind::Review => wire::ConferenceKind::Review,
        ConferenceKind::TransferIn => wire::ConferenceKind::TransferIn,
    }
}

pub fn response_to_wire(response: InviteResponse) -> wire::InviteResponse {
    match response {
        InviteResponse::Attending => wire::InviteResponse::Attending,
        InviteResponse::SendingReport => wire::InviteResponse::SendingReport,
        InviteResponse::Declined => wire::InviteResponse::Declined,
    }
}

/// An outcome as the wire carries it, with the chair's reason for
/// overriding the quorum, if any.
pub fn outcome_to_wire(outcome: &Outcome, override_reason: Option<&str>) -> wire::Outcome {
    let kind = match outcome {
        Outcome::Initial { plan } => wire::outcome::Kind::Initial(wire::InitialOutcome {
            plan: plan.is_some(),
            category: plan.map_or(0, |category| category_to_wire(category).into()),
        }),
        Outcome::Review(decision) => wire::outcome::Kind::Review(wire::ReviewOutcome {
            decision: Some(match decision {
                ReviewDecision::Continue => wire::review_outcome::Decision::ContinuePlan(true),
                ReviewDecision::ChangeCategory(category) => {
                    wire::review_outcome::Decision::ChangeCategory(
                        category_to_wire(*category).into(),
                    )
                }
                ReviewDecision::End { reason, detail } => {
                    wire::review_outcome::Decision::EndPlan(wire::PlanEnding {
                        reason: codes::end_reason_to_wire(*reason).into(),
                        detail: detail.clone(),
                    })
                }
            }),
        }),
    };
    wire::Outcome {
        kind: Some(kind),
        quorum_override_reason: override_reason.unwrap_or_default().to_owned(),
    }
}

/// An invitee known only by its key.
fn invitee_of(key: &InviteeKey) -> wire::Invitee {
    invitee_view(key, None)
}

fn ods_of(key: &InviteeKey) -> String {
    key.organisation
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn keys(field: &str, invitees: &[wire::Invitee]) -> Result<Vec<InviteeKey>, String> {
    invitees
        .iter()
        .map(|invitee| invitee_key(field, invitee).map_err(|status| status.message().to_owned()))
        .collect()
}

fn reason(status: Status) -> String {
    status.message().to_owned()
}

fn date(field: &str, value: Option<&contract::common::v1::Date>) -> Result<Date, String> {
    validate::date(field, value).map_err(reason)
}

fn day_of(field: &str, value: Option<&prost_types::Timestamp>) -> Result<Date, String> {
    value
        .map(validate::date_of)
        .ok_or_else(|| format!("{field}: is required"))
}

/// The noon (UTC) of a day, where the wire keeps a time and the domain a
/// day; the service puts the time it was given there.
fn noon(day: Date) -> Option<prost_types::Timestamp> {
    Some(validate::noon_of(day).into())
}

/// What a stored event means to the aggregate; `None` for what is not a
/// conference's (a quarantine record).
pub fn to_domain(event: &ConferenceEvent) -> Result<Option<Event>, String> {
    Ok(Some(match event {
        ConferenceEvent::Requested(requested) => Event::Requested {
            kind: kind(requested.kind).map_err(reason)?,
            due: date("due", requested.due.as_ref())?,
            invitees: keys("invitees", &requested.invitees)?,
        },
        ConferenceEvent::Scheduled(scheduled) => Event::Scheduled {
            on: day_of("scheduled_for", scheduled.scheduled_for.as_ref())?,
        },
        ConferenceEvent::Rearranged(moved) => Event::Rearranged {
            on: day_of("scheduled_for", moved.scheduled_for.as_ref())?,
            reason: moved.reason.clone(),
        },
        ConferenceEvent::Cancelled(cancelled) if cancelled.withdrawn => Event::Withdrawn {
            reason: cancelled.reason.clone(),
        },
        ConferenceEvent::Cancelled(cancelled) => Event::Cancelled {
            reason: cancelled.reason.clone(),
        },
        ConferenceEvent::InvitationsUpdated(updated) => Event::InvitationsUpdated {
            added: keys("added", &updated.added)?,
            removed: keys("removed", &updated.removed)?,
        },
        ConferenceEvent::InviteReplied(replied) => Event::InviteReplied {
            invitee: key("invitee", replied.role, &replied.organisation_ods_code)
                .map_err(reason)?,
            response: response(replied.response).map_err(reason)?,
        },
        ConferenceEvent::ReportReceived(received) => Event::ReportReceived {
            invitee: key("invitee", received.role, &received.organisation_ods_code)
                .map_err(reason)?,
        },
        ConferenceEvent::AttendanceRecorded(attended) => Event::AttendanceRecorded {
            held_on: date("held_on", attended.held_on.as_ref())?,
            present: keys("present", &attended.present)?,
        },
        ConferenceEvent::OutcomeRecorded(recorded) => Event::OutcomeRecorded {
            outcome: outcome(recorded.outcome.as_ref()).map_err(reason)?,
            quorate: recorded.quorate,
            override_reason: recorded
                .outcome
                .as_ref()
                .map(|outcome| outcome.quorum_override_reason.clone())
                .filter(|reason| !reason.is_empty()),
        },
        ConferenceEvent::CoreGroupMet(met) => Event::CoreGroupMet {
            held_on: date("held_on", met.held_on.as_ref())?,
        },
        ConferenceEvent::Quarantined(_)
        | ConferenceEvent::RecordsRead(_)
        | ConferenceEvent::AccessRefused(_) => return Ok(None),
    }))
}

/// The payload of what the aggregate decided, with the values the domain
/// holds; the service completes it.
pub fn to_wire(event: &Event) -> ConferenceEvent {
    match event {
        Event::Requested {
            kind,
            due,
            invitees,
        } => wire::ConferenceRequested {
            kind: kind_to_wire(*kind).into(),
            due: Some(validate::to_wire_date(*due)),
            invitees: invitees.iter().map(invitee_of).collect(),
            ..wire::ConferenceRequested::default()
        }
        .into(),
        Event::Scheduled { on } => wire::ConferenceScheduled {
            scheduled_for: noon(*on),
            ..wire::ConferenceScheduled::default()
        }
        .into(),
        Event::Rearranged { on, reason } => wire::ConferenceRearranged {
            scheduled_for: noon(*on),
            reason: reason.clone(),
            ..wire::ConferenceRearranged::default()
        }
        .into(),
        Event::Cancelled { reason } => wire::ConferenceCancelled {
            reason: reason.clone(),
            ..wire::ConferenceCancelled::default()
        }
        .into(),
        Event::Withdrawn { reason } => wire::ConferenceCancelled {
            reason: reason.clone(),
            withdrawn: true,
            ..wire::ConferenceCancelled::default()
        }
        .into(),
        Event::InvitationsUpdated { added, removed } => wire::InvitationsUpdated {
            added: added.iter().map(invitee_of).collect(),
            removed: removed.iter().map(invitee_of).collect(),
            ..wire::InvitationsUpdated::default()
        }
        .into(),
        Event::InviteReplied { invitee, response } => wire::InviteReplied {
            role: role_to_wire(invitee.role).into(),
            organisation_ods_code: ods_of(invitee),
            response: response_to_wire(*response).into(),
            ..wire::InviteReplied::default()
        }
        .into(),
        Event::ReportReceived { invitee } => wire::ReportReceived {
            role: role_to_wire(invitee.role).into(),
            organisation_ods_code: ods_of(invitee),
            ..wire::ReportReceived::default()
        }
        .into(),
        Event::AttendanceRecorded { held_on, present } => wire::AttendanceRecorded {
            held_on: Some(validate::to_wire_date(*held_on)),
            present: present.iter().map(invitee_of).collect(),
            ..wire::AttendanceRecorded::default()
        }
        .into(),
        Event::OutcomeRecorded {
            outcome,
            quorate,
            override_reason,
        } => wire::ConferenceOutcomeRecorded {
            outcome: Some(outcome_to_wire(outcome, override_reason.as_deref())),
            quorate: *quorate,
            ..wire::ConferenceOutcomeRecorded::default()
        }
        .into(),
        Event::CoreGroupMet { held_on } => wire::CoreGroupMet {
            held_on: Some(validate::to_wire_date(*held_on)),
            ..wire::CoreGroupMet::default()
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::codes::PlanEndReason;

    #[test]
    fn every_event_taken_to_the_wire_and_back_is_itself() {
        let day = Date::from_ymd(2026, 1, 20).expect("a date");
        let gp = InviteeKey {
            role: InviteeRole::Gp,
            organisation: Some(OdsCode::parse("Y99001").expect("an ODS code")),
        };
        let parent = InviteeKey {
            role: InviteeRole::Parent,
            organisation: None,
        };
        let mut events = vec![
            Event::Scheduled { on: day },
            Event::Rearranged {
                on: day,
                reason: "chair unwell".into(),
            },
            Event::Cancelled {
                reason: "chair unwell".into(),
            },
            Event::Withdrawn {
                reason: "plan ended".into(),
            },
            Event::InvitationsUpdated {
                added: vec![gp.clone()],
                removed: vec![parent.clone()],
            },
            Event::ReportReceived {
                invitee: gp.clone(),
            },
            Event::AttendanceRecorded {
                held_on: day,
                present: vec![gp.clone(), parent.clone()],
            },
        ];
        for kind in [
            ConferenceKind::Initial,
            ConferenceKind::Review,
            ConferenceKind::TransferIn,
        ] {
            events.push(Event::Requested {
                kind,
                due: day,
                invitees: vec![parent.clone(), gp.clone()],
            });
        }
        for response in [
            InviteResponse::Attending,
            InviteResponse::SendingReport,
            InviteResponse::Declined,
        ] {
            events.push(Event::InviteReplied {
                invitee: gp.clone(),
                response,
            });
        }
        for (outcome, override_reason) in [
            (Outcome::Initial { plan: None }, None),
            (
                Outcome::Initial {
                    plan: Some(AbuseCategory::Neglect),
                },
                Some("police could not attend".to_owned()),
            ),
            (Outcome::Review(ReviewDecision::Continue), None),
            (
                Outcome::Review(ReviewDecision::ChangeCategory(AbuseCategory::Emotional)),
                None,
            ),
            (
                Outcome::Review(ReviewDecision::End {
                    reason: PlanEndReason::Other,
                    detail: "moved to a family placement".into(),
                }),
                None,
            ),
        ] {
            events.push(Event::OutcomeRecorded {
                outcome,
                quorate: override_reason.is_none(),
                override_reason,
            });
        }
        events.push(Event::CoreGroupMet { held_on: day });
        for event in events {
            assert_eq!(
                to_domain(&to_wire(&event)),
                Ok(Some(event.clone())),
                "{event:?}"
            );
        }
    }
}
