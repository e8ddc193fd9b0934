//! The `PlanRegistry` gRPC service.

use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;

use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use tokio::sync::Notify;
use tonic::transport::Channel;

use contract::common::v1::{ConsistencyToken, Organisation, Role};
use contract::records::{AnyEvent, Records, RegistryEvent};
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_server::{self, PlanRegistryServer};
use domain::NhsNumber;
use domain::codes::PlanType;
use domain::plan::Plan;
use eventlog::{EventId, EventLog, ExpectedVersion};
use prost::{Message, Name};
use service_core::follow::Record;
use service_core::reject::{denied, from_domain, from_log, invalid, not_found};
use service_core::validate::{self, Caller};
use service_core::{Watermark, consistency};
use tonic::{Request, Response, Status};

use crate::projection::{self, PlanRecord};
use crate::{LOG, Shared, chronology};

/// How many of its own events the registry reads at a time for a chronology.
const CHRONOLOGY_READ_CHUNK: usize = 1000;

#[derive(Debug, Clone)]
pub struct PlanRegistry {
    inner: Arc<Inner>,
}

/// A read replica's connection to the primary, which makes its plan writes.
pub(crate) type Primary = PlanRegistryClient<Channel>;

/// The primary at `url`, connected on first use: a replica starts and
/// answers lookups while the primary is away, and a write it cannot pass on
/// fails within seconds, not at the caller's patience.
pub(crate) fn primary(url: &str) -> Result<Primary, String> {
    let endpoint = Channel::from_shared(url.to_owned())
        .map_err(|error| error.to_string())?
        .connect_timeout(std::time::Duration::from_secs(2))
        // Above the primary's own worst case: catching up, appending, then
        // waiting for its view, each wait up to `DEFAULT_WAIT`.
        .timeout(3 * consistency::DEFAULT_WAIT + std::time::Duration::from_secs(5));
    Ok(PlanRegistryClient::new(endpoint.connect_lazy()))
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
    pub quarantine: service_core::Quarantine,
    /// Set on a read replica: where its plan writes go.
    pub primary: Option<Primary>,
}

/// Who may see the category of a plan: those who act on it. An emergency
/// department needs to know there is a plan and whom to call, not why.
fn may_see_category(caller: &Caller) -> bool {
    caller.is_local_authority()
        || matches!(
            caller.role,
            Role::PoliceOfficer
                | Role::GeneralPractitioner
                | Role::Paediatrician
                | Role::NamedSafeguardingProfessional
        )
}

/// Who may look a child up at all: professionals, not the public or the
/// people who run the service.
fn may_look_up(caller: &Caller) -> bool {
    !matches!(
        caller.role,
        Role::MemberOfPublic | Role::Operator | Role::Unspecified
    )
}

