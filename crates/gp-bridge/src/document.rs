//! A notification as a GP practice receives it: a readable letter saying
//! what happened and what the practice should do, with the coded entry to
//! file in its system's terms, packed as a GP Connect "Send Document"
//! message — an ITK3 FHIR STU3 message Bundle whose MessageHeader (event
//! `ITK007C`) points at a document Bundle (Composition, Patient,
//! Organizations, the coded Flag and the letter as a Binary).

use base64::Engine as _;
use contract::notification::v1::{NotificationKind, NotificationMessage};
use serde_json::{Value, json};

use crate::systems::{ClinicalSystem, CodedEntry, Finding};

const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SNOMED: &str = "http://snomed.info/sct";
const READ_V2: &str = "http://read.info/readv2";
const CTV3: &str = "http://read.info/ctv3";
const STU3: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";

/// What a practice reads: a title, what happened, what to do, and the
/// entry to file (none when nothing changes in the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub title: String,
    pub happened: String,
    pub to_do: String,
    pub entry: Option<CodedEntry>,
    /// The council that holds the plan, as the letter names it.
    pub council: String,
    /// The NHS number of the record the letter is about (the mother's, for
    /// an unborn child; the baby's, once born).
    pub nhs_number: Option<String>,
}

/// Who sends, and to whom.
#[derive(Debug, Clone)]
pub struct Parties<'a> {
    pub sender_ods_code: &'a str,
    pub sender_name: &'a str,
    pub sender_mailbox: &'a str,
    pub practice_ods_code: &'a str,
    pub practice_name: &'a str,
}

fn detail<'a>(note: &'a NotificationMessage, key: &str) -> &'a str {
    note.details
        .get(key)
        .map(String::as_str)
        .unwrap_or_default()
}

