//! Reading the host's Prometheus text exposition (`/metrics`). The one rule:
//! a series that is absent is never read as 0. The host creates every
//! per-topic series at zero once its topic is assigned, so "0" is a line the
//! host wrote; a misspelt name or label, or a metric the host stopped
//! exporting, fails the test instead of passing as "nothing happened".

/// The value of the sample `name_and_labels` (e.g.
/// `trigger_kafka_records_handled_total{component="c",topic="t"}`), or None
/// while it is absent: for polling, where "not yet" is a normal answer.
pub fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The value of the sample `name_and_labels`; panics, with the whole body,
/// when the host does not export it.
pub fn metric(body: &str, name_and_labels: &str) -> f64 {
    sample(body, name_and_labels).unwrap_or_else(|| panic!("/metrics has no sample {name_and_labels}:\n{body}"))
}

/// The label set of one component's per-topic series.
pub fn component_topic(component: &str, topic: &str) -> String {
    format!("{{component=\"{component}\",topic=\"{topic}\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_series_is_none_never_zero() {
        let body = "# TYPE x counter\nx_total{a=\"1\"} 0\nx_total{a=\"12\"} 5\n";
        assert_eq!(sample(body, "x_total{a=\"1\"}"), Some(0.0));
        assert_eq!(sample(body, "x_total{a=\"12\"}"), Some(5.0));
        assert_eq!(sample(body, "x_total{a=\"2\"}"), None);
        assert_eq!(sample(body, "x_total"), None, "a prefix of a series is not the series");
        assert!(std::panic::catch_unwind(|| metric(body, "y_total{a=\"1\"}")).is_err());
    }
}
