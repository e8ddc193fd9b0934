//! The referral aggregate: from arrival at the MASH to a decision, strategy
//! discussions, a section 47 enquiry and, perhaps, a conference request.

use crate::calendar::Calendar;
use crate::clocks;
use crate::codes::ReferralOutcome;
use crate::date::Date;
use crate::error::DomainError;

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    AwaitingDecision,
    /// Decided, with an outcome other than a strategy discussion.
    Closed,
    /// Decided for a strategy discussion: discussions may be held.
    InStrategy,
    /// A strategy discussion started a section 47 enquiry.
    Section47,
    /// The enquiry concluded that an initial conference is needed.
    ConferenceRequested,
    /// The enquiry concluded that no conference is needed.
    NoConference,
}

/// What happened to a referral; the service stores each as a protobuf
/// payload with the rest of its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Submitted {
        received_on: Date,
    },
    Decided {
        outcome: ReferralOutcome,
        decided_on: Date,
    },
    StrategyDiscussionHeld {
        held_on: Date,
        section_47: bool,
    },
    Section47Concluded {
        concluded_on: Date,
        conference_needed: bool,
    },
    AssessmentCompleted {
        completed_on: Date,
    },
}

/// The state a referral's events build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub status: Status,
    pub received_on: Date,
    pub outcome: Option<ReferralOutcome>,
    pub strategy_discussions: Vec<Date>,
    /// The strategy discussion at which the section 47 enquiry was started:
    /// the initial conference's clock runs from it, whatever discussions
    /// follow.
    pub section_47_started_on: Option<Date>,
    pub assessment_completed_on: Option<Date>,
}