/// The letter for `note` to a practice running `system`; none for a kind
/// the bridge does not send.
pub fn letter(note: &NotificationMessage, system: ClinicalSystem) -> Option<Letter> {
    let kind = NotificationKind::try_from(note.kind).ok()?;
    let plan_type = detail(note, "plan_type");
    let council = match (
        detail(note, "local_authority_name"),
        detail(note, "local_authority_ods_code"),
    ) {
        ("", "") => "the local authority".to_owned(),
        ("", ods) => format!("the local authority {ods}"),
        (name, ods) => format!("{name} ({ods})"),
    };
    let worker = match (
        detail(note, "lead_social_worker"),
        detail(note, "lead_social_worker_phone"),
    ) {
        ("", _) => String::new(),
        (name, "") => format!(" The lead social worker is {name}."),
        (name, phone) => format!(" The lead social worker is {name}, telephone {phone}."),
    };
    let (title, to_do, finding) = match kind {
        NotificationKind::PlanStarted => match plan_type {
            "LOOKED_AFTER" => (
                "Child now looked after",
                format!("File the coded entry below on the child's record, and tell {council} of anything the practice knows that bears on the child's care.{worker}"),
                Some(Finding::LookedAfter),
            ),
            "UNBORN" => (
                "Pre-birth child protection plan",
                format!("File the coded entry below on the mother's record (the NHS number below is hers) and make sure the practice's midwifery and health visiting colleagues know; tell {council} of anything that bears on the plan.{worker}"),
                Some(Finding::UnbornChildCauseForConcern),
            ),
            _ => (
                "Child protection plan started",
                format!("File the coded entry below on the child's record, and tell {council} of anything the practice knows that bears on the plan; a GP is expected to contribute to the core group and review conferences.{worker}"),
                Some(Finding::SubjectToPlan),
            ),
        },
        NotificationKind::PlanEnded => match plan_type {
            "LOOKED_AFTER" => (
                "Child no longer looked after",
                "File the coded entry below on the child's record.".to_owned(),
                Some(Finding::NoLongerLookedAfter),
            ),
            "UNBORN" => (
                "Pre-birth child protection plan ended",
                "Review the unborn-child concern on the mother's record as the practice's safeguarding protocol says; there is no national removal code for it.".to_owned(),
                None,
            ),
            _ => (
                "Child protection plan ended",
                "File the coded entry below on the child's record: it lifts the warning or register entry the plan's code raised.".to_owned(),
                Some(Finding::NoLongerSubjectToPlan),
            ),
        },
        NotificationKind::PlanCategoryChanged => (
            "Child protection plan: category changed",
            format!("No new code to file: the child remains subject to a child protection plan. Note the new category ({}) as the practice's protocol says.", detail(note, "category").to_lowercase().replace('_', " ")),
            None,
        ),
        NotificationKind::BirthLinked => (
            "Baby born: the child protection plan follows the baby",
            format!("When the baby is registered with the practice, file the coded entry below on the baby's record (the NHS number below is the baby's; the mother's is {}).{worker}", detail(note, "mother_nhs_number")),
            Some(Finding::SubjectToPlan),
        ),
        NotificationKind::ConferenceInvitation => (
            "Invitation to a child protection conference",
            format!("A GP who knows the family is asked to attend, or to send a written report before the conference. Venue: {}. Conference reference: {}.", or_unknown(detail(note, "venue")), detail(note, "conference_id")),
            None,
        ),
        NotificationKind::ConferenceCancelled => (
            "Child protection conference cancelled",
            format!("No action unless the practice had sent a report: it will be asked for again if the conference is rearranged. Conference reference: {}.", detail(note, "conference_id")),
            None,
        ),
        _ => return None,
    };
    let mut happened = note.summary.clone();
    if let Some(first) = happened.get(..1) {
        happened = format!("{}{}.", first.to_uppercase(), &happened[1..]);
    }
    if !matches!(
        kind,
        NotificationKind::ConferenceInvitation | NotificationKind::ConferenceCancelled
    ) {
        happened.push_str(&format!(" The plan is held by {council}."));
    }
    if let Some(local) = note.details.get("child_local_id") {
        happened.push_str(&format!(
            " The child has no NHS number yet: the council knows the child as {local}."
        ));
    }
    Some(Letter {
        title: title.to_owned(),
        happened,
        to_do,
        entry: finding.map(|finding| system.entry(finding)),
        council,
        nhs_number: note.child_nhs_number.as_ref().map(|n| n.value.clone()),
    })
}

fn or_unknown(value: &str) -> &str {
    if value.is_empty() { "to follow" } else { value }
}

/// Text made safe inside XHTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The letter as XHTML: the narrative a person reads.
pub fn xhtml(letter: &Letter) -> String {
    let mut body = format!(
        "<h1>{}</h1><p>{}</p><h2>What the practice should do</h2><p>{}</p>",
        escape(&letter.title),
        escape(&letter.happened),
        escape(&letter.to_do)
    );
    if let Some(entry) = &letter.entry {
        body.push_str(&format!(
            "<h2>Coded entry to file ({})</h2><p>SNOMED CT {} {}; {} {}.</p><p>{}</p>",
            escape(entry.system.name()),
            entry.concept.snomed,
            escape(entry.concept.term),
            entry.legacy.0,
            escape(entry.legacy.1),
            escape(&entry.effect)
        ));
    }
    format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{body}</div>")
}

/// The MESH subject line.
pub fn subject(letter: &Letter, parties: &Parties<'_>) -> String {
    format!(
        "{} for NHS Number {}, {}, ODS Code {}",
        letter.title,
        letter.nhs_number.as_deref().unwrap_or("not yet known"),
        parties.practice_name,
        parties.practice_ods_code
    )
}

fn profile(name: &str) -> Value {
    json!({ "profile": [format!("{STU3}{name}")] })
}

fn uuid_url() -> (String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    (id.clone(), format!("urn:uuid:{id}"))
}

