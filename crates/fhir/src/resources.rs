//! The FHIR R4 resources the edge answers with, shaped as NHS England's
//! CP-IS FHIR API has them: a plan as a `CareTeam`, an access as an
//! `AuditEvent`, each in a `searchset` Bundle; a refusal as an
//! `OperationOutcome` with the national error code; and the
//! `CapabilityStatement`.

use contract::common::v1::{Date, Organisation};
use contract::registry::v1 as wire;
use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

/// The identifier systems of the national APIs.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SNOMED: &str = "http://snomed.info/sct";
const SPINE_ERROR_CODES: &str = "https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode";

/// The SNOMED CT concept of a plan type, from the England-ChildProtectionPlan
/// value set.
fn category(plan_type: wire::PlanType) -> (&'static str, &'static str) {
    match plan_type {
        wire::PlanType::LookedAfter => ("764841000000100", "Looked after child"),
        wire::PlanType::Unborn => ("818901000000100", "Unborn child on a child protection plan"),
        wire::PlanType::ChildProtection | wire::PlanType::Unspecified => {
            ("342191000000101", "Subject of child protection plan")
        }
    }
}

fn date(value: Option<&Date>) -> Option<String> {
    value.map(service_core::validate::iso_date)
}

fn instant(value: Option<&prost_types::Timestamp>) -> String {
    service_core::validate::instant(&value.cloned().unwrap_or_default())
}

// The answers are typed, borrowing from the registry's: a search builds
// no tree of JSON values, only the bytes it sends.

/// A `searchset` Bundle of `R`s.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Searchset<R> {
    resource_type: &'static str,
    r#type: &'static str,
    total: usize,
    entry: Vec<Entry<R>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry<R> {
    #[serde(skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    resource: R,
    search: SearchMode,
}

#[derive(Debug, Serialize)]
struct SearchMode {
    mode: &'static str,
}

