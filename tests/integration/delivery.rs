//! Delivery guarantees of the Kafka trigger under database trouble, and its health
//! and metrics endpoints, end to end: a real broker, the real `user-kafka`
//! component in the real host process, a real SQLite file, real HTTP.


use std::process::Command;
use std::time::Duration;

use serde_json::json;
use crate::support::kafka::{brokers, create_topic, produce, records_in};
use crate::support::metrics::{component_topic, metric, sample};
use crate::support::{ensure_built, eventually, free_port, get, host_binary, user_in_db, AppSpec, Host, Protocol, Reply};

fn keyed(user_id: &str, body: serde_json::Value) -> (Option<String>, Vec<u8>) {
    (Some(user_id.to_owned()), body.to_string().into_bytes())
}

fn monitoring(port: u16, path: &str) -> Reply {
    get(&format!("http://127.0.0.1:{port}"), path)
}

// The issue's outage: another process holds an exclusive lock on the SQLite file for
// 60 s while valid updates arrive on 3 partitions. With `max_attempts = 0` each
// partition pauses on its record and retries until the lock goes: nothing is
// dead-lettered, every update is applied in partition order, and /readyz says the
// trigger is not ready while it waits.
#[test]
fn a_minute_long_database_lock_dead_letters_nothing_and_keeps_partition_order() {
    let spec = AppSpec {
        kafka_extra: "max_attempts = 0\ninitial_backoff_ms = 50\nmax_backoff_ms = 2000\n".into(),
        ..AppSpec::default()
    };
    create_topic(&spec.topic, 3);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let state = dir.path().join(".spin");
    let db = state.join("sqlite_db.db");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let host = Host::start(&manifest, &state, &["kafka"], &[("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str())]);

    let users: Vec<String> = (0..10).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let update = |round: usize| -> Vec<_> {
        users.iter().map(|u| keyed(u, json!({"user_id": u, "first_name": format!("round{round}")}))).collect()
    };
    produce(&spec.topic, &update(0));
    eventually("the first round applied", Duration::from_secs(60), || {
        users.iter().all(|u| user_in_db(&db, u).is_some_and(|r| r["first_name"] == "round0"))
    });

    // A maintenance job takes the write lock and keeps it.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.busy_timeout(Duration::from_secs(30)).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // 30 updates, 3 per user, over the 3 partitions (keyed by user).
    for round in 1..=3 {
        produce(&spec.topic, &update(round));
    }
    eventually("/readyz to report the paused partition", Duration::from_secs(60), || {
        let reply = monitoring(port, "/readyz");
        reply.status == 503 && reply.json()["reason"].as_str().unwrap_or("").contains("paused retrying")
    });
    std::thread::sleep(Duration::from_secs(60));
    assert!(
        users.iter().all(|u| user_in_db(&db, u).is_some_and(|r| r["first_name"] == "round0")),
        "nothing can be written while the lock is held"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    eventually("every update applied after the lock", Duration::from_secs(120), || {
        users.iter().all(|u| user_in_db(&db, u).is_some_and(|r| r["first_name"] == "round3"))
    });
    eventually("/readyz ready again", Duration::from_secs(30), || monitoring(port, "/readyz").status == 200);
    let metrics = monitoring(port, "/metrics").body;
    let labels = component_topic("user-kafka", &spec.topic);
    // How often each partition retried depends on the backoff's timing: at least once each.
    assert!(metric(&metrics, &format!("trigger_kafka_records_retried_total{labels}")) >= 3.0, "{metrics}");
    assert!(metric(&metrics, &format!("trigger_kafka_records_failed_total{labels}")) >= 3.0, "{metrics}");
    assert_eq!(metric(&metrics, &format!("trigger_kafka_records_dead_lettered_total{labels}")), 0.0, "{metrics}");
    drop(host);
    assert_eq!(records_in(&brokers(), &spec.dead_letter_topic), 0, "nothing was dead-lettered");
}

// /healthz answers as soon as the process runs; /readyz only once the consumer is a
// member of its group; /metrics counts what the component applied.
crate::under_both_protocols!(readyz_turns_ready_and_metrics_count_applied_records);
fn readyz_turns_ready_and_metrics_count_applied_records(protocol: Protocol) {
    let mut spec = AppSpec { protocol, ..AppSpec::default() };
    // One record per call, so the test knows how many calls there are.
    spec.kafka_extra.push_str("batch_size = 1\n");
    create_topic(&spec.topic, 3);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let state = dir.path().join(".spin");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let host = Host::start(&manifest, &state, &["kafka"], &[("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str())]);
    eventually("/healthz", Duration::from_secs(30), || monitoring(port, "/healthz").status == 200);
    eventually("/readyz ready", Duration::from_secs(60), || monitoring(port, "/readyz").status == 200);
    assert_eq!(monitoring(port, "/readyz").json(), json!({"ready": true}));

    let users: Vec<String> = (0..25).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let records: Vec<_> = users.iter().map(|u| keyed(u, json!({"user_id": u, "last_name": "Doe"}))).collect();
    let poison = vec![(Some("poison".to_owned()), b"{not json".to_vec())];
    produce(&spec.topic, &records);
    produce(&spec.topic, &poison);
    let labels = component_topic("user-kafka", &spec.topic);
    eventually("/metrics to count every record", Duration::from_secs(60), || {
        let body = monitoring(port, "/metrics").body;
        sample(&body, &format!("trigger_kafka_records_handled_total{labels}")) == Some(25.0)
            && sample(&body, &format!("trigger_kafka_records_dead_lettered_total{labels}")) == Some(1.0)
    });
    let reply = monitoring(port, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.content_type.contains("text"), "{}", reply.content_type);
    let body = reply.body;
    // The poison record failed once (permanent: no retry); 26 records, one call each.
    assert_eq!(metric(&body, &format!("trigger_kafka_records_failed_total{labels}")), 1.0, "{body}");
    assert_eq!(metric(&body, &format!("trigger_kafka_handler_duration_seconds_count{labels}")), 26.0, "{body}");
    assert_eq!(metric(&body, &format!("trigger_kafka_records_retried_total{labels}")), 0.0, "a permanent failure is not retried: {body}");
    // Lag is sampled every few seconds; it reaches 0 once everything is done.
    eventually("lag 0 on every partition", Duration::from_secs(60), || {
        let body = monitoring(port, "/metrics").body;
        (0..3).all(|p| {
            body.lines().any(|l| l == format!("trigger_kafka_consumer_lag{{topic=\"{}\",partition=\"{p}\"}} 0", spec.topic))
        })
    });
    assert_eq!(monitoring(port, "/nope").status, 404);
    drop(host);
}

// Not a member of a group while the broker is unreachable: alive, but not ready.
// (Started with the flag rather than the environment variable.)
#[test]
fn unreachable_broker_is_alive_but_not_ready() {
    ensure_built();
    let spec = AppSpec::default();
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let port = free_port();
    let mut child = Command::new(host_binary())
        .arg("-f")
        .arg(&manifest)
        .args(["--trigger", "kafka", "--metrics-listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(dir.path().join(".spin"))
        .env("SPIN_VARIABLE_KAFKA_BROKERS", "127.0.0.1:1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("/healthz", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && monitoring(port, "/healthz").status == 200
    });
    let ready = monitoring(port, "/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.json()["reason"].as_str().unwrap().contains("not a member of its consumer group"), "{}", ready.body);
    let _ = child.kill();
    let _ = child.wait();
}

// A database label the component is granted but no database is defined for is a
// one-line startup error, not a failure of every record.
#[test]
fn an_undefined_database_label_is_a_startup_error() {
    ensure_built();
    let spec = AppSpec::default();
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let text = std::fs::read_to_string(&manifest).unwrap();
    let kafka_component = format!("source = \"{}\"\nsqlite_databases = [\"default\"]", crate::support::wasm("user_kafka").display());
    assert!(text.contains(&kafka_component));
    let text = text.replace(&kafka_component, &kafka_component.replace(r#"["default"]"#, r#"["default", "audit"]"#));
    std::fs::write(&manifest, text).unwrap();
    let output = Command::new(host_binary())
        .arg("-f")
        .arg(&manifest)
        .args(["--trigger", "kafka"])
        .arg("--state-dir")
        .arg(dir.path().join(".spin"))
        .env("SPIN_VARIABLE_KAFKA_BROKERS", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error: ")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(error[0].contains("\"user-kafka\"") && error[0].contains("\"audit\"") && error[0].contains("not defined"), "{stderr}");
}

// /readyz probes the store the component is configured with, not only the
// PostgreSQL connections already opened: with PostgreSQL down before any
// record (nothing listens at the configured address), the process is not
// ready, and says why.
#[test]
fn readyz_is_not_ready_while_the_configured_postgres_is_down_before_any_record() {
    let spec = AppSpec::default();
    create_topic(&spec.topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let down = format!("postgres://postgres@127.0.0.1:{}/users?sslmode=disable", free_port());
    let host_port = crate::support::postgres::authority(&down);
    let host = Host::start(
        &manifest,
        &dir.path().join(".spin"),
        &["kafka"],
        &[
            ("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str()),
            ("SPIN_VARIABLE_DATABASE_URL", down.as_str()),
            ("SPIN_VARIABLE_DATABASE_HOST", host_port.as_str()),
        ],
    );
    eventually("/readyz to name PostgreSQL as the reason", Duration::from_secs(60), || {
        let reply = monitoring(port, "/readyz");
        reply.status == 503 && reply.body.contains("PostgreSQL")
    });
    // It stays so (not a passing moment before the group join).
    std::thread::sleep(Duration::from_secs(2));
    let reply = monitoring(port, "/readyz");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body.contains("PostgreSQL"), "{}", reply.body);
    assert!(!reply.body.contains("password"), "{}", reply.body);
    host.terminate();
}
