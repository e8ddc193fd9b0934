//! The `ReferralIntake` gRPC service: validate, decide with the domain,
//! append, answer with a consistency token.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use contract::common::v1::{AbuseCategory, ConsistencyToken};
use contract::records::ReferralEvent;
use contract::referral::v1 as wire;
use contract::referral::v1::referral_intake_server::{self, ReferralIntakeServer};
use domain::calendar::Calendar;
use domain::clocks;
use eventlog::{EventId, EventLog, ExpectedVersion, NewEvent};
use service_core::audit;
use service_core::clock::Clock;
use service_core::limits;
use service_core::policy::Parties;
use service_core::reject::{from_domain, from_log, internal, invalid, not_found};
use service_core::validate::{self, Caller};
use service_core::{Watermark, consistency};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::projection::{Projection, Tracked};

/// The service; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReferralIntake {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: EventLog,
    projection: Arc<RwLock<Projection>>,
    watermark: Watermark,
    calendar: Calendar,
    clock: Clock,
    health: service_core::Health,
}

impl ReferralIntake {
    pub(crate) fn new(
        log: EventLog,
        projection: Arc<RwLock<Projection>>,
        watermark: Watermark,
        calendar: Calendar,
        clock: Clock,
        health: service_core::Health,
    ) -> Self {
        ReferralIntake {
            inner: Arc::new(Inner {
                log,
                projection,
                watermark,
                calendar,
                clock,
                health,
            }),
        }
    }

    pub fn into_server(self) -> ReferralIntakeServer<Self> {
        ReferralIntakeServer::new(self).max_decoding_message_size(limits::MAX_REQUEST_BYTES)
    }

