//! `trigger-kafka dlq replay`: sends dead-lettered records back to where they
//! came from once their cause is fixed. Each copy carries the original key,
//! value and headers (the trigger's `kafka_dlt_*` headers removed) plus
//! `kafka_dlt_replayed`, the number of times it was replayed, so a record
//! that keeps failing is refused past a loop limit instead of cycling forever.
//! Progress is committed in a consumer group of its own after each produced
//! record, so an interrupted replay resumes and a finished one is not repeated.

mod filter;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use filter::{Decision, Filter};

pub const HEADER_REPLAYED: &str = "kafka_dlt_replayed";
const TIMEOUT: Duration = Duration::from_secs(30);

/// `trigger-kafka dlq replay`
#[derive(Parser, Debug)]
#[command(name = "trigger-kafka dlq replay", about = "Replays dead-lettered records to their original topic")]
pub struct ReplayArgs {
    /// Bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The dead-letter topic to read.
    #[arg(long)]
    pub from: String,
    /// Where to write; default: each record's `kafka_dlt_original_topic`.
    #[arg(long)]
    pub to: Option<String>,
    /// Only records dead-lettered at or after this time (RFC 3339, or milliseconds since the epoch).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records dead-lettered before this time (RFC 3339, or milliseconds since the epoch).
    #[arg(long)]
    pub until: Option<String>,
    /// Only records whose `kafka_dlt_error_kind` is this (`permanent`, `retryable-exhausted`, `trap`).
    #[arg(long = "error-kind")]
    pub error_kind: Option<String>,
    /// Print what would be replayed; produce and commit nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// A record already replayed this many times is refused (a loop).
    #[arg(long = "max-replays", default_value_t = 3)]
    pub max_replays: u32,
    /// The consumer group that keeps the replay's progress.
    #[arg(long)]
    pub group: Option<String>,
    /// Raw librdkafka settings for both clients (repeatable `key=value`, e.g. SASL/TLS).
    #[arg(long = "client", value_name = "KEY=VALUE")]
    pub client: Vec<String>,
}

/// Runs `trigger-kafka dlq <args>`; `args` excludes the program and `dlq`.
pub fn main(args: Vec<String>) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("replay") => {
            let args = ReplayArgs::parse_from(std::iter::once("trigger-kafka dlq replay".to_owned()).chain(args.into_iter().skip(1)));
            let summary = replay(&args)?;
            println!("{summary}");
            Ok(())
        }
        _ => bail!("usage: trigger-kafka dlq replay --from <dead-letter topic> [--to TOPIC] [--since T] [--until T] [--error-kind KIND] [--dry-run]"),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub replayed: u64,
    pub filtered: u64,
    pub refused: u64,
    pub dry_run: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run { "would replay" } else { "replayed" };
        write!(
            f,
            "dlq replay: {verb} {} record(s); {} outside the filters; {} refused at the loop limit",
            self.replayed, self.filtered, self.refused
        )
    }
}

fn config(args: &ReplayArgs) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.brokers);
    for setting in &args.client {
        let (k, v) = setting.split_once('=').with_context(|| format!("--client {setting:?}: expected KEY=VALUE"))?;
        config.set(k, v);
    }
    Ok(config)
}

pub fn replay(args: &ReplayArgs) -> Result<Summary> {
    let filter = Filter::new(args)?;
    let group = args.group.clone().unwrap_or_else(|| format!("trigger-kafka-dlq-replay.{}", args.from));
    let consumer: BaseConsumer = config(args)?
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating the consumer")?;
    let producer: ThreadedProducer<DefaultProducerContext> = config(args)?
        .set("enable.idempotence", "true")
        .create()
        .context("creating the producer")?;

    let (assignment, mut end) = window(&consumer, &args.from)?;
    let mut summary = Summary { dry_run: args.dry_run, ..Summary::default() };
    if end.is_empty() {
        return Ok(summary);
    }
    consumer.assign(&assignment)?;
    while !end.is_empty() {
        let Some(message) = consumer.poll(TIMEOUT) else {
            bail!("no record within {TIMEOUT:?} while {} partition(s) have more", end.len());
        };
        let message = message.context("reading the dead-letter topic")?;
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&high) = end.get(&partition) else { continue };
        if offset >= high {
            end.remove(&partition);
            continue;
        }
        match filter.decide(&message) {
            Decision::Skip => summary.filtered += 1,
            Decision::Refuse(times) => {
                summary.refused += 1;
                eprintln!("dlq replay: {}/{partition}@{offset} refused: already replayed {times} time(s)", args.from);
            }
            Decision::Replay { to, replayed } => {
                summary.replayed += 1;
                if args.dry_run {
                    println!("dlq replay: would send {}/{partition}@{offset} to {to} (replay {replayed})", args.from);
                } else {
                    send(&producer, &message, &to, replayed)?;
                }
            }
        }
        if !args.dry_run {
            // Only after the copy is on the broker: a crash before this replays
            // the record again, never skips it.
            producer.flush(TIMEOUT).context("waiting for the replayed records")?;
            let mut done = TopicPartitionList::new();
            done.add_partition_offset(&args.from, partition, Offset::Offset(offset + 1))?;
            consumer.commit(&done, CommitMode::Sync).context("committing the replay's progress")?;
        }
        if offset + 1 >= high {
            end.remove(&partition);
        }
    }
    Ok(summary)
}

/// Where the replay starts on each partition (its committed progress, else the
/// start of the topic) and where it ends. The window is what the topic holds
/// now: records dead-lettered while the replay runs (perhaps its own, failing
/// again) wait for the next replay.
fn window(consumer: &BaseConsumer, from: &str) -> Result<(TopicPartitionList, HashMap<i32, i64>)> {
    let metadata = consumer.fetch_metadata(Some(from), TIMEOUT).context("reading the topic's metadata")?;
    let topic = metadata.topics().first().context("no such topic")?;
    if topic.partitions().is_empty() {
        bail!("topic {} does not exist or has no partitions", from);
    }
    let mut wanted = TopicPartitionList::new();
    for p in topic.partitions() {
        wanted.add_partition(from, p.id());
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT).context("reading the replay's committed offsets")?;
    let mut assignment = TopicPartitionList::new();
    let mut end: HashMap<i32, i64> = HashMap::new();
    for p in topic.partitions() {
        let (low, high) = consumer.fetch_watermarks(from, p.id(), TIMEOUT)?;
        let start = match committed.find_partition(from, p.id()).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        if start < high {
            assignment.add_partition_offset(from, p.id(), Offset::Offset(start))?;
            end.insert(p.id(), high);
        }
    }
    Ok((assignment, end))
}

/// The original record again: key, value, its own headers, and the replay count.
fn send(producer: &ThreadedProducer<DefaultProducerContext>, m: &BorrowedMessage<'_>, to: &str, replayed: u32) -> Result<()> {
    let mut headers = OwnedHeaders::new();
    if let Some(h) = m.headers() {
        for h in h.iter().filter(|h| !h.key.starts_with("kafka_dlt_")) {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
    }
    let count = replayed.to_string();
    headers = headers.insert(Header { key: HEADER_REPLAYED, value: Some(count.as_bytes()) });
    let mut record = BaseRecord::<[u8], [u8]>::to(to).headers(headers);
    if let Some(key) = m.key() {
        record = record.key(key);
    }
    if let Some(value) = m.payload() {
        record = record.payload(value);
    }
    producer.send(record).map_err(|(e, _)| e).with_context(|| format!("producing to {to}"))?;
    Ok(())
}
