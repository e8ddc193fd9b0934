//! Each child's chronology: every event about them, from every service, in
//! one readable list, so a case review never again lacks one.

use std::collections::HashMap;

use contract::conference::v1 as conference;
use contract::events::v1::actor;
use contract::records::{AnyEvent, ConferenceEvent, ReferralEvent, RegistryEvent};
use contract::referral::v1 as referral;
use contract::registry::v1 as wire;
use domain::{ChildId, LocalChildId, NhsNumber};
use service_core::follow::Record;

#[derive(Debug, Default)]
pub struct Chronology {
    entries: HashMap<ChildId, Vec<wire::ChronologyEntry>>,
    /// Whom each child's record concerns, from the referrals and
    /// conferences about them: who may read their chronology.
    parties: HashMap<ChildId, ChildParties>,
    /// Conference events name the conference, not the child.
    conference_children: HashMap<String, ChildId>,
    /// Local identifiers linked to NHS numbers (`ChildNhsNumberLinked`):
    /// an event naming one is the number's. The one record of the links,
    /// which the projection asks too.
    links: HashMap<LocalChildId, NhsNumber>,
    /// The local identifiers linked to each NHS number.
    linked: HashMap<NhsNumber, Vec<LocalChildId>>,
    /// On a read replica, the primary's plan events by plan: what the
    /// primary reads from its plan streams. Some name no child (a category
    /// change), and an unborn plan's belong to mother and baby alike.
    plan_entries: HashMap<String, Vec<wire::ChronologyEntry>>,
}

/// The plan a plan event belongs to, if it is one.
/// The local authorities a child was referred to or conferenced by, and the
/// police forces in a strategy discussion that decided on a joint section
/// 47 enquiry about them (ODS codes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildParties {
    pub owners: std::collections::BTreeSet<String>,
    pub joint_enquiry: std::collections::BTreeSet<String>,
}

pub fn plan_of(event: &RegistryEvent) -> Option<&str> {
    match event {
        RegistryEvent::PlanStarted(e) => Some(&e.plan_id),
        RegistryEvent::PlanCategoryChanged(e) => Some(&e.plan_id),
        RegistryEvent::PlanEnded(e) => Some(&e.plan_id),
        RegistryEvent::BirthLinked(e) => Some(&e.plan_id),
        RegistryEvent::LeadSocialWorkerAllocated(e) => Some(&e.plan_id),
        _ => None,
    }
}

fn child_of(number: Option<&contract::common::v1::NhsNumber>) -> Option<ChildId> {
    service_core::validate::stored_child(number, None)
}

/// The child a plan or conference event names: its NHS number, or its
/// local identifier.
fn either(
    number: Option<&contract::common::v1::NhsNumber>,
    local: Option<&contract::common::v1::LocalChildId>,
) -> Option<ChildId> {
    service_core::validate::stored_child(number, local)
}

fn referral_child(child: Option<&referral::Child>) -> Option<ChildId> {
    let child = child?;
    either(child.nhs_number.as_ref(), child.local_id.as_ref())
        .or_else(|| child_of(child.mother_nhs_number.as_ref()))
}

fn date(value: Option<&contract::common::v1::Date>) -> String {
    value.map_or_else(|| "no date".to_owned(), service_core::validate::iso_date)
}

/// A police risk assessment, as a chronology line ends: its rating and
/// reference.
fn risk(assessment: Option<&referral::PoliceRiskAssessment>) -> String {
    assessment.map_or_else(String::new, |assessment| {
        format!(
            "; police risk assessment: {} ({})",
            spoken(assessment.overall_rating().as_str_name(), "RISK_RATING_"),
            assessment.reference
        )
    })
}

/// A wire name as a person reads it: `INVITEE_ROLE_SOCIAL_CARE` is
/// "social care".
fn spoken(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

fn role_name(role: i32) -> &'static str {
    conference::InviteeRole::try_from(role).map_or("unknown", |role| role.as_str_name())
}

