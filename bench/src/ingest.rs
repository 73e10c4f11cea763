//! `bench ingest`: the Kafka side, in steps the script sequences around the
//! host. `produce` preloads the topic; `consume-only` reads it back with a
//! plain consumer that applies nothing (the broker + client ceiling);
//! `wait-applied` watches the service's SQLite file until every user is there,
//! which times the host's whole ingest path (consume, instantiate, upsert).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::client::Client;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::json;
use uuid::Uuid;

use crate::stats::{emit, round};
use crate::users;

pub struct KafkaOptions {
    pub brokers: String,
    pub topic: String,
    pub messages: u64,
    pub partitions: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Lz4,
}

/// Counts delivery reports; the producer calls it from `poll`/`flush`.
#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Preloads `messages` user records, each a distinct new user keyed by its id,
/// so that "all applied" means exactly `messages` rows.
pub fn produce(options: &KafkaOptions, compression: Compression) -> Result<()> {
    let producer: BaseProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        // Throughput settings: leader-only acks, big batches, a few ms of linger.
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set(
            "compression.type",
            match compression {
                Compression::None => "none",
                Compression::Lz4 => "lz4",
            },
        )
        .create_with_context(DeliveryCounter::default())
        .context("creating the producer")?;
    check_partitions(producer.client(), options)?;

    let started = Instant::now();
    for i in 0..options.messages {
        let id = Uuid::new_v4();
        let key = id.to_string();
        let value = users::user_json(&id, i as u32);
        let mut record = BaseRecord::to(&options.topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // The local queue is full: serve delivery reports to make room.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => bail!("producing message {i}: {e}"),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("waiting for every delivery")?;
    let seconds = started.elapsed().as_secs_f64();
    let context = producer.context();
    let (delivered, failed) = (
        context.delivered.load(Ordering::Relaxed),
        context.failed.load(Ordering::Relaxed),
    );
    let rate = delivered as f64 / seconds;
    emit(
        &json!({
            "bench": "ingest", "step": "produce", "messages": options.messages, "delivered": delivered,
            "failed": failed, "seconds": round(seconds, 3), "msgs_per_s": round(rate, 1),
            "compression": format!("{compression:?}").to_lowercase(),
        }),
        &format!(
            "produce: {delivered} delivered ({failed} failed) in {seconds:.2} s = {rate:.0} msgs/s"
        ),
    );
    if delivered != options.messages {
        bail!(
            "only {delivered} of {} messages were delivered",
            options.messages
        );
    }
    Ok(())
}

/// Warns when the topic does not have the partition count the run assumes:
/// per-partition concurrency is what the host's ingest scales with.
fn check_partitions<C: ClientContext>(client: &Client<C>, options: &KafkaOptions) -> Result<()> {
    let metadata = client
        .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
        .with_context(|| {
            format!(
                "reading metadata of {} from {}",
                options.topic, options.brokers
            )
        })?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    if partitions as i32 != options.partitions {
        eprintln!(
            "warning: topic {} has {partitions} partitions, --partitions says {}",
            options.topic, options.partitions
        );
    }
    Ok(())
}

/// Reads `messages` records in a fresh consumer group and throws them away: the
/// broker's ceiling for the host's ingest. Timed from subscribe, so it includes
/// joining the group, like the host's run; in a KIP-848 group, as the trigger's
/// default is.
pub fn consume_only(options: &KafkaOptions, timeout: Duration) -> Result<()> {
    let group = format!("bench-consume-only-{}", Uuid::new_v4());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("group.id", &group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating the consumer")?;
    check_partitions(consumer.client(), options)?;
    let started = Instant::now();
    consumer
        .subscribe(&[&options.topic])
        .context("subscribing")?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut first = None;
    while received < options.messages {
        if started.elapsed() > timeout {
            bail!(
                "consume-only: only {received} of {} messages after {timeout:?}",
                options.messages
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Instant::now);
                received += 1;
                bytes += rdkafka::Message::payload(&message).map_or(0, <[u8]>::len) as u64;
            }
            Some(Err(e)) => eprintln!("consume-only: {e}"),
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let streaming = first.map_or(seconds, |f| f.elapsed().as_secs_f64());
    let rate = received as f64 / seconds;
    emit(
        &json!({
            "bench": "ingest", "step": "consume-only", "messages": received, "bytes": bytes,
            "seconds": round(seconds, 3), "msgs_per_s": round(rate, 1),
            "seconds_after_first": round(streaming, 3),
            "msgs_per_s_after_first": round(received as f64 / streaming, 1),
        }),
        &format!(
            "consume-only: {received} msgs in {seconds:.2} s = {rate:.0} msgs/s ({:.0} msgs/s after the first message, {:.2} s to join and fetch)",
            received as f64 / streaming,
            seconds - streaming
        ),
    );
    Ok(())
}

/// Where the service stores users.
pub enum Store {
    /// The SQLite file (`<state-dir>/sqlite_db.db`).
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

/// Counts `user_info` rows; `None` until the store exists and is migrated.
enum Counter {
    Sqlite(PathBuf, Option<rusqlite::Connection>),
    Postgres(String, Option<postgres::Client>),
}

impl Counter {
    fn new(store: &Store) -> Self {
        match store {
            Store::Sqlite(path) => Counter::Sqlite(path.clone(), None),
            Store::Postgres(url) => Counter::Postgres(url.clone(), None),
        }
    }

    fn count(&mut self) -> Option<u64> {
        const SQL: &str = "SELECT count(*) FROM user_info";
        match self {
            Counter::Sqlite(path, conn) => {
                if conn.is_none() && path.exists() {
                    // Read-only: the benchmark must not take write locks the host would wait on.
                    *conn = rusqlite::Connection::open_with_flags(&*path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
                }
                // Errors are expected until the host has created the table.
                conn.as_ref()?.query_row(SQL, [], |r| r.get::<_, i64>(0)).ok().map(|n| n as u64)
            }
            Counter::Postgres(url, client) => {
                if client.is_none() {
                    *client = postgres::Client::connect(url, postgres::NoTls).ok();
                }
                match client.as_mut()?.query_one(SQL, &[]) {
                    Ok(row) => Some(row.get::<_, i64>(0) as u64),
                    Err(e) => {
                        if e.is_closed() {
                            *client = None;
                        }
                        None
                    }
                }
            }
        }
    }
}

pub struct WaitOptions {
    pub store: Store,
    pub expect: u64,
    pub timeout: Duration,
    /// The host's pid: its peak RSS (VmHWM) is read when the count is reached.
    pub pid: Option<u32>,
}

/// Polls `SELECT count(*) FROM user_info` until it reaches `expect`. Timed from
/// this command's start, which the script makes the host's start. The file or
/// table may not exist yet (the host creates it on its first record): keep polling.
pub fn wait_applied(options: &WaitOptions) -> Result<()> {
    let started = Instant::now();
    let mut counter = Counter::new(&options.store);
    let mut first_row: Option<(Instant, u64)> = None;
    let mut last_report = Instant::now();
    let mut count = 0u64;
    loop {
        if started.elapsed() > options.timeout {
            bail!(
                "wait-applied: {count} of {} users after {:?}",
                options.expect,
                options.timeout
            );
        }
        if let Some(n) = counter.count() {
            count = n;
            if count > 0 && first_row.is_none() {
                first_row = Some((Instant::now(), count));
            }
        }
        if count >= options.expect {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "wait-applied: {count}/{} after {:.0} s",
                options.expect,
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = count as f64 / seconds;
    // Rate once records flow: excludes compile, group join and first fetch.
    let (steady_seconds, steady_rate) = match first_row {
        Some((at, n)) if count > n => {
            let s = at.elapsed().as_secs_f64();
            (s, (count - n) as f64 / s)
        }
        _ => (seconds, rate),
    };
    let peak_rss_kb = options.pid.and_then(crate::procstat::peak_rss_kb);
    emit(
        &json!({
            "bench": "ingest", "step": "wait-applied", "users": count, "seconds": round(seconds, 3),
            "msgs_per_s": round(rate, 1), "steady_seconds": round(steady_seconds, 3),
            "steady_msgs_per_s": round(steady_rate, 1), "peak_rss_kb": peak_rss_kb,
        }),
        &format!(
            "wait-applied: {count} users in {seconds:.2} s = {rate:.0} msgs/s ({steady_rate:.0} msgs/s once flowing, first row after {:.2} s); host peak RSS {}",
            seconds - steady_seconds,
            peak_rss_kb.map_or("n/a".to_owned(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
        ),
    );
    Ok(())
}
