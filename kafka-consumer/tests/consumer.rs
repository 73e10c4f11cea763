//! Integration tests of the consumer against a real broker (TEST_KAFKA_BROKERS, else Apache
//! Kafka started on port 19092 through scripts/kafka-broker if it is not up), reached
//! through the workspace's one broker harness (`test_support::kafka`). Every test uses its
//! own topics and group, so tests run concurrently and repeatedly. Every test that joins a
//! group runs under both group protocols, as `<test>::consumer` (KIP-848) and `<test>::classic`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use kafka_consumer::{
    ensure_topic, run, run_observed, ConsumerConfig, GroupProtocol, HandleError, KafkaRecord, Observer,
    RecordHandler, RetryPolicy,
    HEADER_ERROR, HEADER_ERROR_KIND, HEADER_ORIGINAL_OFFSET, HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use test_support::kafka::brokers;
use test_support::unique;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test broker, started on first use; the consumer's logs go to the test output.
fn broker() -> String {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "kafka_consumer=info".into()),
            )
            .with_test_writer()
            .try_init();
    });
    test_support::kafka::ensure_broker();
    brokers()
}

async fn create_topic(name: &str, partitions: i32) {
    ensure_topic(&brokers(), &[], name, partitions, 1)
        .await
        .expect("create topic");
    // Creating it again is a success too.
    ensure_topic(&brokers(), &[], name, partitions, 1)
        .await
        .expect("topic exists is ok");
}

fn producer() -> FutureProducer {
    test_support::kafka::producer(&brokers())
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    key: &str,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) {
    let mut owned = OwnedHeaders::new();
    for (k, v) in headers {
        owned = owned.insert(Header { key: k, value: *v });
    }
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic)
        .partition(partition)
        .key(key)
        .headers(owned);
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        multiplier: 2.0,
        ..RetryPolicy::default()
    }
}

fn config(topic: &str, group: &str, protocol: GroupProtocol) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(brokers(), group, vec![topic.to_string()]);
    config.group_protocol = protocol;
    config.retry = fast_retry(3);
    config.prefetch_per_partition = 20;
    config
}

/// Fast heartbeats, so a member learns of a rebalance quickly. Under KIP-848 the
/// heartbeat interval is the broker's (1 s on the test broker), not the client's.
fn fast_heartbeats(config: &mut ConsumerConfig) {
    if config.group_protocol == GroupProtocol::Classic {
        config
            .client_settings
            .push(("heartbeat.interval.ms".into(), "300".into()));
    }
}

/// Runs `async fn $test(protocol: GroupProtocol)` as two tests, `$test::consumer`
/// and `$test::classic`, on a tokio runtime of the given flavor.
macro_rules! under_both_protocols {
    ($test:ident, $($flavor:tt)*) => {
        mod $test {
            #[tokio::test($($flavor)*)]
            async fn consumer() {
                super::$test(kafka_consumer::GroupProtocol::Consumer).await
            }
            #[tokio::test($($flavor)*)]
            async fn classic() {
                super::$test(kafka_consumer::GroupProtocol::Classic).await
            }
        }
    };
}

/// What a test handler decides for a record on its n-th attempt (1-based).
type Behaviour = dyn Fn(&KafkaRecord, u32) -> Result<(), HandleError> + Send + Sync;

struct Recorder {
    behaviour: Box<Behaviour>,
    delay: Duration,
    /// Every call, in call order.
    calls: Mutex<Vec<KafkaRecord>>,
    /// Records the handler accepted, in order.
    handled: Mutex<Vec<KafkaRecord>>,
}

impl Recorder {
    fn new(
        behaviour: impl Fn(&KafkaRecord, u32) -> Result<(), HandleError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::with_delay(Duration::ZERO, behaviour)
    }

    fn with_delay(
        delay: Duration,
        behaviour: impl Fn(&KafkaRecord, u32) -> Result<(), HandleError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Recorder {
            behaviour: Box::new(behaviour),
            delay,
            calls: Mutex::new(Vec::new()),
            handled: Mutex::new(Vec::new()),
        })
    }

    fn handled(&self) -> Vec<KafkaRecord> {
        self.handled.lock().unwrap().clone()
    }

    fn attempts(&self, key: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.key.as_deref() == Some(key.as_bytes()))
            .count()
    }

    fn handled_keys(&self) -> HashSet<String> {
        self.handled().iter().map(key_of).collect()
    }
}

