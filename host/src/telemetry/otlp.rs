//! The OTLP trace exporter, configured from the environment as Spin and the
//! OpenTelemetry SDK configure it.
//!
//! Protocols: `http/protobuf` (the default) and `http/json`, over a hyper
//! client with TLS for `https://` endpoints (the system's roots, through the
//! OpenSSL the Kafka client links anyway). `grpc` would need a second HTTP/2
//! and protobuf-service stack; it is refused with a warning, and the app runs
//! without export.
//!
//! The export runs on a runtime of its own (one thread), not on the app's:
//! it then works the same for the triggers and for `trigger-kafka dlq`, and
//! a slow collector never competes with record processing.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{span_processor_with_async_runtime::BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// Spin's rule: an endpoint variable set and not empty, and the SDK not disabled.
pub fn enabled() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && !set("OTEL_SDK_DISABLED")
}

/// The protocol, as the SDK resolves it: the traces variable, else the
/// general one, else `http/protobuf`.
fn protocol() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".to_owned())
        .trim()
        .to_owned()
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`
/// (milliseconds), else the SDK's 10 s: how long one export request may take.
fn timeout() -> Duration {
    ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// `service.name` from `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// (the SDK's detectors), else `trigger-kafka`; `service.version` the binary's.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attrs| attrs.split(',').any(|kv| kv.split('=').next().is_some_and(|k| k.trim() == "service.name")));
    let mut builder = Resource::builder().with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if !named {
        builder = builder.with_service_name("trigger-kafka");
    }
    builder.build()
}

pub struct Export {
    provider: SdkTracerProvider,
    runtime: tokio::runtime::Runtime,
    protocol: String,
}

impl Export {
    pub fn start() -> Result<Export> {
        let protocol = protocol();
        let wire = match protocol.as_str() {
            "http/protobuf" => opentelemetry_otlp::Protocol::HttpBinary,
            "http/json" => opentelemetry_otlp::Protocol::HttpJson,
            "grpc" => bail!("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported by trigger-kafka; use http/protobuf (a collector's port 4318)"),
            other => bail!("{other:?} is not an OTLP protocol (grpc, http/protobuf, http/json)"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .context("the OTLP export runtime")?;
        let processor = {
            // The processor's task, and the client's connections, live on that runtime.
            let _entered = runtime.enter();
            let connector = hyper_tls::HttpsConnector::new();
            let client = opentelemetry_http::hyper::HyperClient::new(connector, timeout(), None);
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(wire)
                .with_http_client(client)
                .build()
                .context("the OTLP span exporter")?;
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build()
        };
        let provider = SdkTracerProvider::builder().with_resource(resource()).with_span_processor(processor).build();
        Ok(Export { provider, runtime, protocol })
    }

    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("trigger-kafka")
    }

    pub fn describe(&self) -> String {
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
            .unwrap_or_default();
        format!("{}, {endpoint}", self.protocol)
    }

    /// Exports what is still queued (graceful shutdown), then stops. Bounded:
    /// an unreachable collector delays the exit by at most the export timeout.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(timeout() + Duration::from_secs(1)) {
            eprintln!("OpenTelemetry: flushing spans at shutdown failed: {e}");
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}
