//! What partners are told, derived from the events of every service. Each
//! function looks at one event and returns the notifications it causes; the
//! caller derives their ids from the event's, so a redelivered event raises
//! nothing twice.

use std::collections::HashMap;

use contract::common::v1::{LogPosition, NhsNumber, Organisation};
use contract::conference::v1 as conference;
use contract::notification::v1::{NotificationKind, NotificationRaised};
use contract::records::{AnyEvent, ConferenceEvent, ReferralEvent, RegistryEvent};
use contract::referral::v1 as referral;
use contract::registry::v1 as registry;
use service_core::follow::Record;

/// What the deriver remembers between events: conferences' invitees, so a
/// rearrangement reaches everyone the first invitation did.
/// A scheduled conference, as its invitations need it.
#[derive(Debug)]
struct Invited {
    invitees: Vec<conference::Invitee>,
    child: Option<NhsNumber>,
    venue: String,
}

#[derive(Debug, Default)]
pub struct Memory {
    /// Scheduled conferences: whom they invite, and where.
    invitees: HashMap<String, Invited>,
    /// Each referral's professional referrer, told of its later steps.
    referrers: HashMap<String, (Organisation, Option<NhsNumber>)>,
    /// Councils whose contact numbers are registered.
    reachable: std::collections::HashSet<String>,
    /// Open plans, each with its council.
    open_plans: HashMap<String, String>,
    /// Open plans as their care teams were told of them: a category
    /// change, a birth or the end reaches the same organisations.
    plans: HashMap<String, TeamPlan>,
    /// What to tell each council that cannot be reached: raised from its
    /// latest plan's start (one per council, not per plan: a region holds
    /// many plans).
    unreachable_notice: HashMap<String, NotificationRaised>,
    /// The day each unreachable council was last told.
    told_unreachable: HashMap<String, domain::date::Date>,
    /// Open statutory deadlines by what they belong to (a referral or a
    /// conference): cleared when it is met.
    deadlines: HashMap<String, Deadline>,
}

/// A statutory deadline that has not been met yet.
#[derive(Debug, Clone)]
pub struct Deadline {
    pub due: domain::date::Date,
    /// The event that set it: the notification's id derives from it.
    pub source_event: Vec<u8>,
    pub notification: NotificationRaised,
}

fn raised(
    kind: NotificationKind,
    recipient: Organisation,
    child: Option<NhsNumber>,
    source: Record<'_>,
    summary: String,
    details: &[(&str, String)],
) -> NotificationRaised {
    NotificationRaised {
        kind: kind.into(),
        recipient: Some(recipient),
        child_nhs_number: child,
        occurred_at: source.envelope.occurred_at,
        summary,
        source: Some(LogPosition {
            log: source.producer.to_owned(),
            position: source.position,
        }),
        details: details
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect(),
    }
}

fn referral_child(child: Option<&referral::Child>) -> Option<NhsNumber> {
    let child = child?;
    child
        .nhs_number
        .clone()
        .or_else(|| child.mother_nhs_number.clone())
}

fn date(value: Option<&contract::common::v1::Date>) -> String {
    value.map_or_else(String::new, service_core::validate::iso_date)
}

/// Organisations, each once.
fn distinct(organisations: impl IntoIterator<Item = Organisation>) -> Vec<Organisation> {
    let mut seen: Vec<Organisation> = Vec::new();
    for organisation in organisations {
        if !organisation.ods_code.is_empty()
            && !seen
                .iter()
                .any(|known| known.ods_code == organisation.ods_code)
        {
            seen.push(organisation);
        }
    }
    seen
}

impl Memory {
    /// Deadlines past on `today`, each returned once.
    pub fn missed(&mut self, today: domain::date::Date) -> Vec<Deadline> {
        let missed: Vec<String> = self
            .deadlines
            .iter()
            .filter(|(_, deadline)| today > deadline.due)
            .map(|(key, _)| key.clone())
            .collect();
        missed
            .into_iter()
            .filter_map(|key| self.deadlines.remove(&key))
            .collect()
    }

    /// The councils with an open plan and no contact numbers registered,
    /// each once on `today`: what each is told.
    pub fn unreachable(&mut self, today: domain::date::Date) -> Vec<NotificationRaised> {
        let councils: std::collections::HashSet<&String> = self.open_plans.values().collect();
        let mut told = Vec::new();
        for council in councils {
            if self.reachable.contains(council)
                || self.told_unreachable.get(council) == Some(&today)
            {
                continue;
            }
            if let Some(notification) = self.unreachable_notice.get(council) {
                self.told_unreachable.insert(council.clone(), today);
                told.push(notification.clone());
            }
        }
        told
    }

