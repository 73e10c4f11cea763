//! One worker task per assigned partition: reads the partition's own librdkafka queue
//! (split from the consumer's), runs the handler one record at a time in offset order,
//! retries, dead-letters, and stores the offset once a record is done. Different
//! partitions' workers run concurrently; a stop signal (revoke, shutdown) ends a
//! worker after its in-flight record. A retryable failure pauses the partition: the
//! worker retries that record (with backoff, without limit unless the policy sets
//! one) before it reads the next.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{Instrument, Span};

use crate::commit::store_done;
use crate::context::GroupContext;
use crate::dead_letter::{DeadLetterReason, DeadLetterSink};
use crate::observer::Observer;
use crate::record::{HandleError, KafkaRecord, RecordHandler};
use crate::retry::{sleep_unless_stopped, RetryPolicy};
use crate::spans;
use crate::worker::{Progress, WorkerHandle};

pub(crate) type GroupConsumer = StreamConsumer<GroupContext>;

/// What every partition worker of one consumer shares.
pub(crate) struct WorkerDeps<H> {
    pub(crate) handler: Arc<H>,
    /// The consumer group, for the processing spans.
    pub(crate) group_id: String,
    pub(crate) max_batch: usize,
    pub(crate) handler_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) dead_letter: Option<Arc<DeadLetterSink>>,
    pub(crate) observer: Arc<dyn Observer>,
}

enum Outcome {
    /// Handled, dead-lettered or skipped: its offset may be committed.
    Done,
    /// Interrupted by a stop before it was done: not committed.
    Abandoned,
}

/// Splits the partition's queue off the consumer and starts its worker. Must run
/// before librdkafka starts fetching the partition (the runner does it in
/// pre_rebalance, before the assignment is applied) so that no record of the
/// partition lands in the consumer's main queue.
pub(crate) fn spawn_worker<H: RecordHandler>(
    runtime: &Handle,
    consumer: &Arc<GroupConsumer>,
    topic: &str,
    partition: i32,
    deps: Arc<WorkerDeps<H>>,
) -> Option<WorkerHandle> {
    let queue = consumer.split_partition_queue(topic, partition)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = mpsc::channel();
    let progress = Arc::new(Progress::default());
    let worker = PartitionWorker {
        topic: topic.to_string(),
        partition,
        queue,
        consumer: consumer.clone(),
        deps,
        progress: progress.clone(),
    };
    let join = runtime.spawn(async move {
        let _done = done_tx; // dropped when the task ends or is aborted
        worker.run(stop_rx).await;
    });
    Some(WorkerHandle::new(topic, partition, stop_tx, done_rx, join, progress))
}

struct PartitionWorker<H> {
    topic: String,
    partition: i32,
    queue: StreamPartitionQueue<GroupContext>,
    consumer: Arc<GroupConsumer>,
    deps: Arc<WorkerDeps<H>>,
    progress: Arc<Progress>,
}

impl<H: RecordHandler> PartitionWorker<H> {
    /// The record at `offset` is done: commit it, and the next one is the lag's base.
    /// Runs in the record's (or batch's) processing span, whose child is the commit's.
    fn done(&self, offset: i64) {
        spans::commit(&self.topic, self.partition, offset)
            .in_scope(|| store_done(&*self.consumer, &self.topic, self.partition, offset));
        self.progress.finished(offset);
    }