impl RecordHandler for Recorder {
    async fn handle(&self, record: KafkaRecord) -> Result<(), HandleError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let attempt = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(record.clone());
            calls
                .iter()
                .filter(|r| {
                    r.topic == record.topic
                        && r.partition == record.partition
                        && r.offset == record.offset
                })
                .count() as u32
        };
        let result = (self.behaviour)(&record, attempt);
        if result.is_ok() {
            self.handled.lock().unwrap().push(record);
        }
        result
    }
}

fn key_of(record: &KafkaRecord) -> String {
    String::from_utf8(record.key.clone().unwrap_or_default()).unwrap()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start<H: RecordHandler>(config: ConsumerConfig, handler: Arc<H>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(config, handler, async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("consumer did not shut down within 20s")
            .expect("consumer task panicked")
            .expect("consumer returned an error");
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group's committed offsets, as seen by a fresh client (off the runtime's threads).
async fn committed(group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || test_support::kafka::committed_offsets(&brokers(), &group, &topic, partitions))
        .await
        .unwrap()
}

/// High watermark (next offset) per partition.
async fn ends(topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || test_support::kafka::end_offsets(&brokers(), &topic, partitions))
        .await
        .unwrap()
}

/// Every record of `topic` from its start (the workspace's one topic reader),
/// `expected` of them or what came within 15 s.
async fn read_all(topic: &str, expected: usize) -> Vec<KafkaRecord> {
    let topic = topic.to_string();
    let read = tokio::task::spawn_blocking(move || {
        test_support::kafka::read_from_start(&brokers(), &topic, expected, Duration::from_secs(15))
    });
    read.await
        .unwrap()
        .into_iter()
        .map(|r| KafkaRecord {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key,
            value: (!r.null).then_some(r.value),
            headers: r.headers,
        })
        .collect()
}

fn header<'a>(record: &'a KafkaRecord, key: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
        .map(|v| std::str::from_utf8(v).unwrap())
}

fn assert_in_order(records: &[KafkaRecord]) {
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in records {
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert!(
                r.offset > prev,
                "partition {}: offset {} delivered after {}",
                r.partition,
                r.offset,
                prev
            );
        }
    }
}

async fn timeout<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

// A current-thread runtime on purpose: the rebalance callback blocks the poll thread,
// never the runtime, so this must not deadlock.
under_both_protocols!(delivers_every_record_in_order_per_partition_and_commits_the_end, flavor = "current_thread");
async fn delivers_every_record_in_order_per_partition_and_commits_the_end(protocol: GroupProtocol) {
    broker();
    let (topic, group) = (unique("inorder"), unique("group"));
    create_topic(&topic, 3).await;
    let producer = producer();
    const PER_PARTITION: usize = 60;
    for i in 0..PER_PARTITION {
        for p in 0..3 {
            produce(
                &producer,
                &topic,
                p,
                &format!("p{p}-{i:03}"),
                Some(format!("v{i}").as_bytes()),
                &[],
            )
            .await;
        }
    }

    let recorder = Recorder::new(|_, _| Ok(()));
    let consumer = start(config(&topic, &group, protocol), recorder.clone());
    wait_until("all records handled", Duration::from_secs(30), || {
        recorder.handled().len() >= 3 * PER_PARTITION
    })
    .await;
    consumer.shutdown().await;

    let handled = recorder.handled();
    assert_eq!(
        handled.len(),
        3 * PER_PARTITION,
        "no duplicates in a run without rebalance"
    );
    assert_in_order(&handled);
    for p in 0..3 {
        let keys: Vec<String> = handled
            .iter()
            .filter(|r| r.partition == p)
            .map(key_of)
            .collect();
        let expected: Vec<String> = (0..PER_PARTITION).map(|i| format!("p{p}-{i:03}")).collect();
        assert_eq!(keys, expected, "partition {p} in production order");
    }
    let ends = ends(&topic, 3).await;
    assert_eq!(
        timeout(15, committed(&group, &topic, 3)).await,
        ends,
        "committed offsets are the partition ends"
    );
}

