//! Retry timing: exponential backoff with jitter, shared by handler retries,
//! dead-letter produce retries and startup steps waiting for the broker.

use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

/// How often and how patiently a failing record is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Handler calls in total for one record, the first one included (so 5 means one
    /// call plus four retries), after which a record still failing retryably is
    /// dead-lettered. 0 means no limit: the partition stays paused on the record,
    /// retrying it, until it succeeds (what a database sink wants: an outage must
    /// not send valid records to the dead-letter topic).
    pub max_attempts: u32,
    /// Handler traps ([`crate::HandleError::Trap`]) on one record after which it
    /// is dead-lettered with kind `trap`, whatever `max_attempts` says (a
    /// deterministic crash never succeeds; with `max_attempts = 0` it would
    /// stall the partition forever). Each trap also counts as an attempt. 0
    /// means no limit.
    pub max_trap_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any single delay.
    pub max_backoff: Duration,
    /// Growth factor of the delay from one retry to the next.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            // A few, so a trap that is the host's trouble (memory under load)
            // gets retried, with backoff, before the record is given up.
            max_trap_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0 = the first retry). "Equal jitter": a
    /// uniform pick in [d/2, d] where d is the capped exponential delay, so many
    /// consumers failing on the same outage do not retry in lockstep, yet the delay
    /// never collapses to zero.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self.capped_delay(retry);
        let half = base / 2;
        let spread = (base - half).as_nanos() as u64;
        if spread == 0 {
            return base;
        }
        half + Duration::from_nanos(rand::rng().random_range(0..=spread))
    }

    fn capped_delay(&self, retry: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(retry.min(64) as i32);
        let secs = self.initial_backoff.as_secs_f64() * factor;
        let max = self.max_backoff.max(self.initial_backoff);
        if !secs.is_finite() || secs >= max.as_secs_f64() {
            max
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

/// An unbounded sequence of growing delays (capped at `max_backoff`), for things we
/// retry until they work or we are told to stop (broker down, dead-letter produce).
pub(crate) struct Backoff {
    policy: RetryPolicy,
    retry: u32,
}

impl Backoff {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Backoff {
            policy: policy.clone(),
            retry: 0,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.policy.backoff(self.retry);
        self.retry = self.retry.saturating_add(1);
        delay
    }
}

/// Sleeps unless `stop` is (or becomes) set. Returns false when stopped, so a record
/// waiting for its next retry does not hold up a revoke or a shutdown: it was not
/// committed, so it is redelivered later.
pub(crate) async fn sleep_unless_stopped(
    delay: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        biased;
        _ = stop.wait_for(|stopped| *stopped) => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d0 = p.backoff(0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d3 = p.backoff(3);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            let d30 = p.backoff(30);
            assert!(
                d30 >= Duration::from_secs(5) && d30 <= Duration::from_secs(10),
                "{d30:?}"
            );
        }
        assert_eq!(p.capped_delay(u32::MAX), Duration::from_secs(10));
    }
}
