//! `run`: wires the consumer, its poll thread and the partition workers together,
//! and implements startup (dead-letter topic) and graceful shutdown.
//!
//! Threads: partition workers run on the caller's tokio runtime. The consumer's main
//! queue (group membership, rebalances, errors) is served by a dedicated OS thread,
//! because the rebalance callback has to *block* until revoked partitions finish
//! their in-flight record, and blocking a runtime worker could deadlock a
//! current-thread runtime.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use futures::channel::oneshot;
use futures::future::{select, Either};
use rdkafka::consumer::{Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::Message;
use tokio::runtime::Handle;

use crate::client_log::RateLimiter;
use crate::commit::commit_sync;
use crate::config::ConsumerConfig;
use crate::context::{GroupContext, PartitionSpawner};
use crate::dead_letter::{prepare_dead_letter_topic, DeadLetterSink};
use crate::partition::{spawn_worker, GroupConsumer, WorkerDeps};
use crate::worker::WorkerHandle;
use crate::observer::{NoObserver, Observer};
use crate::record::RecordHandler;

struct Spawner<H> {
    /// Weak: the consumer owns the context that owns this spawner.
    consumer: Weak<GroupConsumer>,
    runtime: Handle,
    deps: Arc<WorkerDeps<H>>,
}

impl<H: RecordHandler> PartitionSpawner for Spawner<H> {
    fn spawn(&self, topic: &str, partition: i32) -> Option<WorkerHandle> {
        let consumer = self.consumer.upgrade()?;
        spawn_worker(
            &self.runtime,
            &consumer,
            topic,
            partition,
            self.deps.clone(),
        )
    }
}

/// How often the lag of every assigned partition is sampled from the broker.
const LAG_INTERVAL: Duration = Duration::from_secs(5);
/// How often the brokers are asked for metadata, to report whether they answer.
const REACHABILITY_INTERVAL: Duration = Duration::from_secs(2);
/// How often the lag in time and the pause of each partition are reported
/// (read from the workers, no broker request).
const TIME_LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Consumes `config.topics` as member of `config.group_id` until `shutdown`
/// resolves, calling `handler` for every record (at-least-once, in order per
/// partition, partitions concurrently). Returns Ok after a graceful shutdown; errors
/// only on invalid configuration or when the cluster refuses the dead-letter topic
/// setup. Transient broker errors never end it.
pub async fn run<H: RecordHandler>(
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    run_observed(config, handler, Arc::new(NoObserver), shutdown).await
}

/// [`run`], reporting membership, outcomes, stalls and lag to `observer`.
pub async fn run_observed<H: RecordHandler>(
    config: ConsumerConfig,
    handler: Arc<H>,
    observer: Arc<dyn Observer>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    config.validate()?;
    let mut shutdown = pin!(shutdown);

    let dead_letter = match &config.dead_letter_topic {
        Some(topic) => {
            let sink = DeadLetterSink::new(&config, topic)?;
            tokio::select! {
                prepared = prepare_dead_letter_topic(&config, topic) => prepared?,
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested during startup");
                    return Ok(());
                }
            }
            Some(Arc::new(sink))
        }
        None => {
            tracing::info!("no dead-letter topic configured: records that fail permanently or exhaust their retries are logged and skipped");
            None
        }
    };

    let context = GroupContext::new(&config.brokers, config.drain_timeout, observer.clone());
    let consumer: Arc<GroupConsumer> = Arc::new(
        config
            .consumer_client_config()
            .create_with_context(context)
            .map_err(|e| anyhow!("creating the kafka consumer for {}: {e}", config.brokers))?,
    );
    consumer.context().set_spawner(Box::new(Spawner {
        consumer: Arc::downgrade(&consumer),
        runtime: Handle::current(),
        deps: Arc::new(WorkerDeps {
            handler,
            group_id: config.group_id.clone(),
            max_batch: config.max_batch,
            handler_timeout: config.handler_timeout,
            retry: config.retry.clone(),
            dead_letter,
            observer: observer.clone(),
        }),
    }));
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("subscribing to {topics:?}"))?;
    tracing::info!(brokers = %config.brokers, group = %config.group_id, ?topics, "kafka consumer started");

    let (stop_poll, poll_stopped) = oneshot::channel();
    let poll_thread = std::thread::Builder::new()
        .name("kafka-consumer-poll".into())
        .spawn({
            let consumer = consumer.clone();
            move || serve_main_queue(consumer, poll_stopped)
        })
        .context("starting the kafka consumer poll thread")?;

    let stop_lag = Arc::new(AtomicBool::new(false));
    let lag = tokio::spawn(sample_lag(
        Arc::downgrade(&consumer),
        config.topics[0].clone(),
        observer,
        stop_lag.clone(),
    ));
    shutdown.await;
    // Waited for, not aborted: a sample in flight holds a reference to the consumer,
    // and the poll thread must be the one that drops the last (see stop).
    stop_lag.store(true, Ordering::Relaxed);
    let _ = lag.await;
    tracing::info!("kafka consumer shutting down: finishing in-flight records");
    stop(consumer, config.drain_timeout, stop_poll, poll_thread).await;
    tracing::info!("kafka consumer stopped");
    Ok(())
}

