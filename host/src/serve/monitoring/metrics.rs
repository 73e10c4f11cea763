//! Every Prometheus metric of the process: what the Kafka consumer reports,
//! as counters, a latency histogram, and lag and pause gauges.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ComponentTopic {
    pub(super) component: String,
    pub(super) topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TopicPartition {
    pub(super) topic: String,
    pub(super) partition: i32,
}

/// Every metric of the process (names without the `_total` suffix that the
/// exposition adds to counters).
pub struct Metrics {
    registry: Registry,
    pub(super) handled: Family<ComponentTopic, Counter>,
    pub(super) retried: Family<ComponentTopic, Counter>,
    pub(super) failed: Family<ComponentTopic, Counter>,
    pub(super) dead_lettered: Family<ComponentTopic, Counter>,
    pub(super) skipped: Family<ComponentTopic, Counter>,
    pub(super) duration: Family<ComponentTopic, Histogram>,
    pub(super) lag: Family<TopicPartition, Gauge>,
    pub(super) lag_seconds: Family<TopicPartition, SecondsGauge>,
    pub(super) paused_seconds: Family<TopicPartition, SecondsGauge>,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let handled = Family::<ComponentTopic, Counter>::default();
        let retried = Family::<ComponentTopic, Counter>::default();
        let failed = Family::<ComponentTopic, Counter>::default();
        let dead_lettered = Family::<ComponentTopic, Counter>::default();
        let skipped = Family::<ComponentTopic, Counter>::default();
        // 100 µs .. ~13 s: a record's upsert is sub-millisecond, a batch or a
        // call waiting on a locked database takes seconds.
        let duration = Family::<ComponentTopic, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let lag = Family::<TopicPartition, Gauge>::default();
        let lag_seconds = Family::<TopicPartition, SecondsGauge>::default();
        let paused_seconds = Family::<TopicPartition, SecondsGauge>::default();
        registry.register("trigger_kafka_records_handled", "Records the component applied successfully", handled.clone());
        registry.register("trigger_kafka_records_retried", "Retries scheduled after a retryable failure", retried.clone());
        registry.register("trigger_kafka_records_failed", "Handler calls for one record that returned an error (each attempt counts)", failed.clone());
        registry.register("trigger_kafka_records_dead_lettered", "Records sent to the dead-letter topic", dead_lettered.clone());
        registry.register("trigger_kafka_records_skipped", "Records that failed for good and were skipped, for want of a dead-letter topic", skipped.clone());
        registry.register("trigger_kafka_handler_duration_seconds", "Duration of a handler call (one record, or one batch)", duration.clone());
        registry.register("trigger_kafka_consumer_lag", "Records not yet done: high watermark minus the next offset to process", lag.clone());
        registry.register("trigger_kafka_consumer_lag_seconds", "Now minus the timestamp of the oldest record received and not yet done (0 when none is held)", lag_seconds.clone());
        registry.register("trigger_kafka_partition_paused_seconds", "How long the partition has been paused retrying a record (0 when not paused)", paused_seconds.clone());
        Metrics { registry, handled, retried, failed, dead_lettered, skipped, duration, lag, lag_seconds, paused_seconds }
    }

    /// Creates every per-topic series of a trigger at zero. prometheus-client
    /// creates a label set only on its first use, so without this a trigger
    /// that never dead-lettered would have no `..._dead_lettered_total` line
    /// at all, and "0" could not be told from "not exported" (a renamed
    /// metric, a wrong label): Prometheus' advice is to initialize the series
    /// one knows of.
    pub(super) fn start_topic(&self, labels: &ComponentTopic) {
        for counter in [&self.handled, &self.retried, &self.failed, &self.dead_lettered, &self.skipped] {
            let _ = counter.get_or_create(labels);
        }
        let _ = self.duration.get_or_create(labels);
    }

    pub(super) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_topic_exports_every_series_at_zero() {
        let metrics = Metrics::new();
        let labels = ComponentTopic { component: "c".into(), topic: "t".into() };
        assert!(!metrics.encode().contains("component=\"c\""), "nothing before the topic starts");
        metrics.start_topic(&labels);
        let body = metrics.encode();
        for series in [
            "trigger_kafka_records_handled_total",
            "trigger_kafka_records_retried_total",
            "trigger_kafka_records_failed_total",
            "trigger_kafka_records_dead_lettered_total",
            "trigger_kafka_records_skipped_total",
            "trigger_kafka_handler_duration_seconds_count",
        ] {
            let line = format!("{series}{{component=\"c\",topic=\"t\"}} 0");
            assert!(body.lines().any(|l| l == line), "{line} missing from:\n{body}");
        }
    }
}
