//! The domain's rules as tests over any `Database`, run by each native
//! adapter (`sqlite`, `postgres`) against a real database, so one rule is
//! checked on both stores. `connect` opens a new connection to one database
//! that starts empty (no schema).
//!
//! A rule added here is listed once, in [`for_each_shared_rule`], and so runs
//! on every store.

use crate::testing::counting::Counting;
use crate::testing::post;
use crate::{
    apply_records, delete_user, read_stored, read_user, write_user_if, Applied, BatchError, Database, Deleted, Dialect,
    InputError, Preconditions, Record, SqlValue, Tags, UpsertOutcome, Written,
};

/// Calls `$store!` with the name of every shared rule; each store's module
/// defines its `$store` macro, which turns a name into a `#[test]` on it.
macro_rules! for_each_shared_rule {
    ($store:ident) => {
        $store!(
            create_then_partial_update_then_clear,
            fresh_database_migrates_on_first_read,
            fresh_database_migrates_on_first_write,
            older_schema_migrates_when_kafka_needs_it,
            concurrent_starters_apply_each_migration_once,
            concurrent_writers_never_lose_a_create,
            batches_are_all_or_nothing,
            a_batch_ends_as_its_records_applied_one_by_one,
            redelivered_records_are_skipped_and_counted,
            deleting_the_bookkeeping_reprocesses_on_purpose,
            statements_per_request,
            each_adapter_reports_the_kind_of_a_failure,
            a_delete_leaves_a_tombstone_and_revisions_never_repeat,
            conditional_writes_check_the_revision_in_their_statement,
            tombstone_records_delete_in_order_effectively_once,
            a_bad_tombstone_or_an_empty_value_is_invalid,
        );
    };
}
pub(crate) use for_each_shared_rule;

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn one_integer(db: &impl Database, sql: &str) -> i64 {
    match db.query(sql, &[]).unwrap().first().and_then(|r| r.first()) {
        Some(SqlValue::Integer(n)) => *n,
        other => panic!("{sql}: {other:?}"),
    }
}

fn record<'a>(offset: i64, value: &'a str) -> Record<'a> {
    Record { topic: "users", partition: 0, offset, key: None, value: Some(value.as_bytes()) }
}

fn body(user: u128, field: &str, value: &str) -> String {
    serde_json::json!({"user_id": id(user), field: value}).to_string()
}

pub fn create_then_partial_update_then_clear<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let first = body(1, "first_name", "John");
    let saved = post(&db, first.as_bytes()).unwrap();
    assert_eq!(saved.outcome, UpsertOutcome::Created);
    assert_eq!(saved.user.phone_number, "");
    let partial = serde_json::json!({"user_id": id(1), "last_name": "Doe", "phone_number": "555 0100"}).to_string();
    let saved = post(&db, partial.as_bytes()).unwrap();
    assert_eq!(saved.outcome, UpsertOutcome::Updated);
    assert_eq!(saved.user.first_name, "John", "absent field unchanged");
    assert_eq!(saved.user.phone_number, "555 0100");
    post(&db, body(1, "phone_number", "").as_bytes()).unwrap();
    let found = read_user(&db, id(1)).unwrap().unwrap();
    assert_eq!((found.first_name.as_str(), found.last_name.as_str(), found.phone_number.as_str()), ("John", "Doe", ""));
    assert_eq!(read_user(&db, id(2)).unwrap(), None);
}

pub fn fresh_database_migrates_on_first_read<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    assert_eq!(read_user(&connect(), id(1)).unwrap(), None);
    assert_eq!(one_integer(&connect(), "SELECT count(*) FROM user_info"), 0);
}

pub fn fresh_database_migrates_on_first_write<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let saved = post(&connect(), body(1, "email", "a@example.com").as_bytes()).unwrap();
    assert_eq!(saved.outcome, UpsertOutcome::Created);
}

