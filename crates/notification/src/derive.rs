//! What partners are told, derived from the events of every service. Each
//! function looks at one event and returns the notifications it causes; the
//! caller derives their ids from the event's, so a redelivered event raises
//! nothing twice.

use std::collections::HashMap;

use contract::common::v1::{LogPosition, NhsNumber, Organisation};
use contract::conference::v1 as conference;
use contract::events::v1::EventEnvelope;
use contract::notification::v1::{NotificationKind, NotificationRaised};
use contract::referral::v1 as referral;
use contract::registry::v1 as registry;
use prost::{Message, Name};

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
    envelope: &EventEnvelope,
    source: (&str, u64),
    summary: String,
    details: &[(&str, String)],
) -> NotificationRaised {
    NotificationRaised {
        kind: kind.into(),
        recipient: Some(recipient),
        child_nhs_number: child,
        occurred_at: envelope.occurred_at,
        summary,
        source: Some(LogPosition {
            log: source.0.to_owned(),
            position: source.1,
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

    fn track_deadlines(&mut self, producer: &str, position: u64, envelope: &EventEnvelope) {
        let payload = envelope.payload.as_slice();
        let content = envelope.content_type.as_str();
        let source = (producer, position);
        let mut open = |key: String,
                        due: Option<&contract::common::v1::Date>,
                        la: Option<Organisation>,
                        child,
                        summary: String| {
            let (Ok(due), Some(la)) = (service_core::validate::date("due", due), la) else {
                return;
            };
            let notification = raised(
                NotificationKind::DeadlineMissed,
                la,
                child,
                envelope,
                source,
                summary,
                &[("due", due.to_string())],
            );
            self.deadlines.insert(
                key,
                Deadline {
                    due,
                    source_event: envelope.event_id.clone(),
                    notification,
                },
            );
        };
        if content == referral::ReferralSubmitted::full_name() {
            if let Ok(submitted) = referral::ReferralSubmitted::decode(payload) {
                let summary = format!(
                    "a referral decision due {} has not been recorded",
                    date(submitted.decision_due.as_ref())
                );
                open(
                    format!("referral:{}", submitted.referral_id),
                    submitted.decision_due.as_ref(),
                    submitted.local_authority.clone(),
                    referral_child(submitted.child.as_ref()),
                    summary,
                );
            }
        } else if content == referral::ReferralDecided::full_name() {
            if let Ok(decided) = referral::ReferralDecided::decode(payload) {
                self.deadlines
                    .remove(&format!("referral:{}", decided.referral_id));
            }
        } else if content == conference::ConferenceRequested::full_name() {
            if let Ok(requested) = conference::ConferenceRequested::decode(payload) {
                let summary = format!(
                    "a child protection conference due {} has not been held",
                    date(requested.due.as_ref())
                );
                open(
                    format!("conference:{}", requested.conference_id),
                    requested.due.as_ref(),
                    requested.local_authority.clone(),
                    requested.child_nhs_number.clone(),
                    summary,
                );
            }
        } else if content == conference::AttendanceRecorded::full_name()
            && let Ok(held) = conference::AttendanceRecorded::decode(payload)
        {
            self.deadlines
                .remove(&format!("conference:{}", held.conference_id));
        }
    }

    pub fn derive(
        &mut self,
        producer: &str,
        position: u64,
        envelope: &EventEnvelope,
    ) -> Vec<NotificationRaised> {
        self.track_deadlines(producer, position, envelope);
        let source = (producer, position);
        let payload = envelope.payload.as_slice();
        let content = envelope.content_type.as_str();
        if content == referral::ReferralDecided::full_name() {
            let Ok(decided) = referral::ReferralDecided::decode(payload) else {
                return vec![];
            };
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
            return vec![raised(
                NotificationKind::ReferralOutcome,
                referrer,
                referral_child(decided.child.as_ref()),
                envelope,
                source,
                format!("your referral was decided: {outcome}"),
                &[
                    ("referral_id", decided.referral_id.clone()),
                    ("outcome", outcome),
                ],
            )];
        }
        if content == conference::ConferenceScheduled::full_name() {
            let Ok(scheduled) = conference::ConferenceScheduled::decode(payload) else {
                return vec![];
            };
            self.invitees.insert(
                scheduled.conference_id.clone(),
                (
                    scheduled.invitees.clone(),
                    scheduled.child_nhs_number.clone(),
                ),
            );
            return self.invitations(
                &scheduled.conference_id,
                envelope,
                source,
                "you are invited to a child protection conference",
                &scheduled.venue,
            );
        }
        if content == conference::ConferenceRearranged::full_name() {
            let Ok(moved) = conference::ConferenceRearranged::decode(payload) else {
                return vec![];
            };
            return self.invitations(
                &moved.conference_id,
                envelope,
                source,
                "a child protection conference you are invited to was rearranged",
                &moved.venue,
            );
        }
        if content == registry::PlanStarted::full_name() {
            let Ok(started) = registry::PlanStarted::decode(payload) else {
                return vec![];
            };
            return distinct(started.care_team.clone())
                .into_iter()
                .map(|member| {
                    raised(
                        NotificationKind::PlanStarted,
                        member,
                        started.child_nhs_number.clone(),
                        envelope,
                        source,
                        format!(
                            "the child is now subject to a child protection plan from {}",
                            date(started.start_date.as_ref())
                        ),
                        &[("plan_id", started.plan_id.clone())],
                    )
                })
                .collect();
        }
        if content == registry::PlanEnded::full_name() {
            let Ok(ended) = registry::PlanEnded::decode(payload) else {
                return vec![];
            };
            return distinct(ended.care_team.clone())
                .into_iter()
                .map(|member| {
                    raised(
                        NotificationKind::PlanEnded,
                        member,
                        ended.child_nhs_number.clone(),
                        envelope,
                        source,
                        format!(
                            "the child's plan ended on {}",
                            date(ended.end_date.as_ref())
                        ),
                        &[("plan_id", ended.plan_id.clone())],
                    )
                })
                .collect();
        }
        if content == registry::ChildLookedUp::full_name() {
            let Ok(looked) = registry::ChildLookedUp::decode(payload) else {
                return vec![];
            };
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
            return distinct(looked.owners.clone())
                .into_iter()
                .map(|owner| {
                    raised(
                        NotificationKind::Access,
                        owner,
                        looked.nhs_number.clone(),
                        envelope,
                        source,
                        format!("the child's record was viewed by {by} ({setting})"),
                        &[
                            ("purpose", looked.purpose.clone()),
                            ("setting", setting.clone()),
                        ],
                    )
                })
                .collect();
        }
        vec![]
    }

    fn invitations(
        &self,
        conference_id: &str,
        envelope: &EventEnvelope,
        source: (&str, u64),
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
                envelope,
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