#[derive(Debug, Serialize)]
struct Identifier<'a> {
    system: &'static str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct Coding<'a> {
    system: &'static str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct CodeableConcept<'a> {
    coding: [Coding<'a>; 1],
}

#[derive(Debug, Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

/// A reference by identifier, as the national APIs make them.
#[derive(Debug, Serialize)]
struct Reference<'a> {
    identifier: Identifier<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

/// FHIR JSON has no nulls: an absent date is left out.
#[derive(Debug, Serialize)]
struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

#[derive(Debug, Serialize)]
struct ContactPoint<'a> {
    system: &'static str,
    value: &'a str,
    #[serde(rename = "use")]
    purpose: &'static str,
}

#[derive(Debug, Serialize)]
struct Participant<'a> {
    role: [Text<'a>; 1],
    member: Display,
}

#[derive(Debug, Serialize)]
struct Display {
    display: String,
}

/// A plan, as CP-IS shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CareTeam<'a> {
    resource_type: &'static str,
    id: &'a str,
    status: &'static str,
    category: [CodeableConcept<'a>; 1],
    subject: Reference<'a>,
    period: Period,
    name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    telecom: Vec<ContactPoint<'a>>,
    managing_organization: [Reference<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<[Participant<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<[Text<'a>; 1]>,
}

/// An access, as CP-IS shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent<'a> {
    resource_type: &'static str,
    id: String,
    r#type: Coding<'static>,
    action: &'static str,
    recorded: String,
    outcome: &'static str,
    agent: [Agent<'a>; 1],
    source: Source,
    entity: [Entity<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose_of_event: Option<[Text<'a>; 1]>,
}

#[derive(Debug, Serialize)]
struct Agent<'a> {
    role: [Text<'a>; 1],
    who: Reference<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    requestor: bool,
}

#[derive(Debug, Serialize)]
struct Source {
    observer: Display,
}

#[derive(Debug, Serialize)]
struct Entity<'a> {
    what: Reference<'a>,
}

const NO_ORGANISATION: &Organisation = &Organisation {
    ods_code: String::new(),
    name: String::new(),
    kind: 0,
};

/// One plan as a CareTeam: what it is (category), for whom (subject),
/// when (period), and the council that owns it, with its numbers.
pub fn care_team<'a>(
    base: &str,
    plan: &'a wire::Plan,
    asked_about: &'a str,
) -> Entry<CareTeam<'a>> {
    let owner = plan.owner.as_ref();
    let council = owner
        .and_then(|owner| owner.local_authority.as_ref())
        .unwrap_or(NO_ORGANISATION);
    let (code, display) = category(plan.r#type());
    let telecom = owner
        .into_iter()
        .flat_map(|owner| {
            [
                (owner.office_hours_phone.as_str(), "work"),
                (owner.out_of_hours_phone.as_str(), "mobile"),
            ]
        })
        .filter(|(number, _)| !number.is_empty())
        .map(|(value, purpose)| ContactPoint {
            system: "phone",
            value,
            purpose,
        })
        .collect();
    let participant = plan.lead_social_worker.as_ref().map(|worker| {
        let display = if worker.phone.is_empty() {
            worker.name.clone()
        } else {
            format!("{} ({})", worker.name, worker.phone)
        };
        [Participant {
            role: [Text {
                text: "Lead social worker".into(),
            }],
            member: Display { display },
        }]
    });
    let note = owner
        .map(|owner| owner.missing_numbers.as_str())
        .filter(|missing| !missing.is_empty())
        .map(|text| [Text { text: text.into() }]);
    Entry {
        full_url: Some(format!("{base}/CareTeam/{}", plan.plan_id)),
        resource: CareTeam {
            resource_type: "CareTeam",
            id: &plan.plan_id,
            status: if plan.end_date.is_some() {
                "inactive"
            } else {
                "active"
            },
            category: [CodeableConcept {
                coding: [Coding {
                    system: SNOMED,
                    code,
                    display: Some(display),
                }],
            }],
            subject: Reference {
                identifier: Identifier {
                    system: NHS_NUMBER_SYSTEM,
                    value: asked_about,
                },
                display: None,
            },
            period: Period {
                start: date(plan.start_date.as_ref()),
                end: date(plan.end_date.as_ref()),
            },
            name: &council.name,
            telecom,
            managing_organization: [Reference {
                identifier: Identifier {
                    system: ODS_SYSTEM,
                    value: &council.ods_code,
                },
                display: Some(&council.name),
            }],
            participant,
            note,
        },
        search: SearchMode { mode: "match" },
    }
}

/// One access as an AuditEvent: who (role and organisation, their name
/// where the policy shows it), when, and why.
pub fn audit_event<'a>(
    access: &'a wire::Access,
    asked_about: &'a str,
    index: usize,
) -> Entry<AuditEvent<'a>> {
    let organisation = access.organisation.as_ref().unwrap_or(NO_ORGANISATION);
    Entry {
        full_url: None,
        resource: AuditEvent {
            resource_type: "AuditEvent",
            id: format!("access-{index}"),
            r#type: Coding {
                system: "http://terminology.hl7.org/CodeSystem/audit-event-type",
                code: "rest",
                display: Some("RESTful Operation"),
            },
            action: "R",
            recorded: instant(access.at.as_ref()),
            outcome: "0",
            agent: [Agent {
                role: [Text {
                    text: role_text(access).into(),
                }],
                who: Reference {
                    identifier: Identifier {
                        system: ODS_SYSTEM,
                        value: &organisation.ods_code,
                    },
                    display: Some(&organisation.name),
                },
                name: Some(access.user_display_name.as_str()).filter(|name| !name.is_empty()),
                requestor: true,
            }],
            source: Source {
                observer: Display {
                    display: "safeguard plan registry".into(),
                },
            },
            entity: [Entity {
                what: Reference {
                    identifier: Identifier {
                        system: NHS_NUMBER_SYSTEM,
                        value: asked_about,
                    },
                    display: None,
                },
            }],
            purpose_of_event: Some(access.purpose.as_str())
                .filter(|purpose| !purpose.is_empty())
                .map(|text| [Text { text: text.into() }]),
        },
        search: SearchMode { mode: "match" },
    }
}

/// How an access's role reads in an AuditEvent ("unscheduled care clinician").
fn role_text(access: &wire::Access) -> String {
    access
        .role()
        .as_str_name()
        .trim_start_matches("ROLE_")
        .to_lowercase()
        .replace('_', " ")
}

pub fn searchset<R>(entry: Vec<Entry<R>>) -> Searchset<R> {
    Searchset {
        resource_type: "Bundle",
        r#type: "searchset",
        total: entry.len(),
        entry,
    }
}

/// A refusal: the HTTP status, FHIR's issue code, the national error code
/// and what was wrong.
pub fn operation_outcome(issue: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "error",
            "code": issue,
            "details": { "coding": [{ "system": SPINE_ERROR_CODES, "code": code }] },
            "diagnostics": diagnostics
        }]
    })
}

/// What the edge serves, for a system that asks before it searches.
pub fn capability_statement() -> Value {
    let search = |resource: &str| {
        json!({
            "type": resource,
            "interaction": [{ "code": "search-type" }],
            "searchParam": [{
                "name": "patient:identifier",
                "type": "token",
                "documentation": format!("{NHS_NUMBER_SYSTEM}|<NHS number>")
            }]
        })
    };
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": { "name": "safeguard FHIR edge" },
        "implementation": {
            "description": "Child protection information, CP-IS FHIR API compatible"
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": [search("CareTeam"), search("AuditEvent")]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_utc_rfc_3339() {
        let at = |seconds| instant(Some(&prost_types::Timestamp { seconds, nanos: 0 }));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_783_035_000), "2026-07-02T23:30:00Z");
        assert_eq!(at(1_709_164_800), "2024-02-29T00:00:00Z");
    }
}
