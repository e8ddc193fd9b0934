//! The `ConferenceScheduler` gRPC service: validate, decide with the domain,
//! append, and answer from the projection once it reflects the write.

use std::sync::{Arc, RwLock};

use contract::common::v1::ConsistencyToken;
use contract::conference::v1 as wire;
use contract::conference::v1::conference_scheduler_server::{self, ConferenceSchedulerServer};
use contract::records::ConferenceEvent;
use domain::calendar::Calendar;
use domain::clocks;
use domain::codes::ConferenceKind;
use domain::conference::{InviteeRole, QuorumRule};
use eventlog::{EventId, EventLog, ExpectedVersion, NewEvent};
use prost::{Message, Name};
use service_core::audit;
use service_core::clock::Clock;
use service_core::limits;
use service_core::policy::Parties;
use service_core::reject::{from_domain, from_log, internal, invalid, not_found};
use service_core::validate::{self, Caller};
use service_core::{Watermark, consistency};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::projection::{Projection, Tracked};

#[derive(Debug, Clone)]
pub struct ConferenceScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: EventLog,
    projection: Arc<RwLock<Projection>>,
    watermark: Watermark,
    calendar: Calendar,
    quorum: QuorumRule,
    clock: Clock,
    quarantine: service_core::Quarantine,
}

/// The invitees a new conference starts with: one per default role, social
/// care filled in by the local authority, agencies to be named by editing.
/// The last conference held for a plan.
struct LastHeld {
    held_on: domain::date::Date,
    kind: ConferenceKind,
    invitees: Vec<wire::Invitee>,
}

/// Whom a conference that follows another invites: everyone that one did,
/// their replies, reports and attendance yet to come.
pub(crate) fn invited_again(invitees: Vec<wire::Invitee>) -> Vec<wire::Invitee> {
    invitees
        .into_iter()
        .map(|invitee| wire::Invitee {
            response: 0,
            report_received: false,
            attended: false,
            ..invitee
        })
        .collect()
}

pub(crate) fn default_invitees(
    kind: ConferenceKind,
    local_authority: &contract::common::v1::Organisation,
) -> Vec<wire::Invitee> {
    InviteeRole::default_invitees(kind)
        .iter()
        .filter(|role| !role.is_agency() || **role == InviteeRole::SocialCare)
        .map(|role| wire::Invitee {
            role: convert::role_to_wire(*role).into(),
            organisation: (*role == InviteeRole::SocialCare).then(|| local_authority.clone()),
            ..wire::Invitee::default()
        })
        .collect()
}

impl ConferenceScheduler {
    pub(crate) fn new(
        log: EventLog,
        projection: Arc<RwLock<Projection>>,
        watermark: Watermark,
        calendar: Calendar,
        quorum: QuorumRule,
        clock: Clock,
        quarantine: service_core::Quarantine,
    ) -> Self {
        ConferenceScheduler {
            inner: Arc::new(Inner {
                log,
                projection,
                watermark,
                calendar,
                quorum,
                clock,
                quarantine,
            }),
        }
    }

    pub fn into_server(self) -> ConferenceSchedulerServer<Self> {
        ConferenceSchedulerServer::new(self).max_decoding_message_size(limits::MAX_REQUEST_BYTES)
    }

    pub(crate) fn health(&self) -> &service_core::Health {
        self.inner.quarantine.health()
    }

    pub(crate) fn quarantine(&self) -> &service_core::Quarantine {
        &self.inner.quarantine
    }

