//! `safeguard conference …`: child protection conferences from the command
//! line, from creation to outcome.

use contract::common::v1::OrganisationKind;
use contract::conference::v1 as wire;
use contract::conference::v1::conference_scheduler_client::ConferenceSchedulerClient;

use super::{
    Common, category, choice, date, nhs, optional_date, organisation, show_time, show_token,
    spoken, time, token,
};
use crate::client::show_date;

#[derive(Debug, clap::Subcommand)]
pub enum ConferenceCommand {
    /// A conference asked for by hand (most are requested by the rules:
    /// an ICPC after a section 47 enquiry, reviews while a plan lasts).
    Create {
        /// initial, review or transfer-in.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        nhs: String,
        #[arg(long, default_value = "")]
        child_name: String,
        /// ODS[:NAME].
        #[arg(long)]
        local_authority: String,
        /// The day the statutory clock starts from (YYYY-MM-DD): the
        /// strategy discussion that started the section 47 enquiry, the
        /// transfer. Leave it out for a review of a plan whose last
        /// conference was held here: the clock starts at that conference.
        #[arg(long)]
        clock_starts: Option<String>,
        /// For a pre-birth conference: the expected date of delivery
        /// (YYYY-MM-DD); `--nhs` is then the mother's number.
        #[arg(long)]
        expected_date_of_delivery: Option<String>,
        #[arg(long, default_value = "")]
        referral: String,
        #[arg(long, default_value = "")]
        plan: String,
        /// Makes a retried request safe; one is made up if not given.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Sets the date, time and venue.
    Schedule {
        #[arg(long)]
        conference: String,
        /// YYYY-MM-DDTHH:MM, UTC.
        #[arg(long)]
        at: String,
        #[arg(long)]
        venue: String,
        #[command(flatten)]
        common: Common,
    },
    /// Moves it, with a reason; its statutory due date stays.
    Rearrange {
        #[arg(long)]
        conference: String,
        #[arg(long)]
        at: String,
        #[arg(long)]
        venue: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Calls it off, with a reason; its statutory due date stays.
    Cancel {
        #[arg(long)]
        conference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Adds or removes invitees: ROLE:ODS[:NAME] (ROLE as in the contract,
    /// e.g. police, gp, school, health-visitor), or ROLE alone for parent or
    /// child.
    Invite {
        #[arg(long)]
        conference: String,
        #[arg(long = "add")]
        add: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// An invitee's reply: attending, sending-report or declined.
    Reply {
        #[arg(long)]
        conference: String,
        /// The invitee: ROLE:ODS, or ROLE for parent or child.
        #[arg(long)]
        invitee: String,
        #[arg(long)]
        response: String,
        #[command(flatten)]
        common: Common,
    },
    /// An invitee's written report arrived: its text, author and date.
    Report {
        #[arg(long)]
        conference: String,
        #[arg(long)]
        invitee: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        author: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        written_on: String,
        #[command(flatten)]
        common: Common,
    },
    /// Who was present, and the day it was held.
    Attend {
        #[arg(long)]
        conference: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        held_on: String,
        /// ROLE:ODS[:NAME]; repeat for each.
        #[arg(long = "present")]
        present: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The decision. Initial: `--plan --category C` or `--no-plan`.
    /// Review: `--continue`, `--change-category C` or `--end REASON`
    /// (no-longer-at-risk, stepped-down-to-child-in-need, or other with
    /// `--end-detail`).
    Outcome {
        #[arg(long)]
        conference: String,
        #[arg(long, conflicts_with_all = ["no_plan", "continue_plan", "change_category", "end"])]
        plan: bool,
        #[arg(long, requires = "plan")]
        category: Option<String>,
        #[arg(long)]
        no_plan: bool,
        #[arg(long = "continue")]
        continue_plan: bool,
        #[arg(long)]
        change_category: Option<String>,
        #[arg(long)]
        end: Option<String>,
        /// What the conference said of the end; required with `--end other`.
        #[arg(long, default_value = "")]
        end_detail: String,
        /// The chair's reason to decide although the conference was not
        /// quorate.
        #[arg(long, default_value = "")]
        override_reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// One conference with its invitees and history.
    Get {
        #[arg(long)]
        conference: String,
        /// Answer only once these writes show: a write's printed token.
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A local authority's upcoming and overdue conferences.
    List {
        /// ODS code.
        #[arg(long)]
        local_authority: String,
        /// As of this date (YYYY-MM-DD); today if not given.
        #[arg(long)]
        as_of: Option<String>,
        /// Only those past their statutory due date.
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// The organisation kind an invitee role comes from.
fn kind_of(role: wire::InviteeRole) -> OrganisationKind {
    use wire::InviteeRole as Role;
    match role {
        Role::SocialCare => OrganisationKind::LocalAuthority,
        Role::Police => OrganisationKind::Police,
        Role::Gp => OrganisationKind::GpPractice,
        Role::HealthVisitor | Role::SchoolNurse | Role::Paediatrician | Role::Camhs => {
            OrganisationKind::NhsTrust
        }
        Role::School => OrganisationKind::School,
        Role::EarlyYears => OrganisationKind::EarlyYears,
        Role::Probation => OrganisationKind::Probation,
        Role::Housing => OrganisationKind::Housing,
        Role::Parent | Role::Child | Role::Other | Role::Unspecified => OrganisationKind::Other,
    }
}

/// `ROLE[:ODS[:NAME]]`.
fn invitee(flag: &str, value: &str) -> Result<wire::Invitee, String> {
    let (role, rest) = value.split_once(':').unwrap_or((value, ""));
    let role = choice(
        flag,
        role,
        "INVITEE_ROLE_",
        wire::InviteeRole::from_str_name,
    )?;
    let kind = kind_of(wire::InviteeRole::try_from(role).unwrap_or_default());
    Ok(wire::Invitee {
        role,
        organisation: (!rest.is_empty()).then(|| organisation(rest, kind)),
        ..wire::Invitee::default()
    })
}

fn invitees(flag: &str, values: &[String]) -> Result<Vec<wire::Invitee>, String> {
    values.iter().map(|value| invitee(flag, value)).collect()
}

fn outcome(
    plan: bool,
    category_value: Option<String>,
    no_plan: bool,
    continue_plan: bool,
    change_category: Option<String>,
    end: Option<String>,
    end_detail: String,
) -> Result<wire::outcome::Kind, String> {
    use wire::review_outcome::Decision;
    let chosen = [
        plan,
        no_plan,
        continue_plan,
        change_category.is_some(),
        end.is_some(),
    ];
    if chosen.iter().filter(|chosen| **chosen).count() != 1 {
        return Err("give one of --plan, --no-plan, --continue, --change-category or --end".into());
    }
    Ok(if plan || no_plan {
        wire::outcome::Kind::Initial(wire::InitialOutcome {
            plan,
            category: match category_value {
                Some(value) => category("--category", &value)?,
                None => 0,
            },
        })
    } else {
        wire::outcome::Kind::Review(wire::ReviewOutcome {
            decision: Some(if continue_plan {
                Decision::ContinuePlan(true)
            } else if let Some(value) = change_category {
                Decision::ChangeCategory(category("--change-category", &value)?)
            } else {
                Decision::EndPlan(wire::PlanEnding {
                    reason: choice(
                        "--end",
                        &end.unwrap_or_default(),
                        "PLAN_END_REASON_",
                        contract::common::v1::PlanEndReason::from_str_name,
                    )?,
                    detail: end_detail,
                })
            }),
        })
    })
}

impl ConferenceCommand {
    pub async fn run(self) -> Result<(), String> {
        match self {
            ConferenceCommand::Create {
                kind,
                nhs: child,
                child_name,
                local_authority,
                clock_starts,
                expected_date_of_delivery,
                referral,
                plan,
                key,
                common,
            } => {
                let request = wire::CreateConferenceRequest {
                    child_local_id: None,
                    kind: choice(
                        "--kind",
                        &kind,
                        "CONFERENCE_KIND_",
                        wire::ConferenceKind::from_str_name,
                    )?,
                    child_nhs_number: nhs(&child),
                    child_name,
                    local_authority: Some(organisation(
                        &local_authority,
                        OrganisationKind::LocalAuthority,
                    )),
                    clock_starts: optional_date("--clock-starts", clock_starts.as_ref())?,
                    expected_date_of_delivery: optional_date(
                        "--expected-date-of-delivery",
                        expected_date_of_delivery.as_ref(),
                    )?,
                    referral_id: referral,
                    plan_id: plan,
                    idempotency_key: key.unwrap_or_else(|| eventlog::EventId::new().to_string()),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.create_conference(request).await)
            }
            ConferenceCommand::Schedule {
                conference,
                at,
                venue,
                common,
            } => {
                let request = wire::ScheduleConferenceRequest {
                    conference_id: conference,
                    scheduled_for: Some(time("--at", &at)?),
                    venue,
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.schedule_conference(request).await)
            }
            ConferenceCommand::Rearrange {
                conference,
                at,
                venue,
                reason,
                common,
            } => {
                let request = wire::RearrangeConferenceRequest {
                    conference_id: conference,
                    scheduled_for: Some(time("--at", &at)?),
                    venue,
                    reason,
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.rearrange_conference(request).await)
            }
            ConferenceCommand::Cancel {
                conference,
                reason,
                common,
            } => {
                let request = wire::CancelConferenceRequest {
                    conference_id: conference,
                    reason,
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.cancel_conference(request).await)
            }
            ConferenceCommand::Invite {
                conference,
                add,
                remove,
                common,
            } => {
                let request = wire::UpdateInvitationsRequest {
                    conference_id: conference,
                    add: invitees("--add", &add)?,
                    remove: invitees("--remove", &remove)?,
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.update_invitations(request).await)
            }
            ConferenceCommand::Reply {
                conference,
                invitee: who,
                response,
                common,
            } => {
                let who = invitee("--invitee", &who)?;
                let request = wire::RecordInviteReplyRequest {
                    conference_id: conference,
                    role: who.role,
                    organisation_ods_code: who.organisation.unwrap_or_default().ods_code,
                    response: choice(
                        "--response",
                        &response,
                        "INVITE_RESPONSE_",
                        wire::InviteResponse::from_str_name,
                    )?,
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.record_invite_reply(request).await)
            }
            ConferenceCommand::Report {
                conference,
                invitee: who,
                text,
                author,
                written_on,
                common,
            } => {
                let who = invitee("--invitee", &who)?;
                let request = wire::RecordReportReceivedRequest {
                    conference_id: conference,
                    role: who.role,
                    organisation_ods_code: who.organisation.unwrap_or_default().ods_code,
                    text,
                    author,
                    written_on: Some(date("--written-on", &written_on)?),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.record_report_received(request).await)
            }
            ConferenceCommand::Attend {
                conference,
                held_on,
                present,
                common,
            } => {
                let request = wire::RecordAttendanceRequest {
                    conference_id: conference,
                    present: invitees("--present", &present)?,
                    held_on: Some(date("--held-on", &held_on)?),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.record_attendance(request).await)
            }
            ConferenceCommand::Outcome {
                conference,
                plan,
                category,
                no_plan,
                continue_plan,
                change_category,
                end,
                end_detail,
                override_reason,
                common,
            } => {
                let request = wire::RecordOutcomeRequest {
                    conference_id: conference,
                    outcome: Some(wire::Outcome {
                        kind: Some(outcome(
                            plan,
                            category,
                            no_plan,
                            continue_plan,
                            change_category,
                            end,
                            end_detail,
                        )?),
                        quorum_override_reason: override_reason,
                    }),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                written(&common, client.record_outcome(request).await)
            }
            ConferenceCommand::Get {
                conference,
                after,
                common,
            } => {
                let request = wire::GetConferenceRequest {
                    conference_id: conference,
                    min_token: token("--after", after.as_ref())?,
                    purpose: common.purpose.clone(),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                common.answer(client.get_conference(request).await, |response| {
                    response.conference.as_ref().map(detail).unwrap_or_default()
                })
            }
            ConferenceCommand::List {
                local_authority,
                as_of,
                overdue,
                after,
                common,
            } => {
                let request = wire::ListConferencesRequest {
                    local_authority_ods_code: local_authority,
                    as_of: optional_date("--as-of", as_of.as_ref())?,
                    overdue_only: overdue,
                    min_token: token("--after", after.as_ref())?,
                    purpose: common.purpose.clone(),
                };
                let mut client = ConferenceSchedulerClient::new(common.channel().await?);
                common.answer(client.list_conferences(request).await, |response| {
                    if response.conferences.is_empty() {
                        return "no conference upcoming or overdue".into();
                    }
                    response
                        .conferences
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
        }
    }
}

/// Prints a write's answer: the conference as it now stands and the token.
fn written(
    common: &Common,
    answer: Result<tonic::Response<wire::ConferenceResponse>, tonic::Status>,
) -> Result<(), String> {
    common.answer(answer, |response| {
        format!(
            "{}\ntoken: {}",
            response.conference.as_ref().map(detail).unwrap_or_default(),
            show_token(response.token.as_ref())
        )
    })
}

/// One line: what, for whom, when due, where it stands.
pub fn describe(conference: &wire::Conference) -> String {
    let mut line = format!(
        "{} {} conference for {} ({}): {}, due {}{}",
        conference.conference_id,
        spoken(conference.kind().as_str_name(), "CONFERENCE_KIND_"),
        conference.child_name,
        conference
            .child_nhs_number
            .as_ref()
            .map(|number| number.value.as_str())
            .unwrap_or("no NHS number"),
        spoken(conference.status().as_str_name(), "CONFERENCE_STATUS_"),
        show_date(conference.due.as_ref()),
        if conference.overdue { " (OVERDUE)" } else { "" }
    );
    if conference.scheduled_for.is_some() {
        line += &format!(
            "; {} at {}",
            show_time(conference.scheduled_for.as_ref()),
            conference.venue
        );
    }
    if conference.held_on.is_some() {
        line += &format!("; held {}", show_date(conference.held_on.as_ref()));
    }
    if !conference.plan_id.is_empty() {
        line += &format!("; plan {}", conference.plan_id);
    }
    line
}

/// The line, then each invitee and the history.
fn detail(conference: &wire::Conference) -> String {
    let mut text = describe(conference);
    for invitee in &conference.invitees {
        let organisation = invitee.organisation.clone().unwrap_or_default();
        text += &format!(
            "\n  invited: {} {} {} — {}{}{}",
            spoken(invitee.role().as_str_name(), "INVITEE_ROLE_"),
            organisation.ods_code,
            organisation.name,
            if invitee.response == 0 {
                "no reply yet".to_owned()
            } else {
                spoken(invitee.response().as_str_name(), "INVITE_RESPONSE_")
            },
            if invitee.report_received {
                ", report received"
            } else {
                ""
            },
            if invitee.attended { ", attended" } else { "" }
        );
    }
    for line in &conference.history {
        text += &format!("\n  {line}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitee_is_a_role_and_an_organisation_of_its_kind() {
        let gp = invitee("--add", "gp:Y99001:Northgate Surgery").expect("invitee");
        assert_eq!(gp.role(), wire::InviteeRole::Gp);
        let organisation = gp.organisation.expect("organisation");
        assert_eq!(organisation.kind(), OrganisationKind::GpPractice);
        assert_eq!(organisation.name, "Northgate Surgery");
        let parent = invitee("--add", "parent").expect("invitee");
        assert!(parent.organisation.is_none());
        assert!(invitee("--add", "neighbour:X1").is_err());
    }

    #[test]
    fn an_outcome_is_exactly_one_decision() {
        assert!(matches!(
            outcome(
                true,
                Some("neglect".into()),
                false,
                false,
                None,
                None,
                String::new()
            ),
            Ok(wire::outcome::Kind::Initial(wire::InitialOutcome {
                plan: true,
                ..
            }))
        ));
        assert!(outcome(false, None, false, false, None, None, String::new()).is_err());
        assert!(outcome(false, None, true, true, None, None, String::new()).is_err());
        assert!(matches!(
            outcome(
                false,
                None,
                false,
                false,
                None,
                Some("no-longer-at-risk".into()),
                String::new()
            ),
            Ok(wire::outcome::Kind::Review(_))
        ));
        assert!(
            outcome(
                false,
                None,
                false,
                false,
                None,
                Some("no longer at risk".into()),
                String::new()
            )
            .is_err(),
            "an end reason is one of the contract's"
        );
    }
}
