//! `safeguard demo`: plays a whole case against a running backbone, with a
//! synthetic child (a 999 test-range NHS number) and invented names: a
//! school refers, the MASH decides, a strategy discussion starts a section
//! 47 enquiry, the initial conference is requested by itself, invitations
//! go out and are answered, the conference makes a plan, an emergency
//! department looks the child up, the council is told, the GP is told, and
//! the child's chronology is printed.

use std::time::Duration;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, ContactDetails, Date as WireDate,
    NhsNumber as WireNhs, Organisation, OrganisationKind, Role,
};
use contract::conference::v1 as conference;
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry;
use domain::NhsNumber;
use domain::date::Date;

use crate::agencies::Agencies;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the demo established, step by step; the tests assert on it.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub child: String,
    pub referral_id: String,
    pub received_on: String,
    pub decision_due: Option<WireDate>,
    pub strategy_held_on: String,
    pub icpc_due: Option<WireDate>,
    pub conference_id: String,
    pub plan_id: String,
    pub plan_start: Option<WireDate>,
    pub lookup: registry::LookupChildResponse,
    pub council_told: note::NotificationMessage,
    pub gp_told: note::NotificationMessage,
    pub referrer_told: note::NotificationMessage,
    pub chronology: Vec<registry::ChronologyEntry>,
}

fn organisation(ods: &str, name: &str, kind: OrganisationKind) -> Organisation {
    Organisation {
        ods_code: ods.into(),
        name: name.into(),
        kind: kind.into(),
    }
}

fn council() -> Organisation {
    organisation(
        "E09000999",
        "London Borough of Northgate (demo)",
        OrganisationKind::LocalAuthority,
    )
}
fn school() -> Organisation {
    organisation(
        "S999001",
        "Northgate Primary School (demo)",
        OrganisationKind::School,
    )
}
fn police() -> Organisation {
    organisation(
        "P99001",
        "Northgate Police CAIT (demo)",
        OrganisationKind::Police,
    )
}
fn gp_practice() -> Organisation {
    organisation(
        "Y99001",
        "Northgate Surgery (demo)",
        OrganisationKind::GpPractice,
    )
}
fn hospital() -> Organisation {
    organisation(
        "RXX01",
        "Northgate General Hospital (demo)",
        OrganisationKind::NhsTrust,
    )
}

fn person(
    organisation: Organisation,
    user: &str,
    name: &str,
    role: Role,
    setting: CareSetting,
) -> CallerIdentity {
    CallerIdentity {
        organisation: Some(organisation),
        user_id: user.into(),
        display_name: name.into(),
        role: role.into(),
        care_setting: setting.into(),
    }
}

fn wire_date(date: Date) -> Option<WireDate> {
    Some(WireDate {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    })
}

/// 09:30 UTC on `date`.
fn morning(date: Date) -> Option<prost_types::Timestamp> {
    let epoch = Date::from_ymd(1970, 1, 1).ok()?;
    Some(prost_types::Timestamp {
        seconds: epoch.days_until(date) * 86_400 + 34_200,
        nanos: 0,
    })
}

fn say(quiet: bool, line: String) {
    if !quiet {
        println!("{line}");
    }
}

/// Plays the case against the backbone at `server`, as if on `today` (the
/// day the backbone's clock says). Each run uses a new synthetic child, so
/// the demo can be played again and again.
pub async fn run(agencies: &Agencies, quiet: bool, today: Date) -> Result<Report, Error> {
    run_against(agencies, quiet, today).await
}

/// Where each service listens: one address for the one-process backbone,
/// four when each service runs alone.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub referrals: String,
    pub conferences: String,
    pub registry: String,
    pub notifications: String,
}

impl Endpoints {
    pub fn one(server: &str) -> Self {
        Endpoints {
            referrals: server.to_owned(),
            conferences: server.to_owned(),
            registry: server.to_owned(),
            notifications: server.to_owned(),
        }
    }
}