impl Referral {
    /// Rebuilds a referral from its events; `None` without a submission.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Self> {
        let mut events = events.into_iter();
        let Some(Event::Submitted { received_on }) = events.next() else {
            return None;
        };
        let mut referral = Referral {
            status: Status::AwaitingDecision,
            received_on: *received_on,
            outcome: None,
            strategy_discussions: Vec::new(),
            section_47_started_on: None,
            assessment_completed_on: None,
        };
        for event in events {
            referral.apply(event);
        }
        Some(referral)
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Submitted { .. } => {}
            Event::Decided { outcome, .. } => {
                self.outcome = Some(*outcome);
                self.status = if *outcome == ReferralOutcome::StrategyDiscussion {
                    Status::InStrategy
                } else {
                    Status::Closed
                };
            }
            Event::StrategyDiscussionHeld {
                held_on,
                section_47,
            } => {
                self.strategy_discussions.push(*held_on);
                if *section_47 && self.status != Status::Section47 {
                    self.status = Status::Section47;
                    self.section_47_started_on = Some(*held_on);
                }
            }
            Event::Section47Concluded {
                conference_needed, ..
            } => {
                self.status = if *conference_needed {
                    Status::ConferenceRequested
                } else {
                    Status::NoConference
                };
            }
            Event::AssessmentCompleted { completed_on } => {
                self.assessment_completed_on = Some(*completed_on);
            }
        }
    }

    /// Whether the decision asks for a child and family assessment: one to
    /// assess a child in need, or a strategy discussion (a section 47
    /// enquiry is carried out under one).
    pub fn assesses(&self) -> bool {
        matches!(
            self.outcome,
            Some(ReferralOutcome::ChildInNeedAssessment | ReferralOutcome::StrategyDiscussion)
        )
    }

    /// Records the assessment completed on `completed_on`; after its due
    /// date, only with the reason it was late.
    pub fn complete_assessment(
        &self,
        calendar: &Calendar,
        completed_on: Date,
        late_reason: &str,
    ) -> Result<Event, DomainError> {
        if !self.assesses() {
            return Err(DomainError::precondition(
                "referral",
                "no assessment was decided on: decide on an assessment or a strategy discussion first",
            ));
        }
        if self.assessment_completed_on.is_some() {
            return Err(DomainError::precondition(
                "referral",
                "its assessment is already recorded as completed",
            ));
        }
        if completed_on < self.received_on {
            return Err(DomainError::invalid(
                "completed_on",
                "is before the referral was received",
            ));
        }
        let due = self.assessment_due(calendar);
        if completed_on > due && late_reason.trim().is_empty() {
            return Err(DomainError::invalid(
                "late_reason",
                &format!("is required: the assessment was due on {due}"),
            ));
        }
        Ok(Event::AssessmentCompleted { completed_on })
    }

    /// A decision is due one working day after receipt.
    pub fn decision_due(&self, calendar: &Calendar) -> Date {
        clocks::referral_decision_due(calendar, self.received_on)
    }

    /// An assessment is due 45 working days after the referral.
    pub fn assessment_due(&self, calendar: &Calendar) -> Date {
        clocks::assessment_due(calendar, self.received_on)
    }

    /// The initial conference is due 15 working days after the strategy
    /// discussion at which the section 47 enquiry was started (Working
    /// Together 2023: "or, where more than one has taken place, of the
    /// strategy discussion at which the section 47 enquiry was initiated");
    /// later discussions do not move it. Before an enquiry is started, the
    /// latest discussion's date stands in: when it would be due were the
    /// enquiry started there.
    pub fn icpc_due(&self, calendar: &Calendar) -> Option<Date> {
        let from = self
            .section_47_started_on
            .or_else(|| self.strategy_discussions.iter().max().copied())?;
        Some(clocks::icpc_due(calendar, from))
    }

    pub fn decide(&self, outcome: ReferralOutcome, decided_on: Date) -> Result<Event, DomainError> {
        if self.status != Status::AwaitingDecision {
            return Err(DomainError::precondition(
                "referral",
                "it has already been decided",
            ));
        }
        if decided_on < self.received_on {
            return Err(DomainError::invalid(
                "decided_at",
                "is before the referral was received",
            ));
        }
        Ok(Event::Decided {
            outcome,
            decided_on,
        })
    }

    pub fn hold_strategy_discussion(
        &self,
        held_on: Date,
        section_47: bool,
    ) -> Result<Event, DomainError> {
        if !matches!(self.status, Status::InStrategy | Status::Section47) {
            return Err(DomainError::precondition(
                "referral",
                "a strategy discussion needs a decision to hold one",
            ));
        }
        if held_on < self.received_on {
            return Err(DomainError::invalid(
                "held_on",
                "is before the referral was received",
            ));
        }
        Ok(Event::StrategyDiscussionHeld {
            held_on,
            section_47,
        })
    }

    pub fn conclude_section_47(
        &self,
        concluded_on: Date,
        conference_needed: bool,
    ) -> Result<Event, DomainError> {
        if self.status != Status::Section47 {
            return Err(DomainError::precondition(
                "referral",
                "no section 47 enquiry is open (a strategy discussion must start one)",
            ));
        }
        if self
            .section_47_started_on
            .is_some_and(|started| concluded_on < started)
        {
            return Err(DomainError::invalid(
                "concluded_on",
                "is before the strategy discussion that started the enquiry",
            ));
        }
        Ok(Event::Section47Concluded {
            concluded_on,
            conference_needed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    fn submitted(on: &str) -> Referral {
        Referral::from_events(&[Event::Submitted {
            received_on: date(on),
        }])
        .expect("submitted")
    }

    #[test]
    fn the_flow_from_referral_to_conference() {
        let calendar = Calendar::england_and_wales();
        let mut referral = submitted("2026-12-18");
        assert_eq!(referral.decision_due(&calendar), date("2026-12-21"));
        let decided = referral
            .decide(ReferralOutcome::StrategyDiscussion, date("2026-12-21"))
            .expect("decide");
        referral.apply(&decided);
        for (held, section_47) in [
            ("2026-12-22", false),
            ("2027-01-05", true),
            ("2027-01-07", true),
        ] {
            let held = referral
                .hold_strategy_discussion(date(held), section_47)
                .expect("strategy");
            referral.apply(&held);
        }
        assert_eq!(referral.status, Status::Section47);
        // 15 working days after the discussion that started the enquiry
        // (the 5th), not after a later one (the 7th: it would be the 28th).
        assert_eq!(referral.section_47_started_on, Some(date("2027-01-05")));
        assert_eq!(referral.icpc_due(&calendar), Some(date("2027-01-26")));
        let concluded = referral
            .conclude_section_47(date("2027-01-08"), true)
            .expect("conclude");
        referral.apply(&concluded);
        assert_eq!(referral.status, Status::ConferenceRequested);
    }

    #[test]
    fn commands_in_the_wrong_state_are_refused() {
        let referral = submitted("2026-12-18");
        let errors = [
            referral.hold_strategy_discussion(date("2026-12-19"), true),
            referral.conclude_section_47(date("2026-12-19"), true),
            referral.decide(ReferralOutcome::EarlyHelp, date("2026-12-17")),
        ];
        for error in errors {
            assert!(error.is_err(), "{error:?}");
        }
        let mut decided = referral.clone();
        decided.apply(&Event::Decided {
            outcome: ReferralOutcome::EarlyHelp,
            decided_on: date("2026-12-18"),
        });
        assert_eq!(decided.status, Status::Closed);
        assert!(matches!(
            decided.decide(ReferralOutcome::EarlyHelp, date("2026-12-18")),
            Err(DomainError::FailedPrecondition { .. })
        ));
        assert!(
            decided
                .hold_strategy_discussion(date("2026-12-19"), false)
                .is_err()
        );
    }
}
