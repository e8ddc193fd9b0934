//! One request followed across services: W3C trace context (`traceparent`)
//! read from gRPC metadata, kept in every event the request causes, and
//! carried on from there by the bus (NATS headers) to the events other
//! services derive from it.
//!
//! Spans are OpenTelemetry spans from an SDK tracer provider of our own, so
//! every hop gets a span id of its own while the trace id stays the
//! request's. No exporter is configured: the ids reach the logs (the `rpc`
//! span's `trace_id` field), the events and the partners' NATS headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Instrument as _;

/// The header (gRPC metadata, NATS header) and envelope field name.
pub const TRACEPARENT: &str = "traceparent";

fn tracer() -> &'static SdkTracer {
    static TRACER: OnceLock<SdkTracer> = OnceLock::new();
    TRACER.get_or_init(|| SdkTracerProvider::builder().build().tracer("safeguard"))
}

struct One<'a>(Option<&'a str>);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[derive(Default)]
struct Written(String);

impl Injector for Written {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = value;
        }
    }
}

/// A new span named `name`, the child of `traceparent`; the first span of
/// a new trace when there is none or it is malformed (as W3C asks: an
/// invalid header is ignored, never an error).
pub fn continue_from(traceparent: Option<&str>, name: &'static str) -> Context {
    let parent = TraceContextPropagator::new()
        .extract_with_context(&Context::new(), &One(traceparent.filter(|t| !t.is_empty())));
    let span = tracer().start_with_context(name, &parent);
    parent.with_span(span)
}

/// The `traceparent` of `cx`'s span, or "" when it has none.
pub fn traceparent_of(cx: &Context) -> String {
    let mut written = Written::default();
    TraceContextPropagator::new().inject_context(cx, &mut written);
    written.0
}

/// The `traceparent` of the span the caller runs in: what an event it
/// appends records.
pub fn current() -> String {
    traceparent_of(&Context::current())
}

/// The `traceparent` for an event derived from one recorded with
/// `source`: a child span in the same trace.
pub fn follow(source: &str, name: &'static str) -> String {
    traceparent_of(&continue_from(Some(source), name))
}

/// The 32 hex digits that name the trace, when `traceparent` is well formed.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}

/// The tower layer every service's gRPC server runs requests through: it
/// continues the caller's trace (or starts one), makes it current while the
/// handler runs, and answers with the handler's `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let caller = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok());
        let cx = continue_from(caller, "rpc");
        let traceparent = traceparent_of(&cx);
        let span = tracing::info_span!(
            "rpc",
            path = request.uri().path(),
            trace_id = trace_id(&traceparent)
        );
        let handled = self.inner.call(request);
        Box::pin(
            async move {
                let mut response = handled.await?;
                if let Ok(value) = http::HeaderValue::from_str(&traceparent) {
                    response.headers_mut().insert(TRACEPARENT, value);
                }
                Ok(response)
            }
            .with_context(cx)
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_span_of_its_own() {
        let child = follow(CALLER, "test");
        assert_eq!(trace_id(&child), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_ne!(child, CALLER);
        assert!(child.ends_with("-01"), "{child}");
    }

    #[test]
    fn no_or_malformed_context_starts_a_new_trace() {
        for given in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            let started = follow(given, "test");
            let trace = trace_id(&started).expect("a new trace");
            assert_ne!(trace, "00000000000000000000000000000000");
            assert_ne!(Some(trace), trace_id(CALLER));
        }
    }

    #[test]
    fn outside_any_span_there_is_no_traceparent() {
        assert_eq!(current(), "");
    }
}
