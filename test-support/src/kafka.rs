//! The real test broker (started by scripts/test, or here on demand through
//! scripts/kafka-broker), and the one set of client helpers every test uses:
//! topics through the admin API, a producer, offsets as the broker keeps them,
//! and the reader of a topic from its start (dead-letter checks).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, TopicPartitionList};

/// The lead's broker, scripts/test's default.
pub const TEST_PORT: u16 = 19092;

/// The shared test broker's port (TEST_KAFKA_PORT, as scripts/test sets it).
pub fn test_port() -> u16 {
    std::env::var("TEST_KAFKA_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(TEST_PORT)
}

/// The shared test broker: TEST_KAFKA_BROKERS (then already running), else the one on TEST_PORT.
pub fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| format!("127.0.0.1:{TEST_PORT}"))
}

/// Starts the local broker unless one was provided (TEST_KAFKA_BROKERS).
pub fn ensure_broker() {
    static START: Once = Once::new();
    START.call_once(|| {
        if std::env::var("TEST_KAFKA_BROKERS").is_ok() {
            return;
        }
        broker_script(&["start", &TEST_PORT.to_string()]);
    });
}

/// Runs scripts/kafka-broker (start, stop, kill, reset, ...), e.g. for a broker of a test's own.
pub fn broker_script(args: &[&str]) {
    let status = Command::new(crate::script("kafka-broker")).args(args).status().expect("run scripts/kafka-broker");
    assert!(status.success(), "scripts/kafka-broker {args:?} failed");
}

/// Brokers a test started for itself: reset (killed, data deleted) when the
/// test ends, also when it fails, so no JVM outlives it.
pub struct OwnBrokers(pub Vec<String>);

impl Drop for OwnBrokers {
    fn drop(&mut self) {
        for port in &self.0 {
            let _ = Command::new(crate::script("kafka-broker")).args(["reset", port]).status();
        }
    }
}

fn client(brokers: &str) -> BaseConsumer {
    ClientConfig::new().set("bootstrap.servers", brokers).create().expect("Kafka client")
}

/// Creates `name` on the test broker (an existing topic is fine) and waits until
/// every partition has a leader, so the first produce does not race the metadata.
pub fn create_topic(name: &str, partitions: u32) {
    ensure_broker();
    create_topic_on(&brokers(), name, partitions, 1, &[]);
}

/// Creates a topic through Kafka's admin API on any broker or cluster.
pub fn create_topic_on(brokers: &str, name: &str, partitions: u32, replication: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let mut topic = NewTopic::new(name, partitions as i32, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = rt
        .block_on(admin.create_topics([&topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))))
        .expect("create_topics request");
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => panic!("creating topic {topic} failed: {code}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = admin.inner().fetch_metadata(Some(name), Duration::from_secs(5)).expect("metadata");
        let ready = metadata.topics().iter().any(|t| {
            t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "topic {name} has no leaders after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Generous: a loaded test machine slows the broker; a record is
        // only failed when it could not be delivered at all.
        .set("message.timeout.ms", "300000")
        .set("linger.ms", "5")
        // A request that times out on a slow broker is retried; idempotence
        // keeps the retry from duplicating or reordering a key's records, which
        // the tests' "last write wins" checks rely on.
        .set("enable.idempotence", "true")
        // Room for the 2 MB poison record of the dead-letter test.
        .set("message.max.bytes", "4000000")
        .create()
        .expect("producer")
}

/// Produces records (key, value) to the test broker in order, each with the
/// header `origin: test`, and waits for every delivery.
pub fn produce(topic: &str, records: &[(Option<String>, Vec<u8>)]) {
    ensure_broker();
    produce_to(&brokers(), topic, records);
}

pub fn produce_to(brokers: &str, topic: &str, records: &[(Option<String>, Vec<u8>)]) {
    let records: Vec<(Option<String>, Option<Vec<u8>>)> = records.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    produce_nullable_to(brokers, topic, &records);
}

/// As [`produce`], where a `None` value is Kafka's null value (a tombstone),
/// not an empty one.
pub fn produce_nullable(topic: &str, records: &[(Option<String>, Option<Vec<u8>>)]) {
    ensure_broker();
    produce_nullable_to(&brokers(), topic, records);
}

pub fn produce_nullable_to(brokers: &str, topic: &str, records: &[(Option<String>, Option<Vec<u8>>)]) {
    let producer = producer(brokers);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        for (key, value) in records {
            let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).headers(
                OwnedHeaders::new().insert(Header { key: "origin", value: Some("test") }),
            );
            if let Some(value) = value {
                record = record.payload(value.as_slice());
            }
            if let Some(key) = key {
                record = record.key(key.as_str());
            }
            // Sequential sends keep per-key order across partitions' batches.
            pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for delivery in pending {
            delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    });
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    /// The payload (empty for none).
    pub value: Vec<u8>,
    /// Whether the value was null (a tombstone), which `value` cannot tell
    /// from an empty one.
    pub null: bool,
    /// In the record's order; None is a header without a value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Consumed {
    /// The first header `name`, as text (None when absent, valueless or not UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self.headers.iter().find(|(k, _)| k == name)?;
        std::str::from_utf8(value.as_deref()?).ok()
    }
}

/// Reads `count` records from the start of `topic` on the test broker, or fewer on timeout.
pub fn consume_all(topic: &str, count: usize, timeout: Duration) -> Vec<Consumed> {
    ensure_broker();
    read_from_start(&brokers(), topic, count, timeout)
}

/// The one reader of a topic from its start (dead-letter topics above all):
/// a fresh group subscribed from the earliest offset, so a topic that only
/// appears while it waits (one the trigger creates) is read too. Returns
/// once `count` records are in, or what came within `timeout`.
pub fn read_from_start(brokers: &str, topic: &str, count: usize, timeout: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", crate::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect())
                .unwrap_or_default();
            out.push(Consumed {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
                null: m.payload().is_none(),
                headers,
            });
        }
    }
    out
}

/// The high watermark (next offset) of each of `topic`'s first `partitions` partitions.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let client = client(brokers);
    (0..partitions)
        .map(|p| (p, client.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1))
        .collect()
}

/// How many partitions `topic` has, None while it does not exist. A broker
/// that does not answer fails the test: "no records" must not pass for it.
pub fn partitions_of(brokers: &str, topic: &str) -> Option<usize> {
    let metadata = client(brokers).fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let found = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none());
    found.map(|t| t.partitions().len())
}

/// Records in `topic`, all partitions (its high watermarks summed). A topic
/// that does not exist fails the test: "nothing in the dead-letter topic"
/// must not pass for a topic of the wrong name.
pub fn records_in(brokers: &str, topic: &str) -> i64 {
    let partitions = partitions_of(brokers, topic).unwrap_or_else(|| panic!("topic {topic} does not exist on {brokers}"));
    end_offsets(brokers, topic, partitions as i32).values().sum()
}

/// The offsets `group` committed on `topic`'s first `partitions` partitions
/// (-1 where it committed none), as a fresh client sees them.
pub fn committed_offsets(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().expect("Kafka client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    committed.elements().iter().map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1))).collect()
}
