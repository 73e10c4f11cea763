//! librdkafka's log and error callbacks routed to `tracing`, rate-limited: while a
//! broker is down librdkafka reports every failed reconnect, and we want one clear
//! warning now and then saying which brokers are unreachable, not a flood.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;

const WARN_EVERY: Duration = Duration::from_secs(30);

/// Lets one message through per period; `suppressed` counts what was dropped
/// since. The one rate limiter of the workspace (the host's serve loop uses it
/// too, for accept failures and connection-cap hits).
pub struct RateLimiter {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimiter {
    pub fn new(period: Duration) -> Self {
        RateLimiter {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Some(number suppressed since the last one let through) when this one may be logged.
    pub fn check(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.period => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }

    /// Messages dropped since the last one let through.
    pub fn suppressed(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Forgets the past: the next message goes through.
    pub fn reset(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (None, 0);
    }
}

/// `ClientContext` shared by the consumer (wrapped in `GroupContext`), the
/// dead-letter producer and the admin client.
pub(crate) struct ClientLog {
    brokers: String,
    unreachable: RateLimiter,
    other_errors: RateLimiter,
    librdkafka_warnings: RateLimiter,
}

impl ClientLog {
    pub(crate) fn new(brokers: &str) -> Self {
        ClientLog {
            brokers: brokers.to_string(),
            unreachable: RateLimiter::new(WARN_EVERY),
            other_errors: RateLimiter::new(WARN_EVERY),
            librdkafka_warnings: RateLimiter::new(WARN_EVERY),
        }
    }
}

/// Errors that mean "cannot reach the cluster right now": librdkafka keeps
/// reconnecting by itself, so they are reported, never acted upon.
pub(crate) fn is_connectivity_error(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
        )
    )
}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                if let Some(suppressed) = self.librdkafka_warnings.check() {
                    tracing::warn!(target: "librdkafka", facility = fac, suppressed, "{message}");
                }
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(target: "librdkafka", facility = fac, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::trace!(target: "librdkafka", facility = fac, "{message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.report_error(&error, reason);
    }
}

impl ClientLog {
    pub(crate) fn report_error(&self, error: &KafkaError, reason: &str) {
        if is_connectivity_error(error) {
            if let Some(suppressed) = self.unreachable.check() {
                tracing::warn!(
                    brokers = %self.brokers,
                    suppressed,
                    "Kafka brokers unreachable ({}): {reason} ({error}); retrying, librdkafka reconnects by itself",
                    self.brokers
                );
            }
        } else if let Some(suppressed) = self.other_errors.check() {
            tracing::warn!(brokers = %self.brokers, suppressed, "Kafka client error: {reason} ({error})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_lets_one_through_per_period() {
        let limiter = RateLimiter::new(Duration::from_secs(3600));
        assert_eq!(limiter.check(), Some(0));
        assert_eq!(limiter.check(), None);
        assert_eq!(limiter.check(), None);
        let zero = RateLimiter::new(Duration::ZERO);
        assert_eq!(zero.check(), Some(0));
        assert_eq!(zero.check(), Some(0));
    }
}
