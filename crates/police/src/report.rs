//! A coming-to-notice report as a force's system sends it (the fields a
//! Metropolitan Police MERLIN report carries), checked field by field: a
//! report is refused with every problem named by its JSON path, and one that
//! passes becomes the backbone's requests.

use contract::common::v1::{
    AbuseCategory, ContactDetails, Date, NhsNumber, Organisation, OrganisationKind,
};
use contract::referral::v1 as wire;
use serde_json::{Map, Value};

/// One problem with a report: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub problem: String,
}

/// Whether the force refers the child or only shares what it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FormalReferral,
    InformationExchange,
}

/// A domestic abuse incident the police attended (Operation Encompass).
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub occurred_at: prost_types::Timestamp,
    pub location: String,
    pub child_present: bool,
    pub child_said: String,
}

/// A report that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub force_reference: String,
    pub kind: Kind,
    pub risk: wire::RiskRating,
    pub child: wire::Child,
    pub school: Option<Organisation>,
    pub circumstances: String,
    pub officer: ContactDetails,
    pub local_authority: Organisation,
    pub category: AbuseCategory,
    pub consent: Option<wire::Consent>,
    pub incident: Option<Incident>,
}

/// Collects the problems of one report.
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn problem(&mut self, field: &str, problem: impl Into<String>) {
        self.problems.push(Problem {
            field: field.to_owned(),
            problem: problem.into(),
        });
    }

    /// `object`'s fields, refusing any not in `known`.
    fn object<'a>(
        &mut self,
        value: Option<&'a Value>,
        field: &str,
        known: &[&str],
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            None | Some(Value::Null) => {
                if required {
                    self.problem(field, "is required");
                }
                None
            }
            Some(Value::Object(object)) => {
                for key in object.keys() {
                    if !known.contains(&key.as_str()) {
                        let path = if field.is_empty() {
                            key.clone()
                        } else {
                            format!("{field}.{key}")
                        };
                        self.problem(&path, "is not a field of a report");
                    }
                }
                Some(object)
            }
            Some(_) => {
                self.problem(field, "must be an object");
                None
            }
        }
    }

    fn text(
        &mut self,
        object: Option<&Map<String, Value>>,
        parent: &str,
        key: &str,
        required: bool,
        max: usize,
    ) -> Option<String> {
        let field = path(parent, key);
        match object.and_then(|object| object.get(key)) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(&field, "is required");
                }
                None
            }
            Some(Value::String(text)) => {
                let text = text.trim();
                if text.is_empty() {
                    if required {
                        self.problem(&field, "is required");
                    }
                    None
                } else if text.chars().count() > max {
                    self.problem(&field, format!("is longer than {max} characters"));
                    None
                } else {
                    Some(text.to_owned())
                }
            }
            Some(_) => {
                self.problem(&field, "must be text");
                None
            }
        }
    }

    fn boolean(&mut self, object: Option<&Map<String, Value>>, parent: &str, key: &str) -> bool {
        match object.and_then(|object| object.get(key)) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => {
                self.problem(&path(parent, key), "must be true or false");
                false
            }
        }
    }

    /// One of `choices` (their names as the report spells them).
    fn choice<T: Copy>(
        &mut self,
        object: Option<&Map<String, Value>>,
        parent: &str,
        key: &str,
        required: bool,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let text = self.text(object, parent, key, required, 64)?;
        let found = choices
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, value)| *value);
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            self.problem(
                &path(parent, key),
                format!("must be one of {}", names.join(", ")),
            );
        }
        found
    }

    fn organisation(
        &mut self,
        value: Option<&Value>,
        field: &str,
        kind: OrganisationKind,
        required: bool,
    ) -> Option<Organisation> {
        let object = self.object(value, field, &["ods_code", "name"], required)?;
        let ods = self.text(Some(object), field, "ods_code", true, 16);
        let name = self.text(Some(object), field, "name", false, 200);
        let ods = ods?;
        match domain::OdsCode::parse(&ods) {
            Ok(code) => Some(Organisation {
                ods_code: code.to_string(),
                name: name.unwrap_or_default(),
                kind: kind.into(),
            }),
            Err(error) => {
                self.problem(&path(field, "ods_code"), error.to_string());
                None
            }
        }
    }
}

fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn date(text: &str) -> Result<Date, String> {
    let date = domain::date::Date::parse(text).map_err(|error| error.to_string())?;
    Ok(Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or_default(),
        day: i32::try_from(date.day()).unwrap_or_default(),
    })
}

const CATEGORIES: [(&str, AbuseCategory); 5] = [
    ("neglect", AbuseCategory::Neglect),
    ("physical", AbuseCategory::Physical),
    ("sexual", AbuseCategory::Sexual),
    ("emotional", AbuseCategory::Emotional),
    ("multiple", AbuseCategory::Multiple),
];

