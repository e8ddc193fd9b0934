//! The scheduler's view of its own log: every conference's state (domain
//! aggregate, wire view, invitees' details) rebuilt from the log at start
//! and kept current by following it.

use std::collections::{BTreeMap, HashMap};

use contract::conference::v1 as wire;
use contract::records::ConferenceEvent;
use domain::conference::{Conference, Event, InviteeKey};
use service_core::follow::Record;

use crate::convert;

#[derive(Debug, Clone)]
pub struct Tracked {
    pub aggregate: Conference,
    pub view: wire::Conference,
    /// What is known of each invitee beyond its key (name, contact).
    pub details: BTreeMap<InviteeKey, wire::Invitee>,
    pub version: u64,
}

impl Tracked {
    /// The wire view with invitees as the aggregate now has them.
    pub fn refreshed_view(&self) -> wire::Conference {
        let mut view = self.view.clone();
        view.invitees = self
            .aggregate
            .invitees
            .iter()
            .map(|(key, state)| {
                let mut invitee = convert::invitee_view(key, self.details.get(key));
                invitee.response = state.response.map_or(0, |response| {
                    i32::from(match response {
                        domain::codes::InviteResponse::Attending => wire::InviteResponse::Attending,
                        domain::codes::InviteResponse::SendingReport => {
                            wire::InviteResponse::SendingReport
                        }
                        domain::codes::InviteResponse::Declined => wire::InviteResponse::Declined,
                    })
                });
                invitee.report_received = state.report_received;
                invitee.attended = state.attended;
                invitee
            })
            .collect();
        if self.aggregate.held_on.is_some() {
            view.neither_attended_nor_reported = view
                .invitees
                .iter()
                .filter(|invitee| {
                    invitee.organisation.is_some() && !invitee.attended && !invitee.report_received
                })
                .cloned()
                .collect();
        }
        view
    }
}

/// The conference an event is about.
fn conference_of(event: &ConferenceEvent) -> Option<&str> {
    Some(match event {
        ConferenceEvent::Requested(e) => &e.conference_id,
        ConferenceEvent::Scheduled(e) => &e.conference_id,
        ConferenceEvent::Rearranged(e) => &e.conference_id,
        ConferenceEvent::Cancelled(e) => &e.conference_id,
        ConferenceEvent::InvitationsUpdated(e) => &e.conference_id,
        ConferenceEvent::InviteReplied(e) => &e.conference_id,
        ConferenceEvent::ReportReceived(e) => &e.conference_id,
        ConferenceEvent::AttendanceRecorded(e) => &e.conference_id,
        ConferenceEvent::OutcomeRecorded(e) => &e.conference_id,
        ConferenceEvent::CoreGroupMet(e) => &e.conference_id,
        ConferenceEvent::Quarantined(_)
        | ConferenceEvent::RecordsRead(_)
        | ConferenceEvent::AccessRefused(_) => return None,
    })
}

/// How an event changes the wire view, beside what it does to the aggregate.
type ViewEdit = Box<dyn FnOnce(&mut Tracked)>;

#[derive(Debug, Default)]
pub struct Projection {
    pub conferences: HashMap<String, Tracked>,
}

fn keys(
    field: &str,
    invitees: &[wire::Invitee],
) -> Result<Vec<(InviteeKey, wire::Invitee)>, String> {
    invitees
        .iter()
        .map(|invitee| {
            convert::invitee_key(field, invitee)
                .map(|key| (key, invitee.clone()))
                .map_err(|status| status.message().to_owned())
        })
        .collect()
}

impl Projection {
    /// Applies one event of the log; an event it cannot apply is refused
    /// with the reason, and quarantined by the caller.
    pub fn apply(&mut self, record: Record<'_>, event: ConferenceEvent) -> Result<(), String> {
        let conference_id = conference_of(&event).map(str::to_owned);
        let applied = self.apply_event(record, event);
        // The record is in the conference's stream all the same: a later
        // change is decided on the conference as it stands, at the
        // stream's real version, instead of failing its check for ever.
        if applied.is_err()
            && let Some(tracked) = conference_id.and_then(|id| self.conferences.get_mut(&id))
        {
            tracked.version = record.envelope.stream_version;
        }
        applied
    }