pub fn older_schema_migrates_when_kafka_needs_it<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    crate::migrations::migrate_to(&db, 1).unwrap();
    // A user as the first schema stored it (today's upsert would migrate).
    db.execute(&format!("INSERT INTO user_info (user_id, first_name) VALUES ('{}', 'Ann')", id(1)), &[]).unwrap();
    assert!(db.query("SELECT count(*) FROM kafka_offsets", &[]).unwrap_err().kind() == crate::DbErrorKind::MissingSchema);
    let value = body(1, "last_name", "Lee");
    let applied = apply_records(&db, &[record(0, &value)]).unwrap();
    assert_eq!(applied, Applied { applied: 1, skipped: 0 });
    let user = read_stored(&db, id(1)).unwrap().unwrap();
    assert_eq!((user.user.first_name.as_str(), user.user.last_name.as_str(), user.revision), ("Ann", "Lee", 2));
    // The migrated row is a live user whose life began at revision 1: an update.
    let saved = post(&db, body(1, "email", "ann@example.com").as_bytes()).unwrap();
    assert_eq!((saved.outcome, saved.revision), (UpsertOutcome::Updated, 3));
}

pub fn concurrent_starters_apply_each_migration_once<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    // Eight starters hit an empty database at once; every one succeeds, so no
    // migration ran twice (a second CREATE of schema_migrations' rows or of a
    // table without IF NOT EXISTS would fail).
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8u128)
            .map(|n| s.spawn(move || post(&connect(), body(n, "first_name", "x").as_bytes()).map(drop)))
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
    });
    let db = connect();
    assert_eq!(one_integer(&db, "SELECT count(*) FROM user_info"), 8);
    if db.dialect() == Dialect::Postgres {
        let recorded = one_integer(&db, "SELECT count(*) FROM schema_migrations");
        assert_eq!(recorded, crate::POSTGRES_MIGRATIONS.len() as i64);
    }
}

pub fn concurrent_writers_never_lose_a_create<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    // Two connections (as two processes would have) race to create and update
    // the same ids; every id must end up created exactly once.
    read_user(&connect(), id(0)).unwrap();
    let created: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    let db = connect();
                    (0..150u128)
                        .filter(|n| {
                            let json = body(*n, "first_name", &format!("w{w}"));
                            post(&db, json.as_bytes()).unwrap().outcome == UpsertOutcome::Created
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(created, 150);
}

pub fn batches_are_all_or_nothing<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let (a, b, again) = (body(1, "first_name", "A"), body(2, "first_name", "B"), body(1, "last_name", "Z"));
    let bad = r#"{"user_id": "nope"}"#;
    let e = apply_records(&db, &[record(0, &a), record(1, bad)]).unwrap_err();
    assert!(matches!(e, BatchError::Invalid { index: 1, .. }), "{e:?}");
    assert_eq!(read_user(&db, id(1)).unwrap(), None, "nothing written when one input is invalid");
    let applied = apply_records(&db, &[record(0, &a), record(2, &b), record(3, &again)]).unwrap();
    assert_eq!(applied, Applied { applied: 3, skipped: 0 });
    let one = read_user(&db, id(1)).unwrap().unwrap();
    assert_eq!((one.first_name.as_str(), one.last_name.as_str()), ("A", "Z"), "later records see earlier ones");
}

