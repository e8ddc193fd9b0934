//! From wire types to domain types, at the boundary: each function takes the
//! name of the field it checks, so a refusal says exactly what was wrong.

use std::time::SystemTime;

use contract::common::v1 as wire;
use domain::date::Date;
use domain::{ChildId, IdError, LocalChildId, NhsNumber, OdsCode};
use tonic::Status;

use crate::reject::invalid;

/// Who is calling: from the verified certificate and token only
/// (`Caller::of(&request)`), never from a request body.
pub use trust::Caller;

/// A protobuf enum value that is known and not `_UNSPECIFIED`.
pub fn known_enum<E>(field: &str, value: i32) -> Result<E, Status>
where
    E: TryFrom<i32> + Default + PartialEq,
{
    match E::try_from(value) {
        Ok(known) if known != E::default() => Ok(known),
        Ok(_) => Err(invalid(field, "is required")),
        Err(_) => Err(invalid(field, format!("unknown value {value}"))),
    }
}

/// A protobuf enum value that is known; `_UNSPECIFIED` (not given) too.
pub fn optional_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, Status> {
    E::try_from(value).map_err(|_| invalid(field, format!("unknown value {value}")))
}

/// Text that must be given; its length is held to its limit with every
/// other field's (`limits::checked`).
pub fn required_text(field: &str, value: &str) -> Result<String, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Ok(value.to_owned())
}

pub fn nhs_number(field: &str, number: Option<&wire::NhsNumber>) -> Result<NhsNumber, Status> {
    let number = number.ok_or_else(|| invalid(field, "is required"))?;
    NhsNumber::parse(&number.value).map_err(|error| invalid(field, error))
}

/// An NHS number that may be absent (not known), but is valid if given.
pub fn optional_nhs_number(
    field: &str,
    number: Option<&wire::NhsNumber>,
) -> Result<Option<NhsNumber>, Status> {
    match number {
        Some(number) if !number.value.trim().is_empty() => {
            nhs_number(field, Some(number)).map(Some)
        }
        _ => Ok(None),
    }
}

/// A council's local identifier for a child, if given (an empty message is
/// not given).
pub fn optional_local_child_id(
    field: &str,
    id: Option<&wire::LocalChildId>,
) -> Result<Option<LocalChildId>, Status> {
    let Some(id) = id.filter(|id| !(id.local_authority_ods_code.is_empty() && id.value.is_empty()))
    else {
        return Ok(None);
    };
    LocalChildId::parse(&id.local_authority_ods_code, &id.value)
        .map(Some)
        .map_err(|error| match error {
            IdError::OdsCode(_) => invalid(&format!("{field}.local_authority_ods_code"), error),
            _ => invalid(&format!("{field}.value"), error),
        })
}

/// Whom a request is about: exactly one of an NHS number and a council's
/// local identifier.
pub fn child_id(
    nhs_field: &str,
    nhs: Option<&wire::NhsNumber>,
    local_field: &str,
    local: Option<&wire::LocalChildId>,
) -> Result<ChildId, Status> {
    match (
        optional_nhs_number(nhs_field, nhs)?,
        optional_local_child_id(local_field, local)?,
    ) {
        (Some(number), None) => Ok(ChildId::Nhs(number)),
        (None, Some(local)) => Ok(ChildId::Local(local)),
        (None, None) => Err(invalid(
            nhs_field,
            format!("is required (or, for a child without one, {local_field})"),
        )),
        (Some(_), Some(_)) => Err(invalid(
            local_field,
            format!("give {nhs_field} or {local_field}, not both"),
        )),
    }
}

/// A local identifier is the council's own: a child held under one is
/// held by the council that issued it (`owner`, an ODS code).
pub fn issued_by(child: &ChildId, field: &str, owner: &str) -> Result<(), Status> {
    match child {
        ChildId::Local(local) if local.council().as_str() != owner => Err(invalid(
            &format!("{field}.local_authority_ods_code"),
            format!(
                "is {}, not {owner}: a local identifier is the council's own",
                local.council()
            ),
        )),
        _ => Ok(()),
    }
}

