//! Test-only: the domain's `Database` port over rusqlite, so the upsert and the
//! migrations are exercised against real SQLite files.

use crate::db::{Database, DbError, SqlValue};
use crate::{find_user, prepare, upsert_user, UpsertOutcome, UserPatch, MIGRATIONS};

impl Database for rusqlite::Connection {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        use rusqlite::types::{Value, ValueRef};
        let err = |e: rusqlite::Error| DbError(e.to_string());
        let mut stmt = self.prepare_cached(sql).map_err(err)?;
        let columns = stmt.column_count();
        let params = params.iter().map(|p| match p {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(i) => Value::Integer(*i),
            SqlValue::Text(s) => Value::Text(s.clone()),
        });
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let values = (0..columns)
                .map(|i| match row.get_ref(i) {
                    Ok(ValueRef::Integer(v)) => SqlValue::Integer(v),
                    Ok(ValueRef::Text(t)) => SqlValue::Text(String::from_utf8_lossy(t).into()),
                    _ => SqlValue::Null,
                })
                .collect();
            out.push(values);
        }
        Ok(out)
    }
}

fn open(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    prepare(&conn).unwrap();
    conn
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

#[test]
fn create_then_partial_update_then_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db.sqlite"));
    let first = UserPatch {
        user_id: id(1),
        first_name: Some("John".into()),
        last_name: Some("Doe".into()),
        email: Some("john@example.com".into()),
        phone_number: None,
    };
    let saved = upsert_user(&db, &first).unwrap();
    assert_eq!(saved.outcome, UpsertOutcome::Created);
    assert_eq!(saved.user.phone_number, "");

    let partial = UserPatch { user_id: id(1), phone_number: Some("555 0100".into()), ..Default::default() };
    let saved = upsert_user(&db, &partial).unwrap();
    assert_eq!(saved.outcome, UpsertOutcome::Updated);
    assert_eq!(saved.user.first_name, "John", "absent field unchanged");
    assert_eq!(saved.user.phone_number, "555 0100");

    let clear = UserPatch { user_id: id(1), email: Some(String::new()), ..Default::default() };
    upsert_user(&db, &clear).unwrap();
    let found = find_user(&db, id(1)).unwrap().unwrap();
    assert_eq!(found.email, "");
    assert_eq!(found.last_name, "Doe");
    assert_eq!(find_user(&db, id(2)).unwrap(), None);
}

#[test]
fn migrations_are_idempotent_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    drop(open(&path));
    let db = open(&path);
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn concurrent_writers_on_one_file_never_lose_a_create() {
    // Two connections (as two processes would have) race to create and update
    // the same ids; every id must end up created exactly once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    drop(open(&path));
    let created: Vec<usize> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let path = path.clone();
                s.spawn(move || {
                    let db = open(&path);
                    (0..200u128)
                        .filter(|n| {
                            let patch = UserPatch {
                                user_id: id(*n),
                                first_name: Some(format!("w{w}")),
                                ..Default::default()
                            };
                            upsert_user(&db, &patch).unwrap().outcome == UpsertOutcome::Created
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.iter().sum::<usize>(), 200);
}

#[test]
fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db.sqlite"));
    let a = format!(r#"{{"user_id": "{}", "first_name": "A"}}"#, id(1));
    let b = format!(r#"{{"user_id": "{}", "first_name": "B"}}"#, id(2));
    let again = format!(r#"{{"user_id": "{}", "last_name": "Z"}}"#, id(1));
    let bad = r#"{"user_id": "nope"}"#.to_owned();
    let (index, _) = crate::apply_updates(&db, &[a.as_bytes(), bad.as_bytes()]).unwrap_err();
    assert_eq!(index, 1);
    assert_eq!(find_user(&db, id(1)).unwrap(), None, "nothing written when one input is invalid");
    let saved = crate::apply_updates(&db, &[a.as_bytes(), b.as_bytes(), again.as_bytes()]).unwrap();
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[2].outcome, UpsertOutcome::Updated, "later records see earlier ones");
    let one = find_user(&db, id(1)).unwrap().unwrap();
    assert_eq!((one.first_name.as_str(), one.last_name.as_str()), ("A", "Z"));
}
