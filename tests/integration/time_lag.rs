//! Lag in time and stuck partitions, end to end: a real broker, the real
//! `user-kafka` component in the real host process, a real SQLite file held
//! locked by another connection, and the host's `/metrics`. Also the metrics
//! and keys renamed after issue 17: `records_skipped` apart from
//! `records_dead_lettered`, and `prefetch_per_partition`'s deprecated old key.


use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use crate::support::kafka::{create_topic, produce};
use crate::support::metrics::{component_topic, metric, sample};
use crate::support::{eventually, free_port, get, user_in_db, AppSpec, Host};

fn scrape(port: u16) -> String {
    get(&format!("http://127.0.0.1:{port}"), "/metrics").body
}

fn wall_clock() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn start(spec: &AppSpec, dir: &std::path::Path, port: u16) -> Host {
    let manifest = spec.write_manifest(dir);
    let listen = format!("127.0.0.1:{port}");
    Host::start(&manifest, &dir.join(".spin"), &["kafka"], &[("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str())])
}

// One partition, paused on a locked database: its record ages, so lag_seconds
// follows the wall clock since the record was produced, and paused_seconds
// grows; both return to 0 once the lock goes and the record is applied.
#[test]
fn a_paused_partition_ages_its_lag_seconds_and_counts_its_pause() {
    let spec = AppSpec { kafka_extra: "max_attempts = 0\ninitial_backoff_ms = 50\nmax_backoff_ms = 500\n".into(), ..AppSpec::default() };
    create_topic(&spec.topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".spin/sqlite_db.db");
    let port = free_port();
    let host = start(&spec, dir.path(), port);
    let warm = uuid::Uuid::new_v4().to_string();
    produce(&spec.topic, &[(Some(warm.clone()), json!({"user_id": warm, "first_name": "a"}).to_string().into_bytes())]);
    eventually("the first record applied", Duration::from_secs(60), || user_in_db(&db, &warm).is_some());
    let lag = format!("trigger_kafka_consumer_lag_seconds{{topic=\"{}\",partition=\"0\"}}", spec.topic);
    let paused = format!("trigger_kafka_partition_paused_seconds{{topic=\"{}\",partition=\"0\"}}", spec.topic);
    eventually("both gauges at 0 while caught up", Duration::from_secs(30), || {
        let body = scrape(port);
        sample(&body, &lag) == Some(0.0) && sample(&body, &paused) == Some(0.0)
    });

    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let user = uuid::Uuid::new_v4().to_string();
    let before_produce = wall_clock();
    produce(&spec.topic, &[(Some(user.clone()), json!({"user_id": user, "first_name": "b"}).to_string().into_bytes())]);
    let after_produce = wall_clock();
    let paused_from = Instant::now();

    // The pause starts at the first failed attempt (after SQLite's busy wait).
    eventually("the partition reported paused", Duration::from_secs(60), || {
        sample(&scrape(port), &paused).is_some_and(|p| p > 0.0)
    });
    // The record's timestamp lies in [before_produce, after_produce]; a gauge
    // is refreshed about every second, so a scrape at wall clock `t` shows at
    // least t - after_produce - (refresh period + generous slack) and at most
    // t - before_produce.
    let mut last = (0.0, 0.0);
    for round in 0..3 {
        std::thread::sleep(Duration::from_secs(5));
        let t_before = wall_clock();
        let body = scrape(port);
        let t_after = wall_clock();
        let (l, p) = (sample(&body, &lag).expect(&body), sample(&body, &paused).expect(&body));
        let lower = (t_before.saturating_sub(after_produce)).as_secs_f64() - 5.0;
        let upper = (t_after - before_produce).as_secs_f64() + 0.5;
        assert!(l >= lower && l <= upper, "round {round}: lag_seconds {l} not within [{lower}, {upper}]: {body}");
        assert!(p <= paused_from.elapsed().as_secs_f64() + 0.5, "round {round}: paused {p}s, longer than the lock");
        assert!(l > last.0 && p > last.1, "round {round}: both grow while the partition is paused: {last:?} -> ({l}, {p})");
        last = (l, p);
    }
    assert!(last.0 >= 10.0 && last.1 >= 5.0, "after 15 s paused: {last:?}");

    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    eventually("the paused record applied", Duration::from_secs(60), || user_in_db(&db, &user).is_some());
    eventually("both gauges back to 0", Duration::from_secs(30), || {
        let body = scrape(port);
        sample(&body, &lag) == Some(0.0) && sample(&body, &paused) == Some(0.0)
    });
    drop(host);
}

// Without a dead-letter topic a poison record is skipped, and counted as
// skipped, not as dead-lettered; and the deprecated max_in_flight_per_partition
// still configures the trigger, with one warning at startup.
#[test]
fn a_skipped_record_is_counted_apart_and_the_old_prefetch_key_still_works() {
    let spec = AppSpec {
        kafka_extra: "initial_backoff_ms = 20\nmax_backoff_ms = 200\nmax_in_flight_per_partition = 50\n".into(),
        ..AppSpec::default()
    };
    create_topic(&spec.topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let text = std::fs::read_to_string(&manifest).unwrap();
    let dlq_line = format!("dead_letter_topic = \"{}\"\n", spec.dead_letter_topic);
    assert!(text.contains(&dlq_line));
    std::fs::write(&manifest, text.replace(&dlq_line, "")).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut host = Host::start(&manifest, &dir.path().join(".spin"), &["kafka"], &[("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str())]);
    let db = dir.path().join(".spin/sqlite_db.db");

    let user = uuid::Uuid::new_v4().to_string();
    produce(&spec.topic, &[(Some("poison".to_owned()), b"{not json".to_vec())]);
    produce(&spec.topic, &[(Some(user.clone()), json!({"user_id": user, "last_name": "Doe"}).to_string().into_bytes())]);
    eventually("the record after the poison applied", Duration::from_secs(60), || user_in_db(&db, &user).is_some());
    let labels = component_topic("user-kafka", &spec.topic);
    eventually("the skip counted", Duration::from_secs(30), || {
        sample(&scrape(port), &format!("trigger_kafka_records_skipped_total{labels}")) == Some(1.0)
    });
    let body = scrape(port);
    assert_eq!(metric(&body, &format!("trigger_kafka_records_dead_lettered_total{labels}")), 0.0, "{body}");

    let output = host.drain_output();
    let warnings = output.lines().filter(|l| l.contains("max_in_flight_per_partition is deprecated")).count();
    assert_eq!(warnings, 1, "{output}");
    assert!(output.contains("prefetch_per_partition"), "the warning names the new key: {output}");
    drop(host);
}
