//! W3C trace context (`traceparent`, `tracestate`) in Kafka record headers,
//! as the OpenTelemetry Kafka instrumentations of other languages carry it.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use kafka_consumer::KafkaRecord;

struct RecordHeaders<'a>(&'a [(String, Option<Vec<u8>>)]);

impl Extractor for RecordHeaders<'_> {
    /// The first header of that name (any case) with a UTF-8 value.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .find_map(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The remote context a record carries, if it carries a valid one.
pub fn record_context(record: &KafkaRecord) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(&RecordHeaders(&record.headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// A record's span becomes the child of the record's context; a batch's span
/// is linked to each record's (a span has one parent).
pub fn adopt_record_context(span: &tracing::Span, records: &[KafkaRecord]) {
    match records {
        [record] => {
            if let Some(cx) = record_context(record) {
                // Fails only for a span already started, which the consumer never hands over.
                let _ = span.set_parent(cx);
            }
        }
        batch => {
            for cx in batch.iter().filter_map(record_context) {
                span.add_link(cx.span().span_context().clone());
            }
        }
    }
}

struct Headers(Vec<(String, Vec<u8>)>);

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value.into_bytes()));
    }
}

/// `span`'s context as record headers.
pub fn trace_headers(span: &tracing::Span) -> Vec<(String, Vec<u8>)> {
    let mut headers = Headers(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut headers);
    headers.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(headers: &[(&str, &[u8])]) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            value: None,
            headers: headers.iter().map(|(k, v)| (k.to_string(), Some(v.to_vec()))).collect(),
        }
    }

    #[test]
    fn a_traceparent_header_is_the_records_context_and_garbage_is_none() {
        let cx = record_context(&record(&[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])).unwrap();
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_remote() && sc.is_sampled());
        assert!(record_context(&record(&[("traceparent", b"not a trace")])).is_none());
        assert!(record_context(&record(&[("traceparent", &[0xff, 0xfe])])).is_none());
        assert!(record_context(&record(&[])).is_none());
    }
}
