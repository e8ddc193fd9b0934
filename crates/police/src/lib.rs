//! The police forces' edge: `POST /reports` over HTTPS takes a coming-to-
//! notice report as a Metropolitan Police MERLIN report carries it (the
//! child, the circumstances, a high or low risk grading, a formal referral
//! or an information exchange, the officer in the case, the force's
//! reference) and, for a domestic abuse incident, what Operation Encompass
//! tells the child's school.
//!
//! It holds nothing: a formal referral is one `ReferralIntake/SubmitReferral`
//! (the grading as the police risk assessment), an information exchange one
//! `ReferralIntake/ShareInformation`, an incident one
//! `ReferralIntake/RecordDomesticAbuseIncident`, each over referral intake's
//! public gRPC API with the edge's certificate and the officer's own token,
//! and each keyed by the force's reference, so a report sent again is
//! answered as the first and writes nothing new. Who is calling is proven
//! as on gRPC (`trust`): mutual TLS with the force's certificate and a
//! bearer token of an officer of that force.

pub mod report;

use std::future::Future;
use std::sync::Arc;

use contract::referral::v1 as wire;
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::Code;
use trust::channel::Http2Channel;

use crate::report::{Kind, Problem, Report};

/// Where reports are posted.
pub const REPORTS: &str = "/reports";

/// What the edge needs: how to prove who calls, and where intake is.
#[derive(Debug, Clone)]
pub struct Options {
    pub trust: trust::Trust,
    /// Referral intake's gRPC address (or the one-process backbone's).
    pub referrals_url: String,
    /// Referral intake in this same process (`safeguard up`), reached
    /// through a pipe rather than TCP; `referrals_url` still names its
    /// certificate.
    pub referrals_pipe: Option<trust::pipe::Connector>,
}

#[derive(Clone)]
struct Intake {
    referrals: ReferralIntakeClient<Http2Channel>,
    authenticate: Arc<trust::layer::Authenticate>,
}

/// Serves HTTPS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let intake = Intake {
        referrals: ReferralIntakeClient::new(Http2Channel::new(
            &options.referrals_url,
            options.trust.service_client_config(),
            options.referrals_pipe.clone(),
        )?),
        authenticate: Arc::new(options.trust.authenticate()),
    };
    trust::https::serve(
        listener,
        options.trust.https_server_config()?,
        move |request, leaf| {
            let intake = intake.clone();
            async move {
                match intake.answer(request, leaf.as_deref()).await {
                    Ok(answer) => answer,
                    Err(refusal) => refusal.response(),
                }
            }
        },
        shutdown,
    )
    .await
}

/// Why a report was not taken: an HTTP status and the problems, each
/// naming its field.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    problems: Vec<Problem>,
}

impl Refusal {
    fn new(status: StatusCode, problem: impl Into<String>) -> Refusal {
        Refusal {
            status,
            problems: vec![Problem {
                field: String::new(),
                problem: problem.into(),
            }],
        }
    }

