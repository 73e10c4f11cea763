//! Broker failover, end to end: a three-node Apache Kafka cluster, the service's
//! topic at replication factor 3 with `min.insync.replicas=2`, the real trigger
//! and component on a real SQLite file. The leader of a partition is `kill -9`ed
//! while records are still being produced, and brought back later. Every record
//! is applied exactly once (each user's revision equals its records) and in
//! order (each user ends on its last record), nothing valid is dead-lettered,
//! and the trigger process rides it out without a restart. Records are still
//! being produced (idempotently, acks=all) when the node dies and when it is back. Once per group
//! protocol, on one cluster of the test's own.
//!
//! The cluster listens on TEST_KAFKA_CLUSTER_PORT .. +2 (default: the shared
//! broker's port + 500), its controllers 1000 above.


use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::json;
use crate::support::kafka::{broker_script, create_topic_on, produce_to, records_in, test_port, OwnBrokers};
use crate::support::{eventually, revisions, try_revisions, user_in_db, AppSpec, Host, Protocol};

const NODES: u16 = 3;
const PARTITIONS: u32 = 3;
const USERS: usize = 300;
const ROUNDS: usize = 10;

fn cluster_port() -> u16 {
    std::env::var("TEST_KAFKA_CLUSTER_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(test_port() + 500)
}

/// The node id leading `topic`'s partition 0 (node ids are 1.. in port order).
fn leader_of_partition_0(brokers: &str, topic: &str) -> i32 {
    let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0].partitions().iter().find(|p| p.id() == 0).unwrap().leader()
}

#[test]
fn a_partition_leader_killed_mid_stream_applies_every_record_once_in_order() {
    let base = cluster_port();
    let ports: Vec<String> = (0..NODES).map(|i| (base + i).to_string()).collect();
    for port in &ports {
        broker_script(&["reset", port]);
    }
    let _cluster = OwnBrokers(ports.clone());
    broker_script(&["start-cluster", &base.to_string(), &NODES.to_string()]);
    let brokers = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",");

    for protocol in [Protocol::Consumer, Protocol::Classic] {
        let spec = AppSpec {
            protocol,
            kafka_extra: "initial_backoff_ms = 20\nmax_backoff_ms = 1000\nmax_attempts = 0\ndead_letter_replication = 3\n".into(),
            ..AppSpec::default()
        };
        create_topic_on(&brokers, &spec.topic, PARTITIONS, 3, &[("min.insync.replicas", "2")]);
        let dir = tempfile::tempdir().unwrap();
        let manifest = spec.write_manifest(dir.path());
        let state = dir.path().join(".spin");
        let db = state.join("sqlite_db.db");
        let users: Vec<String> = (0..USERS).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let records: Vec<_> = (0..ROUNDS)
            .flat_map(|r| {
                users.iter().map(move |u| {
                    (Some(u.clone()), json!({"user_id": u, "first_name": format!("r{r}")}).to_string().into_bytes())
                })
            })
            .collect();
        let mut host = Host::start(&manifest, &state, &["kafka"], &[("SPIN_VARIABLE_KAFKA_BROKERS", brokers.as_str())]);
        let started = Instant::now();
        let phase = |what: &str| eprintln!("failover ({protocol:?}): {what} after {:.1?}", started.elapsed());

        let stream = {
            let (brokers, topic, records) = (brokers.clone(), spec.topic.clone(), records.clone());
            std::thread::spawn(move || {
                // About 30 s of records: the node dies and comes back mid-stream.
                for chunk in records.chunks(50) {
                    produce_to(&brokers, &topic, chunk);
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        eventually("a first part applied", Duration::from_secs(120), || try_revisions(&db).is_some_and(|r| r.len() >= USERS / 2));
        let leader = leader_of_partition_0(&brokers, &spec.topic);
        let victim = &ports[(leader - 1) as usize];
        let applied_at_kill: i64 = revisions(&db).values().sum();
        broker_script(&["kill", victim]);
        phase(&format!("node {leader} (port {victim}), leader of partition 0, killed with {applied_at_kill} records applied"));
        assert!(!stream.is_finished(), "the stream ended before the kill");
        // The two survivors keep the partitions writable (min.insync.replicas=2)
        // and the trigger keeps applying without the dead node.
        eventually("progress without the killed node", Duration::from_secs(120), || {
            try_revisions(&db).is_some_and(|r| r.values().sum::<i64>() > applied_at_kill + 200)
        });
        phase("progress on the survivors");
        broker_script(&["start", victim]);
        phase("killed node back");
        assert!(!stream.is_finished(), "the stream ended before the killed node came back");
        stream.join().unwrap();
        eventually("every record applied", Duration::from_secs(180), || {
            let Some(have) = try_revisions(&db) else { return false };
            users.iter().all(|u| have.get(u).is_some_and(|r| *r >= ROUNDS as i64))
        });
        phase("every record applied");

        let have = revisions(&db);
        for user in &users {
            assert_eq!(have[user], ROUNDS as i64, "{protocol:?}: {user} applied {} times for {ROUNDS} records", have[user]);
            let row = user_in_db(&db, user).unwrap();
            assert_eq!(row["first_name"], format!("r{}", ROUNDS - 1), "{protocol:?}: {user} does not end on its last record");
        }
        assert_eq!(records_in(&brokers, &spec.dead_letter_topic), 0, "{protocol:?}: valid records were dead-lettered");
        assert!(!host.exited(), "{protocol:?}: the trigger exited");
        let output = host.drain_output();
        assert_eq!(output.matches("kafka consumer started").count(), 1, "{protocol:?}: the consumer restarted:\n{output}");
        let status = host.terminate();
        assert!(status.success(), "{protocol:?}: {status:?}");
    }
}
