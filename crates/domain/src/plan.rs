//! The protection plan aggregate: a child protection plan, looked-after
//! status or unborn plan, from start to end, and what it shows when.

use crate::codes::{AbuseCategory, PlanEndReason, PlanType};
use crate::date::Date;
use crate::error::DomainError;
use crate::ids::{ChildId, NhsNumber};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        plan_type: PlanType,
        /// The child's NHS number or council local id; for an unborn plan
        /// the mother's NHS number.
        child: ChildId,
        category: Option<AbuseCategory>,
        start_date: Date,
    },
    CategoryChanged {
        category: AbuseCategory,
        changed_on: Date,
    },
    BirthLinked {
        baby: NhsNumber,
        born_on: Date,
    },
    Ended {
        end_date: Date,
        reason: PlanEndReason,
    },
    /// Who the lead social worker is from `allocated_on` (their details are
    /// the event's).
    LeadSocialWorkerAllocated {
        allocated_on: Date,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub plan_type: PlanType,
    /// Whom the plan is held under: see `Event::Started`.
    pub child: ChildId,
    /// Set for an unborn plan once the baby is born and linked.
    pub baby: Option<NhsNumber>,
    pub category: Option<AbuseCategory>,
    pub start_date: Date,
    pub end: Option<(Date, PlanEndReason)>,
}

impl Plan {
    /// Checks a new plan; the first event of its stream.
    pub fn start(
        plan_type: PlanType,
        child: impl Into<ChildId>,
        category: Option<AbuseCategory>,
        start_date: Date,
    ) -> Result<Event, DomainError> {
        let child = child.into();
        if plan_type == PlanType::Unborn && child.nhs_number().is_none() {
            return Err(DomainError::invalid(
                "mother_nhs_number",
                "an unborn plan is held on the mother's NHS number",
            ));
        }
        match (plan_type, category) {
            (PlanType::ChildProtection | PlanType::Unborn, None) => {
                return Err(DomainError::invalid(
                    "category",
                    "a child protection plan is made under a category",
                ));
            }
            (PlanType::LookedAfter, Some(_)) => {
                return Err(DomainError::invalid(
                    "category",
                    "looked-after status has no category of abuse",
                ));
            }
            _ => {}
        }
        Ok(Event::Started {
            plan_type,
            child,
            category,
            start_date,
        })
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Self> {
        let mut events = events.into_iter();
        let Some(Event::Started {
            plan_type,
            child,
            category,
            start_date,
        }) = events.next()
        else {
            return None;
        };
        let mut plan = Plan {
            plan_type: *plan_type,
            child: child.clone(),
            baby: None,
            category: *category,
            start_date: *start_date,
            end: None,
        };
        for event in events {
            plan.apply(event);
        }
        Some(plan)
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started { .. } | Event::LeadSocialWorkerAllocated { .. } => {}
            Event::CategoryChanged { category, .. } => self.category = Some(*category),
            Event::BirthLinked { baby, .. } => self.baby = Some(*baby),
            Event::Ended { end_date, reason } => self.end = Some((*end_date, *reason)),
        }
    }

    fn active(&self) -> Result<(), DomainError> {
        match self.end {
            Some((end_date, _)) => Err(DomainError::precondition(
                "plan",
                &format!("it ended on {end_date}"),
            )),
            None => Ok(()),
        }
    }

    pub fn allocate_lead_social_worker(&self, allocated_on: Date) -> Result<Event, DomainError> {
        self.active()?;
        if allocated_on < self.start_date {
            return Err(DomainError::invalid(
                "allocated_on",
                "is before the plan started",
            ));
        }
        Ok(Event::LeadSocialWorkerAllocated { allocated_on })
    }

    pub fn end(&self, end_date: Date, reason: PlanEndReason) -> Result<Event, DomainError> {
        self.active()?;
        if end_date < self.start_date {
            return Err(DomainError::invalid(
                "end_date",
                "is before the plan started",
            ));
        }
        Ok(Event::Ended { end_date, reason })
    }

    pub fn change_category(
        &self,
        category: AbuseCategory,
        changed_on: Date,
    ) -> Result<Event, DomainError> {
        self.active()?;
        if self.plan_type == PlanType::LookedAfter {
            return Err(DomainError::invalid(
                "category",
                "looked-after status has no category of abuse",
            ));
        }
        Ok(Event::CategoryChanged {
            category,
            changed_on,
        })
    }