    /// The backbone's refusal, as HTTP: an invalid argument names its field
    /// as `field: problem`.
    fn of(status: &tonic::Status) -> Refusal {
        let message = status.message();
        let http = match status.code() {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => StatusCode::CONFLICT,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let (field, problem) = match (status.code(), message.split_once(": ")) {
            (Code::InvalidArgument, Some((field, problem))) if !field.contains(' ') => {
                (field.to_owned(), problem.to_owned())
            }
            _ => (String::new(), message.to_owned()),
        };
        Refusal {
            status: http,
            problems: vec![Problem { field, problem }],
        }
    }

    fn response(&self) -> http::Response<Full<Bytes>> {
        let errors: Vec<Value> = self
            .problems
            .iter()
            .map(|p| json!({ "field": p.field, "problem": p.problem }))
            .collect();
        respond(self.status, &json!({ "errors": errors }))
    }
}

fn respond(status: StatusCode, body: &Value) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn timestamp(stamp: Option<&prost_types::Timestamp>) -> String {
    stamp.map_or_else(String::new, service_core::validate::instant)
}

impl Intake {
    async fn answer(
        &self,
        request: http::Request<Bytes>,
        leaf: Option<&[u8]>,
    ) -> Result<http::Response<Full<Bytes>>, Refusal> {
        if request.uri().path() != REPORTS {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no such resource: reports are posted to {REPORTS}"),
            ));
        }
        if request.method() != http::Method::POST {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "reports are POSTed",
            ));
        }
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| Refusal::new(StatusCode::UNAUTHORIZED, "Authorization: not text"))
            })
            .transpose()?;
        let (_, caller) = self
            .authenticate
            .identify_leaf(leaf, authorization)
            .map_err(|status| Refusal::of(&status))?;
        let caller = caller.ok_or_else(|| {
            Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Authorization: the officer's Bearer access token is required",
            )
        })?;
        if caller.role != contract::common::v1::Role::PoliceOfficer {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "the police intake takes reports from police officers; others refer through SubmitReferral",
            ));
        }
        let today = service_core::validate::date_of(&std::time::SystemTime::now().into());
        let report = report::parse(request.body(), today).map_err(|problems| Refusal {
            status: StatusCode::BAD_REQUEST,
            problems,
        })?;
        let token = authorization.unwrap_or_default();
        let body = self.record(&report, &caller, token).await?;
        Ok(respond(StatusCode::OK, &body))
    }

    /// A request to intake carrying the officer's own token.
    fn as_officer<T>(message: T, token: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = token.parse() {
            request
                .metadata_mut()
                .insert(trust::layer::AUTHORIZATION, value);
        }
        request
    }

    /// Records `report`: the referral or the information, then the
    /// incident. Each is keyed by the force's reference, so sending the
    /// report again (after a failure part way, say) completes it without
    /// writing anything twice.
    async fn record(
        &self,
        report: &Report,
        caller: &trust::Caller,
        token: &str,
    ) -> Result<Value, Refusal> {
        let mut referrals = self.referrals.clone();
        let assessment = wire::PoliceRiskAssessment {
            reference: report.force_reference.clone(),
            kind: match report.kind {
                Kind::FormalReferral => wire::PoliceReportKind::FormalReferral,
                Kind::InformationExchange => wire::PoliceReportKind::InformationExchange,
            }
            .into(),
            overall_rating: report.risk.into(),
            ..wire::PoliceRiskAssessment::default()
        };
        // The force is the caller's own organisation, as its certificate
        // and the officer's token prove.
        let officer = wire::Referrer {
            organisation: caller.to_wire().organisation,
            person: Some(report.officer.clone()),
        };
        let mut body = match report.kind {
            Kind::FormalReferral => {
                let submitted = referrals
                    .submit_referral(Self::as_officer(
                        wire::SubmitReferralRequest {
                            idempotency_key: report.force_reference.clone(),
                            referrer: Some(officer),
                            child: Some(report.child.clone()),
                            concerns: report.circumstances.clone(),
                            category_of_concern: report.category.into(),
                            police_risk_assessment: Some(assessment),
                            consent: report.consent.clone(),
                            local_authority: Some(report.local_authority.clone()),
                            received_at: None,
                        },
                        token,
                    ))
                    .await
                    .map_err(|status| Refusal::of(&status))?
                    .into_inner();
                json!({
                    "force_reference": report.force_reference,
                    "recorded_as": "referral",
                    "referral_id": submitted.referral_id,
                    "decision_due": submitted.decision_due.as_ref().map(service_core::validate::iso_date),
                    "token": submitted.token.as_ref().map(service_core::consistency::show),
                })
            }
            Kind::InformationExchange => {
                let shared = referrals
                    .share_information(Self::as_officer(
                        wire::ShareInformationRequest {
                            idempotency_key: report.force_reference.clone(),
                            shared_by: Some(officer),
                            child: Some(report.child.clone()),
                            circumstances: report.circumstances.clone(),
                            police_risk_assessment: Some(assessment),
                            local_authority: Some(report.local_authority.clone()),
                            received_at: None,
                        },
                        token,
                    ))
                    .await
                    .map_err(|status| Refusal::of(&status))?
                    .into_inner();
                json!({
                    "force_reference": report.force_reference,
                    "recorded_as": "information",
                    "information_id": shared.information_id,
                    "token": shared.token.as_ref().map(service_core::consistency::show),
                })
            }
        };
        if let Some(incident) = &report.incident {
            let recorded = referrals
                .record_domestic_abuse_incident(Self::as_officer(
                    wire::RecordDomesticAbuseIncidentRequest {
                        police_reference: report.force_reference.clone(),
                        child: Some(report.child.clone()),
                        school: report.school.clone(),
                        local_authority: Some(report.local_authority.clone()),
                        occurred_at: Some(incident.occurred_at),
                        location: incident.location.clone(),
                        child_present: incident.child_present,
                        child_said: incident.child_said.clone(),
                        officer: Some(report.officer.clone()),
                    },
                    token,
                ))
                .await
                .map_err(|status| Refusal::of(&status))?
                .into_inner();
            let told = recorded.told.unwrap_or_default();
            body["operation_encompass"] = json!({
                "incident_id": recorded.incident_id,
                "told": { "ods_code": told.ods_code, "name": told.name },
                "due_by": timestamp(recorded.due_by.as_ref()),
            });
        }
        Ok(body)
    }
}