    fn apply_event(&mut self, record: Record<'_>, event: ConferenceEvent) -> Result<(), String> {
        let version = record.envelope.stream_version;
        // What the event means to the aggregate: the one way a stored
        // conference event becomes a domain event.
        let Some(change) = convert::to_domain(&event)? else {
            return Ok(());
        };
        let (conference_id, edit): (String, ViewEdit) = match event {
            ConferenceEvent::Requested(requested) => {
                return self.requested(requested, change, version);
            }
            ConferenceEvent::Quarantined(_)
            | ConferenceEvent::RecordsRead(_)
            | ConferenceEvent::AccessRefused(_) => return Ok(()),
            ConferenceEvent::Scheduled(scheduled) => (
                scheduled.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.status = wire::ConferenceStatus::Scheduled.into();
                    tracked.view.scheduled_for = scheduled.scheduled_for;
                    tracked.view.venue = scheduled.venue;
                }),
            ),
            ConferenceEvent::Rearranged(moved) => (
                moved.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.status = wire::ConferenceStatus::Scheduled.into();
                    tracked.view.scheduled_for = moved.scheduled_for;
                    tracked.view.venue = moved.venue;
                    tracked
                        .view
                        .history
                        .push(format!("rearranged: {}", moved.reason));
                }),
            ),
            ConferenceEvent::Cancelled(cancelled) => (
                cancelled.conference_id.clone(),
                Box::new(move |tracked| {
                    let (status, said) = if cancelled.withdrawn {
                        (wire::ConferenceStatus::Withdrawn, "withdrawn")
                    } else {
                        (wire::ConferenceStatus::Cancelled, "cancelled")
                    };
                    tracked.view.status = status.into();
                    tracked.view.scheduled_for = None;
                    tracked
                        .view
                        .history
                        .push(format!("{said}: {}", cancelled.reason));
                }),
            ),
            ConferenceEvent::InvitationsUpdated(updated) => {
                let added = keys("added", &updated.added)?;
                let removed = keys("removed", &updated.removed)?;
                (
                    updated.conference_id.clone(),
                    Box::new(move |tracked| {
                        for (key, _) in &removed {
                            tracked.details.remove(key);
                        }
                        tracked.details.extend(added);
                    }),
                )
            }
            ConferenceEvent::InviteReplied(replied) => (replied.conference_id, Box::new(|_| {})),
            ConferenceEvent::ReportReceived(received) => (
                received.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.reports.push(wire::WrittenReport {
                        role: received.role,
                        organisation_ods_code: received.organisation_ods_code,
                        author: received.author,
                        written_on: received.written_on,
                        text: received.text,
                    });
                }),
            ),
            ConferenceEvent::AttendanceRecorded(attended) => (
                attended.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.held_on = attended.held_on;
                    tracked.view.status = wire::ConferenceStatus::Held.into();
                }),
            ),
            ConferenceEvent::OutcomeRecorded(recorded) => (
                recorded.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.outcome = recorded.outcome;
                    tracked.view.first_core_group_due = recorded.first_core_group_due;
                    if !recorded.plan_id.is_empty() {
                        tracked.view.plan_id = recorded.plan_id;
                    }
                }),
            ),
            ConferenceEvent::CoreGroupMet(met) => (
                met.conference_id.clone(),
                Box::new(move |tracked| {
                    tracked.view.first_core_group_held_on = met.held_on;
                }),
            ),
        };
        let tracked = self
            .conferences
            .get_mut(&conference_id)
            .ok_or_else(|| format!("conference_id: no conference {conference_id} is known"))?;
        tracked.aggregate.apply(&change);
        edit(tracked);
        tracked.version = version;
        Ok(())
    }

    fn requested(
        &mut self,
        requested: wire::ConferenceRequested,
        change: Event,
        version: u64,
    ) -> Result<(), String> {
        let invitees = keys("invitees", &requested.invitees)?;
        let aggregate = Conference::from_events(&[change]).ok_or("a request makes a conference")?;
        let view = wire::Conference {
            conference_id: requested.conference_id.clone(),
            kind: requested.kind,
            status: wire::ConferenceStatus::Requested.into(),
            child_nhs_number: requested.child_nhs_number,
            child_local_id: requested.child_local_id,
            child_name: requested.child_name,
            local_authority: requested.local_authority,
            due: requested.due,
            referral_id: requested.referral_id,
            plan_id: requested.plan_id,
            expected_date_of_delivery: requested.expected_date_of_delivery,
            police_risk_assessments: requested.police_risk_assessments,
            ..wire::Conference::default()
        };
        self.conferences.insert(
            requested.conference_id,
            Tracked {
                aggregate,
                view,
                details: invitees.into_iter().collect(),
                version,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use contract::common::v1::{Date, Organisation};

    use super::*;

    fn date(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    fn at() -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_768_900_000,
            nanos: 0,
        })
    }

    fn gp() -> wire::Invitee {
        wire::Invitee {
            role: wire::InviteeRole::Gp.into(),
            organisation: Some(Organisation {
                ods_code: "Y99001".into(),
                name: "Northgate Surgery".into(),
                ..Organisation::default()
            }),
            ..wire::Invitee::default()
        }
    }

    fn requested() -> ConferenceEvent {
        wire::ConferenceRequested {
            conference_id: "c".into(),
            kind: wire::ConferenceKind::Initial.into(),
            due: date(2026, 1, 30),
            ..wire::ConferenceRequested::default()
        }
        .into()
    }

    fn scheduled() -> ConferenceEvent {
        wire::ConferenceScheduled {
            conference_id: "c".into(),
            scheduled_for: at(),
            venue: "Civic Centre".into(),
            ..wire::ConferenceScheduled::default()
        }
        .into()
    }

    fn check(events: Vec<ConferenceEvent>) -> (Projection, Vec<Result<(), String>>) {
        let mut projection = Projection::default();
        let outcomes = service_core::follow::apply_in_order(
            "conference-scheduler",
            events,
            |record, event| projection.apply(record, event),
        );
        (projection, outcomes)
    }

    #[test]
    fn each_step_of_a_conference_shows_in_its_view() {
        use wire::ConferenceStatus::*;
        let attended = wire::AttendanceRecorded {
            conference_id: "c".into(),
            held_on: date(2026, 1, 20),
            present: vec![gp()],
        };
        let invited = wire::InvitationsUpdated {
            conference_id: "c".into(),
            added: vec![gp()],
            removed: vec![],
        };
        // (what, events of conference "c", its status, its invitees, its history)
        type Case = (
            &'static str,
            Vec<ConferenceEvent>,
            wire::ConferenceStatus,
            usize,
            usize,
        );
        let cases: Vec<Case> = vec![
            ("requested", vec![requested()], Requested, 0, 0),
            ("scheduled", vec![requested(), scheduled()], Scheduled, 0, 0),
            (
                "a GP invited, with the name the chair gave",
                vec![requested(), invited.clone().into()],
                Requested,
                1,
                0,
            ),
            (
                "rearranged",
                vec![
                    requested(),
                    scheduled(),
                    wire::ConferenceRearranged {
                        conference_id: "c".into(),
                        scheduled_for: at(),
                        reason: "chair unwell".into(),
                        ..wire::ConferenceRearranged::default()
                    }
                    .into(),
                ],
                Scheduled,
                0,
                1,
            ),
            (
                "cancelled",
                vec![
                    requested(),
                    wire::ConferenceCancelled {
                        conference_id: "c".into(),
                        reason: "moved away".into(),
                        withdrawn: false,
                    }
                    .into(),
                ],
                Cancelled,
                0,
                1,
            ),
            (
                "held",
                vec![requested(), invited.into(), scheduled(), attended.into()],
                Held,
                1,
                0,
            ),
        ];
        for (what, events, status, invitees, history) in cases {
            let count = events.len();
            let (projection, outcomes) = check(events);
            assert!(outcomes.iter().all(Result::is_ok), "{what}: {outcomes:?}");
            let tracked = &projection.conferences["c"];
            let view = tracked.refreshed_view();
            assert_eq!(view.status, i32::from(status), "{what}");
            assert_eq!(view.invitees.len(), invitees, "{what}");
            assert_eq!(view.history.len(), history, "{what}");
            assert_eq!(tracked.version, count as u64 - 1, "{what}");
            if invitees > 0 {
                let named = view.invitees[0]
                    .organisation
                    .as_ref()
                    .map(|o| o.name.as_str());
                assert_eq!(named, Some("Northgate Surgery"), "{what}");
            }
        }
    }

    #[test]
    fn what_cannot_be_applied_is_refused_naming_the_field() {
        let agency_without_organisation = wire::Invitee {
            role: wire::InviteeRole::Police.into(),
            ..wire::Invitee::default()
        };
        // (what, events, the field the last one's refusal names)
        let cases: Vec<(&str, Vec<ConferenceEvent>, &str)> = vec![
            (
                "scheduling a conference never requested",
                vec![scheduled()],
                "conference_id",
            ),
            (
                "a request of no kind",
                vec![
                    wire::ConferenceRequested {
                        conference_id: "c".into(),
                        due: date(2026, 1, 30),
                        ..wire::ConferenceRequested::default()
                    }
                    .into(),
                ],
                "kind",
            ),
            (
                "a schedule without a time",
                vec![
                    requested(),
                    wire::ConferenceScheduled {
                        conference_id: "c".into(),
                        ..wire::ConferenceScheduled::default()
                    }
                    .into(),
                ],
                "scheduled_for",
            ),
            (
                "an agency invited without its organisation",
                vec![
                    requested(),
                    wire::InvitationsUpdated {
                        conference_id: "c".into(),
                        added: vec![agency_without_organisation],
                        removed: vec![],
                    }
                    .into(),
                ],
                "added.organisation",
            ),
        ];
        for (what, events, field) in cases {
            let (_, outcomes) = check(events);
            let refused = outcomes
                .last()
                .expect("an outcome")
                .as_ref()
                .expect_err(what);
            assert!(refused.starts_with(field), "{what}: {refused}");
        }
    }
}
