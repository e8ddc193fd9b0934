//! The people, organisations and steps of a case that the black-box tests
//! share: all synthetic (999 NHS numbers, invented names).

use std::path::Path;
use std::time::Duration;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, ConsistencyToken, Date, NhsNumber, Organisation,
    OrganisationKind, Role,
};
use contract::conference::v1::conference_scheduler_client::ConferenceSchedulerClient;
use contract::conference::v1::*;
use contract::events::v1::ReadEventsRequest;
use contract::events::v1::event_log_reader_client::EventLogReaderClient;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;
use contract::registry::v1 as registry_wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use safeguard::agencies::{Agencies, Clients};
use trust::client::Authorised;

/// Clients of every service of a backbone started by `spawn_backbone`, or
/// of services running wherever `connect` is told: as the council's
/// conference chair unless `as_` says who else.
#[derive(Debug)]
pub struct Backbone {
    pub referrals: ReferralIntakeClient<Authorised>,
    pub conferences: ConferenceSchedulerClient<Authorised>,
    pub registry: PlanRegistryClient<Authorised>,
    /// Every agency's system, in the backbone's development realm.
    pub agencies: Agencies,
    /// Kept so the backbone runs as long as the clients are used.
    pub _backbone: Option<crate::Backbone>,
}

pub async fn spawn(dir: &Path) -> Backbone {
    spawn_over(dir, None).await
}

/// The backbone in one process with its events over JetStream at `nats`
/// when given.
pub async fn spawn_over(dir: &Path, nats: Option<String>) -> Backbone {
    let running = crate::spawn_backbone_over(dir, nats).await;
    let mut clients = connect(&running.agencies());
    clients._backbone = Some(running);
    clients
}

/// Clients of services that run elsewhere (separate processes, say).
pub fn connect(agencies: &Agencies) -> Backbone {
    let chair = agencies.clients(&chair()).expect("the chair's credentials");
    Backbone {
        referrals: chair.referrals,
        conferences: chair.conferences,
        registry: chair.registry,
        agencies: agencies.clone(),
        _backbone: None,
    }
}

impl Backbone {
    /// Clients acting as `who`, through their organisation's own system.
    pub fn as_(&self, who: &CallerIdentity) -> Clients {
        self.agencies.clients(who).expect("credentials")
    }

    /// Every service's log head once the backbone has stopped writing by
    /// itself (rules and deadline checks run after the writes that cause
    /// them): a baseline to show that refused requests write nothing.
    pub async fn quiet_heads(&self) -> Vec<u64> {
        let mut heads = self.running().log_heads();
        let mut quiet_since = std::time::Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(1_500) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.running().log_heads();
            if now != heads {
                heads = now;
                quiet_since = std::time::Instant::now();
            }
        }
        heads
    }

    fn running(&self) -> &safeguard::backbone::Running {
        &self
            ._backbone
            .as_ref()
            .expect("a backbone of the test's own")
            .running
    }

    pub fn heads(&self) -> Vec<u64> {
        self.running().log_heads()
    }

    /// The content types of what each service wrote since `heads`, read
    /// as one of the backbone's services would read them.
    pub async fn written_since(&self, heads: &[u64]) -> Vec<String> {
        let url = &self
            ._backbone
            .as_ref()
            .expect("a backbone of the test's own")
            .url;
        let service = self
            .agencies
            .realm()
            .service_credentials("fixtures")
            .expect("credentials");
        let mut written = Vec::new();
        for (log, from) in contract::producers::ALL.iter().zip(heads) {
            let mut reader = EventLogReaderClient::new(service.connect(url).expect("channel"));
            let mut records = reader
                .read_events(ReadEventsRequest {
                    log: (*log).to_owned(),
                    from_position: *from,
                    limit: 0,
                })
                .await
                .expect("read events")
                .into_inner();
            while let Some(record) = records.message().await.expect("stream") {
                let event = eventlog::RecordedEvent::from_record(record.position, &record.record)
                    .expect("record");
                written.push(event.envelope().expect("envelope").content_type);
            }
        }
        written
    }
}

pub fn organisation(ods: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: format!("Test organisation {ods}"),
        kind: kind.into(),
    }
}

pub fn council() -> Organisation {
    organisation("E09000999", OrganisationKind::LocalAuthority)
}

pub fn chair() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(council()),
        user_id: "chair-0001".into(),
        display_name: "Test Chair".into(),
        role: Role::ConferenceChair.into(),
        care_setting: CareSetting::SocialCare.into(),
    }
}

pub fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

pub fn invitee(role: InviteeRole, ods: &str, kind: OrganisationKind) -> Invitee {
    Invitee {
        role: role.into(),
        organisation: Some(organisation(ods, kind)),
        ..Invitee::default()
    }
}

