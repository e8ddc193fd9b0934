//! `lookup`, `chronology`, `subscribe` and `acknowledge`: what partners ask
//! the backbone, and what it tells them.

use contract::notification::v1 as note;
use contract::notification::v1::notification_client::NotificationClient;
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;

use super::{Common, local_id, nhs, optional_date, optional_nhs, show_time, spoken, status, token};
use crate::client::to_json;

/// `safeguard lookup`: is this child on a plan, and whom do I call?
#[derive(Debug, clap::Args)]
pub struct Lookup {
    #[arg(long, required_unless_present = "local_id")]
    nhs: Option<String>,
    /// ODS:VALUE, for a child without an NHS number: the council's local
    /// identifier.
    #[arg(long, conflicts_with = "nhs")]
    local_id: Option<String>,
    /// Do not notify the owning local authority.
    #[arg(long)]
    silent: bool,
    /// Answer as of this date (YYYY-MM-DD), from history.
    #[arg(long)]
    as_of: Option<String>,
    /// Answer only once these writes show: a write's printed token.
    #[arg(long)]
    after: Option<String>,
    #[command(flatten)]
    common: Common,
}

impl Lookup {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::LookupChildRequest {
            local_id: local_id("--local-id", self.local_id.as_ref())?,
            nhs_number: optional_nhs(self.nhs.as_ref()),
            purpose: self.common.purpose.clone(),
            silent: self.silent,
            as_of: optional_date("--as-of", self.as_of.as_ref())?,
            min_token: token("--after", self.after.as_ref())?,
            care_setting: self.common.identity.care_setting()?.into(),
            view: wire::LookupView::Full.into(),
        };
        let response = PlanRegistryClient::new(self.common.channel().await?)
            .lookup_child(request)
            .await
            .map_err(status)?
            .into_inner();
        let child = self.nhs.or(self.local_id).unwrap_or_default();
        self.common.print(&response, |response| {
            let mut lines = Vec::new();
            if response.plans.is_empty() {
                lines.push(format!(
                    "child {child}: no child protection plan, looked-after status or unborn plan on record"
                ));
            }
            lines.extend(response.plans.iter().map(super::plan::describe));
            lines.push(format!("last {} accesses:", response.recent_accesses.len()));
            for access in &response.recent_accesses {
                let organisation = access.organisation.clone().unwrap_or_default();
                lines.push(format!(
                    "  {} {} ({}) — {}",
                    show_time(access.at.as_ref()),
                    organisation.name,
                    spoken(access.care_setting().as_str_name(), "CARE_SETTING_"),
                    access.purpose
                ));
            }
            lines.join("\n")
        })
    }
}

/// `safeguard chronology`: every event about a child, in order.
#[derive(Debug, clap::Args)]
pub struct Chronology {
    #[arg(long, required_unless_present = "local_id")]
    nhs: Option<String>,
    /// ODS:VALUE, for a child without an NHS number.
    #[arg(long, conflicts_with = "nhs")]
    local_id: Option<String>,
    #[arg(long)]
    after: Option<String>,
    #[command(flatten)]
    common: Common,
}

