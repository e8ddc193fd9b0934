//! The conference aggregate: a child protection conference from its request
//! (with a statutory due date that never moves) through scheduling,
//! invitations, replies, reports and attendance to its outcome, checked
//! against the quorum rule.

use std::collections::BTreeMap;

use crate::calendar::Calendar;
use crate::clocks;
use crate::codes::{AbuseCategory, ConferenceKind, InviteResponse, PlanEndReason};
use crate::date::Date;
use crate::error::DomainError;
use crate::ids::OdsCode;

/// In what capacity someone is invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InviteeRole {
    Parent,
    Child,
    SocialCare,
    Police,
    Gp,
    HealthVisitor,
    SchoolNurse,
    Paediatrician,
    School,
    EarlyYears,
    Camhs,
    Probation,
    Housing,
    Other,
}

impl InviteeRole {
    /// Parents and the child attend, but are not agencies for the quorum.
    pub fn is_agency(self) -> bool {
        !matches!(self, InviteeRole::Parent | InviteeRole::Child)
    }

    /// Who is invited to a new conference of each kind, before editing.
    pub fn default_invitees(kind: ConferenceKind) -> &'static [InviteeRole] {
        use InviteeRole::*;
        match kind {
            ConferenceKind::Initial => &[
                Parent,
                SocialCare,
                Police,
                Gp,
                HealthVisitor,
                SchoolNurse,
                Paediatrician,
                School,
                EarlyYears,
                Camhs,
            ],
            ConferenceKind::Review => &[Parent, SocialCare, Police, Gp, HealthVisitor, School],
            ConferenceKind::TransferIn => &[Parent, SocialCare, Police, Gp, HealthVisitor, School],
        }
    }
}

/// An invitee: a role, and the organisation filling it (none for family).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteeKey {
    pub role: InviteeRole,
    pub organisation: Option<OdsCode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteeState {
    pub response: Option<InviteResponse>,
    pub report_received: bool,
    pub attended: bool,
}

/// Local procedures set the quorum; none is set nationally. The default is
/// the common one: social care plus at least two other agencies present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumRule {
    pub social_care_required: bool,
    pub min_other_agencies: usize,
}

impl Default for QuorumRule {
    fn default() -> Self {
        QuorumRule {
            social_care_required: true,
            min_other_agencies: 2,
        }
    }
}