    /// Keeps which councils can be reached and which have open plans.
    fn track_councils(&mut self, source: Record<'_>, event: &AnyEvent) {
        match event {
            AnyEvent::Registry(RegistryEvent::ContactsSet(set)) => {
                if let Some(council) = set
                    .contacts
                    .as_ref()
                    .and_then(|contacts| contacts.local_authority.as_ref())
                {
                    // Numbers once registered cannot be unset: no notice
                    // is needed again.
                    self.reachable.insert(council.ods_code.clone());
                    self.unreachable_notice.remove(&council.ods_code);
                }
            }
            AnyEvent::Registry(RegistryEvent::PlanStarted(started)) => {
                let Some(council) = started.local_authority.clone() else {
                    return;
                };
                self.open_plans
                    .insert(started.plan_id.clone(), council.ods_code.clone());
                if self.reachable.contains(&council.ods_code) {
                    return;
                }
                let notification = raised(
                    NotificationKind::ContactsMissing,
                    council.clone(),
                    None,
                    source,
                    "a plan of yours is shown to emergency departments with no office-hours or out-of-hours number to call: register them (SetLocalAuthorityContacts)".to_owned(),
                    &[("plan_id", started.plan_id.clone())],
                );
                self.unreachable_notice
                    .insert(council.ods_code, notification);
            }
            AnyEvent::Registry(RegistryEvent::PlanEnded(ended)) => {
                self.open_plans.remove(&ended.plan_id);
            }
            _ => {}
        }
    }

    /// Opens a deadline on what `source` sets, closes one on what meets it
    /// or on what ends what it was for.
    fn track_deadlines(&mut self, source: Record<'_>, event: &AnyEvent) {
        let deadline = |key: String,
                        due: Option<&contract::common::v1::Date>,
                        la: Option<&Organisation>,
                        child,
                        summary: String| {
            let (Ok(due), Some(la)) = (service_core::validate::date("due", due), la) else {
                return None;
            };
            let notification = raised(
                NotificationKind::DeadlineMissed,
                la.clone(),
                child,
                source,
                summary,
                &[("due", due.to_string())],
            );
            Some((
                key,
                Deadline {
                    due,
                    source_event: source.envelope.event_id.clone(),
                    notification,
                },
            ))
        };
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        match event {
            AnyEvent::Referral(event) => match event.as_ref() {
                ReferralEvent::Submitted(submitted) => opened.extend(deadline(
                    format!("referral:{}", submitted.referral_id),
                    submitted.decision_due.as_ref(),
                    submitted.local_authority.as_ref(),
                    referral_child(submitted.child.as_ref()),
                    format!(
                        "a referral decision due {} has not been recorded",
                        date(submitted.decision_due.as_ref())
                    ),
                )),
                ReferralEvent::Decided(decided) => {
                    closed.push(format!("referral:{}", decided.referral_id));
                    // Only a decision to assess has an assessment due.
                    opened.extend(decided.assessment_due.as_ref().and_then(|due| {
                        deadline(
                            format!("assessment:{}", decided.referral_id),
                            Some(due),
                            decided.local_authority.as_ref(),
                            referral_child(decided.child.as_ref()),
                            format!(
                                "an assessment due {} has not been completed",
                                date(Some(due))
                            ),
                        )
                    }));
                }
                ReferralEvent::AssessmentCompleted(completed) => {
                    closed.push(format!("assessment:{}", completed.referral_id));
                }
                _ => {}
            },
            AnyEvent::Conference(ConferenceEvent::Requested(requested)) => {
                opened.extend(deadline(
                    format!("conference:{}", requested.conference_id),
                    requested.due.as_ref(),
                    requested.local_authority.as_ref(),
                    requested.child_nhs_number.clone(),
                    format!(
                        "a child protection conference due {} has not been held",
                        date(requested.due.as_ref())
                    ),
                ));
            }
            AnyEvent::Conference(ConferenceEvent::AttendanceRecorded(held)) => {
                closed.push(format!("conference:{}", held.conference_id));
            }
            AnyEvent::Conference(ConferenceEvent::OutcomeRecorded(recorded))
                if recorded.first_core_group_due.is_some() =>
            {
                opened.extend(deadline(
                    format!("core-group:{}", recorded.plan_id),
                    recorded.first_core_group_due.as_ref(),
                    recorded.local_authority.as_ref(),
                    recorded.child_nhs_number.clone(),
                    format!(
                        "the plan's first core group meeting due {} has not been held",
                        date(recorded.first_core_group_due.as_ref())
                    ),
                ));
            }
            AnyEvent::Conference(ConferenceEvent::CoreGroupMet(met)) => {
                closed.push(format!("core-group:{}", met.plan_id));
            }
            // No deadline survives the plan it was for.
            AnyEvent::Registry(RegistryEvent::PlanEnded(ended)) => {
                closed.push(format!("core-group:{}", ended.plan_id));
            }
            // A cancelled conference is still due; a withdrawn one is not.
            AnyEvent::Conference(ConferenceEvent::Cancelled(cancelled)) if cancelled.withdrawn => {
                closed.push(format!("conference:{}", cancelled.conference_id));
            }
            _ => {}
        }
        for key in closed {
            self.deadlines.remove(&key);
        }
        self.deadlines.extend(opened);
    }

