//! Logging and OpenTelemetry traces.
//!
//! Logs go to stderr as before. Traces are exported over OTLP exactly when
//! Spin would export them: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and not empty, and
//! `OTEL_SDK_DISABLED` is not. Every other `OTEL_*` variable is read as the
//! OpenTelemetry SDK reads it (protocol, headers, timeout, service name,
//! resource attributes, batch settings). The spans: one per Kafka record or
//! batch processed (from the `kafka-consumer` crate, with its commit and
//! dead-letter send as children) and one per HTTP request of the HTTP
//! trigger; a W3C `traceparent` on a record or request becomes its parent.
//!
//! Without export, the span targets are disabled for every layer, so creating
//! a span costs one cached check and nothing is parsed or allocated.

pub mod http;
mod otlp;
mod propagation;

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub use propagation::{adopt_record_context, trace_headers};

/// The `tracing` target of the host's own spans (HTTP requests).
pub const SPAN_TARGET: &str = "trigger_kafka::spans";

/// Installs the global subscriber: logs filtered by `log_filter`, and the OTLP
/// export when the environment asks for it. Keep the returned value alive
/// until the end of `main`: dropping it flushes the spans not yet exported.
pub fn install(log_filter: EnvFilter) -> Telemetry {
    // Spans are for export only: in the log lines they would prefix every
    // message of a record with a dozen attributes.
    let log_filter = [kafka_consumer::SPAN_TARGET, SPAN_TARGET]
        .into_iter()
        .fold(log_filter, |filter, target| filter.add_directive(format!("{target}=off").parse().expect("valid directive")));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(log_filter);

    let (export, failed) = match otlp::enabled() {
        false => (None, None),
        true => match otlp::Export::start() {
            Ok(export) => (Some(export), None),
            Err(e) => (None, Some(e)),
        },
    };
    let traces = export.as_ref().map(|export| {
        tracing_opentelemetry::layer()
            .with_tracer(export.tracer())
            .with_threads(false)
            .with_filter(filter_fn(|meta| {
                if meta.is_span() {
                    meta.target() == kafka_consumer::SPAN_TARGET || meta.target() == SPAN_TARGET
                } else {
                    // Log lines inside a span become its events (a retry's warning,
                    // the dead-letter error); wasmtime's compiler chatter does not.
                    *meta.level() <= tracing::Level::INFO && !meta.target().starts_with("cranelift") && !meta.target().starts_with("wasmtime_cranelift")
                }
            })
            .with_max_level_hint(tracing::level_filters::LevelFilter::INFO))
    });
    tracing_subscriber::registry().with(logs).with(traces).init();
    if let Some(export) = &export {
        tracing::info!("exporting traces over OTLP ({})", export.describe());
    }
    if let Some(e) = failed {
        tracing::warn!("OpenTelemetry traces are not exported: {e:#}");
    }
    Telemetry { export }
}

/// The running export, if any; flushed and stopped when dropped.
pub struct Telemetry {
    export: Option<otlp::Export>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(export) = self.export.take() {
            export.shutdown();
        }
    }
}
