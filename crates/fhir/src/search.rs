//! One search, from HTTP request to FHIR answer: who is calling, the
//! national headers, the NHS number searched for, one registry lookup, and
//! the answer or the refusal as the national API gives them.

use contract::common::v1::{ConsistencyToken, NhsNumber};
use contract::registry::v1 as wire;
use http::{HeaderMap, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Serialize;
use tonic::Code;

use crate::Edge;
use crate::resources::{self, NHS_NUMBER_SYSTEM};

/// Sent and returned: the writes a search must see, and what the lookup
/// wrote (`log@position,…`, as the gRPC API's tokens print).
pub const CONSISTENCY_TOKEN: &str = "safeguard-consistency-token";
/// Why the caller looks, recorded with the access; the national API has no
/// such header, so unscheduled care is assumed.
const PURPOSE: &str = "unscheduled care attendance";

/// A refusal as the national API gives it.
struct Refusal {
    status: StatusCode,
    issue: &'static str,
    code: &'static str,
    diagnostics: String,
}

impl Refusal {
    fn new(status: StatusCode, issue: &'static str, code: &'static str, why: String) -> Self {
        Refusal {
            status,
            issue,
            code,
            diagnostics: why,
        }
    }

    fn search(why: impl Into<String>) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "INVALID_SEARCH_DATA",
            why.into(),
        )
    }

    fn header(why: impl Into<String>) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "PRECONDITION_FAILED",
            why.into(),
        )
    }

    /// A gRPC refusal of the registry's, in HTTP's terms.
    fn of(status: &tonic::Status) -> Self {
        let why = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => Refusal::search(why),
            Code::Unauthenticated => {
                Refusal::new(StatusCode::UNAUTHORIZED, "login", "UNAUTHORISED", why)
            }
            Code::PermissionDenied => {
                Refusal::new(StatusCode::FORBIDDEN, "forbidden", "ACCESS_DENIED", why)
            }
            Code::ResourceExhausted => Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "TOO_MANY_REQUESTS",
                why,
            ),
            // Fail closed: the child's history could not be applied, and
            // the message says whom to call instead.
            Code::FailedPrecondition => Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "processing",
                "UNPROCESSABLE_ENTITY",
                why,
            ),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "SERVICE_UNAVAILABLE",
                why,
            ),
            _ => Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                "INTERNAL_SERVER_ERROR",
                why,
            ),
        }
    }

    fn response(self) -> http::Response<Full<Bytes>> {
        fhir(
            self.status,
            &resources::operation_outcome(self.issue, self.code, &self.diagnostics),
            None,
        )
    }
}

