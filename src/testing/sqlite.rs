//! The domain's `Database` port over rusqlite, and the shared rules run on
//! real SQLite files, plus what only SQLite has (user_version, WAL).

use crate::db::{Database, DbError, Dialect, SqlValue};
use crate::{migrate, SQLITE_MIGRATIONS};

impl Database for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        // As Spin's SQLite `execute`: the statement runs, its rows (a PRAGMA's) are dropped.
        self.query(sql, params).map(drop)
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
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

/// A SQLite file in a temporary directory; `connect` opens it as Spin would,
/// with no settings at all.
pub struct SqliteFile(tempfile::TempDir);

impl SqliteFile {
    pub fn new() -> Self {
        SqliteFile(tempfile::tempdir().unwrap())
    }

    pub fn connect(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.0.path().join("db.sqlite")).unwrap()
    }
}

macro_rules! shared_rules {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            let file = SqliteFile::new();
            super::rules::$name(&|| file.connect());
        })*
    };
}

shared_rules!(
    create_then_partial_update_then_clear,
    fresh_database_migrates_on_first_read,
    fresh_database_migrates_on_first_write,
    older_schema_migrates_when_kafka_needs_it,
    concurrent_starters_apply_each_migration_once,
    concurrent_writers_never_lose_a_create,
    batches_are_all_or_nothing,
    redelivered_records_are_skipped_and_counted,
    deleting_the_bookkeeping_reprocesses_on_purpose,
    statements_per_request,
);

#[test]
fn migrations_are_recorded_in_user_version_and_switch_to_wal() {
    let file = SqliteFile::new();
    migrate(&file.connect()).unwrap();
    let db = file.connect();
    migrate(&db).unwrap();
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SQLITE_MIGRATIONS.len() as i64);
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_write_sets_busy_timeout_and_synchronous_on_its_connection() {
    let file = SqliteFile::new();
    let db = file.connect();
    let patch = crate::UserPatch { user_id: uuid::Uuid::from_u128(1), ..Default::default() };
    crate::write_user(&db, &patch).unwrap();
    let timeout: i64 = db.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    assert_eq!(timeout, 5000);
    let synchronous: i64 = db.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(synchronous, 1, "NORMAL");
}
