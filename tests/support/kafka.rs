//! The real test broker (started by scripts/test, or here on demand through
//! scripts/kafka-broker) and small producer/consumer helpers.

use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

pub const TEST_PORT: u16 = 19092;

/// The shared test broker's port (TEST_KAFKA_PORT, as scripts/test sets it).
pub fn test_port() -> u16 {
    std::env::var("TEST_KAFKA_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(TEST_PORT)
}

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
        let status = Command::new(super::root().join("scripts/kafka-broker"))
            .args(["start", &TEST_PORT.to_string()])
            .status()
            .expect("run scripts/kafka-broker");
        assert!(status.success(), "could not start the test broker");
    });
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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
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
        assert!(std::time::Instant::now() < deadline, "topic {name} has no leaders after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Brokers a test started for itself: reset (killed, data deleted) when the
/// test ends, also when it fails, so no JVM outlives it.
pub struct OwnBrokers(pub Vec<String>);

impl Drop for OwnBrokers {
    fn drop(&mut self) {
        for port in &self.0 {
            let _ = Command::new(super::root().join("scripts/kafka-broker")).args(["reset", port]).status();
        }
    }
}

/// Runs scripts/kafka-broker (start, stop, kill, reset, ...) for a broker of a test's own.
pub fn broker_script(args: &[&str]) {
    let status = Command::new(super::root().join("scripts/kafka-broker")).args(args).status().unwrap();
    assert!(status.success(), "scripts/kafka-broker {args:?} failed");
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

/// Produces records (key, value, headers) in order and waits for every delivery.
pub fn produce(topic: &str, records: &[(Option<String>, Vec<u8>)]) {
    ensure_broker();
    produce_to(&brokers(), topic, records);
}

pub fn produce_to(brokers: &str, topic: &str, records: &[(Option<String>, Vec<u8>)]) {
    let producer = producer(brokers);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        for (key, value) in records {
            let mut record = FutureRecord::to(topic).payload(value.as_slice()).headers(
                OwnedHeaders::new().insert(Header { key: "origin", value: Some("test") }),
            );
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

/// A record read back (dead-letter checks).
#[derive(Debug)]
pub struct Consumed {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads `count` records from the start of `topic` (fresh group), or fewer on timeout.
pub fn consume_all(topic: &str, count: usize, timeout: Duration) -> Vec<Consumed> {
    ensure_broker();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Consumed { key: m.key().map(<[u8]>::to_vec), value: m.payload().unwrap_or_default().to_vec(), headers });
        }
    }
    out
}
