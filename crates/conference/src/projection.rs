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
        view
    }
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
            ConferenceEvent::Quarantined(_) => return Ok(()),
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
                    tracked.view.status = wire::ConferenceStatus::Cancelled.into();
                    tracked.view.scheduled_for = None;
                    tracked
                        .view
                        .history
                        .push(format!("cancelled: {}", cancelled.reason));
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
            ConferenceEvent::ReportReceived(received) => (received.conference_id, Box::new(|_| {})),
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
                    if !recorded.plan_id.is_empty() {
                        tracked.view.plan_id = recorded.plan_id;
                    }
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
            child_name: requested.child_name,
            local_authority: requested.local_authority,
            due: requested.due,
            referral_id: requested.referral_id,
            plan_id: requested.plan_id,
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