    /// A processing span, handed to the handler for its trace context.
    fn traced(&self, span: Span, records: &[KafkaRecord]) -> Span {
        if !span.is_disabled() {
            self.deps.handler.trace_span(&span, records);
        }
        span
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::debug!(topic = %self.topic, partition = self.partition, "partition worker started");
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                next = self.queue.recv() => next,
            };
            let record = match next {
                Ok(message) => KafkaRecord::from_message(&message),
                Err(error) => {
                    // Fetch errors are transient or handled by librdkafka (offset
                    // reset, reconnect); report and keep reading.
                    self.consumer.context().log.report_error(
                        &error,
                        &format!("fetching {}[{}]", self.topic, self.partition),
                    );
                    continue;
                }
            };
            // Revoked or shutting down while this record was arriving: leave it.
            if *stop.borrow() {
                break;
            }
            self.progress.received(record.offset);
            let batch = self.gather(record);
            self.progress.hold(&batch);
            if batch.len() > 1 {
                let span = self.traced(spans::process_batch(&batch, &self.deps.group_id), &batch);
                if self.try_batch(&batch).instrument(span.clone()).await {
                    span.in_scope(|| self.done(batch.last().expect("non-empty").offset));
                    self.progress.hold(&[]);
                    continue;
                }
            }
            let mut abandoned = false;
            for (i, record) in batch.iter().enumerate() {
                let (record, offset) = (record.clone(), record.offset);
                if *stop.borrow() {
                    abandoned = true;
                    break;
                }
                self.progress.hold(&batch[i..]);
                let span = self.traced(spans::process(&record, &self.deps.group_id), std::slice::from_ref(&record));
                match self.process(record, &mut stop).instrument(span.clone()).await {
                    Outcome::Done => span.in_scope(|| self.done(offset)),
                    Outcome::Abandoned => {
                        abandoned = true;
                        break;
                    }
                }
            }
            if abandoned {
                break;
            }
            self.progress.hold(&[]);
        }
        tracing::debug!(topic = %self.topic, partition = self.partition, "partition worker stopped");
    }

    /// A call past `handler_timeout`: its future (the component instance, any
    /// open transaction) is already dropped; retried like any transient failure.
    fn timed_out(&self) -> HandleError {
        HandleError::Retryable(format!(
            "handler did not finish within handler_timeout ({:?}); call abandoned",
            self.deps.handler_timeout
        ))
    }

    /// `first` plus the records already waiting in the partition's queue, up to
    /// `max_batch`: never waits for more, so batching adds no latency.
    fn gather(&self, first: KafkaRecord) -> Vec<KafkaRecord> {
        let mut batch = vec![first];
        while batch.len() < self.deps.max_batch {
            match self.queue.recv().now_or_never() {
                Some(Ok(message)) => batch.push(KafkaRecord::from_message(&message)),
                Some(Err(error)) => {
                    self.consumer.context().log.report_error(
                        &error,
                        &format!("fetching {}[{}]", self.topic, self.partition),
                    );
                    break;
                }
                None => break,
            }
        }
        batch
    }

    /// One all-or-nothing call for the batch. False when the handler does not
    /// take batches or the batch failed: the caller replays it record by record.
    async fn try_batch(&self, batch: &[KafkaRecord]) -> bool {
        let started = Instant::now();
        let call = AssertUnwindSafe(self.deps.handler.handle_batch(batch)).catch_unwind();
        let result = match tokio::time::timeout(self.deps.handler_timeout, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Some(Err(HandleError::Retryable(format!(
                "handler panicked: {}",
                panic_message(&*panic)
            )))),
            Err(_) => Some(Err(self.timed_out())),
        };
        if let Some(Err(error)) = &result {
            let span = Span::current();
            span.record("otel.status_code", "error");
            span.record("otel.status_description", error.message());
        }
        if let Some(result) = &result {
            self.deps
                .observer
                .handler_call(&self.topic, batch.len(), started.elapsed(), result.is_ok());
        }
        match result {
            Some(Ok(())) => true,
            Some(Err(error)) => {
                tracing::debug!(
                    topic = %self.topic, partition = self.partition, records = batch.len(), %error,
                    "batch failed; replaying it record by record"
                );
                false
            }
            None => false,
        }
    }

    async fn process(&self, record: KafkaRecord, stop: &mut watch::Receiver<bool>) -> Outcome {
        let mut stalled = Stalled::new(self, &record);
        // 0: retry a retryable failure until it succeeds (a database sink).
        let max_attempts = self.deps.retry.max_attempts;
        let limit = if max_attempts == 0 { "no limit".to_string() } else { max_attempts.to_string() };
        // Traps so far on this record (see RetryPolicy::max_trap_attempts).
        let max_traps = self.deps.retry.max_trap_attempts;
        let mut traps = 0u32;
        let mut attempt = 1;
        loop {
            // A panicking handler must not kill the partition's worker (the partition
            // would stall): it counts as a retryable failure.
            let started = Instant::now();
            let call = AssertUnwindSafe(self.deps.handler.handle(record.clone())).catch_unwind();
            let result = match tokio::time::timeout(self.deps.handler_timeout, call).await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(HandleError::Retryable(format!(
                    "handler panicked: {}",
                    panic_message(&*panic)
                ))),
                Err(_) => Err(self.timed_out()),
            };
            self.deps
                .observer
                .handler_call(&record.topic, 1, started.elapsed(), result.is_ok());
            let trapped = matches!(result, Err(HandleError::Trap(_)));
            match result {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            attempt, "record applied after retrying; partition moving again"
                        );
                    }
                    return Outcome::Done;
                }
                Err(HandleError::Permanent(error)) => {
                    return self
                        .dead_letter(&record, DeadLetterReason::Permanent, &error, stop)
                        .await;
                }
                Err(HandleError::Trap(error)) if max_traps != 0 && traps + 1 >= max_traps => {
                    return self.dead_letter(&record, DeadLetterReason::Trap, &error, stop).await;
                }
                Err(HandleError::Retryable(error) | HandleError::Trap(error))
                    if max_attempts == 0 || attempt < max_attempts =>
                {
                    if trapped {
                        traps += 1;
                    }
                    stalled.set();
                    self.deps.observer.retrying(&record.topic, record.partition);
                    let delay = self.deps.retry.backoff(attempt - 1);
                    // One line per backoff step: the delay grows to max_backoff, so a
                    // long outage logs at most once per max_backoff.
                    tracing::warn!(
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        attempt, max_attempts = %limit, traps, %error,
                        "handler failed; partition paused, retrying in {delay:?}"
                    );
                    if !sleep_unless_stopped(delay, stop).await {
                        tracing::info!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            "retry interrupted by revoke/shutdown; record not committed, it will be redelivered"
                        );
                        return Outcome::Abandoned;
                    }
                    attempt += 1;
                }
                Err(HandleError::Retryable(error) | HandleError::Trap(error)) => {
                    return self
                        .dead_letter(&record, DeadLetterReason::RetryableExhausted, &error, stop)
                        .await;
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        record: &KafkaRecord,
        reason: DeadLetterReason,
        error: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let Some(sink) = &self.deps.dead_letter else {
            // Documented behaviour: without a dead-letter topic a failed record is
            // logged and skipped, so a poison message cannot block its partition.
            tracing::error!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                reason = reason.as_str(), error,
                "record failed and no dead-letter topic is configured: skipping it (its offset is committed)"
            );
            spans::record_failure(reason.as_str(), error);
            self.deps.observer.skipped(&record.topic, record.partition);
            return Outcome::Done;
        };
        spans::record_failure(reason.as_str(), error);
        let send = spans::dead_letter_send(sink.topic());
        let trace = if send.is_disabled() { Vec::new() } else { self.deps.handler.trace_headers(&send) };
        if !sink.send(record, reason, error, &trace, stop).instrument(send).await {
            return Outcome::Abandoned;
        }
        self.deps.observer.dead_lettered(&record.topic, record.partition);
        tracing::error!(
            topic = %record.topic, partition = record.partition, offset = record.offset,
            reason = reason.as_str(), error, dead_letter_topic = sink.topic(),
            "record dead-lettered"
        );
        Outcome::Done
    }
}

/// Reports a partition paused in retries, and moving again when dropped (done,
/// dead-lettered, or abandoned on a stop).
struct Stalled<'a> {
    observer: &'a dyn Observer,
    progress: &'a Progress,
    topic: &'a str,
    partition: i32,
    reported: bool,
}

impl<'a> Stalled<'a> {
    fn new<H>(worker: &'a PartitionWorker<H>, record: &'a KafkaRecord) -> Self {
        Stalled {
            observer: &*worker.deps.observer,
            progress: &worker.progress,
            topic: &record.topic,
            partition: record.partition,
            reported: false,
        }
    }

    fn set(&mut self) {
        if !self.reported {
            self.reported = true;
            self.progress.set_paused(true);
            self.observer.stalled(self.topic, self.partition, true);
        }
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        if self.reported {
            self.progress.set_paused(false);
            self.observer.stalled(self.topic, self.partition, false);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