/// The demo against services wherever they run.
/// Each step is taken by the person whose step it is, through their own
/// organisation's system (`Agencies`): the school refers, the MASH decides,
/// the chair records the outcome, the A&E nurse looks the child up.
pub async fn run_against(agencies: &Agencies, quiet: bool, today: Date) -> Result<Report, Error> {
    let serial = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros()
        % 1_000_000) as u32;
    let child = NhsNumber::test_number(serial);
    let child_wire = Some(WireNhs {
        value: child.to_string(),
    });
    // The case began six weeks ago, so every step is in the past.
    let received = weekday_on_or_before(today.add_days(-42));
    let mut report = Report {
        child: child.to_string(),
        received_on: received.to_string(),
        ..Report::default()
    };
    let teacher = person(
        school(),
        "demo-dsl",
        "Sam Teacher (demo)",
        Role::DesignatedSafeguardingLead,
        CareSetting::Education,
    );
    let mash = person(
        council(),
        "demo-mash",
        "Jo Officer (demo)",
        Role::MashOfficer,
        CareSetting::SocialCare,
    );
    let chair = person(
        council(),
        "demo-chair",
        "Pat Chair (demo)",
        Role::ConferenceChair,
        CareSetting::SocialCare,
    );
    let nurse = person(
        hospital(),
        "demo-nurse",
        "Lee Nurse (demo)",
        Role::UnscheduledCareClinician,
        CareSetting::EmergencyDepartment,
    );

    agencies
        .clients(&chair)?
        .registry
        .set_local_authority_contacts(registry::SetLocalAuthorityContactsRequest {
            contacts: Some(registry::LocalAuthorityContacts {
                local_authority: Some(council()),
                office_hours_phone: "01632 960100".into(),
                out_of_hours_phone: "01632 960999".into(),
                missing_numbers: String::new(),
            }),
        })
        .await?;

    let submitted = agencies
        .clients(&teacher)?
        .referrals
        .submit_referral(referral::SubmitReferralRequest {
            idempotency_key: format!("demo-{serial}"),
            referrer: Some(referral::Referrer {
                organisation: Some(school()),
                person: Some(ContactDetails {
                    name: "Sam Teacher (demo)".into(),
                    phone: "01632 960001".into(),
                    email: "dsl@example.invalid".into(),
                }),
            }),
            child: Some(referral::Child {
                nhs_number: child_wire.clone(),
                given_name: "Alex".into(),
                family_name: "Demochild".into(),
                date_of_birth: wire_date(today.add_days(-7 * 365)),
                postcode: "ZZ99 3AA".into(),
                ..referral::Child::default()
            }),
            concerns: "bruising seen on both arms; child reluctant to go home".into(),
            category_of_concern: AbuseCategory::Physical.into(),
            consent: Some(referral::Consent {
                status: referral::ConsentStatus::NotSought.into(),
                reason: "seeking consent could put the child at risk".into(),
            }),
            local_authority: Some(council()),
            received_at: morning(received),
            ..referral::SubmitReferralRequest::default()
        })
        .await?
        .into_inner();
    report.referral_id = submitted.referral_id.clone();
    report.decision_due = submitted.decision_due;
    say(
        quiet,
        format!(
            "1. referral {} from the school about child {child}, received {received}; decision due {}",
            submitted.referral_id,
            show(&submitted.decision_due)
        ),
    );

    let decided_on = weekday_after(received);
    agencies
        .clients(&mash)?
        .referrals
        .record_decision(referral::RecordDecisionRequest {
            referral_id: submitted.referral_id.clone(),
            rag_rating: referral::RagRating::Red.into(),
            outcome: referral::ReferralOutcome::StrategyDiscussion.into(),
            rationale: "unexplained injuries; significant harm suspected".into(),
            reason_for_referrer: "the agencies will discuss the injuries you reported".into(),
            decided_at: morning(decided_on),
        })
        .await?;
    say(
        quiet,
        format!("2. MASH decision on {decided_on}: red, strategy discussion"),
    );

    let strategy_on = weekday_after(decided_on);
    report.strategy_held_on = strategy_on.to_string();
    let strategy = agencies
        .clients(&mash)?
        .referrals
        .record_strategy_discussion(referral::RecordStrategyDiscussionRequest {
            referral_id: submitted.referral_id.clone(),
            held_on: wire_date(strategy_on),
            agencies_present: vec![council(), police(), hospital()],
            section_47_enquiry: true,
            notes: "police and health agree: section 47 enquiry".into(),
            police_risk_assessment: Some(referral::PoliceRiskAssessment {
                reference: "TEST-MERLIN-0001".into(),
                kind: referral::PoliceReportKind::InformationExchange.into(),
                overall_rating: referral::RiskRating::High.into(),
                groups: vec![referral::RiskFactorGroup {
                    subject: referral::RiskSubject::Household.into(),
                    factors: vec![referral::RiskFactor {
                        question: "previous incidents at the address".into(),
                        present: true,
                        detail: "two calls this year".into(),
                    }],
                }],
                assessed_on: wire_date(strategy_on),
                version: 0,
            }),
        })
        .await?
        .into_inner();
    report.icpc_due = strategy.referral.as_ref().and_then(|r| r.icpc_due);
    say(
        quiet,
        format!(
            "3. strategy discussion on {strategy_on} starts a section 47 enquiry; ICPC due {}",
            show(&report.icpc_due)
        ),
    );

    let concluded_on = weekday_after(weekday_after(strategy_on));
    agencies
        .clients(&mash)?
        .referrals
        .record_section47_outcome(referral::RecordSection47OutcomeRequest {
            referral_id: submitted.referral_id.clone(),
            concluded_on: wire_date(concluded_on),
            conference_needed: true,
            rationale: "risk of significant harm".into(),
        })
        .await?;

    let icpc = wait_for_conference(agencies, &chair, &submitted.referral_id).await?;
    report.conference_id = icpc.conference_id.clone();
    say(
        quiet,
        format!(
            "4. section 47 concluded {concluded_on}; initial conference {} requested by the scheduler, due {}",
            icpc.conference_id,
            show(&icpc.due)
        ),
    );

    let invitee = |role: conference::InviteeRole, organisation: Organisation| conference::Invitee {
        role: role.into(),
        organisation: Some(organisation),
        ..conference::Invitee::default()
    };
    agencies
        .clients(&chair)?
        .conferences
        .update_invitations(conference::UpdateInvitationsRequest {
            conference_id: icpc.conference_id.clone(),
            add: vec![
                invitee(conference::InviteeRole::Police, police()),
                invitee(conference::InviteeRole::Gp, gp_practice()),
                invitee(conference::InviteeRole::School, school()),
                invitee(conference::InviteeRole::Paediatrician, hospital()),
            ],
            remove: vec![],
        })
        .await?;
    let held_on = weekday_after(weekday_after(concluded_on));
    agencies
        .clients(&chair)?
        .conferences
        .schedule_conference(conference::ScheduleConferenceRequest {
            conference_id: icpc.conference_id.clone(),
            scheduled_for: morning(held_on),
            venue: "Civic Centre, room 2".into(),
        })
        .await?;
    for (role, ods, response) in [
        (
            conference::InviteeRole::Police,
            "P99001",
            conference::InviteResponse::Attending,
        ),
        (
            conference::InviteeRole::School,
            "S999001",
            conference::InviteResponse::Attending,
        ),
        (
            conference::InviteeRole::Gp,
            "Y99001",
            conference::InviteResponse::SendingReport,
        ),
    ] {
        agencies
            .clients(&chair)?
            .conferences
            .record_invite_reply(conference::RecordInviteReplyRequest {
                conference_id: icpc.conference_id.clone(),
                role: role.into(),
                organisation_ods_code: ods.into(),
                response: response.into(),
            })
            .await?;
    }
    agencies
        .clients(&chair)?
        .conferences
        .record_report_received(conference::RecordReportReceivedRequest {
            conference_id: icpc.conference_id.clone(),
            role: conference::InviteeRole::Gp.into(),
            organisation_ods_code: "Y99001".into(),
            text: "Seen twice this year with minor injuries; immunisations behind. \
                   The practice supports a plan."
                .into(),
            author: "Dr Test Practitioner".into(),
            written_on: Some(service_core::validate::to_wire_date(concluded_on)),
        })
        .await?;
    say(
        quiet,
        format!(
            "5. conference scheduled for {held_on}; police and school attending, GP sending a report (received)"
        ),
    );
    agencies
        .clients(&chair)?
        .conferences
        .record_attendance(conference::RecordAttendanceRequest {
            conference_id: icpc.conference_id.clone(),
            present: vec![
                invitee(conference::InviteeRole::SocialCare, council()),
                invitee(conference::InviteeRole::Police, police()),
                invitee(conference::InviteeRole::School, school()),
            ],
            held_on: wire_date(held_on),
        })
        .await?;
    let recorded = agencies
        .clients(&chair)?
        .conferences
        .record_outcome(conference::RecordOutcomeRequest {
            conference_id: icpc.conference_id.clone(),
            outcome: Some(conference::Outcome {
                kind: Some(conference::outcome::Kind::Initial(
                    conference::InitialOutcome {
                        plan: true,
                        category: AbuseCategory::Physical.into(),
                    },
                )),
                quorum_override_reason: String::new(),
            }),
        })
        .await?
        .into_inner();
    let decided = recorded.conference.ok_or("no conference in the answer")?;
    report.plan_id = decided.plan_id.clone();
    say(
        quiet,
        format!(
            "6. ICPC held {held_on}: child protection plan {} (physical abuse)",
            decided.plan_id
        ),
    );

    // The chair's token: the registry answers once it shows the plan.
    let lookup = agencies
        .clients(&nurse)?
        .registry
        .lookup_child(registry::LookupChildRequest {
            nhs_number: child_wire.clone(),
            purpose: "unscheduled care attendance".into(),
            silent: false,
            min_token: recorded.token,
            care_setting: CareSetting::EmergencyDepartment.into(),
            ..registry::LookupChildRequest::default()
        })
        .await?
        .into_inner();
    if lookup.plans.is_empty() {
        return Err("the registry answered without the plan the conference made".into());
    }
    report.plan_start = lookup.plans.first().and_then(|plan| plan.start_date);
    if let Some(plan) = lookup.plans.first() {
        let owner = plan.owner.clone().unwrap_or_default();
        say(
            quiet,
            format!(
                "7. A&E looks the child up: {} since {}; call {} (office hours) or {} (out of hours); category {}",
                plan.r#type()
                    .as_str_name()
                    .trim_start_matches("PLAN_TYPE_")
                    .to_lowercase()
                    .replace('_', " "),
                show(&plan.start_date),
                owner.office_hours_phone,
                owner.out_of_hours_phone,
                if plan.category == 0 {
                    "not shown to this role"
                } else {
                    "shown"
                }
            ),
        );
    }
    report.lookup = lookup;

    let council_inbox = person(
        council(),
        "demo-inbox",
        "Council inbox (demo)",
        Role::TeamManager,
        CareSetting::SocialCare,
    );
    report.council_told = first_notification(
        agencies,
        council_inbox,
        note::NotificationKind::Access,
        &child_wire,
    )
    .await?;
    say(
        quiet,
        format!("8. the council is told: {}", report.council_told.summary),
    );
    let gp_inbox = person(
        gp_practice(),
        "demo-gp",
        "GP inbox (demo)",
        Role::GeneralPractitioner,
        CareSetting::GeneralPractice,
    );
    report.gp_told = first_notification(
        agencies,
        gp_inbox,
        note::NotificationKind::PlanStarted,
        &child_wire,
    )
    .await?;
    say(
        quiet,
        format!("9. the GP practice is told: {}", report.gp_told.summary),
    );
    let school_inbox = person(
        school(),
        "demo-school",
        "School inbox (demo)",
        Role::DesignatedSafeguardingLead,
        CareSetting::Education,
    );
    report.referrer_told = first_notification(
        agencies,
        school_inbox,
        note::NotificationKind::ReferralOutcome,
        &child_wire,
    )
    .await?;
    say(
        quiet,
        format!("10. the school is told: {}", report.referrer_told.summary),
    );

    report.chronology = agencies
        .clients(&chair)?
        .registry
        .child_chronology(registry::ChildChronologyRequest {
            local_id: None,
            nhs_number: child_wire,
            min_token: report.lookup.token.clone(),
            purpose: "review of the child protection plan".into(),
        })
        .await?
        .into_inner()
        .entries;
    say(quiet, format!("11. chronology of child {child}:"));
    for entry in &report.chronology {
        let at = entry
            .occurred_at
            .map(|at| service_core::validate::date_of(&at).to_string())
            .unwrap_or_default();
        say(
            quiet,
            format!(
                "    {at}  {:<22} {}  [{}]",
                entry.log, entry.summary, entry.actor
            ),
        );
    }
    Ok(report)
}