    /// The notifications `event` (at `source`) raises.
    pub fn derive(&mut self, source: Record<'_>, event: &AnyEvent) -> Vec<NotificationRaised> {
        self.track_deadlines(source, event);
        self.track_councils(source, event);
        match event {
            AnyEvent::Referral(event) => match event.as_ref() {
                ReferralEvent::DomesticAbuseIncidentReported(reported) => {
                    encompass(source, reported)
                }
                _ => self.tell_referrer(source, event),
            },
            AnyEvent::Conference(ConferenceEvent::Scheduled(scheduled)) => {
                self.invitees.insert(
                    scheduled.conference_id.clone(),
                    Invited {
                        invitees: scheduled.invitees.clone(),
                        child: scheduled.child_nhs_number.clone(),
                        venue: scheduled.venue.clone(),
                    },
                );
                self.invitations(
                    &scheduled.conference_id,
                    source,
                    NotificationKind::ConferenceInvitation,
                    "you are invited to a child protection conference",
                    |_| true,
                )
            }
            AnyEvent::Conference(ConferenceEvent::Rearranged(moved)) => {
                if let Some(invited) = self.invitees.get_mut(&moved.conference_id) {
                    invited.venue = moved.venue.clone();
                }
                self.invitations(
                    &moved.conference_id,
                    source,
                    NotificationKind::ConferenceInvitation,
                    &format!(
                        "a child protection conference you are invited to was rearranged: {}",
                        moved.reason
                    ),
                    |_| true,
                )
            }
            // Whoever is invited once it is scheduled is sent the
            // invitation; whoever is no longer invited is not told again.
            AnyEvent::Conference(ConferenceEvent::InvitationsUpdated(updated)) => {
                let Some(invited) = self.invitees.get_mut(&updated.conference_id) else {
                    return vec![];
                };
                let ods = |invitee: &conference::Invitee| {
                    invitee.organisation.as_ref().map(|o| o.ods_code.clone())
                };
                let already: Vec<Option<String>> = invited.invitees.iter().map(ods).collect();
                invited.invitees.retain(|invitee| {
                    !updated
                        .removed
                        .iter()
                        .any(|gone| gone.role == invitee.role && ods(gone) == ods(invitee))
                });
                invited.invitees.extend(updated.added.iter().cloned());
                let new: Vec<String> = updated
                    .added
                    .iter()
                    .filter_map(ods)
                    .filter(|added| !already.contains(&Some(added.clone())))
                    .collect();
                self.invitations(
                    &updated.conference_id,
                    source,
                    NotificationKind::ConferenceInvitation,
                    "you are invited to a child protection conference",
                    |organisation| new.contains(&organisation.ods_code),
                )
            }
            AnyEvent::Conference(ConferenceEvent::Cancelled(cancelled)) => {
                let told = self.invitations(
                    &cancelled.conference_id,
                    source,
                    NotificationKind::ConferenceCancelled,
                    &format!(
                        "a child protection conference you were invited to was {}: {}",
                        if cancelled.withdrawn {
                            "withdrawn"
                        } else {
                            "cancelled"
                        },
                        cancelled.reason
                    ),
                    |_| true,
                );
                // Scheduled again, it invites afresh.
                self.invitees.remove(&cancelled.conference_id);
                told
            }
            AnyEvent::Registry(RegistryEvent::PlanStarted(started)) => {
                let plan = TeamPlan::started(started);
                let summary = match plan.plan_type {
                    registry::PlanType::LookedAfter => "the child is now looked after",
                    registry::PlanType::Unborn => {
                        "the unborn child is now subject to a child protection plan"
                    }
                    _ => "the child is now subject to a child protection plan",
                };
                let mut details = vec![
                    ("category", category(started.category)),
                    ("start_date", date(started.start_date.as_ref())),
                ];
                if let Some(worker) = &started.lead_social_worker {
                    details.push(("lead_social_worker", worker.name.clone()));
                    details.push(("lead_social_worker_phone", worker.phone.clone()));
                }
                if started.expected_date_of_delivery.is_some() {
                    details.push((
                        "expected_date_of_delivery",
                        date(started.expected_date_of_delivery.as_ref()),
                    ));
                }
                let told = plan.tell(
                    source,
                    NotificationKind::PlanStarted,
                    format!("{summary} from {}", date(started.start_date.as_ref())),
                    details,
                );
                self.plans.insert(started.plan_id.clone(), plan);
                told
            }
            AnyEvent::Registry(RegistryEvent::PlanCategoryChanged(changed)) => {
                let Some(plan) = self.plans.get(&changed.plan_id) else {
                    return vec![];
                };
                plan.tell(
                    source,
                    NotificationKind::PlanCategoryChanged,
                    format!(
                        "the category of the child's plan changed on {}",
                        date(changed.changed_on.as_ref())
                    ),
                    vec![
                        ("category", category(changed.category)),
                        ("changed_on", date(changed.changed_on.as_ref())),
                    ],
                )
            }
            AnyEvent::Registry(RegistryEvent::BirthLinked(linked)) => {
                let Some(plan) = self.plans.get_mut(&linked.plan_id) else {
                    return vec![];
                };
                let told = TeamPlan {
                    child: linked.baby_nhs_number.clone(),
                    ..plan.clone()
                }
                .tell(
                    source,
                    NotificationKind::BirthLinked,
                    format!(
                        "the baby was born on {}: the child protection plan now follows the baby",
                        date(linked.born_on.as_ref())
                    ),
                    vec![
                        ("born_on", date(linked.born_on.as_ref())),
                        (
                            "mother_nhs_number",
                            linked
                                .mother_nhs_number
                                .as_ref()
                                .map(|n| n.value.clone())
                                .unwrap_or_default(),
                        ),
                    ],
                );
                plan.child = linked.baby_nhs_number.clone();
                plan.plan_type = registry::PlanType::ChildProtection;
                told
            }
            AnyEvent::Registry(RegistryEvent::PlanEnded(ended)) => {
                // A plan started before the deriver remembered plans (or
                // never seen) is told from what its end carries.
                let plan = self
                    .plans
                    .remove(&ended.plan_id)
                    .unwrap_or_else(|| TeamPlan::ended(ended));
                plan.tell(
                    source,
                    NotificationKind::PlanEnded,
                    format!(
                        "the child's plan ended on {}",
                        date(ended.end_date.as_ref())
                    ),
                    vec![
                        ("end_date", date(ended.end_date.as_ref())),
                        (
                            "end_reason",
                            contract::common::v1::PlanEndReason::try_from(ended.reason)
                                .unwrap_or_default()
                                .as_str_name()
                                .trim_start_matches("PLAN_END_REASON_")
                                .to_owned(),
                        ),
                    ],
                )
            }
            AnyEvent::Registry(RegistryEvent::ChildLookedUp(looked)) => accessed(source, looked),
            _ => vec![],
        }
    }