fn fhir(
    status: StatusCode,
    body: &impl Serialize,
    token: Option<&ConsistencyToken>,
) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/fhir+json");
    if let Some(token) =
        token.and_then(|token| never_indexed(service_core::consistency::show(token)))
    {
        response = response.header(CONSISTENCY_TOKEN, token);
    }
    // A searchset of a plan or two, or of the recent accesses, in one
    // allocation rather than a growing one.
    let mut json = Vec::with_capacity(4096);
    if serde_json::to_writer(&mut json, body).is_err() {
        json.clear();
    }
    response
        .body(Full::new(Bytes::from(json)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}

/// A header value that is new on every message (a trace, a token of what
/// was written), marked for HTTP/2 never to add it to the connection's
/// header table: it would only push out the ones that repeat, and each
/// later message would compare itself against every copy.
fn never_indexed(value: String) -> Option<http::HeaderValue> {
    let mut value = http::HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The resource searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Searched {
    CareTeam,
    AuditEvent,
}

pub(crate) async fn answer(
    edge: &Edge,
    request: http::Request<()>,
    leaf: Option<&[u8]>,
) -> http::Response<Full<Bytes>> {
    if request.method() != http::Method::GET {
        return Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "METHOD_NOT_ALLOWED",
            format!("{} is not served: search with GET", request.method()),
        )
        .response();
    }
    let searched = match request.uri().path().trim_end_matches('/') {
        "/metadata" => {
            return fhir(StatusCode::OK, &resources::capability_statement(), None);
        }
        "/CareTeam" => Searched::CareTeam,
        "/AuditEvent" => Searched::AuditEvent,
        other => {
            return Refusal::new(
                StatusCode::NOT_FOUND,
                "not-supported",
                "INVALID_RESOURCE",
                format!("{other} is not a resource served here: CareTeam and AuditEvent are"),
            )
            .response();
        }
    };
    match search(edge, searched, &request, leaf).await {
        Ok(response) => response,
        Err(refusal) => refusal.response(),
    }
}

async fn search(
    edge: &Edge,
    searched: Searched,
    request: &http::Request<()>,
    leaf: Option<&[u8]>,
) -> Result<http::Response<Full<Bytes>>, Refusal> {
    let headers = request.headers();
    let authorization = match headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            Refusal::new(
                StatusCode::UNAUTHORIZED,
                "login",
                "UNAUTHORISED",
                "Authorization: not text".into(),
            )
        })?),
    };
    let (_, caller) = edge
        .inner
        .authenticate
        .identify_leaf(leaf, authorization)
        .map_err(|status| Refusal::of(&status))?;
    if caller.is_none() {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "UNAUTHORISED",
            "Authorization: a Bearer access token is required".into(),
        ));
    }
    let silent = unscheduled(headers)?;
    let traceparent = trace(headers)?;
    let min_token = match headers.get(CONSISTENCY_TOKEN) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Refusal::header(format!("{CONSISTENCY_TOKEN}: not text")))
                .and_then(|text| {
                    service_core::consistency::parse(text)
                        .map_err(|why| Refusal::header(format!("{CONSISTENCY_TOKEN}: {why}")))
                })?,
        ),
    };
    let nhs_number = patient(request.uri().query().unwrap_or_default())?;
    // The caller's own token goes on with the lookup, as it came (a shared
    // buffer, not a copy), with the trace it continues.
    let mut metadata = HeaderMap::with_capacity(2);
    if let Some(authorization) = headers.get(http::header::AUTHORIZATION) {
        metadata.insert(http::header::AUTHORIZATION, authorization.clone());
    }
    if let Some(traceparent) = never_indexed(traceparent) {
        metadata.insert("traceparent", traceparent);
    }
    let lookup = tonic::Request::from_parts(
        tonic::metadata::MetadataMap::from_headers(metadata),
        tonic::Extensions::default(),
        wire::LookupChildRequest {
            nhs_number: Some(NhsNumber {
                value: nhs_number.clone(),
            }),
            purpose: PURPOSE.into(),
            silent,
            min_token,
            // A CareTeam search shows the plans alone: the accesses are not
            // sent for it (the lookup is audited and notified the same).
            view: match searched {
                Searched::CareTeam => wire::LookupView::Plans,
                Searched::AuditEvent => wire::LookupView::Full,
            }
            .into(),
            ..wire::LookupChildRequest::default()
        },
    );
    let answer = edge
        .registry()
        .lookup_child(lookup)
        .await
        .map_err(|status| Refusal::of(&status))?
        .into_inner();
    let token = answer.token.as_ref();
    Ok(match searched {
        Searched::CareTeam => found(
            answer
                .plans
                .iter()
                .map(|plan| resources::care_team(&edge.inner.base_url, plan, &nhs_number))
                .collect(),
            token,
        ),
        Searched::AuditEvent => found(
            answer
                .recent_accesses
                .iter()
                .enumerate()
                .map(|(index, access)| resources::audit_event(access, &nhs_number, index))
                .collect(),
            token,
        ),
    })
}

/// A search's answer: its entries as a `searchset` Bundle, with the token
/// of what the lookup wrote.
fn found<R: Serialize>(
    entries: Vec<resources::Entry<R>>,
    token: Option<&ConsistencyToken>,
) -> http::Response<Full<Bytes>> {
    fhir(StatusCode::OK, &resources::searchset(entries), token)
}

/// `IsUnscheduledAccessEvent`: absent or `true`, the owning council is
/// told; `false`, a silent read (which the policy allows only some roles).
fn unscheduled(headers: &HeaderMap) -> Result<bool, Refusal> {
    match headers.get("isunscheduledaccessevent").map(|v| v.to_str()) {
        None => Ok(false),
        Some(Ok(value)) if value.eq_ignore_ascii_case("true") => Ok(false),
        Some(Ok(value)) if value.eq_ignore_ascii_case("false") => Ok(true),
        Some(_) => Err(Refusal::header(
            "IsUnscheduledAccessEvent: expected true or false",
        )),
    }
}