/// The ITK3 message Bundle for `letter`, its MessageHeader's id
/// `local_id` (what a practice's acknowledgement names).
pub fn message(letter: &Letter, parties: &Parties<'_>, local_id: &str, now: &str) -> Value {
    let (sender_id, sender_url) = uuid_url();
    let (council_id, council_url) = uuid_url();
    let (patient_id, patient_url) = uuid_url();
    let (composition_id, composition_url) = uuid_url();
    let (binary_id, binary_url) = uuid_url();
    let (flag_id, flag_url) = uuid_url();
    let (document_id, document_url) = uuid_url();
    let narrative = xhtml(letter);
    let html = format!(
        "<!DOCTYPE html><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>{}</title></head><body>{narrative}</body></html>",
        escape(&letter.title)
    );
    let organisation = |id: &str, ods: &str, name: &str| {
        json!({
            "resourceType": "Organization",
            "id": id,
            "meta": profile("CareConnect-ITK-Header-Organization-1"),
            "identifier": [{ "system": ODS, "value": ods }],
            "name": name,
        })
    };
    let mut patient = json!({
        "resourceType": "Patient",
        "id": patient_id,
        "meta": { "profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"] },
    });
    if let Some(nhs) = &letter.nhs_number {
        patient["identifier"] = json!([{ "system": NHS_NUMBER, "value": nhs }]);
    }
    let mut sections = vec![json!({
        "title": letter.title,
        "text": { "status": "generated", "div": narrative },
        "entry": [{ "reference": binary_url }],
    })];
    let mut entries = vec![];
    if let Some(entry) = &letter.entry {
        let mut coding = vec![
            json!({ "system": SNOMED, "code": entry.concept.snomed, "display": entry.concept.term }),
            json!({ "system": READ_V2, "code": entry.concept.read_v2 }),
        ];
        if let Some(ctv3) = entry.concept.ctv3 {
            coding.push(json!({ "system": CTV3, "code": ctv3 }));
        }
        sections.push(json!({
            "title": format!("Coded entry to file in {}", entry.system.name()),
            "text": {
                "status": "generated",
                "div": format!(
                    "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{} ({} {}): {}</p></div>",
                    escape(entry.concept.term), entry.legacy.0, escape(entry.legacy.1), escape(&entry.effect)
                ),
            },
            "entry": [{ "reference": flag_url }],
        }));
        entries.push(json!({
            "fullUrl": flag_url,
            "resource": {
                "resourceType": "Flag",
                "id": flag_id,
                "status": "active",
                "code": { "coding": coding, "text": entry.concept.term },
                "subject": { "reference": patient_url },
                "author": { "reference": council_url },
            },
        }));
    }
    let composition = json!({
        "resourceType": "Composition",
        "id": composition_id,
        "meta": { "profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Composition-1"] },
        "status": "final",
        "type": { "coding": [{ "system": SNOMED, "code": "371531000", "display": "Report of clinical encounter" }] },
        "subject": { "reference": patient_url },
        "date": now,
        "author": [{ "reference": sender_url }],
        "title": letter.title,
        "confidentiality": "R",
        "custodian": { "reference": sender_url },
        "section": sections,
    });
    let mut document_entries = vec![
        json!({ "fullUrl": composition_url, "resource": composition }),
        json!({ "fullUrl": patient_url, "resource": patient }),
        json!({ "fullUrl": sender_url, "resource": organisation(&sender_id, parties.sender_ods_code, parties.sender_name) }),
        json!({ "fullUrl": binary_url, "resource": {
            "resourceType": "Binary",
            "id": binary_id,
            "meta": profile("ITK-Attachment-Binary-1"),
            "contentType": "text/html",
            "content": base64::engine::general_purpose::STANDARD.encode(html),
        }}),
    ];
    document_entries.extend(entries);
    document_entries.push(json!({
        "fullUrl": council_url,
        "resource": {
            "resourceType": "Organization",
            "id": council_id,
            "name": letter.council,
        },
    }));
    let document = json!({
        "resourceType": "Bundle",
        "id": document_id,
        "meta": profile("ITK-Document-Bundle-1"),
        "identifier": { "system": "https://tools.ietf.org/html/rfc4122", "value": document_id },
        "type": "document",
        "entry": document_entries,
    });
    let header = json!({
        "resourceType": "MessageHeader",
        "id": local_id,
        "meta": profile("ITK-MessageHeader-2"),
        "extension": [{
            "url": format!("{STU3}Extension-ITK-MessageHandling-2"),
            "extension": [
                { "url": "BusAckRequested", "valueBoolean": true },
                { "url": "InfAckRequested", "valueBoolean": true },
                { "url": "RecipientType", "valueCoding": {
                    "system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1",
                    "code": "FA", "display": "For Action" } },
                { "url": "MessageDefinition", "valueReference": {
                    "reference": "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-GPConnectSendDocument-MessageDefinition-Instance-1" } },
                { "url": "SenderReference", "valueString": local_id },
                { "url": "LocalExtension", "valueString": "None" },
            ],
        }],
        "event": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2",
            "code": "ITK007C",
            "display": "ITK GP Connect Send Document",
        },
        "sender": { "reference": sender_url },
        "timestamp": now,
        "source": { "endpoint": parties.sender_mailbox },
        "focus": [{ "reference": document_url }],
    });
    let (message_id, _) = uuid_url();
    json!({
        "resourceType": "Bundle",
        "id": message_id,
        "meta": profile("ITK-Message-Bundle-1"),
        "identifier": { "system": "https://tools.ietf.org/html/rfc4122", "value": message_id },
        "type": "message",
        "entry": [
            { "fullUrl": format!("urn:uuid:{local_id}"), "resource": header },
            { "fullUrl": document_url, "resource": document },
            { "fullUrl": sender_url, "resource": organisation(&sender_id, parties.sender_ods_code, parties.sender_name) },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::common::v1::NhsNumber;

    fn note(kind: NotificationKind, details: &[(&str, &str)]) -> NotificationMessage {
        NotificationMessage {
            sequence: 7,
            kind: kind.into(),
            child_nhs_number: Some(NhsNumber {
                value: "9990000018".into(),
            }),
            summary: "the child is now subject to a child protection plan from 2026-11-30".into(),
            details: details
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..NotificationMessage::default()
        }
    }

    #[test]
    fn each_plan_change_names_its_code_and_others_none() {
        let council = [
            ("local_authority_name", "Test Borough"),
            ("local_authority_ods_code", "E09000999"),
        ];
        let started = |plan_type| {
            let mut details = council.to_vec();
            details.push(("plan_type", plan_type));
            letter(
                &note(NotificationKind::PlanStarted, &details),
                ClinicalSystem::EmisWeb,
            )
            .and_then(|letter| letter.entry.map(|entry| entry.finding))
        };
        assert_eq!(started("CHILD_PROTECTION"), Some(Finding::SubjectToPlan));
        assert_eq!(started("LOOKED_AFTER"), Some(Finding::LookedAfter));
        assert_eq!(started("UNBORN"), Some(Finding::UnbornChildCauseForConcern));
        let changed = letter(
            &note(NotificationKind::PlanCategoryChanged, &council),
            ClinicalSystem::Vision,
        )
        .expect("a letter");
        assert_eq!(changed.entry, None);
        assert!(letter(&note(NotificationKind::Access, &[]), ClinicalSystem::Vision).is_none());
    }

    #[test]
    fn text_is_escaped_in_the_narrative() {
        let letter = letter(
            &note(
                NotificationKind::ConferenceInvitation,
                &[("venue", "Room <2> & \"annexe\"")],
            ),
            ClinicalSystem::SystmOne,
        )
        .expect("a letter");
        let div = xhtml(&letter);
        assert!(
            div.contains("Room &lt;2&gt; &amp; &quot;annexe&quot;"),
            "{div}"
        );
    }
}