    /// `kind` to each organisation a scheduled conference invites that
    /// `to` chooses.
    fn invitations(
        &self,
        conference_id: &str,
        source: Record<'_>,
        kind: NotificationKind,
        summary: &str,
        to: impl Fn(&Organisation) -> bool,
    ) -> Vec<NotificationRaised> {
        let Some(invited) = self.invitees.get(conference_id) else {
            return vec![];
        };
        distinct(
            invited
                .invitees
                .iter()
                .filter_map(|invitee| invitee.organisation.clone()),
        )
        .into_iter()
        .filter(|organisation| to(organisation))
        .map(|organisation| {
            raised(
                kind,
                organisation,
                invited.child.clone(),
                source,
                summary.to_owned(),
                &[
                    ("conference_id", conference_id.to_owned()),
                    ("venue", invited.venue.clone()),
                ],
            )
        })
        .collect()
    }
}

/// To the referrer: what was decided about their referral.
/// Whether a referrer is an agency, told of a referral's steps (Working
/// Together 2023: feedback to referrers); a member of the public is told
/// the outcome alone.
fn professional(organisation: &Organisation) -> bool {
    !matches!(
        contract::common::v1::OrganisationKind::try_from(organisation.kind).unwrap_or_default(),
        contract::common::v1::OrganisationKind::Unspecified
            | contract::common::v1::OrganisationKind::Other
    )
}

impl Memory {
    /// What a referrer is told of its referral: that it arrived, what was
    /// decided and why (as far as it can be shared), and, a professional,
    /// the steps that follow.
    fn tell_referrer(
        &mut self,
        source: Record<'_>,
        event: &ReferralEvent,
    ) -> Vec<NotificationRaised> {
        let (kind, referral_id, summary, details) = match event {
            ReferralEvent::Submitted(submitted) => {
                let Some(referrer) = submitted
                    .referrer
                    .as_ref()
                    .and_then(|referrer| referrer.organisation.clone())
                    .filter(professional)
                else {
                    return vec![];
                };
                self.referrers.insert(
                    submitted.referral_id.clone(),
                    (referrer, referral_child(submitted.child.as_ref())),
                );
                (
                    NotificationKind::ReferralAcknowledged,
                    &submitted.referral_id,
                    format!(
                        "your referral was received; a decision is due by {}",
                        date(submitted.decision_due.as_ref())
                    ),
                    vec![("decision_due", date(submitted.decision_due.as_ref()))],
                )
            }
            ReferralEvent::Decided(decided) => {
                let Some(referrer) = decided
                    .referrer
                    .as_ref()
                    .and_then(|referrer| referrer.organisation.clone())
                else {
                    return vec![];
                };
                let outcome = referral::ReferralOutcome::try_from(decided.outcome)
                    .map_or("unknown", |outcome| outcome.as_str_name())
                    .trim_start_matches("REFERRAL_OUTCOME_")
                    .to_lowercase()
                    .replace('_', " ");
                let summary = match decided.reason_for_referrer.as_str() {
                    "" => format!("your referral was decided: {outcome}"),
                    why => format!("your referral was decided: {outcome}, because {why}"),
                };
                return vec![raised(
                    NotificationKind::ReferralOutcome,
                    referrer,
                    referral_child(decided.child.as_ref()),
                    source,
                    summary,
                    &[
                        ("referral_id", decided.referral_id.clone()),
                        ("outcome", outcome),
                        ("reason", decided.reason_for_referrer.clone()),
                    ],
                )];
            }
            ReferralEvent::StrategyDiscussionHeld(held) => {
                let discussion = held.discussion.clone().unwrap_or_default();
                (
                    NotificationKind::ReferralProgress,
                    &held.referral_id,
                    if discussion.section_47_enquiry {
                        format!(
                            "a strategy discussion was held on {}; a section 47 enquiry was started",
                            date(discussion.held_on.as_ref())
                        )
                    } else {
                        format!(
                            "a strategy discussion was held on {}",
                            date(discussion.held_on.as_ref())
                        )
                    },
                    vec![],
                )
            }
            ReferralEvent::Section47Concluded(concluded) => (
                NotificationKind::ReferralProgress,
                &concluded.referral_id,
                if concluded.conference_needed {
                    "the enquiry concluded: an initial child protection conference has been called, and you may be invited".to_owned()
                } else {
                    "the enquiry concluded: no conference is needed".to_owned()
                },
                vec![],
            ),
            _ => return vec![],
        };
        let Some((referrer, child)) = self.referrers.get(referral_id) else {
            return vec![];
        };
        let mut details = details;
        details.push(("referral_id", referral_id.clone()));
        vec![raised(
            kind,
            referrer.clone(),
            child.clone(),
            source,
            summary,
            &details,
        )]
    }
}

