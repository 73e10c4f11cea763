//! Effectively-once application of Kafka records, end to end: the real
//! `user-kafka` component in the real host, a real broker, a real SQLite file.
//! A record applied but not yet committed to Kafka when the trigger dies is
//! delivered again after a restart; it must not overwrite a newer HTTP write.
//! Nor may a redelivered tombstone delete a user re-created since (on both
//! stores). And an operator who deletes the offset bookkeeping gets a
//! deliberate replay.


use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use crate::support::kafka::{create_topic, produce, produce_nullable};
use crate::support::{eventually, get, post_json, AppSpec, Host, Protocol, Store};

struct App {
    _dir: tempfile::TempDir,
    spec: AppSpec,
    manifest: PathBuf,
    state: PathBuf,
    store: Store,
}

impl App {
    /// One partition, and a trigger that never commits offsets by itself
    /// (auto-commit every 10 minutes): everything it applies is redelivered
    /// after a `kill -9`. A short session timeout lets the restarted trigger
    /// take the partition over from the killed one quickly (the client's
    /// under the classic protocol; under KIP-848 the test broker's 10 s).
    fn new(protocol: Protocol) -> App {
        App::on(protocol, Store::Sqlite)
    }

    fn on(protocol: Protocol, store: Store) -> App {
        let spec = AppSpec {
            protocol,
            kafka_client: format!("\"auto.commit.interval.ms\" = 600000\n{}", protocol.session_timeout(6000)),
            ..AppSpec::default()
        };
        create_topic(&spec.topic, 1);
        let dir = tempfile::tempdir().unwrap();
        let manifest = spec.write_manifest(dir.path());
        let state = dir.path().join(".spin");
        App { _dir: dir, spec, manifest, state, store }
    }

    fn start(&self) -> Host {
        let env = self.store.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Host::start(&self.manifest, &self.state, &["http", "kafka"], &env)
    }

    fn db(&self) -> PathBuf {
        self.state.join("sqlite_db.db")
    }

    fn send(&self, records: &[serde_json::Value]) {
        let records: Vec<_> = records
            .iter()
            .map(|r| (Some(r["user_id"].as_str().unwrap().to_owned()), r.to_string().into_bytes()))
            .collect();
        produce(&self.spec.topic, &records);
    }
}

fn query_i64(db: &Path, sql: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).ok()
}

fn revision(db: &Path, user: &str) -> Option<i64> {
    query_i64(db, &format!("SELECT revision FROM user_info WHERE user_id = '{user}'"))
}

fn first_name(base: &str, user: &str) -> serde_json::Value {
    get(base, &format!("/user?user_id={user}")).json()["first_name"].clone()
}

fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Applies `records` (one call: the single path for one record, the batch path
/// for several fetched together), overwrites the first user over HTTP, kills
/// the trigger before it commits, restarts it, and checks the redelivery.
fn redelivery_after_kill_keeps_the_newer_http_write(protocol: Protocol, records_first: bool, count: usize) {
    let app = App::new(protocol);
    let users: Vec<String> = (0..count).map(|_| new_user()).collect();
    let records: Vec<_> = users.iter().map(|u| json!({"user_id": u, "first_name": "from kafka"})).collect();
    // Fetched together when produced before the trigger starts: one batch.
    if records_first {
        app.send(&records);
    }
    let host = app.start();
    if !records_first {
        app.send(&records);
    }
    let base = host.base_url.clone();
    eventually("the records to be applied", Duration::from_secs(60), || {
        users.iter().all(|u| revision(&app.db(), u) == Some(1))
    });
    let updated = post_json(&base, &json!({"user_id": users[0], "first_name": "from http"}));
    assert_eq!(updated.status, 200, "{}", updated.body);
    host.kill(); // kill -9: the records' offsets were never committed

    let host = app.start();
    // A marker after them on the one partition: once it is applied, the
    // redelivered records before it have been handled.
    let marker = new_user();
    app.send(&[json!({"user_id": marker, "first_name": "marker"})]);
    eventually("the redelivery and the marker", Duration::from_secs(120), || revision(&app.db(), &marker) == Some(1));
    assert_eq!(first_name(&host.base_url, &users[0]), "from http", "the newer HTTP write survives");
    assert_eq!(revision(&app.db(), &users[0]), Some(2), "the record was applied once, then HTTP once");
    for u in &users[1..] {
        assert_eq!(revision(&app.db(), u), Some(1), "applied once");
    }
    assert_eq!(
        query_i64(&app.db(), "SELECT skipped FROM kafka_offsets"),
        Some(count as i64),
        "the redelivered records are counted as skipped"
    );
    let mut host = host;
    let log = host.drain_output();
    // One line per call that skipped records; redelivered records may come in several calls.
    let logged: usize = log
        .lines()
        .filter_map(|l| l.split("user-kafka: skipped ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(logged, count, "the skips are logged:\n{log}");
}

crate::under_both_protocols!(
    single_record_redelivered_after_kill_does_not_overwrite_a_newer_write,
    batch_redelivered_after_kill_does_not_overwrite_a_newer_write,
    deleting_the_bookkeeping_replays_the_topic_on_purpose,
);

fn single_record_redelivered_after_kill_does_not_overwrite_a_newer_write(protocol: Protocol) {
    redelivery_after_kill_keeps_the_newer_http_write(protocol, false, 1);
}

fn batch_redelivered_after_kill_does_not_overwrite_a_newer_write(protocol: Protocol) {
    redelivery_after_kill_keeps_the_newer_http_write(protocol, true, 5);
}

fn deleting_the_bookkeeping_replays_the_topic_on_purpose(protocol: Protocol) {
    // What an operator does to reprocess: stop the trigger, reset the group's
    // offsets to earliest (here: a new consumer group, which starts there), and
    // delete the topic's rows from kafka_offsets (the README's statement).
    let app = App::new(protocol);
    let user = new_user();
    app.send(&[json!({"user_id": user, "first_name": "v1"}), json!({"user_id": user, "last_name": "v2"})]);
    let host = app.start();
    eventually("both records applied", Duration::from_secs(60), || revision(&app.db(), &user) == Some(2));
    let status = host.terminate();
    assert!(status.success());

    // Without deleting the bookkeeping, a reset only finds records to skip.
    use_a_new_group(&app.manifest);
    let host = app.start();
    eventually("the replay to be skipped", Duration::from_secs(60), || {
        query_i64(&app.db(), "SELECT skipped FROM kafka_offsets") == Some(2)
    });
    assert_eq!(revision(&app.db(), &user), Some(2));
    assert!(host.terminate().success());

    let conn = rusqlite::Connection::open(app.db()).unwrap();
    let sql = format!("DELETE FROM kafka_offsets WHERE topic = '{}'", app.spec.topic);
    assert_eq!(conn.execute(&sql, []).unwrap(), 1);
    drop(conn);
    use_a_new_group(&app.manifest);
    let host = app.start();
    eventually("the records applied again", Duration::from_secs(60), || revision(&app.db(), &user) == Some(4));
    assert_eq!(first_name(&host.base_url, &user), "v1");
    drop(host);
}

#[test]
fn tombstone_redelivered_after_kill_does_not_delete_a_user_recreated_since_on_sqlite() {
    tombstone_redelivered_after_kill_does_not_delete_a_user_recreated_since(Store::Sqlite);
}

#[test]
fn tombstone_redelivered_after_kill_does_not_delete_a_user_recreated_since_on_postgres() {
    tombstone_redelivered_after_kill_does_not_delete_a_user_recreated_since(Store::postgres());
}

/// A user created and deleted through Kafka, re-created over HTTP, then the
/// trigger killed before it committed: the create and the tombstone come
/// again after the restart, and must change nothing.
fn tombstone_redelivered_after_kill_does_not_delete_a_user_recreated_since(store: Store) {
    let app = App::on(Protocol::Consumer, store);
    let (user, marker) = (new_user(), new_user());
    let value = |v: serde_json::Value| Some(v.to_string().into_bytes());
    produce_nullable(&app.spec.topic, &[
        (Some(user.clone()), value(json!({"user_id": user, "first_name": "from kafka"}))),
        (Some(user.clone()), None),
        (Some(marker.clone()), value(json!({"user_id": marker, "first_name": "marker"}))),
    ]);
    let host = app.start();
    let base = host.base_url.clone();
    // The marker comes after both on the one partition.
    eventually("the records to be applied", Duration::from_secs(60), || get(&base, &format!("/user?user_id={marker}")).status == 200);
    assert_eq!(get(&base, &format!("/user?user_id={user}")).status, 404, "the tombstone deleted the user");
    let recreated = post_json(&base, &json!({"user_id": user, "first_name": "from http"}));
    assert_eq!((recreated.status, recreated.etag.as_deref()), (201, Some("\"3\"")), "{recreated:?}");
    host.kill(); // kill -9: none of the three offsets was committed

    let mut host = app.start();
    let base = host.base_url.clone();
    let after = new_user();
    app.send(&[json!({"user_id": after, "first_name": "after"})]);
    eventually("the redelivery and the new marker", Duration::from_secs(120), || get(&base, &format!("/user?user_id={after}")).status == 200);
    let survivor = get(&base, &format!("/user?user_id={user}"));
    assert_eq!((survivor.status, survivor.etag.as_deref()), (200, Some("\"3\"")), "untouched by the redelivery: {survivor:?}");
    assert_eq!(survivor.json()["first_name"], "from http");
    let log = host.drain_output();
    let skipped: usize = log
        .lines()
        .filter_map(|l| l.split("user-kafka: skipped ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(skipped, 3, "the create, the tombstone and the marker were skipped:\n{log}");
}

/// Points the trigger at a consumer group with no committed offsets, which
/// starts at the earliest offset: an offset reset to earliest.
fn use_a_new_group(manifest: &Path) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let group = format!("group_id = \"replay_{}\"", uuid::Uuid::new_v4().simple());
    let text: Vec<String> =
        text.lines().map(|l| if l.starts_with("group_id = ") { group.clone() } else { l.to_owned() }).collect();
    std::fs::write(manifest, text.join("\n") + "\n").unwrap();
}
