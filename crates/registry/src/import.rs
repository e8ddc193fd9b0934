//! A council's caseload loaded at go-live from a CSV file: each row read
//! and checked into the plan it starts, or refused naming its line and
//! column. A plan's id derives from the council and the row's child, type
//! and start date, so loading the same file again writes nothing.

use std::collections::HashMap;

use contract::common::v1::{ContactDetails, Organisation};
use contract::registry::v1 as wire;
use domain::codes::{AbuseCategory, PlanType};
use domain::date::Date;
use domain::plan::Plan;
use domain::{ChildId, LocalChildId, NhsNumber};
use eventlog::EventId;
use service_core::reject::invalid;
use service_core::validate;
use tonic::Status;

use crate::convert;
use crate::projection::Projection;

/// The most a file may hold: a large council's caseload many times over,
/// and within what the log writes at once.
pub const MAX_ROWS: usize = 10_000;
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// The columns a file may have; the first four are required.
pub const COLUMNS: &[&str] = &[
    "plan_type",
    "start_date",
    "lead_social_worker_name",
    "lead_social_worker_phone",
    "nhs_number",
    "local_id",
    "child_name",
    "category",
    "next_review_due",
    "lead_social_worker_email",
    "mother_nhs_number",
    "expected_date_of_delivery",
];
const REQUIRED: usize = 4;

/// One row accepted: the plan it starts.
#[derive(Debug)]
pub struct Row {
    pub plan_id: String,
    pub event_id: EventId,
    pub started: wire::PlanStarted,
    pub start_date: Date,
}

/// A file read and checked.
#[derive(Debug, Default)]
pub struct Checked {
    pub rows: Vec<Row>,
    pub refused: Vec<wire::RowRefused>,
    pub total: u32,
    /// Children on child protection plans or looked after, and how many
    /// of them have an NHS number (or a local identifier linked to one).
    pub children: u32,
    pub with_nhs_number: u32,
}

/// Reads `text` as the caseload of `council`, checking every row against
/// itself, the rest of the file, and the plans already held. A file that
/// cannot be read as a whole (no header, an unknown column, too big) is
/// INVALID_ARGUMENT; a row that is wrong is refused in the report.
pub fn check(
    text: &str,
    council: &Organisation,
    today: Date,
    held: &Projection,
) -> Result<Checked, Status> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|error| invalid("csv", format!("the header cannot be read: {error}")))?
        .clone();
    let mut index = HashMap::new();
    for (position, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            return Err(invalid(
                "csv",
                format!(
                    "unknown column \"{name}\" in the header; the columns are {}",
                    COLUMNS.join(", ")
                ),
            ));
        }
        if index.insert(name.clone(), position).is_some() {
            return Err(invalid("csv", format!("column \"{name}\" appears twice")));
        }
    }
    if let Some(missing) = COLUMNS[..REQUIRED]
        .iter()
        .find(|column| !index.contains_key(**column))
    {
        return Err(invalid(
            "csv",
            format!("the header has no \"{missing}\" column"),
        ));
    }
    let mut checked = Checked::default();
    // Each child's plan of each type in the file: where it was first.
    let mut seen: HashMap<(ChildId, PlanType), u32> = HashMap::new();
    let mut counted: HashMap<ChildId, bool> = HashMap::new();
    for record in reader.records() {
        checked.total += 1;
        if checked.total as usize > MAX_ROWS {
            return Err(invalid(
                "csv",
                format!("more than {MAX_ROWS} rows: load the caseload in parts"),
            ));
        }
        let line = checked.total + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                checked.refused.push(refused(line, "", error.to_string()));
                continue;
            }
        };
        let cell = |column: &str| {
            index
                .get(column)
                .and_then(|position| record.get(*position))
                .unwrap_or_default()
        };
        let mut row = RowCheck {
            line,
            refused: Vec::new(),
        };
        let Some(planned) = row.read(&cell, council, today) else {
            checked.refused.append(&mut row.refused);
            continue;
        };
        let child = held.resolve(planned.child.clone());
        let key = (child.clone(), planned.plan_type);
        if let Some(first) = seen.get(&key) {
            checked.refused.push(refused(
                line,
                "",
                format!(
                    "the same child's {} is on line {first}",
                    planned.plan_type.label()
                ),
            ));
            continue;
        }
        seen.insert(key, line);
        let event_id = plan_id(council, &planned);
        let plan_id = event_id.to_string();
        if let Some(existing) = held.plans_of(&child).find(|plan| {
            plan.aggregate.plan_type == planned.plan_type
                && plan.aggregate.in_force_on(today)
                && *plan.id != *plan_id
        }) {
            checked.refused.push(refused(
                line,
                "",
                format!(
                    "the child already has a {} in force (plan {}, from {})",
                    planned.plan_type.label(),
                    existing.id,
                    existing.aggregate.start_date
                ),
            ));
            continue;
        }
        if planned.plan_type != PlanType::Unborn {
            let matched = matches!(child, ChildId::Nhs(_));
            counted.insert(child, matched);
        }
        checked.rows.push(Row {
            event_id,
            start_date: planned.start_date,
            started: planned.into_event(plan_id.clone(), council),
            plan_id,
        });
    }
    checked.children = counted.len() as u32;
    checked.with_nhs_number = counted.values().filter(|matched| **matched).count() as u32;
    Ok(checked)
}