/// A batch of many shapes, with ids repeated within it and across batches,
/// ends exactly as the single-record upsert would have left it: fields
/// absent from a record keep their value, later records win, and every
/// record adds one revision.
pub fn a_batch_ends_as_its_records_applied_one_by_one<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    use std::collections::BTreeMap;
    const FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone_number"];
    let db = connect();
    // A fixed pseudo-random sequence (an LCG), so a failure replays.
    let mut state = 0x2545_f491_u64;
    let mut next = |bound: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let mut expected: BTreeMap<u128, ([String; 4], i64)> = BTreeMap::new();
    let mut bodies = Vec::new();
    for n in 0..600 {
        // First 250 new users of one shape (runs past the row limit); then
        // 40 users, so repeats within a batch are common, in stretches of
        // one shape (50 records) and of a new shape on every record.
        let (user, mask) = match n {
            0..250 => (1_000 + n as u128, 0b0011),
            _ if (n / 50) % 2 == 0 => (next(40) as u128, 0b0101),
            _ => (next(40) as u128, next(16)),
        };
        let mut json = serde_json::json!({"user_id": id(user)});
        let (fields, revision) = expected.entry(user).or_insert_with(|| (Default::default(), 0));
        for (i, name) in FIELDS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0) {
            // Sometimes an empty string: it clears the field, it is not absent.
            let value = match (next(5), i) {
                (0, _) => String::new(),
                (_, 2) => format!("u{n}@example.com"),
                (_, 3) => format!("+1 555 {n:07}"),
                _ => format!("{name}-{n}"),
            };
            json[*name] = serde_json::Value::String(value.clone());
            fields[i] = value;
        }
        *revision += 1;
        bodies.push(json.to_string());
    }
    let records: Vec<Record> = bodies.iter().zip(0..).map(|(b, n)| record(n, b)).collect();
    // Batches as the trigger cuts them: up to 500, and past the row limit.
    for batch in records.chunks(450) {
        assert_eq!(apply_records(&db, batch).unwrap(), Applied { applied: batch.len(), skipped: 0 });
    }
    for (user, (fields, revision)) in &expected {
        let found = read_user(&db, id(*user)).unwrap().unwrap();
        assert_eq!([found.first_name, found.last_name, found.email, found.phone_number], *fields, "user {user}");
        let sql = format!("SELECT revision FROM user_info WHERE user_id = '{}'", id(*user));
        assert_eq!(one_integer(&db, &sql), *revision, "user {user}: one revision per record");
    }
    assert_eq!(one_integer(&db, "SELECT count(*) FROM user_info"), expected.len() as i64);
}

pub fn redelivered_records_are_skipped_and_counted<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let values: Vec<String> = (0..4).map(|n| body(1, "email", &format!("k{n}@example.com"))).collect();
    let first: Vec<Record> = (0..2).map(|n| record(n, &values[n as usize])).collect();
    assert_eq!(apply_records(&db, &first).unwrap(), Applied { applied: 2, skipped: 0 });
    // A newer write from HTTP, then the same records again (a crash before
    // the trigger committed their offsets): the HTTP value survives.
    post(&db, body(1, "email", "http@example.com").as_bytes()).unwrap();
    assert_eq!(apply_records(&db, &first[1..]).unwrap(), Applied { applied: 0, skipped: 1 });
    assert_eq!(apply_records(&db, &first).unwrap(), Applied { applied: 0, skipped: 2 });
    assert_eq!(read_user(&db, id(1)).unwrap().unwrap().email, "http@example.com");
    // A batch that overlaps: the old part is skipped, the new part applied.
    let overlap: Vec<Record> = (1..4).map(|n| record(n, &values[n as usize])).collect();
    assert_eq!(apply_records(&db, &overlap).unwrap(), Applied { applied: 2, skipped: 1 });
    assert_eq!(read_user(&db, id(1)).unwrap().unwrap().email, "k3@example.com");
    // Other partitions and topics keep their own offsets.
    let elsewhere = Record { partition: 1, ..record(0, &values[0]) };
    assert_eq!(apply_records(&db, &[elsewhere]).unwrap(), Applied { applied: 1, skipped: 0 });
    assert_eq!(one_integer(&db, "SELECT revision FROM user_info"), 6, "2 + HTTP + 2 + 1: each applied once");
    assert_eq!(one_integer(&db, "SELECT skipped FROM kafka_offsets WHERE partition_id = 0"), 4);
    assert_eq!(one_integer(&db, "SELECT last_offset FROM kafka_offsets WHERE partition_id = 0"), 3);
}

pub fn deleting_the_bookkeeping_reprocesses_on_purpose<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let value = body(1, "first_name", "again");
    apply_records(&db, &[record(0, &value)]).unwrap();
    assert_eq!(apply_records(&db, &[record(0, &value)]).unwrap(), Applied { applied: 0, skipped: 1 });
    // The documented reprocessing step (README, "Kafka contract").
    db.execute("DELETE FROM kafka_offsets WHERE topic = 'users'", &[]).unwrap();
    assert_eq!(apply_records(&db, &[record(0, &value)]).unwrap(), Applied { applied: 1, skipped: 0 });
    assert_eq!(one_integer(&db, "SELECT revision FROM user_info"), 2);
}