/// An open plan as its care team is told of it: whom to tell, about
/// which child, and what every notification of it says.
#[derive(Debug, Clone)]
struct TeamPlan {
    plan_id: String,
    plan_type: registry::PlanType,
    care_team: Vec<Organisation>,
    child: Option<NhsNumber>,
    local_id: Option<contract::common::v1::LocalChildId>,
    local_authority: Organisation,
}

impl TeamPlan {
    fn started(started: &registry::PlanStarted) -> TeamPlan {
        TeamPlan {
            plan_id: started.plan_id.clone(),
            plan_type: registry::PlanType::try_from(started.r#type).unwrap_or_default(),
            care_team: started.care_team.clone(),
            child: started.child_nhs_number.clone(),
            local_id: started.child_local_id.clone(),
            local_authority: started.local_authority.clone().unwrap_or_default(),
        }
    }

    fn ended(ended: &registry::PlanEnded) -> TeamPlan {
        TeamPlan {
            plan_id: ended.plan_id.clone(),
            plan_type: registry::PlanType::Unspecified,
            care_team: ended.care_team.clone(),
            child: ended.child_nhs_number.clone(),
            local_id: ended.child_local_id.clone(),
            local_authority: ended.local_authority.clone().unwrap_or_default(),
        }
    }

    /// `kind` to each organisation of the care team, once, with what every
    /// notification of a plan carries (its id and type, the council) and
    /// `details` of this one.
    fn tell(
        &self,
        source: Record<'_>,
        kind: NotificationKind,
        summary: String,
        details: Vec<(&str, String)>,
    ) -> Vec<NotificationRaised> {
        let mut all = vec![
            ("plan_id", self.plan_id.clone()),
            (
                "plan_type",
                self.plan_type
                    .as_str_name()
                    .trim_start_matches("PLAN_TYPE_")
                    .to_owned(),
            ),
            (
                "local_authority_ods_code",
                self.local_authority.ods_code.clone(),
            ),
            ("local_authority_name", self.local_authority.name.clone()),
        ];
        // A child without an NHS number is named by the council's local
        // identifier, so the care team knows whom the plan is about.
        if let Some(local) = self.local_id.as_ref().filter(|_| self.child.is_none()) {
            all.push((
                "child_local_id",
                format!("{} {}", local.local_authority_ods_code, local.value),
            ));
        }
        all.extend(details.into_iter().filter(|(_, value)| !value.is_empty()));
        distinct(self.care_team.iter().cloned())
            .into_iter()
            .map(|member| {
                raised(
                    kind,
                    member,
                    self.child.clone(),
                    source,
                    summary.clone(),
                    &all,
                )
            })
            .collect()
    }
}

/// A category of abuse as notifications name it, e.g. `NEGLECT`.
fn category(value: i32) -> String {
    match contract::common::v1::AbuseCategory::try_from(value) {
        Ok(contract::common::v1::AbuseCategory::Unspecified) | Err(_) => String::new(),
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("ABUSE_CATEGORY_")
            .to_owned(),
    }
}

/// Operation Encompass: the child's school (or, for a child educated at
/// home, the council) told of a domestic abuse incident, with when it was
/// due (the start of the next school day) and whether this was in time.
fn encompass(
    source: Record<'_>,
    reported: &referral::DomesticAbuseIncidentReported,
) -> Vec<NotificationRaised> {
    let Some(told) = reported
        .school
        .clone()
        .or_else(|| reported.local_authority.clone())
    else {
        return vec![];
    };
    let moment = |stamp: Option<&prost_types::Timestamp>| {
        stamp.map_or_else(String::new, service_core::validate::instant)
    };
    let on_time = match (&reported.received_at, &reported.due_by) {
        (Some(received), Some(due)) => received.seconds <= due.seconds,
        _ => false,
    };
    let child = reported.child.clone().unwrap_or_default();
    let name = format!("{} {}", child.given_name, child.family_name);
    let (force, officer) = reported
        .reported_by
        .as_ref()
        .map(|by| {
            (
                by.organisation.clone().unwrap_or_default(),
                by.person.clone().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let mut details = vec![
        ("incident_id", reported.incident_id.clone()),
        ("police_reference", reported.police_reference.clone()),
        ("police_force", force.name.clone()),
        ("police_force_ods_code", force.ods_code.clone()),
        ("officer", officer.name.clone()),
        ("officer_phone", officer.phone.clone()),
        ("child_name", name.clone()),
        ("date_of_birth", date(child.date_of_birth.as_ref())),
        ("occurred_at", moment(reported.occurred_at.as_ref())),
        ("location", reported.location.clone()),
        ("child_present", reported.child_present.to_string()),
        ("child_said", reported.child_said.clone()),
        ("due_by", moment(reported.due_by.as_ref())),
        ("on_time", on_time.to_string()),
    ];
    if reported.school.is_none() {
        details.push(("educated_at_home", "true".to_owned()));
    }
    details.retain(|(_, value)| !value.is_empty());
    vec![raised(
        NotificationKind::DomesticAbuseIncident,
        told,
        child.nhs_number.clone(),
        source,
        format!(
            "Operation Encompass: police attended a domestic abuse incident involving {name}; the designated safeguarding lead is to know before school starts{}",
            if on_time {
                ""
            } else {
                " (this notice is late)"
            }
        ),
        &details,
    )]
}

/// To the local authorities that own the child's plans: a non-silent
/// lookup of the child's record.
fn accessed(source: Record<'_>, looked: &registry::ChildLookedUp) -> Vec<NotificationRaised> {
    if looked.silent {
        return vec![];
    }
    let caller = looked.caller.clone().unwrap_or_default();
    let by = caller.organisation.map(|o| o.name).unwrap_or_default();
    let setting = contract::common::v1::CareSetting::try_from(caller.care_setting)
        .map_or("unknown setting", |setting| setting.as_str_name())
        .trim_start_matches("CARE_SETTING_")
        .to_lowercase()
        .replace('_', " ");
    distinct(looked.owners.clone())
        .into_iter()
        .map(|owner| {
            raised(
                NotificationKind::Access,
                owner,
                looked.nhs_number.clone(),
                source,
                format!("the child's record was viewed by {by} ({setting})"),
                &[
                    ("purpose", looked.purpose.clone()),
                    ("setting", setting.clone()),
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use contract::common::v1::{CallerIdentity, Date};
    use contract::events::v1::EventEnvelope;

    use super::*;

    fn organisation(ods: &str) -> Organisation {
        Organisation {
            ods_code: ods.into(),
            name: format!("Test {ods}"),
            ..Organisation::default()
        }
    }

    fn child() -> Option<NhsNumber> {
        Some(NhsNumber {
            value: "9990000018".into(),
        })
    }

    fn date(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    /// What `events` raise, in order, as (kind, recipient) pairs.
    fn check(memory: &mut Memory, events: Vec<AnyEvent>) -> Vec<Vec<(NotificationKind, String)>> {
        let envelope = EventEnvelope::default();
        events
            .into_iter()
            .enumerate()
            .map(|(position, event)| {
                let record = Record {
                    producer: "test",
                    position: position as u64,
                    envelope: &envelope,
                };
                memory
                    .derive(record, &event)
                    .into_iter()
                    .map(|raised| {
                        (
                            raised.kind(),
                            raised.recipient.map(|r| r.ods_code).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    fn invitee(ods: &str) -> conference::Invitee {
        conference::Invitee {
            organisation: Some(organisation(ods)),
            ..conference::Invitee::default()
        }
    }

    #[test]
    fn each_event_tells_whom_it_concerns() {
        use NotificationKind::*;
        let looked_up = |silent| {
            AnyEvent::Registry(RegistryEvent::ChildLookedUp(registry::ChildLookedUp {
                local_id: None,
                nhs_number: child(),
                caller: Some(CallerIdentity {
                    organisation: Some(organisation("RXX01")),
                    ..CallerIdentity::default()
                }),
                purpose: "attendance".into(),
                silent,
                owners: vec![organisation("E09000999"), organisation("E09000999")],
                as_of: None,
            }))
        };
        let submitted = |id: &str, kind: contract::common::v1::OrganisationKind| {
            AnyEvent::Referral(Box::new(ReferralEvent::Submitted(
                referral::ReferralSubmitted {
                    referral_id: id.into(),
                    referrer: Some(referral::Referrer {
                        organisation: Some(Organisation {
                            kind: kind.into(),
                            ..organisation("S999001")
                        }),
                        person: None,
                    }),
                    ..referral::ReferralSubmitted::default()
                },
            )))
        };
        // (what, event, whom it tells what)
        type Case = (
            &'static str,
            AnyEvent,
            Vec<(NotificationKind, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "a decision, to the referrer",
                AnyEvent::Referral(Box::new(ReferralEvent::Decided(
                    referral::ReferralDecided {
                        referrer: Some(referral::Referrer {
                            organisation: Some(organisation("S999001")),
                            person: None,
                        }),
                        ..referral::ReferralDecided::default()
                    },
                ))),
                vec![(ReferralOutcome, "S999001")],
            ),
            (
                "a decision without a referrer, to nobody",
                AnyEvent::Referral(Box::new(ReferralEvent::Decided(
                    referral::ReferralDecided::default(),
                ))),
                vec![],
            ),
            (
                "a referral from a school, acknowledged to it",
                submitted("r-school", contract::common::v1::OrganisationKind::School),
                vec![(ReferralAcknowledged, "S999001")],
            ),
            (
                "a referral from a member of the public, not acknowledged",
                submitted("r-public", contract::common::v1::OrganisationKind::Other),
                vec![],
            ),
            (
                "the school's referral's strategy discussion, to the school",
                AnyEvent::Referral(Box::new(ReferralEvent::StrategyDiscussionHeld(
                    referral::StrategyDiscussionHeld {
                        referral_id: "r-school".into(),
                        ..referral::StrategyDiscussionHeld::default()
                    },
                ))),
                vec![(ReferralProgress, "S999001")],
            ),
            (
                "the public referral's enquiry concluded, to nobody",
                AnyEvent::Referral(Box::new(ReferralEvent::Section47Concluded(
                    referral::Section47Concluded {
                        referral_id: "r-public".into(),
                        ..referral::Section47Concluded::default()
                    },
                ))),
                vec![],
            ),
            (
                "a conference scheduled, to each invitee once",
                AnyEvent::Conference(ConferenceEvent::Scheduled(
                    conference::ConferenceScheduled {
                        conference_id: "c1".into(),
                        invitees: vec![invitee("P99001"), invitee("Y99001"), invitee("P99001")],
                        ..conference::ConferenceScheduled::default()
                    },
                )),
                vec![
                    (ConferenceInvitation, "P99001"),
                    (ConferenceInvitation, "Y99001"),
                ],
            ),
            (
                "the same conference rearranged, to the same invitees",
                AnyEvent::Conference(ConferenceEvent::Rearranged(
                    conference::ConferenceRearranged {
                        conference_id: "c1".into(),
                        ..conference::ConferenceRearranged::default()
                    },
                )),
                vec![
                    (ConferenceInvitation, "P99001"),
                    (ConferenceInvitation, "Y99001"),
                ],
            ),
            (
                "a school invited once it is scheduled, to the school alone",
                AnyEvent::Conference(ConferenceEvent::InvitationsUpdated(
                    conference::InvitationsUpdated {
                        conference_id: "c1".into(),
                        added: vec![invitee("S999001"), invitee("Y99001")],
                        removed: vec![invitee("P99001")],
                    },
                )),
                vec![(ConferenceInvitation, "S999001")],
            ),
            (
                "an invitation to a conference not scheduled yet, to nobody yet",
                AnyEvent::Conference(ConferenceEvent::InvitationsUpdated(
                    conference::InvitationsUpdated {
                        conference_id: "c2".into(),
                        added: vec![invitee("S999001")],
                        removed: vec![],
                    },
                )),
                vec![],
            ),
            (
                "the conference cancelled, to whom it still invites",
                AnyEvent::Conference(ConferenceEvent::Cancelled(
                    conference::ConferenceCancelled {
                        conference_id: "c1".into(),
                        reason: "the chair is unwell".into(),
                        withdrawn: false,
                    },
                )),
                vec![
                    (ConferenceCancelled, "Y99001"),
                    (ConferenceCancelled, "S999001"),
                ],
            ),
            (
                "cancelled again, to nobody: none is scheduled",
                AnyEvent::Conference(ConferenceEvent::Cancelled(
                    conference::ConferenceCancelled {
                        conference_id: "c1".into(),
                        reason: "the plan ended".into(),
                        withdrawn: true,
                    },
                )),
                vec![],
            ),
            (
                "a plan started, to its care team",
                AnyEvent::Registry(RegistryEvent::PlanStarted(registry::PlanStarted {
                    care_team: vec![organisation("Y99001"), organisation("")],
                    ..registry::PlanStarted::default()
                })),
                vec![(PlanStarted, "Y99001")],
            ),
            (
                "a category changed, to the care team its plan started with",
                AnyEvent::Registry(RegistryEvent::PlanCategoryChanged(
                    registry::PlanCategoryChanged::default(),
                )),
                vec![(PlanCategoryChanged, "Y99001")],
            ),
            (
                "a birth linked, to the care team its plan started with",
                AnyEvent::Registry(RegistryEvent::BirthLinked(registry::BirthLinked {
                    baby_nhs_number: child(),
                    ..registry::BirthLinked::default()
                })),
                vec![(BirthLinked, "Y99001")],
            ),
            (
                "a category changed on a plan never seen, to nobody",
                AnyEvent::Registry(RegistryEvent::PlanCategoryChanged(
                    registry::PlanCategoryChanged {
                        plan_id: "unknown".into(),
                        ..registry::PlanCategoryChanged::default()
                    },
                )),
                vec![],
            ),
            (
                "a plan ended, to its care team",
                AnyEvent::Registry(RegistryEvent::PlanEnded(registry::PlanEnded {
                    care_team: vec![organisation("Y99001")],
                    ..registry::PlanEnded::default()
                })),
                vec![(PlanEnded, "Y99001")],
            ),
            (
                "a lookup, to the owners once",
                looked_up(false),
                vec![(Access, "E09000999")],
            ),
            ("a silent lookup, to nobody", looked_up(true), vec![]),
        ];
        // One memory throughout: a rearrangement reaches whom the
        // scheduling invited.
        let mut memory = Memory::default();
        for (what, event, expected) in cases {
            let told = check(&mut memory, vec![event]).remove(0);
            let expected: Vec<(NotificationKind, String)> = expected
                .into_iter()
                .map(|(kind, ods)| (kind, ods.to_owned()))
                .collect();
            assert_eq!(told, expected, "{what}");
        }
    }

    #[test]
    fn a_deadline_is_missed_once_unless_met() {
        let submitted = |id: &str| {
            AnyEvent::Referral(Box::new(ReferralEvent::Submitted(
                referral::ReferralSubmitted {
                    referral_id: id.into(),
                    decision_due: date(2026, 1, 5),
                    local_authority: Some(organisation("E09000999")),
                    ..referral::ReferralSubmitted::default()
                },
            )))
        };
        let decided = AnyEvent::Referral(Box::new(ReferralEvent::Decided(
            referral::ReferralDecided {
                referral_id: "met".into(),
                ..referral::ReferralDecided::default()
            },
        )));
        let mut memory = Memory::default();
        check(
            &mut memory,
            vec![submitted("missed"), submitted("met"), decided],
        );
        let day = |d| domain::date::Date::from_ymd(2026, 1, d).expect("a date");
        assert!(memory.missed(day(5)).is_empty(), "due that day, not missed");
        let missed = memory.missed(day(6));
        assert_eq!(missed.len(), 1);
        assert_eq!(
            missed[0].notification.kind(),
            NotificationKind::DeadlineMissed
        );
        assert!(missed[0].notification.summary.contains("2026-01-05"));
        assert!(memory.missed(day(7)).is_empty(), "told once");
    }

    #[test]
    fn a_withdrawn_conference_has_no_deadline_and_a_cancelled_one_keeps_it() {
        let requested = |id: &str| {
            AnyEvent::Conference(ConferenceEvent::Requested(
                conference::ConferenceRequested {
                    conference_id: id.into(),
                    due: date(2026, 4, 20),
                    local_authority: Some(organisation("E09000999")),
                    ..conference::ConferenceRequested::default()
                },
            ))
        };
        let cancelled = |id: &str, withdrawn| {
            AnyEvent::Conference(ConferenceEvent::Cancelled(
                conference::ConferenceCancelled {
                    conference_id: id.into(),
                    reason: "the plan ended".into(),
                    withdrawn,
                },
            ))
        };
        let mut memory = Memory::default();
        check(
            &mut memory,
            vec![
                requested("withdrawn"),
                requested("cancelled"),
                cancelled("withdrawn", true),
                cancelled("cancelled", false),
            ],
        );
        let missed = memory.missed(domain::date::Date::from_ymd(2026, 5, 1).expect("a date"));
        assert_eq!(missed.len(), 1, "only the cancelled one is still due");
        assert!(missed[0].notification.summary.contains("2026-04-20"));
    }

    #[test]
    fn a_core_group_deadline_goes_with_its_meeting_or_its_plan() {
        let plan_made = |plan: &str| {
            AnyEvent::Conference(ConferenceEvent::OutcomeRecorded(
                conference::ConferenceOutcomeRecorded {
                    conference_id: format!("icpc-{plan}"),
                    plan_id: plan.into(),
                    first_core_group_due: date(2026, 2, 3),
                    local_authority: Some(organisation("E09000999")),
                    ..conference::ConferenceOutcomeRecorded::default()
                },
            ))
        };
        let met = AnyEvent::Conference(ConferenceEvent::CoreGroupMet(conference::CoreGroupMet {
            plan_id: "met".into(),
            ..conference::CoreGroupMet::default()
        }));
        let ended = AnyEvent::Registry(RegistryEvent::PlanEnded(
            contract::registry::v1::PlanEnded {
                plan_id: "ended".into(),
                ..contract::registry::v1::PlanEnded::default()
            },
        ));
        let mut memory = Memory::default();
        check(
            &mut memory,
            vec![
                plan_made("met"),
                plan_made("ended"),
                plan_made("missed"),
                met,
                ended,
            ],
        );
        let missed = memory.missed(domain::date::Date::from_ymd(2026, 2, 4).expect("a date"));
        assert_eq!(missed.len(), 1, "only the plan whose core group never met");
        assert!(missed[0].notification.summary.contains("core group"));
    }

    #[test]
    fn a_council_with_plans_and_no_numbers_is_told_once_a_day_until_it_registers_them() {
        let started = |plan: &str, council: &str| {
            AnyEvent::Registry(RegistryEvent::PlanStarted(registry::PlanStarted {
                plan_id: plan.into(),
                local_authority: Some(organisation(council)),
                ..registry::PlanStarted::default()
            }))
        };
        let mut memory = Memory::default();
        check(
            &mut memory,
            vec![
                started("p1", "E09000999"),
                started("p2", "E09000999"),
                started("p3", "E09000998"),
                AnyEvent::Registry(RegistryEvent::PlanEnded(registry::PlanEnded {
                    plan_id: "p3".into(),
                    ..registry::PlanEnded::default()
                })),
            ],
        );
        let day = |d| domain::date::Date::from_ymd(2026, 2, d).expect("a date");
        let told = memory.unreachable(day(2));
        assert_eq!(told.len(), 1, "one council, once, for its open plans");
        assert_eq!(
            told[0].recipient.as_ref().map(|r| r.ods_code.as_str()),
            Some("E09000999")
        );
        assert!(memory.unreachable(day(2)).is_empty(), "once a day");
        assert_eq!(memory.unreachable(day(3)).len(), 1, "and the next day");
        check(
            &mut memory,
            vec![AnyEvent::Registry(RegistryEvent::ContactsSet(
                registry::LocalAuthorityContactsSet {
                    contacts: Some(registry::LocalAuthorityContacts {
                        local_authority: Some(organisation("E09000999")),
                        ..registry::LocalAuthorityContacts::default()
                    }),
                },
            ))],
        );
        assert!(memory.unreachable(day(4)).is_empty(), "registered");
    }
}
