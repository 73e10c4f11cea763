//! Kafka tombstones and conditional HTTP writes racing the Kafka stream, end
//! to end on both stores: a null value keyed by a user id deletes the user,
//! in order with the updates around it; a tombstone whose key is no user id
//! (or that has none) and an empty value are dead-lettered; and an HTTP
//! `If-Match` with a stale revision never overwrites what Kafka wrote since.

use std::time::Duration;

use serde_json::json;

use super::App;
use crate::support::kafka::{consume_all, produce, produce_nullable};
use crate::support::{eventually, get, post_json, post_json_with, AppSpec, Reply, Store};

#[test]
fn tombstones_delete_in_order_and_bad_ones_are_dead_lettered_on_sqlite() {
    tombstones_delete_in_order_and_bad_ones_are_dead_lettered(Store::Sqlite);
}

#[test]
fn tombstones_delete_in_order_and_bad_ones_are_dead_lettered_on_postgres() {
    tombstones_delete_in_order_and_bad_ones_are_dead_lettered(Store::postgres());
}

#[test]
fn stale_if_match_under_concurrent_kafka_updates_never_overwrites_on_sqlite() {
    stale_if_match_under_concurrent_kafka_updates_never_overwrites(Store::Sqlite);
}

#[test]
fn stale_if_match_under_concurrent_kafka_updates_never_overwrites_on_postgres() {
    stale_if_match_under_concurrent_kafka_updates_never_overwrites(Store::postgres());
}

fn user(base: &str, id: &str) -> Reply {
    get(base, &format!("/user?user_id={id}"))
}

fn revision(reply: &Reply) -> i64 {
    let etag = reply.etag.as_deref().unwrap_or_else(|| panic!("no ETag: {reply:?}"));
    etag.trim_matches('"').parse().unwrap_or_else(|e| panic!("ETag {etag}: {e}"))
}

