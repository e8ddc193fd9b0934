//! The `PlanRegistry` gRPC service: its state, writing plans (on the
//! primary; a replica forwards them, `forward`), and the RPCs, whose reads
//! are answered by `lookup`.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;

use contract::common::v1::{ConsistencyToken, Organisation};
use contract::records::RegistryEvent;
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_server::{self, PlanRegistryServer};
use domain::codes::PlanType;
use eventlog::{EventId, EventLog, ExpectedVersion};
use prost::{Message, Name};
use service_core::audit;
use service_core::limits;
use service_core::policy::Parties;
use service_core::reject::{from_domain, from_log, internal, invalid, not_found};
use service_core::validate::{self, Caller};
use service_core::{Watermark, consistency};
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::convert::{self, started, wire_nhs};
use crate::forward::{Primary, forward_on_replica};
use crate::import;
use crate::projection::{self, PlanRecord};

#[derive(Debug, Clone)]
pub struct PlanRegistry {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// This pod's producer name: `plan-registry` for the primary.
    pub producer: String,
    pub log: EventLog,
    pub projection: Shared,
    pub watermark: Watermark,
    /// How far the projection has applied each other registry pod's log.
    pub peers: Vec<Watermark>,
    /// Woken whenever another pod's event is applied.
    pub peer_applied: Arc<Notify>,
    /// How far the scheduler's outcomes are plans the projection shows.
    pub plan_rule: Watermark,
    /// How far the chronology has read each other producer.
    pub sources: HashMap<&'static str, Watermark>,
    pub visibility_months: u32,
    /// How often each person may look children up.
    pub lookup_rate: crate::rate::LookupRate,
    /// What day it is, for which plans a lookup shows.
    pub clock: service_core::clock::Clock,
    pub quarantine: service_core::Quarantine,
    /// Set on a read replica: where its plan writes go.
    pub primary: Option<Primary>,
}

impl PlanRegistry {
    pub(crate) fn new(inner: Inner) -> Self {
        PlanRegistry {
            inner: Arc::new(inner),
        }
    }

    /// This pod's producer name, under which its log is served and published.
    pub fn producer(&self) -> &str {
        &self.inner.producer
    }

    /// Whether this pod is a read replica, forwarding plan writes.
    pub fn is_replica(&self) -> bool {
        self.inner.primary.is_some()
    }

    /// On a read replica, the primary its plan writes go to.
    pub(crate) fn primary(&self) -> Option<Primary> {
        self.inner.primary.clone()
    }