/// The national `TraceID` (a GUID) as the W3C trace the lookup continues;
/// without one, a trace of its own.
fn trace(headers: &HeaderMap) -> Result<String, Refusal> {
    let span = uuid::Uuid::now_v7().simple().to_string()[16..].to_owned();
    let trace_id = match headers.get("traceid").map(|v| v.to_str()) {
        None => uuid::Uuid::now_v7().simple().to_string(),
        Some(Ok(value)) => uuid::Uuid::parse_str(value.trim())
            .map_err(|_| Refusal::header("TraceID: expected a GUID"))?
            .simple()
            .to_string(),
        Some(Err(_)) => return Err(Refusal::header("TraceID: expected a GUID")),
    };
    Ok(format!("00-{trace_id}-{span}-01"))
}

/// The NHS number of `patient:identifier=https://fhir.nhs.uk/Id/nhs-number|…`.
fn patient(query: &str) -> Result<String, Refusal> {
    let wanted = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| decode(name) == "patient:identifier")
        .map(|(_, value)| decode(value))
        .ok_or_else(|| {
            Refusal::search(format!(
                "patient:identifier is required: {NHS_NUMBER_SYSTEM}|<NHS number>"
            ))
        })?;
    let number = wanted
        .strip_prefix(NHS_NUMBER_SYSTEM)
        .and_then(|rest| rest.strip_prefix('|'))
        .ok_or_else(|| {
            Refusal::search(format!(
                "patient:identifier: expected {NHS_NUMBER_SYSTEM}|<NHS number>, got {wanted:?}"
            ))
        })?;
    domain::NhsNumber::parse(number)
        .map(|number| number.to_string())
        .map_err(|error| Refusal::search(format!("patient:identifier: {error}")))
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => match bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    index += 3;
                }
                None => {
                    out.push(b'%');
                    index += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_is_read_from_the_national_search_parameter() {
        let number = |query: &str| patient(query).map_err(|refused| refused.diagnostics);
        assert_eq!(
            number("patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018"),
            Ok("9990000018".into())
        );
        assert_eq!(
            number(
                "patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C999+000+0018"
            ),
            Ok("9990000018".into())
        );
        for (query, says) in [
            ("", "is required"),
            ("patient:identifier=9990000018", "expected https://"),
            (
                "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9990000019",
                "check digit",
            ),
            (
                "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|%ZZ",
                "10 digits",
            ),
        ] {
            let refused = number(query).expect_err(query);
            assert!(refused.contains(says), "{query}: {refused}");
        }
    }

    #[test]
    fn each_refusal_of_the_registry_has_its_national_status_and_code() {
        for (code, status, national) in [
            (Code::InvalidArgument, 400, "INVALID_SEARCH_DATA"),
            (Code::Unauthenticated, 401, "UNAUTHORISED"),
            (Code::PermissionDenied, 403, "ACCESS_DENIED"),
            (Code::ResourceExhausted, 429, "TOO_MANY_REQUESTS"),
            (Code::FailedPrecondition, 422, "UNPROCESSABLE_ENTITY"),
            (Code::Unavailable, 503, "SERVICE_UNAVAILABLE"),
            (Code::Internal, 500, "INTERNAL_SERVER_ERROR"),
        ] {
            let refusal = Refusal::of(&tonic::Status::new(code, "why"));
            assert_eq!(
                (
                    refusal.status.as_u16(),
                    refusal.code,
                    refusal.diagnostics.as_str()
                ),
                (status, national, "why"),
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_national_headers_are_read_or_refused_by_name() {
        let mut headers = HeaderMap::new();
        assert_eq!(unscheduled(&headers).ok(), Some(false));
        headers.insert(
            "IsUnscheduledAccessEvent",
            "false".parse().expect("a value"),
        );
        assert_eq!(unscheduled(&headers).ok(), Some(true));
        headers.insert(
            "IsUnscheduledAccessEvent",
            "maybe".parse().expect("a value"),
        );
        assert!(unscheduled(&headers).is_err());
        headers.insert(
            "TraceID",
            "7d4a2b8e-1c3f-4e5a-9b6c-0d1e2f3a4b5c"
                .parse()
                .expect("a value"),
        );
        let traced = trace(&headers).ok().expect("a trace");
        assert!(
            traced.starts_with("00-7d4a2b8e1c3f4e5a9b6c0d1e2f3a4b5c-"),
            "{traced}"
        );
        headers.insert("TraceID", "not-a-guid".parse().expect("a value"));
        assert!(trace(&headers).is_err());
    }
}