under_both_protocols!(retries_dead_letters_and_never_stalls_the_partition, flavor = "multi_thread", worker_threads = 2);
async fn retries_dead_letters_and_never_stalls_the_partition(protocol: GroupProtocol) {
    broker();
    let (topic, group, dlt) = (unique("failing"), unique("group"), unique("failing-dlt"));
    create_topic(&topic, 1).await; // one partition: the good records come after the bad ones
    let producer = producer();
    let trace: &[(&str, Option<&[u8]>)] = &[
        ("trace-id", Some(b"abc")),
        ("empty-header", None),
        ("trace-id", Some(b"dup")),
    ];
    produce(&producer, &topic, 0, "good-1", Some(b"1"), &[]).await;
    produce(&producer, &topic, 0, "flaky", Some(b"2"), &[]).await;
    produce(
        &producer,
        &topic,
        0,
        "always-busy",
        Some(b"3"),
        &[("h", Some(b"x"))],
    )
    .await;
    produce(&producer, &topic, 0, "good-2", Some(b"4"), &[]).await;
    produce(&producer, &topic, 0, "poison", Some(b"{not json"), trace).await;
    produce(&producer, &topic, 0, "tombstone", None, &[]).await;
    produce(&producer, &topic, 0, "good-3", Some(b"6"), &[]).await;

    let recorder = Recorder::new(|record, attempt| match key_of(record).as_str() {
        "flaky" if attempt < 3 => Err(HandleError::Retryable(format!("busy (attempt {attempt})"))),
        "always-busy" => Err(HandleError::Retryable("database is locked".into())),
        "poison" => Err(HandleError::Permanent("invalid JSON".into())),
        _ => Ok(()),
    });
    let mut config = config(&topic, &group, protocol);
    config.retry = fast_retry(4);
    config.dead_letter_topic = Some(dlt.clone());
    let consumer = start(config, recorder.clone());
    wait_until("good-3 handled", Duration::from_secs(30), || {
        recorder.handled_keys().contains("good-3")
    })
    .await;
    consumer.shutdown().await;

    let handled: Vec<String> = recorder.handled().iter().map(key_of).collect();
    assert_eq!(
        handled,
        ["good-1", "flaky", "good-2", "tombstone", "good-3"]
    );
    assert!(
        recorder.handled()[3].value.is_none(),
        "a tombstone arrives as a null value"
    );
    assert_eq!(recorder.attempts("flaky"), 3, "retried until it succeeded");
    assert_eq!(
        recorder.attempts("always-busy"),
        4,
        "retried up to max_attempts"
    );
    assert_eq!(
        recorder.attempts("poison"),
        1,
        "permanent failures are not retried"
    );

    let dead = timeout(20, read_all(&dlt, 2)).await;
    assert_eq!(dead.len(), 2, "two dead-lettered records: {dead:?}");
    let busy = &dead[0];
    assert_eq!(busy.key.as_deref(), Some(&b"always-busy"[..]));
    assert_eq!(busy.value.as_deref(), Some(&b"3"[..]));
    assert_eq!(header(busy, "h"), Some("x"));
    assert_eq!(header(busy, HEADER_ERROR_KIND), Some("retryable-exhausted"));
    assert_eq!(header(busy, HEADER_ERROR), Some("database is locked"));
    assert_eq!(header(busy, HEADER_ORIGINAL_OFFSET), Some("2"));

    let poison = &dead[1];
    assert_eq!(poison.key.as_deref(), Some(&b"poison"[..]));
    assert_eq!(poison.value.as_deref(), Some(&b"{not json"[..]));
    let expected_headers: Vec<(String, Option<Vec<u8>>)> = [
        ("trace-id", Some("abc")),
        ("empty-header", None),
        ("trace-id", Some("dup")),
        (HEADER_ERROR, Some("invalid JSON")),
        (HEADER_ERROR_KIND, Some("permanent")),
        (HEADER_ORIGINAL_TOPIC, Some(topic.as_str())),
        (HEADER_ORIGINAL_PARTITION, Some("0")),
        (HEADER_ORIGINAL_OFFSET, Some("4")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
    .collect();
    assert_eq!(poison.headers, expected_headers);

    assert_eq!(
        timeout(15, committed(&group, &topic, 1)).await,
        BTreeMap::from([(0, 7)])
    );
}

under_both_protocols!(restart_resumes_from_the_committed_offsets, flavor = "multi_thread", worker_threads = 2);
async fn restart_resumes_from_the_committed_offsets(protocol: GroupProtocol) {
    broker();
    let (topic, group) = (unique("restart"), unique("group"));
    create_topic(&topic, 3).await;
    let producer = producer();
    const PER_PARTITION: usize = 50;
    for i in 0..PER_PARTITION {
        for p in 0..3 {
            produce(
                &producer,
                &topic,
                p,
                &format!("p{p}-{i:03}"),
                Some(b"v"),
                &[],
            )
            .await;
        }
    }

    // Slow handler so the shutdown lands mid-stream.
    let first = Recorder::with_delay(Duration::from_millis(20), |_, _| Ok(()));
    let consumer = start(config(&topic, &group, protocol), first.clone());
    wait_until("a third of the records", Duration::from_secs(30), || {
        first.handled().len() >= PER_PARTITION
    })
    .await;
    consumer.shutdown().await;
    let first_run = first.handled();
    assert!(
        first_run.len() < 3 * PER_PARTITION,
        "shutdown was not mid-stream"
    );
    assert_in_order(&first_run);
    let committed_after_first = timeout(15, committed(&group, &topic, 3)).await;

    let second = Recorder::new(|_, _| Ok(()));
    let consumer = start(config(&topic, &group, protocol), second.clone());
    let all: HashSet<String> = (0..PER_PARTITION)
        .flat_map(|i| (0..3).map(move |p| format!("p{p}-{i:03}")))
        .collect();
    wait_until(
        "every record handled across both runs",
        Duration::from_secs(30),
        || {
            let seen: HashSet<String> = first
                .handled_keys()
                .union(&second.handled_keys())
                .cloned()
                .collect();
            seen == all
        },
    )
    .await;
    consumer.shutdown().await;

    let second_run = second.handled();
    assert_in_order(&second_run);
    for p in 0..3 {
        // The second run starts exactly where the group's committed offset says.
        let resumed_at = second_run
            .iter()
            .find(|r| r.partition == p)
            .map(|r| r.offset);
        let committed = committed_after_first[&p];
        if committed < PER_PARTITION as i64 {
            assert_eq!(
                resumed_at,
                Some(committed),
                "partition {p} resumes at the committed offset"
            );
        }
    }
    let duplicates = first_run.len() + second_run.len() - all.len();
    assert!(
        duplicates <= 3,
        "at most the in-flight record per partition is redelivered, got {duplicates}"
    );
    assert_eq!(
        timeout(15, committed(&group, &topic, 3)).await,
        ends(&topic, 3).await
    );
}

under_both_protocols!(creates_the_missing_dead_letter_topic_like_the_source_topic, flavor = "multi_thread", worker_threads = 2);
async fn creates_the_missing_dead_letter_topic_like_the_source_topic(protocol: GroupProtocol) {
    broker();
    let (topic, group, dlt) = (unique("src"), unique("group"), unique("src-dlt"));
    create_topic(&topic, 3).await;
    let mut config = config(&topic, &group, protocol);
    config.dead_letter_topic = Some(dlt.clone());
    let recorder = Recorder::new(|_, _| Ok(()));
    let consumer = start(config, recorder);

    let dlt_clone = dlt.clone();
    let partitions = move || test_support::kafka::partitions_of(&brokers(), &dlt_clone);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = tokio::task::spawn_blocking(partitions.clone())
            .await
            .unwrap();
        if let Some(count) = count {
            assert_eq!(
                count, 3,
                "dead-letter topic gets the source topic's partition count"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead-letter topic {dlt} was not created"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.shutdown().await;
}

under_both_protocols!(unreachable_broker_is_waited_for_not_fatal, flavor = "multi_thread", worker_threads = 2);
async fn unreachable_broker_is_waited_for_not_fatal(protocol: GroupProtocol) {
    // Nothing listens on port 1. With a dead-letter topic, startup keeps retrying;
    // without, the consumer keeps polling. Both must stay up and stop cleanly.
    for dead_letter in [Some("dlt".to_string()), None] {
        let mut config =
            ConsumerConfig::new("127.0.0.1:1", unique("group"), vec!["nowhere".into()]);
        config.group_protocol = protocol;
        config.retry = fast_retry(3);
        config.dead_letter_topic = dead_letter;
        let consumer = start(config, Recorder::new(|_, _| Ok(())));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !consumer.task.is_finished(),
            "consumer ended while the broker was unreachable"
        );
        consumer.shutdown().await;
    }
}

/// What a member's rebalance callbacks reported, in order.
#[derive(Default)]
struct Membership {
    events: Mutex<Vec<(bool, Vec<i32>, bool)>>,
}

impl Membership {
    /// (assigned?, partitions, rejoining) in callback order.
    fn events(&self) -> Vec<(bool, Vec<i32>, bool)> {
        self.events.lock().unwrap().clone()
    }
}

impl Observer for Membership {
    fn member_without_partitions(&self) {
        self.events.lock().unwrap().push((true, Vec::new(), false));
    }
    fn assigned(&self, partitions: &[(String, i32)]) {
        let mut list: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        list.sort_unstable();
        self.events.lock().unwrap().push((true, list, false));
    }
    fn revoked(&self, partitions: &[(String, i32)], rejoining: bool) {
        let mut list: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        list.sort_unstable();
        self.events.lock().unwrap().push((false, list, rejoining));
    }
}

/// The partitions a member holds after replaying its callbacks, and the
/// fewest it held after any revoke (None without a revoke).
fn replay(events: &[(bool, Vec<i32>, bool)]) -> (HashSet<i32>, Option<usize>) {
    let mut held = HashSet::new();
    let mut fewest: Option<usize> = None;
    for (assigned, partitions, _) in events {
        if *assigned {
            held.extend(partitions);
        } else {
            for p in partitions {
                held.remove(p);
            }
            fewest = Some(fewest.map_or(held.len(), |f| f.min(held.len())));
        }
    }
    (held, fewest)
}

fn start_observed<H: RecordHandler>(config: ConsumerConfig, handler: Arc<H>, observer: Arc<dyn Observer>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_observed(config, handler, observer, async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

under_both_protocols!(rebalance_hands_partitions_over_without_losing_records, flavor = "multi_thread", worker_threads = 2);
async fn rebalance_hands_partitions_over_without_losing_records(protocol: GroupProtocol) {
    broker();
    let (topic, group) = (unique("rebalance"), unique("group"));
    create_topic(&topic, 4).await;
    let producer = producer();
    const PER_PARTITION: usize = 100;
    for i in 0..PER_PARTITION {
        for p in 0..4 {
            produce(
                &producer,
                &topic,
                p,
                &format!("p{p}-{i:03}"),
                Some(b"v"),
                &[],
            )
            .await;
        }
    }
    let all: HashSet<String> = (0..PER_PARTITION)
        .flat_map(|i| (0..4).map(move |p| format!("p{p}-{i:03}")))
        .collect();

    // Slow enough that the second member joins while the first is mid-stream; fast
    // heartbeats so the first member learns of the rebalance quickly.
    let member_config = || {
        let mut config = config(&topic, &group, protocol);
        fast_heartbeats(&mut config);
        config
    };
    let a = Recorder::with_delay(Duration::from_millis(50), |_, _| Ok(()));
    let b = Recorder::with_delay(Duration::from_millis(50), |_, _| Ok(()));
    let (a_group, b_group) = (Arc::new(Membership::default()), Arc::new(Membership::default()));
    let member_a = start_observed(member_config(), a.clone(), a_group.clone());
    wait_until("first member under way", Duration::from_secs(20), || {
        a.handled().len() >= 10
    })
    .await;
    let member_b = start_observed(member_config(), b.clone(), b_group.clone());
    wait_until(
        "every record handled by the two members",
        Duration::from_secs(60),
        || {
            a.handled_keys()
                .union(&b.handled_keys())
                .cloned()
                .collect::<HashSet<_>>()
                == all
        },
    )
    .await;
    // The group as it was before the shutdowns (which revoke everything).
    let (a_events, b_events) = (a_group.events(), b_group.events());
    member_b.shutdown().await;
    member_a.shutdown().await;

    // Each member saw its partitions in order, even across the handover: the revoke
    // committed what was done, and the next owner started right after it.
    let (a, b) = (a.handled(), b.handled());
    assert!(
        !b.is_empty(),
        "the second member took over partitions mid-stream"
    );
    assert!(a.len() < all.len(), "the first member gave partitions away");
    assert_in_order(&a);
    assert_in_order(&b);
    let duplicates = a.len() + b.len() - all.len();
    assert!(
        duplicates <= 4,
        "at most one in-flight record per partition redelivered, got {duplicates}"
    );
    assert_eq!(
        timeout(15, committed(&group, &topic, 4)).await,
        ends(&topic, 4).await
    );

    // Who holds what: every partition with exactly one member.
    let (a_held, a_fewest) = replay(&a_events);
    let (b_held, _) = replay(&b_events);
    assert!(a_held.is_disjoint(&b_held), "a partition held twice: {a_events:?} / {b_events:?}");
    assert_eq!(a_held.union(&b_held).count(), 4, "a partition held by nobody: {a_events:?} / {b_events:?}");
    assert!(a_fewest.is_some(), "the first member revoked nothing: {a_events:?}");
    match protocol {
        // KIP-848 is incremental: the first member gives up only the partitions
        // that move, keeps working on the others, and stays in the group.
        GroupProtocol::Consumer => {
            assert!(a_fewest > Some(0), "the first member lost every partition at once: {a_events:?}");
            assert!(a_events.iter().all(|(_, _, rejoining)| !rejoining), "{a_events:?}");
            // A partition it kept was never interrupted: each of its records once, in order.
            for p in &a_held {
                let mine: Vec<String> = a.iter().filter(|r| r.partition == *p).map(key_of).collect();
                let expected: Vec<String> = (0..PER_PARTITION).map(|i| format!("p{p}-{i:03}")).collect();
                assert_eq!(mine, expected, "partition {p}, kept by the first member throughout");
                assert!(b.iter().all(|r| r.partition != *p), "partition {p} also went to the second member");
            }
        }
        // The classic protocol's default assignors are eager: every partition is
        // revoked, and the member rejoins before it gets its share back.
        GroupProtocol::Classic => {
            assert_eq!(a_fewest, Some(0), "{a_events:?}");
            assert!(a_events.iter().any(|(assigned, _, rejoining)| !assigned && *rejoining), "{a_events:?}");
        }
    }
}

/// Takes batches, all or nothing: a batch holding a poison record fails whole.
struct Batcher {
    /// Records applied, in order (by batch or one by one).
    applied: Mutex<Vec<KafkaRecord>>,
    batch_sizes: Mutex<Vec<usize>>,
}

fn is_poison(record: &KafkaRecord) -> bool {
    record.value.as_deref() == Some(b"poison")
}

impl RecordHandler for Batcher {
    async fn handle(&self, record: KafkaRecord) -> Result<(), HandleError> {
        if is_poison(&record) {
            return Err(HandleError::Permanent("poison".into()));
        }
        self.applied.lock().unwrap().push(record);
        Ok(())
    }

    async fn handle_batch(&self, records: &[KafkaRecord]) -> Option<Result<(), HandleError>> {
        self.batch_sizes.lock().unwrap().push(records.len());
        if records.iter().any(is_poison) {
            return Some(Err(HandleError::Permanent("batch holds poison".into())));
        }
        self.applied.lock().unwrap().extend(records.iter().cloned());
        Some(Ok(()))
    }
}

under_both_protocols!(batches_apply_whole_and_a_failed_batch_is_replayed_record_by_record, flavor = "multi_thread", worker_threads = 2);
async fn batches_apply_whole_and_a_failed_batch_is_replayed_record_by_record(protocol: GroupProtocol) {
    broker();
    let (topic, group) = (unique("batch"), unique("group"));
    let dlt = format!("{topic}.dlq");
    create_topic(&topic, 1).await;
    let producer = producer();
    for i in 0..200 {
        let value: &[u8] = if i == 150 { b"poison" } else { b"good" };
        produce(&producer, &topic, 0, &format!("k{i:03}"), Some(value), &[]).await;
    }
    let batcher = Arc::new(Batcher { applied: Mutex::default(), batch_sizes: Mutex::default() });
    let mut cfg = config(&topic, &group, protocol);
    cfg.dead_letter_topic = Some(dlt.clone());
    cfg.max_batch = 50;
    let consumer = start(cfg, batcher.clone());
    wait_until("all good records applied", Duration::from_secs(30), || {
        batcher.applied.lock().unwrap().len() >= 199
    })
    .await;
    consumer.shutdown().await;

    let applied = batcher.applied.lock().unwrap().clone();
    let keys: Vec<String> = applied.iter().map(key_of).collect();
    let expected: Vec<String> = (0..200).filter(|i| *i != 150).map(|i| format!("k{i:03}")).collect();
    assert_eq!(keys, expected, "every good record once, in order");
    let sizes = batcher.batch_sizes.lock().unwrap().clone();
    assert!(sizes.iter().any(|s| *s > 1), "records already fetched were batched: {sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 50), "max_batch respected: {sizes:?}");
    let dead = read_all(&dlt, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(key_of(&dead[0]), "k150");
    assert_eq!(timeout(15, committed(&group, &topic, 1)).await, ends(&topic, 1).await);
}

/// A last-write-wins table keyed like the service's users: what a database sink
/// ends up holding, written by every member of the group.
#[derive(Default)]
struct Ledger {
    rows: Mutex<HashMap<String, u32>>,
    /// Keys whose last sequence number was applied at least once.
    reached_last: Mutex<HashSet<String>>,
}

/// Applies "key:seq" records to the ledger. One chosen record is slow on its first
/// delivery only: far slower than the revoke deadline.
struct SlowOnceWriter {
    ledger: Arc<Ledger>,
    last_seq: u32,
    slow: (String, u32),
    slow_for: Duration,
    slow_started: std::sync::atomic::AtomicBool,
    /// Set when the slow call ends, completed or dropped (aborted).
    slow_ended: Arc<std::sync::atomic::AtomicBool>,
}

struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl RecordHandler for SlowOnceWriter {
    async fn handle(&self, record: KafkaRecord) -> Result<(), HandleError> {
        use std::sync::atomic::Ordering;
        let text = String::from_utf8(record.value.clone().unwrap()).unwrap();
        let (key, seq) = text.split_once(':').unwrap();
        let seq: u32 = seq.parse().unwrap();
        if (key, seq) == (self.slow.0.as_str(), self.slow.1)
            && !self.slow_started.swap(true, Ordering::SeqCst)
        {
            let _ended = SetOnDrop(self.slow_ended.clone());
            tokio::time::sleep(self.slow_for).await;
            self.ledger.rows.lock().unwrap().insert(key.to_string(), seq);
            return Ok(());
        }
        self.ledger.rows.lock().unwrap().insert(key.to_string(), seq);
        if seq == self.last_seq {
            self.ledger.reached_last.lock().unwrap().insert(key.to_string());
        }
        Ok(())
    }
}

// A handler slower than the revoke deadline, under a real rebalance (a second member
// joins): its partition must not get a new worker while the old one still runs, or
// the old one's late write lands after newer ones (and its offset after theirs).
under_both_protocols!(a_partition_never_has_two_workers_even_when_a_handler_outlives_the_revoke, flavor = "multi_thread", worker_threads = 2);
async fn a_partition_never_has_two_workers_even_when_a_handler_outlives_the_revoke(protocol: GroupProtocol) {
    use std::sync::atomic::{AtomicBool, Ordering};
    broker();
    let (topic, group) = (unique("oneworker"), unique("group"));
    create_topic(&topic, 3).await;
    let producer = producer();
    const LAST: u32 = 19;
    let keys: Vec<String> = (0..3)
        .flat_map(|p| ["a", "b"].map(|k| format!("p{p}-{k}")))
        .collect();
    for seq in 0..=LAST {
        for key in &keys {
            let partition = key[1..2].parse().unwrap();
            let value = format!("{key}:{seq}");
            produce(&producer, &topic, partition, key, Some(value.as_bytes()), &[]).await;
        }
    }

    let ledger = Arc::new(Ledger::default());
    let slow_ended = Arc::new(AtomicBool::new(false));
    let writer = Arc::new(SlowOnceWriter {
        ledger: ledger.clone(),
        last_seq: LAST,
        slow: ("p0-a".into(), 5),
        slow_for: Duration::from_secs(15),
        slow_started: AtomicBool::new(false),
        slow_ended: slow_ended.clone(),
    });
    let member_config = || {
        let mut config = config(&topic, &group, protocol);
        config.max_batch = 1;
        config.drain_timeout = Duration::from_secs(1);
        fast_heartbeats(&mut config);
        config
    };
    let member_a = start(member_config(), writer.clone());
    wait_until("the slow record under way", Duration::from_secs(30), || {
        writer.slow_started.load(Ordering::SeqCst)
    })
    .await;
    let member_b = start(member_config(), writer.clone());
    wait_until(
        "the slow call to end (aborted, or completed late)",
        Duration::from_secs(60),
        || slow_ended.load(Ordering::SeqCst),
    )
    .await;
    wait_until(
        "every key's last record applied",
        Duration::from_secs(60),
        || ledger.reached_last.lock().unwrap().len() == keys.len(),
    )
    .await;
    member_b.shutdown().await;
    member_a.shutdown().await;

    let rows = ledger.rows.lock().unwrap().clone();
    for key in &keys {
        assert_eq!(
            rows.get(key),
            Some(&LAST),
            "{key}: an older record was applied after the newest one (two workers on one partition)"
        );
    }
}

/// Remembers what the consumer reported.
#[derive(Default)]
struct Events {
    stalled: Mutex<Vec<(i32, bool)>>,
    retries: std::sync::atomic::AtomicUsize,
    dead_lettered: std::sync::atomic::AtomicUsize,
    applied: std::sync::atomic::AtomicUsize,
    assigned: std::sync::atomic::AtomicBool,
    lag: Mutex<HashMap<i32, i64>>,
}

impl Observer for Events {
    fn assigned(&self, _: &[(String, i32)]) {
        self.assigned.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn handler_call(&self, _: &str, records: usize, _: Duration, ok: bool) {
        if ok {
            self.applied.fetch_add(records, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn retrying(&self, _: &str, _: i32) {
        self.retries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn dead_lettered(&self, _: &str, _: i32) {
        self.dead_lettered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn stalled(&self, _: &str, partition: i32, stalled: bool) {
        self.stalled.lock().unwrap().push((partition, stalled));
    }
    fn lag(&self, _: &str, partition: i32, lag: i64) {
        self.lag.lock().unwrap().insert(partition, lag);
    }
}

// max_attempts = 0: a retryable failure pauses its partition until the record
// succeeds, however long that takes; nothing is dead-lettered and nothing after it
// is applied before it. The pause is reported (readiness) and ends when it does.
under_both_protocols!(unlimited_retries_pause_the_partition_and_dead_letter_nothing, flavor = "multi_thread", worker_threads = 2);
async fn unlimited_retries_pause_the_partition_and_dead_letter_nothing(protocol: GroupProtocol) {
    use std::sync::atomic::Ordering;
    broker();
    let (topic, group, dlt) = (unique("outage"), unique("group"), unique("outage-dlt"));
    create_topic(&topic, 1).await;
    let producer = producer();
    for key in ["before", "stuck", "after-1", "after-2"] {
        produce(&producer, &topic, 0, key, Some(b"v"), &[]).await;
    }
    // Far more failures than the default policy's 5 attempts.
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = open.clone();
    let recorder = Recorder::new(move |record, _| {
        if key_of(record) == "stuck" && !gate.load(Ordering::SeqCst) {
            Err(HandleError::Retryable("database is locked".into()))
        } else {
            Ok(())
        }
    });
    let mut config = config(&topic, &group, protocol);
    config.retry = fast_retry(0);
    config.dead_letter_topic = Some(dlt.clone());
    let events = Arc::new(Events::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_observed(config, recorder.clone(), events.clone(), async move {
        let _ = stopped.await;
    }));
    wait_until("20 failed attempts", Duration::from_secs(30), || {
        recorder.attempts("stuck") >= 20
    })
    .await;
    assert!(events.assigned.load(Ordering::SeqCst), "membership reported");
    assert_eq!(*events.stalled.lock().unwrap(), vec![(0, true)], "the pause is reported once");
    assert_eq!(
        recorder.handled_keys(),
        HashSet::from(["before".to_string()]),
        "nothing after the failing record is applied while it fails"
    );
    open.store(true, Ordering::SeqCst); // the outage ends
    wait_until("after-2 handled", Duration::from_secs(30), || {
        recorder.handled_keys().contains("after-2")
    })
    .await;
    wait_until("the lag sampled at 0", Duration::from_secs(30), || {
        events.lag.lock().unwrap().get(&0) == Some(&0)
    })
    .await;
    let _ = stop.send(());
    timeout(20, task).await.unwrap().unwrap();

    let handled: Vec<String> = recorder.handled().iter().map(key_of).collect();
    assert_eq!(handled, ["before", "stuck", "after-1", "after-2"]);
    assert_eq!(*events.stalled.lock().unwrap(), vec![(0, true), (0, false)]);
    assert_eq!(events.dead_lettered.load(Ordering::SeqCst), 0);
    assert!(events.retries.load(Ordering::SeqCst) >= 20);
    assert_eq!(events.applied.load(Ordering::SeqCst), 4);
    assert_eq!(ends(&dlt, 1).await, BTreeMap::from([(0, 0)]), "the dead-letter topic stays empty");
    assert_eq!(timeout(15, committed(&group, &topic, 1)).await, BTreeMap::from([(0, 4)]));
}

// More members than partitions: the one left without a partition is still a
// member of the group, and is told so (readiness depends on it), under KIP-848
// as under the classic protocol.
under_both_protocols!(a_member_without_partitions_is_told_it_is_a_member, flavor = "multi_thread", worker_threads = 2);
async fn a_member_without_partitions_is_told_it_is_a_member(protocol: GroupProtocol) {
    broker();
    let (topic, group) = (unique("spare"), unique("group"));
    create_topic(&topic, 1).await;
    let (a_group, b_group) = (Arc::new(Membership::default()), Arc::new(Membership::default()));
    let member_a = start_observed(config(&topic, &group, protocol), Recorder::new(|_, _| Ok(())), a_group.clone());
    wait_until("the first member assigned", Duration::from_secs(30), || {
        a_group.events().iter().any(|(assigned, partitions, _)| *assigned && partitions == &[0])
    })
    .await;
    let member_b = start_observed(config(&topic, &group, protocol), Recorder::new(|_, _| Ok(())), b_group.clone());
    wait_until("the second member told it holds nothing", Duration::from_secs(30), || {
        b_group.events().iter().any(|(assigned, _, _)| *assigned)
    })
    .await;
    let (a_events, b_events) = (a_group.events(), b_group.events());
    member_b.shutdown().await;
    member_a.shutdown().await;
    let (a_held, _) = replay(&a_events);
    let (b_held, _) = replay(&b_events);
    assert_eq!(a_held.len() + b_held.len(), 1, "{a_events:?} / {b_events:?}");
}