/// Statements per request once the schema is current, per dialect. Printed
/// for the benchmark notes (`cargo test -p user-info statements -- --nocapture`)
/// and pinned, so that per-request overhead cannot creep back.
pub fn statements_per_request<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = Counting::new(connect());
    let json = body(1, "first_name", "A");
    read_user(&db, id(1)).unwrap();
    let first_request = db.take();
    let count = |what: &str, run: &dyn Fn(&Counting<D>)| {
        run(&db);
        let statements = db.take();
        // One JSON line per request kind; scripts/bench (phase "statements") collects them.
        let line = serde_json::json!({"dialect": format!("{:?}", db.dialect()), "request": what,
                                      "statements": statements.len(), "sql": statements});
        eprintln!("STATEMENTS {line}");
        statements.len()
    };
    let get = count("GET /user", &|db| drop(read_user(db, id(1)).unwrap()));
    let post = count("POST /user", &|db| drop(post(db, json.as_bytes()).unwrap()));
    let one = count("Kafka record", &|db| { apply_records(db, &[record(7, &json)]).unwrap(); });
    let conditional = count("POST /user with If-Match", &|db| {
        let saved = crate::write_user_if(db, &crate::parse_patch(json.as_bytes()).unwrap(), &if_match(&[2])).unwrap();
        assert!(matches!(saved, Written::Saved(_)), "{saved:?}");
    });
    let delete = count("DELETE /user", &|db| {
        assert_eq!(crate::delete_user(db, id(1), &Preconditions::default()).unwrap(), Deleted::Deleted);
    });
    let key = id(10).to_string();
    let tombstone = count("Kafka tombstone", &|db| {
        apply_records(db, &[Record { key: Some(key.as_bytes()), value: None, ..record(8, "") }]).unwrap();
    });
    // Ten users, as a stream mostly is; a repeated id costs one statement
    // more (`crate::upsert`).
    let bodies: Vec<String> = (10..20).map(|n| body(n, "first_name", "A")).collect();
    let batch = count("Kafka batch of 10 users", &|db| {
        let records: Vec<Record> = bodies.iter().zip(10..).map(|(b, n)| record(n, b)).collect();
        apply_records(db, &records).unwrap();
    });
    eprintln!("{:?} first request on an empty database: {first_request:?}", db.dialect());
    let (post_expected, pragmas) = match db.dialect() {
        Dialect::Sqlite => (3, 2),
        Dialect::Postgres => (1, 0),
    };
    assert_eq!(get, 1, "a GET runs its SELECT alone");
    assert_eq!(post, post_expected, "a POST: SQLite's two write settings and the upsert");
    assert_eq!(one, pragmas + 5, "BEGIN, SELECT offset, claim, upsert, COMMIT");
    assert_eq!(batch, pragmas + 5, "BEGIN, SELECT offset, claim, one 10-row upsert, COMMIT");
    assert_eq!(conditional, post_expected, "a conditional POST that succeeds: its one statement");
    assert_eq!(delete, post_expected, "a DELETE: one statement");
    assert_eq!(tombstone, pragmas + 5, "BEGIN, SELECT offset, claim, delete, COMMIT");
}

