//! Records that no retry can help do not stall their partition, even with
//! `max_attempts = 0` (retry until it succeeds): the real `hostile-kafka`
//! component (tests/guests/hostile-kafka) in the real host, against the real
//! test broker.
//! - A record the component traps on every time is dead-lettered, kind
//!   `trap`, after `max_trap_attempts` traps; the records after it are applied.
//! - A permanent failure whose error text is 2 MiB (past the broker's record
//!   size limit as a header) is dead-lettered with the text cut to the
//!   documented bound and a marker; the full text is in the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::kafka::{consume_all, create_topic, produce};
use crate::support::{eventually, Host};

const BOUND: usize = kafka_consumer::MAX_ERROR_HEADER_BYTES;
const MARKER: &str = kafka_consumer::TRUNCATED_MARKER;

fn manifest(dir: &Path, topic: &str, dead_letters: &str) -> PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "hostile-kafka"
[application.trigger.kafka]
brokers = "{{{{ kafka_brokers }}}}"
[variables]
kafka_brokers = {{ default = "127.0.0.1:9092" }}
[[trigger.kafka]]
component = "hostile"
topics = ["{topic}"]
group_id = "{topic}"
dead_letter_topic = "{dead_letters}"
max_attempts = 0
max_trap_attempts = 2
initial_backoff_ms = 50
max_backoff_ms = 200
[component.hostile]
source = "{source}"
sqlite_databases = ["default"]
variables = {{ hang = "false", owner = "" }}
"#,
        source = crate::support::test_guest("hostile-kafka", "hostile_kafka").display(),
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// The values the guest applied, in order.
fn applied(state: &Path) -> Vec<String> {
    let Ok(db) = rusqlite::Connection::open(state.join("sqlite_db.db")) else { return vec![] };
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok(mut stmt) = db.prepare("SELECT value FROM applied ORDER BY rowid") else { return vec![] };
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_trapping_record_and_a_huge_error_are_dead_lettered_and_the_partition_moves_on() {
    let topic = crate::support::unique("poison");
    let dead_letters = format!("{topic}.dlq");
    create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &topic, &dead_letters);
    let state = dir.path().join(".spin");
    let mut host = Host::start(&manifest, &state, &["kafka"], &[]);
    host.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
    let values = ["first", "trap", "huge-error", "after"];
    produce(&topic, &values.iter().map(|v| (None, v.as_bytes().to_vec())).collect::<Vec<_>>());

    eventually("the records around the poison applied", Duration::from_secs(60), || {
        applied(&state) == ["first", "after"]
    });
    // Exactly the two poison records, each once, in order.
    let dead = consume_all(&dead_letters, 3, Duration::from_secs(10));
    assert_eq!(dead.len(), 2, "{dead:?}");
    let trap = &dead[0];
    assert_eq!(trap.value, b"trap");
    assert_eq!(trap.header("kafka_dlt_original_offset"), Some("1"));
    assert_eq!(trap.header("kafka_dlt_error_kind"), Some("trap"));
    let error = trap.header("kafka_dlt_error").unwrap();
    assert!(error.contains("component hostile trapped"), "{error}");

    let huge = &dead[1];
    assert_eq!(huge.value, b"huge-error");
    assert_eq!(huge.header("kafka_dlt_original_offset"), Some("2"));
    assert_eq!(huge.header("kafka_dlt_error_kind"), Some("permanent"));
    let error = huge.header("kafka_dlt_error").expect("the header is whole UTF-8");
    assert!(error.len() <= BOUND && error.len() > BOUND - MARKER.len() - 2, "{} bytes", error.len());
    assert!(error.ends_with(MARKER));
    assert!(error.trim_end_matches(MARKER).chars().all(|c| c == 'é'));

    // The full text is in the log.
    let out = host.drain_output();
    assert!(out.contains(&"é".repeat(1 << 20)), "the whole 2 MiB error is logged");
    host.terminate();
}