fn tombstones_delete_in_order_and_bad_ones_are_dead_lettered(store: Store) {
    let app = App::on(AppSpec::default(), store);
    let host = app.start(&["http", "kafka"]);
    let base = host.base_url.clone();
    let (a, b, never) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    assert_eq!(post_json(&base, &json!({"user_id": a, "first_name": "Ann", "email": "ann@example.com"})).status, 201);
    let value = |v: serde_json::Value| Some(v.to_string().into_bytes());
    produce_nullable(&app.spec.topic, &[
        (Some(a.clone()), None),
        // One user's records in one partition, in order: created, erased, created again.
        (Some(b.clone()), value(json!({"user_id": b, "first_name": "Bo", "email": "bo@example.com"}))),
        (Some(b.clone()), None),
        (Some(b.clone()), value(json!({"user_id": b, "last_name": "Again"}))),
        // A tombstone of a user that never existed deletes nothing, and is no error.
        (Some(never.clone()), None),
        (Some("not-a-uuid".into()), None),
        (None, None),
        (Some("k-empty".into()), Some(Vec::new())),
    ]);
    eventually("the tombstones and updates applied", Duration::from_secs(60), || {
        user(&base, &a).status == 404 && user(&base, &b).json().get("last_name").is_some_and(|l| l == "Again")
    });
    let reborn = user(&base, &b);
    assert_eq!(
        reborn.json(),
        json!({"user_id": b, "first_name": "", "last_name": "Again", "email": "", "phone_number": ""}),
        "nothing of the erased user comes back"
    );
    assert_eq!(revision(&reborn), 3, "created, deleted, created again: the revision kept counting");
    assert_eq!(user(&base, &never).status, 404);

    // Exactly the three bad records are dead-lettered (a fourth would show up
    // within the wait for one more).
    let dead = consume_all(&app.spec.dead_letter_topic, 4, Duration::from_secs(20));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let find = |key: Option<&str>| {
        dead.iter().find(|d| d.key.as_deref() == key.map(str::as_bytes)).unwrap_or_else(|| panic!("{key:?} dead-lettered: {dead:?}"))
    };
    let bad_key = find(Some("not-a-uuid"));
    assert!(bad_key.null, "the copy of a tombstone is a tombstone");
    assert_eq!(bad_key.header("kafka_dlt_error_kind"), Some("permanent"));
    assert_eq!(
        bad_key.header("kafka_dlt_error"),
        Some(r#"{"key":["A tombstone (null value) deletes the user its key names: the key must be a valid UUID."]}"#)
    );
    let keyless = find(None);
    assert!(keyless.null);
    assert_eq!(
        keyless.header("kafka_dlt_error"),
        Some(r#"{"key":["A tombstone (null value) deletes the user its key names: the record has no key."]}"#)
    );
    let empty = find(Some("k-empty"));
    assert!(!empty.null && empty.value.is_empty(), "an empty value stays an empty value: {empty:?}");
    let error = empty.header("kafka_dlt_error").unwrap();
    assert!(error.starts_with(r#"{"detail":"JSON parse error - "#), "an empty value is invalid JSON, not a tombstone: {error}");
    drop(host);
}

/// A Kafka stream updates one user's `last_name` while an HTTP client runs
/// read-modify-write cycles on `first_name` with `If-Match`, and keeps
/// retrying a revision it knows is stale. Every write is accounted for in the
/// final revision, no stale write lands, and every conditional write that
/// succeeded was applied on exactly the revision it named.
fn stale_if_match_under_concurrent_kafka_updates_never_overwrites(store: Store) {
    const KAFKA_UPDATES: usize = 120;
    let app = App::on(AppSpec::default(), store);
    let host = app.start(&["http", "kafka"]);
    let base = host.base_url.clone();
    let id = uuid::Uuid::new_v4().to_string();
    let created = post_json(&base, &json!({"user_id": id, "first_name": "start"}));
    assert_eq!((created.status, revision(&created)), (201, 1));
    let stale = created.etag.clone().unwrap();

    let topic = app.spec.topic.clone();
    let producer_id = id.clone();
    let stream = std::thread::spawn(move || {
        for chunk in (0..KAFKA_UPDATES).collect::<Vec<_>>().chunks(4) {
            let records: Vec<_> = chunk
                .iter()
                .map(|n| (Some(producer_id.clone()), json!({"user_id": producer_id, "last_name": format!("k{n}")}).to_string().into_bytes()))
                .collect();
            produce(&topic, &records);
            std::thread::sleep(Duration::from_millis(30));
        }
    });

    let (mut applied, mut refused, mut last_written) = (0i64, 0usize, "start".to_owned());
    let mut round = 0;
    while !stream.is_finished() || round < 20 {
        round += 1;
        let current = user(&base, &id);
        let seen = revision(&current);
        let name = format!("http{round}");
        let write = post_json_with(&base, &json!({"user_id": id, "first_name": name}), &[("if-match", current.etag.as_deref().unwrap())]);
        match write.status {
            200 => {
                assert_eq!(revision(&write), seen + 1, "applied on exactly the revision it named: {write:?}");
                assert_eq!(write.json()["first_name"], name.as_str());
                applied += 1;
                last_written = name;
            }
            412 => {
                assert_eq!(write.json(), json!({"detail": "Precondition failed."}));
                assert!(revision(&write) > seen, "refused only because the user moved on: {write:?}");
                refused += 1;
            }
            other => panic!("{other}: {write:?}"),
        }
        let lost = post_json_with(&base, &json!({"user_id": id, "first_name": "stale"}), &[("if-match", &stale)]);
        assert_eq!(lost.status, 412, "a stale If-Match never writes: {lost:?}");
    }
    stream.join().unwrap();
    let last = format!("k{}", KAFKA_UPDATES - 1);
    eventually("every Kafka update applied", Duration::from_secs(60), || user(&base, &id).json()["last_name"] == last.as_str());
    let end = user(&base, &id);
    assert_eq!(end.json()["first_name"], last_written.as_str(), "the last successful HTTP write stands");
    assert_eq!(
        revision(&end),
        1 + applied + KAFKA_UPDATES as i64,
        "every write counted once ({applied} HTTP applied, {refused} refused, {KAFKA_UPDATES} Kafka)"
    );
    assert!(applied > 0, "some conditional writes went through");
    drop(host);
}

/// A component built against the contract's 0.1.0 (tests/guests/hostile-kafka,
/// whose WIT is wit/v0.1) keeps running on a trigger that speaks 0.2.0, and
/// gets a tombstone as the empty value 0.1.0 always gave it.
#[test]
fn a_component_built_against_0_1_0_still_runs_and_gets_a_tombstone_as_an_empty_value() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("v01_{id}");
    crate::support::kafka::create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::kafka_deadlines::manifest(dir.path(), &topic, &format!("v01_{id}"), "");
    let state = dir.path().join(".spin");
    let host = crate::support::Host::start(&manifest, &state, &["kafka"], &[]);
    produce_nullable(&topic, &[
        (Some("k".into()), Some(b"before".to_vec())),
        (Some("k".into()), None),
        (Some("k".into()), Some(b"after".to_vec())),
    ]);
    eventually("the three records applied", Duration::from_secs(60), || crate::kafka_deadlines::applied(&state).len() >= 3);
    let values: Vec<(i64, String)> = crate::kafka_deadlines::applied(&state).into_iter().map(|(o, v, _)| (o, v)).collect();
    assert_eq!(values, [(0, "before".to_owned()), (1, String::new()), (2, "after".to_owned())]);
    drop(host);
}
