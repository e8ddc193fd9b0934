//! The registry's wire and domain values, each way: plan types, end
//! reasons, categories, NHS numbers, and its plan events (`to_domain`,
//! what the projection applies to a plan; `to_wire`, the payload of what a
//! plan decided, which the service completes with the plan's id, owner
//! and care team). The two agree: an event taken to the wire and back is
//! itself (tested).

use contract::common::v1::Organisation;
use contract::records::RegistryEvent;
use contract::registry::v1 as wire;
use domain::codes::PlanType;
use domain::date::Date;
use domain::plan::{Event, Plan};
use domain::{ChildId, NhsNumber};
use eventlog::EventId;
pub use service_core::codes::{category, category_to_wire, end_reason, end_reason_to_wire};
use service_core::reject::{from_domain, internal, invalid};
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

pub fn wire_nhs(number: NhsNumber) -> Option<contract::common::v1::NhsNumber> {
    Some(contract::common::v1::NhsNumber {
        value: number.to_string(),
    })
}

pub fn plan_type_to_wire(plan_type: PlanType) -> wire::PlanType {
    match plan_type {
        PlanType::ChildProtection => wire::PlanType::ChildProtection,
        PlanType::LookedAfter => wire::PlanType::LookedAfter,
        PlanType::Unborn => wire::PlanType::Unborn,
    }
}

/// A wire NHS number as the domain's, or why not, naming `field`.
pub(crate) fn nhs(
    field: &str,
    value: Option<&contract::common::v1::NhsNumber>,
) -> Result<NhsNumber, String> {
    validate::nhs_number(field, value).map_err(|status| status.message().to_owned())
}

/// The child a plan event is about: an NHS number, or a council's local
/// identifier for a child without one.
pub(crate) fn child(
    nhs: Option<&contract::common::v1::NhsNumber>,
    local: Option<&contract::common::v1::LocalChildId>,
) -> Result<ChildId, String> {
    validate::child_id("child_nhs_number", nhs, "child_local_id", local)
        .map_err(|status| status.message().to_owned())
}

/// A wire date as the domain's, or why not, naming `field`.
pub(crate) fn date(
    field: &str,
    value: Option<&contract::common::v1::Date>,
) -> Result<Date, String> {
    validate::date(field, value).map_err(|status| status.message().to_owned())
}

