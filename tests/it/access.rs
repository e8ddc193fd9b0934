//! Who may do what, cell by cell, over real TLS with real tokens: every RPC
//! of the contract that a person calls, by every role, from the owning
//! council, another council, an invited GP practice, the police force in
//! the child's joint section 47 enquiry, the school that referred and a
//! stranger (a hospital nothing names), against a case made through the
//! public API. Each cell must be answered exactly as the access policy says
//! for the parties the case gave the thing asked about: PERMISSION_DENIED,
//! or anything but PERMISSION_DENIED and UNAUTHENTICATED. The same table runs
//! against the backbone in one process and against the services as
//! separate processes. Beside it, the examples the policy must keep are
//! checked by hand, not derived from the table.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use contract::common::v1::{
    AbuseCategory, CallerIdentity, CareSetting, ContactDetails, Organisation, OrganisationKind,
    Role,
};
use contract::conference::v1 as conference;
use contract::events::v1::service_status_client::ServiceStatusClient;
use contract::events::v1::{GetStatusRequest, event_log_reader_client::EventLogReaderClient};
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry_wire;
use safeguard::agencies::Clients;
use service_core::policy::{self, Parties};
use tonic::{Code, Status};

use crate::fixtures::{self, Backbone, chair, council, date, nhs, organisation};

const OWNER: &str = "E09000999";
const OTHER_COUNCIL: &str = "E09000998";
const GP: &str = "Y99001";
const POLICE: &str = "P99001";
const SCHOOL: &str = "S999001";
const STRANGER: &str = "RXX01";

/// Each column of the table: an organisation and what it is to the case.
const RELATIONS: [(&str, OrganisationKind, &str); 6] = [
    (OWNER, OrganisationKind::LocalAuthority, "owner"),
    (
        OTHER_COUNCIL,
        OrganisationKind::LocalAuthority,
        "other council",
    ),
    (GP, OrganisationKind::GpPractice, "invitee"),
    (POLICE, OrganisationKind::Police, "police in the enquiry"),
    (SCHOOL, OrganisationKind::School, "referrer"),
    (STRANGER, OrganisationKind::NhsTrust, "stranger"),
];

/// The case every cell asks about, made through the public API.
struct Case {
    /// Referred by the school, a joint section 47 enquiry with the police,
    /// a conference that made a plan.
    referral: String,
    /// Referred by the school, closed with early help: nothing more can be
    /// recorded on it, so a write allowed by the policy changes nothing.
    closed_referral: String,
    /// Held, with its outcome: nothing more can be recorded on it either.
    conference: String,
    child: String,
    plan: String,
    ended_plan: String,
}