impl QuorumRule {
    /// Whether those present make a quorum. It counts agencies, not people
    /// or roles: two people of one trust (a health visitor and a school
    /// nurse, say) are one agency, and the council's own people besides
    /// social care are social care's agency. An invitee named by role
    /// alone counts as an agency of that role.
    pub fn is_met<'a>(&self, present: impl IntoIterator<Item = &'a InviteeKey>) -> bool {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Agency<'a> {
            Organisation(&'a OdsCode),
            Unnamed(InviteeRole),
        }
        let mut social_care = std::collections::BTreeSet::new();
        let mut others = std::collections::BTreeSet::new();
        for key in present {
            let agency = match &key.organisation {
                Some(ods) => Agency::Organisation(ods),
                None => Agency::Unnamed(key.role),
            };
            match key.role {
                InviteeRole::SocialCare => {
                    social_care.insert(agency);
                }
                role if role.is_agency() => {
                    others.insert(agency);
                }
                _ => {}
            }
        }
        let other_agencies = others.difference(&social_care).count();
        (!social_care.is_empty() || !self.social_care_required)
            && other_agencies >= self.min_other_agencies
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewDecision {
    Continue,
    ChangeCategory(AbuseCategory),
    /// The plan ends, for one of the reasons a conference decides
    /// (`PlanEndReason::decided_by_a_conference`), with what was said:
    /// required when the reason is "other".
    End {
        reason: PlanEndReason,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An initial or transfer-in conference: a plan under a category, or none.
    Initial {
        plan: Option<AbuseCategory>,
    },
    Review(ReviewDecision),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Requested,
    Scheduled {
        on: Date,
    },
    Cancelled,
    /// No longer due: what it was for has ended.
    Withdrawn,
    /// Attendance recorded: the conference took place.
    Held {
        on: Date,
    },
    Decided,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Requested {
        kind: ConferenceKind,
        due: Date,
        invitees: Vec<InviteeKey>,
    },
    Scheduled {
        on: Date,
    },
    Rearranged {
        on: Date,
        reason: String,
    },
    Cancelled {
        reason: String,
    },
    Withdrawn {
        reason: String,
    },
    InvitationsUpdated {
        added: Vec<InviteeKey>,
        removed: Vec<InviteeKey>,
    },
    InviteReplied {
        invitee: InviteeKey,
        response: InviteResponse,
    },
    ReportReceived {
        invitee: InviteeKey,
    },
    AttendanceRecorded {
        held_on: Date,
        present: Vec<InviteeKey>,
    },
    OutcomeRecorded {
        outcome: Outcome,
        quorate: bool,
        override_reason: Option<String>,
    },
    /// The first meeting of the core group of the plan this conference
    /// made.
    CoreGroupMet {
        held_on: Date,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub kind: ConferenceKind,
    /// The statutory due date: set at the request, never moved.
    pub due: Date,
    pub status: Status,
    pub invitees: BTreeMap<InviteeKey, InviteeState>,
    pub outcome: Option<Outcome>,
    /// When it took place, once attendance is recorded.
    pub held_on: Option<Date>,
    /// When the plan it made first met as a core group.
    pub first_core_group: Option<Date>,
}

impl Conference {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Self> {
        let mut events = events.into_iter();
        let Some(Event::Requested {
            kind,
            due,
            invitees,
        }) = events.next()
        else {
            return None;
        };
        let mut conference = Conference {
            kind: *kind,
            due: *due,
            status: Status::Requested,
            invitees: invitees
                .iter()
                .map(|key| (key.clone(), InviteeState::default()))
                .collect(),
            outcome: None,
            held_on: None,
            first_core_group: None,
        };
        for event in events {
            conference.apply(event);
        }
        Some(conference)
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Requested { .. } => {}
            Event::Scheduled { on } | Event::Rearranged { on, .. } => {
                self.status = Status::Scheduled { on: *on }
            }
            Event::Cancelled { .. } => self.status = Status::Cancelled,
            Event::Withdrawn { .. } => self.status = Status::Withdrawn,
            Event::InvitationsUpdated { added, removed } => {
                for key in removed {
                    self.invitees.remove(key);
                }
                for key in added {
                    self.invitees.entry(key.clone()).or_default();
                }
            }
            Event::InviteReplied { invitee, response } => {
                self.invitees.entry(invitee.clone()).or_default().response = Some(*response);
            }
            Event::ReportReceived { invitee } => {
                self.invitees
                    .entry(invitee.clone())
                    .or_default()
                    .report_received = true;
            }
            Event::AttendanceRecorded { held_on, present } => {
                for (key, state) in &mut self.invitees {
                    state.attended = present.contains(key);
                }
                for key in present {
                    self.invitees.entry(key.clone()).or_default().attended = true;
                }
                self.status = Status::Held { on: *held_on };
                self.held_on = Some(*held_on);
            }
            Event::OutcomeRecorded { outcome, .. } => {
                self.outcome = Some(outcome.clone());
                self.status = Status::Decided;
            }
            Event::CoreGroupMet { held_on } => self.first_core_group = Some(*held_on),
        }
    }

    /// Whether its outcome made a plan: an initial or transfer-in
    /// conference that decided on one.
    pub fn made_a_plan(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Initial { plan: Some(_) }))
    }

    /// When the first core group meeting of the plan it made is due: 10
    /// working days after it was held.
    pub fn core_group_due(&self, calendar: &Calendar) -> Option<Date> {
        let held_on = self.held_on.filter(|_| self.made_a_plan())?;
        Some(clocks::core_group_due(calendar, held_on))
    }

    /// Records the first core group meeting of the plan it made.
    pub fn record_core_group(&self, held_on: Date) -> Result<Event, DomainError> {
        if !self.made_a_plan() {
            return Err(DomainError::precondition(
                "conference",
                "only a conference that made a plan has a core group",
            ));
        }
        if self.first_core_group.is_some() {
            return Err(DomainError::precondition(
                "conference",
                "its plan's first core group meeting is already recorded",
            ));
        }
        if self.held_on.is_some_and(|held| held_on < held) {
            return Err(DomainError::invalid(
                "held_on",
                "is before the conference that made the plan",
            ));
        }
        Ok(Event::CoreGroupMet { held_on })
    }

    /// Not yet held and past its due date on `today`.
    pub fn is_overdue(&self, today: Date) -> bool {
        matches!(
            self.status,
            Status::Requested | Status::Scheduled { .. } | Status::Cancelled
        ) && today > self.due
    }

    pub fn schedule(&self, on: Date) -> Result<Event, DomainError> {
        match self.status {
            Status::Requested | Status::Cancelled => Ok(Event::Scheduled { on }),
            Status::Scheduled { .. } => Err(DomainError::precondition(
                "conference",
                "it is already scheduled: rearrange it instead",
            )),
            Status::Withdrawn => Err(DomainError::precondition(
                "conference",
                "it was withdrawn: what it was for has ended",
            )),
            _ => Err(DomainError::precondition(
                "conference",
                "it has already been held",
            )),
        }
    }

    // What was asked is checked before whether it may be done now: a bad
    // request is the caller's to fix whatever the conference's state.
    pub fn rearrange(&self, on: Date, reason: &str) -> Result<Event, DomainError> {
        let reason = required("reason", reason)?;
        if !matches!(self.status, Status::Scheduled { .. }) {
            return Err(DomainError::precondition(
                "conference",
                "only a scheduled conference can be rearranged",
            ));
        }
        Ok(Event::Rearranged { on, reason })
    }

    pub fn cancel(&self, reason: &str) -> Result<Event, DomainError> {
        let reason = required("reason", reason)?;
        if !matches!(self.status, Status::Scheduled { .. } | Status::Requested) {
            return Err(DomainError::precondition(
                "conference",
                "only a conference not yet held can be cancelled",
            ));
        }
        Ok(Event::Cancelled { reason })
    }

    /// Withdraws a conference that is no longer due at all (its plan ended
    /// outside a conference): unlike a cancellation, its deadline goes too.
    pub fn withdraw(&self, reason: &str) -> Result<Event, DomainError> {
        let reason = required("reason", reason)?;
        if !matches!(
            self.status,
            Status::Requested | Status::Scheduled { .. } | Status::Cancelled
        ) {
            return Err(DomainError::precondition(
                "conference",
                "only a conference not yet held can be withdrawn",
            ));
        }
        Ok(Event::Withdrawn { reason })
    }

    fn not_decided(&self) -> Result<(), DomainError> {
        if self.status == Status::Decided {
            return Err(DomainError::precondition(
                "conference",
                "its outcome is already recorded",
            ));
        }
        Ok(())
    }

    pub fn update_invitations(
        &self,
        added: Vec<InviteeKey>,
        removed: Vec<InviteeKey>,
    ) -> Result<Event, DomainError> {
        self.not_decided()?;
        if let Some(key) = removed.iter().find(|key| !self.invitees.contains_key(key)) {
            return Err(DomainError::invalid(
                "remove",
                &format!("{key:?} is not invited"),
            ));
        }
        Ok(Event::InvitationsUpdated { added, removed })
    }

    fn invited(&self, invitee: &InviteeKey) -> Result<(), DomainError> {
        if self.invitees.contains_key(invitee) {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "invitee",
                "was not invited to this conference",
            ))
        }
    }

    pub fn reply(
        &self,
        invitee: InviteeKey,
        response: InviteResponse,
    ) -> Result<Event, DomainError> {
        self.not_decided()?;
        self.invited(&invitee)?;
        Ok(Event::InviteReplied { invitee, response })
    }

    pub fn receive_report(&self, invitee: InviteeKey) -> Result<Event, DomainError> {
        self.not_decided()?;
        self.invited(&invitee)?;
        Ok(Event::ReportReceived { invitee })
    }

    pub fn record_attendance(
        &self,
        held_on: Date,
        present: Vec<InviteeKey>,
    ) -> Result<Event, DomainError> {
        if !matches!(self.status, Status::Scheduled { .. } | Status::Held { .. }) {
            return Err(DomainError::precondition(
                "conference",
                "attendance needs a scheduled conference",
            ));
        }
        Ok(Event::AttendanceRecorded { held_on, present })
    }

    /// The outcome, if the conference was held, the outcome fits its kind,
    /// and the quorum was met or the chair overrides it with a reason.
    pub fn record_outcome(
        &self,
        outcome: Outcome,
        rule: QuorumRule,
        override_reason: Option<&str>,
    ) -> Result<Event, DomainError> {
        match self.status {
            Status::Held { .. } => {}
            Status::Decided => {
                return Err(DomainError::precondition(
                    "conference",
                    "its outcome is already recorded",
                ));
            }
            _ => {
                return Err(DomainError::precondition(
                    "conference",
                    "an outcome needs a held conference: record attendance first",
                ));
            }
        }
        let fits = matches!(
            (&outcome, self.kind),
            (
                Outcome::Initial { .. },
                ConferenceKind::Initial | ConferenceKind::TransferIn
            ) | (Outcome::Review(_), ConferenceKind::Review)
        );
        if !fits {
            return Err(DomainError::invalid(
                "outcome",
                &format!("does not fit a {}", self.kind),
            ));
        }
        if let Outcome::Review(ReviewDecision::End { reason, detail }) = &outcome {
            if !reason.decided_by_a_conference() {
                return Err(DomainError::invalid(
                    "outcome.review.end_plan.reason",
                    &format!(
                        "is not a conference's decision: a plan ends outside a conference ({}), recorded with EndPlan",
                        reason.label()
                    ),
                ));
            }
            if *reason == PlanEndReason::Other {
                required("outcome.review.end_plan.detail", detail)?;
            }
        }
        let present = self
            .invitees
            .iter()
            .filter(|(_, state)| state.attended)
            .map(|(key, _)| key);
        let quorate = rule.is_met(present);
        let override_reason = override_reason
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
            .map(str::to_owned);
        if !quorate && override_reason.is_none() {
            return Err(DomainError::precondition(
                "conference",
                "it was not quorate: the chair must record an override reason",
            ));
        }
        Ok(Event::OutcomeRecorded {
            outcome,
            quorate,
            override_reason,
        })
    }
}

