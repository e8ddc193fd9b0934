//! The registry's views: every plan (current and past) by child, the last
//! accesses to each child's record, local authorities' contact numbers,
//! and each child's multi-agency chronology. Plans, accesses and contacts
//! come from the registry's own log; the chronology from every producer.

use std::collections::{HashMap, VecDeque};

use contract::common::v1::Organisation;
use contract::registry::v1 as wire;
use domain::NhsNumber;
use domain::codes::{PlanEndReason, PlanType};
use domain::plan::{Event, Plan};
use eventlog::RecordedEvent;
use prost::{Message, Name};
use service_core::validate;

use crate::chronology;

/// How many accesses a lookup shows, as CP-IS does.
pub const RECENT_ACCESSES: usize = 25;

#[derive(Debug, Clone)]
pub struct PlanRecord {
    pub aggregate: Plan,
    pub view: wire::Plan,
    pub local_authority: Organisation,
    pub care_team: Vec<Organisation>,
    pub version: u64,
}

#[derive(Debug, Default)]
pub struct Projection {
    pub plans: HashMap<String, PlanRecord>,
    /// Plan ids by NHS number: the child's, an unborn plan's mother's, and
    /// the baby's once linked.
    pub by_child: HashMap<NhsNumber, Vec<String>>,
    pub accesses: HashMap<NhsNumber, VecDeque<wire::Access>>,
    pub contacts: HashMap<String, wire::LocalAuthorityContacts>,
    pub chronology: chronology::Chronology,
}

fn decode<M: Message + Default>(payload: &[u8], position: u64) -> Result<M, String> {
    M::decode(payload).map_err(|error| format!("position {position}: {error}"))
}

fn nhs(value: Option<&contract::common::v1::NhsNumber>) -> Result<NhsNumber, String> {
    validate::nhs_number("nhs_number", value).map_err(|status| status.message().to_owned())
}

fn date(value: Option<&contract::common::v1::Date>) -> Result<domain::date::Date, String> {
    validate::date("date", value).map_err(|status| status.message().to_owned())
}

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

impl Projection {
    /// Applies one event of the registry's own log.
    pub fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let envelope = event.envelope().map_err(|error| error.to_string())?;
        let (content, payload, position) = (
            envelope.content_type.as_str(),
            envelope.payload.as_slice(),
            event.position(),
        );
        let version = envelope.stream_version;
        if content == wire::PlanStarted::full_name() {
            let started: wire::PlanStarted = decode(payload, position)?;
            let child = nhs(started.child_nhs_number.as_ref())?;
            let kind = plan_type(started.r#type).ok_or("plan without a type")?;
            let start = date(started.start_date.as_ref())?;
            let aggregate = Plan::from_events(&[Event::Started {
                plan_type: kind,
                nhs_number: child,
                category: category(started.category),
                start_date: start,
            }])
            .ok_or("a start makes a plan")?;
            let local_authority = started.local_authority.clone().unwrap_or_default();
            let view = wire::Plan {
                plan_id: started.plan_id.clone(),
                r#type: started.r#type,
                category: started.category,
                start_date: started.start_date,
                lead_social_worker: started.lead_social_worker,
                expected_date_of_delivery: started.expected_date_of_delivery,
                child_nhs_number: started.child_nhs_number,
                ..wire::Plan::default()
            };
            self.by_child
                .entry(child)
                .or_default()
                .push(started.plan_id.clone());
            self.plans.insert(
                started.plan_id,
                PlanRecord {
                    aggregate,
                    view,
                    local_authority,
                    care_team: started.care_team,
                    version,
                },
            );
        } else if content == wire::PlanCategoryChanged::full_name() {
            let changed: wire::PlanCategoryChanged = decode(payload, position)?;
            let record = self.plan(&changed.plan_id)?;
            let category = category(changed.category).ok_or("change to no category")?;
            record.aggregate.apply(&Event::CategoryChanged {
                category,
                changed_on: date(changed.changed_on.as_ref())?,
            });
            record.view.category = changed.category;
            record.version = version;
        } else if content == wire::PlanEnded::full_name() {
            let ended: wire::PlanEnded = decode(payload, position)?;
            let record = self.plan(&ended.plan_id)?;
            record.aggregate.apply(&Event::Ended {
                end_date: date(ended.end_date.as_ref())?,
                reason: end_reason(ended.reason),
            });
            record.view.end_date = ended.end_date;
            record.view.end_reason = ended.reason;
            record.version = version;
        } else if content == wire::BirthLinked::full_name() {
            let linked: wire::BirthLinked = decode(payload, position)?;
            let baby = nhs(linked.baby_nhs_number.as_ref())?;
            let record = self.plan(&linked.plan_id)?;
            record.aggregate.apply(&Event::BirthLinked {
                baby,
                born_on: date(linked.born_on.as_ref())?,
            });
            record.version = version;
            self.by_child.entry(baby).or_default().push(linked.plan_id);
        } else if content == wire::ChildLookedUp::full_name() {
            let looked: wire::ChildLookedUp = decode(payload, position)?;
            let child = nhs(looked.nhs_number.as_ref())?;
            let caller = looked.caller.unwrap_or_default();
            let accesses = self.accesses.entry(child).or_default();
            accesses.push_front(wire::Access {
                at: envelope.recorded_at,
                organisation: caller.organisation,
                care_setting: caller.care_setting,
                role: caller.role,
                user_display_name: caller.display_name,
                purpose: looked.purpose,
            });
            accesses.truncate(RECENT_ACCESSES);
        } else if content == wire::LocalAuthorityContactsSet::full_name() {
            let set: wire::LocalAuthorityContactsSet = decode(payload, position)?;
            let contacts = set.contacts.ok_or("contacts missing")?;
            let ods = contacts
                .local_authority
                .as_ref()
                .map(|la| la.ods_code.clone())
                .unwrap_or_default();
            self.contacts.insert(ods, contacts);
        } else {
            tracing::warn!(content_type = content, "skipping an event of unknown type");
        }
        Ok(())
    }

    fn plan(&mut self, plan_id: &str) -> Result<&mut PlanRecord, String> {
        self.plans
            .get_mut(plan_id)
            .ok_or_else(|| format!("event for unknown plan {plan_id}"))
    }

    /// The plans held against an NHS number.
    pub fn plans_of(&self, child: &NhsNumber) -> impl Iterator<Item = &PlanRecord> {
        self.by_child
            .get(child)
            .into_iter()
            .flatten()
            .filter_map(|plan_id| self.plans.get(plan_id))
    }

    /// How to reach the local authority that owns a plan.
    pub fn owner(&self, local_authority: &Organisation) -> wire::LocalAuthorityContacts {
        self.contacts
            .get(&local_authority.ods_code)
            .cloned()
            .unwrap_or_else(|| wire::LocalAuthorityContacts {
                local_authority: Some(local_authority.clone()),
                ..Default::default()
            })
    }
}
