//! The working-day calendar of England and Wales, which every statutory
//! clock counts in.
//!
//! A working day is a Monday to Friday that is not a bank holiday. The bank
//! holidays are New Year's Day, Good Friday, Easter Monday, the early May
//! (first Monday), spring (last Monday in May) and summer (last Monday in
//! August) bank holidays, Christmas Day and Boxing Day. One that falls on a
//! Saturday or Sunday is substituted by the next weekday that is not already
//! a holiday. On top of the rules sit one-off changes by proclamation: those
//! announced so far are built in, and an operator adds later ones from
//! configuration with [`Calendar::with_adjustments`], without a release.
//! The rules are today's: before 1978, when the early May holiday began,
//! they do not match history, and nothing here needs such years.
//!
//! # Counting working days
//!
//! Working Together never says how to count, so the project states one
//! convention and uses it everywhere:
//!
//! - the day of the triggering event is day 0, whether or not it is a
//!   working day;
//! - "within N working days" means on or before the N-th working day after
//!   it.
//!
//! So [`Calendar::add_working_days`] returns the N-th working day strictly
//! after its start (the start itself for N = 0): a referral received on
//! Friday 18 December 2026 with one working day for a decision is due on
//! Monday 21 December; one received on Thursday 24 December is due on
//! Tuesday 29 December, because Christmas Day is on the Friday and Boxing
//! Day, a Saturday, is substituted by Monday 28 December.

use std::collections::BTreeSet;
use std::fmt;

use crate::date::{Date, Weekday};

/// Years whose holidays are computed once, when the calendar is built: every
/// date the registry is likely to see. Other years are computed on demand.
const CACHED_YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// Rule-given holidays that a proclamation took away, as (year, month, day).
const ONE_OFF_REMOVED: &[(i32, u32, u32)] = &[
    (1995, 5, 1),  // early May moved to VE Day's 50th anniversary
    (2002, 5, 27), // spring moved for the Golden Jubilee
    (2012, 5, 28), // spring moved for the Diamond Jubilee
    (2020, 5, 4),  // early May moved to VE Day's 75th anniversary
    (2022, 5, 30), // spring moved for the Platinum Jubilee
];

/// Holidays that a proclamation added, as (year, month, day).
const ONE_OFF_ADDED: &[(i32, u32, u32)] = &[
    (1995, 5, 8),   // early May, moved: VE Day 50
    (1999, 12, 31), // the millennium
    (2002, 6, 3),   // Golden Jubilee
    (2002, 6, 4),   // spring, moved
    (2011, 4, 29),  // royal wedding
    (2012, 6, 4),   // spring, moved
    (2012, 6, 5),   // Diamond Jubilee
    (2020, 5, 8),   // early May, moved: VE Day 75
    (2022, 6, 2),   // spring, moved
    (2022, 6, 3),   // Platinum Jubilee
    (2022, 9, 19),  // state funeral of Queen Elizabeth II
    (2023, 5, 8),   // coronation of King Charles III
];

/// The bank holidays of England and Wales, with any adjustments an operator
/// has configured. Building one computes the holidays of 1990 to 2100 up
/// front, so the due-date queries the registry makes constantly are set
/// lookups; build it once and share it.
#[derive(Clone, PartialEq, Eq)]
pub struct Calendar {
    /// The holidays of [`CACHED_YEARS`], adjustments applied.
    cached: BTreeSet<Date>,
    cached_from: Date,
    cached_to: Date,
    /// Operator adjustments, kept disjoint, for years computed on demand.
    added: BTreeSet<Date>,
    removed: BTreeSet<Date>,
}

