//! `safeguard plan …`: plans recorded directly in the registry (transfer
//! in, looked after, unborn), births linked, plans ended, the local
//! authority's contact numbers, its caseload loaded at go-live, and its
//! children held under a local identifier matched to NHS numbers.

use contract::common::v1::OrganisationKind;
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;

use super::{Common, category, choice, contact, date, nhs, organisation, show_token, spoken};
use crate::client::show_date;

#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// A child protection plan that moved here from another local authority.
    TransferIn {
        #[arg(long)]
        nhs: String,
        #[arg(long)]
        category: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        start: String,
        /// ODS[:NAME] of the local authority that now owns the plan.
        #[arg(long)]
        local_authority: String,
        /// ODS[:NAME] of the one it came from.
        #[arg(long)]
        previous_local_authority: String,
        /// NAME[:PHONE[:EMAIL]].
        #[arg(long)]
        social_worker: Option<String>,
        /// ODS[:NAME] of the child's registered GP practice (the mother's,
        /// for an unborn plan): it is told, as a conference's invitees are.
        #[arg(long)]
        gp_practice: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A child looked after by the local authority.
    LookedAfter {
        #[arg(long)]
        nhs: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        local_authority: String,
        #[arg(long)]
        social_worker: Option<String>,
        /// ODS[:NAME] of the child's registered GP practice (the mother's,
        /// for an unborn plan): it is told, as a conference's invitees are.
        #[arg(long)]
        gp_practice: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A pre-birth plan, on the mother's NHS number.
    Unborn {
        #[arg(long)]
        mother_nhs: String,
        /// Expected date of delivery, YYYY-MM-DD.
        #[arg(long)]
        expected: String,
        #[arg(long)]
        category: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        local_authority: String,
        #[arg(long)]
        social_worker: Option<String>,
        /// ODS[:NAME] of the child's registered GP practice (the mother's,
        /// for an unborn plan): it is told, as a conference's invitees are.
        #[arg(long)]
        gp_practice: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The baby of an unborn plan is born: the plan follows the baby.
    LinkBirth {
        #[arg(long)]
        plan: String,
        #[arg(long)]
        baby_nhs: String,
        #[arg(long)]
        born_on: String,
        #[command(flatten)]
        common: Common,
    },
    /// Ends a plan.
    End {
        #[arg(long)]
        plan: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        end_date: String,
        /// no-longer-at-risk, stepped-down-to-child-in-need, transferred-out,
        /// turned-eighteen, left-the-country, died, born or other.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Loads the council's caseload at go-live from a CSV file (columns in
    /// docs/import.md): every row is checked first, and a file with any
    /// row refused writes nothing; loading it again writes nothing.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// ODS[:NAME]: the caller's own local authority.
        #[arg(long)]
        local_authority: String,
        #[command(flatten)]
        common: Common,
    },
    /// Links an NHS number to a child held under the council's local
    /// identifier.
    LinkNhs {
        /// The council's local identifier for the child.
        #[arg(long)]
        local_id: String,
        #[arg(long)]
        nhs: String,
        /// ODS code of the council that issued the local identifier.
        #[arg(long)]
        local_authority: String,
        #[command(flatten)]
        common: Common,
    },
    /// The council's children on plans not yet matched to an NHS number,
    /// and its match rate.
    Unmatched {
        /// ODS code of the caller's own local authority.
        #[arg(long)]
        local_authority: String,
        #[command(flatten)]
        common: Common,
    },
    /// The numbers a lookup shows for the caller's local authority.
    Contacts {
        /// ODS[:NAME]: the caller's own local authority.
        #[arg(long)]
        local_authority: String,
        #[arg(long)]
        office_hours: String,
        #[arg(long)]
        out_of_hours: String,
        #[command(flatten)]
        common: Common,
    },
}

fn local_authority(value: &str) -> Option<contract::common::v1::Organisation> {
    Some(organisation(value, OrganisationKind::LocalAuthority))
}

fn practice(value: &str) -> contract::common::v1::Organisation {
    organisation(value, OrganisationKind::GpPractice)
}

impl PlanCommand {
    pub async fn run(self) -> Result<(), String> {
        match self {
            PlanCommand::TransferIn {
                nhs: child,
                category: value,
                start,
                local_authority: owner,
                previous_local_authority,
                social_worker,
                gp_practice,
                common,
            } => {
                let request = wire::RecordTransferInRequest {
                    gp_practice: gp_practice.as_deref().map(practice),
                    child_local_id: None,
                    child_nhs_number: nhs(&child),
                    category: category("--category", &value)?,
                    start_date: Some(date("--start", &start)?),
                    local_authority: local_authority(&owner),
                    previous_local_authority: local_authority(&previous_local_authority),
                    lead_social_worker: social_worker.as_deref().map(contact),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                written(&common, client.record_transfer_in(request).await)
            }
            PlanCommand::LookedAfter {
                nhs: child,
                start,
                local_authority: owner,
                social_worker,
                gp_practice,
                common,
            } => {
                let request = wire::RecordLookedAfterRequest {
                    gp_practice: gp_practice.as_deref().map(practice),
                    child_local_id: None,
                    child_nhs_number: nhs(&child),
                    start_date: Some(date("--start", &start)?),
                    local_authority: local_authority(&owner),
                    lead_social_worker: social_worker.as_deref().map(contact),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                written(&common, client.record_looked_after(request).await)
            }
            PlanCommand::Unborn {
                mother_nhs,
                expected,
                category: value,
                start,
                local_authority: owner,
                social_worker,
                gp_practice,
                common,
            } => {
                let request = wire::RecordUnbornPlanRequest {
                    gp_practice: gp_practice.as_deref().map(practice),
                    mother_nhs_number: nhs(&mother_nhs),
                    expected_date_of_delivery: Some(date("--expected", &expected)?),
                    category: category("--category", &value)?,
                    start_date: Some(date("--start", &start)?),
                    local_authority: local_authority(&owner),
                    lead_social_worker: social_worker.as_deref().map(contact),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                written(&common, client.record_unborn_plan(request).await)
            }
            PlanCommand::LinkBirth {
                plan,
                baby_nhs,
                born_on,
                common,
            } => {
                let request = wire::LinkBirthRequest {
                    plan_id: plan,
                    baby_nhs_number: nhs(&baby_nhs),
                    born_on: Some(date("--born-on", &born_on)?),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                written(&common, client.link_birth(request).await)
            }
            PlanCommand::End {
                plan,
                end_date,
                reason,
                common,
            } => {
                let request = wire::EndPlanRequest {
                    plan_id: plan,
                    end_date: Some(date("--end-date", &end_date)?),
                    reason: choice(
                        "--reason",
                        &reason,
                        "PLAN_END_REASON_",
                        contract::common::v1::PlanEndReason::from_str_name,
                    )?,
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                written(&common, client.end_plan(request).await)
            }
            PlanCommand::Import {
                file,
                local_authority: owner,
                common,
            } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|error| format!("{}: {error}", file.display()))?;
                let chunks: Vec<wire::ImportCaseloadChunk> = chunks_of(&text, IMPORT_CHUNK_BYTES)
                    .into_iter()
                    .enumerate()
                    .map(|(index, csv)| wire::ImportCaseloadChunk {
                        local_authority: if index == 0 {
                            local_authority(&owner)
                        } else {
                            None
                        },
                        csv: csv.to_owned(),
                    })
                    .collect();
                let mut client = PlanRegistryClient::new(common.channel().await?);
                let answer = client.import_caseload(tokio_stream::iter(chunks)).await;
                let written = answer.as_ref().is_ok_and(|report| report.get_ref().written);
                common.answer(answer, describe_import)?;
                if written {
                    Ok(())
                } else {
                    Err(
                        "nothing was written: correct the rows refused and load the file again"
                            .into(),
                    )
                }
            }
            PlanCommand::LinkNhs {
                local_id,
                nhs: number,
                local_authority: owner,
                common,
            } => {
                let request = wire::LinkNhsNumberRequest {
                    local_id: Some(contract::common::v1::LocalChildId {
                        local_authority_ods_code: owner,
                        value: local_id,
                    }),
                    nhs_number: nhs(&number),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                common.answer(client.link_nhs_number(request).await, |response| {
                    format!("linked\ntoken: {}", show_token(response.token.as_ref()))
                })
            }
            PlanCommand::Unmatched {
                local_authority: owner,
                common,
            } => {
                let request = wire::ListUnmatchedChildrenRequest {
                    local_authority_ods_code: owner,
                    min_token: None,
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                common.answer(client.list_unmatched_children(request).await, |response| {
                    let mut text = format!(
                        "{} of {} children on plans matched to an NHS number ({:.1}%)",
                        response.matched, response.children_on_plans, response.match_rate_percent
                    );
                    for child in &response.children {
                        let id = child.local_id.clone().unwrap_or_default();
                        text += &format!("\n{} {}", id.value, child.child_name);
                        for plan in &child.plans {
                            text += &format!("\n  {}", describe(plan));
                        }
                    }
                    text
                })
            }
            PlanCommand::Contacts {
                local_authority: owner,
                office_hours,
                out_of_hours,
                common,
            } => {
                let request = wire::SetLocalAuthorityContactsRequest {
                    contacts: Some(wire::LocalAuthorityContacts {
                        local_authority: local_authority(&owner),
                        office_hours_phone: office_hours,
                        out_of_hours_phone: out_of_hours,
                        missing_numbers: String::new(),
                    }),
                };
                let mut client = PlanRegistryClient::new(common.channel().await?);
                common.answer(
                    client.set_local_authority_contacts(request).await,
                    |response| {
                        format!(
                            "contact numbers set\ntoken: {}",
                            show_token(response.token.as_ref())
                        )
                    },
                )
            }
        }
    }
}

/// How much of a caseload file goes in one message: within the limit on a
/// free-text field.
const IMPORT_CHUNK_BYTES: usize = 8_000;

/// `text` in pieces of at most `size` bytes, each ending on a character.
fn chunks_of(text: &str, size: usize) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, after) = rest.split_at(end);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

fn describe_import(report: &wire::ImportCaseloadReport) -> String {
    let mut text = format!(
        "{} rows: {} imported, {} already imported, {} refused{}\n\
         children on plans or looked after: {}, with an NHS number: {} ({:.1}%)",
        report.rows,
        report.imported,
        report.already_imported,
        report.refused.len(),
        if report.written {
            ""
        } else {
            "; nothing written"
        },
        report.children,
        report.with_nhs_number,
        report.match_rate_percent
    );
    for refused in &report.refused {
        text += &format!(
            "\nline {}: {}{}",
            refused.line,
            if refused.column.is_empty() {
                String::new()
            } else {
                format!("{}: ", refused.column)
            },
            refused.reason
        );
    }
    if report.token.is_some() {
        text += &format!("\ntoken: {}", show_token(report.token.as_ref()));
    }
    text
}

fn written(
    common: &Common,
    answer: Result<tonic::Response<wire::PlanResponse>, tonic::Status>,
) -> Result<(), String> {
    common.answer(answer, |response| {
        format!(
            "{}\ntoken: {}",
            response.plan.as_ref().map(describe).unwrap_or_default(),
            show_token(response.token.as_ref())
        )
    })
}

/// A plan as the person who rings about it needs it.
pub fn describe(plan: &wire::Plan) -> String {
    let owner = plan.owner.clone().unwrap_or_default();
    let la = owner.local_authority.unwrap_or_default();
    let mut text = format!(
        "plan {}: {} for {} since {}",
        plan.plan_id,
        spoken(plan.r#type().as_str_name(), "PLAN_TYPE_"),
        plan.child_nhs_number
            .as_ref()
            .map(|number| number.value.as_str())
            .unwrap_or("-"),
        show_date(plan.start_date.as_ref()),
    );
    if plan.category != 0 {
        text += &format!(
            " ({})",
            spoken(plan.category().as_str_name(), "ABUSE_CATEGORY_")
        );
    }
    if plan.end_date.is_some() {
        text += &format!(
            ", ended {} ({})",
            show_date(plan.end_date.as_ref()),
            spoken(plan.end_reason().as_str_name(), "PLAN_END_REASON_")
        );
    }
    if plan.expected_date_of_delivery.is_some() {
        text += &format!(
            ", baby expected {}",
            show_date(plan.expected_date_of_delivery.as_ref())
        );
    }
    text += &format!(
        "\n  call {} ({}): {} office hours, {} out of hours",
        la.name,
        la.ods_code,
        if owner.office_hours_phone.is_empty() {
            "-"
        } else {
            &owner.office_hours_phone
        },
        if owner.out_of_hours_phone.is_empty() {
            "-"
        } else {
            &owner.out_of_hours_phone
        }
    );
    if let Some(worker) = &plan.lead_social_worker {
        text += &format!("\n  lead social worker: {} {}", worker.name, worker.phone);
    }
    text
}