    pub fn link_birth(&self, baby: NhsNumber, born_on: Date) -> Result<Event, DomainError> {
        self.active()?;
        if self.plan_type != PlanType::Unborn {
            return Err(DomainError::precondition(
                "plan",
                "only an unborn plan is linked to a birth",
            ));
        }
        if self.baby.is_some() {
            return Err(DomainError::precondition(
                "plan",
                "the birth is already linked",
            ));
        }
        if self.child == ChildId::Nhs(baby) {
            return Err(DomainError::invalid(
                "baby_nhs_number",
                "is the mother's NHS number",
            ));
        }
        Ok(Event::BirthLinked { baby, born_on })
    }

    /// Was the plan in force on `date`? (Its start date to the day before
    /// its end date.)
    pub fn in_force_on(&self, date: Date) -> bool {
        date >= self.start_date && self.end.is_none_or(|(end_date, _)| date < end_date)
    }

    /// Is the plan shown on `date`: in force, or ended within the window
    /// (CP-IS shows ended plans for a while, then they disappear from
    /// lookups; history keeps them).
    pub fn shown_on(&self, date: Date, visibility_months: u32) -> bool {
        date >= self.start_date
            && self
                .end
                .is_none_or(|(end_date, _)| date < end_date.add_months(visibility_months))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    #[test]
    fn a_plan_ends_once_and_stays_visible_for_the_window() {
        let child = NhsNumber::test_number(1);
        let started = Plan::start(
            PlanType::ChildProtection,
            child,
            Some(AbuseCategory::Neglect),
            date("2026-01-15"),
        )
        .expect("start");
        let mut plan = Plan::from_events(&[started]).expect("plan");
        assert!(
            plan.end(date("2026-01-14"), PlanEndReason::NoLongerAtRisk)
                .is_err()
        );
        let ended = plan
            .end(date("2026-09-30"), PlanEndReason::SteppedDownToChildInNeed)
            .expect("end");
        plan.apply(&ended);
        assert!(matches!(
            plan.end(date("2026-10-01"), PlanEndReason::Other),
            Err(DomainError::FailedPrecondition { .. })
        ));
        assert!(
            plan.change_category(AbuseCategory::Physical, date("2026-10-01"))
                .is_err()
        );
        assert!(!plan.in_force_on(date("2026-01-14")));
        assert!(plan.in_force_on(date("2026-01-15")));
        assert!(plan.in_force_on(date("2026-09-29")));
        assert!(!plan.in_force_on(date("2026-09-30")));
        assert!(plan.shown_on(date("2027-09-29"), 12));
        assert!(!plan.shown_on(date("2027-09-30"), 12));
    }

    #[test]
    fn categories_fit_plan_types() {
        let child = NhsNumber::test_number(2);
        let on = date("2026-01-15");
        assert!(Plan::start(PlanType::ChildProtection, child, None, on).is_err());
        assert!(Plan::start(PlanType::Unborn, child, None, on).is_err());
        assert!(
            Plan::start(
                PlanType::LookedAfter,
                child,
                Some(AbuseCategory::Neglect),
                on
            )
            .is_err()
        );
        assert!(Plan::start(PlanType::LookedAfter, child, None, on).is_ok());
        let local = crate::ids::LocalChildId::parse("E09000999", "LCS-1").expect("valid");
        assert!(
            Plan::start(
                PlanType::ChildProtection,
                ChildId::Local(local.clone()),
                Some(AbuseCategory::Neglect),
                on
            )
            .is_ok()
        );
        assert!(
            Plan::start(
                PlanType::Unborn,
                ChildId::Local(local),
                Some(AbuseCategory::Neglect),
                on
            )
            .is_err()
        );
    }

    #[test]
    fn an_unborn_plan_is_linked_to_the_birth_once() {
        let mother = NhsNumber::test_number(3);
        let baby = NhsNumber::test_number(4);
        let started = Plan::start(
            PlanType::Unborn,
            mother,
            Some(AbuseCategory::Emotional),
            date("2026-03-01"),
        )
        .expect("start");
        let mut plan = Plan::from_events(&[started]).expect("plan");
        assert!(plan.link_birth(mother, date("2026-05-01")).is_err());
        let linked = plan.link_birth(baby, date("2026-05-01")).expect("link");
        plan.apply(&linked);
        assert_eq!(plan.baby, Some(baby));
        assert!(plan.link_birth(baby, date("2026-05-01")).is_err());
    }
}