    /// Its health, for the server to report NOT_SERVING once its projection
    /// stops, and what it quarantined.
    pub fn watched(&self) -> service_core::health::Watched {
        service_core::health::Watched::new::<ReferralIntakeServer<Self>>(
            self.inner.health.clone(),
            crate::LOG,
        )
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Projection>, Status> {
        self.inner
            .projection
            .read()
            .map_err(|error| internal("reading referrals", error))
    }

    /// Waits until the projection reflects everything in the log, so a
    /// command is decided on the latest state.
    async fn catch_up(&self) -> Result<(), Status> {
        let token = self.inner.watermark.token(self.inner.log.head());
        self.inner
            .watermark
            .wait_for(Some(&token), consistency::DEFAULT_WAIT)
            .await
    }

    fn tracked(&self, referral_id: &str) -> Result<Tracked, Status> {
        self.read()?
            .referrals
            .get(referral_id)
            .cloned()
            .ok_or_else(|| not_found("referral", referral_id))
    }

    async fn append(
        &self,
        referral_id: &str,
        expected: ExpectedVersion,
        event: NewEvent,
    ) -> Result<ConsistencyToken, Status> {
        self.append_to(&format!("referral-{referral_id}"), expected, event)
            .await
    }

    /// Appends `event` to `stream`; the token of what was written.
    async fn append_to(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        event: NewEvent,
    ) -> Result<ConsistencyToken, Status> {
        let outcome = self
            .inner
            .log
            .append(stream, expected, vec![event])
            .await
            .map_err(from_log)?;
        Ok(self.inner.watermark.token(outcome.positions.end))
    }

    /// The referral as the service shows it once its view has applied the
    /// write `token` names: every write answers from the view, as any
    /// later read will.
    async fn answered(
        &self,
        referral_id: &str,
        token: &ConsistencyToken,
        caller: &Caller,
    ) -> Result<wire::Referral, Status> {
        self.inner
            .watermark
            .wait_for(Some(token), consistency::DEFAULT_WAIT)
            .await?;
        self.view(referral_id, caller)
    }

    /// A referral's view as `caller` may see it, with whether its decision
    /// and its assessment are overdue today. The police risk assessments
    /// are police intelligence: for the owning council and the police in
    /// the joint enquiry, not for the referrer.
    fn view(&self, referral_id: &str, caller: &Caller) -> Result<wire::Referral, Status> {
        let mut view = self.tracked(referral_id)?.view;
        let parties = parties(&view);
        let caller_ods = caller.organisation.as_str();
        if !parties.owners.iter().any(|owner| owner == caller_ods)
            && !parties
                .joint_enquiry
                .iter()
                .any(|police| police == caller_ods)
        {
            view.police_risk_assessments.clear();
        }
        let today = self.inner.clock.today();
        view.decision_overdue = self.is_overdue(&view, today);
        view.assessment_overdue = view.assessment_completed_on.is_none()
            && validate::optional_date("assessment_due", view.assessment_due.as_ref())
                .ok()
                .flatten()
                .is_some_and(|due| today > due);
        Ok(view)
    }

    fn is_overdue(&self, view: &wire::Referral, today: domain::date::Date) -> bool {
        view.status == i32::from(wire::ReferralStatus::AwaitingDecision)
            && validate::optional_date("decision_due", view.decision_due.as_ref())
                .ok()
                .flatten()
                .is_some_and(|due| today > due)
    }
}

/// Every agency present at a referral's strategy discussions, once each.
fn agencies_present(view: &wire::Referral) -> Vec<contract::common::v1::Organisation> {
    let mut agencies: Vec<contract::common::v1::Organisation> = Vec::new();
    for agency in view
        .strategy_discussions
        .iter()
        .flat_map(|discussion| &discussion.agencies_present)
    {
        if !agencies
            .iter()
            .any(|known| known.ods_code == agency.ods_code)
        {
            agencies.push(agency.clone());
        }
    }
    agencies
}

fn validate_child(
    child: Option<&wire::Child>,
    today: domain::date::Date,
) -> Result<wire::Child, Status> {
    let child = child.ok_or_else(|| invalid("child", "is required"))?;
    let nhs = validate::optional_nhs_number("child.nhs_number", child.nhs_number.as_ref())?;
    let mother =
        validate::optional_nhs_number("child.mother_nhs_number", child.mother_nhs_number.as_ref())?;
    let born = validate::optional_date("child.date_of_birth", child.date_of_birth.as_ref())?;
    let gp_practice = child
        .gp_practice
        .as_ref()
        .map(|practice| validate::organisation("child.gp_practice", Some(practice)))
        .transpose()?;
    let expected = validate::optional_date(
        "child.expected_date_of_delivery",
        child.expected_date_of_delivery.as_ref(),
    )?;
    match (born, expected) {
        (None, None) => {
            return Err(invalid(
                "child.date_of_birth",
                "a date of birth, or for an unborn child an expected date of delivery, is required",
            ));
        }
        (Some(born), _) if born > today => {
            return Err(invalid("child.date_of_birth", "is in the future"));
        }
        (None, Some(_)) if mother.is_none() => {
            return Err(invalid(
                "child.mother_nhs_number",
                "is required for an unborn child",
            ));
        }
        _ => {}
    }
    if child.given_name.trim().is_empty()
        && child.family_name.trim().is_empty()
        && nhs.is_none()
        && mother.is_none()
    {
        return Err(invalid("child", "needs a name or an NHS number"));
    }
    let local_id = validate::optional_local_child_id("child.local_id", child.local_id.as_ref())?;
    if local_id.is_some() && (nhs.is_some() || born.is_none()) {
        return Err(invalid(
            "child.local_id",
            "is for a born child without an NHS number",
        ));
    }
    Ok(wire::Child {
        nhs_number: nhs.map(|number| contract::common::v1::NhsNumber {
            value: number.to_string(),
        }),
        mother_nhs_number: mother.map(|number| contract::common::v1::NhsNumber {
            value: number.to_string(),
        }),
        given_name: child.given_name.trim().to_owned(),
        family_name: child.family_name.trim().to_owned(),
        gp_practice,
        local_id: local_id.as_ref().map(validate::to_wire_local),
        ..child.clone()
    })
}

/// A born child without an NHS number is held under the receiving
/// council's local identifier: the one given (which must be that
/// council's), or one issued from the referral's id, so a retry issues the
/// same.
fn with_local_id(
    mut child: wire::Child,
    local_authority: &contract::common::v1::Organisation,
    referral_id: &str,
) -> Result<wire::Child, Status> {
    if child.nhs_number.is_some() || child.date_of_birth.is_none() {
        return Ok(child);
    }
    match &child.local_id {
        Some(given) if given.local_authority_ods_code != local_authority.ods_code => {
            return Err(invalid(
                "child.local_id.local_authority_ods_code",
                format!(
                    "is {}, not the receiving council {}: a local identifier is the council's own",
                    given.local_authority_ods_code, local_authority.ods_code
                ),
            ));
        }
        Some(_) => {}
        None => {
            child.local_id = Some(contract::common::v1::LocalChildId {
                local_authority_ods_code: local_authority.ods_code.clone(),
                value: format!("referral-{referral_id}"),
            });
        }
    }
    Ok(child)
}

fn validate_police(assessment: Option<&wire::PoliceRiskAssessment>) -> Result<(), Status> {
    let Some(assessment) = assessment else {
        return Ok(());
    };
    validate::known_enum::<wire::RiskRating>(
        "police_risk_assessment.overall_rating",
        assessment.overall_rating,
    )?;
    validate::known_enum::<wire::PoliceReportKind>("police_risk_assessment.kind", assessment.kind)?;
    for group in &assessment.groups {
        validate::known_enum::<wire::RiskSubject>(
            "police_risk_assessment.groups.subject",
            group.subject,
        )?;
    }
    Ok(())
}

fn validate_consent(consent: Option<&wire::Consent>) -> Result<(), Status> {
    let consent = consent.ok_or_else(|| invalid("consent", "is required"))?;
    let status = validate::known_enum::<wire::ConsentStatus>("consent.status", consent.status)?;
    if status == wire::ConsentStatus::NotSought && consent.reason.trim().is_empty() {
        return Err(invalid(
            "consent.reason",
            "is required when consent was not sought",
        ));
    }
    Ok(())
}

/// A referral id from the idempotency key and the referring organisation:
/// a retry of the same submission gets the same id (and event id).
fn referral_id_for(organisation: &str, key: &str) -> EventId {
    EventId::derived(
        EventId::from_bytes([0; 16]),
        &format!("referral:{organisation}:{key}"),
        0,
    )
}

/// The RPCs, as the access policy (`service_core::policy`) names them.
mod rpc {
    pub const SUBMIT: &str = "safeguard.referral.v1.ReferralIntake/SubmitReferral";
    pub const DECIDE: &str = "safeguard.referral.v1.ReferralIntake/RecordDecision";
    pub const STRATEGY: &str = "safeguard.referral.v1.ReferralIntake/RecordStrategyDiscussion";
    pub const SECTION_47: &str = "safeguard.referral.v1.ReferralIntake/RecordSection47Outcome";
    pub const ASSESSMENT: &str = "safeguard.referral.v1.ReferralIntake/RecordAssessmentCompleted";
    pub const GET: &str = "safeguard.referral.v1.ReferralIntake/GetReferral";
    pub const AWAITING: &str = "safeguard.referral.v1.ReferralIntake/ListAwaitingDecision";
    pub const SHARE: &str = "safeguard.referral.v1.ReferralIntake/ShareInformation";
    pub const INCIDENT: &str = "safeguard.referral.v1.ReferralIntake/RecordDomesticAbuseIncident";
}

/// The child a referral is about, by NHS number (or their mother's, for
/// an unborn child), if known.
fn child_of(view: &wire::Referral) -> Option<contract::common::v1::NhsNumber> {
    let child = view.child.as_ref()?;
    child
        .nhs_number
        .clone()
        .filter(|number| !number.value.is_empty())
        .or_else(|| child.mother_nhs_number.clone())
}

/// Whom a referral concerns, for the access policy: the council it was
/// made to, the organisation that made it, and the police forces in a
/// strategy discussion that decided on a joint section 47 enquiry.
fn parties(view: &wire::Referral) -> Parties {
    let ods = |organisation: Option<&contract::common::v1::Organisation>| {
        organisation.map(|organisation| organisation.ods_code.clone())
    };
    Parties {
        owners: ods(view.local_authority.as_ref()).into_iter().collect(),
        referrer: ods(view
            .referrer
            .as_ref()
            .and_then(|referrer| referrer.organisation.as_ref())),
        joint_enquiry: service_core::policy::joint_enquiry_police(&view.strategy_discussions)
            .collect(),
        ..Parties::default()
    }
}

#[tonic::async_trait]
impl referral_intake_server::ReferralIntake for ReferralIntake {
    async fn submit_referral(
        &self,
        request: Request<wire::SubmitReferralRequest>,
    ) -> Result<Response<wire::SubmitReferralResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow(&self.inner.log, rpc::SUBMIT, &caller, &Parties::default()).await?;
        let key = validate::required_text("idempotency_key", &request.idempotency_key)?;
        let received_at = validate::timestamp_or_now("received_at", request.received_at.as_ref())?;
        let received_on = validate::date_of(&received_at);
        let referrer = request
            .referrer
            .as_ref()
            .ok_or_else(|| invalid("referrer", "is required"))?;
        let referrer_organisation =
            validate::organisation("referrer.organisation", referrer.organisation.as_ref())?;
        let child = validate_child(request.child.as_ref(), self.inner.clock.today())?;
        let concerns = validate::required_text("concerns", &request.concerns)?;
        validate::known_enum::<AbuseCategory>("category_of_concern", request.category_of_concern)?;
        validate_police(request.police_risk_assessment.as_ref())?;
        validate_consent(request.consent.as_ref())?;
        let local_authority =
            validate::organisation("local_authority", request.local_authority.as_ref())?;