/// What a stored event means to a plan; `None` for what is not a plan's
/// (a lookup, contact numbers, a quarantine record).
pub fn to_domain(event: &RegistryEvent) -> Result<Option<Event>, String> {
    Ok(Some(match event {
        RegistryEvent::PlanStarted(started) => Event::Started {
            plan_type: plan_type(started.r#type).ok_or("type: a plan needs a type")?,
            child: child(
                started.child_nhs_number.as_ref(),
                started.child_local_id.as_ref(),
            )?,
            category: category(started.category),
            start_date: date("start_date", started.start_date.as_ref())?,
        },
        RegistryEvent::PlanCategoryChanged(changed) => Event::CategoryChanged {
            category: category(changed.category).ok_or("category: is required")?,
            changed_on: date("changed_on", changed.changed_on.as_ref())?,
        },
        RegistryEvent::BirthLinked(linked) => Event::BirthLinked {
            baby: nhs("baby_nhs_number", linked.baby_nhs_number.as_ref())?,
            born_on: date("born_on", linked.born_on.as_ref())?,
        },
        RegistryEvent::PlanEnded(ended) => Event::Ended {
            end_date: date("end_date", ended.end_date.as_ref())?,
            reason: end_reason(ended.reason).ok_or("reason: is required")?,
        },
        RegistryEvent::LeadSocialWorkerAllocated(allocated) => Event::LeadSocialWorkerAllocated {
            allocated_on: date("allocated_on", allocated.allocated_on.as_ref())?,
        },
        RegistryEvent::ChildLookedUp(_)
        | RegistryEvent::NhsNumberLinked(_)
        | RegistryEvent::ContactsSet(_)
        | RegistryEvent::Quarantined(_)
        | RegistryEvent::RecordsRead(_)
        | RegistryEvent::AccessRefused(_) => return Ok(None),
    }))
}

/// The payload of what a plan decided, with the values the domain holds;
/// the service completes it.
pub fn to_wire(event: &Event) -> RegistryEvent {
    match *event {
        Event::Started {
            plan_type,
            ref child,
            category,
            start_date,
        } => {
            let (child_nhs_number, child_local_id) = validate::to_wire_child(child);
            wire::PlanStarted {
                r#type: plan_type_to_wire(plan_type).into(),
                child_nhs_number,
                child_local_id,
                category: category.map_or(0, |category| category_to_wire(category).into()),
                start_date: Some(validate::to_wire_date(start_date)),
                ..wire::PlanStarted::default()
            }
            .into()
        }
        Event::CategoryChanged {
            category,
            changed_on,
        } => wire::PlanCategoryChanged {
            category: category_to_wire(category).into(),
            changed_on: Some(validate::to_wire_date(changed_on)),
            ..wire::PlanCategoryChanged::default()
        }
        .into(),
        Event::BirthLinked { baby, born_on } => wire::BirthLinked {
            baby_nhs_number: wire_nhs(baby),
            born_on: Some(validate::to_wire_date(born_on)),
            ..wire::BirthLinked::default()
        }
        .into(),
        Event::Ended { end_date, reason } => wire::PlanEnded {
            end_date: Some(validate::to_wire_date(end_date)),
            reason: end_reason_to_wire(reason).into(),
            ..wire::PlanEnded::default()
        }
        .into(),
        Event::LeadSocialWorkerAllocated { allocated_on } => wire::LeadSocialWorkerAllocated {
            allocated_on: Some(validate::to_wire_date(allocated_on)),
            ..wire::LeadSocialWorkerAllocated::default()
        }
        .into(),
    }
}

/// Checks a new plan with the domain and builds its first event: what the
/// domain decided, with a fresh plan id, its owner and social worker.
pub fn started(
    plan_type: PlanType,
    child: ChildId,
    category: i32,
    start: Option<&contract::common::v1::Date>,
    local_authority: Option<&Organisation>,
    lead_social_worker: Option<contract::common::v1::ContactDetails>,
) -> Result<wire::PlanStarted, Status> {
    let start_date = validate::date("start_date", start)?;
    let local_authority = validate::organisation("local_authority", local_authority)?;
    validate::issued_by(&child, "child_local_id", &local_authority.ods_code)?;
    let domain_category = if category == 0 {
        None
    } else {
        Some(
            self::category(category)
                .ok_or_else(|| invalid("category", format!("unknown value {category}")))?,
        )
    };
    let change = Plan::start(plan_type, child, domain_category, start_date).map_err(from_domain)?;
    let RegistryEvent::PlanStarted(started) = to_wire(&change) else {
        return Err(internal("starting a plan", "the domain gave another event"));
    };
    Ok(wire::PlanStarted {
        plan_id: EventId::new().to_string(),
        local_authority: Some(local_authority),
        lead_social_worker,
        ..started
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::codes::{AbuseCategory, PlanEndReason};

    #[test]
    fn every_plan_event_taken_to_the_wire_and_back_is_itself() {
        let day = Date::from_ymd(2026, 1, 20).expect("a date");
        let child = NhsNumber::parse("9990000018").expect("a test number");
        let baby = NhsNumber::parse("9990000026").expect("a test number");
        let mut events = vec![Event::BirthLinked { baby, born_on: day }];
        let local = domain::LocalChildId::parse("E09000999", "LCS-7").expect("valid");
        for plan_type in [
            PlanType::ChildProtection,
            PlanType::LookedAfter,
            PlanType::Unborn,
        ] {
            for category in [None, Some(AbuseCategory::Neglect)] {
                for child in [ChildId::Nhs(child), ChildId::Local(local.clone())] {
                    events.push(Event::Started {
                        plan_type,
                        child,
                        category,
                        start_date: day,
                    });
                }
            }
        }
        for category in [
            AbuseCategory::Neglect,
            AbuseCategory::Physical,
            AbuseCategory::Sexual,
            AbuseCategory::Emotional,
            AbuseCategory::Multiple,
        ] {
            events.push(Event::CategoryChanged {
                category,
                changed_on: day,
            });
        }
        for reason in [
            PlanEndReason::NoLongerAtRisk,
            PlanEndReason::SteppedDownToChildInNeed,
            PlanEndReason::TransferredOut,
            PlanEndReason::TurnedEighteen,
            PlanEndReason::LeftTheCountry,
            PlanEndReason::Died,
            PlanEndReason::Other,
        ] {
            events.push(Event::Ended {
                end_date: day,
                reason,
            });
        }
        events.push(Event::LeadSocialWorkerAllocated { allocated_on: day });
        for event in events {
            assert_eq!(
                to_domain(&to_wire(&event)),
                Ok(Some(event.clone())),
                "{event:?}"
            );
        }
    }
}
