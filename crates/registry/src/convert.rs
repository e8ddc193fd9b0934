//! The registry's wire and domain values, each way: plan types, end
//! reasons, categories, NHS numbers, and a new plan's first event.

use contract::common::v1::Organisation;
use contract::registry::v1 as wire;
use domain::NhsNumber;
use domain::codes::{PlanEndReason, PlanType};
use domain::plan::Plan;
use eventlog::EventId;
use service_core::reject::{from_domain, invalid};
use service_core::validate;
use tonic::Status;

pub fn plan_type(value: i32) -> Option<PlanType> {
    match wire::PlanType::try_from(value).ok()? {
        wire::PlanType::ChildProtection => Some(PlanType::ChildProtection),
        wire::PlanType::LookedAfter => Some(PlanType::LookedAfter),
        wire::PlanType::Unborn => Some(PlanType::Unborn),
        wire::PlanType::Unspecified => None,
    }
}

pub fn end_reason(value: i32) -> PlanEndReason {
    match wire::PlanEndReason::try_from(value).unwrap_or_default() {
        wire::PlanEndReason::NoLongerAtRisk => PlanEndReason::NoLongerAtRisk,
        wire::PlanEndReason::SteppedDownToChildInNeed => PlanEndReason::SteppedDownToChildInNeed,
        wire::PlanEndReason::TransferredOut => PlanEndReason::TransferredOut,
        wire::PlanEndReason::TurnedEighteen => PlanEndReason::TurnedEighteen,
        wire::PlanEndReason::LeftTheCountry => PlanEndReason::LeftTheCountry,
        wire::PlanEndReason::Died => PlanEndReason::Died,
        _ => PlanEndReason::Other,
    }
}

pub fn category(value: i32) -> Option<domain::codes::AbuseCategory> {
    use contract::common::v1::AbuseCategory as Wire;
    use domain::codes::AbuseCategory;
    match Wire::try_from(value).ok()? {
        Wire::Neglect => Some(AbuseCategory::Neglect),
        Wire::Physical => Some(AbuseCategory::Physical),
        Wire::Sexual => Some(AbuseCategory::Sexual),
        Wire::Emotional => Some(AbuseCategory::Emotional),
        Wire::Multiple => Some(AbuseCategory::Multiple),
        Wire::Unspecified => None,
    }
}

pub fn wire_nhs(number: NhsNumber) -> Option<contract::common::v1::NhsNumber> {
    Some(contract::common::v1::NhsNumber {
        value: number.to_string(),
    })
}

/// Checks a new plan with the domain and builds its first event.
pub fn started(
    plan_type: PlanType,
    wire_type: wire::PlanType,
    child: NhsNumber,
    category: i32,
    start: Option<&contract::common::v1::Date>,
    local_authority: Option<&Organisation>,
    lead_social_worker: Option<contract::common::v1::ContactDetails>,
) -> Result<wire::PlanStarted, Status> {
    let start_date = validate::date("start_date", start)?;
    let local_authority = validate::organisation("local_authority", local_authority)?;
    let domain_category = if category == 0 {
        None
    } else {
        Some(
            self::category(category)
                .ok_or_else(|| invalid("category", format!("unknown value {category}")))?,
        )
    };
    Plan::start(plan_type, child, domain_category, start_date).map_err(from_domain)?;
    Ok(wire::PlanStarted {
        plan_id: EventId::new().to_string(),
        r#type: wire_type.into(),
        child_nhs_number: wire_nhs(child),
        category,
        start_date: Some(validate::to_wire_date(start_date)),
        local_authority: Some(local_authority),
        lead_social_worker,
        ..wire::PlanStarted::default()
    })
}
