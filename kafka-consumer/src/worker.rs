//! The consumer's grip on a running partition worker: how to stop it and wait
//! for it, and what it reports of its progress (for lag). Shared by the group
//! context, which registers workers, and by partition.rs, which runs them; it
//! depends on neither, so the two do not depend on each other.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The consumer's grip on a running worker.
pub(crate) struct WorkerHandle {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    stop: watch::Sender<bool>,
    /// Disconnects when the worker task ends (however it ends): lets the rebalance
    /// callback, which is synchronous, wait for it.
    done: mpsc::Receiver<()>,
    join: JoinHandle<()>,
    pub(crate) progress: Arc<Progress>,
}

impl WorkerHandle {
    pub(crate) fn new(
        topic: &str,
        partition: i32,
        stop: watch::Sender<bool>,
        done: mpsc::Receiver<()>,
        join: JoinHandle<()>,
        progress: Arc<Progress>,
    ) -> Self {
        WorkerHandle { topic: topic.to_string(), partition, stop, done, join, progress }
    }

    /// Asks the worker to stop after its in-flight record; no new record is started.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Blocking wait (for the rebalance callback's thread). True if it ended in time.
    pub(crate) fn wait_blocking(&self, deadline: Instant) -> bool {
        match self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }

    /// Ends the worker for good before its partition may have another one (the
    /// rebalance callback's thread blocks here): waits until `deadline` for the
    /// in-flight record, then aborts the task. Aborting drops the handler's future,
    /// and with it the component instance and any transaction it held open, so the
    /// record's effects are rolled back and its offset stays uncommitted: the next
    /// owner of the partition redelivers it. An abort lands at the handler's next
    /// await point, so this keeps waiting (and says so) until the task is gone:
    /// two workers on one partition could apply its records out of order.
    pub(crate) fn finish_blocking(self, deadline: Instant) {
        if self.wait_blocking(deadline) {
            return;
        }
        tracing::warn!(
            topic = %self.topic, partition = self.partition,
            "in-flight record still running at the revoke deadline; aborting it (rolled back, not committed: it will be redelivered)"
        );
        self.join.abort();
        loop {
            match self.done.recv_timeout(Duration::from_secs(10)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => tracing::warn!(
                    topic = %self.topic, partition = self.partition,
                    "aborted handler has not yielded yet; the partition is not handed over until it has"
                ),
            }
        }
    }

    /// Async wait for shutdown; a worker still busy at `deadline` is aborted (its
    /// record was not committed, so it is redelivered after restart).
    pub(crate) async fn wait_or_abort(mut self, deadline: tokio::time::Instant) {
        if tokio::time::timeout_at(deadline, &mut self.join).await.is_err() {
            tracing::warn!(
                topic = %self.topic, partition = self.partition,
                "in-flight record still running at the drain deadline; abandoning it (it will be redelivered)"
            );
            self.join.abort();
            let _ = self.join.await;
        }
    }
}


/// No record held (see [`Progress::oldest_held_ms`]).
const NONE: i64 = i64::MIN;

/// What a worker tells the lag samplers, which read it from other threads.
pub(crate) struct Progress {
    /// The next offset the worker has to finish (-1 until it has seen a record).
    next_offset: AtomicI64,
    /// The earliest timestamp (ms since the epoch) among the records the worker
    /// has received and not yet finished, or NONE when it holds none. Records
    /// still in librdkafka's queue are all later in the partition than these.
    oldest_held_ms: AtomicI64,
    /// Since when the worker has been retrying its record (paused), if it is.
    paused_since: Mutex<Option<Instant>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            next_offset: AtomicI64::new(-1),
            oldest_held_ms: AtomicI64::new(NONE),
            paused_since: Mutex::new(None),
        }
    }
}

impl Progress {
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Relaxed)
    }

    /// A record at `offset` was received: the next offset is at least it.
    pub(crate) fn received(&self, offset: i64) {
        self.next_offset.fetch_max(offset, Ordering::Relaxed);
    }

    /// The record at `offset` is done.
    pub(crate) fn finished(&self, offset: i64) {
        self.next_offset.store(offset + 1, Ordering::Relaxed);
    }

    /// The worker now holds `records` (none: it waits for the next one). A
    /// record without a timestamp counts from now, its arrival.
    pub(crate) fn hold<'a>(&self, records: impl IntoIterator<Item = &'a crate::record::KafkaRecord>) {
        let oldest = records
            .into_iter()
            .map(|r| r.timestamp_ms.unwrap_or_else(now_ms))
            .min()
            .unwrap_or(NONE);
        self.oldest_held_ms.store(oldest, Ordering::Relaxed);
    }

    /// The partition pauses retrying its record (`true`), or moves again.
    pub(crate) fn set_paused(&self, paused: bool) {
        let mut since = self.paused_since.lock().unwrap_or_else(|e| e.into_inner());
        *since = match (paused, *since) {
            (true, Some(started)) => Some(started),
            (true, None) => Some(Instant::now()),
            (false, _) => None,
        };
    }

    /// Now minus the oldest held record's timestamp (zero when the worker holds
    /// none, or for a timestamp ahead of this host's clock).
    pub(crate) fn time_lag(&self) -> Duration {
        match self.oldest_held_ms.load(Ordering::Relaxed) {
            NONE => Duration::ZERO,
            oldest => Duration::from_millis(now_ms().saturating_sub(oldest).max(0) as u64),
        }
    }

    /// How long the partition has been paused (zero when it is not).
    pub(crate) fn paused_for(&self) -> Duration {
        let since = *self.paused_since.lock().unwrap_or_else(|e| e.into_inner());
        since.map_or(Duration::ZERO, |started| started.elapsed())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