    pub fn into_server(self) -> PlanRegistryServer<Self> {
        PlanRegistryServer::new(self).max_decoding_message_size(limits::MAX_REQUEST_BYTES)
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    pub(crate) fn health(&self) -> &service_core::Health {
        self.inner.quarantine.health()
    }

    pub(crate) fn quarantine(&self) -> &service_core::Quarantine {
        &self.inner.quarantine
    }

    /// Its health, for the server to report NOT_SERVING once its rule and
    /// followers stop for good, and what it quarantined.
    pub fn watched(&self) -> service_core::health::Watched {
        service_core::health::Watched::new::<PlanRegistryServer<Self>>(
            self.health().clone(),
            self.producer(),
        )
    }

    pub(crate) fn read(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, projection::Projection>, Status> {
        self.inner
            .projection
            .read()
            .map_err(|error| internal("reading the registry", error))
    }

    /// Appends what `caller` did, as occurring on `effective` when it took
    /// effect on a day of its own (a plan's start or end, a birth), so a
    /// chronology puts it where it happened.
    pub(crate) async fn append<M: Message + Name>(
        &self,
        stream: String,
        expected: ExpectedVersion,
        payload: &M,
        caller: &Caller,
        effective: Option<domain::date::Date>,
    ) -> Result<ConsistencyToken, Status> {
        let event = service_core::event::by_person(payload, caller);
        self.append_new(stream, expected, event, effective).await
    }

    /// Appends an event already made (one whose id derives from what it
    /// is, say, so a retry writes nothing); as [`PlanRegistry::append`].
    pub(crate) async fn append_new(
        &self,
        stream: String,
        expected: ExpectedVersion,
        event: eventlog::NewEvent,
        effective: Option<domain::date::Date>,
    ) -> Result<ConsistencyToken, Status> {
        let event = match effective {
            Some(day) => eventlog::NewEvent {
                occurred_at: validate::noon_of(day),
                ..event
            },
            None => event,
        };
        let outcome = self
            .inner
            .log
            .append(&stream, expected, vec![event])
            .await
            .map_err(from_log)?;
        let token = self.inner.watermark.token(outcome.positions.end);
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await?;
        Ok(token)
    }

    /// Waits until the projection shows every position below `end` of the
    /// registry's own log.
    pub(crate) async fn applied(&self, end: u64) -> Result<(), Status> {
        let token = self.inner.watermark.token(end);
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await
    }

    /// Waits until the registry reflects the writes `token` names: its own,
    /// the other pods', and the scheduler's outcomes that make plans.
    pub(crate) async fn reflect(&self, token: Option<&ConsistencyToken>) -> Result<(), Status> {
        let inner = &self.inner;
        for watermark in [&inner.watermark, &inner.plan_rule]
            .into_iter()
            .chain(&inner.peers)
        {
            watermark.wait_for(token, consistency::DEFAULT_WAIT).await?;
        }
        Ok(())
    }

    /// Waits until the projection shows the plan event `id` from the
    /// primary: how a replica knows an outcome's plan has reached it.
    pub(crate) async fn shown(&self, id: EventId) {
        loop {
            let applied = self.inner.peer_applied.notified();
            tokio::pin!(applied);
            applied.as_mut().enable();
            match self.inner.projection.read() {
                Ok(state) if !state.shows(&id) => {}
                _ => return,
            }
            applied.await;
        }
    }

    pub(crate) async fn catch_up(&self) -> Result<(), Status> {
        let token = self.inner.watermark.token(self.inner.log.head());
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await
    }

    /// A plan started by `rpc`: only by the local authority it names.
    async fn start_plan(
        &self,
        rpc: &str,
        caller: &Caller,
        started: wire::PlanStarted,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        let owner = started
            .local_authority
            .as_ref()
            .map(|la| la.ods_code.clone())
            .unwrap_or_default();
        audit::allow(&self.inner.log, rpc, caller, &Parties::owned_by(owner)).await?;
        let plan_id = started.plan_id.clone();
        let token = self
            .append(
                format!("plan-{plan_id}"),
                ExpectedVersion::NoStream,
                &started,
                caller,
                validate::optional_date("start_date", started.start_date.as_ref())?,
            )
            .await?;
        self.plan_response(&plan_id, caller, token)
    }

    pub(crate) fn plan_response(
        &self,
        plan_id: &str,
        caller: &Caller,
        token: ConsistencyToken,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        let state = self.read()?;
        let record = state
            .plan(plan_id)
            .ok_or_else(|| not_found("plan", plan_id))?;
        Ok(Response::new(wire::PlanResponse {
            plan: Some(self.plan_view(record, caller, &state)),
            token: Some(token),
        }))
    }

    /// A plan as it stands, with its local authority and care team.
    pub(crate) fn record(
        &self,
        plan_id: &str,
    ) -> Result<(PlanRecord, Organisation, Vec<Organisation>), Status> {
        let state = self.read()?;
        let record = state
            .plan(plan_id)
            .ok_or_else(|| not_found("plan", plan_id))?;
        Ok((
            record.clone(),
            state.local_authority(record).clone(),
            state.care_team(record).to_vec(),
        ))
    }
}

/// The care team of a plan recorded without a conference: the child's
/// registered GP practice, when the council names it.
fn registered_practice(practice: Option<&Organisation>) -> Result<Vec<Organisation>, Status> {
    use contract::common::v1::OrganisationKind;
    let Some(practice) = practice else {
        return Ok(Vec::new());
    };
    let mut practice = validate::organisation("gp_practice", Some(practice))?;
    match OrganisationKind::try_from(practice.kind) {
        Ok(OrganisationKind::GpPractice) => {}
        Ok(OrganisationKind::Unspecified) => practice.kind = OrganisationKind::GpPractice.into(),
        _ => return Err(invalid("gp_practice.kind", "must be GP_PRACTICE")),
    }
    Ok(vec![practice])
}

/// The plan writes, as the access policy (`service_core::policy`) names them.
mod rpc {
    pub const TRANSFER_IN: &str = "safeguard.registry.v1.PlanRegistry/RecordTransferIn";
    pub const LOOKED_AFTER: &str = "safeguard.registry.v1.PlanRegistry/RecordLookedAfter";
    pub const UNBORN: &str = "safeguard.registry.v1.PlanRegistry/RecordUnbornPlan";
    pub const LINK_BIRTH: &str = "safeguard.registry.v1.PlanRegistry/LinkBirth";
    pub const END: &str = "safeguard.registry.v1.PlanRegistry/EndPlan";
    pub const LEAD: &str = "safeguard.registry.v1.PlanRegistry/AllocateLeadSocialWorker";
    pub const CONTACTS: &str = "safeguard.registry.v1.PlanRegistry/SetLocalAuthorityContacts";
    pub const LINK_NHS: &str = "safeguard.registry.v1.PlanRegistry/LinkNhsNumber";
    pub const UNMATCHED: &str = "safeguard.registry.v1.PlanRegistry/ListUnmatchedChildren";
    pub const IMPORT: &str = "safeguard.registry.v1.PlanRegistry/ImportCaseload";
}

#[tonic::async_trait]
impl plan_registry_server::PlanRegistry for PlanRegistry {
    async fn lookup_child(
        &self,
        request: Request<wire::LookupChildRequest>,
    ) -> Result<Response<wire::LookupChildResponse>, Status> {
        {
            let (caller, request) = limits::checked(request)?;
            self.look_up(caller, request)
        }
        .await
        .map(Response::new)
    }

    async fn child_chronology(
        &self,
        request: Request<wire::ChildChronologyRequest>,
    ) -> Result<Response<wire::ChildChronologyResponse>, Status> {
        {
            let (caller, request) = limits::checked(request)?;
            self.chronology(caller, request)
        }
        .await
        .map(Response::new)
    }

    async fn list_accesses(
        &self,
        request: Request<wire::ListAccessesRequest>,
    ) -> Result<Response<wire::ListAccessesResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        self.accesses(caller, request).await.map(Response::new)
    }

    async fn record_transfer_in(
        &self,
        request: Request<wire::RecordTransferInRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, record_transfer_in);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::TRANSFER_IN, &caller).await?;
        let child = validate::child_id(
            "child_nhs_number",
            request.child_nhs_number.as_ref(),
            "child_local_id",
            request.child_local_id.as_ref(),
        )?;
        validate::organisation(
            "previous_local_authority",
            request.previous_local_authority.as_ref(),
        )?;
        let started = started(
            PlanType::ChildProtection,
            child,
            request.category,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        let started = wire::PlanStarted {
            care_team: registered_practice(request.gp_practice.as_ref())?,
            ..started
        };
        self.start_plan(rpc::TRANSFER_IN, &caller, started).await
    }

