//! The statutory clocks of Working Together to Safeguard Children 2023: when
//! each step of the child-protection flow falls due, and whether it was on
//! time. Each is a pure function of the triggering date (and the calendar,
//! for clocks that count working days), counted by the convention in
//! [`crate::calendar`]: the triggering day is day 0, and "within N working
//! days" means on or before the N-th working day after it.
//!
//! A due date is fixed when its triggering event happens. A conference that
//! is cancelled or rearranged keeps its statutory due date: lateness is
//! always measured against that date, and callers must never recompute it
//! from a rearranged date.

use crate::calendar::Calendar;
use crate::date::Date;

/// The decision on a referral (no further action, early help, assessment or
/// strategy discussion): within 1 working day of receipt (Working Together
/// 2023, chapter 3, on responding to a referral).
pub fn referral_decision_due(calendar: &Calendar, received: Date) -> Date {
    calendar.add_working_days(received, 1)
}

/// The assessment: within 45 working days of the referral (Working Together
/// 2023, chapter 3, on the timeliness of assessments).
pub fn assessment_due(calendar: &Calendar, referral_received: Date) -> Date {
    calendar.add_working_days(referral_received, 45)
}

/// The initial child protection conference: within 15 working days of the
/// strategy discussion, or of the last one when there were several (Working
/// Together 2023, chapter 3, on initial child protection conferences).
pub fn icpc_due(calendar: &Calendar, latest_strategy_discussion: Date) -> Date {
    calendar.add_working_days(latest_strategy_discussion, 15)
}

/// The first core group meeting: within 10 working days of the initial
/// conference (Working Together 2023, chapter 3, on the core group).
pub fn core_group_due(calendar: &Calendar, icpc_held: Date) -> Date {
    calendar.add_working_days(icpc_held, 10)
}

/// The first review conference: within 3 months of the initial conference
/// (Working Together 2023, chapter 3, on child protection review
/// conferences). Months are calendar months, clamped at month ends, with no
/// working-day adjustment: the due date may be a weekend or a holiday, and
/// a review held on the next working day is late.
pub fn first_review_due(icpc_held: Date) -> Date {
    icpc_held.add_months(3)
}

/// Each later review conference: no more than 6 months after the previous
/// one (Working Together 2023, chapter 3, on child protection review
/// conferences), in calendar months as for [`first_review_due`].
pub fn next_review_due(previous_review_held: Date) -> Date {
    previous_review_held.add_months(6)
}

/// Whether something was done by its statutory due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timeliness {
    OnTime,
    /// Done after the due date, by this many working days. Zero when it was
    /// done on a non-working day straight after the due date: still late.
    Late {
        working_days: i64,
    },
}