fn show(date: &Option<WireDate>) -> String {
    date.as_ref()
        .map_or_else(|| "?".into(), service_core::validate::iso_date)
}

fn weekday_on_or_before(date: Date) -> Date {
    let mut date = date;
    while date.is_weekend() {
        date = date.add_days(-1);
    }
    date
}

fn weekday_after(date: Date) -> Date {
    let mut next = date.add_days(1);
    while next.is_weekend() {
        next = next.add_days(1);
    }
    next
}

async fn wait_for_conference(
    agencies: &Agencies,
    chair: &CallerIdentity,
    referral_id: &str,
) -> Result<conference::Conference, Error> {
    let mut client = agencies.clients(chair)?.conferences;
    for _ in 0..500 {
        let listed = client
            .list_conferences(conference::ListConferencesRequest {
                local_authority_ods_code: "E09000999".into(),
                ..conference::ListConferencesRequest::default()
            })
            .await?
            .into_inner();
        if let Some(found) = listed
            .conferences
            .into_iter()
            .find(|c| c.referral_id == referral_id)
        {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the scheduler did not request the conference".into())
}

async fn first_notification(
    agencies: &Agencies,
    caller: CallerIdentity,
    kind: note::NotificationKind,
    child: &Option<WireNhs>,
) -> Result<note::NotificationMessage, Error> {
    let ods = caller
        .organisation
        .as_ref()
        .map(|o| o.ods_code.clone())
        .unwrap_or_default();
    let mut stream = agencies
        .clients(&caller)?
        .notifications
        .subscribe(note::SubscribeRequest {
            subscriber: "demo".into(),
            recipient_ods_code: ods,
            kinds: vec![kind.into()],
            child_nhs_number: child.clone(),
            after_sequence: 0,
            purpose: "the agency's safeguarding inbox".into(),
        })
        .await?
        .into_inner();
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .map_err(|_| "no notification in time")??
        .ok_or("the notification stream ended")?;
    Ok(message)
}
