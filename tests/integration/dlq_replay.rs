//! `trigger-kafka dlq replay` against the real broker and the real host:
//! records dead-lettered while the database was locked (their retries used
//! up) are replayed once the lock is gone and applied; a second replay of the
//! same window does nothing; filters and the loop limit hold.


use std::process::Command;
use std::time::Duration;

use serde_json::json;
use crate::support::kafka::{brokers, consume_all, create_topic, produce};
use crate::support::{eventually, user_in_db, AppSpec, Host};

fn replay(args: &[&str]) -> String {
    let out = Command::new(crate::support::host_binary())
        .args(["dlq", "replay", "--brokers", &brokers()])
        .args(args)
        .output()
        .expect("run trigger-kafka dlq replay");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dlq replay {args:?} failed:\n{text}");
    text
}

#[test]
fn dead_lettered_records_are_replayed_once_the_cause_is_fixed() {
    let spec = AppSpec {
        kafka_extra: "max_attempts = 2\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n".into(),
        ..AppSpec::default()
    };
    create_topic(&spec.topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let state = dir.path().join(".spin");
    let db = state.join("sqlite_db.db");
    let _host = Host::start(&manifest, &state, &["kafka"], &[]);
    let seed = uuid::Uuid::new_v4().to_string();
    produce(&spec.topic, &[(Some(seed.clone()), json!({"user_id": seed}).to_string().into_bytes())]);
    eventually("the schema migrated", Duration::from_secs(60), || user_in_db(&db, &seed).is_some());

    // The cause: another process holds the write lock past every retry.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let users: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let records: Vec<_> = users
        .iter()
        .map(|u| (Some(u.clone()), json!({"user_id": u, "first_name": "Replayed"}).to_string().into_bytes()))
        .collect();
    produce(&spec.topic, &records);
    let dead = consume_all(&spec.dead_letter_topic, 3, Duration::from_secs(180));
    assert_eq!(dead.len(), 3, "all three dead-lettered");
    assert!(dead.iter().all(|r| r.header("kafka_dlt_error_kind") == Some("retryable-exhausted")));
    // The fix.
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert!(users.iter().all(|u| user_in_db(&db, u).is_none()));

    // Filters and the loop limit, in groups of their own (dry runs commit nothing).
    let group = format!("replay-{}", spec.group);
    let from = spec.dead_letter_topic.as_str();
    let out = replay(&["--from", from, "--group", &group, "--dry-run"]);
    assert!(out.contains("would replay 3 record(s)"), "{out}");
    let out = replay(&["--from", from, "--group", &group, "--dry-run", "--error-kind", "permanent"]);
    assert!(out.contains("would replay 0 record(s); 3 outside the filters"), "{out}");
    let out = replay(&["--from", from, "--group", &group, "--dry-run", "--until", "2000-01-01T00:00:00Z"]);
    assert!(out.contains("would replay 0 record(s); 3 outside the filters"), "{out}");
    let out = replay(&["--from", from, "--group", &group, "--dry-run", "--max-replays", "0"]);
    assert!(out.contains("3 refused at the loop limit"), "{out}");

    let out = replay(&["--from", from, "--group", &group, "--error-kind", "retryable-exhausted", "--since", "0"]);
    assert!(out.contains("replayed 3 record(s)"), "{out}");
    eventually("the replayed records applied", Duration::from_secs(60), || {
        users.iter().all(|u| user_in_db(&db, u).is_some_and(|r| r["first_name"] == "Replayed"))
    });
    // The copies: original key, value and headers, the trigger's headers gone, a replay count.
    let source = consume_all(&spec.topic, 4 + 3, Duration::from_secs(30));
    let copies = &source[4..];
    assert_eq!(copies.len(), 3);
    for (copy, (key, value)) in copies.iter().zip(&records) {
        assert_eq!(copy.key.as_deref(), key.as_deref().map(str::as_bytes));
        assert_eq!(&copy.value, value);
        assert_eq!(copy.header("origin"), Some("test"));
        assert_eq!(copy.header("kafka_dlt_replayed"), Some("1"));
        assert_eq!(copy.header("kafka_dlt_error"), None);
    }

    // Its progress is committed: the same window again replays nothing.
    let out = replay(&["--from", from, "--group", &group]);
    assert!(out.contains("replayed 0 record(s)"), "{out}");
    assert_eq!(consume_all(&spec.topic, 8, Duration::from_secs(5)).len(), 7, "nothing more was written");
}
