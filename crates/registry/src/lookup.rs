//! What a lookup or a chronology shows, and to whom: the plans a setting
//! needs, the category only to those who act on it, every lookup audited
//! before its answer, and a child whose history could not be fully applied
//! never answered "no plan".

use contract::common::v1::{CareSetting, Organisation};
use contract::records::{AnyEvent, Records, RegistryEvent};
use contract::registry::v1 as wire;
use domain::ChildId;
use eventlog::ExpectedVersion;
use service_core::audit;
use service_core::consistency;
use service_core::follow::Record;
use service_core::policy::{self, Parties};
use service_core::reject::{from_log, invalid};
use service_core::validate::{self, Caller};
use tonic::Status;

use crate::chronology;
use crate::projection::{self, PlanRecord};
use crate::service::PlanRegistry;

/// How many of its own events the registry reads at a time for a chronology.
const CHRONOLOGY_READ_CHUNK: usize = 1000;

/// The RPCs, as the access policy (`service_core::policy`) names them.
pub(crate) mod rpc {
    pub const LOOKUP: &str = "safeguard.registry.v1.PlanRegistry/LookupChild";
    pub const CHRONOLOGY: &str = "safeguard.registry.v1.PlanRegistry/ChildChronology";
    pub const ACCESSES: &str = "safeguard.registry.v1.PlanRegistry/ListAccesses";
}

/// The stream of a child's lookups: `child-<NHS number>`, or
/// `child-<council>:<local id>`.
pub(crate) fn child_stream(child: &ChildId) -> String {
    format!("child-{}", stream_key(child))
}

/// The stream of a local identifier's link to an NHS number (at most one
/// event).
pub(crate) fn link_stream(child: &ChildId) -> String {
    format!("link-{}", stream_key(child))
}

fn stream_key(child: &ChildId) -> String {
    match child {
        ChildId::Nhs(number) => number.to_string(),
        ChildId::Local(local) => format!("{}:{}", local.council(), local.value()),
    }
}

impl PlanRegistry {
    /// A lookup: the plans shown to this caller, audited before the
    /// answer; a child whose history is not whole fails closed.
    pub(crate) async fn look_up(
        &self,
        caller: Caller,
        request: wire::LookupChildRequest,
    ) -> Result<wire::LookupChildResponse, Status> {
        let setting = validate::optional_enum::<CareSetting>("care_setting", request.care_setting)?;
        let view = validate::optional_enum::<wire::LookupView>("view", request.view)?;
        let caller = caller.in_setting(setting);
        audit::allow(&self.inner.log, rpc::LOOKUP, &caller, &Parties::default()).await?;
        self.inner.lookup_rate.take(&caller)?;
        let asked = validate::child_id(
            "nhs_number",
            request.nhs_number.as_ref(),
            "local_id",
            request.local_id.as_ref(),
        )?;
        let purpose = validate::required_text("purpose", &request.purpose)?;
        let as_of = validate::optional_date("as_of", request.as_of.as_ref())?;
        if let Err(status) = policy::allow_lookup_options(&caller, request.silent, as_of.is_some())
        {
            return Err(audit::refused(&self.inner.log, &caller, rpc::LOOKUP, status).await);
        }
        self.reflect(request.min_token.as_ref()).await?;
        let today = self.inner.clock.today();
        let (child, plans, owners, refusal) = {
            let state = self.read()?;
            let child = state.resolve(asked.clone());
            let mut plans = Vec::new();
            let mut owners: Vec<Organisation> = Vec::new();
            // Fail closed: a child whose history is not whole is never
            // answered "no plan"; the owners are told of the lookup.
            let refusal = state.unsure(&child).map(|unsure| {
                owners.extend(unsure.owners.iter().cloned());
                Self::cannot_show(&state, unsure)
            });
            for record in state.plans_of(&child) {
                let shown = match as_of {
                    Some(date) => record.aggregate.in_force_on(date),
                    None => record
                        .aggregate
                        .shown_on(today, self.inner.visibility_months),
                };
                if !shown {
                    continue;
                }
                let local_authority = state.local_authority(record);
                if !owners
                    .iter()
                    .any(|owner| owner.ods_code == local_authority.ods_code)
                {
                    owners.push(local_authority.clone());
                }
                plans.push(self.plan_view(record, &caller, &state));
            }
            (child, plans, owners, refusal)
        };
        // Other callers' names go only to the council that owns the child's
        // record; to everyone else, who looked is an organisation and a role.
        let owner = owners
            .iter()
            .any(|owner| owner.ods_code == caller.organisation.as_str());
        // Every lookup is itself an event; the notification service tells
        // the owners unless it is silent.
        let (nhs_number, local_id) = validate::to_wire_child(&asked);
        let looked_up = wire::ChildLookedUp {
            nhs_number,
            local_id,
            caller: Some(caller.to_wire()),
            purpose,
            silent: request.silent,
            owners,
            as_of: as_of.map(validate::to_wire_date),
        };
        let token = self
            .append(
                child_stream(&asked),
                ExpectedVersion::Any,
                &looked_up,
                &caller,
                None,
            )
            .await?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let recent_accesses = match view {
            wire::LookupView::Plans => Vec::new(),
            wire::LookupView::Unspecified | wire::LookupView::Full => {
                self.read()?.accesses_of(&child)
            }
        };
        let recent_accesses = recent_accesses
            .into_iter()
            .map(|mut access| {
                let own = access
                    .organisation
                    .as_ref()
                    .is_some_and(|o| o.ods_code == caller.organisation.as_str());
                if !owner && !own {
                    access.user_display_name.clear();
                }
                access
            })
            .collect();
        let (nhs_number, local_id) = validate::to_wire_child(&child);
        Ok(wire::LookupChildResponse {
            nhs_number,
            local_id,
            plans,
            recent_accesses,
            token: Some(token),
        })
    }