fn wire_nhs(number: NhsNumber) -> Option<contract::common::v1::NhsNumber> {
    Some(contract::common::v1::NhsNumber {
        value: number.to_string(),
    })
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

    pub fn into_server(self) -> PlanRegistryServer<Self> {
        PlanRegistryServer::new(self)
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

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, projection::Projection>, Status> {
        self.inner
            .projection
            .read()
            .map_err(|_| Status::internal("registry state unavailable"))
    }

    async fn append<M: Message + Name>(
        &self,
        stream: String,
        expected: ExpectedVersion,
        payload: &M,
        caller: &Caller,
    ) -> Result<ConsistencyToken, Status> {
        let outcome = self
            .inner
            .log
            .append(
                &stream,
                expected,
                vec![service_core::event::by_person(payload, caller)],
            )
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
    async fn reflect(&self, token: Option<&ConsistencyToken>) -> Result<(), Status> {
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

    /// A plan write reaching a read replica: the primary makes it, and the
    /// answer waits until this pod shows it, so the caller reads its own
    /// write here too. Once the primary has said yes the answer is yes: the
    /// write is made, and a caller told to retry would make a second plan.
    async fn forward<Req, Resp, Call, Answer>(
        &self,
        primary: Primary,
        request: Request<Req>,
        call: Call,
        token: fn(&Resp) -> Option<&ConsistencyToken>,
    ) -> Result<Response<Resp>, Status>
    where
        Call: FnOnce(Primary, Request<Req>) -> Answer,
        Answer: Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut forwarded = Request::new(request.into_inner());
        if let Ok(traceparent) = service_core::trace::current().parse() {
            forwarded.metadata_mut().insert("traceparent", traceparent);
        }
        let response = call(primary, forwarded)
            .await
            .map_err(|status| {
                // A status with a source came from this side of the
                // connection (it could not be made); one the primary sent
                // back has none and is passed on as it is.
                if status.code() == tonic::Code::Unavailable && status.source().is_some() {
                    Status::unavailable(format!(
                        "plans are recorded by the registry's primary ({LOG}), which cannot be reached: {}; retry shortly",
                        status.message()
                    ))
                } else {
                    status
                }
            })?;
        if let Err(status) = self.reflect(token(response.get_ref())).await {
            tracing::warn!(
                reason = status.message(),
                "a plan write made by the primary is not shown here yet"
            );
        }
        Ok(response)
    }

    async fn catch_up(&self) -> Result<(), Status> {
        let token = self.inner.watermark.token(self.inner.log.head());
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await
    }

    fn plan_view(
        &self,
        record: &PlanRecord,
        caller: &Caller,
        state: &projection::Projection,
    ) -> wire::Plan {
        let mut view = state.view(record);
        if !may_see_category(caller) {
            view.category = 0;
        }
        if let Some((end_date, _)) = record.aggregate.end {
            view.visible_until = Some(validate::to_wire_date(
                end_date.add_months(self.inner.visibility_months),
            ));
        }
        view
    }

    async fn start_plan(
        &self,
        caller: &Caller,
        started: wire::PlanStarted,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        let plan_id = started.plan_id.clone();
        let token = self
            .append(
                format!("plan-{plan_id}"),
                ExpectedVersion::NoStream,
                &started,
                caller,
            )
            .await?;
        self.plan_response(&plan_id, caller, token)
    }

    fn plan_response(
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

    /// A child's chronology: the other services' events the projection
    /// holds (on a replica, the primary's plan events too), and this pod's
    /// own read from its log (the streams of the child's plans and of the
    /// lookups of the child), in the order things happened.
    fn chronology_of(&self, child: NhsNumber) -> Result<Vec<wire::ChronologyEntry>, Status> {
        let (mut entries, streams) = {
            let state = self.read()?;
            if let Some(unsure) = state.unsure(&child) {
                return Err(Self::cannot_show(&state, unsure));
            }
            let mut entries = state.chronology.of(&child);
            let mut streams = Vec::new();
            for record in state.plans_of(&child) {
                entries.extend_from_slice(state.chronology.of_plan(&record.id));
                streams.push(format!("plan-{}", record.id));
            }
            streams.push(format!("child-{child}"));
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

    /// A plan as it stands, with its local authority and care team.
    fn record(
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

fn plan_token(response: &wire::PlanResponse) -> Option<&ConsistencyToken> {
    response.token.as_ref()
}

fn contacts_token(response: &wire::SetLocalAuthorityContactsResponse) -> Option<&ConsistencyToken> {
    response.token.as_ref()
}

/// Checks a new plan with the domain and builds its first event.
fn started(
    plan_type: PlanType,
    wire_type: wire::PlanType,
    child: NhsNumber,
    category: i32,
    start: Option<&contract::common::v1::Date>,
    local_authority: Option<&Organisation>,
    lead_social_worker: Option<contract::common::v1::ContactDetails>,
) -> Result<wire::PlanStarted, Status> {
    let start_date = validate::date("start_date", start)?;
    let local_authority = validate::organisation("local_authority", local_authority)?;
    let domain_category = if category == 0 {
        None
    } else {
        Some(
            projection::category(category)
                .ok_or_else(|| invalid("category", format!("unknown value {category}")))?,
        )
    };
    Plan::start(plan_type, child, domain_category, start_date).map_err(from_domain)?;
    Ok(wire::PlanStarted {
        plan_id: EventId::new().to_string(),
        r#type: wire_type.into(),
        child_nhs_number: wire_nhs(child),
        category,
        start_date: Some(validate::to_wire_date(start_date)),
        local_authority: Some(local_authority),
        lead_social_worker,
        ..wire::PlanStarted::default()
    })
}

#[tonic::async_trait]
impl plan_registry_server::PlanRegistry for PlanRegistry {
    async fn lookup_child(
        &self,
        request: Request<wire::LookupChildRequest>,
    ) -> Result<Response<wire::LookupChildResponse>, Status> {
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        if !may_look_up(&caller) {
            return Err(denied(format!(
                "caller.role: {} may not look children up",
                caller.role.as_str_name()
            )));
        }
        let child = validate::nhs_number("nhs_number", request.nhs_number.as_ref())?;
        let purpose = validate::required_text("purpose", &request.purpose)?;
        let as_of = validate::optional_date("as_of", request.as_of.as_ref())?;
        self.reflect(request.min_token.as_ref()).await?;
        let today = validate::today();
        let (plans, owners, refusal) = {
            let state = self.read()?;
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
            (plans, owners, refusal)
        };
        // Every lookup is itself an event; the notification service tells
        // the owners unless it is silent.
        let looked_up = wire::ChildLookedUp {
            nhs_number: wire_nhs(child),
            caller: Some(caller.to_wire()),
            purpose,
            silent: request.silent,
            owners,
            as_of: as_of.map(validate::to_wire_date),
        };
        let token = self
            .append(
                format!("child-{child}"),
                ExpectedVersion::Any,
                &looked_up,
                &caller,
            )
            .await?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let recent_accesses = self.read()?.accesses_of(&child);
        Ok(Response::new(wire::LookupChildResponse {
            nhs_number: wire_nhs(child),
            plans,
            recent_accesses,
            token: Some(token),
        }))
    }

    async fn child_chronology(
        &self,
        request: Request<wire::ChildChronologyRequest>,
    ) -> Result<Response<wire::ChildChronologyResponse>, Status> {
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("read a chronology")?;
        let child = validate::nhs_number("nhs_number", request.nhs_number.as_ref())?;
        self.reflect(request.min_token.as_ref()).await?;
        for watermark in self.inner.sources.values() {
            watermark
                .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
                .await?;
        }
        let entries = self.chronology_of(child)?;
        Ok(Response::new(wire::ChildChronologyResponse { entries }))
    }

    async fn record_transfer_in(
        &self,
        request: Request<wire::RecordTransferInRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call = |mut primary: Primary, request| async move {
                primary.record_transfer_in(request).await
            };
            return self.forward(primary, request, call, plan_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let child = validate::nhs_number("child_nhs_number", request.child_nhs_number.as_ref())?;
        validate::organisation(
            "previous_local_authority",
            request.previous_local_authority.as_ref(),
        )?;
        let started = started(
            PlanType::ChildProtection,
            wire::PlanType::ChildProtection,
            child,
            request.category,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        self.start_plan(&caller, started).await
    }

    async fn record_looked_after(
        &self,
        request: Request<wire::RecordLookedAfterRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call = |mut primary: Primary, request| async move {
                primary.record_looked_after(request).await
            };
            return self.forward(primary, request, call, plan_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let child = validate::nhs_number("child_nhs_number", request.child_nhs_number.as_ref())?;
        let started = started(
            PlanType::LookedAfter,
            wire::PlanType::LookedAfter,
            child,
            0,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        self.start_plan(&caller, started).await
    }

    async fn record_unborn_plan(
        &self,
        request: Request<wire::RecordUnbornPlanRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call = |mut primary: Primary, request| async move {
                primary.record_unborn_plan(request).await
            };
            return self.forward(primary, request, call, plan_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let mother = validate::nhs_number("mother_nhs_number", request.mother_nhs_number.as_ref())?;
        let expected = validate::date(
            "expected_date_of_delivery",
            request.expected_date_of_delivery.as_ref(),
        )?;
        let mut started = started(
            PlanType::Unborn,
            wire::PlanType::Unborn,
            mother,
            request.category,
            request.start_date.as_ref(),
            request.local_authority.as_ref(),
            request.lead_social_worker,
        )?;
        started.expected_date_of_delivery = Some(validate::to_wire_date(expected));
        self.start_plan(&caller, started).await
    }

    async fn link_birth(
        &self,
        request: Request<wire::LinkBirthRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call =
                |mut primary: Primary, request| async move { primary.link_birth(request).await };
            return self.forward(primary, request, call, plan_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let baby = validate::nhs_number("baby_nhs_number", request.baby_nhs_number.as_ref())?;
        let born_on = validate::date("born_on", request.born_on.as_ref())?;
        self.catch_up().await?;
        let (record, _, _) = self.record(&request.plan_id)?;
        record
            .aggregate
            .link_birth(baby, born_on)
            .map_err(from_domain)?;
        let linked = wire::BirthLinked {
            plan_id: request.plan_id.clone(),
            mother_nhs_number: wire_nhs(record.aggregate.nhs_number),
            baby_nhs_number: wire_nhs(baby),
            born_on: request.born_on,
        };
        let token = self
            .append(
                format!("plan-{}", request.plan_id),
                ExpectedVersion::Exact(record.version),
                &linked,
                &caller,
            )
            .await?;
        self.plan_response(&request.plan_id, &caller, token)
    }

    async fn end_plan(
        &self,
        request: Request<wire::EndPlanRequest>,
    ) -> Result<Response<wire::PlanResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call =
                |mut primary: Primary, request| async move { primary.end_plan(request).await };
            return self.forward(primary, request, call, plan_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let end_date = validate::date("end_date", request.end_date.as_ref())?;
        validate::known_enum::<wire::PlanEndReason>("reason", request.reason)?;
        self.catch_up().await?;
        let (record, local_authority, care_team) = self.record(&request.plan_id)?;
        record
            .aggregate
            .end(end_date, projection::end_reason(request.reason))
            .map_err(from_domain)?;
        let ended = wire::PlanEnded {
            plan_id: request.plan_id.clone(),
            end_date: request.end_date,
            reason: request.reason,
            detail: String::new(),
            child_nhs_number: wire_nhs(
                record.aggregate.baby.unwrap_or(record.aggregate.nhs_number),
            ),
            local_authority: Some(local_authority),
            care_team,
        };
        let token = self
            .append(
                format!("plan-{}", request.plan_id),
                ExpectedVersion::Exact(record.version),
                &ended,
                &caller,
            )
            .await?;
        self.plan_response(&request.plan_id, &caller, token)
    }

    async fn set_local_authority_contacts(
        &self,
        request: Request<wire::SetLocalAuthorityContactsRequest>,
    ) -> Result<Response<wire::SetLocalAuthorityContactsResponse>, Status> {
        if let Some(primary) = self.inner.primary.clone() {
            let call = |mut primary: Primary, request| async move {
                primary.set_local_authority_contacts(request).await
            };
            return self.forward(primary, request, call, contacts_token).await;
        }
        let request = request.into_inner();
        let caller = validate::caller(request.caller.as_ref())?;
        caller.require_local_authority("record plans")?;
        let contacts = request
            .contacts
            .ok_or_else(|| invalid("contacts", "is required"))?;
        let local_authority = validate::organisation(
            "contacts.local_authority",
            contacts.local_authority.as_ref(),
        )?;
        if local_authority.ods_code != caller.organisation.as_str() {
            return Err(denied(
                "contacts.local_authority: a local authority sets only its own contact numbers",
            ));
        }
        let office =
            validate::required_text("contacts.office_hours_phone", &contacts.office_hours_phone)?;
        let out_of_hours =
            validate::required_text("contacts.out_of_hours_phone", &contacts.out_of_hours_phone)?;
        let set = wire::LocalAuthorityContactsSet {
            contacts: Some(wire::LocalAuthorityContacts {
                local_authority: Some(local_authority.clone()),
                office_hours_phone: office,
                out_of_hours_phone: out_of_hours,
            }),
        };
        let token = self
            .append(
                format!("la-{}", local_authority.ods_code),
                ExpectedVersion::Any,
                &set,
                &caller,
            )
            .await?;
        Ok(Response::new(wire::SetLocalAuthorityContactsResponse {
            token: Some(token),
        }))
    }
}