/// Real failures of a real database, handed over as Spin's host hands them
/// to a component, get their kind from the production classification
/// (`crate::error_codes`, which the adapters here call as the Spin adapters
/// do): a missing table, a broken constraint, a lock another connection
/// holds, a syntax error, and on PostgreSQL a server that ends the session.
pub fn each_adapter_reports_the_kind_of_a_failure<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    use crate::DbErrorKind;
    let db = connect();
    let missing = db.query("SELECT user_id FROM user_info", &[]).unwrap_err();
    assert_eq!(missing.kind(), DbErrorKind::MissingSchema, "{missing}");
    post(&db, body(1, "first_name", "Ann").as_bytes()).unwrap();
    let insert = "INSERT INTO user_info (user_id, first_name, last_name, email, phone_number, revision) \
                  VALUES (CAST($1 AS TEXT), '', '', '', '', 1)";
    let duplicate = db.execute(insert, &[SqlValue::Text(id(1).to_string())]).unwrap_err();
    assert_eq!(duplicate.kind(), DbErrorKind::Constraint, "{duplicate}");
    let syntax = db.execute("SELEC 1", &[]).unwrap_err();
    assert_eq!(syntax.kind(), DbErrorKind::Other, "{syntax}");

    // Another connection holds the row's (PostgreSQL) or the file's (SQLite) lock.
    let holder = connect();
    let (hold, wait): (&[&str], &str) = match db.dialect() {
        Dialect::Sqlite => {
            db.execute("PRAGMA busy_timeout = 0", &[]).unwrap();
            (&["BEGIN IMMEDIATE"], "UPDATE user_info SET first_name = 'Bo'")
        }
        Dialect::Postgres => {
            (&["BEGIN", "SELECT user_id FROM user_info FOR UPDATE"], "SELECT user_id FROM user_info FOR UPDATE NOWAIT")
        }
    };
    for statement in hold {
        holder.execute(statement, &[]).unwrap();
    }
    let locked = db.query(wait, &[]).unwrap_err();
    assert_eq!(locked.kind(), DbErrorKind::Busy, "{locked}");
    holder.execute("ROLLBACK", &[]).unwrap();

    if db.dialect() == Dialect::Postgres {
        // The server ends the session (as on a shutdown or a failover): an outage.
        let ended = db.query("SELECT pg_terminate_backend(pg_backend_pid())", &[]).unwrap_err();
        assert_eq!(ended.kind(), DbErrorKind::Unavailable, "{ended}");
        let closed = db.query("SELECT 1", &[]).unwrap_err();
        assert_eq!(closed.kind(), DbErrorKind::Unavailable, "{closed}");
    }
}

fn if_match(revisions: &[i64]) -> Preconditions {
    Preconditions { if_match: Some(Tags::Revisions(revisions.to_vec())), if_none_match: None }
}

fn patch(user: u128, field: &str, value: &str) -> crate::UserPatch {
    crate::parse_patch(body(user, field, value).as_bytes()).unwrap()
}

fn tombstone<'a>(offset: i64, key: &'a str) -> Record<'a> {
    Record { key: Some(key.as_bytes()), value: None, ..record(offset, "") }
}

/// The stored row, tombstone or not: (deleted, revision, every field joined).
fn raw_row(db: &impl Database, user: u128) -> (i64, i64, String) {
    let sql = format!(
        "SELECT deleted, revision, first_name || last_name || email || phone_number FROM user_info WHERE user_id = '{}'",
        id(user)
    );
    match db.query(&sql, &[]).unwrap().as_slice() {
        [row] => match row.as_slice() {
            [SqlValue::Integer(d), SqlValue::Integer(r), SqlValue::Text(t)] => (*d, *r, t.clone()),
            other => panic!("{other:?}"),
        },
        other => panic!("expected one row, got {other:?}"),
    }
}