async fn make_case(backbone: &mut Backbone) -> Case {
    fixtures::set_contacts(backbone, "0300 000 0001", "0300 000 0002").await;
    let child = fixtures::the_child();
    let child_number = child.nhs_number.clone().expect("nhs").value;
    let received_at = Some(prost_types::Timestamp {
        seconds: 1_766_136_600,
        nanos: 0,
    });
    let referral = backbone
        .referrals
        .submit_referral(fixtures::referral_of("access-1", child, received_at))
        .await
        .expect("submit")
        .into_inner()
        .referral_id;
    let decide = |id: &str, outcome: referral::ReferralOutcome| referral::RecordDecisionRequest {
        referral_id: id.to_owned(),
        rag_rating: referral::RagRating::Red.into(),
        outcome: outcome.into(),
        rationale: "as the case needs".into(),
        reason_for_referrer: String::new(),
        decided_at: received_at,
    };
    backbone
        .referrals
        .record_decision(decide(
            &referral,
            referral::ReferralOutcome::StrategyDiscussion,
        ))
        .await
        .expect("decide");
    backbone
        .referrals
        .record_strategy_discussion(referral::RecordStrategyDiscussionRequest {
            referral_id: referral.clone(),
            held_on: date(2025, 12, 22),
            agencies_present: vec![council(), organisation(POLICE, OrganisationKind::Police)],
            section_47_enquiry: true,
            notes: String::new(),
            police_risk_assessment: None,
        })
        .await
        .expect("strategy");
    backbone
        .referrals
        .record_section47_outcome(referral::RecordSection47OutcomeRequest {
            referral_id: referral.clone(),
            concluded_on: date(2025, 12, 23),
            conference_needed: true,
            rationale: "risk of significant harm".into(),
        })
        .await
        .expect("conclude");
    let conference = fixtures::conferences(backbone, 1).await.remove(0);
    let outcome = fixtures::hold(
        backbone,
        &conference,
        date(2026, 1, 6),
        conference::outcome::Kind::Initial(conference::InitialOutcome {
            plan: true,
            category: AbuseCategory::Neglect.into(),
        }),
    )
    .await;
    let closed_referral = backbone
        .referrals
        .submit_referral(fixtures::referral_of(
            "access-2",
            referral::Child {
                nhs_number: nhs("9990000026"),
                ..fixtures::the_child()
            },
            received_at,
        ))
        .await
        .expect("submit")
        .into_inner()
        .referral_id;
    backbone
        .referrals
        .record_decision(decide(
            &closed_referral,
            referral::ReferralOutcome::EarlyHelp,
        ))
        .await
        .expect("decide");
    let plan = fixtures::lookup(backbone, chair(), true, outcome)
        .await
        .plans
        .first()
        .expect("the conference's plan")
        .plan_id
        .clone();
    let ended = fixtures::transfer_in(backbone, "9990000034", date(2026, 1, 5))
        .await
        .plan
        .expect("plan")
        .plan_id;
    backbone
        .registry
        .end_plan(registry_wire::EndPlanRequest {
            plan_id: ended.clone(),
            end_date: date(2026, 2, 1),
            reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
        })
        .await
        .expect("end");
    Case {
        referral,
        closed_referral,
        conference: conference.conference_id,
        child: child_number,
        plan,
        ended_plan: ended,
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;
/// One RPC of the table: its name, the parties of what it asks about, and
/// the call as the given person from the given organisation.
type Row = (&'static str, Parties, Box<dyn Fn(Clients, &str) -> Answer>);

fn parties(owner: &str, referrer: Option<&str>, invitees: &[&str], police: &[&str]) -> Parties {
    Parties {
        owners: vec![owner.to_owned()],
        referrer: referrer.map(str::to_owned),
        invitees: invitees.iter().map(|i| (*i).to_owned()).collect(),
        joint_enquiry: police.iter().map(|p| (*p).to_owned()).collect(),
        ..Parties::default()
    }
}

fn done<T>(answer: Result<T, Status>) -> Result<(), Status> {
    answer.map(|_| ())
}

/// Every RPC a person calls, each asked about the case.
fn rows(case: &Case) -> Vec<Row> {
    let referral_parties = parties(OWNER, Some(SCHOOL), &[], &[POLICE]);
    let closed_parties = parties(OWNER, Some(SCHOOL), &[], &[]);
    // The referrer (a school) is invited by default, as the referral knows it.
    let conference_parties = parties(OWNER, None, &[OWNER, POLICE, GP, SCHOOL], &[]);
    let child_parties = parties(OWNER, None, &[], &[POLICE]);
    let owner = Parties::owned_by(OWNER);
    let (referral_id, closed, conference_id) = (
        case.referral.clone(),
        case.closed_referral.clone(),
        case.conference.clone(),
    );
    let (child, plan, ended) = (
        case.child.clone(),
        case.plan.clone(),
        case.ended_plan.clone(),
    );
    macro_rules! row {
        ($rpc:literal, $parties:expr, [$($capture:ident),*], |$clients:ident, $ods:ident| $call:expr) => {{
            $(let $capture = $capture.clone();)*
            let row: Row = (
                concat!("safeguard.", $rpc),
                $parties,
                Box::new(move |$clients: Clients, $ods: &str| -> Answer {
                    #[allow(unused_mut)]
                    let mut $clients = $clients;
                    let _ = $ods;
                    $call
                }),
            );
            row
        }};
    }
    vec![
        row!(
            "referral.v1.ReferralIntake/SubmitReferral",
            Parties::default(),
            [],
            |c, ods| {
                let request = referral::SubmitReferralRequest {
                    referrer: Some(referral::Referrer {
                        organisation: Some(organisation(ods, OrganisationKind::Other)),
                        person: Some(ContactDetails::default()),
                    }),
                    ..fixtures::referral_of("access-cell", fixtures::the_child(), None)
                };
                Box::pin(async move { done(c.referrals.submit_referral(request).await) })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/ShareInformation",
            Parties::default(),
            [],
            |c, ods| {
                let request = referral::ShareInformationRequest {
                    idempotency_key: "access-cell".into(),
                    child: Some(fixtures::the_child()),
                    circumstances: "seen at an incident".into(),
                    local_authority: Some(council()),
                    ..Default::default()
                };
                Box::pin(async move { done(c.referrals.share_information(request).await) })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/RecordDomesticAbuseIncident",
            Parties::default(),
            [],
            |c, ods| {
                let request = referral::RecordDomesticAbuseIncidentRequest {
                    police_reference: "access-cell".into(),
                    child: Some(fixtures::the_child()),
                    local_authority: Some(council()),
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: 1_764_540_000,
                        nanos: 0,
                    }),
                    location: "the family home".into(),
                    ..Default::default()
                };
                Box::pin(
                    async move { done(c.referrals.record_domestic_abuse_incident(request).await) },
                )
            }
        ),
        row!(
            "referral.v1.ReferralIntake/RecordDecision",
            closed_parties.clone(),
            [closed],
            |c, ods| {
                let id = closed.clone();
                Box::pin(async move {
                    done(
                        c.referrals
                            .record_decision(referral::RecordDecisionRequest {
                                referral_id: id,
                                rag_rating: referral::RagRating::Green.into(),
                                outcome: referral::ReferralOutcome::EarlyHelp.into(),
                                rationale: "again".into(),
                                reason_for_referrer: String::new(),
                                decided_at: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/RecordStrategyDiscussion",
            closed_parties.clone(),
            [closed],
            |c, ods| {
                let id = closed.clone();
                Box::pin(async move {
                    done(
                        c.referrals
                            .record_strategy_discussion(referral::RecordStrategyDiscussionRequest {
                                referral_id: id,
                                held_on: date(2025, 12, 22),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/RecordSection47Outcome",
            closed_parties.clone(),
            [closed],
            |c, ods| {
                let id = closed.clone();
                Box::pin(async move {
                    done(
                        c.referrals
                            .record_section47_outcome(referral::RecordSection47OutcomeRequest {
                                referral_id: id,
                                concluded_on: date(2025, 12, 23),
                                conference_needed: false,
                                rationale: "none".into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/RecordAssessmentCompleted",
            closed_parties.clone(),
            [closed],
            |c, ods| {
                let id = closed.clone();
                Box::pin(async move {
                    done(
                        c.referrals
                            .record_assessment_completed(
                                referral::RecordAssessmentCompletedRequest {
                                    referral_id: id,
                                    completed_on: date(2026, 1, 5),
                                    late_reason: String::new(),
                                },
                            )
                            .await,
                    )
                })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/GetReferral",
            referral_parties,
            [referral_id],
            |c, ods| {
                let id = referral_id.clone();
                Box::pin(async move {
                    done(
                        c.referrals
                            .get_referral(referral::GetReferralRequest {
                                purpose: "a test of the backbone".into(),
                                referral_id: id,
                                min_token: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "referral.v1.ReferralIntake/ListAwaitingDecision",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.referrals
                            .list_awaiting_decision(referral::ListAwaitingDecisionRequest {
                                local_authority_ods_code: OWNER.into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/CreateConference",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.conferences
                            .create_conference(conference::CreateConferenceRequest {
                                kind: conference::ConferenceKind::Initial.into(),
                                child_nhs_number: nhs("9990000042"),
                                child_name: "Access Child".into(),
                                local_authority: Some(council()),
                                clock_starts: date(2026, 1, 5),
                                idempotency_key: "access-conference".into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/ScheduleConference",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .schedule_conference(conference::ScheduleConferenceRequest {
                                conference_id: id,
                                scheduled_for: Some(prost_types::Timestamp {
                                    seconds: 1_768_900_000,
                                    nanos: 0,
                                }),
                                venue: "Civic Centre".into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RearrangeConference",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .rearrange_conference(conference::RearrangeConferenceRequest {
                                conference_id: id,
                                scheduled_for: Some(prost_types::Timestamp {
                                    seconds: 1_768_900_000,
                                    nanos: 0,
                                }),
                                venue: "Civic Centre".into(),
                                reason: "access check".into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/CancelConference",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .cancel_conference(conference::CancelConferenceRequest {
                                conference_id: id,
                                reason: "access check".into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/UpdateInvitations",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .update_invitations(conference::UpdateInvitationsRequest {
                                conference_id: id,
                                add: vec![],
                                remove: vec![],
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RecordInviteReply",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                let (role, ods) = own_invitation(ods);
                Box::pin(async move {
                    done(
                        c.conferences
                            .record_invite_reply(conference::RecordInviteReplyRequest {
                                conference_id: id,
                                role: role.into(),
                                organisation_ods_code: ods,
                                response: conference::InviteResponse::Attending.into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RecordReportReceived",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                let (role, ods) = own_invitation(ods);
                Box::pin(async move {
                    done(
                        c.conferences
                            .record_report_received(conference::RecordReportReceivedRequest {
                                conference_id: id,
                                role: role.into(),
                                organisation_ods_code: ods,
                                text: "what the agency knows".into(),
                                author: "An Author".into(),
                                written_on: date(2026, 1, 2),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RecordAttendance",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .record_attendance(conference::RecordAttendanceRequest {
                                conference_id: id,
                                present: vec![],
                                held_on: date(2026, 1, 6),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RecordOutcome",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .record_outcome(conference::RecordOutcomeRequest {
                                conference_id: id,
                                outcome: Some(conference::Outcome {
                                    kind: Some(conference::outcome::Kind::Initial(
                                        conference::InitialOutcome {
                                            plan: false,
                                            category: 0,
                                        },
                                    )),
                                    quorum_override_reason: String::new(),
                                }),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/RecordCoreGroupMeeting",
            conference_parties.clone(),
            [plan],
            |c, ods| {
                let plan_id = plan.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .record_core_group_meeting(conference::RecordCoreGroupMeetingRequest {
                                plan_id,
                                held_on: date(2026, 1, 12),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/GetConference",
            conference_parties.clone(),
            [conference_id],
            |c, ods| {
                let id = conference_id.clone();
                Box::pin(async move {
                    done(
                        c.conferences
                            .get_conference(conference::GetConferenceRequest {
                                purpose: "a test of the backbone".into(),
                                conference_id: id,
                                min_token: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "conference.v1.ConferenceScheduler/ListConferences",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.conferences
                            .list_conferences(conference::ListConferencesRequest {
                                local_authority_ods_code: OWNER.into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/LookupChild",
            Parties::default(),
            [child],
            |c, ods| {
                let child = child.clone();
                Box::pin(async move {
                    done(
                        c.registry
                            .lookup_child(registry_wire::LookupChildRequest {
                                nhs_number: nhs(&child),
                                purpose: "access check".into(),
                                care_setting: CareSetting::Other.into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/ChildChronology",
            child_parties,
            [child],
            |c, ods| {
                let child = child.clone();
                Box::pin(async move {
                    done(
                        c.registry
                            .child_chronology(registry_wire::ChildChronologyRequest {
                                local_id: None,
                                purpose: "a test of the backbone".into(),
                                nhs_number: nhs(&child),
                                min_token: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/ListAccesses",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .list_accesses(registry_wire::ListAccessesRequest {
                                local_authority_ods_code: OWNER.into(),
                                purpose: "access check".into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/RecordTransferIn",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .record_transfer_in(registry_wire::RecordTransferInRequest {
                                gp_practice: None,
                                child_local_id: None,
                                child_nhs_number: nhs("9990000050"),
                                category: AbuseCategory::Neglect.into(),
                                start_date: date(2026, 1, 5),
                                local_authority: Some(council()),
                                previous_local_authority: Some(organisation(
                                    OTHER_COUNCIL,
                                    OrganisationKind::LocalAuthority,
                                )),
                                lead_social_worker: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/RecordLookedAfter",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .record_looked_after(registry_wire::RecordLookedAfterRequest {
                                gp_practice: None,
                                child_local_id: None,
                                child_nhs_number: nhs("9990000069"),
                                start_date: date(2026, 1, 5),
                                local_authority: Some(council()),
                                lead_social_worker: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/RecordUnbornPlan",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .record_unborn_plan(registry_wire::RecordUnbornPlanRequest {
                                gp_practice: None,
                                mother_nhs_number: nhs("9990000077"),
                                expected_date_of_delivery: date(2026, 9, 1),
                                category: AbuseCategory::Neglect.into(),
                                start_date: date(2026, 6, 1),
                                local_authority: Some(council()),
                                lead_social_worker: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/LinkBirth",
            owner.clone(),
            [plan],
            |c, ods| {
                let plan = plan.clone();
                Box::pin(async move {
                    done(
                        c.registry
                            .link_birth(registry_wire::LinkBirthRequest {
                                plan_id: plan,
                                baby_nhs_number: nhs("9990000085"),
                                born_on: date(2026, 1, 10),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/LinkNhsNumber",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .link_nhs_number(registry_wire::LinkNhsNumberRequest {
                                local_id: Some(contract::common::v1::LocalChildId {
                                    local_authority_ods_code: OWNER.into(),
                                    value: "ACCESS-1".into(),
                                }),
                                nhs_number: nhs("9990000093"),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/ImportCaseload",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .import_caseload(futures_util::stream::iter([
                                registry_wire::ImportCaseloadChunk {
                                    local_authority: Some(council()),
                                    csv: "nhs_number,plan_type,category,start_date,next_review_due,lead_social_worker_name,lead_social_worker_phone\n\
                                          9990000107,CPP,neglect,2026-01-05,2026-04-01,Access Worker,0300 000 0199\n"
                                        .into(),
                                },
                            ]))
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/ListUnmatchedChildren",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .list_unmatched_children(registry_wire::ListUnmatchedChildrenRequest {
                                local_authority_ods_code: OWNER.into(),
                                min_token: None,
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/EndPlan",
            owner.clone(),
            [ended],
            |c, ods| {
                let ended = ended.clone();
                Box::pin(async move {
                    done(
                        c.registry
                            .end_plan(registry_wire::EndPlanRequest {
                                plan_id: ended,
                                end_date: date(2026, 2, 1),
                                reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/AllocateLeadSocialWorker",
            owner.clone(),
            [ended],
            |c, ods| {
                let ended = ended.clone();
                Box::pin(async move {
                    done(
                        c.registry
                            .allocate_lead_social_worker(
                                registry_wire::AllocateLeadSocialWorkerRequest {
                                    plan_id: ended,
                                    lead_social_worker: Some(ContactDetails {
                                        name: "Access Worker".into(),
                                        phone: "0300 000 0199".into(),
                                        email: String::new(),
                                    }),
                                    allocated_on: date(2026, 1, 20),
                                },
                            )
                            .await,
                    )
                })
            }
        ),
        row!(
            "registry.v1.PlanRegistry/SetLocalAuthorityContacts",
            owner.clone(),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.registry
                            .set_local_authority_contacts(
                                registry_wire::SetLocalAuthorityContactsRequest {
                                    contacts: Some(registry_wire::LocalAuthorityContacts {
                                        local_authority: Some(council()),
                                        office_hours_phone: "0300 000 0001".into(),
                                        out_of_hours_phone: "0300 000 0002".into(),
                                        missing_numbers: String::new(),
                                    }),
                                },
                            )
                            .await,
                    )
                })
            }
        ),
        row!(
            "notification.v1.Notification/Subscribe",
            Parties::for_recipient(OWNER),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.notifications
                            .subscribe(note::SubscribeRequest {
                                subscriber: "access".into(),
                                recipient_ods_code: OWNER.into(),
                                ..Default::default()
                            })
                            .await,
                    )
                })
            }
        ),
        row!(
            "notification.v1.Notification/Acknowledge",
            Parties::for_recipient(OWNER),
            [],
            |c, ods| {
                Box::pin(async move {
                    done(
                        c.notifications
                            .acknowledge(note::AcknowledgeRequest {
                                subscriber: "access".into(),
                                recipient_ods_code: OWNER.into(),
                                sequence: 0,
                            })
                            .await,
                    )
                })
            }
        ),
    ]
}

/// An invitation request names the caller's own organisation; the owner's
/// people name the GP practice's. The parties, as the service finds them:
/// only the named organisation's own invitation.
fn own_invitation(ods: &str) -> (conference::InviteeRole, String) {
    match ods {
        OWNER => (conference::InviteeRole::Gp, GP.to_owned()),
        POLICE => (conference::InviteeRole::Police, POLICE.to_owned()),
        other => (conference::InviteeRole::Gp, other.to_owned()),
    }
}

/// What the policy says of `who` asking `rpc` about what `parties` name.
fn expected(rpc: &str, who: &CallerIdentity, parties: &Parties) -> bool {
    let ods = who
        .organisation
        .as_ref()
        .expect("organisation")
        .ods_code
        .clone();
    let mut parties = parties.clone();
    if rpc.ends_with("/RecordInviteReply") || rpc.ends_with("/RecordReportReceived") {
        // Only the invitation the request names is the caller's to answer.
        let named = own_invitation(&ods).1;
        parties.invitees.retain(|invitee| *invitee == named);
    }
    let caller = trust::Caller {
        organisation: domain::OdsCode::parse(&ods).expect("ods"),
        organisation_name: String::new(),
        organisation_kind: OrganisationKind::Unspecified,
        user_id: who.user_id.clone(),
        display_name: who.display_name.clone(),
        role: who.role(),
        care_setting: CareSetting::Unspecified,
    };
    policy::allow(rpc, &caller, &parties).is_ok()
}

fn person(ods: &str, kind: OrganisationKind, role: Role) -> CallerIdentity {
    CallerIdentity {
        organisation: Some(Organisation {
            ods_code: ods.into(),
            name: format!("Access organisation {ods}"),
            kind: kind.into(),
        }),
        user_id: format!("{ods}-{}", role.as_str_name()),
        display_name: format!("Access {}", role.as_str_name()),
        role: role.into(),
        care_setting: CareSetting::Other.into(),
    }
}

/// Runs the whole table against `backbone`; returns the number of cells.
async fn the_table(backbone: &mut Backbone) -> usize {
    let case = make_case(backbone).await;
    let roles: Vec<Role> = (1..)
        .map_while(|value| Role::try_from(value).ok())
        .collect();
    let mut clients: HashMap<(String, i32), Clients> = HashMap::new();
    let mut wrong = Vec::new();
    let mut cells = 0;
    for (rpc, parties, call) in rows(&case) {
        for (ods, kind, relation) in RELATIONS {
            for role in &roles {
                let who = person(ods, kind, *role);
                let client = clients
                    .entry((ods.to_owned(), *role as i32))
                    .or_insert_with(|| backbone.as_(&who))
                    .clone();
                let allowed = expected(rpc, &who, &parties);
                let answer = call(client, ods).await;
                cells += 1;
                let refused =
                    matches!(&answer, Err(status) if status.code() == Code::PermissionDenied);
                let unauthenticated =
                    matches!(&answer, Err(status) if status.code() == Code::Unauthenticated);
                if unauthenticated || allowed == refused {
                    wrong.push(format!(
                        "{rpc} by {} of the {relation}: {} but {:?}",
                        role.as_str_name(),
                        if allowed { "allowed" } else { "refused" },
                        answer
                            .err()
                            .map(|status| (status.code(), status.message().to_owned()))
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Whole logs and service status, which no person but an operator asks.
    let url = backbone.agencies.endpoints().registry.clone();
    for role in &roles {
        let who = person(OWNER, OrganisationKind::LocalAuthority, *role);
        let channel = backbone
            .agencies
            .authorised(&who, &url)
            .expect("credentials");
        let read = EventLogReaderClient::new(channel.clone())
            .read_events(contract::events::v1::ReadEventsRequest {
                log: "plan-registry".into(),
                from_position: 0,
                limit: 1,
            })
            .await;
        assert!(
            matches!(&read, Err(status) if status.code() == Code::PermissionDenied),
            "ReadEvents by {}: {read:?}",
            role.as_str_name()
        );
        let status = ServiceStatusClient::new(channel)
            .get_status(GetStatusRequest {})
            .await;
        assert_eq!(
            status.is_ok(),
            *role == Role::Operator,
            "GetStatus by {}: {status:?}",
            role.as_str_name()
        );
        cells += 2;
    }
    cells
}

/// The examples the policy must keep, checked against the table by hand.
#[test]
fn the_policy_keeps_the_examples_practice_depends_on() {
    let who = |ods: &str, kind, role| person(ods, kind, role);
    let council = |role| who(OWNER, OrganisationKind::LocalAuthority, role);
    let other = |role| who(OTHER_COUNCIL, OrganisationKind::LocalAuthority, role);
    let owned = Parties::owned_by(OWNER);
    let rpc = |method: &str| {
        policy::RULES
            .iter()
            .find(|rule| rule.rpc.ends_with(method))
            .expect("a rule")
            .rpc
    };
    // Only the owning council decides its referrals and ends its plans.
    assert!(expected(
        rpc("/RecordDecision"),
        &council(Role::MashOfficer),
        &owned
    ));
    assert!(!expected(
        rpc("/RecordDecision"),
        &other(Role::MashOfficer),
        &owned
    ));
    assert!(expected(
        rpc("/EndPlan"),
        &council(Role::SocialWorker),
        &owned
    ));
    assert!(!expected(
        rpc("/EndPlan"),
        &other(Role::TeamManager),
        &owned
    ));
    // The outcome is the chair's alone.
    assert!(expected(
        rpc("/RecordOutcome"),
        &council(Role::ConferenceChair),
        &owned
    ));
    assert!(!expected(
        rpc("/RecordOutcome"),
        &council(Role::SocialWorker),
        &owned
    ));
    // An invited GP practice replies for its own invitation only.
    let invited = Parties {
        invitees: vec![GP.into()],
        ..owned.clone()
    };
    let gp = who(GP, OrganisationKind::GpPractice, Role::GeneralPractitioner);
    assert!(expected(rpc("/RecordInviteReply"), &gp, &invited));
    let uninvited = who(
        "Y99002",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    );
    assert!(!expected(rpc("/RecordInviteReply"), &uninvited, &invited));
    // An operator sees no child's data; the public can only refer.
    for rule in policy::RULES {
        let operator = council(Role::Operator);
        let public = who("Z00001", OrganisationKind::Other, Role::MemberOfPublic);
        let anything = Parties {
            owners: vec![OWNER.into(), "Z00001".into()],
            recipient: Some(OWNER.into()),
            ..Parties::default()
        };
        assert_eq!(
            expected(rule.rpc, &operator, &anything),
            rule.rpc.ends_with("/GetStatus"),
            "{} by an operator",
            rule.rpc
        );
        assert_eq!(
            expected(rule.rpc, &public, &anything),
            rule.rpc.ends_with("/SubmitReferral"),
            "{} by the public",
            rule.rpc
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_by_every_role_and_relationship_against_the_backbone() {
    let dir = tempfile::tempdir().expect("dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    let cells = the_table(&mut backbone).await;
    println!("access cells checked against the backbone: {cells}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_by_every_role_and_relationship_against_separate_processes() {
    let deployment = crate::processes::Deployment::start().await;
    let mut services = fixtures::connect(&deployment.agencies());
    let cells = the_table(&mut services).await;
    println!("access cells checked against separate processes: {cells}");
}