/// The plan a row starts: its id derives from the council and the row's
/// child, type and start date, so the same row loaded again is the same
/// plan (and the same event).
fn plan_id(council: &Organisation, planned: &Planned) -> EventId {
    let child = match &planned.child {
        ChildId::Nhs(number) => number.to_string(),
        ChildId::Local(local) => format!("local:{}", local.value()),
    };
    EventId::derived(
        EventId::from_bytes([0; 16]),
        &format!(
            "import:{}:{child}:{}:{}",
            council.ods_code,
            planned.plan_type.code(),
            planned.start_date
        ),
        0,
    )
}

fn refused(line: u32, column: &str, reason: impl Into<String>) -> wire::RowRefused {
    wire::RowRefused {
        line,
        column: column.to_owned(),
        reason: reason.into(),
    }
}

/// What a row says, once every column is valid.
#[derive(Debug)]
struct Planned {
    plan_type: PlanType,
    child: ChildId,
    child_name: String,
    category: Option<AbuseCategory>,
    start_date: Date,
    next_review_due: Option<Date>,
    expected_date_of_delivery: Option<Date>,
    lead_social_worker: ContactDetails,
}

impl Planned {
    fn into_event(self, plan_id: String, council: &Organisation) -> wire::PlanStarted {
        let (child_nhs_number, child_local_id) = validate::to_wire_child(&self.child);
        wire::PlanStarted {
            plan_id,
            r#type: convert::plan_type_to_wire(self.plan_type).into(),
            child_nhs_number,
            child_local_id,
            child_name: self.child_name,
            category: self
                .category
                .map_or(0, |category| convert::category_to_wire(category).into()),
            start_date: Some(validate::to_wire_date(self.start_date)),
            local_authority: Some(council.clone()),
            lead_social_worker: Some(self.lead_social_worker),
            expected_date_of_delivery: self.expected_date_of_delivery.map(validate::to_wire_date),
            conference_id: String::new(),
            care_team: Vec::new(),
            next_review_due: self.next_review_due.map(validate::to_wire_date),
        }
    }
}

/// One row's checks: every column at fault is refused, not only the first.
struct RowCheck {
    line: u32,
    refused: Vec<wire::RowRefused>,
}

impl RowCheck {
    fn refuse(&mut self, column: &str, reason: impl Into<String>) {
        self.refused.push(refused(self.line, column, reason));
    }

    fn date(&mut self, column: &str, value: &str) -> Option<Date> {
        if value.is_empty() {
            return None;
        }
        match Date::parse(value) {
            Ok(date) => Some(date),
            Err(error) => {
                self.refuse(column, format!("{error} (dates are YYYY-MM-DD)"));
                None
            }
        }
    }

    fn nhs(&mut self, column: &str, value: &str) -> Option<NhsNumber> {
        if value.is_empty() {
            return None;
        }
        NhsNumber::parse(value)
            .map_err(|error| self.refuse(column, error.to_string()))
            .ok()
    }

    fn required<T>(&mut self, column: &str, value: Option<T>, when: &str) -> Option<T> {
        if value.is_none() && !self.refused.iter().any(|r| r.column == column) {
            self.refuse(column, format!("is required{when}"));
        }
        value
    }

    fn empty(&mut self, column: &str, value: &str, why: &str) {
        if !value.is_empty() {
            self.refuse(column, format!("must be empty: {why}"));
        }
    }