    /// Its health, for the server to report NOT_SERVING once its rules stop
    /// for good, and what it quarantined.
    pub fn watched(&self) -> service_core::health::Watched {
        service_core::health::Watched::new::<ConferenceSchedulerServer<Self>>(
            self.health().clone(),
            crate::LOG,
        )
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    /// What day it is for this service.
    pub(crate) fn today(&self) -> domain::date::Date {
        self.inner.clock.today()
    }

    pub(crate) fn calendar(&self) -> &Calendar {
        &self.inner.calendar
    }

    async fn catch_up(&self) -> Result<(), Status> {
        let token = self.inner.watermark.token(self.inner.log.head());
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await
    }

    /// The last conference held for a plan: what a review's statutory
    /// clock runs from, and whom it invites.
    fn last_held(&self, plan_id: &str) -> Result<Option<LastHeld>, Status> {
        let held = self
            .conferences_of_plan(plan_id)
            .map_err(|error| internal("reading conferences", error))?
            .into_iter()
            .filter_map(|(_, tracked)| {
                let held_on = tracked.view.held_on.as_ref()?;
                Some(LastHeld {
                    held_on: validate::date("held_on", Some(held_on)).ok()?,
                    kind: convert::kind(tracked.view.kind).ok()?,
                    invitees: tracked.refreshed_view().invitees,
                })
            })
            .max_by_key(|last| last.held_on);
        Ok(held)
    }

    /// Every conference of a plan, by id.
    pub(crate) fn conferences_of_plan(
        &self,
        plan_id: &str,
    ) -> Result<Vec<(String, Tracked)>, String> {
        Ok(self
            .inner
            .projection
            .read()
            .map_err(|error| format!("reading conferences: {error}"))?
            .conferences
            .iter()
            .filter(|(_, tracked)| !plan_id.is_empty() && tracked.view.plan_id == plan_id)
            .map(|(id, tracked)| (id.clone(), tracked.clone()))
            .collect())
    }

    fn tracked(&self, conference_id: &str) -> Result<Tracked, Status> {
        self.inner
            .projection
            .read()
            .map_err(|error| internal("reading conferences", error))?
            .conferences
            .get(conference_id)
            .cloned()
            .ok_or_else(|| not_found("conference", conference_id))
    }

    pub(crate) async fn append(
        &self,
        conference_id: &str,
        expected: ExpectedVersion,
        event: NewEvent,
    ) -> Result<ConsistencyToken, Status> {
        let outcome = self
            .inner
            .log
            .append(
                &format!("conference-{conference_id}"),
                expected,
                vec![event],
            )
            .await
            .map_err(from_log)?;
        Ok(self.inner.watermark.token(outcome.positions.end))
    }

    /// The conference as the projection has it once it reflects `token`.
    async fn answer(
        &self,
        conference_id: &str,
        token: ConsistencyToken,
        caller: &Caller,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await?;
        let conference = self.view(conference_id, caller)?;
        Ok(Response::new(wire::ConferenceResponse {
            conference: Some(conference),
            token: Some(token),
        }))
    }

    /// A conference as `caller` may see it today: the owning council sees
    /// every written report, an invited agency only its own.
    fn view(&self, conference_id: &str, caller: &Caller) -> Result<wire::Conference, Status> {
        let today = self.today();
        let tracked = self.tracked(conference_id)?;
        let mut view = tracked.refreshed_view();
        let owner = view
            .local_authority
            .as_ref()
            .is_some_and(|la| la.ods_code == caller.organisation.as_str());
        if !owner {
            view.reports
                .retain(|report| report.organisation_ods_code == caller.organisation.as_str());
            // Police intelligence: for the chair and the police invited.
            let police_invited = view.invitees.iter().any(|invitee| {
                invitee.role == i32::from(wire::InviteeRole::Police)
                    && invitee
                        .organisation
                        .as_ref()
                        .is_some_and(|o| o.ods_code == caller.organisation.as_str())
            });
            if !police_invited {
                view.police_risk_assessments.clear();
            }
        }
        view.overdue = tracked.aggregate.is_overdue(today);
        view.first_core_group_overdue = tracked.aggregate.first_core_group.is_none()
            && tracked
                .aggregate
                .core_group_due(self.calendar())
                .is_some_and(|due| today > due);
        Ok(view)
    }

    /// Creates a conference with its statutory due date, once: `id` is
    /// derived by the caller so a retry (or a redelivered trigger) finds it.
    pub(crate) async fn request(
        &self,
        id: EventId,
        requested: wire::ConferenceRequested,
        caller: &Caller,
    ) -> Result<ConsistencyToken, Status> {
        let event = NewEvent {
            event_id: id,
            ..service_core::event::by_person(&requested, caller)
        };
        self.append(&requested.conference_id, ExpectedVersion::Any, event)
            .await
    }

    /// Validates a command on a conference, decides it with the domain, and
    /// appends the resulting event.
    /// `rpc` is asked of the access policy first by role, then, once the
    /// conference is found, by relationship: `own_invitation` names the
    /// organisation whose invitation the request is about, if it is one.
    async fn change<M: Message + Name>(
        &self,
        rpc: &str,
        caller: &Caller,
        conference_id: &str,
        own_invitation: Option<&str>,
        decide: impl FnOnce(&Tracked) -> Result<M, Status>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        self.change_on(rpc, caller, conference_id, own_invitation, |tracked| {
            decide(tracked).map(|payload| (payload, None))
        })
        .await
    }

    /// As `change`, for a change that took effect on a day of its own (a
    /// conference held, a report written): the event occurs then, so a
    /// chronology puts it where it happened, not where it was typed in.
    async fn change_on<M: Message + Name>(
        &self,
        rpc: &str,
        caller: &Caller,
        conference_id: &str,
        own_invitation: Option<&str>,
        decide: impl FnOnce(&Tracked) -> Result<(M, Option<domain::date::Date>), Status>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        audit::allow_role(&self.inner.log, rpc, caller).await?;
        self.catch_up().await?;
        let tracked = self.tracked(conference_id)?;
        audit::allow(
            &self.inner.log,
            rpc,
            caller,
            &parties(&tracked, own_invitation),
        )
        .await?;
        let (payload, effective) = decide(&tracked)?;
        let event = service_core::event::by_person(&payload, caller);
        let event = match effective {
            Some(day) => NewEvent {
                occurred_at: validate::noon_of(day),
                ..event
            },
            None => event,
        };
        let token = self
            .append(
                conference_id,
                ExpectedVersion::Exact(tracked.version),
                event,
            )
            .await?;
        self.answer(conference_id, token, caller).await
    }
}

fn time(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<prost_types::Timestamp, Status> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    validate::timestamp_or_now(field, Some(value))
}

/// The RPCs, as the access policy (`service_core::policy`) names them.
mod rpc {
    pub const CREATE: &str = "safeguard.conference.v1.ConferenceScheduler/CreateConference";
    pub const SCHEDULE: &str = "safeguard.conference.v1.ConferenceScheduler/ScheduleConference";
    pub const REARRANGE: &str = "safeguard.conference.v1.ConferenceScheduler/RearrangeConference";
    pub const CANCEL: &str = "safeguard.conference.v1.ConferenceScheduler/CancelConference";
    pub const INVITATIONS: &str = "safeguard.conference.v1.ConferenceScheduler/UpdateInvitations";
    pub const REPLY: &str = "safeguard.conference.v1.ConferenceScheduler/RecordInviteReply";
    pub const REPORT: &str = "safeguard.conference.v1.ConferenceScheduler/RecordReportReceived";
    pub const ATTENDANCE: &str = "safeguard.conference.v1.ConferenceScheduler/RecordAttendance";
    pub const OUTCOME: &str = "safeguard.conference.v1.ConferenceScheduler/RecordOutcome";
    pub const GET: &str = "safeguard.conference.v1.ConferenceScheduler/GetConference";
    pub const CORE_GROUP: &str =
        "safeguard.conference.v1.ConferenceScheduler/RecordCoreGroupMeeting";
    pub const LIST: &str = "safeguard.conference.v1.ConferenceScheduler/ListConferences";
}

/// Whom a conference concerns, for the access policy: the council that
/// convenes it, and the organisations invited (only `own_invitation`'s,
/// when the request is about one invitation).
fn parties(tracked: &Tracked, own_invitation: Option<&str>) -> Parties {
    let invited = tracked
        .refreshed_view()
        .invitees
        .into_iter()
        .filter_map(|invitee| {
            invitee
                .organisation
                .map(|organisation| organisation.ods_code)
        })
        .filter(|ods| own_invitation.is_none_or(|own| own == ods));
    Parties {
        owners: tracked
            .view
            .local_authority
            .iter()
            .map(|la| la.ods_code.clone())
            .collect(),
        invitees: invited.collect(),
        ..Parties::default()
    }
}

#[tonic::async_trait]
impl conference_scheduler_server::ConferenceScheduler for ConferenceScheduler {
    async fn create_conference(
        &self,
        request: Request<wire::CreateConferenceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::CREATE, &caller).await?;
        let kind = convert::kind(request.kind)?;
        let child = validate::child_id(
            "child_nhs_number",
            request.child_nhs_number.as_ref(),
            "child_local_id",
            request.child_local_id.as_ref(),
        )?;
        let local_authority =
            validate::organisation("local_authority", request.local_authority.as_ref())?;
        validate::issued_by(&child, "child_local_id", &local_authority.ods_code)?;
        if child.local_id().is_some() && request.expected_date_of_delivery.is_some() {
            return Err(invalid(
                "child_local_id",
                "a pre-birth conference is held on the mother's NHS number",
            ));
        }
        audit::allow(
            &self.inner.log,
            rpc::CREATE,
            &caller,
            &Parties::owned_by(local_authority.ods_code.clone()),
        )
        .await?;
        self.catch_up().await?;
        let previous = match kind {
            ConferenceKind::Review => self.last_held(&request.plan_id)?,
            ConferenceKind::Initial | ConferenceKind::TransferIn => None,
        };
        let clock_starts = match &previous {
            // A review's clock is the previous conference of its plan
            // (Working Together 2023: the first review within three
            // months of the initial conference, then at most six months
            // apart), whatever the caller thinks it is.
            Some(LastHeld { held_on, .. }) => {
                let held_on = *held_on;
                let given = validate::optional_date("clock_starts", request.clock_starts.as_ref())?;
                if given.is_some_and(|given| given != held_on) {
                    return Err(invalid(
                        "clock_starts",
                        format!(
                            "a review's clock starts at the plan's previous conference, held on {held_on}: leave it unset"
                        ),
                    ));
                }
                held_on
            }
            None => validate::date("clock_starts", request.clock_starts.as_ref())?,
        };
        let expected_date_of_delivery = validate::optional_date(
            "expected_date_of_delivery",
            request.expected_date_of_delivery.as_ref(),
        )?;
        if expected_date_of_delivery.is_some() && kind != ConferenceKind::Initial {
            return Err(invalid(
                "expected_date_of_delivery",
                "only a pre-birth initial conference has one",
            ));
        }
        let key = validate::required_text("idempotency_key", &request.idempotency_key)?;
        let due = match kind {
            ConferenceKind::Initial | ConferenceKind::TransferIn => {
                clocks::icpc_due(self.calendar(), clock_starts)
            }
            ConferenceKind::Review => match previous.as_ref().map(|last| last.kind) {
                Some(ConferenceKind::Review) => clocks::next_review_due(clock_starts),
                _ => clocks::first_review_due(clock_starts),
            },
        };
        let id = EventId::derived(
            EventId::from_bytes([0; 16]),
            &format!("conference:{}:{key}", caller.organisation),
            0,
        );
        let conference_id = id.to_string();
        let (child_nhs_number, child_local_id) = validate::to_wire_child(&child);
        let requested = wire::ConferenceRequested {
            conference_id: conference_id.clone(),
            kind: request.kind,
            child_nhs_number,
            child_local_id,
            child_name: request.child_name.trim().to_owned(),
            // A review invites whom the plan's last conference did.
            invitees: match previous {
                Some(last) => invited_again(last.invitees),
                None => default_invitees(kind, &local_authority),
            },
            local_authority: Some(local_authority),
            clock_starts: request.clock_starts,
            due: Some(validate::to_wire_date(due)),
            referral_id: request.referral_id,
            plan_id: request.plan_id,
            expected_date_of_delivery: expected_date_of_delivery.map(validate::to_wire_date),
            police_risk_assessments: Vec::new(),
        };
        let token = self.request(id, requested, &caller).await?;
        self.answer(&conference_id, token, &caller).await
    }