    /// A child's chronology, for the local authority.
    pub(crate) async fn chronology(
        &self,
        caller: Caller,
        request: wire::ChildChronologyRequest,
    ) -> Result<wire::ChildChronologyResponse, Status> {
        audit::allow_role(&self.inner.log, rpc::CHRONOLOGY, &caller).await?;
        let child = validate::child_id(
            "nhs_number",
            request.nhs_number.as_ref(),
            "local_id",
            request.local_id.as_ref(),
        )?;
        self.reflect(request.min_token.as_ref()).await?;
        for watermark in self.inner.sources.values() {
            watermark
                .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
                .await?;
        }
        let parties = self.parties_of(&child)?;
        audit::allow(&self.inner.log, rpc::CHRONOLOGY, &caller, &parties).await?;
        let child = self.read()?.resolve(child);
        let entries = self.chronology_of(&child)?;
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::CHRONOLOGY,
                &request.purpose,
                validate::to_wire_child(&child).0,
                parties.owners,
                ["chronology".to_owned()],
            ),
        )
        .await?;
        Ok(wire::ChildChronologyResponse { entries })
    }

    /// Who read the records of a local authority's children over a period.
    pub(crate) async fn accesses(
        &self,
        caller: Caller,
        request: wire::ListAccessesRequest,
    ) -> Result<wire::ListAccessesResponse, Status> {
        let local_authority = domain::OdsCode::parse(&request.local_authority_ods_code)
            .map_err(|error| invalid("local_authority_ods_code", error))?;
        audit::allow(
            &self.inner.log,
            rpc::ACCESSES,
            &caller,
            &Parties::owned_by(local_authority.as_str()),
        )
        .await?;
        let micros = |field: &str, stamp: Option<&prost_types::Timestamp>, unset: i64| {
            stamp.map_or(Ok(unset), |stamp| {
                validate::timestamp_or_now(field, Some(stamp))
                    .map(|stamp| projection::micros(&stamp))
            })
        };
        let from = micros("from", request.from.as_ref(), i64::MIN)?;
        let to = micros("to", request.to.as_ref(), i64::MAX)?;
        if from >= to {
            return Err(invalid("to", "is not after from"));
        }
        self.reflect(request.min_token.as_ref()).await?;
        for watermark in self.inner.sources.values() {
            watermark
                .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
                .await?;
        }
        let accesses = self.read()?.reads_of(local_authority.as_str(), from, to);
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::ACCESSES,
                &request.purpose,
                [],
                [local_authority.to_string()],
                [format!("{} reads", accesses.len())],
            ),
        )
        .await?;
        Ok(wire::ListAccessesResponse { accesses })
    }

    /// The refusal for a child whose history could not be fully applied:
    /// what cannot be shown, and whom to call instead.
    fn cannot_show(state: &projection::Projection, unsure: &projection::Unsure) -> Status {
        let call = unsure
            .owners
            .iter()
            .map(|owner| {
                let contacts = state.owner(owner);
                let mut numbers = Vec::new();
                if !contacts.office_hours_phone.is_empty() {
                    numbers.push(format!("office hours {}", contacts.office_hours_phone));
                }
                if !contacts.out_of_hours_phone.is_empty() {
                    numbers.push(format!("out of hours {}", contacts.out_of_hours_phone));
                }
                match numbers.is_empty() {
                    true => owner.name.clone(),
                    false => format!("{} ({})", owner.name, numbers.join(", ")),
                }
            })
            .collect::<Vec<_>>();
        let whom = match call.is_empty() {
            true => "call the local authority's children's social care".to_owned(),
            false => format!("call {}", call.join(" or ")),
        };
        Status::failed_precondition(format!(
            "nhs_number: this child's record cannot be shown: part of its history \
             ({}@{}) could not be applied, so whether the child is on a plan is not \
             known; {whom}",
            unsure.producer, unsure.position
        ))
    }

    /// Whom a child's record concerns: the councils of their plans,
    /// referrals and conferences, and police in a joint enquiry about them.
    fn parties_of(&self, child: &ChildId) -> Result<Parties, Status> {
        let state = self.read()?;
        let known = state.chronology.parties_of(child);
        let mut owners = known.owners;
        owners.extend(
            state
                .plans_of(child)
                .map(|record| state.local_authority(record).ods_code.clone()),
        );
        Ok(Parties {
            owners: owners.into_iter().collect(),
            joint_enquiry: known.joint_enquiry.into_iter().collect(),
            ..Parties::default()
        })
    }

    pub(crate) fn plan_view(
        &self,
        record: &PlanRecord,
        caller: &Caller,
        state: &projection::Projection,
    ) -> wire::Plan {
        let mut view = state.view(record);
        if !policy::sees_category(caller) {
            view.category = 0;
        }
        if let Some((end_date, _)) = record.aggregate.end {
            view.visible_until = Some(validate::to_wire_date(
                end_date.add_months(self.inner.visibility_months),
            ));
        }
        view
    }

    /// A child's chronology: the other services' events the projection
    /// holds (on a replica, the primary's plan events too), and this pod's
    /// own read from its log (the streams of the child's plans and of the
    /// lookups of the child), in the order things happened.
    fn chronology_of(&self, child: &ChildId) -> Result<Vec<wire::ChronologyEntry>, Status> {
        let (mut entries, streams) = {
            let state = self.read()?;
            if let Some(unsure) = state.unsure(child) {
                return Err(Self::cannot_show(&state, unsure));
            }
            let mut entries = state.chronology.of(child);
            let mut streams = Vec::new();
            for record in state.plans_of(child) {
                entries.extend_from_slice(state.chronology.of_plan(&record.id));
                streams.push(format!("plan-{}", record.id));
            }
            streams.push(child_stream(child));
            // What was held under local identifiers linked to the number.
            if let ChildId::Nhs(number) = child {
                for local in state.local_ids_of(number) {
                    let local = ChildId::Local(local.clone());
                    streams.push(child_stream(&local));
                    streams.push(link_stream(&local));
                }
            }
            (entries, streams)
        };
        let state = self.read()?;
        for stream in streams {
            let mut from_version = 0;
            loop {
                let events = self
                    .inner
                    .log
                    .read_stream(&stream, from_version, CHRONOLOGY_READ_CHUNK)
                    .map_err(from_log)?;
                for event in &events {
                    let envelope = event.envelope().map_err(from_log)?;
                    // A record of its own that does not decode was
                    // quarantined when the projection met it (and is listed
                    // by GetStatus); it names no child anyone can read.
                    let Ok(Some(decoded)) = RegistryEvent::decode(&envelope) else {
                        continue;
                    };
                    let record = Record {
                        producer: &self.inner.producer,
                        position: event.position(),
                        envelope: &envelope,
                    };
                    if let Some((_, entry)) =
                        state.chronology.entry(record, &AnyEvent::Registry(decoded))
                    {
                        entries.push(entry);
                    }
                }
                if events.len() < CHRONOLOGY_READ_CHUNK {
                    break;
                }
                from_version += events.len() as u64;
            }
        }
        chronology::sort(&mut entries);
        Ok(entries)
    }
}