    fn read<'a>(
        &mut self,
        cell: &impl Fn(&str) -> &'a str,
        council: &Organisation,
        today: Date,
    ) -> Option<Planned> {
        let plan_type = match cell("plan_type").to_ascii_uppercase().as_str() {
            "CPP" | "CPPI" => Some(PlanType::ChildProtection),
            "LAC" | "LACI" => Some(PlanType::LookedAfter),
            "UNBORN" | "UCPI" => Some(PlanType::Unborn),
            "" => {
                self.refuse("plan_type", "is required: CPP, LAC or UNBORN");
                None
            }
            other => {
                self.refuse(
                    "plan_type",
                    format!("\"{other}\" is not CPP, LAC or UNBORN"),
                );
                None
            }
        };
        let nhs = self.nhs("nhs_number", cell("nhs_number"));
        let local = match cell("local_id") {
            "" => None,
            value => LocalChildId::parse(&council.ods_code, value)
                .map_err(|error| self.refuse("local_id", error.to_string()))
                .ok(),
        };
        let mother = self.nhs("mother_nhs_number", cell("mother_nhs_number"));
        let start_date = self.date("start_date", cell("start_date"));
        let start_date = self.required("start_date", start_date, "");
        if let Some(start) = start_date
            && start > today
        {
            self.refuse("start_date", format!("{start} is in the future"));
        }
        let next_review_due = self.date("next_review_due", cell("next_review_due"));
        let expected = self.date(
            "expected_date_of_delivery",
            cell("expected_date_of_delivery"),
        );
        let category = match cell("category") {
            "" => None,
            value => AbuseCategory::ALL
                .iter()
                .copied()
                .find(|category| {
                    category.code().eq_ignore_ascii_case(value)
                        || category.label().eq_ignore_ascii_case(value)
                        || category
                            .label()
                            .split(' ')
                            .next()
                            .is_some_and(|word| word.eq_ignore_ascii_case(value))
                })
                .or_else(|| {
                    self.refuse(
                        "category",
                        format!(
                            "\"{value}\" is not neglect, physical, sexual, emotional or multiple"
                        ),
                    );
                    None
                }),
        };
        let name = cell("lead_social_worker_name");
        let phone = cell("lead_social_worker_phone");
        for (column, value) in [
            ("lead_social_worker_name", name),
            ("lead_social_worker_phone", phone),
        ] {
            if value.is_empty() {
                self.refuse(column, "is required: the lookup names whom to call");
            }
        }
        let child = match plan_type? {
            PlanType::Unborn => {
                self.empty(
                    "nhs_number",
                    cell("nhs_number"),
                    "an unborn child has none yet",
                );
                self.empty(
                    "local_id",
                    cell("local_id"),
                    "an unborn plan is the mother's",
                );
                self.required("expected_date_of_delivery", expected, " for an unborn plan");
                self.required("mother_nhs_number", mother, " for an unborn plan")
                    .map(ChildId::Nhs)
            }
            PlanType::ChildProtection | PlanType::LookedAfter => {
                self.empty(
                    "mother_nhs_number",
                    cell("mother_nhs_number"),
                    "only an unborn plan is the mother's",
                );
                self.empty(
                    "expected_date_of_delivery",
                    cell("expected_date_of_delivery"),
                    "only an unborn plan has one",
                );
                match (nhs, local) {
                    (Some(number), _) => Some(ChildId::Nhs(number)),
                    (None, Some(local)) => Some(ChildId::Local(local)),
                    (None, None) => {
                        if !self
                            .refused
                            .iter()
                            .any(|r| r.column == "nhs_number" || r.column == "local_id")
                        {
                            self.refuse(
                                "nhs_number",
                                "is required (or, for a child without one, local_id)",
                            );
                        }
                        None
                    }
                }
            }
        };
        let plan_type = plan_type?;
        match plan_type {
            PlanType::LookedAfter => {
                self.empty("category", cell("category"), "looked-after status has none");
                self.empty(
                    "next_review_due",
                    cell("next_review_due"),
                    "a looked-after child's reviews are the independent reviewing officer's, not a conference",
                );
            }
            PlanType::ChildProtection | PlanType::Unborn => {
                if category.is_none() && cell("category").is_empty() {
                    self.refuse("category", "is required for a child protection plan");
                }
                match (next_review_due, start_date) {
                    (None, _) if cell("next_review_due").is_empty() => self.refuse(
                        "next_review_due",
                        "is required: the review conference already booked",
                    ),
                    (Some(due), Some(start)) if due <= start => self.refuse(
                        "next_review_due",
                        format!("{due} is not after the start date {start}"),
                    ),
                    _ => {}
                }
            }
        }
        if !self.refused.is_empty() {
            return None;
        }
        let (child, start_date) = (child?, start_date?);
        // The domain's own rules for a new plan, as every other start.
        if let Err(error) = Plan::start(plan_type, child.clone(), category, start_date) {
            self.refuse("", error.to_string());
            return None;
        }
        Some(Planned {
            plan_type,
            child,
            child_name: cell("child_name").to_owned(),
            category,
            start_date,
            next_review_due,
            expected_date_of_delivery: expected,
            lead_social_worker: ContactDetails {
                name: name.to_owned(),
                phone: phone.to_owned(),
                email: cell("lead_social_worker_email").to_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "nhs_number,local_id,plan_type,category,start_date,next_review_due,lead_social_worker_name,lead_social_worker_phone,mother_nhs_number,expected_date_of_delivery\n";

    fn council() -> Organisation {
        Organisation {
            ods_code: "E09000999".into(),
            name: "Test council".into(),
            ..Organisation::default()
        }
    }

    fn today() -> Date {
        Date::from_ymd(2026, 11, 30).expect("a date")
    }

    /// What each row comes to: accepted, or refused naming these columns.
    #[test]
    fn each_row_is_accepted_or_refused_naming_every_column_at_fault() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "a plan under a category's code, name or first word",
                "9990000018,,CPP,PHY,2026-01-05,2026-04-01,Pat,0300,,\n\
                 9990000026,,cppi,physical abuse,2026-01-05,2026-04-01,Pat,0300,,\n\
                 9990000034,,CPP,Sexual,2026-01-05,2026-04-01,Pat,0300,,",
                &[],
            ),
            (
                "a looked-after child under a local identifier",
                ",UASC-1,LAC,,2026-01-05,,Pat,0300,,",
                &[],
            ),
            (
                "an unborn plan without the mother or the date",
                ",,UNBORN,neglect,2026-01-05,2026-04-01,Pat,0300,,",
                &["expected_date_of_delivery", "mother_nhs_number"],
            ),
            (
                "an unborn plan naming a child",
                "9990000018,,UNBORN,neglect,2026-01-05,2026-04-01,Pat,0300,9990000026,2026-05-01",
                &["nhs_number"],
            ),
            (
                "a child with neither number nor identifier",
                ",,LAC,,2026-01-05,,Pat,0300,,",
                &["nhs_number"],
            ),
            (
                "a bad check digit, a bad identifier, a future start",
                "9990000019,,CPP,neglect,2027-01-05,2027-04-01,Pat,0300,,\n\
                 ,has space,LAC,,2026-01-05,,Pat,0300,,",
                &["nhs_number", "start_date", "local_id"],
            ),
            (
                "a review before the start, a category of looked-after status",
                "9990000018,,CPP,neglect,2026-01-05,2026-01-05,Pat,0300,,\n\
                 9990000026,,LAC,neglect,2026-01-05,,Pat,0300,,",
                &["next_review_due", "category"],
            ),
        ];
        let held = Projection::new(false);
        for (what, rows, refused) in cases {
            let checked = check(&format!("{HEADER}{rows}\n"), &council(), today(), &held)
                .expect("a readable file");
            let columns: Vec<&str> = checked
                .refused
                .iter()
                .map(|refused| refused.column.as_str())
                .collect();
            assert_eq!(&columns, refused, "{what}: {:#?}", checked.refused);
            if refused.is_empty() {
                assert_eq!(checked.rows.len(), rows.lines().count(), "{what}");
            }
        }
    }

    #[test]
    fn a_file_that_cannot_be_read_as_a_whole_is_refused_naming_why() {
        let held = Projection::new(false);
        for (text, says) in [
            ("nhs_number,plan_type\n", "start_date"),
            (
                "plan_type,start_date,lead_social_worker_name,lead_social_worker_phone,nhs\n",
                "\"nhs\"",
            ),
            (
                "plan_type,plan_type,start_date,lead_social_worker_name,lead_social_worker_phone\n",
                "twice",
            ),
        ] {
            let refused = check(text, &council(), today(), &held).expect_err(text);
            assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            assert!(refused.message().starts_with("csv: "), "{refused:?}");
            assert!(refused.message().contains(says), "{says}: {refused:?}");
        }
    }

    #[test]
    fn the_same_row_is_the_same_plan_and_the_match_rate_counts_children_not_plans() {
        let held = Projection::new(false);
        let text = format!(
            "{HEADER}9990000018,,CPP,neglect,2026-01-05,2026-04-01,Pat,0300,,\n\
             9990000018,,LAC,,2026-01-05,,Pat,0300,,\n\
             ,LCS-2,LAC,,2026-01-05,,Pat,0300,,\n\
             ,,UNBORN,neglect,2026-01-05,2026-04-01,Pat,0300,9990000026,2026-05-01\n"
        );
        let first = check(&text, &council(), today(), &held).expect("readable");
        let second = check(&text, &council(), today(), &held).expect("readable");
        assert!(first.refused.is_empty(), "{:#?}", first.refused);
        let ids = |checked: &Checked| {
            checked
                .rows
                .iter()
                .map(|row| row.plan_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ids(&second));
        assert_eq!((first.children, first.with_nhs_number), (2, 1));
    }
}