fn required(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        Err(DomainError::invalid(field, "is required"))
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    fn key(role: InviteeRole, ods: &str) -> InviteeKey {
        InviteeKey {
            role,
            organisation: Some(OdsCode::parse(ods).expect("ods")),
        }
    }

    fn requested(kind: ConferenceKind) -> Conference {
        Conference::from_events(&[Event::Requested {
            kind,
            due: date("2027-01-26"),
            invitees: vec![
                key(InviteeRole::SocialCare, "E09000099"),
                key(InviteeRole::Police, "P99"),
                key(InviteeRole::Gp, "Y99999"),
                key(InviteeRole::School, "S99999"),
            ],
        }])
        .expect("requested")
    }

    fn held(kind: ConferenceKind, present: &[InviteeKey]) -> Conference {
        let mut conference = requested(kind);
        let scheduled = conference.schedule(date("2027-01-20")).expect("schedule");
        conference.apply(&scheduled);
        let attended = conference
            .record_attendance(date("2027-01-20"), present.to_vec())
            .expect("attendance");
        conference.apply(&attended);
        conference
    }

    #[test]
    fn a_rearranged_or_cancelled_conference_keeps_its_due_date() {
        let mut conference = requested(ConferenceKind::Initial);
        let scheduled = conference.schedule(date("2027-01-20")).expect("schedule");
        conference.apply(&scheduled);
        let moved = conference
            .rearrange(date("2027-02-03"), "chair unwell")
            .expect("rearrange");
        conference.apply(&moved);
        assert_eq!(conference.due, date("2027-01-26"));
        assert_eq!(
            conference.status,
            Status::Scheduled {
                on: date("2027-02-03")
            }
        );
        assert!(conference.is_overdue(date("2027-01-27")));
        assert!(!conference.is_overdue(date("2027-01-26")));
        let cancelled = conference.cancel("family moved").expect("cancel");
        conference.apply(&cancelled);
        assert_eq!(conference.due, date("2027-01-26"));
        assert!(conference.rearrange(date("2027-02-04"), "x").is_err());
        assert!(conference.schedule(date("2027-02-04")).is_ok());
        assert!(conference.cancel("  ").is_err());
    }

    #[test]
    fn an_outcome_needs_a_held_quorate_conference_or_an_override() {
        let social_care = key(InviteeRole::SocialCare, "E09000099");
        let police = key(InviteeRole::Police, "P99");
        let gp = key(InviteeRole::Gp, "Y99999");
        let plan = Outcome::Initial {
            plan: Some(AbuseCategory::Neglect),
        };
        let rule = QuorumRule::default();

        let not_held = requested(ConferenceKind::Initial);
        assert!(matches!(
            not_held.record_outcome(plan.clone(), rule, None),
            Err(DomainError::FailedPrecondition { .. })
        ));

        let inquorate = held(
            ConferenceKind::Initial,
            &[social_care.clone(), police.clone()],
        );
        assert!(inquorate.record_outcome(plan.clone(), rule, None).is_err());
        assert!(
            inquorate
                .record_outcome(plan.clone(), rule, Some(" "))
                .is_err()
        );
        let overridden = inquorate
            .record_outcome(plan.clone(), rule, Some("GP report received instead"))
            .expect("override");
        assert!(matches!(
            overridden,
            Event::OutcomeRecorded { quorate: false, .. }
        ));
        let lenient = QuorumRule {
            social_care_required: true,
            min_other_agencies: 1,
        };
        assert!(
            inquorate
                .record_outcome(plan.clone(), lenient, None)
                .is_ok()
        );

        // Agencies, not people: a health visitor and a school nurse of one
        // trust are one agency, and the council's housing officer is the
        // council's.
        let one_trust = held(
            ConferenceKind::Initial,
            &[
                social_care.clone(),
                key(InviteeRole::HealthVisitor, "RXX01"),
                key(InviteeRole::SchoolNurse, "RXX01"),
                key(InviteeRole::Housing, "E09000099"),
            ],
        );
        assert!(one_trust.record_outcome(plan.clone(), rule, None).is_err());
        let two_agencies = held(
            ConferenceKind::Initial,
            &[
                social_care.clone(),
                key(InviteeRole::HealthVisitor, "RXX01"),
                key(InviteeRole::SchoolNurse, "RXX01"),
                police.clone(),
            ],
        );
        assert!(
            two_agencies
                .record_outcome(plan.clone(), rule, None)
                .is_ok()
        );

        let mut quorate = held(ConferenceKind::Initial, &[social_care, police, gp]);
        let event = quorate
            .record_outcome(plan.clone(), rule, None)
            .expect("quorate");
        assert!(matches!(
            event,
            Event::OutcomeRecorded { quorate: true, .. }
        ));
        quorate.apply(&event);
        assert!(
            quorate.record_outcome(plan, rule, None).is_err(),
            "only once"
        );
    }

    #[test]
    fn an_outcome_must_fit_the_kind_of_conference() {
        let present = [
            key(InviteeRole::SocialCare, "E09000099"),
            key(InviteeRole::Police, "P99"),
            key(InviteeRole::Gp, "Y99999"),
        ];
        let review = held(ConferenceKind::Review, &present);
        let rule = QuorumRule::default();
        assert!(
            review
                .record_outcome(Outcome::Initial { plan: None }, rule, None)
                .is_err()
        );
        assert!(
            review
                .record_outcome(
                    Outcome::Review(ReviewDecision::End {
                        reason: PlanEndReason::Other,
                        detail: " ".into()
                    }),
                    rule,
                    None
                )
                .is_err()
        );
        assert!(
            review
                .record_outcome(Outcome::Review(ReviewDecision::Continue), rule, None)
                .is_ok()
        );
        let initial = held(ConferenceKind::Initial, &present);
        assert!(
            initial
                .record_outcome(Outcome::Review(ReviewDecision::Continue), rule, None)
                .is_err()
        );
    }

    #[test]
    fn only_invitees_reply_and_send_reports() {
        let mut conference = requested(ConferenceKind::Initial);
        let gp = key(InviteeRole::Gp, "Y99999");
        let stranger = key(InviteeRole::Housing, "H99999");
        let reply = conference
            .reply(gp.clone(), InviteResponse::SendingReport)
            .expect("reply");
        conference.apply(&reply);
        let report = conference.receive_report(gp.clone()).expect("report");
        conference.apply(&report);
        assert_eq!(
            conference.invitees[&gp],
            InviteeState {
                response: Some(InviteResponse::SendingReport),
                report_received: true,
                attended: false
            }
        );
        assert!(
            conference
                .reply(stranger.clone(), InviteResponse::Attending)
                .is_err()
        );
        let invite = conference
            .update_invitations(vec![stranger.clone()], vec![])
            .expect("invite");
        conference.apply(&invite);
        assert!(conference.reply(stranger, InviteResponse::Declined).is_ok());
    }
}