/// DELETE erases every field but keeps the row, whose revision keeps
/// counting: a re-created user continues from it, so no ETag repeats.
pub fn a_delete_leaves_a_tombstone_and_revisions_never_repeat<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let none = Preconditions::default();
    assert_eq!(delete_user(&db, id(1), &none).unwrap(), Deleted::NotFound, "a fresh database migrates and finds nobody");
    assert_eq!(post(&db, body(1, "email", "a@example.com").as_bytes()).unwrap().revision, 1);
    assert_eq!(post(&db, body(1, "first_name", "Ann").as_bytes()).unwrap().revision, 2);
    assert_eq!(delete_user(&db, id(1), &none).unwrap(), Deleted::Deleted);
    assert_eq!(read_user(&db, id(1)).unwrap(), None);
    assert_eq!(raw_row(&db, 1), (1, 3, String::new()), "a tombstone: no personal data, the delete counted");
    assert_eq!(delete_user(&db, id(1), &none).unwrap(), Deleted::NotFound, "deleting again finds nobody");
    assert_eq!(raw_row(&db, 1).1, 3, "and changes nothing");
    let again = post(&db, body(1, "last_name", "New").as_bytes()).unwrap();
    assert_eq!((again.outcome, again.revision), (UpsertOutcome::Created, 4), "re-created: 201, revision after the tombstone's");
    assert_eq!((again.user.first_name.as_str(), again.user.email.as_str(), again.user.last_name.as_str()), ("", "", "New"));
    let updated = post(&db, body(1, "first_name", "Bo").as_bytes()).unwrap();
    assert_eq!((updated.outcome, updated.revision), (UpsertOutcome::Updated, 5));
    assert_eq!(read_stored(&db, id(1)).unwrap().unwrap().revision, 5);
}

/// If-Match / If-None-Match are evaluated by the write statement itself.
pub fn conditional_writes_check_the_revision_in_their_statement<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let any_match = Preconditions { if_match: Some(Tags::Any), if_none_match: None };
    let create_only = Preconditions { if_match: None, if_none_match: Some(Tags::Any) };
    // If-Match: * on nobody: 412 without a current user; nothing created.
    let refused = write_user_if(&db, &patch(1, "first_name", "A"), &any_match).unwrap();
    assert_eq!(refused, Written::PreconditionFailed { current: None });
    assert_eq!(read_user(&db, id(1)).unwrap(), None);
    // If-None-Match: * creates once, then refuses with the current revision.
    let Written::Saved(created) = write_user_if(&db, &patch(1, "first_name", "A"), &create_only).unwrap() else { panic!() };
    assert_eq!((created.outcome, created.revision), (UpsertOutcome::Created, 1));
    let refused = write_user_if(&db, &patch(1, "first_name", "B"), &create_only).unwrap();
    assert_eq!(refused, Written::PreconditionFailed { current: Some(1) });
    // A Kafka update moves the user on: the client's revision 1 is stale.
    apply_records(&db, &[record(0, &body(1, "last_name", "Kafka"))]).unwrap();
    let stale = write_user_if(&db, &patch(1, "first_name", "HTTP"), &if_match(&[1])).unwrap();
    assert_eq!(stale, Written::PreconditionFailed { current: Some(2) });
    assert_eq!(read_user(&db, id(1)).unwrap().unwrap().first_name, "A", "a stale If-Match never overwrites");
    let Written::Saved(saved) = write_user_if(&db, &patch(1, "first_name", "HTTP"), &if_match(&[7, 2])).unwrap() else { panic!() };
    assert_eq!((saved.outcome, saved.revision, saved.user.last_name.as_str()), (UpsertOutcome::Updated, 3, "Kafka"));
    let Written::Saved(any) = write_user_if(&db, &patch(1, "email", "x@example.com"), &any_match).unwrap() else { panic!() };
    assert_eq!(any.revision, 4);
    // DELETE: a stale revision is refused, the current one deletes.
    assert_eq!(delete_user(&db, id(1), &if_match(&[3])).unwrap(), Deleted::PreconditionFailed { current: 4 });
    assert_eq!(delete_user(&db, id(1), &create_only).unwrap(), Deleted::PreconditionFailed { current: 4 });
    assert_eq!(delete_user(&db, id(1), &if_match(&[4])).unwrap(), Deleted::Deleted);
    assert_eq!(delete_user(&db, id(1), &if_match(&[5])).unwrap(), Deleted::NotFound, "a 404 stays a 404");
    // No ABA: after delete (5) and re-create (6), no old revision matches.
    let Written::Saved(reborn) = write_user_if(&db, &patch(1, "first_name", "C"), &create_only).unwrap() else { panic!() };
    assert_eq!((reborn.outcome, reborn.revision), (UpsertOutcome::Created, 6), "If-None-Match: * creates over a tombstone");
    for old in 1..=5 {
        let refused = write_user_if(&db, &patch(1, "first_name", "D"), &if_match(&[old])).unwrap();
        assert_eq!(refused, Written::PreconditionFailed { current: Some(6) }, "revision {old}");
    }
    assert_eq!(read_user(&db, id(1)).unwrap().unwrap().first_name, "C");
    // If-Match on a tombstone: there is no current user.
    assert_eq!(delete_user(&db, id(1), &Preconditions::default()).unwrap(), Deleted::Deleted);
    let refused = write_user_if(&db, &patch(1, "first_name", "E"), &any_match).unwrap();
    assert_eq!(refused, Written::PreconditionFailed { current: None });
    assert_eq!(raw_row(&db, 1), (1, 7, String::new()));
}