pub fn to_wire_local(id: &LocalChildId) -> wire::LocalChildId {
    wire::LocalChildId {
        local_authority_ods_code: id.council().to_string(),
        value: id.value().to_owned(),
    }
}

pub fn to_wire_nhs(number: NhsNumber) -> wire::NhsNumber {
    wire::NhsNumber {
        value: number.to_string(),
    }
}

/// A child id as the wire carries it: an NHS number or a local identifier.
pub fn to_wire_child(child: &ChildId) -> (Option<wire::NhsNumber>, Option<wire::LocalChildId>) {
    match child {
        ChildId::Nhs(number) => (Some(to_wire_nhs(*number)), None),
        ChildId::Local(local) => (None, Some(to_wire_local(local))),
    }
}

/// The child a stored event names, read leniently (as stored: a value
/// that does not parse names no one).
pub fn stored_child(
    nhs: Option<&wire::NhsNumber>,
    local: Option<&wire::LocalChildId>,
) -> Option<ChildId> {
    nhs.and_then(|number| NhsNumber::parse(&number.value).ok())
        .map(ChildId::Nhs)
        .or_else(|| {
            local
                .and_then(|id| LocalChildId::parse(&id.local_authority_ods_code, &id.value).ok())
                .map(ChildId::Local)
        })
}

pub fn date(field: &str, date: Option<&wire::Date>) -> Result<Date, Status> {
    let date = date.ok_or_else(|| invalid(field, "is required"))?;
    let (month, day) = (u32::try_from(date.month), u32::try_from(date.day));
    let (Ok(month), Ok(day)) = (month, day) else {
        return Err(invalid(field, "month and day must be positive"));
    };
    Date::from_ymd(date.year, month, day).map_err(|error| invalid(field, error))
}

pub fn optional_date(field: &str, value: Option<&wire::Date>) -> Result<Option<Date>, Status> {
    match value {
        Some(value) if *value != wire::Date::default() => date(field, Some(value)).map(Some),
        _ => Ok(None),
    }
}

pub fn to_wire_date(date: Date) -> wire::Date {
    wire::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// An organisation with a valid ODS code.
pub fn organisation(
    field: &str,
    value: Option<&wire::Organisation>,
) -> Result<wire::Organisation, Status> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    let ods = OdsCode::parse(&value.ods_code)
        .map_err(|error| invalid(&format!("{field}.ods_code"), error))?;
    Ok(wire::Organisation {
        ods_code: ods.to_string(),
        name: value.name.trim().to_owned(),
        kind: value.kind,
    })
}