/// Whether something due on `due` and done on `held` was on time: on or
/// before the due date is on time, and lateness counts the working days
/// after the due date up to and including `held`. `due` must be the
/// statutory due date, even when the conference was cancelled or
/// rearranged (Working Together 2023 measures timeliness against the
/// statutory timescale, not the arranged date).
pub fn timeliness(calendar: &Calendar, due: Date, held: Date) -> Timeliness {
    if held <= due {
        Timeliness::OnTime
    } else {
        Timeliness::Late {
            working_days: calendar.working_days_between(due, held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    #[test]
    fn working_day_clocks() {
        let calendar = Calendar::england_and_wales();
        type Clock = fn(&Calendar, Date) -> Date;
        let check = |name: &str, clock: Clock, from: &str, expected: &str| {
            assert_eq!(
                clock(&calendar, date(from)),
                date(expected),
                "{name} from {from}"
            );
        };
        let table: [(&str, Clock, &str, &str); 22] = [
            // Christmas and New Year, with Boxing Day 2026 substituted.
            (
                "decision",
                referral_decision_due,
                "2026-12-18",
                "2026-12-21",
            ),
            (
                "decision",
                referral_decision_due,
                "2026-12-24",
                "2026-12-29",
            ),
            (
                "decision",
                referral_decision_due,
                "2026-12-26",
                "2026-12-29",
            ),
            (
                "decision",
                referral_decision_due,
                "2026-12-31",
                "2027-01-04",
            ),
            (
                "decision",
                referral_decision_due,
                "2022-12-23",
                "2022-12-28",
            ),
            (
                "decision",
                referral_decision_due,
                "2022-12-30",
                "2023-01-03",
            ),
            // Easter.
            (
                "decision",
                referral_decision_due,
                "2026-04-02",
                "2026-04-07",
            ),
            (
                "decision",
                referral_decision_due,
                "2027-03-25",
                "2027-03-30",
            ),
            // One-off holidays.
            (
                "decision",
                referral_decision_due,
                "2020-05-07",
                "2020-05-11",
            ),
            (
                "decision",
                referral_decision_due,
                "2022-09-16",
                "2022-09-20",
            ),
            (
                "decision",
                referral_decision_due,
                "2023-05-05",
                "2023-05-09",
            ),
            ("assessment", assessment_due, "2026-12-18", "2027-02-24"),
            ("assessment", assessment_due, "2026-03-20", "2026-05-28"),
            ("assessment", assessment_due, "2026-11-23", "2027-01-28"),
            ("icpc", icpc_due, "2026-12-18", "2027-01-13"),
            ("icpc", icpc_due, "2027-01-05", "2027-01-26"),
            ("icpc", icpc_due, "2026-03-20", "2026-04-14"),
            ("icpc", icpc_due, "2022-05-20", "2022-06-14"),
            ("icpc", icpc_due, "2021-12-23", "2022-01-18"),
            ("core group", core_group_due, "2026-12-18", "2027-01-06"),
            ("core group", core_group_due, "2022-09-09", "2022-09-26"),
            ("core group", core_group_due, "2023-04-28", "2023-05-16"),
        ];
        for (name, clock, from, expected) in table {
            check(name, clock, from, expected);
        }
    }

    #[test]
    fn review_clocks_count_calendar_months() {
        type Clock = fn(Date) -> Date;
        let check = |name: &str, clock: Clock, from: &str, expected: &str| {
            assert_eq!(clock(date(from)), date(expected), "{name} from {from}");
        };
        let table: [(&str, Clock, &str, &str); 10] = [
            ("first review", first_review_due, "2026-11-23", "2027-02-23"),
            ("first review", first_review_due, "2026-11-30", "2027-02-28"),
            ("first review", first_review_due, "2027-11-30", "2028-02-29"),
            ("first review", first_review_due, "2026-08-31", "2026-11-30"),
            ("first review", first_review_due, "2026-12-31", "2027-03-31"),
            ("first review", first_review_due, "2026-10-15", "2027-01-15"),
            ("next review", next_review_due, "2026-08-31", "2027-02-28"),
            ("next review", next_review_due, "2027-08-31", "2028-02-29"),
            ("next review", next_review_due, "2026-03-31", "2026-09-30"),
            ("next review", next_review_due, "2026-12-25", "2027-06-25"),
        ];
        for (name, clock, from, expected) in table {
            check(name, clock, from, expected);
        }
    }

    #[test]
    fn timeliness_counts_working_days_past_the_statutory_date() {
        let calendar = Calendar::england_and_wales();
        let check = |due: &str, held: &str, expected: Timeliness| {
            assert_eq!(
                timeliness(&calendar, date(due), date(held)),
                expected,
                "due {due}, held {held}"
            );
        };
        let late = |working_days| Timeliness::Late { working_days };
        let table = [
            ("2026-12-29", "2026-12-24", Timeliness::OnTime),
            ("2026-12-29", "2026-12-29", Timeliness::OnTime),
            ("2026-12-29", "2026-12-30", late(1)),
            ("2026-12-29", "2027-01-04", late(3)),
            ("2026-12-24", "2026-12-29", late(1)),
            ("2026-04-02", "2026-04-07", late(1)),
            ("2022-06-01", "2022-06-06", late(1)),
            ("2023-05-05", "2023-05-09", late(1)),
            // A review due on a Sunday, held the next day or that day.
            ("2027-02-28", "2027-02-28", Timeliness::OnTime),
            ("2027-02-28", "2027-03-01", late(1)),
            // Due on a Friday and held on the Saturday: late by no working day.
            ("2026-12-18", "2026-12-19", late(0)),
        ];
        for (due, held, expected) in table {
            check(due, held, expected);
        }
    }

    #[test]
    fn a_rearranged_conference_is_late_against_its_statutory_date() {
        let calendar = Calendar::england_and_wales();
        let due = icpc_due(&calendar, date("2026-12-18"));
        assert_eq!(due, date("2027-01-13"));
        // Booked on time, cancelled, rearranged for a week later and held then.
        let held = date("2027-01-20");
        assert_eq!(
            timeliness(&calendar, due, held),
            Timeliness::Late { working_days: 5 }
        );
    }
}
