//! The consumer's reports for one trigger ([`kafka_consumer::Observer`]),
//! into the metrics and the trigger's readiness.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::metrics::{ComponentTopic, Metrics, TopicPartition};
use super::readiness::{Health, TriggerHealth};
use crate::runtime::engine::PreparedComponent;

/// The consumer's reports for one trigger, into the metrics and its readiness.
pub struct TriggerObserver {
    component: String,
    metrics: Arc<Metrics>,
    health: Arc<TriggerHealth>,
}

impl TriggerObserver {
    /// Registers a trigger of `component` with readiness (not ready until its
    /// consumer joins the group).
    pub fn new(component: &PreparedComponent, metrics: Arc<Metrics>, health: &Health) -> Self {
        let trigger = Arc::new(TriggerHealth {
            component: component.context.id.clone(),
            joined: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            stalled: Mutex::new(BTreeSet::new()),
            component_handle: component.clone(),
        });
        health.triggers.lock().push(trigger.clone());
        TriggerObserver { component: component.context.id.clone(), metrics, health: trigger }
    }

    fn labels(&self, topic: &str) -> ComponentTopic {
        ComponentTopic { component: self.component.clone(), topic: topic.to_owned() }
    }
}

impl kafka_consumer::Observer for TriggerObserver {
    fn assigned(&self, partitions: &[(String, i32)]) {
        self.health.joined.store(true, Ordering::SeqCst);
        for (topic, _) in partitions {
            self.metrics.start_topic(&self.labels(topic));
        }
    }

    fn revoked(&self, partitions: &[(String, i32)], rejoining: bool) {
        if rejoining {
            self.health.joined.store(false, Ordering::SeqCst);
        }
        for (topic, partition) in partitions {
            let labels = TopicPartition { topic: topic.clone(), partition: *partition };
            self.metrics.lag.remove(&labels);
            self.metrics.lag_seconds.remove(&labels);
            self.metrics.paused_seconds.remove(&labels);
        }
    }

    fn member_without_partitions(&self) {
        self.health.joined.store(true, Ordering::SeqCst);
    }

    fn brokers_reachable(&self, reachable: bool) {
        self.health.reachable.store(reachable, Ordering::SeqCst);
    }

    fn handler_call(&self, topic: &str, records: usize, elapsed: Duration, ok: bool) {
        let labels = self.labels(topic);
        self.metrics.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if ok {
            self.metrics.handled.get_or_create(&labels).inc_by(records as u64);
        } else if records == 1 {
            // A failed batch is replayed record by record; those calls count.
            self.metrics.failed.get_or_create(&labels).inc();
        }
    }

    fn retrying(&self, topic: &str, _partition: i32) {
        self.metrics.retried.get_or_create(&self.labels(topic)).inc();
    }

    fn dead_lettered(&self, topic: &str, _partition: i32) {
        self.metrics.dead_lettered.get_or_create(&self.labels(topic)).inc();
    }

    fn skipped(&self, topic: &str, _partition: i32) {
        self.metrics.skipped.get_or_create(&self.labels(topic)).inc();
    }

    fn stalled(&self, topic: &str, partition: i32, stalled: bool) {
        let key = (topic.to_owned(), partition);
        let mut set = self.health.stalled.lock();
        if stalled {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.metrics.lag.get_or_create(&TopicPartition { topic: topic.to_owned(), partition }).set(lag);
    }

    fn time_lag(&self, topic: &str, partition: i32, lag: Duration, paused: Duration) {
        let labels = TopicPartition { topic: topic.to_owned(), partition };
        self.metrics.lag_seconds.get_or_create(&labels).set(lag.as_secs_f64());
        self.metrics.paused_seconds.get_or_create(&labels).set(paused.as_secs_f64());
    }
}