    async fn schedule_conference(
        &self,
        request: Request<wire::ScheduleConferenceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let at = time("scheduled_for", request.scheduled_for.as_ref())?;
        self.change(
            rpc::SCHEDULE,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                tracked
                    .aggregate
                    .schedule(validate::date_of(&at))
                    .map_err(from_domain)?;
                Ok(wire::ConferenceScheduled {
                    conference_id: request.conference_id.clone(),
                    scheduled_for: Some(at),
                    venue: request.venue.trim().to_owned(),
                    invitees: tracked.refreshed_view().invitees,
                    child_nhs_number: tracked.view.child_nhs_number.clone(),
                    local_authority: tracked.view.local_authority.clone(),
                    kind: tracked.view.kind,
                })
            },
        )
        .await
    }

    async fn rearrange_conference(
        &self,
        request: Request<wire::RearrangeConferenceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let at = time("scheduled_for", request.scheduled_for.as_ref())?;
        self.change(
            rpc::REARRANGE,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                let change = tracked
                    .aggregate
                    .rearrange(validate::date_of(&at), &request.reason)
                    .map_err(from_domain)?;
                let ConferenceEvent::Rearranged(moved) = convert::to_wire(&change) else {
                    return Err(internal("rearranging", "the domain gave another event"));
                };
                Ok(wire::ConferenceRearranged {
                    conference_id: request.conference_id.clone(),
                    scheduled_for: Some(at),
                    venue: request.venue.trim().to_owned(),
                    ..moved
                })
            },
        )
        .await
    }

    async fn cancel_conference(
        &self,
        request: Request<wire::CancelConferenceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        self.change(
            rpc::CANCEL,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                let change = tracked
                    .aggregate
                    .cancel(&request.reason)
                    .map_err(from_domain)?;
                let ConferenceEvent::Cancelled(cancelled) = convert::to_wire(&change) else {
                    return Err(internal("cancelling", "the domain gave another event"));
                };
                Ok(wire::ConferenceCancelled {
                    conference_id: request.conference_id.clone(),
                    ..cancelled
                })
            },
        )
        .await
    }

    async fn update_invitations(
        &self,
        request: Request<wire::UpdateInvitationsRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let mut added = Vec::new();
        for (index, invitee) in request.add.iter().enumerate() {
            let field = format!("add[{index}]");
            let key = convert::invitee_key(&field, invitee)?;
            let organisation = match &invitee.organisation {
                Some(organisation) => Some(validate::organisation(
                    &format!("{field}.organisation"),
                    Some(organisation),
                )?),
                None => None,
            };
            added.push((
                key,
                wire::Invitee {
                    organisation,
                    ..invitee.clone()
                },
            ));
        }
        let removed = request
            .remove
            .iter()
            .enumerate()
            .map(|(index, invitee)| convert::invitee_key(&format!("remove[{index}]"), invitee))
            .collect::<Result<Vec<_>, _>>()?;
        self.change(
            rpc::INVITATIONS,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                let change = tracked
                    .aggregate
                    .update_invitations(
                        added.iter().map(|(key, _)| key.clone()).collect(),
                        removed.clone(),
                    )
                    .map_err(from_domain)?;
                let ConferenceEvent::InvitationsUpdated(updated) = convert::to_wire(&change) else {
                    return Err(internal(
                        "updating invitations",
                        "the domain gave another event",
                    ));
                };
                // Those added as the caller named them, with their details.
                Ok(wire::InvitationsUpdated {
                    conference_id: request.conference_id.clone(),
                    added: added.iter().map(|(_, invitee)| invitee.clone()).collect(),
                    ..updated
                })
            },
        )
        .await
    }

    async fn record_invite_reply(
        &self,
        request: Request<wire::RecordInviteReplyRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let key = convert::key("invitee", request.role, &request.organisation_ods_code)?;
        let response = convert::response(request.response)?;
        self.change(
            rpc::REPLY,
            &caller,
            &request.conference_id,
            Some(&request.organisation_ods_code),
            |tracked| {
                let change = tracked
                    .aggregate
                    .reply(key.clone(), response)
                    .map_err(from_domain)?;
                let ConferenceEvent::InviteReplied(replied) = convert::to_wire(&change) else {
                    return Err(internal(
                        "recording a reply",
                        "the domain gave another event",
                    ));
                };
                Ok(wire::InviteReplied {
                    conference_id: request.conference_id.clone(),
                    ..replied
                })
            },
        )
        .await
    }

    async fn record_report_received(
        &self,
        request: Request<wire::RecordReportReceivedRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let key = convert::key("invitee", request.role, &request.organisation_ods_code)?;
        let text = validate::required_text("text", &request.text)?;
        let author = validate::required_text("author", &request.author)?;
        let written_on = validate::date("written_on", request.written_on.as_ref())?;
        if written_on > self.today() {
            return Err(invalid("written_on", "is in the future"));
        }
        self.change_on(
            rpc::REPORT,
            &caller,
            &request.conference_id,
            Some(&request.organisation_ods_code),
            |tracked| {
                let change = tracked
                    .aggregate
                    .receive_report(key.clone())
                    .map_err(from_domain)?;
                let ConferenceEvent::ReportReceived(received) = convert::to_wire(&change) else {
                    return Err(internal(
                        "recording a report",
                        "the domain gave another event",
                    ));
                };
                Ok((
                    wire::ReportReceived {
                        conference_id: request.conference_id.clone(),
                        text,
                        author,
                        written_on: Some(validate::to_wire_date(written_on)),
                        ..received
                    },
                    Some(written_on),
                ))
            },
        )
        .await
    }

    async fn record_attendance(
        &self,
        request: Request<wire::RecordAttendanceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let held_on = validate::date("held_on", request.held_on.as_ref())?;
        if held_on > self.today() {
            return Err(invalid("held_on", "is in the future"));
        }
        let present = request
            .present
            .iter()
            .map(|invitee| convert::invitee_key("present", invitee))
            .collect::<Result<Vec<_>, _>>()?;
        self.change_on(
            rpc::ATTENDANCE,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                let change = tracked
                    .aggregate
                    .record_attendance(held_on, present.clone())
                    .map_err(from_domain)?;
                let ConferenceEvent::AttendanceRecorded(attended) = convert::to_wire(&change)
                else {
                    return Err(internal(
                        "recording attendance",
                        "the domain gave another event",
                    ));
                };
                // Those present as the caller named them, with their details.
                Ok((
                    wire::AttendanceRecorded {
                        conference_id: request.conference_id.clone(),
                        present: request.present.clone(),
                        ..attended
                    },
                    Some(held_on),
                ))
            },
        )
        .await
    }

    async fn record_outcome(
        &self,
        request: Request<wire::RecordOutcomeRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let outcome = convert::outcome(request.outcome.as_ref())?;
        let override_reason = request
            .outcome
            .as_ref()
            .map(|outcome| outcome.quorum_override_reason.as_str());
        let quorum = self.inner.quorum;
        let calendar = self.calendar();
        self.change_on(
            rpc::OUTCOME,
            &caller,
            &request.conference_id,
            None,
            |tracked| {
                let change = tracked
                    .aggregate
                    .record_outcome(outcome.clone(), quorum, override_reason)
                    .map_err(from_domain)?;
                let ConferenceEvent::OutcomeRecorded(recorded) = convert::to_wire(&change) else {
                    return Err(internal(
                        "recording an outcome",
                        "the domain gave another event",
                    ));
                };
                let starts_plan = matches!(
                    outcome,
                    domain::conference::Outcome::Initial { plan: Some(_) }
                );
                let plan_id = if starts_plan {
                    EventId::new().to_string()
                } else {
                    tracked.view.plan_id.clone()
                };
                let mut decided = tracked.aggregate.clone();
                decided.apply(&change);
                let first_core_group_due =
                    decided.core_group_due(calendar).map(validate::to_wire_date);
                let view = tracked.refreshed_view();
                let effective = tracked.aggregate.held_on;
                Ok((
                    wire::ConferenceOutcomeRecorded {
                        conference_id: request.conference_id.clone(),
                        kind: tracked.view.kind,
                        held_on: tracked.view.held_on,
                        child_nhs_number: tracked.view.child_nhs_number.clone(),
                        child_local_id: tracked.view.child_local_id.clone(),
                        child_name: tracked.view.child_name.clone(),
                        local_authority: tracked.view.local_authority.clone(),
                        expected_date_of_delivery: tracked.view.expected_date_of_delivery,
                        first_core_group_due,
                        plan_id,
                        invitees: view.invitees,
                        ..recorded
                    },
                    effective,
                ))
            },
        )
        .await
    }

    async fn record_core_group_meeting(
        &self,
        request: Request<wire::RecordCoreGroupMeetingRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let plan_id = validate::required_text("plan_id", &request.plan_id)?;
        let held_on = validate::date("held_on", request.held_on.as_ref())?;
        if held_on > self.today() {
            return Err(invalid("held_on", "is in the future"));
        }
        audit::allow_role(&self.inner.log, rpc::CORE_GROUP, &caller).await?;
        self.catch_up().await?;
        let made_it = self
            .conferences_of_plan(&plan_id)
            .map_err(|error| internal("reading conferences", error))?
            .into_iter()
            .find(|(_, tracked)| tracked.aggregate.made_a_plan())
            .map(|(conference_id, _)| conference_id)
            .ok_or_else(|| not_found("plan made by a conference", &plan_id))?;
        let calendar = self.calendar();
        self.change_on(rpc::CORE_GROUP, &caller, &made_it, None, |tracked| {
            let change = tracked
                .aggregate
                .record_core_group(held_on)
                .map_err(from_domain)?;
            let ConferenceEvent::CoreGroupMet(met) = convert::to_wire(&change) else {
                return Err(internal(
                    "recording a core group",
                    "the domain gave another event",
                ));
            };
            let due = tracked.aggregate.core_group_due(calendar);
            let working_days_late = match due.map(|due| clocks::timeliness(calendar, due, held_on))
            {
                Some(clocks::Timeliness::Late { working_days }) => {
                    u32::try_from(working_days).unwrap_or(u32::MAX)
                }
                _ => 0,
            };
            Ok((
                wire::CoreGroupMet {
                    conference_id: made_it.clone(),
                    plan_id: plan_id.clone(),
                    first_core_group_due: due.map(validate::to_wire_date),
                    working_days_late,
                    child_nhs_number: tracked.view.child_nhs_number.clone(),
                    local_authority: tracked.view.local_authority.clone(),
                    ..met
                },
                Some(held_on),
            ))
        })
        .await
    }

    async fn get_conference(
        &self,
        request: Request<wire::GetConferenceRequest>,
    ) -> Result<Response<wire::ConferenceResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::GET, &caller).await?;
        self.inner
            .watermark
            .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
            .await?;
        let parties = parties(&self.tracked(&request.conference_id)?, None);
        audit::allow(&self.inner.log, rpc::GET, &caller, &parties).await?;
        let conference = self.view(&request.conference_id, &caller)?;
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::GET,
                &request.purpose,
                conference.child_nhs_number.clone(),
                parties.owners,
                [conference.conference_id.clone()],
            ),
        )
        .await?;
        Ok(Response::new(wire::ConferenceResponse {
            conference: Some(conference),
            token: None,
        }))
    }

    async fn list_conferences(
        &self,
        request: Request<wire::ListConferencesRequest>,
    ) -> Result<Response<wire::ListConferencesResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let local_authority = domain::OdsCode::parse(&request.local_authority_ods_code)
            .map_err(|error| invalid("local_authority_ods_code", error))?;
        audit::allow(
            &self.inner.log,
            rpc::LIST,
            &caller,
            &Parties::owned_by(local_authority.as_str()),
        )
        .await?;
        let today = validate::optional_date("as_of", request.as_of.as_ref())?
            .unwrap_or_else(|| self.today());
        self.inner
            .watermark
            .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
            .await?;
        let mut conferences: Vec<wire::Conference> = self
            .inner
            .projection
            .read()
            .map_err(|error| internal("reading conferences", error))?
            .conferences
            .values()
            .filter(|tracked| {
                !matches!(
                    tracked.aggregate.status,
                    domain::conference::Status::Held { .. }
                        | domain::conference::Status::Decided
                        | domain::conference::Status::Withdrawn
                ) && tracked
                    .view
                    .local_authority
                    .as_ref()
                    .is_some_and(|la| la.ods_code == local_authority.as_str())
                    && (!request.overdue_only || tracked.aggregate.is_overdue(today))
            })
            .map(|tracked| {
                let mut view = tracked.refreshed_view();
                view.overdue = tracked.aggregate.is_overdue(today);
                view
            })
            .collect();
        conferences.sort_by_key(|view| {
            (
                view.due.map(|due| (due.year, due.month, due.day)),
                view.conference_id.clone(),
            )
        });
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::LIST,
                &request.purpose,
                conferences
                    .iter()
                    .filter_map(|view| view.child_nhs_number.clone()),
                [local_authority.to_string()],
                conferences.iter().map(|view| view.conference_id.clone()),
            ),
        )
        .await?;
        Ok(Response::new(wire::ListConferencesResponse { conferences }))
    }
}