/// A point in time, or now; never before 1900 or far in the future.
pub fn timestamp_or_now(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<prost_types::Timestamp, Status> {
    match value {
        None => Ok(SystemTime::now().into()),
        Some(stamp) => {
            if !(-2_208_988_800..=7_258_118_400).contains(&stamp.seconds)
                || !(0..1_000_000_000).contains(&stamp.nanos)
            {
                return Err(invalid(field, "is not a plausible time"));
            }
            Ok(*stamp)
        }
    }
}

/// The UK civil date of a moment: its date in Europe/London, summer time
/// included, as statutory clocks count it (a referral arriving at 00:30 on
/// a summer night is received that day, not the day before as its UTC date
/// would say). The time-zone rules are the IANA database's, built in
/// (`jiff`), so a machine without one dates the same.
pub fn date_of(stamp: &prost_types::Timestamp) -> Date {
    let epoch = Date::from_ymd(1970, 1, 1).unwrap_or(Date::MIN);
    let utc = epoch.add_days(stamp.seconds.div_euclid(86_400));
    let (Some(london), Ok(moment)) = (LONDON.as_ref(), jiff::Timestamp::new(stamp.seconds, 0))
    else {
        return utc;
    };
    let civil = london.to_datetime(moment).date();
    Date::from_ymd(
        i32::from(civil.year()),
        u32::from(civil.month().unsigned_abs()),
        u32::from(civil.day().unsigned_abs()),
    )
    .unwrap_or(utc)
}

/// A contract date as ISO 8601 (`2026-11-30`), as every answer, line and
/// document shows one.
pub fn iso_date(date: &wire::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// A moment as RFC 3339 in UTC (`2026-11-30T22:15:00Z`), as FHIR's instant
/// and every JSON answer shows one.
pub fn instant(stamp: &prost_types::Timestamp) -> String {
    jiff::Timestamp::new(stamp.seconds, stamp.nanos)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// When a school day starts: 08:30 UK time (Operation Encompass asks that
/// schools know before it).
pub const SCHOOL_DAY_STARTS: (i8, i8) = (8, 30);

/// The first start of a school day (a working day, at
/// [`SCHOOL_DAY_STARTS`] UK time) after `stamp`: when a school must know of
/// a domestic abuse incident that happened then. Term dates are each
/// school's and not known here: a holiday weekday counts as a school day,
/// which only ever makes the notice earlier.
pub fn next_school_day_start(
    stamp: &prost_types::Timestamp,
    calendar: &domain::calendar::Calendar,
) -> prost_types::Timestamp {
    let mut day = date_of(stamp);
    for _ in 0..30 {
        if calendar.is_working_day(day)
            && let Some(start) = start_of_day_at(day, SCHOOL_DAY_STARTS)
            && start.seconds > stamp.seconds
        {
            return start;
        }
        day = day.add_days(1);
    }
    prost_types::Timestamp {
        seconds: stamp.seconds + 86_400,
        nanos: 0,
    }
}

/// `date` at `(hour, minute)` UK time.
fn start_of_day_at(date: Date, (hour, minute): (i8, i8)) -> Option<prost_types::Timestamp> {
    let london = LONDON.as_ref()?;
    let civil = jiff::civil::date(
        i16::try_from(date.year()).ok()?,
        i8::try_from(date.month()).ok()?,
        i8::try_from(date.day()).ok()?,
    )
    .at(hour, minute, 0, 0);
    let zoned = civil.to_zoned(london.clone()).ok()?;
    Some(prost_types::Timestamp {
        seconds: zoned.timestamp().as_second(),
        nanos: 0,
    })
}

/// The UK's time zone, from the built-in database.
static LONDON: std::sync::LazyLock<Option<jiff::tz::TimeZone>> =
    std::sync::LazyLock::new(|| jiff::tz::TimeZone::get("Europe/London").ok());

/// When a thing that happened on `date` is placed in time, for an event's
/// occurred-at: noon UTC, so it falls on that date in UK time all year.
pub fn noon_of(date: Date) -> SystemTime {
    let epoch = Date::from_ymd(1970, 1, 1).unwrap_or(Date::MIN);
    let seconds = epoch.days_until(date) * 86_400 + 43_200;
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(seconds.unsigned_abs())
    }
}

/// A timestamp as a `SystemTime`, for an event's occurred-at.
pub fn system_time(stamp: &prost_types::Timestamp) -> SystemTime {
    SystemTime::try_from(*stamp).unwrap_or_else(|_| SystemTime::now())
}

/// Today's date, from the wall clock.
pub fn today() -> Date {
    date_of(&SystemTime::now().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_one_of_an_nhs_number_and_a_councils_own_local_identifier() {
        let number = Some(wire::NhsNumber {
            value: "9990000018".into(),
        });
        let local = |ods: &str, value: &str| {
            Some(wire::LocalChildId {
                local_authority_ods_code: ods.into(),
                value: value.into(),
            })
        };
        let child = |nhs: &Option<wire::NhsNumber>, id: &Option<wire::LocalChildId>| {
            child_id(
                "child_nhs_number",
                nhs.as_ref(),
                "child_local_id",
                id.as_ref(),
            )
        };
        let refused =
            |answer: Result<ChildId, Status>| answer.expect_err("refused").message().to_owned();
        assert!(matches!(child(&number, &None), Ok(ChildId::Nhs(_))));
        let held = child(&None, &local("e09000999", "LCS-1")).expect("a local child");
        assert_eq!(to_wire_child(&held).1, local("E09000999", "LCS-1"));
        assert!(refused(child(&None, &None)).starts_with("child_nhs_number: is required (or"));
        assert!(
            refused(child(&number, &local("E09000999", "L"))).starts_with("child_local_id: give")
        );
        assert!(
            refused(child(&None, &local("E09000999", "a b"))).starts_with("child_local_id.value")
        );
        assert!(
            refused(child(&None, &local("E0", "x")))
                .starts_with("child_local_id.local_authority_ods_code")
        );
        assert!(issued_by(&held, "child_local_id", "E09000999").is_ok());
        let other = issued_by(&held, "child_local_id", "E09000998").expect_err("another council's");
        assert!(
            other
                .message()
                .starts_with("child_local_id.local_authority_ods_code: is E09000999")
        );
    }

    #[test]
    fn a_school_is_due_to_know_by_the_next_school_day_start() {
        let calendar = domain::calendar::Calendar::england_and_wales();
        let at = |text: &str| {
            let moment: jiff::Timestamp = text.parse().expect("a timestamp");
            prost_types::Timestamp {
                seconds: moment.as_second(),
                nanos: 0,
            }
        };
        let due = |text: &str| {
            jiff::Timestamp::from_second(next_school_day_start(&at(text), &calendar).seconds)
                .expect("a time")
                .to_string()
        };
        // Monday night (winter, UTC): Tuesday 08:30.
        assert_eq!(due("2026-11-30T22:15:00Z"), "2026-12-01T08:30:00Z");
        // Before school on Tuesday: that morning.
        assert_eq!(due("2026-12-01T03:00:00Z"), "2026-12-01T08:30:00Z");
        // During Tuesday's school day: Wednesday's start.
        assert_eq!(due("2026-12-01T10:00:00Z"), "2026-12-02T08:30:00Z");
        // Friday evening: Monday; Christmas Eve: past the bank holidays.
        assert_eq!(due("2026-12-04T19:00:00Z"), "2026-12-07T08:30:00Z");
        assert_eq!(due("2026-12-24T19:00:00Z"), "2026-12-29T08:30:00Z");
        // Summer time: 08:30 in London is 07:30 UTC.
        assert_eq!(due("2026-06-15T21:00:00Z"), "2026-06-16T07:30:00Z");
    }

    #[test]
    fn moments_fall_on_their_uk_civil_date() {
        let on = |seconds| date_of(&prost_types::Timestamp { seconds, nanos: 0 }).to_string();
        // Winter: UK time is UTC.
        assert_eq!(on(1_798_761_599), "2026-12-31", "23:59:59 GMT");
        assert_eq!(on(1_798_761_600), "2027-01-01", "midnight GMT");
        // Summer: 23:30 UTC on 2 July 2026 is 00:30 BST on the 3rd.
        assert_eq!(on(1_783_035_000), "2026-07-03");
        assert_eq!(on(1_783_035_000 - 3_600), "2026-07-02", "23:30 BST");
        // The changes: 29 March 2026 at 01:00 UTC, 25 October at 01:00 UTC.
        assert_eq!(
            on(1_774_744_200),
            "2026-03-29",
            "00:30 GMT, before the change"
        );
        assert_eq!(
            on(1_774_742_400 - 1),
            "2026-03-28",
            "23:59:59 GMT the night before"
        );
        assert_eq!(
            on(1_792_884_600),
            "2026-10-25",
            "23:30 UTC on the 24th is 00:30 BST"
        );
        assert_eq!(on(1_792_890_000), "2026-10-25", "01:00 UTC: back to GMT");
        // Long ago and far ahead, as the database has them.
        assert_eq!(on(0), "1970-01-01", "BST all year then: 01:00");
        assert_eq!(on(-3_600 - 1), "1969-12-31");
    }

    #[test]
    fn enums_must_be_known_and_specified() {
        assert!(known_enum::<wire::Role>("caller.role", 0).is_err());
        assert!(known_enum::<wire::Role>("caller.role", 999).is_err());
        assert_eq!(
            known_enum::<wire::Role>("caller.role", 1).ok(),
            Some(wire::Role::SocialWorker)
        );
    }
}
