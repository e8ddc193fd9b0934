//! The codes every service shares (abuse categories, plan end reasons), as
//! the wire and the domain each spell them, each way, written once.

use contract::common::v1 as wire;
use domain::codes::{AbuseCategory, PlanEndReason};

/// A wire category as the domain's; `None` for unspecified or unknown.
pub fn category(value: i32) -> Option<AbuseCategory> {
    match wire::AbuseCategory::try_from(value).ok()? {
        wire::AbuseCategory::Neglect => Some(AbuseCategory::Neglect),
        wire::AbuseCategory::Physical => Some(AbuseCategory::Physical),
        wire::AbuseCategory::Sexual => Some(AbuseCategory::Sexual),
        wire::AbuseCategory::Emotional => Some(AbuseCategory::Emotional),
        wire::AbuseCategory::Multiple => Some(AbuseCategory::Multiple),
        wire::AbuseCategory::Unspecified => None,
    }
}

pub fn category_to_wire(category: AbuseCategory) -> wire::AbuseCategory {
    match category {
        AbuseCategory::Neglect => wire::AbuseCategory::Neglect,
        AbuseCategory::Physical => wire::AbuseCategory::Physical,
        AbuseCategory::Sexual => wire::AbuseCategory::Sexual,
        AbuseCategory::Emotional => wire::AbuseCategory::Emotional,
        AbuseCategory::Multiple => wire::AbuseCategory::Multiple,
    }
}

/// A wire end reason as the domain's; `None` for unspecified or unknown,
/// and for a birth, which is not an end the domain records (the plan
/// follows the baby).
pub fn end_reason(value: i32) -> Option<PlanEndReason> {
    match wire::PlanEndReason::try_from(value).ok()? {
        wire::PlanEndReason::NoLongerAtRisk => Some(PlanEndReason::NoLongerAtRisk),
        wire::PlanEndReason::SteppedDownToChildInNeed => {
            Some(PlanEndReason::SteppedDownToChildInNeed)
        }
        wire::PlanEndReason::TransferredOut => Some(PlanEndReason::TransferredOut),
        wire::PlanEndReason::TurnedEighteen => Some(PlanEndReason::TurnedEighteen),
        wire::PlanEndReason::LeftTheCountry => Some(PlanEndReason::LeftTheCountry),
        wire::PlanEndReason::Died => Some(PlanEndReason::Died),
        wire::PlanEndReason::Other => Some(PlanEndReason::Other),
        wire::PlanEndReason::Born | wire::PlanEndReason::Unspecified => None,
    }
}

pub fn end_reason_to_wire(reason: PlanEndReason) -> wire::PlanEndReason {
    match reason {
        PlanEndReason::NoLongerAtRisk => wire::PlanEndReason::NoLongerAtRisk,
        PlanEndReason::SteppedDownToChildInNeed => wire::PlanEndReason::SteppedDownToChildInNeed,
        PlanEndReason::TransferredOut => wire::PlanEndReason::TransferredOut,
        PlanEndReason::TurnedEighteen => wire::PlanEndReason::TurnedEighteen,
        PlanEndReason::LeftTheCountry => wire::PlanEndReason::LeftTheCountry,
        PlanEndReason::Died => wire::PlanEndReason::Died,
        PlanEndReason::Other => wire::PlanEndReason::Other,
    }
}