    async fn record_looked_after(
        &self,
        request: Request<wire::RecordLookedAfterRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, record_looked_after);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::LOOKED_AFTER, &caller).await?;
        let child = validate::child_id(
            "child_nhs_number",
            request.child_nhs_number.as_ref(),
            "child_local_id",
            request.child_local_id.as_ref(),
        )?;
        let started = started(
            PlanType::LookedAfter,
            child,
            0,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        let started = wire::PlanStarted {
            care_team: registered_practice(request.gp_practice.as_ref())?,
            ..started
        };
        self.start_plan(rpc::LOOKED_AFTER, &caller, started).await
    }

    async fn record_unborn_plan(
        &self,
        request: Request<wire::RecordUnbornPlanRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, record_unborn_plan);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::UNBORN, &caller).await?;
        let mother = validate::nhs_number("mother_nhs_number", request.mother_nhs_number.as_ref())?;
        let expected = validate::date(
            "expected_date_of_delivery",
            request.expected_date_of_delivery.as_ref(),
        )?;
        let mut started = started(
            PlanType::Unborn,
            mother.into(),
            request.category,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        started.expected_date_of_delivery = Some(validate::to_wire_date(expected));
        started.care_team = registered_practice(request.gp_practice.as_ref())?;
        self.start_plan(rpc::UNBORN, &caller, started).await
    }

    async fn link_birth(
        &self,
        request: Request<wire::LinkBirthRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, link_birth);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::LINK_BIRTH, &caller).await?;
        let baby = validate::nhs_number("baby_nhs_number", request.baby_nhs_number.as_ref())?;
        let born_on = validate::date("born_on", request.born_on.as_ref())?;
        self.catch_up().await?;
        let (record, local_authority, _) = self.record(&request.plan_id)?;
        audit::allow(
            &self.inner.log,
            rpc::LINK_BIRTH,
            &caller,
            &Parties::owned_by(local_authority.ods_code),
        )
        .await?;
        let change = record
            .aggregate
            .link_birth(baby, born_on)
            .map_err(from_domain)?;
        let RegistryEvent::BirthLinked(linked) = convert::to_wire(&change) else {
            return Err(internal("linking a birth", "the domain gave another event"));
        };
        let linked = wire::BirthLinked {
            plan_id: request.plan_id.clone(),
            mother_nhs_number: record.aggregate.child.nhs_number().and_then(wire_nhs),
            ..linked
        };
        let token = self
            .append(
                format!("plan-{}", request.plan_id),
                ExpectedVersion::Exact(record.version),
                &linked,
                &caller,
                Some(born_on),
            )
            .await?;
        self.plan_response(&request.plan_id, &caller, token)
    }

    async fn end_plan(
        &self,
        request: Request<wire::EndPlanRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, end_plan);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::END, &caller).await?;
        let end_date = validate::date("end_date", request.end_date.as_ref())?;
        validate::known_enum::<contract::common::v1::PlanEndReason>("reason", request.reason)?;
        let reason = convert::end_reason(request.reason).ok_or_else(|| {
            invalid(
                "reason",
                "a birth is recorded with LinkBirth: the plan follows the baby",
            )
        })?;
        self.catch_up().await?;
        let (record, local_authority, care_team) = self.record(&request.plan_id)?;
        audit::allow(
            &self.inner.log,
            rpc::END,
            &caller,
            &Parties::owned_by(local_authority.ods_code.clone()),
        )
        .await?;
        let change = record
            .aggregate
            .end(end_date, reason)
            .map_err(from_domain)?;
        // What was asked is checked first (the domain's dates), then whether
        // it may be done here.
        if record.made_by_conference && reason.decided_by_a_conference() {
            return Err(Status::failed_precondition(format!(
                "reason: \"{}\" is a review conference's decision for a plan a conference made: record it as that conference's outcome",
                reason.label()
            )));
        }
        let RegistryEvent::PlanEnded(ended) = convert::to_wire(&change) else {
            return Err(internal("ending a plan", "the domain gave another event"));
        };
        let (child_nhs_number, child_local_id) =
            validate::to_wire_child(&self.read()?.child_of(&record));
        let ended = wire::PlanEnded {
            plan_id: request.plan_id.clone(),
            child_nhs_number,
            child_local_id,
            local_authority: Some(local_authority),
            care_team,
            ..ended
        };
        let token = self
            .append(
                format!("plan-{}", request.plan_id),
                ExpectedVersion::Exact(record.version),
                &ended,
                &caller,
                Some(end_date),
            )
            .await?;
        self.plan_response(&request.plan_id, &caller, token)
    }

    async fn allocate_lead_social_worker(
        &self,
        request: Request<wire::AllocateLeadSocialWorkerRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        forward_on_replica!(self, request, allocate_lead_social_worker);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::LEAD, &caller).await?;
        let worker = request
            .lead_social_worker
            .as_ref()
            .ok_or_else(|| invalid("lead_social_worker", "is required"))?;
        let worker = contract::common::v1::ContactDetails {
            name: validate::required_text("lead_social_worker.name", &worker.name)?,
            phone: validate::required_text("lead_social_worker.phone", &worker.phone)?,
            email: worker.email.trim().to_owned(),
        };
        let allocated_on = validate::date("allocated_on", request.allocated_on.as_ref())?;
        self.catch_up().await?;
        let (record, local_authority, _) = self.record(&request.plan_id)?;
        audit::allow(
            &self.inner.log,
            rpc::LEAD,
            &caller,
            &Parties::owned_by(local_authority.ods_code.clone()),
        )
        .await?;
        let change = record
            .aggregate
            .allocate_lead_social_worker(allocated_on)
            .map_err(from_domain)?;
        let RegistryEvent::LeadSocialWorkerAllocated(allocated) = convert::to_wire(&change) else {
            return Err(internal(
                "allocating a social worker",
                "the domain gave another event",
            ));
        };
        let (previous, child) = {
            let state = self.read()?;
            (
                state.view(&record).lead_social_worker,
                state.child_of(&record),
            )
        };
        let (child_nhs_number, child_local_id) = validate::to_wire_child(&child);
        let allocated = wire::LeadSocialWorkerAllocated {
            plan_id: request.plan_id.clone(),
            lead_social_worker: Some(worker),
            previous,
            child_nhs_number,
            child_local_id,
            local_authority: Some(local_authority),
            ..allocated
        };
        let token = self
            .append(
                format!("plan-{}", request.plan_id),
                ExpectedVersion::Exact(record.version),
                &allocated,
                &caller,
                Some(allocated_on),
            )
            .await?;
        self.plan_response(&request.plan_id, &caller, token)
    }

    async fn link_nhs_number(
        &self,
        request: Request<wire::LinkNhsNumberRequest>,
    ) -> Result<Response<wire::LinkNhsNumberResponse>, Status> {
        forward_on_replica!(self, request, link_nhs_number);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::LINK_NHS, &caller).await?;
        let local = validate::optional_local_child_id("local_id", request.local_id.as_ref())?
            .ok_or_else(|| invalid("local_id", "is required"))?;
        let number = validate::nhs_number("nhs_number", request.nhs_number.as_ref())?;
        audit::allow(
            &self.inner.log,
            rpc::LINK_NHS,
            &caller,
            &Parties::owned_by(local.council().to_string()),
        )
        .await?;
        self.catch_up().await?;
        if let Some(linked) = self.read()?.linked_to(&local)
            && linked != number
        {
            return Err(Status::failed_precondition(format!(
                "local_id: {local} is already linked to NHS number {linked}; a link is made once"
            )));
        }
        let today = self.inner.clock.today();
        let linked = wire::ChildNhsNumberLinked {
            local_id: Some(validate::to_wire_local(&local)),
            nhs_number: wire_nhs(number),
            linked_on: Some(validate::to_wire_date(today)),
        };
        // The same link again is the same event: the log answers it with
        // the first one's place and writes nothing.
        let mut event = service_core::event::by_person(&linked, &caller);
        event.event_id = EventId::derived(
            EventId::from_bytes([0; 16]),
            &format!("link:{}:{}:{number}", local.council(), local.value()),
            0,
        );
        let stream = crate::lookup::link_stream(&domain::ChildId::Local(local));
        let token = self
            .append_new(stream, ExpectedVersion::NoStream, event, Some(today))
            .await?;
        Ok(Response::new(wire::LinkNhsNumberResponse {
            token: Some(token),
        }))
    }

    async fn list_unmatched_children(
        &self,
        request: Request<wire::ListUnmatchedChildrenRequest>,
    ) -> Result<Response<wire::ListUnmatchedChildrenResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::UNMATCHED, &caller).await?;
        let council = domain::OdsCode::parse(&request.local_authority_ods_code)
            .map_err(|error| invalid("local_authority_ods_code", error))?;
        audit::allow(
            &self.inner.log,
            rpc::UNMATCHED,
            &caller,
            &Parties::owned_by(council.to_string()),
        )
        .await?;
        self.reflect(request.min_token.as_ref()).await?;
        let today = self.inner.clock.today();
        let response = {
            let state = self.read()?;
            let (children_on_plans, unmatched) = state.match_of(council.as_str(), today);
            let matched = children_on_plans - unmatched.len() as u32;
            let children = unmatched
                .into_iter()
                .map(|(local, plans)| wire::UnmatchedChild {
                    local_id: Some(validate::to_wire_local(&local)),
                    child_name: plans
                        .iter()
                        .find_map(|plan| plan.child_name.as_deref())
                        .unwrap_or_default()
                        .to_owned(),
                    plans: plans
                        .into_iter()
                        .map(|plan| self.plan_view(plan, &caller, &state))
                        .collect(),
                })
                .collect::<Vec<_>>();
            wire::ListUnmatchedChildrenResponse {
                children,
                children_on_plans,
                matched,
                match_rate_percent: projection::Projection::match_rate_percent(
                    matched,
                    children_on_plans,
                ),
            }
        };
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::UNMATCHED,
                "matching children to NHS numbers",
                [],
                [council.to_string()],
                [format!("{} unmatched children", response.children.len())],
            ),
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn import_caseload(
        &self,
        request: Request<tonic::Streaming<wire::ImportCaseloadChunk>>,
    ) -> Result<Response<wire::ImportCaseloadReport>, Status> {
        let caller = Caller::of(&request)?;
        audit::allow_role(&self.inner.log, rpc::IMPORT, &caller).await?;
        let (metadata, extensions, mut chunks) = request.into_parts();
        let mut received = Vec::new();
        let mut council: Option<Organisation> = None;
        let mut size = 0;
        while let Some(chunk) = chunks.message().await? {
            limits::check(&chunk)?;
            match (&council, &chunk.local_authority) {
                (None, given) => {
                    council = Some(validate::organisation("local_authority", given.as_ref())?);
                }
                (Some(first), Some(given)) if given.ods_code != first.ods_code => {
                    return Err(invalid(
                        "local_authority",
                        "names another council than the first chunk: one file is one council's",
                    ));
                }
                _ => {}
            }
            size += chunk.csv.len();
            if size > import::MAX_BYTES {
                return Err(invalid(
                    "csv",
                    format!(
                        "the file is over {} bytes: load the caseload in parts",
                        import::MAX_BYTES
                    ),
                ));
            }
            received.push(chunk);
        }
        let council = council.ok_or_else(|| invalid("local_authority", "is required"))?;
        // A read replica passes the whole file to the primary, which alone
        // writes plans.
        if let Some(primary) = self.primary() {
            let call = |mut primary: Primary, request| async move {
                primary.import_caseload(request).await
            };
            let request = Request::from_parts(metadata, extensions, tokio_stream::iter(received));
            return self.forward(primary, request, call).await;
        }
        audit::allow(
            &self.inner.log,
            rpc::IMPORT,
            &caller,
            &Parties::owned_by(council.ods_code.clone()),
        )
        .await?;
        let text: String = received.into_iter().map(|chunk| chunk.csv).collect();
        self.catch_up().await?;
        let checked = {
            let state = self.read()?;
            import::check(&text, &council, self.inner.clock.today(), &state)?
        };
        let mut report = wire::ImportCaseloadReport {
            rows: checked.total,
            refused: checked.refused,
            children: checked.children,
            with_nhs_number: checked.with_nhs_number,
            match_rate_percent: projection::Projection::match_rate_percent(
                checked.with_nhs_number,
                checked.children,
            ),
            ..wire::ImportCaseloadReport::default()
        };
        if !report.refused.is_empty() || checked.rows.is_empty() {
            return Ok(Response::new(report));
        }
        let parts = checked
            .rows
            .into_iter()
            .map(|row| {
                let mut event = service_core::event::by_person(&row.started, &caller);
                event.event_id = row.event_id;
                event.occurred_at = validate::noon_of(row.start_date);
                (
                    format!("plan-{}", row.plan_id),
                    ExpectedVersion::NoStream,
                    vec![event],
                )
            })
            .collect();
        let outcomes = self.inner.log.append_all(parts).await.map_err(from_log)?;
        let end = outcomes
            .iter()
            .map(|outcome| outcome.positions.end)
            .max()
            .unwrap_or_default();
        let token = self.inner.watermark.token(end);
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await?;
        report.already_imported = outcomes.iter().filter(|o| o.deduplicated).count() as u32;
        report.imported = outcomes.len() as u32 - report.already_imported;
        report.written = true;
        report.token = Some(token);
        Ok(Response::new(report))
    }

    async fn set_local_authority_contacts(
        &self,
        request: Request<wire::SetLocalAuthorityContactsRequest>,
    ) -> Result<Response<wire::SetLocalAuthorityContactsResponse>, Status> {
        forward_on_replica!(self, request, set_local_authority_contacts);
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::CONTACTS, &caller).await?;
        let contacts = request
            .contacts
            .ok_or_else(|| invalid("contacts", "is required"))?;
        let local_authority = validate::organisation(
            "contacts.local_authority",
            contacts.local_authority.as_ref(),
        )?;
        audit::allow(
            &self.inner.log,
            rpc::CONTACTS,
            &caller,
            &Parties::owned_by(local_authority.ods_code.clone()),
        )
        .await?;
        let office =
            validate::required_text("contacts.office_hours_phone", &contacts.office_hours_phone)?;
        let out_of_hours =
            validate::required_text("contacts.out_of_hours_phone", &contacts.out_of_hours_phone)?;
        let set = wire::LocalAuthorityContactsSet {
            contacts: Some(wire::LocalAuthorityContacts {
                local_authority: Some(local_authority.clone()),
                office_hours_phone: office,
                out_of_hours_phone: out_of_hours,
                missing_numbers: String::new(),
            }),
        };
        let token = self
            .append(
                format!("la-{}", local_authority.ods_code),
                ExpectedVersion::Any,
                &set,
                &caller,
                None,
            )
            .await?;
        Ok(Response::new(wire::SetLocalAuthorityContactsResponse {
            token: Some(token),
        }))
    }
}
