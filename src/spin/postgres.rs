//! The domain's `Database` port over Spin's outbound PostgreSQL interface
//! `spin:postgres/postgres@3.0.0` (spin-sdk's `pg3`), which Spin 3.x and 4.x
//! provide. The connection must be allowed by the component's
//! `allowed_outbound_hosts`.

use spin_sdk::pg3::{Connection, DbValue, ParameterValue, PgError as Error};

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::error_codes::query_failed_kind;

/// An open PostgreSQL connection.
pub struct SpinPostgres(Connection);

impl SpinPostgres {
    /// Connects to `address` (a `postgres://` URL or a key=value string).
    pub fn open(address: &str) -> Result<Self, DbError> {
        Connection::open(address).map(SpinPostgres).map_err(|e| DbError::from(&e))
    }
}

impl Database for SpinPostgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    // `execute` for every statement without rows: Spin 4.0.0-4.0.2 never
    // answer a `query` that yields none (spin#3671, see `crate::db`).
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        self.0.execute(sql, &parameters(params)).map(drop).map_err(|e| DbError::from(&e))
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let result = self.0.query(sql, &parameters(params)).map_err(|e| DbError::from(&e))?;
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

/// `pg3` has no code field: a server error's SQLSTATE is inside
/// `QueryFailed`'s text, which `crate::error_codes` reads. A query failure
/// without one is the connection failing (closed, reset), an outage. An
/// impl, not a private function, so that the components' tests drive this
/// very mapping with the texts Spin and the host send.
impl From<&Error> for DbError {
    fn from(e: &Error) -> DbError {
        let (kind, message) = match e {
            // Spin refuses an address not in `allowed_outbound_hosts` with this
            // text and no other sign: the deployment is wrong, not the server down.
            Error::ConnectionFailed(msg) if msg.contains("is not permitted") => {
                (DbErrorKind::Other, format!("connection failed: {msg}"))
            }
            Error::ConnectionFailed(msg) => (DbErrorKind::Unavailable, format!("connection failed: {msg}")),
            Error::QueryFailed(msg) => (query_failed_kind(msg), format!("query failed: {msg}")),
            Error::BadParameter(msg) => (DbErrorKind::Other, format!("bad parameter: {msg}")),
            Error::ValueConversionFailed(msg) => (DbErrorKind::Other, format!("value conversion failed: {msg}")),
            Error::Other(msg) => (DbErrorKind::Other, msg.clone()),
        };
        DbError::new(kind, message)
    }
}
