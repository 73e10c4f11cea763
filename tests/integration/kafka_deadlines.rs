//! A Kafka-triggered guest stuck in an endless loop cannot hold the trigger:
//! the real `hostile-kafka` component (tests/guests/hostile-kafka) in real
//! host processes, against the real test broker and a shared SQLite file.
//! A call past `handler_timeout_ms` is abandoned and retried; SIGTERM during
//! the loop exits within the drain deadline; and a rebalance during the loop
//! hands the partition over, whose new owner applies the record once.


use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::kafka::{create_topic, produce};
use crate::support::{eventually, Host};

fn build_guest() -> PathBuf {
    crate::support::test_guest("hostile-kafka", "hostile_kafka")
}

/// A one-topic app around the hostile component; `extra` goes into its
/// `[[trigger.kafka]]`.
pub(crate) fn manifest(dir: &Path, topic: &str, group: &str, extra: &str) -> PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "hostile-kafka"
[application.trigger.kafka]
brokers = "{{{{ kafka_brokers }}}}"
# Classic: its session timeout is the client's, kept short here so a
# departed member's partitions move quickly (KIP-848 keeps it on the broker).
group_protocol = "classic"
[application.trigger.kafka.client]
"session.timeout.ms" = "10000"
[variables]
kafka_brokers = {{ default = "127.0.0.1:9092" }}
hang = {{ default = "false" }}
owner = {{ default = "" }}
[[trigger.kafka]]
component = "hostile"
topics = ["{topic}"]
group_id = "{group}"
max_attempts = 0
initial_backoff_ms = 50
max_backoff_ms = 200
{extra}
[component.hostile]
source = "{source}"
sqlite_databases = ["default"]
variables = {{ hang = "{{{{ hang }}}}", owner = "{{{{ owner }}}}" }}
"#,
        source = build_guest().display(),
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// (offset, value, owner) of every application the guest recorded.
pub(crate) fn applied(state: &Path) -> Vec<(i64, String, String)> {
    let Ok(db) = rusqlite::Connection::open(state.join("sqlite_db.db")) else { return vec![] };
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok(mut stmt) = db.prepare("SELECT offset, value, owner FROM applied ORDER BY rowid") else { return vec![] };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

struct App {
    dir: tempfile::TempDir,
    topic: String,
    manifest: PathBuf,
}

impl App {
    fn new(extra: &str) -> App {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let topic = format!("hostile_{id}");
        create_topic(&topic, 1);
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), &topic, &format!("hostile_{id}"), extra);
        App { dir, topic, manifest }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join(".spin")
    }

    /// A Kafka trigger process on the shared state directory.
    fn start(&self, hang: bool, owner: &str) -> Host {
        let hang = if hang { "true" } else { "false" };
        let mut host = Host::start(
            &self.manifest,
            &self.state(),
            &["kafka"],
            &[("SPIN_VARIABLE_HANG", hang), ("SPIN_VARIABLE_OWNER", owner)],
        );
        host.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
        host
    }

    fn send(&self, values: &[&str]) {
        let records: Vec<_> = values.iter().map(|v| (None, v.as_bytes().to_vec())).collect();
        produce(&self.topic, &records);
    }
}

#[test]
fn a_call_past_handler_timeout_is_abandoned_and_retried() {
    let app = App::new("handler_timeout_ms = 1000");
    let mut host = app.start(true, "a");
    app.send(&["first", "loop"]);
    // The loop times out, again and again (max_attempts = 0): each time the
    // instance is dropped and the record retried; the record before it stays applied.
    host.wait_for_output("handler did not finish within handler_timeout", Duration::from_secs(60));
    eventually("the record before the loop applied", Duration::from_secs(30), || {
        applied(&app.state()).iter().any(|(_, v, _)| v == "first")
    });
    let started = Instant::now();
    let status = host.terminate_within(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    println!("SIGTERM with a retried looping record: exited after {:?}", started.elapsed());
}

#[test]
fn sigterm_during_an_endless_loop_exits_within_the_drain_deadline() {
    // The default handler_timeout (30 s) is longer than the drain deadline
    // (10 s): the drain deadline is what bounds the exit.
    let app = App::new("");
    let mut host = app.start(true, "a");
    app.send(&["loop"]);
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let status = host.terminate_within(Duration::from_secs(20));
    let elapsed = started.elapsed();
    println!("SIGTERM with a Kafka guest looping: exited ({status}) after {elapsed:?}");
    assert!(status.success(), "{status}");
    let out = host.drain_output();
    assert!(out.contains("abandoning it"), "the looping call was abandoned at the drain deadline:\n{out}");
    assert!(applied(&app.state()).is_empty(), "nothing was applied");
}

#[test]
fn a_rebalance_during_an_endless_loop_hands_the_partition_over_and_it_is_applied_once() {
    let app = App::new("");
    let mut first = app.start(true, "a");
    app.send(&["loop", "next"]);
    std::thread::sleep(Duration::from_secs(3));
    // A second member joins: the group rebalances while the first one loops.
    // Its revoke must end (the loop aborted at the drain deadline) for the
    // rebalance to complete at all.
    let mut second = app.start(false, "b");
    first.wait_for_output("kafka partitions revoked", Duration::from_secs(30));
    eventually("the first member's revoke to finish", Duration::from_secs(30), || {
        first.drain_output().contains("aborting it")
    });
    // Whoever got the partition back, the first member leaves now (SIGTERM
    // within the drain deadline even if it is looping again), so the second
    // owns it for certain.
    let started = Instant::now();
    let status = first.terminate_within(Duration::from_secs(25));
    assert!(status.success(), "{status}");
    println!("first member (looping) left after {:?}", started.elapsed());
    eventually("both records applied by the second member", Duration::from_secs(90), || {
        applied(&app.state()).len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let applied = applied(&app.state());
    assert_eq!(
        applied,
        vec![(0, "loop".to_owned(), "b".to_owned()), (1, "next".to_owned(), "b".to_owned())],
        "each record applied once, by the new owner, in order"
    );
    let status = second.terminate_within(Duration::from_secs(20));
    assert!(status.success(), "{status}");
}
