//! The domain's `Database` port over Spin's outbound PostgreSQL interface
//! `spin:postgres/postgres@3.0.0` (spin-sdk's `pg3`), which Spin 3.x and 4.x
//! provide. The connection must be allowed by the component's
//! `allowed_outbound_hosts`.

use spin_sdk::pg3::{Connection, DbValue, ParameterValue, PgError as Error};

use crate::db::{Database, DbError, Dialect, SqlValue};

/// An open PostgreSQL connection.
pub struct SpinPostgres(Connection);

impl SpinPostgres {
    /// Connects to `address` (a `postgres://` URL or a key=value string).
    pub fn open(address: &str) -> Result<Self, DbError> {
        Connection::open(address).map(SpinPostgres).map_err(|e| DbError(describe(&e)))
    }
}

impl Database for SpinPostgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    // `execute` for every statement without rows: Spin 4.0.0-4.0.2 never
    // answer a `query` that yields none (spin#3671, see `crate::db`).
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        self.0.execute(sql, &parameters(params)).map(drop).map_err(|e| DbError(describe(&e)))
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let result = self.0.query(sql, &parameters(params)).map_err(|e| DbError(describe(&e)))?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        DbValue::Int16(i) => SqlValue::Integer(i.into()),
                        DbValue::Int32(i) => SqlValue::Integer(i.into()),
                        DbValue::Int64(i) => SqlValue::Integer(i),
                        DbValue::Str(s) => SqlValue::Text(s),
                        // The domain reads no other types.
                        _ => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

fn parameters(params: &[SqlValue]) -> Vec<ParameterValue> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Null => ParameterValue::DbNull,
            SqlValue::Integer(i) => ParameterValue::Int64(*i),
            SqlValue::Text(s) => ParameterValue::Str(s.clone()),
        })
        .collect()
}

fn describe(e: &Error) -> String {
    match e {
        Error::ConnectionFailed(msg) => format!("connection failed: {msg}"),
        Error::BadParameter(msg) => format!("bad parameter: {msg}"),
        Error::QueryFailed(msg) => format!("query failed: {msg}"),
        Error::ValueConversionFailed(msg) => format!("value conversion failed: {msg}"),
        Error::Other(msg) => msg.clone(),
    }
}