/// A school's referral of `child`, received at `received_at`, under the
/// client's idempotency `key`.
pub fn referral_of(
    key: &str,
    child: referral::Child,
    received_at: Option<prost_types::Timestamp>,
) -> referral::SubmitReferralRequest {
    referral::SubmitReferralRequest {
        idempotency_key: key.into(),
        referrer: Some(referral::Referrer {
            organisation: Some(organisation("S999001", OrganisationKind::School)),
            person: None,
        }),
        child: Some(child),
        concerns: "unexplained bruising".into(),
        category_of_concern: AbuseCategory::Physical.into(),
        consent: Some(referral::Consent {
            status: referral::ConsentStatus::Given.into(),
            reason: String::new(),
        }),
        local_authority: Some(council()),
        received_at,
        ..referral::SubmitReferralRequest::default()
    }
}

/// An NHS number on the wire.
pub fn nhs(value: &str) -> Option<NhsNumber> {
    Some(NhsNumber {
        value: value.into(),
    })
}

/// The child most tests are about.
pub fn the_child() -> referral::Child {
    referral::Child {
        nhs_number: child(),
        given_name: "Alex".into(),
        family_name: "Testchild".into(),
        date_of_birth: date(2019, 4, 2),
        ..referral::Child::default()
    }
}

/// A referral taken to a section 47 enquiry that needs a conference.
pub async fn refer_to_conference(backbone: &mut Backbone) -> String {
    refer_to_conference_with(backbone, "case-0001", the_child()).await
}

/// A referral of `child` under `key` taken to a section 47 enquiry that
/// needs a conference; its id.
pub async fn refer_to_conference_with(
    backbone: &mut Backbone,
    key: &str,
    child: referral::Child,
) -> String {
    refer_to_conference_discussed(backbone, key, child, vec![council()], None).await
}

/// As `refer_to_conference_with`, the strategy discussion held with
/// `agencies` present and the police's `assessment`, if any.
pub async fn refer_to_conference_discussed(
    backbone: &mut Backbone,
    key: &str,
    child: referral::Child,
    agencies: Vec<Organisation>,
    assessment: Option<referral::PoliceRiskAssessment>,
) -> String {
    let received_at = Some(prost_types::Timestamp {
        seconds: 1_766_136_600,
        nanos: 0,
    });
    let submitted = backbone
        .referrals
        .submit_referral(referral_of(key, child, received_at))
        .await
        .expect("submit")
        .into_inner();
    let id = submitted.referral_id;
    backbone
        .referrals
        .record_decision(referral::RecordDecisionRequest {
            referral_id: id.clone(),
            rag_rating: referral::RagRating::Red.into(),
            outcome: referral::ReferralOutcome::StrategyDiscussion.into(),
            rationale: "significant harm suspected".into(),
            reason_for_referrer: String::new(),
            decided_at: Some(prost_types::Timestamp {
                seconds: 1_766_397_600,
                nanos: 0,
            }),
        })
        .await
        .expect("decide");
    backbone
        .referrals
        .record_strategy_discussion(referral::RecordStrategyDiscussionRequest {
            referral_id: id.clone(),
            held_on: date(2026, 1, 6),
            agencies_present: agencies,
            section_47_enquiry: true,
            notes: String::new(),
            police_risk_assessment: assessment,
        })
        .await
        .expect("strategy");
    backbone
        .referrals
        .record_section47_outcome(referral::RecordSection47OutcomeRequest {
            referral_id: id.clone(),
            concluded_on: date(2026, 1, 9),
            conference_needed: true,
            rationale: "risk of significant harm".into(),
        })
        .await
        .expect("conclude");
    id
}

/// Waits for an open conference of the council that `matches`.
pub async fn open_conference(
    backbone: &mut Backbone,
    matches: impl Fn(&Conference) -> bool,
) -> Conference {
    for _ in 0..250 {
        let listed = backbone
            .conferences
            .list_conferences(ListConferencesRequest {
                local_authority_ods_code: "E09000999".into(),
                ..ListConferencesRequest::default()
            })
            .await
            .expect("list")
            .into_inner()
            .conferences;
        if let Some(found) = listed.into_iter().find(&matches) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no such conference was requested");
}

/// Waits for the scheduler's rules to have requested what it lists.
pub async fn conferences(backbone: &mut Backbone, count: usize) -> Vec<Conference> {
    for _ in 0..200 {
        let listed = backbone
            .conferences
            .list_conferences(ListConferencesRequest {
                local_authority_ods_code: "E09000999".into(),
                as_of: date(2026, 1, 12),
                ..ListConferencesRequest::default()
            })
            .await
            .expect("list")
            .into_inner()
            .conferences;
        if listed.len() >= count {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the scheduler did not request {count} conference(s)");
}

pub fn nurse() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation("RXX01", OrganisationKind::NhsTrust)),
        user_id: "nurse-0001".into(),
        display_name: "Test Nurse".into(),
        role: Role::UnscheduledCareClinician.into(),
        care_setting: CareSetting::EmergencyDepartment.into(),
    }
}