/// Reads and checks `body`: the report, or every problem with it.
pub fn parse(body: &[u8], today: domain::date::Date) -> Result<Report, Vec<Problem>> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        vec![Problem {
            field: String::new(),
            problem: format!("the body is not JSON: {error}"),
        }]
    })?;
    let mut check = Check {
        problems: Vec::new(),
    };
    let report = check.object(
        Some(&value),
        "",
        &[
            "force_reference",
            "kind",
            "risk",
            "child",
            "circumstances",
            "officer",
            "local_authority",
            "category",
            "consent",
            "domestic_abuse",
        ],
        true,
    );
    if report.is_none() {
        return Err(check.problems);
    }
    let force_reference = check.text(report, "", "force_reference", true, 64);
    if let Some(reference) = &force_reference
        && !reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
    {
        check.problem(
            "force_reference",
            "may hold only letters, digits and / - _ .",
        );
    }
    let kind = check.choice(
        report,
        "",
        "kind",
        true,
        &[
            ("formal-referral", Kind::FormalReferral),
            ("information-exchange", Kind::InformationExchange),
        ],
    );
    let risk = check.choice(
        report,
        "",
        "risk",
        true,
        &[
            ("high", wire::RiskRating::High),
            ("low", wire::RiskRating::Low),
        ],
    );
    let circumstances = check.text(report, "", "circumstances", true, 20_000);

    let child = check.object(
        report.and_then(|r| r.get("child")),
        "child",
        &[
            "nhs_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "address",
            "postcode",
            "school",
            "educated_at_home",
        ],
        true,
    );
    let nhs_number = check.text(child, "child", "nhs_number", false, 16);
    if let Some(number) = &nhs_number
        && let Err(error) = domain::NhsNumber::parse(number)
    {
        check.problem("child.nhs_number", error.to_string());
    }
    let given_name = check.text(child, "child", "given_name", true, 200);
    let family_name = check.text(child, "child", "family_name", true, 200);
    let born = check
        .text(child, "child", "date_of_birth", true, 10)
        .and_then(|text| match date(&text) {
            Ok(born) => Some(born),
            Err(error) => {
                check.problem("child.date_of_birth", error);
                None
            }
        });
    if let Some(born) = &born
        && domain::date::Date::from_ymd(
            born.year,
            u32::try_from(born.month).unwrap_or(0),
            u32::try_from(born.day).unwrap_or(0),
        )
        .is_ok_and(|born| born > today)
    {
        check.problem("child.date_of_birth", "is in the future");
    }
    let address = check.text(child, "child", "address", false, 500);
    let postcode = check.text(child, "child", "postcode", false, 10);
    let school = check.organisation(
        child.and_then(|c| c.get("school")),
        "child.school",
        OrganisationKind::School,
        false,
    );
    let educated_at_home = check.boolean(child, "child", "educated_at_home");
    if school.is_some() && educated_at_home {
        check.problem(
            "child.educated_at_home",
            "a child educated at home has no school: give one or the other",
        );
    }

    let officer = check.object(
        report.and_then(|r| r.get("officer")),
        "officer",
        &["name", "phone", "email"],
        true,
    );
    let officer_name = check.text(officer, "officer", "name", true, 200);
    let officer_phone = check.text(officer, "officer", "phone", true, 40);
    let officer_email = check.text(officer, "officer", "email", false, 200);
    let local_authority = check.organisation(
        report.and_then(|r| r.get("local_authority")),
        "local_authority",
        OrganisationKind::LocalAuthority,
        true,
    );

    // What a referral needs beyond an information exchange.
    let referring = kind == Some(Kind::FormalReferral);
    let category = check.choice(report, "", "category", referring, &CATEGORIES);
    let consent = check.object(
        report.and_then(|r| r.get("consent")),
        "consent",
        &["status", "reason"],
        referring,
    );
    let consent_status = consent.and_then(|_| {
        check.choice(
            consent,
            "consent",
            "status",
            true,
            &[
                ("given", wire::ConsentStatus::Given),
                ("refused", wire::ConsentStatus::Refused),
                ("not-sought", wire::ConsentStatus::NotSought),
            ],
        )
    });
    let consent_reason = check.text(consent, "consent", "reason", false, 2_000);
    if consent_status == Some(wire::ConsentStatus::NotSought) && consent_reason.is_none() {
        check.problem(
            "consent.reason",
            "is required when consent was not sought: say why",
        );
    }
    if !referring && (category.is_some() || consent.is_some()) {
        check.problem(
            "kind",
            "an information exchange carries no category or consent: is this a formal referral?",
        );
    }

    let abuse = check.object(
        report.and_then(|r| r.get("domestic_abuse")),
        "domestic_abuse",
        &["occurred_at", "location", "child_present", "child_said"],
        false,
    );
    let incident = abuse.and_then(|abuse| {
        let occurred_at = check
            .text(Some(abuse), "domestic_abuse", "occurred_at", true, 40)
            .and_then(|text| match text.parse::<jiff::Timestamp>() {
                Ok(moment) => Some(prost_types::Timestamp {
                    seconds: moment.as_second(),
                    nanos: 0,
                }),
                Err(_) => {
                    check.problem(
                        "domestic_abuse.occurred_at",
                        "must be a time with its offset, e.g. 2026-11-30T22:15:00Z",
                    );
                    None
                }
            });
        let location = check.text(Some(abuse), "domestic_abuse", "location", true, 500);
        let child_present = check.boolean(Some(abuse), "domestic_abuse", "child_present");
        let child_said = check
            .text(Some(abuse), "domestic_abuse", "child_said", false, 5_000)
            .unwrap_or_default();
        Some(Incident {
            occurred_at: occurred_at?,
            location: location?,
            child_present,
            child_said,
        })
    });
    if abuse.is_some() && school.is_none() && !educated_at_home {
        check.problem(
            "child.school",
            "is required for a domestic abuse incident (Operation Encompass tells the school), or say educated_at_home: the council is told instead",
        );
    }

    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    let (
        Some(force_reference),
        Some(kind),
        Some(risk),
        Some(circumstances),
        Some(officer_name),
        Some(officer_phone),
        Some(local_authority),
    ) = (
        force_reference,
        kind,
        risk,
        circumstances,
        officer_name,
        officer_phone,
        local_authority,
    )
    else {
        return Err(vec![Problem {
            field: String::new(),
            problem: "the report is incomplete".into(),
        }]);
    };
    Ok(Report {
        force_reference,
        kind,
        risk,
        child: wire::Child {
            nhs_number: nhs_number.map(|value| NhsNumber { value }),
            given_name: given_name.unwrap_or_default(),
            family_name: family_name.unwrap_or_default(),
            date_of_birth: born,
            address: address.unwrap_or_default(),
            postcode: postcode.unwrap_or_default(),
            ..wire::Child::default()
        },
        school,
        circumstances,
        officer: ContactDetails {
            name: officer_name,
            phone: officer_phone,
            email: officer_email.unwrap_or_default(),
        },
        local_authority,
        category: category.unwrap_or(AbuseCategory::Unspecified),
        consent: consent_status.map(|status| wire::Consent {
            status: status.into(),
            reason: consent_reason.unwrap_or_default(),
        }),
        incident,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> domain::date::Date {
        domain::date::Date::from_ymd(2026, 11, 30).expect("a date")
    }

    fn good() -> Value {
        serde_json::json!({
            "force_reference": "MERLIN/2026/000123",
            "kind": "formal-referral",
            "risk": "high",
            "child": { "nhs_number": "9990000018", "given_name": "Alex", "family_name": "Example",
                       "date_of_birth": "2019-04-02", "school": { "ods_code": "S999001", "name": "Test Primary" } },
            "circumstances": "called to a disturbance; the child was in the house",
            "officer": { "name": "PC Test", "phone": "020 7946 0000" },
            "local_authority": { "ods_code": "E09000999" },
            "category": "emotional",
            "consent": { "status": "not-sought", "reason": "it would place the child at risk" },
            "domestic_abuse": { "occurred_at": "2026-11-30T22:15:00Z", "location": "the family home", "child_present": true },
        })
    }

    fn problems(value: &Value) -> Vec<String> {
        parse(value.to_string().as_bytes(), today())
            .map(|_| Vec::new())
            .unwrap_or_else(|problems| problems.into_iter().map(|p| p.field).collect())
    }

    #[test]
    fn a_good_report_passes_and_each_bad_field_is_named() {
        let report = parse(good().to_string().as_bytes(), today()).expect("valid");
        assert_eq!(report.kind, Kind::FormalReferral);
        assert_eq!(report.risk, wire::RiskRating::High);
        assert!(report.incident.is_some());

        let mut bad = good();
        bad["child"]["nhs_number"] = "9990000019".into();
        bad["risk"] = "medium".into();
        bad["officer"] = serde_json::json!({ "name": "PC Test" });
        bad["child"]["date_of_birth"] = "2030-01-01".into();
        bad["domestic_abuse"]["occurred_at"] = "last night".into();
        bad["colour"] = "blue".into();
        assert_eq!(
            problems(&bad),
            [
                "colour",
                "risk",
                "child.nhs_number",
                "child.date_of_birth",
                "officer.phone",
                "domestic_abuse.occurred_at"
            ]
        );

        let mut exchange = good();
        exchange["kind"] = "information-exchange".into();
        assert_eq!(problems(&exchange), ["kind"]);
        let mut referral = good();
        referral.as_object_mut().expect("object").remove("category");
        assert_eq!(problems(&referral), ["category"]);
        let mut homeless = good();
        homeless["child"]
            .as_object_mut()
            .expect("object")
            .remove("school");
        assert_eq!(problems(&homeless), ["child.school"]);
        assert_eq!(problems(&Value::from("a report")), [""]);
    }
}
