//! Conference wire types to domain values and back.

use contract::common::v1::AbuseCategory as WireCategory;
use contract::conference::v1 as wire;
use domain::OdsCode;
use domain::codes::{AbuseCategory, ConferenceKind, InviteResponse};
use domain::conference::{InviteeKey, InviteeRole, Outcome, ReviewDecision};
use service_core::reject::invalid;
use tonic::Status;

pub fn kind(value: i32) -> Result<ConferenceKind, Status> {
    match service_core::validate::known_enum::<wire::ConferenceKind>("kind", value)? {
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
    let role = service_core::validate::known_enum::<wire::InviteeRole>(field, value)?;
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
    match service_core::validate::known_enum::<wire::InviteResponse>("response", value)? {
        wire::InviteResponse::Attending => Ok(InviteResponse::Attending),
        wire::InviteResponse::SendingReport => Ok(InviteResponse::SendingReport),
        wire::InviteResponse::Declined => Ok(InviteResponse::Declined),
        wire::InviteResponse::Unspecified => Err(invalid("response", "is required")),
    }
}

pub fn category(field: &str, value: i32) -> Result<AbuseCategory, Status> {
    match service_core::validate::known_enum::<WireCategory>(field, value)? {
        WireCategory::Neglect => Ok(AbuseCategory::Neglect),
        WireCategory::Physical => Ok(AbuseCategory::Physical),
        WireCategory::Sexual => Ok(AbuseCategory::Sexual),
        WireCategory::Emotional => Ok(AbuseCategory::Emotional),
        WireCategory::Multiple => Ok(AbuseCategory::Multiple),
        WireCategory::Unspecified => Err(invalid(field, "is required")),
    }
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
            Some(wire::review_outcome::Decision::EndReason(reason)) => {
                Ok(Outcome::Review(ReviewDecision::End {
                    reason: reason.clone(),
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
