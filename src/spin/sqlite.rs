//! The domain's `Database` port over Spin's SQLite host interface
//! (`fermyon:spin/sqlite@2.0.0`, which Spin 2, 3 and 4 all provide).

use spin_sdk::sqlite::{Connection, Error, Value};

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::error_codes::sqlite_message_kind;

/// An open Spin SQLite connection.
pub struct SpinSqlite(Connection);

impl SpinSqlite {
    /// Opens the database with the given label (`"default"` for Spin's default).
    pub fn open(label: &str) -> Result<Self, DbError> {
        Connection::open(label).map(SpinSqlite).map_err(|e| DbError::from(&e))
    }
}

impl Database for SpinSqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    // Spin's SQLite interface has one call for both kinds, which returns
    // whatever rows there are (none is fine).
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        self.run(sql, params).map(drop)
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        self.run(sql, params)
    }
}

impl SpinSqlite {
    fn run(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let params: Vec<Value> = params
            .iter()
            .map(|p| match p {
                SqlValue::Null => Value::Null,
                SqlValue::Integer(i) => Value::Integer(*i),
                SqlValue::Text(s) => Value::Text(s.clone()),
            })
            .collect();
        let result = self.0.execute(sql, &params).map_err(|e| DbError::from(&e))?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|v| match v {
                        Value::Integer(i) => SqlValue::Integer(i),
                        Value::Text(s) => SqlValue::Text(s),
                        // The domain stores no reals or blobs.
                        Value::Real(_) | Value::Blob(_) | Value::Null => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

/// The kind comes from the interface's variant; `Io` carries SQLite's
/// message only, which `crate::error_codes` reads. An impl, not a private
/// function, so that the components' tests drive this very mapping with the
/// texts Spin and the host send.
impl From<&Error> for DbError {
    fn from(e: &Error) -> DbError {
        let (kind, message) = match e {
            // A label not granted or not configured: the deployment is wrong.
            Error::NoSuchDatabase => (DbErrorKind::Other, "no such database".into()),
            Error::AccessDenied => (DbErrorKind::Other, "access denied to database".into()),
            Error::InvalidConnection => (DbErrorKind::Unavailable, "invalid connection".into()),
            Error::DatabaseFull => (DbErrorKind::Unavailable, "database full".into()),
            Error::Io(msg) => (sqlite_message_kind(msg), msg.clone()),
        };
        DbError::new(kind, message)
    }
}