/// Why a plan ends, as a person reads it: the reason, and what was said.
fn ending_of(reason: i32, detail: &str) -> String {
    let reason = service_core::codes::end_reason(reason).map_or("unknown reason", |r| r.label());
    match detail.trim() {
        "" => reason.to_owned(),
        detail => format!("{reason} ({detail})"),
    }
}

fn category(value: i32) -> String {
    contract::common::v1::AbuseCategory::try_from(value)
        .map(|category| spoken(category.as_str_name(), "ABUSE_CATEGORY_"))
        .unwrap_or_else(|_| "unknown".into())
}

impl Chronology {
    /// Records another producer's event if it is about a child; returns
    /// whether it was. The registry's own events are not held here: they
    /// are read from its log when a chronology is asked for.
    pub fn add(&mut self, record: Record<'_>, event: &AnyEvent) -> bool {
        if let AnyEvent::Conference(ConferenceEvent::Requested(requested)) = event
            && let Some(child) = either(
                requested.child_nhs_number.as_ref(),
                requested.child_local_id.as_ref(),
            )
        {
            self.conference_children
                .insert(requested.conference_id.clone(), child);
        }
        self.note_parties(event);
        let Some((Some(child), entry)) = self.entry(record, event) else {
            return false;
        };
        let child = self.resolve(child);
        self.entries.entry(child).or_default().push(entry);
        true
    }

    /// Whom a record naming `child` is held under now: a local identifier
    /// linked to an NHS number is that number.
    pub fn resolve(&self, child: ChildId) -> ChildId {
        match &child {
            ChildId::Local(local) => self
                .links
                .get(local)
                .map_or(child, |number| ChildId::Nhs(*number)),
            ChildId::Nhs(_) => child,
        }
    }

    /// A local identifier linked to an NHS number: what was held under it
    /// is the number's, and so is what comes later naming it.
    pub fn link(&mut self, local: LocalChildId, number: NhsNumber) {
        self.links.insert(local.clone(), number);
        self.linked.entry(number).or_default().push(local.clone());
        let from = ChildId::Local(local);
        let to = ChildId::Nhs(number);
        if let Some(entries) = self.entries.remove(&from) {
            self.entries.entry(to.clone()).or_default().extend(entries);
        }
        if let Some(parties) = self.parties.remove(&from) {
            let known = self.parties.entry(to.clone()).or_default();
            known.owners.extend(parties.owners);
            known.joint_enquiry.extend(parties.joint_enquiry);
        }
        for child in self.conference_children.values_mut() {
            if *child == from {
                *child = to.clone();
            }
        }
    }

    /// The entry an event makes and the child it names, if it names one;
    /// `None` if it is not an event a chronology shows.
    pub fn entry(
        &self,
        record: Record<'_>,
        event: &AnyEvent,
    ) -> Option<(Option<ChildId>, wire::ChronologyEntry)> {
        let (child, summary) = self.describe(event)?;
        let envelope = record.envelope;
        let actor = match envelope
            .actor
            .as_ref()
            .and_then(|actor| actor.kind.as_ref())
        {
            Some(actor::Kind::Person(person)) => {
                let organisation = person
                    .organisation
                    .as_ref()
                    .map(|o| o.name.as_str())
                    .unwrap_or_default();
                format!("{} ({organisation})", person.display_name)
            }
            Some(actor::Kind::System(system)) => system.clone(),
            None => String::new(),
        };
        Some((
            child,
            wire::ChronologyEntry {
                occurred_at: envelope.occurred_at,
                recorded_at: envelope.recorded_at,
                log: record.producer.to_owned(),
                position: record.position,
                content_type: envelope.content_type.clone(),
                summary,
                actor,
            },
        ))
    }

