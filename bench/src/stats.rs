//! Latency histograms and the JSON/human reporting shared by every benchmark.
//! Latencies are kept in microseconds in an HDR histogram, so p99.9 is exact to
//! three significant figures without storing every sample.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Latencies of one connection or of a whole run (merged).
pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> Self {
        // 1 µs .. 60 s at 3 significant figures: a few hundred KB per histogram.
        Latencies(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        self.0.record(micros).expect("clamped into range");
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at `q` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        self.0.mean() / 1000.0
    }
}

/// Rounds for output: enough digits to compare runs, no float noise.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// Prints a result twice: one machine-readable JSON line on stdout (prefixed
/// nowhere, so `grep '^{'` finds it) and a human line on stderr.
pub fn emit(result: &Value, human: &str) {
    println!("{result}");
    eprintln!("{human}");
}

/// The latency fields every HTTP result carries.
pub fn latency_json(latencies: &Latencies) -> Value {
    json!({
        "samples": latencies.count(),
        "p50_ms": round(latencies.quantile_ms(0.50), 3),
        "p99_ms": round(latencies.quantile_ms(0.99), 3),
        "p999_ms": round(latencies.quantile_ms(0.999), 3),
        "max_ms": round(latencies.max_ms(), 3),
        "mean_ms": round(latencies.mean_ms(), 3),
    })
}

/// Parses `30s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn quantiles_in_ms() {
        let mut l = Latencies::new();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 100);
        assert!((l.quantile_ms(0.5) - 50.0).abs() < 0.1);
        assert!((l.quantile_ms(0.99) - 99.0).abs() < 0.1);
    }
}