/// The hospital's named safeguarding nurse: one of the roles that may look
/// a child up silently or as of a past date.
pub fn safeguarding_lead() -> CallerIdentity {
    CallerIdentity {
        user_id: "named-nurse-0001".into(),
        display_name: "Test Named Nurse".into(),
        role: Role::NamedSafeguardingProfessional.into(),
        ..nurse()
    }
}

pub fn child() -> Option<NhsNumber> {
    Some(NhsNumber {
        value: "9990000018".into(),
    })
}

/// A conference that made a plan, and the token of its outcome.
pub struct Planned {
    pub conference: Conference,
    pub token: Option<ConsistencyToken>,
    /// The `traceparent` the outcome was answered with.
    pub traceparent: String,
}

/// The W3C trace context the outcome of `make_plan` is recorded under, as a
/// caller that traces its requests sends it.
pub const CALLER_TRACEPARENT: &str = "00-5afe9a4d0000000000000000000c0de1-00f067aa0ba902b7-01";
pub const CALLER_TRACE_ID: &str = "5afe9a4d0000000000000000000c0de1";

/// Runs the initial conference to a plan (physical abuse).
pub async fn make_plan(backbone: &mut Backbone) -> Planned {
    refer_to_conference(backbone).await;
    let conference = conferences(backbone, 1).await.remove(0);
    convene(backbone, &conference, date(2026, 1, 20)).await;
    let id = conference.conference_id;
    let mut request = tonic::Request::new(RecordOutcomeRequest {
        conference_id: id,
        outcome: Some(Outcome {
            kind: Some(outcome::Kind::Initial(InitialOutcome {
                plan: true,
                category: AbuseCategory::Physical.into(),
            })),
            quorum_override_reason: String::new(),
        }),
    });
    request.metadata_mut().insert(
        "traceparent",
        CALLER_TRACEPARENT.parse().expect("metadata value"),
    );
    let recorded = backbone
        .conferences
        .record_outcome(request)
        .await
        .expect("outcome");
    let traceparent = recorded
        .metadata()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let recorded = recorded.into_inner();
    Planned {
        conference: recorded.conference.expect("conference"),
        token: recorded.token,
        traceparent,
    }
}

/// Looks the child up once the registry reflects the writes `after` names.
pub async fn lookup(
    backbone: &mut Backbone,
    caller: CallerIdentity,
    silent: bool,
    after: Option<ConsistencyToken>,
) -> registry_wire::LookupChildResponse {
    backbone
        .as_(&caller)
        .registry
        .lookup_child(registry_wire::LookupChildRequest {
            nhs_number: child(),
            purpose: "unscheduled care attendance".into(),
            silent,
            min_token: after,
            care_setting: caller.care_setting,
            ..registry_wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner()
}

/// Someone at `ods` in a role, for subscribing to its notifications.
pub fn member_of(ods: &str, kind: OrganisationKind, role: Role) -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation(ods, kind)),
        user_id: format!("{ods}-inbox"),
        display_name: "Test Inbox".into(),
        role: role.into(),
        care_setting: CareSetting::Other.into(),
    }
}