    /// Records another registry pod's event: a plan event under its plan,
    /// anything else (a lookup) as [`Chronology::add`] does.
    /// Who a referral or conference makes a party to its child's record.
    fn note_parties(&mut self, event: &AnyEvent) {
        let ods = |organisation: Option<&contract::common::v1::Organisation>| {
            organisation.map(|organisation| organisation.ods_code.clone())
        };
        let (child, owner, police) = match event {
            AnyEvent::Referral(referral) => match referral.as_ref() {
                ReferralEvent::Submitted(submitted) => (
                    referral_child(submitted.child.as_ref()),
                    ods(submitted.local_authority.as_ref()),
                    Vec::new(),
                ),
                ReferralEvent::InformationShared(shared) => (
                    referral_child(shared.child.as_ref()),
                    ods(shared.local_authority.as_ref()),
                    Vec::new(),
                ),
                ReferralEvent::DomesticAbuseIncidentReported(reported) => (
                    referral_child(reported.child.as_ref()),
                    ods(reported.local_authority.as_ref()),
                    Vec::new(),
                ),
                ReferralEvent::StrategyDiscussionHeld(held) => (
                    referral_child(held.child.as_ref()),
                    ods(held.local_authority.as_ref()),
                    service_core::policy::joint_enquiry_police(&held.discussion).collect(),
                ),
                _ => return,
            },
            AnyEvent::Conference(ConferenceEvent::Requested(requested)) => (
                either(
                    requested.child_nhs_number.as_ref(),
                    requested.child_local_id.as_ref(),
                ),
                ods(requested.local_authority.as_ref()),
                Vec::new(),
            ),
            _ => return,
        };
        let Some(child) = child else {
            return;
        };
        let child = self.resolve(child);
        let parties = self.parties.entry(child).or_default();
        parties.owners.extend(owner);
        parties.joint_enquiry.extend(police);
    }

    /// The NHS number a local identifier is linked to, if it is.
    pub fn linked_to(&self, local: &LocalChildId) -> Option<NhsNumber> {
        self.links.get(local).copied()
    }

    /// The local identifiers linked to an NHS number.
    pub fn local_ids_of(&self, number: &NhsNumber) -> &[LocalChildId] {
        self.linked.get(number).map_or(&[], Vec::as_slice)
    }

    /// Whom `child`'s record concerns, as far as referrals and conferences
    /// say (plans say more: the registry adds their local authorities).
    pub fn parties_of(&self, child: &ChildId) -> ChildParties {
        self.parties
            .get(&self.resolve(child.clone()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn add_from_pod(&mut self, record: Record<'_>, event: RegistryEvent) {
        let plan = plan_of(&event).map(str::to_owned);
        let event = AnyEvent::Registry(event);
        match plan {
            Some(plan) => {
                if let Some((_, entry)) = self.entry(record, &event) {
                    self.plan_entries.entry(plan).or_default().push(entry);
                }
            }
            None => {
                self.add(record, &event);
            }
        }
    }

    /// The other producers' entries about a child, in no particular order.
    pub fn of(&self, child: &ChildId) -> Vec<wire::ChronologyEntry> {
        self.entries
            .get(&self.resolve(child.clone()))
            .cloned()
            .unwrap_or_default()
    }

    /// Another pod's events of a plan, in no particular order.
    pub fn of_plan(&self, plan: &str) -> &[wire::ChronologyEntry] {
        self.plan_entries.get(plan).map_or(&[], Vec::as_slice)
    }
}

/// Puts entries in the order things happened (their effective time), and
/// what happened at the same time in the order it was recorded.
pub fn sort(entries: &mut [wire::ChronologyEntry]) {
    let key = |entry: &wire::ChronologyEntry| {
        let occurred = entry.occurred_at.unwrap_or_default();
        let recorded = entry.recorded_at.unwrap_or_default();
        (
            occurred.seconds,
            occurred.nanos,
            recorded.seconds,
            recorded.nanos,
        )
    };
    entries.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then_with(|| (&a.log, a.position).cmp(&(&b.log, b.position)))
    });
}

impl Chronology {
    /// The child an event is about (if it names one) and what a
    /// chronology says of it; `None` for events a chronology does not show.
    fn describe(&self, event: &AnyEvent) -> Option<(Option<ChildId>, String)> {
        match event {
            AnyEvent::Referral(event) => describe_referral(event),
            AnyEvent::Conference(event) => self.describe_conference(event),
            AnyEvent::Registry(event) => describe_registry(event),
            AnyEvent::Notification(_) | AnyEvent::RecordsRead(_) => None,
        }
    }

