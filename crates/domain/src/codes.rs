//! The closed vocabularies of child protection: plan types, categories of
//! abuse, RAG ratings, referral outcomes, conference kinds, invite replies,
//! consent. Each knows its code as the reports and CP-IS write it.

use std::fmt;

/// Declares a code enum with its short code and readable name, parsing from
/// the code case-insensitively.
macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.code().eq_ignore_ascii_case(code.trim()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

codes! {
    /// What a child is subject to: the three plan types CP-IS shares.
    PlanType {
        ChildProtection => "CPPI", "child protection plan";
        LookedAfter => "LACI", "looked-after child";
        Unborn => "UCPI", "unborn child protection plan";
    }
}

codes! {
    /// The category a child protection plan is made under.
    AbuseCategory {
        Neglect => "NEG", "neglect";
        Physical => "PHY", "physical abuse";
        Sexual => "SAB", "sexual abuse";
        Emotional => "EMO", "emotional abuse";
        Multiple => "MUL", "multiple";
    }
}

codes! {
    /// The MASH's rating of a contact: how urgent it is.
    RagRating {
        Red => "RED", "red: immediate concern";
        Amber => "AMBER", "amber: more checks needed";
        Green => "GREEN", "green: signpost";
    }
}

codes! {
    /// What the local authority decides within a working day of a referral.
    ReferralOutcome {
        NoFurtherAction => "NFA", "no further action";
        EarlyHelp => "EH", "early help";
        ChildInNeedAssessment => "CIN", "child-in-need assessment";
        StrategyDiscussion => "STRAT", "strategy discussion";
    }
}

codes! {
    /// Which child protection conference.
    ConferenceKind {
        Initial => "ICPC", "initial child protection conference";
        Review => "RCPC", "review child protection conference";
        TransferIn => "TCPC", "transfer-in conference";
    }
}

codes! {
    /// An invited agency's answer.
    InviteResponse {
        Attending => "ATTENDING", "attending";
        SendingReport => "REPORT", "sending a written report";
        Declined => "DECLINED", "declined";
    }
}

codes! {
    /// Whether the family's consent to the referral was sought.
    Consent {
        Given => "GIVEN", "consent given";
        Refused => "REFUSED", "consent refused";
        NotSought => "NOT_SOUGHT", "consent not sought";
    }
}

codes! {
    /// Why a child protection plan ends.
    PlanEndReason {
        NoLongerAtRisk => "NOT_AT_RISK", "no longer at risk";
        SteppedDownToChildInNeed => "STEP_DOWN", "stepped down to a child-in-need plan";
        TransferredOut => "TRANSFERRED", "transferred to another local authority";
        TurnedEighteen => "AGE_18", "turned 18";
        LeftTheCountry => "LEFT_UK", "left the UK";
        Died => "DIED", "died";
        Other => "OTHER", "other";
    }
}

impl PlanEndReason {
    /// Whether a review conference decides this end (Working Together
    /// 2023): the others happen to the child, outside any conference, and
    /// the council records them as they happen.
    pub fn decided_by_a_conference(self) -> bool {
        matches!(
            self,
            Self::NoLongerAtRisk | Self::SteppedDownToChildInNeed | Self::Other
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_parse_loosely() {
        for category in AbuseCategory::ALL {
            assert_eq!(AbuseCategory::from_code(category.code()), Some(*category));
        }
        assert_eq!(
            AbuseCategory::from_code(" neg "),
            Some(AbuseCategory::Neglect)
        );
        assert_eq!(AbuseCategory::from_code("NEGLECT"), None);
        assert_eq!(PlanType::Unborn.code(), "UCPI");
        assert_eq!(
            ConferenceKind::Initial.to_string(),
            "initial child protection conference"
        );
    }
}