        let id = referral_id_for(caller.organisation.as_str(), &key);
        let referral_id = id.to_string();
        let child = with_local_id(child, &local_authority, &referral_id)?;
        let decision_due = clocks::referral_decision_due(&self.inner.calendar, received_on);
        let submitted = wire::ReferralSubmitted {
            referral_id: referral_id.clone(),
            idempotency_key: key,
            referrer: Some(wire::Referrer {
                organisation: Some(referrer_organisation),
                person: referrer.person.clone(),
            }),
            child: Some(child),
            concerns,
            category_of_concern: request.category_of_concern,
            police_risk_assessment: request.police_risk_assessment,
            consent: request.consent,
            local_authority: Some(local_authority),
            received_at: Some(received_at),
            decision_due: Some(validate::to_wire_date(decision_due)),
        };
        let mut new = service_core::event::by_person(&submitted, &caller);
        new.occurred_at = validate::system_time(&received_at);
        new.event_id = id;
        new.correlation_id = id.as_bytes().to_vec();
        // A retry carries the same event id: the log answers it with the
        // original positions and writes nothing.
        let token = self.append(&referral_id, ExpectedVersion::Any, new).await?;
        let decision_due = self
            .read()?
            .referrals
            .get(&referral_id)
            .and_then(|tracked| tracked.view.decision_due)
            .unwrap_or_else(|| validate::to_wire_date(decision_due));
        Ok(Response::new(wire::SubmitReferralResponse {
            referral_id,
            decision_due: Some(decision_due),
            token: Some(token),
        }))
    }