impl Chronology {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::ChildChronologyRequest {
            local_id: local_id("--local-id", self.local_id.as_ref())?,
            nhs_number: optional_nhs(self.nhs.as_ref()),
            min_token: token("--after", self.after.as_ref())?,
            purpose: self.common.purpose.clone(),
        };
        let mut client = PlanRegistryClient::new(self.common.channel().await?);
        self.common
            .answer(client.child_chronology(request).await, |response| {
                response
                    .entries
                    .iter()
                    .map(|entry| {
                        format!(
                            "{}  {:<22} {}  [{}]",
                            show_time(entry.occurred_at.as_ref()),
                            entry.log,
                            entry.summary,
                            entry.actor
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }
}

/// `safeguard accesses`: who read the records of the caller's local
/// authority's children over a period, and why.
#[derive(Debug, clap::Args)]
pub struct Accesses {
    /// The local authority (the caller's own).
    #[arg(long = "local-authority")]
    local_authority: String,
    /// From this time (YYYY-MM-DDTHH:MM, UTC), inclusive; the beginning if not given.
    #[arg(long)]
    from: Option<String>,
    /// To this time (YYYY-MM-DDTHH:MM, UTC), exclusive; now if not given.
    #[arg(long)]
    to: Option<String>,
    /// Answer only once these writes show: a write's printed token.
    #[arg(long)]
    after: Option<String>,
    #[command(flatten)]
    common: Common,
}

impl Accesses {
    pub async fn run(self) -> Result<(), String> {
        let request = wire::ListAccessesRequest {
            local_authority_ods_code: self.local_authority,
            from: self
                .from
                .as_deref()
                .map(|value| super::time("--from", value))
                .transpose()?,
            to: self
                .to
                .as_deref()
                .map(|value| super::time("--to", value))
                .transpose()?,
            purpose: self.common.purpose.clone(),
            min_token: token("--after", self.after.as_ref())?,
        };
        let mut client = PlanRegistryClient::new(self.common.channel().await?);
        self.common
            .answer(client.list_accesses(request).await, |response| {
                if response.accesses.is_empty() {
                    return "no one read these children's records in the period".into();
                }
                response
                    .accesses
                    .iter()
                    .map(|access| {
                        let reader = access.reader.clone().unwrap_or_default();
                        let organisation = reader.organisation.clone().unwrap_or_default();
                        let children = access
                            .children
                            .iter()
                            .map(|child| child.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!(
                            "{}  {} ({}, {}) {} for {:?}: {}",
                            show_time(access.at.as_ref()),
                            reader.display_name,
                            organisation.ods_code,
                            spoken(reader.role().as_str_name(), "ROLE_"),
                            access.rpc.rsplit('/').next().unwrap_or_default(),
                            access.purpose,
                            children
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }
}

/// `safeguard subscribe`: the caller's organisation's notifications, as
/// they come, until interrupted.
#[derive(Debug, clap::Args)]
pub struct Subscribe {
    /// The name the acknowledgements are kept under.
    #[arg(long, default_value = "cli")]
    subscriber: String,
    /// Resume after this sequence number (0: after the last acknowledged).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Only these kinds, e.g. access, plan-started; repeat for each.
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// Only about this child.
    #[arg(long)]
    nhs: Option<String>,
    /// Stop after this many notifications.
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    common: Common,
}

impl Subscribe {
    pub async fn run(self) -> Result<(), String> {
        let request = note::SubscribeRequest {
            subscriber: self.subscriber,
            recipient_ods_code: self.common.identity.organisation.clone(),
            purpose: self.common.purpose.clone(),
            kinds: self
                .kinds
                .iter()
                .map(|kind| {
                    super::choice(
                        "--kind",
                        kind,
                        "NOTIFICATION_KIND_",
                        note::NotificationKind::from_str_name,
                    )
                })
                .collect::<Result<_, _>>()?,
            child_nhs_number: self.nhs.as_deref().and_then(nhs),
            after_sequence: self.after,
        };
        let mut stream = NotificationClient::new(self.common.channel().await?)
            .subscribe(request)
            .await
            .map_err(status)?
            .into_inner();
        let mut received = 0;
        while self.count.is_none_or(|count| received < count) {
            let Some(message) = stream.message().await.map_err(status)? else {
                break;
            };
            received += 1;
            if self.common.json {
                println!("{}", to_json(&message)?);
            } else {
                println!(
                    "#{} {} {}",
                    message.sequence,
                    spoken(message.kind().as_str_name(), "NOTIFICATION_KIND_"),
                    message.summary
                );
            }
        }
        Ok(())
    }
}

/// `safeguard acknowledge`: everything up to a sequence number is handled.
#[derive(Debug, clap::Args)]
pub struct Acknowledge {
    #[arg(long, default_value = "cli")]
    subscriber: String,
    #[arg(long)]
    sequence: u64,
    #[command(flatten)]
    common: Common,
}

impl Acknowledge {
    pub async fn run(self) -> Result<(), String> {
        let request = note::AcknowledgeRequest {
            subscriber: self.subscriber.clone(),
            recipient_ods_code: self.common.identity.organisation.clone(),
            sequence: self.sequence,
        };
        let response = NotificationClient::new(self.common.channel().await?)
            .acknowledge(request)
            .await
            .map_err(status)?
            .into_inner();
        let subscriber = self.subscriber;
        let sequence = self.sequence;
        self.common.print(&response, |_| {
            format!("{subscriber}: handled up to #{sequence}")
        })
    }
}
