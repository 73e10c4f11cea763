//! What the consumer reports while it works, for the application's metrics and
//! readiness: group membership, per-call outcomes, retries, dead letters, skips,
//! stalled partitions and lag (in records and in time). The consumer knows no
//! metrics library; the application implements [`Observer`] (every method
//! defaults to doing nothing).

use std::time::Duration;

/// Called from the consumer's poll thread and partition workers: implementations
/// must be cheap and must not block.
pub trait Observer: Send + Sync + 'static {
    /// The group assigned this member its partitions (possibly none): it is a
    /// member of the group now.
    fn assigned(&self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }

    /// These partitions were taken away (a rebalance, or shutdown). `rejoining`:
    /// the member holds nothing until its next [`Observer::assigned`] (an eager
    /// rebalance, which revokes every partition, or a lost assignment). False
    /// under incremental rebalancing (KIP-848, cooperative-sticky), where a
    /// member gives up some partitions and stays in the group with the rest.
    fn revoked(&self, partitions: &[(String, i32)], rejoining: bool) {
        let _ = (partitions, rejoining);
    }

    /// The member is in its group with no partition to its name, and no rebalance
    /// callback said so: KIP-848 does not call one for a member whose assignment
    /// stays empty (more members than partitions). Reported every few seconds
    /// while it lasts, under incremental protocols only.
    fn member_without_partitions(&self) {}

    /// Whether the brokers answered the consumer's last periodic request (a
    /// metadata request every few seconds). False while the cluster is
    /// unreachable; the consumer keeps retrying and reports true once it answers.
    fn brokers_reachable(&self, reachable: bool) {
        let _ = reachable;
    }

    /// A handler call ended: `records` records (1, or a batch's size) in
    /// `elapsed`, applied when `ok`, else the call returned an error (or panicked).
    fn handler_call(&self, topic: &str, records: usize, elapsed: Duration, ok: bool) {
        let _ = (topic, records, elapsed, ok);
    }

    /// A record that failed retryably is scheduled for another attempt.
    fn retrying(&self, topic: &str, partition: i32) {
        let _ = (topic, partition);
    }

    /// A record went to the dead-letter topic.
    fn dead_lettered(&self, topic: &str, partition: i32) {
        let _ = (topic, partition);
    }

    /// A record failed for good and, without a dead-letter topic, was skipped
    /// (logged, its offset committed).
    fn skipped(&self, topic: &str, partition: i32) {
        let _ = (topic, partition);
    }

    /// The partition is paused retrying a record (`true`), or moves again (`false`:
    /// the record was done, or its worker stopped).
    fn stalled(&self, topic: &str, partition: i32, stalled: bool) {
        let _ = (topic, partition, stalled);
    }

    /// Records of the partition not yet done: its high watermark minus the next
    /// offset to process. Sampled periodically for every assigned partition.
    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        let _ = (topic, partition, lag);
    }

    /// The partition's lag in time and its pause, reported every second for
    /// every partition this member works on. `lag`: now minus the timestamp of
    /// the oldest record its worker has received and not yet finished (zero
    /// when it holds none: it waits for the fetcher). `paused`: how long it has
    /// been retrying its record (zero when it is not paused). Reported under
    /// the registry of workers, so never after [`Observer::revoked`] for a
    /// revoked partition.
    fn time_lag(&self, topic: &str, partition: i32, lag: Duration, paused: Duration) {
        let _ = (topic, partition, lag, paused);
    }
}

/// The observer of [`crate::run`]: ignores everything.
pub(crate) struct NoObserver;

impl Observer for NoObserver {}