/// The next `count` notifications for `caller`'s organisation.
pub async fn receive(
    backbone: &mut Backbone,
    caller: CallerIdentity,
    kinds: &[note::NotificationKind],
    after: u64,
    count: usize,
) -> Vec<note::NotificationMessage> {
    let ods = caller
        .organisation
        .as_ref()
        .expect("organisation")
        .ods_code
        .clone();
    let mut stream = backbone
        .as_(&caller)
        .notifications
        .subscribe(note::SubscribeRequest {
            purpose: "a test of the backbone".into(),
            subscriber: "inbox".into(),
            recipient_ods_code: ods,
            kinds: kinds.iter().map(|kind| i32::from(*kind)).collect(),
            child_nhs_number: None,
            after_sequence: after,
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut received = Vec::new();
    while received.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a notification arrives in time")
            .expect("stream")
            .expect("not ended");
        received.push(message);
    }
    received
}

/// Holds `conference` on `held_on` with a quorum present, records
/// `outcome` and returns its token, for reads that must reflect it.
pub async fn hold(
    backbone: &mut Backbone,
    conference: &Conference,
    held_on: Option<Date>,
    outcome: outcome::Kind,
) -> Option<ConsistencyToken> {
    convene(backbone, conference, held_on).await;
    backbone
        .conferences
        .record_outcome(RecordOutcomeRequest {
            conference_id: conference.conference_id.clone(),
            outcome: Some(Outcome {
                kind: Some(outcome),
                quorum_override_reason: String::new(),
            }),
        })
        .await
        .expect("outcome")
        .into_inner()
        .token
}

/// Schedules `conference` and records it held on `held_on` with a quorum
/// present: social care, police and the GP, inviting those not invited
/// yet.
pub async fn convene(backbone: &mut Backbone, conference: &Conference, held_on: Option<Date>) {
    let present = vec![
        invitee(
            InviteeRole::SocialCare,
            "E09000999",
            OrganisationKind::LocalAuthority,
        ),
        invitee(InviteeRole::Police, "P99001", OrganisationKind::Police),
        invitee(InviteeRole::Gp, "Y99001", OrganisationKind::GpPractice),
    ];
    let missing: Vec<Invitee> = present
        .iter()
        .filter(|wanted| {
            !conference.invitees.iter().any(|known| {
                known.role == wanted.role
                    && known.organisation.as_ref().map(|o| &o.ods_code)
                        == wanted.organisation.as_ref().map(|o| &o.ods_code)
            })
        })
        .cloned()
        .collect();
    let id = conference.conference_id.clone();
    if !missing.is_empty() {
        backbone
            .conferences
            .update_invitations(UpdateInvitationsRequest {
                conference_id: id.clone(),
                add: missing,
                remove: vec![],
            })
            .await
            .expect("invite");
    }
    backbone
        .conferences
        .schedule_conference(ScheduleConferenceRequest {
            conference_id: id.clone(),
            scheduled_for: Some(prost_types::Timestamp {
                seconds: 1_768_900_000,
                nanos: 0,
            }),
            venue: "Civic Centre".into(),
        })
        .await
        .expect("schedule");
    backbone
        .conferences
        .record_attendance(RecordAttendanceRequest {
            conference_id: id,
            present,
            held_on,
        })
        .await
        .expect("attendance");
}

/// A plan recorded directly for `child`, continued here after a transfer
/// in from another council on `start`.
pub async fn transfer_in(
    backbone: &mut Backbone,
    child: &str,
    start: Option<Date>,
) -> registry_wire::PlanResponse {
    transfer_in_with(backbone, child, start, None).await
}

/// The same, with the child's registered GP practice.
pub async fn transfer_in_with(
    backbone: &mut Backbone,
    child: &str,
    start: Option<Date>,
    gp_practice: Option<Organisation>,
) -> registry_wire::PlanResponse {
    backbone
        .registry
        .record_transfer_in(registry_wire::RecordTransferInRequest {
            gp_practice,
            child_local_id: None,
            child_nhs_number: Some(NhsNumber {
                value: child.into(),
            }),
            category: AbuseCategory::Emotional.into(),
            start_date: start,
            local_authority: Some(council()),
            previous_local_authority: Some(organisation(
                "E09000998",
                OrganisationKind::LocalAuthority,
            )),
            lead_social_worker: None,
        })
        .await
        .expect("transfer in")
        .into_inner()
}

/// The council's office-hours and out-of-hours numbers, as lookups show
/// them.
pub async fn set_contacts(backbone: &mut Backbone, office: &str, out_of_hours: &str) {
    backbone
        .registry
        .set_local_authority_contacts(registry_wire::SetLocalAuthorityContactsRequest {
            contacts: Some(registry_wire::LocalAuthorityContacts {
                local_authority: Some(council()),
                office_hours_phone: office.into(),
                out_of_hours_phone: out_of_hours.into(),
                missing_numbers: String::new(),
            }),
        })
        .await
        .expect("contacts");
}

/// Checks a FHIR resource with a library no one here wrote: `fhir.resources`
/// (installed by `tests/run.sh`), whose models of `release` (`R4B`, `STU3`)
/// are strict about unknown elements, types, cardinality and required
/// elements.
pub fn validate_fhir(release: &str, body: &str) {
    let script = format!(
        "
import sys, json
from fhir.resources.{release} import get_fhir_model_class
text = sys.stdin.read()
kind = json.loads(text)['resourceType']
get_fhir_model_class(kind).model_validate_json(text)
print(kind)
"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (tests/run.sh installs fhir.resources)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("the validator");
    assert!(
        output.status.success(),
        "not valid FHIR {release}: {}\n{body}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The summaries of a child's chronology, read by the chair.
pub async fn chronology_of(
    backbone: &mut Backbone,
    nhs_number: Option<NhsNumber>,
    local_id: Option<contract::common::v1::LocalChildId>,
) -> Vec<String> {
    backbone
        .as_(&chair())
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            nhs_number,
            local_id,
            purpose: "case review".into(),
            ..registry_wire::ChildChronologyRequest::default()
        })
        .await
        .expect("chronology")
        .into_inner()
        .entries
        .into_iter()
        .map(|entry| entry.summary)
        .collect()
}