/// Tombstones delete in their place among updates, and a redelivered one is
/// skipped like any record: it never deletes a user re-created since.
pub fn tombstone_records_delete_in_order_effectively_once<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let (one, two, nobody) = (id(1).to_string(), id(2).to_string(), id(9).to_string());
    let (a, b, c) = (body(1, "first_name", "A"), body(2, "first_name", "B"), body(1, "last_name", "C"));
    let batch = [record(0, &a), record(1, &b), tombstone(2, &one), tombstone(3, &two), record(4, &c), tombstone(5, &nobody)];
    assert_eq!(apply_records(&db, &batch).unwrap(), Applied { applied: 6, skipped: 0 });
    let user = read_stored(&db, id(1)).unwrap().unwrap();
    assert_eq!((user.user.first_name.as_str(), user.user.last_name.as_str(), user.revision), ("", "C", 3));
    assert_eq!(read_user(&db, id(2)).unwrap(), None);
    assert_eq!(raw_row(&db, 2), (1, 2, String::new()));
    // Redelivered after a crash: the tombstone at offset 2 is skipped, the
    // user re-created at offset 4 stays.
    assert_eq!(apply_records(&db, &[tombstone(2, &one)]).unwrap(), Applied { applied: 0, skipped: 1 });
    assert_eq!(read_stored(&db, id(1)).unwrap().unwrap().revision, 3);
    // One by one, the single-record path does the same.
    assert_eq!(apply_records(&db, &[tombstone(6, &one)]).unwrap(), Applied { applied: 1, skipped: 0 });
    assert_eq!(read_user(&db, id(1)).unwrap(), None);
    assert_eq!(raw_row(&db, 1), (1, 4, String::new()));
}

pub fn a_bad_tombstone_or_an_empty_value_is_invalid<D: Database>(connect: &(dyn Fn() -> D + Sync)) {
    let db = connect();
    let a = body(1, "first_name", "A");
    let keyless = Record { key: None, value: None, ..record(1, "") };
    let cases: [(Record, &str); 4] = [
        (tombstone(1, "not-a-uuid"), "the key must be a valid UUID."),
        (keyless, "the record has no key."),
        (Record { key: Some(&[0xff, 0xfe][..]), value: None, ..record(1, "") }, "the key is not UTF-8 text."),
        (Record { key: Some(&b"x"[..]), value: Some(&b""[..]), ..record(1, "") }, ""),
    ];
    for (bad, problem) in cases {
        match apply_records(&db, &[record(0, &a), bad]) {
            Err(BatchError::Invalid { index: 1, error: InputError::TombstoneKey(p) }) => assert_eq!(p, problem),
            Err(BatchError::Invalid { index: 1, error: InputError::MalformedJson(_) }) => assert_eq!(problem, "", "an empty value is not a tombstone"),
            other => panic!("{problem}: {other:?}"),
        }
    }
    assert_eq!(read_user(&db, id(1)).unwrap(), None, "nothing written");
    let message = crate::parse_tombstone_key(Some(&b"x"[..])).unwrap_err().to_string();
    assert_eq!(message, r#"{"key":["A tombstone (null value) deletes the user its key names: the key must be a valid UUID."]}"#);
}