impl fmt::Debug for Calendar {
    // The cached holidays would bury the adjustments, which are what differ
    // between calendars.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("added", &self.added)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

impl Calendar {
    /// The built-in calendar: the rules and the one-off changes announced so
    /// far.
    pub fn england_and_wales() -> Calendar {
        let (first, last) = (*CACHED_YEARS.start(), *CACHED_YEARS.end());
        Calendar {
            cached: CACHED_YEARS.flat_map(built_in_holidays).collect(),
            cached_from: Date::from_ymd(first, 1, 1).unwrap_or(Date::MIN),
            cached_to: Date::from_ymd(last, 12, 31).unwrap_or(Date::MAX),
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// This calendar with holidays `added` (a newly announced one-off) and
    /// `removed` (one moved elsewhere). Adjustments apply in order, later
    /// ones overriding earlier: within one call removals come after
    /// additions, so a date in both is not a holiday.
    #[must_use]
    pub fn with_adjustments(
        mut self,
        added: impl IntoIterator<Item = Date>,
        removed: impl IntoIterator<Item = Date>,
    ) -> Calendar {
        for date in added {
            self.removed.remove(&date);
            self.added.insert(date);
            if self.caches(date) {
                self.cached.insert(date);
            }
        }
        for date in removed {
            self.added.remove(&date);
            self.removed.insert(date);
            if self.caches(date) {
                self.cached.remove(&date);
            }
        }
        self
    }

    pub fn is_bank_holiday(&self, date: Date) -> bool {
        if self.caches(date) {
            self.cached.contains(&date)
        } else {
            self.computed_holidays(date.year()).contains(&date)
        }
    }

    /// Monday to Friday and not a bank holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        !date.is_weekend() && !self.is_bank_holiday(date)
    }

    /// The bank holidays of `year`, in order; none for a year outside the
    /// range [`Date`] accepts.
    pub fn bank_holidays(&self, year: i32) -> Vec<Date> {
        if CACHED_YEARS.contains(&year) {
            let (Ok(first), Ok(last)) = (Date::from_ymd(year, 1, 1), Date::from_ymd(year, 12, 31))
            else {
                return Vec::new();
            };
            self.cached.range(first..=last).copied().collect()
        } else {
            self.computed_holidays(year).into_iter().collect()
        }
    }

    /// The `n`-th working day strictly after `start`, or `start` itself when
    /// `n` is 0: the due date of something required "within `n` working
    /// days" of `start` (see the module documentation). Saturates at
    /// [`Date::MAX`].
    pub fn add_working_days(&self, start: Date, n: u32) -> Date {
        let mut date = start;
        let mut remaining = n;
        while remaining > 0 && date < Date::MAX {
            date = date.add_days(1);
            if self.is_working_day(date) {
                remaining -= 1;
            }
        }
        date
    }

    /// The number of working days `d` with `from < d <= to`, or minus the
    /// number with `to < d <= from` when `to` is earlier, so that
    /// `working_days_between(start, add_working_days(start, n)) == n`.
    pub fn working_days_between(&self, from: Date, to: Date) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        // Whole weeks hold five weekdays each; walk only the remainder, then
        // subtract the holidays that fall on weekdays.
        let span = from.days_until(to);
        let whole_weeks = span / 7;
        let mut weekdays = whole_weeks * 5;
        let mut date = from.add_days(whole_weeks * 7);
        while date < to {
            date = date.add_days(1);
            if !date.is_weekend() {
                weekdays += 1;
            }
        }
        let holidays = (from.year()..=to.year())
            .flat_map(|year| self.bank_holidays(year))
            .filter(|holiday| from < *holiday && *holiday <= to && !holiday.is_weekend())
            .count();
        weekdays - i64::try_from(holidays).unwrap_or(i64::MAX)
    }

    fn caches(&self, date: Date) -> bool {
        (self.cached_from..=self.cached_to).contains(&date)
    }

    /// A year outside the cache: the built-in holidays with the operator's
    /// adjustments applied.
    fn computed_holidays(&self, year: i32) -> BTreeSet<Date> {
        let mut holidays: BTreeSet<Date> = built_in_holidays(year)
            .into_iter()
            .filter(|date| !self.removed.contains(date))
            .collect();
        if let (Ok(first), Ok(last)) = (Date::from_ymd(year, 1, 1), Date::from_ymd(year, 12, 31)) {
            holidays.extend(self.added.range(first..=last));
        }
        holidays
    }
}

/// The holidays of `year` by the rules and the built-in one-off changes, in
/// order; none for a year that [`Date`] does not accept.
fn built_in_holidays(year: i32) -> BTreeSet<Date> {
    let mut holidays = rule_holidays(year).unwrap_or_default();
    let in_year = |table: &'static [(i32, u32, u32)]| {
        table
            .iter()
            .filter(move |(y, _, _)| *y == year)
            .filter_map(|&(y, m, d)| Date::from_ymd(y, m, d).ok())
    };
    for date in in_year(ONE_OFF_REMOVED) {
        holidays.remove(&date);
    }
    holidays.extend(in_year(ONE_OFF_ADDED));
    holidays
}

