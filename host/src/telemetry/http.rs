//! The server span of each request the HTTP trigger serves, after
//! OpenTelemetry's HTTP semantic conventions; a `traceparent` request header
//! makes it that trace's child.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::SPAN_TARGET;

/// The span `request` is served in; its name becomes `{method} {route}` once
/// the route is known ([`record_route`]).
pub fn server_span<B>(request: &hyper::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        "otel.name" = %request.method(),
        "otel.kind" = "server",
        "otel.status_code" = Empty,
        "http.request.method" = %request.method(),
        "url.path" = request.uri().path(),
        "url.scheme" = "http",
        "http.route" = Empty,
        "http.response.status_code" = Empty,
    );
    if !span.is_disabled() {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        if cx.span().span_context().is_valid() {
            let _ = span.set_parent(cx);
        }
    }
    span
}

/// The matched route (`/user`, `/api/...`), on the current request's span.
pub fn record_route(method: &hyper::Method, pattern: &str) {
    let span = tracing::Span::current();
    span.record("http.route", pattern);
    span.record("otel.name", format!("{method} {pattern}"));
}

/// The response's status; a 5xx marks the span failed (a 4xx is the client's
/// error, not the server's, by the conventions).
pub fn record_status(span: &tracing::Span, status: hyper::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