    fn describe_conference(&self, event: &ConferenceEvent) -> Option<(Option<ChildId>, String)> {
        let of = |conference_id: &str| self.conference_children.get(conference_id).cloned();
        match event {
            ConferenceEvent::Requested(event) => {
                let child = either(
                    event.child_nhs_number.as_ref(),
                    event.child_local_id.as_ref(),
                )?;
                let kind = conference::ConferenceKind::try_from(event.kind)
                    .map_or("conference", |kind| kind.as_str_name());
                Some((
                    Some(child),
                    format!(
                        "{} requested, due {}",
                        spoken(kind, "CONFERENCE_KIND_") + " conference",
                        date(event.due.as_ref())
                    ),
                ))
            }
            ConferenceEvent::Scheduled(event) => Some((
                Some(of(&event.conference_id)?),
                format!("conference scheduled at {}", event.venue),
            )),
            ConferenceEvent::Rearranged(event) => Some((
                Some(of(&event.conference_id)?),
                format!("conference rearranged: {}", event.reason),
            )),
            ConferenceEvent::CoreGroupMet(event) => Some((
                Some(of(&event.conference_id)?),
                match event.working_days_late {
                    0 => format!(
                        "first core group meeting held on {}",
                        date(event.held_on.as_ref())
                    ),
                    late => format!(
                        "first core group meeting held on {}, {late} working day(s) late",
                        date(event.held_on.as_ref())
                    ),
                },
            )),
            ConferenceEvent::Cancelled(event) => Some((
                Some(of(&event.conference_id)?),
                format!(
                    "conference {}: {}",
                    if event.withdrawn {
                        "withdrawn"
                    } else {
                        "cancelled"
                    },
                    event.reason
                ),
            )),
            ConferenceEvent::OutcomeRecorded(event) => {
                let outcome = match event.outcome.as_ref()?.kind.as_ref()? {
                    conference::outcome::Kind::Initial(initial) if initial.plan => {
                        format!("child protection plan ({})", category(initial.category))
                    }
                    conference::outcome::Kind::Initial(_) => "no plan".to_owned(),
                    conference::outcome::Kind::Review(review) => match review.decision.as_ref()? {
                        conference::review_outcome::Decision::ContinuePlan(_) => {
                            "plan continues".to_owned()
                        }
                        conference::review_outcome::Decision::ChangeCategory(value) => {
                            format!("plan continues as {}", category(*value))
                        }
                        conference::review_outcome::Decision::EndPlan(ending) => {
                            format!("plan ends: {}", ending_of(ending.reason, &ending.detail))
                        }
                    },
                };
                Some((
                    Some(either(
                        event.child_nhs_number.as_ref(),
                        event.child_local_id.as_ref(),
                    )?),
                    format!(
                        "conference held on {}: {outcome}",
                        date(event.held_on.as_ref())
                    ),
                ))
            }
            ConferenceEvent::InviteReplied(event) => Some((
                Some(of(&event.conference_id)?),
                format!(
                    "{} ({}) replied: {}",
                    spoken(role_name(event.role), "INVITEE_ROLE_"),
                    event.organisation_ods_code,
                    spoken(
                        conference::InviteResponse::try_from(event.response)
                            .map_or("unknown", |response| response.as_str_name()),
                        "INVITE_RESPONSE_"
                    )
                ),
            )),
            ConferenceEvent::ReportReceived(event) => Some((
                Some(of(&event.conference_id)?),
                format!(
                    "written report from {} ({}) by {}, {}",
                    spoken(role_name(event.role), "INVITEE_ROLE_"),
                    event.organisation_ods_code,
                    event.author,
                    date(event.written_on.as_ref())
                ),
            )),
            ConferenceEvent::AttendanceRecorded(event) => Some((
                Some(of(&event.conference_id)?),
                format!(
                    "conference held on {}; present: {}",
                    date(event.held_on.as_ref()),
                    event
                        .present
                        .iter()
                        .map(|invitee| match &invitee.organisation {
                            Some(organisation) => format!(
                                "{} ({})",
                                spoken(role_name(invitee.role), "INVITEE_ROLE_"),
                                organisation.ods_code
                            ),
                            None => spoken(role_name(invitee.role), "INVITEE_ROLE_"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => None,
        }
    }
}

fn describe_referral(event: &ReferralEvent) -> Option<(Option<ChildId>, String)> {
    match event {
        ReferralEvent::Submitted(event) => {
            let from = event.referrer.as_ref()?.organisation.as_ref()?.name.clone();
            Some((
                Some(referral_child(event.child.as_ref())?),
                format!(
                    "referral received from {from}: {}{}",
                    category(event.category_of_concern),
                    risk(event.police_risk_assessment.as_ref())
                ),
            ))
        }
        ReferralEvent::Decided(event) => {
            let outcome = referral::ReferralOutcome::try_from(event.outcome).ok()?;
            Some((
                Some(referral_child(event.child.as_ref())?),
                format!(
                    "MASH decision: {} ({}): {}",
                    spoken(outcome.as_str_name(), "REFERRAL_OUTCOME_"),
                    spoken(
                        referral::RagRating::try_from(event.rag_rating)
                            .map_or("unrated", |rag| rag.as_str_name()),
                        "RAG_RATING_"
                    ),
                    event.rationale
                ),
            ))
        }
        ReferralEvent::StrategyDiscussionHeld(event) => {
            let discussion = event.discussion.clone().unwrap_or_default();
            Some((
                Some(referral_child(event.child.as_ref())?),
                format!(
                    "strategy discussion held on {}; section 47 enquiry: {}{}",
                    date(discussion.held_on.as_ref()),
                    if discussion.section_47_enquiry {
                        "yes"
                    } else {
                        "no"
                    },
                    risk(event.police_risk_assessment.as_ref())
                ),
            ))
        }
        ReferralEvent::Section47Concluded(event) => Some((
            Some(referral_child(event.child.as_ref())?),
            format!(
                "section 47 enquiry concluded: {}",
                if event.conference_needed {
                    "conference needed"
                } else {
                    "no conference"
                }
            ),
        )),
        ReferralEvent::AssessmentCompleted(event) => Some((
            Some(referral_child(event.child.as_ref())?),
            match event.late_reason.as_str() {
                "" => format!(
                    "assessment completed on {}",
                    date(event.completed_on.as_ref())
                ),
                why => format!(
                    "assessment completed on {}, {} working day(s) late: {why}",
                    date(event.completed_on.as_ref()),
                    event.working_days_late
                ),
            },
        )),
        ReferralEvent::InformationShared(event) => {
            let from = event
                .shared_by
                .as_ref()?
                .organisation
                .as_ref()?
                .name
                .clone();
            Some((
                Some(referral_child(event.child.as_ref())?),
                format!(
                    "information shared by {from} (no referral): {}{}",
                    event.circumstances,
                    risk(event.police_risk_assessment.as_ref())
                ),
            ))
        }
        ReferralEvent::DomesticAbuseIncidentReported(event) => {
            let from = event
                .reported_by
                .as_ref()?
                .organisation
                .as_ref()?
                .name
                .clone();
            let told = event
                .school
                .as_ref()
                .or(event.local_authority.as_ref())?
                .name
                .clone();
            Some((
                Some(referral_child(event.child.as_ref())?),
                format!(
                    "domestic abuse incident reported by {from} (Operation Encompass, {}): {}, child {}; {told} to know by {}",
                    event.police_reference,
                    event.location,
                    if event.child_present {
                        "present"
                    } else {
                        "not present"
                    },
                    event
                        .due_by
                        .as_ref()
                        .map(|due| service_core::validate::date_of(due).to_string())
                        .unwrap_or_default()
                ),
            ))
        }
        ReferralEvent::Quarantined(_)
        | ReferralEvent::RecordsRead(_)
        | ReferralEvent::AccessRefused(_) => None,
    }
}

fn describe_registry(event: &RegistryEvent) -> Option<(Option<ChildId>, String)> {
    match event {
        RegistryEvent::PlanStarted(event) => Some((
            Some(either(
                event.child_nhs_number.as_ref(),
                event.child_local_id.as_ref(),
            )?),
            format!("plan started on {}", date(event.start_date.as_ref())),
        )),
        RegistryEvent::PlanCategoryChanged(event) => Some((
            None,
            format!(
                "plan category changed to {} on {}",
                category(event.category),
                date(event.changed_on.as_ref())
            ),
        )),
        RegistryEvent::BirthLinked(event) => Some((
            Some(child_of(event.baby_nhs_number.as_ref())?),
            format!(
                "born on {}; the unborn plan now follows the baby",
                date(event.born_on.as_ref())
            ),
        )),
        RegistryEvent::LeadSocialWorkerAllocated(event) => {
            let now = event.lead_social_worker.clone().unwrap_or_default();
            Some((
                Some(either(
                    event.child_nhs_number.as_ref(),
                    event.child_local_id.as_ref(),
                )?),
                match &event.previous {
                    Some(before) => format!(
                        "lead social worker from {}: {} ({}), was {}",
                        date(event.allocated_on.as_ref()),
                        now.name,
                        now.phone,
                        before.name
                    ),
                    None => format!(
                        "lead social worker from {}: {} ({})",
                        date(event.allocated_on.as_ref()),
                        now.name,
                        now.phone
                    ),
                },
            ))
        }
        RegistryEvent::PlanEnded(event) => Some((
            Some(either(
                event.child_nhs_number.as_ref(),
                event.child_local_id.as_ref(),
            )?),
            format!(
                "plan ended on {}: {}",
                date(event.end_date.as_ref()),
                ending_of(event.reason, &event.detail)
            ),
        )),
        RegistryEvent::ChildLookedUp(event) => {
            let caller = event.caller.clone().unwrap_or_default();
            let organisation = caller.organisation.map(|o| o.name).unwrap_or_default();
            Some((
                Some(either(event.nhs_number.as_ref(), event.local_id.as_ref())?),
                format!(
                    "record viewed by {organisation}{}: {}",
                    if event.silent { " (silent)" } else { "" },
                    event.purpose
                ),
            ))
        }
        RegistryEvent::NhsNumberLinked(event) => Some((
            Some(child_of(event.nhs_number.as_ref())?),
            format!(
                "NHS number linked on {} to {}",
                date(event.linked_on.as_ref()),
                event
                    .local_id
                    .as_ref()
                    .map_or_else(String::new, |local| format!(
                        "{} local id {}",
                        local.local_authority_ods_code, local.value
                    ))
            ),
        )),
        RegistryEvent::ContactsSet(_)
        | RegistryEvent::Quarantined(_)
        | RegistryEvent::RecordsRead(_)
        | RegistryEvent::AccessRefused(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use contract::common::v1::{CallerIdentity, NhsNumber as WireNhs, Organisation};
    use contract::events::v1::EventEnvelope;
    use contract::notification::v1 as notification;
    use contract::records::NotificationEvent;

    use super::*;

    const CHILD: &str = "9990000018";

    fn number(value: &str) -> Option<WireNhs> {
        Some(WireNhs {
            value: value.into(),
        })
    }

    fn school() -> Option<Organisation> {
        Some(Organisation {
            ods_code: "S999001".into(),
            name: "Test School".into(),
            ..Organisation::default()
        })
    }

    fn submitted(child: Option<WireNhs>) -> AnyEvent {
        AnyEvent::Referral(Box::new(ReferralEvent::Submitted(
            referral::ReferralSubmitted {
                referrer: Some(referral::Referrer {
                    organisation: school(),
                    person: None,
                }),
                child: Some(referral::Child {
                    nhs_number: child,
                    ..referral::Child::default()
                }),
                category_of_concern: contract::common::v1::AbuseCategory::Physical.into(),
                ..referral::ReferralSubmitted::default()
            },
        )))
    }

    fn conference_event(event: ConferenceEvent) -> AnyEvent {
        AnyEvent::Conference(event)
    }

    #[test]
    fn each_event_about_a_child_reads_as_a_line_of_their_chronology() {
        let requested = conference_event(ConferenceEvent::Requested(
            conference::ConferenceRequested {
                conference_id: "c1".into(),
                kind: conference::ConferenceKind::Initial.into(),
                child_nhs_number: number(CHILD),
                ..conference::ConferenceRequested::default()
            },
        ));
        let scheduled = |id: &str| {
            conference_event(ConferenceEvent::Scheduled(
                conference::ConferenceScheduled {
                    conference_id: id.into(),
                    venue: "Civic Centre".into(),
                    ..conference::ConferenceScheduled::default()
                },
            ))
        };
        let looked_up = AnyEvent::Registry(RegistryEvent::ChildLookedUp(wire::ChildLookedUp {
            nhs_number: number(CHILD),
            caller: Some(CallerIdentity {
                organisation: school(),
                ..CallerIdentity::default()
            }),
            purpose: "a welfare check".into(),
            silent: true,
            ..wire::ChildLookedUp::default()
        }));
        // (what, event, the line it adds to the child's chronology)
        let cases: Vec<(&str, AnyEvent, Option<&str>)> = vec![
            (
                "a referral",
                submitted(number(CHILD)),
                Some("referral received from Test School: physical"),
            ),
            ("a referral without an NHS number", submitted(None), None),
            (
                "a conference requested",
                requested,
                Some("initial conference requested, due no date"),
            ),
            (
                "that conference scheduled",
                scheduled("c1"),
                Some("conference scheduled at Civic Centre"),
            ),
            ("a conference about no known child", scheduled("c9"), None),
            (
                "a silent lookup",
                looked_up,
                Some("record viewed by Test School (silent): a welfare check"),
            ),
            (
                "a category change, which names its plan, not the child",
                AnyEvent::Registry(RegistryEvent::PlanCategoryChanged(
                    wire::PlanCategoryChanged::default(),
                )),
                None,
            ),
            (
                "a notification",
                AnyEvent::Notification(NotificationEvent::Raised(
                    notification::NotificationRaised::default(),
                )),
                None,
            ),
        ];
        let mut chronology = Chronology::default();
        let envelope = EventEnvelope::default();
        let child = ChildId::Nhs(NhsNumber::parse(CHILD).expect("a test number"));
        for (position, (what, event, line)) in cases.into_iter().enumerate() {
            let before = chronology.of(&child).len();
            let record = Record {
                producer: "test",
                position: position as u64,
                envelope: &envelope,
            };
            assert_eq!(chronology.add(record, &event), line.is_some(), "{what}");
            let entries = chronology.of(&child);
            match line {
                Some(line) => {
                    assert_eq!(entries.len(), before + 1, "{what}");
                    let entry = entries.last().expect("an entry");
                    assert_eq!(entry.summary, line, "{what}");
                    assert_eq!(
                        (entry.log.as_str(), entry.position),
                        ("test", position as u64)
                    );
                }
                None => assert_eq!(entries.len(), before, "{what}"),
            }
        }
    }

    #[test]
    fn a_chronology_is_in_the_order_things_happened() {
        let entry = |seconds: i64, log: &str, position: u64| wire::ChronologyEntry {
            occurred_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            log: log.into(),
            position,
            ..wire::ChronologyEntry::default()
        };
        let mut entries = vec![
            entry(20, "plan-registry", 1),
            entry(10, "referral-intake", 7),
            entry(20, "conference-scheduler", 9),
            entry(20, "conference-scheduler", 3),
        ];
        sort(&mut entries);
        let order: Vec<(i64, &str, u64)> = entries
            .iter()
            .map(|e| {
                (
                    e.occurred_at.unwrap_or_default().seconds,
                    e.log.as_str(),
                    e.position,
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                (10, "referral-intake", 7),
                (20, "conference-scheduler", 3),
                (20, "conference-scheduler", 9),
                (20, "plan-registry", 1),
            ]
        );
    }
}
