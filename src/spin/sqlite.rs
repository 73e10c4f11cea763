//! The domain's `Database` port over Spin's SQLite host interface
//! (`fermyon:spin/sqlite@2.0.0`, which Spin 2, 3 and 4 all provide).

use spin_sdk::sqlite::{Connection, Error, Value};

use crate::db::{Database, DbError, Dialect, SqlValue};

/// An open Spin SQLite connection.
pub struct SpinSqlite(Connection);

impl SpinSqlite {
    /// Opens the database with the given label (`"default"` for Spin's default).
    pub fn open(label: &str) -> Result<Self, DbError> {
        Connection::open(label).map(SpinSqlite).map_err(|e| DbError(describe(&e)))
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
        let result = self.0.execute(sql, &params).map_err(|e| DbError(describe(&e)))?;
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

fn describe(e: &Error) -> String {
    match e {
        Error::NoSuchDatabase => "no such database".into(),
        Error::AccessDenied => "access denied to database".into(),
        Error::InvalidConnection => "invalid connection".into(),
        Error::DatabaseFull => "database full".into(),
        Error::Io(msg) => msg.clone(),
    }
}