/// Polls the consumer's main queue, which is what drives group membership and runs
/// the rebalance callbacks, until told to stop; then drops what should be the last
/// reference to the consumer, which closes it (final revoke and commit, leave group).
fn serve_main_queue(consumer: Arc<GroupConsumer>, mut stop: oneshot::Receiver<()>) {
    let unexpected = RateLimiter::new(Duration::from_secs(30));
    futures::executor::block_on(async {
        loop {
            let next = pin!(consumer.recv());
            match select(next, &mut stop).await {
                Either::Right(_) => break,
                Either::Left((Ok(message), _)) => {
                    // Cannot happen while every assigned partition has its queue
                    // split before assignment; never store an offset for it.
                    if unexpected.check().is_some() {
                        tracing::error!(
                            topic = message.topic(), partition = message.partition(), offset = message.offset(),
                            "record arrived on the consumer's main queue instead of its partition queue; not processed"
                        );
                    }
                }
                // Transient (broker down, topic not yet created...): librdkafka
                // recovers by itself; keep serving.
                Either::Left((Err(error), _)) => consumer
                    .context()
                    .log
                    .report_error(&error, "kafka consumer"),
            }
        }
    });
    drop(consumer);
}

/// Reports every assigned partition's lag: its high watermark, asked of the broker
/// (so it grows while a partition is paused), minus the next offset to finish;
/// and whether the brokers answer at all (a metadata request for `topic`): a
/// broker outage shorter than the group's session timeout costs no partition,
/// so the group callbacks alone would not tell.
async fn sample_lag(
    consumer: Weak<GroupConsumer>,
    topic: String,
    observer: Arc<dyn Observer>,
    stop: Arc<AtomicBool>,
) {
    const TICK: Duration = Duration::from_millis(100);
    let (mut since_lag, mut since_probe) = (Duration::ZERO, REACHABILITY_INTERVAL);
    let mut since_time_lag = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        // Short sleeps, so a shutdown never waits long for this task.
        tokio::time::sleep(TICK).await;
        since_lag += TICK;
        since_probe += TICK;
        since_time_lag += TICK;
        if since_time_lag >= TIME_LAG_INTERVAL {
            since_time_lag = Duration::ZERO;
            let Some(client) = consumer.upgrade() else { return };
            client.context().report_time_lag();
        }
        let probe = since_probe >= REACHABILITY_INTERVAL;
        let lag = since_lag >= LAG_INTERVAL;
        if !probe && !lag {
            continue;
        }
        if probe {
            since_probe = Duration::ZERO;
        }
        if lag {
            since_lag = Duration::ZERO;
        }
        let Some(client) = consumer.upgrade() else { return };
        let positions = if lag { client.context().positions() } else { Vec::new() };
        let (observer, stop, topic) = (observer.clone(), stop.clone(), topic.clone());
        // fetch_metadata and fetch_watermarks block until the broker answers.
        let sampled = tokio::task::spawn_blocking(move || {
            if probe {
                let answered = client.fetch_metadata(Some(&topic), Duration::from_secs(2)).is_ok();
                observer.brokers_reachable(answered);
                let incremental = matches!(client.rebalance_protocol(), RebalanceProtocol::Cooperative);
                if incremental && client.assignment().is_ok_and(|a| a.count() == 0) && generation(&*client) > 0 {
                    observer.member_without_partitions();
                }
            }
            for (topic, partition, next) in positions {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok((_, high)) = client.fetch_watermarks(&topic, partition, Duration::from_secs(2)) {
                    observer.lag(&topic, partition, (high - next).max(0));
                }
            }
        });
        let _ = sampled.await;
    }
}

/// The consumer's generation in its group (its member epoch under KIP-848):
/// above 0 once it is a member, whatever it was assigned. rdkafka does not
/// expose it; librdkafka's group metadata carries it.
fn generation<C: ConsumerContext, K: Consumer<C>>(consumer: &K) -> i32 {
    use rdkafka::bindings::{
        rd_kafka_consumer_group_metadata, rd_kafka_consumer_group_metadata_destroy,
        rd_kafka_consumer_group_metadata_generation_id,
    };
    // SAFETY: the client pointer is valid while `consumer` is borrowed; the
    // metadata is a copy that this function owns and destroys.
    unsafe {
        let metadata = rd_kafka_consumer_group_metadata(consumer.client().native_ptr());
        if metadata.is_null() {
            return -1;
        }
        let generation = rd_kafka_consumer_group_metadata_generation_id(metadata);
        rd_kafka_consumer_group_metadata_destroy(metadata);
        generation
    }
}

async fn stop(
    consumer: Arc<GroupConsumer>,
    drain_timeout: Duration,
    stop_poll: oneshot::Sender<()>,
    poll_thread: JoinHandle<()>,
) {
    let workers = consumer.context().close();
    for worker in &workers {
        worker.stop();
    }
    // One deadline for all of them: they drain concurrently.
    let deadline = tokio::time::Instant::now() + drain_timeout;
    for worker in workers {
        worker.wait_or_abort(deadline).await;
    }

    let committer = consumer.clone();
    let commit = tokio::task::spawn_blocking(move || commit_sync(&*committer, "shutdown"));
    if tokio::time::timeout(drain_timeout, commit).await.is_err() {
        tracing::warn!(
            "final offset commit did not finish within {drain_timeout:?} (broker unreachable?)"
        );
    }

    // The poll thread drops the last reference: closing the consumer runs its final
    // revoke callback, which needs the main queue served on that thread.
    drop(consumer);
    let _ = stop_poll.send(());
    let joined = tokio::task::spawn_blocking(move || poll_thread.join());
    match tokio::time::timeout(drain_timeout + Duration::from_secs(5), joined).await {
        Ok(Ok(Ok(()))) => {}
        Ok(_) => tracing::error!("kafka consumer poll thread panicked"),
        Err(_) => tracing::warn!(
            "closing the kafka consumer is taking long (broker unreachable?); not waiting any more"
        ),
    }
}
