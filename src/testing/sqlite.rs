//! The domain's `Database` port over rusqlite, and the shared rules run on
//! real SQLite files, plus what only SQLite has (user_version, WAL).

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
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
        // As Spin's host and this project's hand it to a component (`Io` with
        // rusqlite's message), classified by the function the Spin adapter
        // runs on it: every rule run here runs the production classification
        // on SQLite's real errors.
        let err = |e: rusqlite::Error| {
            let text = e.to_string();
            DbError::new(crate::error_codes::sqlite_message_kind(&text), text)
        };
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

super::rules::for_each_shared_rule!(shared_rules);

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

#[test]
fn a_get_that_meets_a_lock_waits_for_it_instead_of_failing() {
    let file = SqliteFile::new();
    let id = uuid::Uuid::from_u128(7);
    let patch = crate::UserPatch { user_id: id, first_name: Some("Ann".into()), ..Default::default() };
    crate::write_user(&file.connect(), &patch).unwrap();
    // A connection in exclusive locking mode keeps the lock of its write
    // until it closes: in WAL mode, the one thing a reader must wait for
    // (as it waits for a WAL recovery or a restarting checkpoint).
    let holder = file.connect();
    holder.execute_batch("PRAGMA locking_mode = EXCLUSIVE; UPDATE user_info SET revision = revision").unwrap();
    // Connections without a busy handler (rusqlite's own default would wait
    // 5 s, hiding what the domain does): a read fails at once, the lock is real.
    let unwaiting = || {
        let db = file.connect();
        db.busy_timeout(std::time::Duration::ZERO).unwrap();
        db
    };
    let err = crate::store::find_user(&unwaiting(), id).unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::Busy, "{err}");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(holder);
    });
    // The GET path retries as a writer would wait, and gets the user.
    let user = crate::read_user(&unwaiting(), id).unwrap().expect("the user");
    assert_eq!(user.first_name, "Ann");
    release.join().unwrap();
}
