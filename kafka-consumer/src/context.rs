//! The consumer's librdkafka context: rebalance hooks and the registry of partition
//! workers. Rebalance callbacks run on the consumer's poll thread (see runner.rs), so
//! they may block while revoked partitions finish their in-flight record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::client_log::ClientLog;
use crate::commit::commit_sync;
use crate::observer::Observer;
use crate::worker::WorkerHandle;

/// Starts the worker of a newly assigned partition. A trait object so the context
/// (part of the consumer's type) needs no handler type parameter.
pub(crate) trait PartitionSpawner: Send + Sync {
    fn spawn(&self, topic: &str, partition: i32) -> Option<WorkerHandle>;
}

#[derive(Default)]
struct Workers {
    running: HashMap<(String, i32), WorkerHandle>,
    /// Set at shutdown: no new worker may start, whatever the group coordinator says.
    closing: bool,
}

pub(crate) struct GroupContext {
    pub(crate) log: ClientLog,
    spawner: OnceLock<Box<dyn PartitionSpawner>>,
    workers: Mutex<Workers>,
    drain_timeout: Duration,
    observer: Arc<dyn Observer>,
}

impl GroupContext {
    pub(crate) fn new(brokers: &str, drain_timeout: Duration, observer: Arc<dyn Observer>) -> Self {
        GroupContext {
            log: ClientLog::new(brokers),
            spawner: OnceLock::new(),
            workers: Mutex::new(Workers::default()),
            drain_timeout,
            observer,
        }
    }

    /// Each running worker's partition and the next offset it has to finish (for lag).
    pub(crate) fn positions(&self) -> Vec<(String, i32, i64)> {
        self.lock()
            .running
            .values()
            .map(|w| (w.topic.clone(), w.partition, w.progress.next_offset()))
            .filter(|(_, _, next)| *next >= 0)
            .collect()
    }

    /// Reports each running worker's lag in time and pause. Under the lock, so
    /// that a revoke (which takes its workers out first) is never followed by a
    /// report on them; the observer does not block.
    pub(crate) fn report_time_lag(&self) {
        let workers = self.lock();
        for w in workers.running.values() {
            self.observer
                .time_lag(&w.topic, w.partition, w.progress.time_lag(), w.progress.paused_for());
        }
    }

    pub(crate) fn set_spawner(&self, spawner: Box<dyn PartitionSpawner>) {
        if self.spawner.set(spawner).is_err() {
            panic!("partition spawner set twice");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Workers> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shutdown: forbids new workers and hands over the running ones.
    pub(crate) fn close(&self) -> Vec<WorkerHandle> {
        let mut workers = self.lock();
        workers.closing = true;
        workers.running.drain().map(|(_, w)| w).collect()
    }

    fn start_workers(&self, tpl: &TopicPartitionList) {
        let Some(spawner) = self.spawner.get() else {
            tracing::error!("partitions assigned before the consumer was ready; they will not be processed until the next rebalance");
            return;
        };
        // Assigned again without a revoke in between: the old worker must be
        // gone before the new one starts (one worker per partition, always).
        // Waited for without the lock, which async code (lag sampling) takes.
        let stale: Vec<WorkerHandle> = {
            let mut workers = self.lock();
            if workers.closing {
                return;
            }
            tpl.elements()
                .iter()
                .filter_map(|elem| workers.running.remove(&(elem.topic().to_string(), elem.partition())))
                .collect()
        };
        let deadline = Instant::now() + self.drain_timeout;
        for old in &stale {
            old.stop();
        }
        for old in stale {
            old.finish_blocking(deadline);
        }
        for elem in tpl.elements() {
            let key = (elem.topic().to_string(), elem.partition());
            // Spawning takes no lock and never waits.
            let Some(worker) = spawner.spawn(elem.topic(), elem.partition()) else {
                tracing::error!(
                    topic = elem.topic(),
                    partition = elem.partition(),
                    "could not split the partition's queue; it will not be processed"
                );
                continue;
            };
            let mut workers = self.lock();
            if workers.closing {
                // Shutdown began meanwhile: this worker is not handed over by
                // close(), so it is stopped here.
                drop(workers);
                worker.stop();
                continue;
            }
            workers.running.insert(key, worker);
        }
    }

    fn stop_workers(&self, tpl: &TopicPartitionList) -> Vec<WorkerHandle> {
        let mut workers = self.lock();
        let stopped: Vec<WorkerHandle> = tpl
            .elements()
            .iter()
            .filter_map(|elem| {
                workers
                    .running
                    .remove(&(elem.topic().to_string(), elem.partition()))
            })
            .collect();
        drop(workers);
        for worker in &stopped {
            worker.stop();
        }
        stopped
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// "topic[0,1,2], other[3]"
pub(crate) fn describe(tpl: &TopicPartitionList) -> String {
    let mut by_topic: Vec<(String, Vec<i32>)> = Vec::new();
    for elem in tpl.elements() {
        match by_topic.iter_mut().find(|(t, _)| t == elem.topic()) {
            Some((_, partitions)) => partitions.push(elem.partition()),
            None => by_topic.push((elem.topic().to_string(), vec![elem.partition()])),
        }
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!("{topic}[{}]", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.report_error(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "kafka partitions assigned");
                // Before librdkafka applies the assignment, so every record of these
                // partitions goes to their own queue (see partition::spawn_worker).
                self.start_workers(tpl);
                self.observer.assigned(&partitions(tpl));
            }
            Rebalance::Revoke(tpl) => {
                // Eager (classic assignors but cooperative-sticky) revokes every
                // partition and the member waits for its next assignment;
                // incremental (KIP-848, cooperative-sticky) revokes some and the
                // member stays, unless its assignment was lost (session expired,
                // fenced), when it has to join again.
                let lost = consumer.assignment_lost();
                let rejoining = lost || !matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
                tracing::info!(partitions = %describe(tpl), lost, "kafka partitions revoked: finishing in-flight records, committing");
                let stopped = self.stop_workers(tpl);
                let deadline = Instant::now() + self.drain_timeout;
                // Returns only once every revoked worker has ended (finished or
                // aborted): the partition may come straight back to this process
                // or go to another, and its old worker must not run beside the new.
                for worker in stopped {
                    worker.finish_blocking(deadline);
                }
                self.observer.revoked(&partitions(tpl), rejoining);
                // Still assigned here, so the stored offsets of these partitions can
                // be committed under the current generation.
                commit_sync(consumer, "partitions revoked");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "kafka rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(offsets = ?offsets.to_topic_map(), "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => self
                .log
                .report_error(&error, "offset commit failed (retried at the next commit)"),
        }
    }
}
