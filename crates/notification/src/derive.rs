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
#[derive(Debug, Default)]
pub struct Memory {
    invitees: HashMap<String, (Vec<conference::Invitee>, Option<NhsNumber>)>,
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
    value.map_or_else(String::new, |d| {
        format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
    })
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

    /// Opens a deadline on what `source` sets, closes one on what meets it.
    fn track_deadlines(&mut self, source: Record<'_>, event: &AnyEvent) {
        let mut open = |key: String,
                        due: Option<&contract::common::v1::Date>,
                        la: Option<&Organisation>,
                        child,
                        summary: String| {
            let (Ok(due), Some(la)) = (service_core::validate::date("due", due), la) else {
                return;
            };
            let notification = raised(
                NotificationKind::DeadlineMissed,
                la.clone(),
                child,
                source,
                summary,
                &[("due", due.to_string())],
            );
            self.deadlines.insert(
                key,
                Deadline {
                    due,
                    source_event: source.envelope.event_id.clone(),
                    notification,
                },
            );
        };
        match event {
            AnyEvent::Referral(event) => match event.as_ref() {
                ReferralEvent::Submitted(submitted) => open(
                    format!("referral:{}", submitted.referral_id),
                    submitted.decision_due.as_ref(),
                    submitted.local_authority.as_ref(),
                    referral_child(submitted.child.as_ref()),
                    format!(
                        "a referral decision due {} has not been recorded",
                        date(submitted.decision_due.as_ref())
                    ),
                ),
                ReferralEvent::Decided(decided) => {
                    self.deadlines
                        .remove(&format!("referral:{}", decided.referral_id));
                }
                _ => {}
            },
            AnyEvent::Conference(ConferenceEvent::Requested(requested)) => open(
                format!("conference:{}", requested.conference_id),
                requested.due.as_ref(),
                requested.local_authority.as_ref(),
                requested.child_nhs_number.clone(),
                format!(
                    "a child protection conference due {} has not been held",
                    date(requested.due.as_ref())
                ),
            ),
            AnyEvent::Conference(ConferenceEvent::AttendanceRecorded(held)) => {
                self.deadlines
                    .remove(&format!("conference:{}", held.conference_id));
            }
            _ => {}
        }
    }

    /// The notifications `event` (at `source`) raises.
    pub fn derive(&mut self, source: Record<'_>, event: &AnyEvent) -> Vec<NotificationRaised> {
        self.track_deadlines(source, event);
        match event {
            AnyEvent::Referral(event) => match event.as_ref() {
                ReferralEvent::Decided(decided) => referral_outcome(source, decided),
                _ => vec![],
            },
            AnyEvent::Conference(ConferenceEvent::Scheduled(scheduled)) => {
                self.invitees.insert(
                    scheduled.conference_id.clone(),
                    (
                        scheduled.invitees.clone(),
                        scheduled.child_nhs_number.clone(),
                    ),
                );
                self.invitations(
                    &scheduled.conference_id,
                    source,
                    "you are invited to a child protection conference",
                    &scheduled.venue,
                )
            }
            AnyEvent::Conference(ConferenceEvent::Rearranged(moved)) => self.invitations(
                &moved.conference_id,
                source,
                "a child protection conference you are invited to was rearranged",
                &moved.venue,
            ),
            AnyEvent::Registry(RegistryEvent::PlanStarted(started)) => to_care_team(
                source,
                NotificationKind::PlanStarted,
                &started.care_team,
                started.child_nhs_number.as_ref(),
                format!(
                    "the child is now subject to a child protection plan from {}",
                    date(started.start_date.as_ref())
                ),
                &started.plan_id,
            ),
            AnyEvent::Registry(RegistryEvent::PlanEnded(ended)) => to_care_team(
                source,
                NotificationKind::PlanEnded,
                &ended.care_team,
                ended.child_nhs_number.as_ref(),
                format!(
                    "the child's plan ended on {}",
                    date(ended.end_date.as_ref())
                ),
                &ended.plan_id,
            ),
            AnyEvent::Registry(RegistryEvent::ChildLookedUp(looked)) => accessed(source, looked),
            _ => vec![],
        }
    }

    fn invitations(
        &self,
        conference_id: &str,
        source: Record<'_>,
        summary: &str,
        venue: &str,
    ) -> Vec<NotificationRaised> {
        let Some((invitees, child)) = self.invitees.get(conference_id) else {
            return vec![];
        };
        distinct(
            invitees
                .iter()
                .filter_map(|invitee| invitee.organisation.clone()),
        )
        .into_iter()
        .map(|organisation| {
            raised(
                NotificationKind::ConferenceInvitation,
                organisation,
                child.clone(),
                source,
                summary.to_owned(),
                &[
                    ("conference_id", conference_id.to_owned()),
                    ("venue", venue.to_owned()),
                ],
            )
        })
        .collect()
    }
}

/// To the referrer: what was decided about their referral.
fn referral_outcome(
    source: Record<'_>,
    decided: &referral::ReferralDecided,
) -> Vec<NotificationRaised> {
    let Some(referrer) = decided
        .referrer
        .as_ref()
        .and_then(|r| r.organisation.clone())
    else {
        return vec![];
    };
    let outcome = referral::ReferralOutcome::try_from(decided.outcome)
        .map_or("unknown", |outcome| outcome.as_str_name())
        .trim_start_matches("REFERRAL_OUTCOME_")
        .to_lowercase()
        .replace('_', " ");
    vec![raised(
        NotificationKind::ReferralOutcome,
        referrer,
        referral_child(decided.child.as_ref()),
        source,
        format!("your referral was decided: {outcome}"),
        &[
            ("referral_id", decided.referral_id.clone()),
            ("outcome", outcome),
        ],
    )]
}

/// To each organisation of a plan's care team, once.
fn to_care_team(
    source: Record<'_>,
    kind: NotificationKind,
    care_team: &[Organisation],
    child: Option<&NhsNumber>,
    summary: String,
    plan_id: &str,
) -> Vec<NotificationRaised> {
    distinct(care_team.iter().cloned())
        .into_iter()
        .map(|member| {
            raised(
                kind,
                member,
                child.cloned(),
                source,
                summary.clone(),
                &[("plan_id", plan_id.to_owned())],
            )
        })
        .collect()
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
