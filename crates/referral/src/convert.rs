//! Referral wire enums to domain codes and back.

use contract::referral::v1 as wire;
use domain::codes::ReferralOutcome;

pub fn outcome_to_domain(value: i32) -> Option<ReferralOutcome> {
    match wire::ReferralOutcome::try_from(value).ok()? {
        wire::ReferralOutcome::NoFurtherAction => Some(ReferralOutcome::NoFurtherAction),
        wire::ReferralOutcome::EarlyHelp => Some(ReferralOutcome::EarlyHelp),
        wire::ReferralOutcome::ChildInNeedAssessment => {
            Some(ReferralOutcome::ChildInNeedAssessment)
        }
        wire::ReferralOutcome::StrategyDiscussion => Some(ReferralOutcome::StrategyDiscussion),
        wire::ReferralOutcome::Unspecified => None,
    }
}