    async fn record_decision(
        &self,
        request: Request<wire::RecordDecisionRequest>,
    ) -> Result<Response<wire::RecordDecisionResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::DECIDE, &caller).await?;
        validate::known_enum::<wire::RagRating>("rag_rating", request.rag_rating)?;
        validate::known_enum::<wire::ReferralOutcome>("outcome", request.outcome)?;
        let outcome = convert::outcome_to_domain(request.outcome)
            .ok_or_else(|| invalid("outcome", "is required"))?;
        let rationale = validate::required_text("rationale", &request.rationale)?;
        let decided_at = validate::timestamp_or_now("decided_at", request.decided_at.as_ref())?;
        self.catch_up().await?;
        let tracked = self.tracked(&request.referral_id)?;
        audit::allow(
            &self.inner.log,
            rpc::DECIDE,
            &caller,
            &parties(&tracked.view),
        )
        .await?;
        let change = tracked
            .aggregate
            .decide(outcome, validate::date_of(&decided_at))
            .map_err(from_domain)?;
        let ReferralEvent::Decided(decided) = convert::to_wire(&change) else {
            return Err(internal("deciding", "the domain gave another event"));
        };
        let decided = wire::ReferralDecided {
            referral_id: request.referral_id.clone(),
            rag_rating: request.rag_rating,
            rationale,
            reason_for_referrer: request.reason_for_referrer.trim().to_owned(),
            decided_at: Some(decided_at),
            decided_by: Some(caller.to_wire()),
            referrer: tracked.view.referrer.clone(),
            child: tracked.view.child.clone(),
            local_authority: tracked.view.local_authority.clone(),
            ..decided
        };
        // Only a decision to assess starts the assessment's clock.
        let mut assessing = tracked.aggregate.clone();
        assessing.apply(&change);
        let decided = wire::ReferralDecided {
            assessment_due: assessing
                .assesses()
                .then(|| validate::to_wire_date(assessing.assessment_due(&self.inner.calendar))),
            ..decided
        };
        let token = self
            .append(
                &request.referral_id,
                ExpectedVersion::Exact(tracked.version),
                NewEvent {
                    occurred_at: validate::system_time(&decided_at),
                    ..service_core::event::by_person(&decided, &caller)
                },
            )
            .await?;
        Ok(Response::new(wire::RecordDecisionResponse {
            referral: Some(self.answered(&request.referral_id, &token, &caller).await?),
            token: Some(token),
        }))
    }

    async fn record_strategy_discussion(
        &self,
        request: Request<wire::RecordStrategyDiscussionRequest>,
    ) -> Result<Response<wire::RecordStrategyDiscussionResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::STRATEGY, &caller).await?;
        let held_on = validate::date("held_on", request.held_on.as_ref())?;
        if held_on > self.inner.clock.today() {
            return Err(invalid("held_on", "is in the future"));
        }
        let agencies = request
            .agencies_present
            .iter()
            .map(|agency| validate::organisation("agencies_present", Some(agency)))
            .collect::<Result<Vec<_>, _>>()?;
        validate_police(request.police_risk_assessment.as_ref())?;
        self.catch_up().await?;
        let tracked = self.tracked(&request.referral_id)?;
        audit::allow(
            &self.inner.log,
            rpc::STRATEGY,
            &caller,
            &parties(&tracked.view),
        )
        .await?;
        let change = tracked
            .aggregate
            .hold_strategy_discussion(held_on, request.section_47_enquiry)
            .map_err(from_domain)?;
        let ReferralEvent::StrategyDiscussionHeld(held) = convert::to_wire(&change) else {
            return Err(internal(
                "holding a strategy discussion",
                "the domain gave another event",
            ));
        };
        let mut after = tracked.aggregate.clone();
        after.apply(&change);
        let held = wire::StrategyDiscussionHeld {
            referral_id: request.referral_id.clone(),
            discussion: held.discussion.map(|discussion| wire::StrategyDiscussion {
                agencies_present: agencies,
                ..discussion
            }),
            notes: request.notes.trim().to_owned(),
            icpc_due: after
                .icpc_due(&self.inner.calendar)
                .map(validate::to_wire_date),
            child: tracked.view.child.clone(),
            local_authority: tracked.view.local_authority.clone(),
            police_risk_assessment: request.police_risk_assessment,
        };
        let token = self
            .append(
                &request.referral_id,
                ExpectedVersion::Exact(tracked.version),
                NewEvent {
                    occurred_at: validate::noon_of(held_on),
                    ..service_core::event::by_person(&held, &caller)
                },
            )
            .await?;
        Ok(Response::new(wire::RecordStrategyDiscussionResponse {
            referral: Some(self.answered(&request.referral_id, &token, &caller).await?),
            token: Some(token),
        }))
    }

    async fn record_section47_outcome(
        &self,
        request: Request<wire::RecordSection47OutcomeRequest>,
    ) -> Result<Response<wire::RecordSection47OutcomeResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::SECTION_47, &caller).await?;
        let concluded_on = validate::date("concluded_on", request.concluded_on.as_ref())?;
        let rationale = validate::required_text("rationale", &request.rationale)?;
        self.catch_up().await?;
        let tracked = self.tracked(&request.referral_id)?;
        audit::allow(
            &self.inner.log,
            rpc::SECTION_47,
            &caller,
            &parties(&tracked.view),
        )
        .await?;
        let change = tracked
            .aggregate
            .conclude_section_47(concluded_on, request.conference_needed)
            .map_err(from_domain)?;
        let ReferralEvent::Section47Concluded(concluded) = convert::to_wire(&change) else {
            return Err(internal(
                "concluding an enquiry",
                "the domain gave another event",
            ));
        };
        let concluded = wire::Section47Concluded {
            referral_id: request.referral_id.clone(),
            rationale,
            icpc_due: tracked.view.icpc_due,
            child: tracked.view.child.clone(),
            local_authority: tracked.view.local_authority.clone(),
            referrer: tracked.view.referrer.clone(),
            agencies: agencies_present(&tracked.view),
            police_risk_assessments: tracked.view.police_risk_assessments.clone(),
            ..concluded
        };
        let token = self
            .append(
                &request.referral_id,
                ExpectedVersion::Exact(tracked.version),
                NewEvent {
                    occurred_at: validate::noon_of(concluded_on),
                    ..service_core::event::by_person(&concluded, &caller)
                },
            )
            .await?;
        Ok(Response::new(wire::RecordSection47OutcomeResponse {
            referral: Some(self.answered(&request.referral_id, &token, &caller).await?),
            token: Some(token),
        }))
    }

    async fn record_assessment_completed(
        &self,
        request: Request<wire::RecordAssessmentCompletedRequest>,
    ) -> Result<Response<wire::RecordAssessmentCompletedResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::ASSESSMENT, &caller).await?;
        let completed_on = validate::date("completed_on", request.completed_on.as_ref())?;
        if completed_on > self.inner.clock.today() {
            return Err(invalid("completed_on", "is in the future"));
        }
        self.catch_up().await?;
        let tracked = self.tracked(&request.referral_id)?;
        audit::allow(
            &self.inner.log,
            rpc::ASSESSMENT,
            &caller,
            &parties(&tracked.view),
        )
        .await?;
        let calendar = &self.inner.calendar;
        let change = tracked
            .aggregate
            .complete_assessment(calendar, completed_on, &request.late_reason)
            .map_err(from_domain)?;
        let ReferralEvent::AssessmentCompleted(completed) = convert::to_wire(&change) else {
            return Err(internal(
                "completing an assessment",
                "the domain gave another event",
            ));
        };
        let due = tracked.aggregate.assessment_due(calendar);
        let working_days_late = match clocks::timeliness(calendar, due, completed_on) {
            clocks::Timeliness::OnTime => 0,
            clocks::Timeliness::Late { working_days } => {
                u32::try_from(working_days).unwrap_or(u32::MAX)
            }
        };
        let completed = wire::AssessmentCompleted {
            referral_id: request.referral_id.clone(),
            late_reason: if completed_on > due {
                request.late_reason.trim().to_owned()
            } else {
                String::new()
            },
            assessment_due: Some(validate::to_wire_date(due)),
            working_days_late,
            child: tracked.view.child.clone(),
            local_authority: tracked.view.local_authority.clone(),
            ..completed
        };
        let token = self
            .append(
                &request.referral_id,
                ExpectedVersion::Exact(tracked.version),
                NewEvent {
                    occurred_at: validate::noon_of(completed_on),
                    ..service_core::event::by_person(&completed, &caller)
                },
            )
            .await?;
        Ok(Response::new(wire::RecordAssessmentCompletedResponse {
            referral: Some(self.answered(&request.referral_id, &token, &caller).await?),
            token: Some(token),
        }))
    }

    async fn get_referral(
        &self,
        request: Request<wire::GetReferralRequest>,
    ) -> Result<Response<wire::GetReferralResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow_role(&self.inner.log, rpc::GET, &caller).await?;
        self.inner
            .watermark
            .wait_for(request.min_token.as_ref(), consistency::DEFAULT_WAIT)
            .await?;
        let referral = self.view(&request.referral_id, &caller)?;
        audit::allow(&self.inner.log, rpc::GET, &caller, &parties(&referral)).await?;
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::GET,
                &request.purpose,
                child_of(&referral),
                parties(&referral).owners,
                [referral.referral_id.clone()],
            ),
        )
        .await?;
        Ok(Response::new(wire::GetReferralResponse {
            referral: Some(referral),
        }))
    }

    async fn list_awaiting_decision(
        &self,
        request: Request<wire::ListAwaitingDecisionRequest>,
    ) -> Result<Response<wire::ListAwaitingDecisionResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        let local_authority = domain::OdsCode::parse(&request.local_authority_ods_code)
            .map_err(|error| invalid("local_authority_ods_code", error))?;
        audit::allow(
            &self.inner.log,
            rpc::AWAITING,
            &caller,
            &Parties::owned_by(local_authority.as_str()),
        )
        .await?;
        let today = validate::optional_date("as_of", request.as_of.as_ref())?
            .unwrap_or_else(|| self.inner.clock.today());
        self.inner
            .watermark
            .wait_for(request.min_token.as_ref(), Duration::from_secs(5))
            .await?;
        let mut referrals: Vec<wire::Referral> = self
            .read()?
            .referrals
            .values()
            .filter(|tracked| {
                tracked.view.status == i32::from(wire::ReferralStatus::AwaitingDecision)
                    && tracked
                        .view
                        .local_authority
                        .as_ref()
                        .is_some_and(|la| la.ods_code == local_authority.as_str())
            })
            .map(|tracked| tracked.view.clone())
            .collect();
        for view in &mut referrals {
            view.decision_overdue = self.is_overdue(view, today);
        }
        referrals.sort_by(|a, b| {
            let due = |view: &wire::Referral| view.decision_due.map(|d| (d.year, d.month, d.day));
            due(a)
                .cmp(&due(b))
                .then_with(|| a.referral_id.cmp(&b.referral_id))
        });
        audit::read(
            &self.inner.log,
            &caller,
            &audit::reading(
                rpc::AWAITING,
                &request.purpose,
                referrals.iter().filter_map(child_of),
                [local_authority.to_string()],
                referrals.iter().map(|view| view.referral_id.clone()),
            ),
        )
        .await?;
        // Information shared since 30 days before `today`, newest first.
        let since = today.add_days(-30);
        let mut information: Vec<wire::InformationShared> = self
            .read()?
            .information
            .get(local_authority.as_str())
            .into_iter()
            .flatten()
            .filter(|shared| {
                shared
                    .received_at
                    .as_ref()
                    .is_some_and(|at| validate::date_of(at) >= since)
            })
            .cloned()
            .collect();
        information.reverse();
        Ok(Response::new(wire::ListAwaitingDecisionResponse {
            referrals,
            information,
        }))
    }

    async fn share_information(
        &self,
        request: Request<wire::ShareInformationRequest>,
    ) -> Result<Response<wire::ShareInformationResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow(&self.inner.log, rpc::SHARE, &caller, &Parties::default()).await?;
        let key = validate::required_text("idempotency_key", &request.idempotency_key)?;
        let received_at = validate::timestamp_or_now("received_at", request.received_at.as_ref())?;
        let child = validate_child(request.child.as_ref(), self.inner.clock.today())?;
        let circumstances = validate::required_text("circumstances", &request.circumstances)?;
        validate_police(request.police_risk_assessment.as_ref())?;
        let local_authority =
            validate::organisation("local_authority", request.local_authority.as_ref())?;
        // Who shares it is who is calling: the body names only the person
        // to contact.
        let shared_by = wire::Referrer {
            organisation: caller.to_wire().organisation,
            person: request.shared_by.and_then(|by| by.person),
        };
        let id = EventId::derived(
            EventId::from_bytes([0; 16]),
            &format!("information:{}:{key}", caller.organisation),
            0,
        );
        let information_id = id.to_string();
        let shared = wire::InformationShared {
            information_id: information_id.clone(),
            idempotency_key: key,
            shared_by: Some(shared_by),
            child: Some(child),
            circumstances,
            police_risk_assessment: request.police_risk_assessment,
            local_authority: Some(local_authority),
            received_at: Some(received_at),
        };
        let mut new = service_core::event::by_person(&shared, &caller);
        new.occurred_at = validate::system_time(&received_at);
        new.event_id = id;
        new.correlation_id = id.as_bytes().to_vec();
        // A retry carries the same event id: answered from the first.
        let token = self
            .append_to(
                &format!("information-{information_id}"),
                ExpectedVersion::Any,
                new,
            )
            .await?;
        Ok(Response::new(wire::ShareInformationResponse {
            information_id,
            token: Some(token),
        }))
    }

    async fn record_domestic_abuse_incident(
        &self,
        request: Request<wire::RecordDomesticAbuseIncidentRequest>,
    ) -> Result<Response<wire::RecordDomesticAbuseIncidentResponse>, Status> {
        let (caller, request) = limits::checked(request)?;
        audit::allow(&self.inner.log, rpc::INCIDENT, &caller, &Parties::default()).await?;
        let reference = validate::required_text("police_reference", &request.police_reference)?;
        let child = validate_child(request.child.as_ref(), self.inner.clock.today())?;
        // The school is told the child's name and date of birth.
        if child.given_name.is_empty() || child.family_name.is_empty() {
            return Err(invalid(
                "child.given_name",
                "the child's given and family names are required: the school is told whom the incident is about",
            ));
        }
        if child.date_of_birth.is_none() {
            return Err(invalid(
                "child.date_of_birth",
                "is required: an unborn child has no school",
            ));
        }
        let school = request
            .school
            .as_ref()
            .map(|school| validate::organisation("school", Some(school)))
            .transpose()?;
        if let Some(school) = &school
            && !matches!(
                contract::common::v1::OrganisationKind::try_from(school.kind),
                Ok(contract::common::v1::OrganisationKind::School
                    | contract::common::v1::OrganisationKind::EarlyYears
                    | contract::common::v1::OrganisationKind::Unspecified)
            )
        {
            return Err(invalid("school.kind", "must be SCHOOL or EARLY_YEARS"));
        }
        let local_authority =
            validate::organisation("local_authority", request.local_authority.as_ref())?;
        let occurred_at = request
            .occurred_at
            .as_ref()
            .ok_or_else(|| invalid("occurred_at", "is required"))
            .and_then(|at| validate::timestamp_or_now("occurred_at", Some(at)))?;
        let received_at = validate::timestamp_or_now("received_at", None)?;
        if occurred_at.seconds > received_at.seconds + 300 {
            return Err(invalid("occurred_at", "is in the future"));
        }
        let location = validate::required_text("location", &request.location)?;
        let due_by = validate::next_school_day_start(&occurred_at, &self.inner.calendar);
        let id = EventId::derived(
            EventId::from_bytes([0; 16]),
            &format!("incident:{}:{reference}", caller.organisation),
            0,
        );
        let incident_id = id.to_string();
        let told = school.clone().unwrap_or_else(|| local_authority.clone());
        let reported = wire::DomesticAbuseIncidentReported {
            incident_id: incident_id.clone(),
            police_reference: reference,
            reported_by: Some(wire::Referrer {
                organisation: caller.to_wire().organisation,
                person: request.officer,
            }),
            child: Some(child),
            school,
            local_authority: Some(local_authority),
            occurred_at: Some(occurred_at),
            location,
            child_present: request.child_present,
            child_said: request.child_said.trim().to_owned(),
            due_by: Some(due_by),
            received_at: Some(received_at),
        };
        let mut new = service_core::event::by_person(&reported, &caller);
        new.event_id = id;
        new.correlation_id = id.as_bytes().to_vec();
        // A retry carries the same event id: answered from the first, whose
        // due time and whom it told stand.
        let token = self
            .append_to(
                &format!("incident-{incident_id}"),
                ExpectedVersion::Any,
                new,
            )
            .await?;
        Ok(Response::new(wire::RecordDomesticAbuseIncidentResponse {
            incident_id,
            told: Some(told),
            due_by: Some(due_by),
            token: Some(token),
        }))
    }
}
