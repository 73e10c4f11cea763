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

/// The span `request` is served in, named `{method} {route}` (`{method}`
/// alone for a path no route matches).
pub fn server_span<B>(request: &hyper::Request<B>, route: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        "otel.name" = %match route {
            Some(route) => format!("{} {route}", request.method()),
            None => request.method().to_string(),
        },
        "otel.kind" = "server",
        "otel.status_code" = Empty,
        "http.request.method" = %request.method(),
        "url.path" = request.uri().path(),
        "url.scheme" = "http",
        "http.route" = route,
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

/// The response's status; a 5xx marks the span failed (a 4xx is the client's
/// error, not the server's, by the conventions).
pub fn record_status(span: &tracing::Span, status: hyper::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