/// The holidays the standing rules give `year`, weekend ones substituted;
/// `None` when `year` is outside the range [`Date`] accepts.
fn rule_holidays(year: i32) -> Option<BTreeSet<Date>> {
    let ymd = |month, day| Date::from_ymd(year, month, day).ok();
    let easter = easter_sunday(year)?;
    let new_year = ymd(1, 1)?;
    let christmas = ymd(12, 25)?;
    let boxing_day = ymd(12, 26)?;
    let may_first = ymd(5, 1)?;
    let early_may = may_first.add_days((7 - days_since_monday(may_first)) % 7);
    let last_monday = |last_day: Date| last_day.add_days(-days_since_monday(last_day));
    let spring = last_monday(ymd(5, 31)?);
    let summer = last_monday(ymd(8, 31)?);

    let all = [
        new_year,
        easter.add_days(-2),
        easter.add_days(1),
        early_may,
        spring,
        summer,
        christmas,
        boxing_day,
    ];
    let mut holidays: BTreeSet<Date> = all.iter().copied().filter(|d| !d.is_weekend()).collect();
    // In date order, so Christmas claims a substitute before Boxing Day does.
    for date in all.iter().filter(|d| d.is_weekend()) {
        let mut substitute = date.add_days(1);
        while substitute.is_weekend() || holidays.contains(&substitute) {
            substitute = substitute.add_days(1);
        }
        holidays.insert(substitute);
    }
    Some(holidays)
}

