//! The FHIR R4 resources the edge answers with, shaped as NHS England's
//! CP-IS FHIR API has them: a plan as a `CareTeam`, an access as an
//! `AuditEvent`, each in a `searchset` Bundle; a refusal as an
//! `OperationOutcome` with the national error code; and the
//! `CapabilityStatement`.

use contract::common::v1::Date;
use contract::registry::v1 as wire;
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

/// One plan as a CareTeam: what it is (category), for whom (subject),
/// when (period), and the council that owns it, with its numbers.
pub fn care_team(base: &str, plan: &wire::Plan, asked_about: &str) -> Value {
    let owner = plan.owner.clone().unwrap_or_default();
    let council = owner.local_authority.clone().unwrap_or_default();
    let (code, display) = category(plan.r#type());
    let mut period = json!({ "start": date(plan.start_date.as_ref()) });
    if let Some(end) = date(plan.end_date.as_ref()) {
        period["end"] = json!(end);
    }
    let mut telecom = Vec::new();
    if !owner.office_hours_phone.is_empty() {
        telecom
            .push(json!({ "system": "phone", "value": owner.office_hours_phone, "use": "work" }));
    }
    if !owner.out_of_hours_phone.is_empty() {
        telecom
            .push(json!({ "system": "phone", "value": owner.out_of_hours_phone, "use": "mobile" }));
    }
    let mut resource = json!({
        "resourceType": "CareTeam",
        "id": plan.plan_id,
        "status": if plan.end_date.is_some() { "inactive" } else { "active" },
        "category": [{ "coding": [{ "system": SNOMED, "code": code, "display": display }] }],
        "subject": {
            "identifier": { "system": NHS_NUMBER_SYSTEM, "value": asked_about }
        },
        "period": period,
        "name": council.name,
        "managingOrganization": [{
            "identifier": { "system": ODS_SYSTEM, "value": council.ods_code },
            "display": council.name
        }],
    });
    if !telecom.is_empty() {
        resource["telecom"] = json!(telecom);
    }
    if let Some(worker) = plan.lead_social_worker.as_ref() {
        let mut member = json!({ "display": worker.name });
        if !worker.phone.is_empty() {
            member["display"] = json!(format!("{} ({})", worker.name, worker.phone));
        }
        resource["participant"] = json!([{
            "role": [{ "text": "Lead social worker" }],
            "member": member
        }]);
    }
    if !owner.missing_numbers.is_empty() {
        resource["note"] = json!([{ "text": owner.missing_numbers }]);
    }
    json!({
        "fullUrl": format!("{base}/CareTeam/{}", plan.plan_id),
        "resource": resource,
        "search": { "mode": "match" }
    })
}

/// One access as an AuditEvent: who (role and organisation, their name
/// where the policy shows it), when, and why.
pub fn audit_event(access: &wire::Access, asked_about: &str, index: usize) -> Value {
    let organisation = access.organisation.clone().unwrap_or_default();
    let role = access.role().as_str_name().trim_start_matches("ROLE_");
    let mut agent = json!({
        "role": [{ "text": role.to_lowercase().replace('_', " ") }],
        "who": {
            "identifier": { "system": ODS_SYSTEM, "value": organisation.ods_code },
            "display": organisation.name
        },
        "requestor": true
    });
    if !access.user_display_name.is_empty() {
        agent["name"] = json!(access.user_display_name);
    }
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": format!("access-{index}"),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation"
        },
        "action": "R",
        "recorded": instant(access.at.as_ref()),
        "outcome": "0",
        "agent": [agent],
        "source": { "observer": { "display": "safeguard plan registry" } },
        "entity": [{
            "what": { "identifier": { "system": NHS_NUMBER_SYSTEM, "value": asked_about } }
        }]
    });
    if !access.purpose.is_empty() {
        resource["purposeOfEvent"] = json!([{ "text": access.purpose }]);
    }
    json!({ "resource": resource, "search": { "mode": "match" } })
}

pub fn searchset(entries: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries
    })
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
