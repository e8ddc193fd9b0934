//! Calendar dates without a time zone: the unit every statutory clock is
//! measured in. Working Together counts days, never instants, so a date is
//! all the domain needs and keeps the clocks free of time-zone questions.
//!
//! Only years 1900 to 2200 are accepted: anything outside is a typing error
//! in a child-protection record, and the bound keeps all arithmetic small.

use std::fmt;
use std::str::FromStr;

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2200;

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("year {year} is outside {MIN_YEAR} to {MAX_YEAR}")]
    YearOutOfRange { year: i32 },
    #[error("month {month} is not between 1 and 12")]
    MonthOutOfRange { month: u32 },
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    DayOutOfRange { year: i32, month: u32, day: u32 },
    #[error("{input:?} is not a date in the form YYYY-MM-DD")]
    Malformed { input: String },
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// A proleptic Gregorian date between 1900-01-01 and 2200-12-31, stored as
/// days since 1970-01-01 so that comparison and day arithmetic are integer
/// operations.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i32,
}

impl Date {
    /// The earliest date accepted.
    pub const MIN: Date = Date {
        days: days_from_civil(MIN_YEAR, 1, 1),
    };
    /// The latest date accepted.
    pub const MAX: Date = Date {
        days: days_from_civil(MAX_YEAR, 12, 31),
    };

    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Date, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange { year });
        }
        if !(1..=12).contains(&month) {
            return Err(DateError::MonthOutOfRange { month });
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(DateError::DayOutOfRange { year, month, day });
        }
        Ok(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses exactly `YYYY-MM-DD`: no whitespace, signs, times or short
    /// fields, so that what is stored is what was meant.
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let malformed = || DateError::Malformed {
            // Echo enough to recognise the value without copying a huge input.
            input: text.chars().take(32).collect(),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(malformed());
        }
        let number = |range: std::ops::Range<usize>| {
            bytes[range].iter().try_fold(0u32, |acc, byte| {
                byte.is_ascii_digit()
                    .then(|| acc * 10 + u32::from(byte - b'0'))
            })
        };
        let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10))
        else {
            return Err(malformed());
        };
        // Four decimal digits always fit in an i32.
        let year = i32::try_from(year).map_err(|_| malformed())?;
        Date::from_ymd(year, month, day)
    }

    pub fn year(self) -> i32 {
        civil_from_days(self.days).0
    }

    pub fn month(self) -> u32 {
        civil_from_days(self.days).1
    }

    pub fn day(self) -> u32 {
        civil_from_days(self.days).2
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday, the fourth day counting from Monday.
        match (self.days + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    pub fn is_weekend(self) -> bool {
        matches!(self.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    /// `days` later (earlier when negative), saturating at [`Date::MIN`] and
    /// [`Date::MAX`]: the range spans centuries beyond any real deadline, so
    /// saturating is safer than making every clock handle an error.
    pub fn add_days(self, days: i64) -> Date {
        let target = i64::from(self.days).saturating_add(days);
        let clamped = target.clamp(i64::from(Date::MIN.days), i64::from(Date::MAX.days));
        Date {
            days: i32::try_from(clamped).unwrap_or(Date::MAX.days),
        }
    }

    /// Days from `self` to `other`: positive when `other` is later.
    pub fn days_until(self, other: Date) -> i64 {
        i64::from(other.days) - i64::from(self.days)
    }

    /// The same day of the month `months` calendar months later, or the last
    /// day of that month when it is shorter (31 August plus six months is the
    /// end of February); saturates at [`Date::MAX`].
    pub fn add_months(self, months: u32) -> Date {
        let (year, month, day) = civil_from_days(self.days);
        let index = i64::from(year) * 12 + i64::from(month - 1) + i64::from(months);
        let Ok(year) = i32::try_from(index.div_euclid(12)) else {
            return Date::MAX;
        };
        if year > MAX_YEAR {
            return Date::MAX;
        }
        // The remainder of a division by 12 is 0..=11.
        let month = u32::try_from(index.rem_euclid(12)).unwrap_or(0) + 1;
        let day = day.min(days_in_month(year, month));
        Date {
            days: days_from_civil(year, month, day),
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.days);
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl fmt::Debug for Date {
    // The day count means nothing to a reader of a log or a failed test.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Date, DateError> {
        Date::parse(text)
    }
}

fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil and civil_from_days
// (https://howardhinnant.github.io/date_algorithms.html): years are shifted
// to start in March so the leap day falls at the end of the year, and
// counted in 400-year eras of 146097 days. Callers pass valid dates within
// 1900..=2200, so every intermediate value fits comfortably in an i32.

const fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = month as i32;
    let day = day as i32;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i32::from(month <= 2);
    // Both are small and positive by construction of the algorithm.
    (year, month.unsigned_abs(), day.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("valid date")
    }

    #[test]
    fn every_day_from_1990_to_2100_round_trips() {
        let mut expected_days = days_from_civil(1990, 1, 1);
        assert_eq!(expected_days, 7305);
        for year in 1990..2100 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let value = Date::from_ymd(year, month, day).expect("valid");
                    assert_eq!(value.days, expected_days, "{year}-{month}-{day}");
                    assert_eq!(
                        (value.year(), value.month(), value.day()),
                        (year, month, day)
                    );
                    let text = value.to_string();
                    assert_eq!(text, format!("{year:04}-{month:02}-{day:02}"));
                    assert_eq!(text.parse::<Date>(), Ok(value));
                    assert_eq!(value.add_days(1).days_until(value), -1);
                    expected_days += 1;
                }
            }
        }
    }

    #[test]
    fn the_epoch_and_the_bounds() {
        assert_eq!(date("1970-01-01").days, 0);
        assert_eq!(Date::MIN, date("1900-01-01"));
        assert_eq!(Date::MAX, date("2200-12-31"));
        assert_eq!(Date::MIN.add_days(-1), Date::MIN);
        assert_eq!(Date::MAX.add_days(1), Date::MAX);
        assert_eq!(Date::MAX.add_days(i64::MAX), Date::MAX);
        assert_eq!(Date::MIN.add_days(i64::MIN), Date::MIN);
        assert_eq!(Date::MAX.add_months(u32::MAX), Date::MAX);
        assert_eq!(date("2200-06-30").add_months(6), date("2200-12-30"));
        assert_eq!(date("2200-07-31").add_months(6), Date::MAX);
        assert_eq!(format!("{:?}", date("2026-05-25")), "Date(2026-05-25)");
    }

    #[test]
    fn leap_years() {
        for (year, leap) in [
            (1900, false),
            (2000, true),
            (2024, true),
            (2023, false),
            (2100, false),
        ] {
            assert_eq!(Date::from_ymd(year, 2, 29).is_ok(), leap, "{year}");
            assert!(Date::from_ymd(year, 2, 28).is_ok());
        }
        assert_eq!(date("2024-02-28").add_days(1), date("2024-02-29"));
        assert_eq!(date("1900-02-28").add_days(1), date("1900-03-01"));
    }

    #[test]
    fn invalid_dates_are_refused_with_the_reason() {
        let cases = [
            ((2026, 0, 1), "month 0 is not between 1 and 12"),
            ((2026, 13, 1), "month 13 is not between 1 and 12"),
            ((2026, 1, 0), "day 0 does not exist in 2026-01"),
            ((2026, 4, 31), "day 31 does not exist in 2026-04"),
            ((2023, 2, 29), "day 29 does not exist in 2023-02"),
            ((1900, 2, 29), "day 29 does not exist in 1900-02"),
            ((1899, 12, 31), "year 1899 is outside 1900 to 2200"),
            ((2201, 1, 1), "year 2201 is outside 1900 to 2200"),
        ];
        for ((year, month, day), message) in cases {
            let error = Date::from_ymd(year, month, day).expect_err("invalid");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn only_iso_dates_parse() {
        for text in [
            "",
            "2026-1-05",
            "2026-01-5",
            "26-01-05",
            "2026/01/05",
            "20260105",
            " 2026-01-05",
            "2026-01-05 ",
            "2026-01-05T00:00",
            "+026-01-05",
            "2026-+1-05",
            "2026-01-0a",
            "２０２６-01-05",
            "2026-01-05é",
        ] {
            assert!(
                matches!(Date::parse(text), Err(DateError::Malformed { .. })),
                "{text:?}"
            );
        }
        assert_eq!(
            Date::parse("5 Jan 2026")
                .expect_err("malformed")
                .to_string(),
            "\"5 Jan 2026\" is not a date in the form YYYY-MM-DD"
        );
        assert_eq!(
            Date::parse("2026-02-30"),
            Err(DateError::DayOutOfRange {
                year: 2026,
                month: 2,
                day: 30
            })
        );
        assert_eq!(
            Date::parse("0000-01-01"),
            Err(DateError::YearOutOfRange { year: 0 })
        );
        let long = "x".repeat(10_000);
        assert_eq!(
            Date::parse(&long),
            Err(DateError::Malformed {
                input: "x".repeat(32)
            })
        );
    }

    #[test]
    fn weekdays_of_known_dates() {
        let cases = [
            ("2026-11-23", Weekday::Monday),
            ("1970-01-01", Weekday::Thursday),
            ("1900-01-01", Weekday::Monday),
            ("2000-02-29", Weekday::Tuesday),
            ("2024-12-25", Weekday::Wednesday),
            ("2026-12-26", Weekday::Saturday),
            ("2027-12-26", Weekday::Sunday),
            ("2200-12-31", Weekday::Wednesday),
        ];
        for (text, weekday) in cases {
            assert_eq!(date(text).weekday(), weekday, "{text}");
            let weekend = matches!(weekday, Weekday::Saturday | Weekday::Sunday);
            assert_eq!(date(text).is_weekend(), weekend, "{text}");
        }
    }

    #[test]
    fn adding_months_clamps_to_the_end_of_shorter_months() {
        let cases = [
            ("2026-08-31", 6, "2027-02-28"),
            ("2027-08-31", 6, "2028-02-29"),
            ("2026-01-31", 1, "2026-02-28"),
            ("2026-01-31", 3, "2026-04-30"),
            ("2026-03-31", 3, "2026-06-30"),
            ("2024-02-29", 12, "2025-02-28"),
            ("2024-02-29", 48, "2028-02-29"),
            ("2026-11-30", 3, "2027-02-28"),
            ("2026-12-15", 1, "2027-01-15"),
            ("2026-10-01", 3, "2027-01-01"),
            ("2026-05-17", 0, "2026-05-17"),
            ("2026-05-17", 120, "2036-05-17"),
        ];
        for (from, months, expected) in cases {
            assert_eq!(
                date(from).add_months(months),
                date(expected),
                "{from} + {months}"
            );
        }
    }

    #[test]
    fn day_arithmetic() {
        assert_eq!(date("2026-12-31").add_days(1), date("2027-01-01"));
        assert_eq!(date("2027-03-01").add_days(-1), date("2027-02-28"));
        assert_eq!(date("2026-01-01").days_until(date("2027-01-01")), 365);
        assert_eq!(date("2027-01-01").days_until(date("2026-01-01")), -365);
        assert!(date("2026-12-31") < date("2027-01-01"));
    }
}