fn days_since_monday(date: Date) -> i64 {
    match date.weekday() {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

/// Easter Sunday by the anonymous Gregorian algorithm (Meeus, Jones and
/// Butcher).
fn easter_sunday(year: i32) -> Option<Date> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::from_ymd(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    fn dates(year: i32, month_days: &str) -> Vec<Date> {
        month_days
            .split_whitespace()
            .map(|md| date(&format!("{year}-{md}")))
            .collect()
    }

    #[test]
    fn bank_holidays_of_england_and_wales() {
        let calendar = Calendar::england_and_wales();
        let check = |year: i32, expected: &str| {
            assert_eq!(
                calendar.bank_holidays(year),
                dates(year, expected),
                "{year}"
            );
            for holiday in dates(year, expected) {
                assert!(calendar.is_bank_holiday(holiday), "{holiday}");
                assert!(!calendar.is_working_day(holiday), "{holiday}");
            }
        };
        let table = [
            (1995, "01-02 04-14 04-17 05-08 05-29 08-28 12-25 12-26"),
            (
                1999,
                "01-01 04-02 04-05 05-03 05-31 08-30 12-27 12-28 12-31",
            ),
            (2000, "01-03 04-21 04-24 05-01 05-29 08-28 12-25 12-26"),
            (
                2002,
                "01-01 03-29 04-01 05-06 06-03 06-04 08-26 12-25 12-26",
            ),
            (
                2011,
                "01-03 04-22 04-25 04-29 05-02 05-30 08-29 12-26 12-27",
            ),
            (
                2012,
                "01-02 04-06 04-09 05-07 06-04 06-05 08-27 12-25 12-26",
            ),
            (2015, "01-01 04-03 04-06 05-04 05-25 08-31 12-25 12-28"),
            (2016, "01-01 03-25 03-28 05-02 05-30 08-29 12-26 12-27"),
            (2019, "01-01 04-19 04-22 05-06 05-27 08-26 12-25 12-26"),
            (2020, "01-01 04-10 04-13 05-08 05-25 08-31 12-25 12-28"),
            (2021, "01-01 04-02 04-05 05-03 05-31 08-30 12-27 12-28"),
            (
                2022,
                "01-03 04-15 04-18 05-02 06-02 06-03 08-29 09-19 12-26 12-27",
            ),
            (
                2023,
                "01-02 04-07 04-10 05-01 05-08 05-29 08-28 12-25 12-26",
            ),
            (2024, "01-01 03-29 04-01 05-06 05-27 08-26 12-25 12-26"),
            (2025, "01-01 04-18 04-21 05-05 05-26 08-25 12-25 12-26"),
            (2026, "01-01 04-03 04-06 05-04 05-25 08-31 12-25 12-28"),
            (2027, "01-01 03-26 03-29 05-03 05-31 08-30 12-27 12-28"),
            (2028, "01-03 04-14 04-17 05-01 05-29 08-28 12-25 12-26"),
            // Outside the cache: computed on demand by the same rules.
            (2101, "01-03 04-15 04-18 05-02 05-30 08-29 12-26 12-27"),
        ];
        for (year, expected) in table {
            check(year, expected);
        }
        assert!(calendar.bank_holidays(1899).is_empty());
        assert!(calendar.bank_holidays(2201).is_empty());
        assert_eq!(calendar.bank_holidays(2200).len(), 8);
        assert_eq!(calendar.bank_holidays(1900).len(), 8);
    }

    #[test]
    fn easter_sundays() {
        for text in [
            "1913-03-23",
            "1943-04-25",
            "2000-04-23",
            "2008-03-23",
            "2019-04-21",
            "2024-03-31",
            "2038-04-25",
            "2200-04-06",
        ] {
            let expected = date(text);
            assert_eq!(easter_sunday(expected.year()), Some(expected), "{text}");
        }
    }

    #[test]
    fn every_year_has_its_holidays_on_weekdays() {
        let calendar = Calendar::england_and_wales();
        for year in 1978..=2200 {
            let holidays = calendar.bank_holidays(year);
            assert!(holidays.len() >= 8, "{year}: {holidays:?}");
            assert!(
                holidays.iter().all(|holiday| !holiday.is_weekend()),
                "{year}"
            );
            assert!(
                holidays.iter().all(|holiday| holiday.year() == year),
                "{year}"
            );
            assert!(holidays.windows(2).all(|pair| pair[0] < pair[1]), "{year}");
        }
        for table in [ONE_OFF_ADDED, ONE_OFF_REMOVED] {
            for &(y, m, d) in table {
                Date::from_ymd(y, m, d).expect("valid one-off");
            }
        }
    }

    #[test]
    fn adding_working_days() {
        let calendar = Calendar::england_and_wales();
        let check = |start: &str, n: u32, expected: &str| {
            let due = calendar.add_working_days(date(start), n);
            assert_eq!(due, date(expected), "{start} + {n}");
            assert_eq!(
                calendar.working_days_between(date(start), due),
                i64::from(n),
                "{start} + {n}"
            );
        };
        let table = [
            // Day 0 is the start, working day or not.
            ("2026-12-24", 0, "2026-12-24"),
            ("2026-12-19", 0, "2026-12-19"),
            ("2026-12-19", 1, "2026-12-21"),
            ("2026-11-23", 1, "2026-11-24"),
            // Christmas and New Year, weekend substitutes.
            ("2026-12-18", 1, "2026-12-21"),
            ("2026-12-24", 1, "2026-12-29"),
            ("2026-12-26", 1, "2026-12-29"),
            ("2026-12-24", 4, "2027-01-04"),
            ("2027-12-23", 1, "2027-12-24"),
            ("2027-12-23", 10, "2028-01-11"),
            ("2020-12-24", 1, "2020-12-29"),
            ("2021-12-24", 1, "2021-12-29"),
            ("2021-12-31", 1, "2022-01-04"),
            ("2022-12-23", 1, "2022-12-28"),
            ("2022-12-30", 1, "2023-01-03"),
            // Easter.
            ("2026-04-02", 1, "2026-04-07"),
            ("2027-03-25", 1, "2027-03-30"),
            ("2026-03-20", 15, "2026-04-14"),
            // One-off changes.
            ("2020-05-01", 1, "2020-05-04"),
            ("2020-05-07", 1, "2020-05-11"),
            ("2022-05-27", 1, "2022-05-30"),
            ("2022-06-01", 1, "2022-06-06"),
            ("2022-05-20", 15, "2022-06-14"),
            ("2022-09-16", 1, "2022-09-20"),
            ("2023-04-28", 1, "2023-05-02"),
            ("2023-05-05", 1, "2023-05-09"),
            ("2023-04-28", 10, "2023-05-16"),
            // Long counts.
            ("2026-12-18", 45, "2027-02-24"),
            ("2026-11-23", 45, "2027-01-28"),
        ];
        for (start, n, expected) in table {
            check(start, n, expected);
        }
        assert_eq!(calendar.add_working_days(Date::MAX, 5), Date::MAX);
    }

    #[test]
    fn counting_working_days_between_dates() {
        let calendar = Calendar::england_and_wales();
        let check = |from: &str, to: &str, expected: i64| {
            assert_eq!(
                calendar.working_days_between(date(from), date(to)),
                expected,
                "{from} to {to}"
            );
        };
        let table = [
            ("2026-12-24", "2026-12-24", 0),
            ("2026-12-24", "2026-12-29", 1),
            ("2026-12-29", "2026-12-24", -1),
            ("2026-12-18", "2026-12-19", 0),
            ("2026-12-18", "2026-12-21", 1),
            ("2026-12-19", "2026-12-18", 0),
            ("2025-12-31", "2026-12-31", 253),
            ("2021-12-31", "2022-12-31", 250),
            ("2026-12-31", "2025-12-31", -253),
        ];
        for (from, to, expected) in table {
            check(from, to, expected);
        }
    }

    #[test]
    fn counting_agrees_with_walking_day_by_day() {
        let calendar = Calendar::england_and_wales();
        let mut start = date("2018-12-01");
        while start < date("2029-01-01") {
            let mut walked = 0;
            let mut end = start;
            for _ in 0..400 {
                end = end.add_days(1);
                if calendar.is_working_day(end) {
                    walked += 1;
                }
                assert_eq!(calendar.working_days_between(start, end), walked);
                assert_eq!(calendar.working_days_between(end, start), -walked);
            }
            start = start.add_days(11);
        }
    }

    #[test]
    fn adding_is_the_inverse_of_counting() {
        let calendar = Calendar::england_and_wales();
        let mut start = date("2015-01-01");
        while start < date("2036-01-01") {
            for n in [1, 2, 5, 10, 15, 45] {
                let due = calendar.add_working_days(start, n);
                assert!(calendar.is_working_day(due), "{start} + {n}");
                assert_eq!(calendar.working_days_between(start, due), i64::from(n));
                assert_eq!(
                    calendar.working_days_between(start, due.add_days(-1)),
                    i64::from(n - 1)
                );
            }
            start = start.add_days(1);
        }
    }

    #[test]
    fn an_operator_adjusts_the_calendar() {
        let built_in = Calendar::england_and_wales();
        let adjusted = built_in.clone().with_adjustments(
            [date("2026-06-15"), date("2150-06-15"), date("2150-06-16")],
            [date("2026-05-25"), date("2150-06-16"), date("2150-12-25")],
        );
        let check = |calendar: &Calendar, text: &str, holiday: bool| {
            assert_eq!(calendar.is_bank_holiday(date(text)), holiday, "{text}");
            assert_eq!(calendar.is_working_day(date(text)), !holiday, "{text}");
        };
        let table = [
            (&built_in, "2026-06-15", false),
            (&built_in, "2026-05-25", true),
            (&adjusted, "2026-06-15", true),
            (&adjusted, "2026-05-25", false),
            // Years beyond the cache take the same adjustments.
            (&built_in, "2150-06-15", false),
            (&built_in, "2150-12-25", true),
            (&adjusted, "2150-06-15", true),
            (&adjusted, "2150-06-16", false),
            (&adjusted, "2150-12-25", false),
        ];
        for (calendar, text, holiday) in table {
            check(calendar, text, holiday);
        }
        assert_eq!(
            adjusted.bank_holidays(2026),
            dates(2026, "01-01 04-03 04-06 05-04 06-15 08-31 12-25 12-28")
        );
        assert_eq!(
            adjusted.add_working_days(date("2026-06-12"), 1),
            date("2026-06-16")
        );
        assert_eq!(
            adjusted.add_working_days(date("2026-05-22"), 1),
            date("2026-05-25")
        );
        assert!(adjusted.bank_holidays(2150).contains(&date("2150-06-15")));

        // A later adjustment overrides an earlier one.
        let restored = adjusted.with_adjustments([date("2026-05-25")], [date("2026-06-15")]);
        assert_eq!(restored.bank_holidays(2026), built_in.bank_holidays(2026));
        assert!(format!("{restored:?}").contains("2026-05-25"));
    }
}
