//! Spin's outbound PostgreSQL interface (`spin:postgres/postgres@3.0.0`) over
//! tokio-postgres, with Spin's semantics where a component can see them:
//! `open` takes a connection string, is refused unless the component's
//! `allowed_outbound_hosts` lists every host in it (Spin's error text), and
//! uses TLS unless the string says `sslmode=disable` (certificates verified
//! against the system roots, `SSL_CERT_FILE` honoured); a query returning no
//! rows reports no columns, as Spin infers columns from the first row.
//!
//! Kinder than Spin 4.0.0-4.0.2, which never answer a `query` whose statement
//! yields no rows (spin#3671), this host answers it; so that a component
//! relying on that is caught before it meets those Spin versions, such a call
//! is flagged as `TRIGGER_KAFKA_ZERO_ROW_QUERY` says (see [`ZeroRowQueries`]):
//! the test harness sets `error`, a user's run warns.
//!
//! As in Spin, connections come from a pool per connection string, shared by
//! every instance of every component in this process. Beyond Spin, each
//! pooled connection keeps its prepared statements, so a repeated statement
//! costs one round trip; and a connection given back mid-transaction is
//! rolled back (or discarded) before another instance can get it, the
//! transaction status taken from the server, not guessed from SQL text.
//!
//! A `query`'s rows are streamed from the server and converted one at a time,
//! their bytes counted: past [`MAX_HOST_BUFFERED_BYTES`] (shared with SQLite)
//! the call fails with `query-failed` naming the limit, so a guest cannot
//! make the host buffer an unbounded result outside its memory limit.

pub mod bindings;
mod pools;
mod values;
mod zero_rows;

use std::sync::Arc;

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::RowStream;

use crate::runtime::instance::MAX_HOST_BUFFERED_BYTES;

pub use pools::{pool_size_from_env, Pools};

/// `value` as a PostgreSQL connection URL (libpq's `postgres://` or
/// `postgresql://` scheme, surrounding blanks ignored, as the components
/// read their `database_url`), or None when it is not one.
pub fn connection_url(value: &str) -> Option<&str> {
    let value = value.trim();
    (value.starts_with("postgres://") || value.starts_with("postgresql://")).then_some(value)
}
use values::{buffered_size, convert_row, data_type, to_sql};
use zero_rows::ZeroRowCheck;
pub use zero_rows::ZeroRowQueries;

/// The interface's values, errors and results, independent of the generated
/// bindings (which map them one to one).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date((i32, u8, u8)),
    Time((u8, u8, u8, u32)),
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    Timestamp(i64),
    Null,
    Unsupported,
}

/// Column types as Spin reports them (never `int8` or `timestamp`: Spin
/// maps PostgreSQL's `"char"` to other and timestamps to `datetime`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataType {
    Boolean,
    Int16,
    Int32,
    Int64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Date,
    Time,
    Datetime,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    ConnectionFailed(String),
    BadParameter(String),
    QueryFailed(String),
    ValueConversionFailed(String),
}

pub struct RowSet {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<Vec<Value>>,
}

/// An open connection, the interface's `connection` resource.
pub struct Connection {
    client: Option<Object>,
    /// Whether the guest ran any statement on it: only then can it have left
    /// a transaction open, and the server is asked on give-back.
    used: bool,
    zero_rows: Arc<ZeroRowCheck>,
    /// The server closed it (a restart, a crash, a terminated backend): never
    /// given back to the pool.
    broken: bool,
}

impl Connection {
    pub async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, Error> {
        use futures::TryStreamExt as _;
        let params = to_sql(params).map_err(Error::BadParameter)?;
        let Outcome::Rows(stream) = self.run(statement, &params, true).await? else { unreachable!() };
        let mut stream = std::pin::pin!(stream);
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut buffered = 0usize;
        loop {
            let row = match stream.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    self.broken |= e.is_closed();
                    return Err(query_failed(e));
                }
            };
            if rows.is_empty() {
                // Spin reports the columns of the first row: none when no rows.
                columns = row.columns().iter().map(|c| (c.name().to_owned(), data_type(c.type_()))).collect();
            }
            let values = convert_row(&row).map_err(Error::QueryFailed)?;
            buffered += values.iter().map(buffered_size).sum::<usize>();
            if buffered > MAX_HOST_BUFFERED_BYTES {
                // Dropping the stream leaves the connection usable: its
                // remaining rows are read and discarded by the driver.
                return Err(Error::QueryFailed(crate::runtime::instance::result_too_large()));
            }
            rows.push(values);
        }
        if rows.is_empty() {
            self.zero_rows.report(statement)?;
        }
        Ok(RowSet { columns, rows })
    }

    pub async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, Error> {
        let params = to_sql(params).map_err(Error::ValueConversionFailed)?;
        let Outcome::Count(n) = self.run(statement, &params, false).await? else { unreachable!() };
        Ok(n)
    }

    /// Prepares (once per pooled connection) and runs a statement; a cached
    /// plan invalidated by a schema change is re-prepared once, outside
    /// transactions (inside one, the error has already aborted it).
    async fn run(&mut self, statement: &str, params: &[Box<dyn ToSql + Send + Sync>], rows: bool) -> Result<Outcome, Error> {
        let client = self.client.as_ref().ok_or_else(|| Error::ConnectionFailed("no connection found".into()))?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        self.used = true;
        let mut retried = false;
        let result = loop {
            let stmt = match client.prepare_cached(statement).await {
                Ok(stmt) => stmt,
                Err(e) => {
                    self.broken |= e.is_closed();
                    return Err(query_failed(e));
                }
            };
            let result = if rows {
                // A schema change's error comes with the Bind, before any
                // row, so the retry below still applies to a stream.
                client.query_raw(&stmt, refs.iter().copied()).await.map(Outcome::Rows)
            } else {
                client.execute(&stmt, &refs).await.map(Outcome::Count)
            };
            match result {
                // Retried only outside a transaction block (inside one, the
                // error has aborted it, and the guest must see that error).
                Err(e) if !retried && is_stale_plan(&e) && transaction_status(client).await == TxStatus::Idle => {
                    client.statement_cache.remove(statement, &[]);
                    retried = true;
                }
                other => break other,
            }
        };
        if let Err(e) = &result {
            self.broken |= e.is_closed();
        }
        result.map_err(query_failed)
    }
}

enum Outcome {
    Rows(RowStream),
    Count(u64),
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if self.broken {
            drop(Object::take(client));
            return;
        }
        if !self.used {
            return; // back to the pool as it is
        }
        // Before the pool can hand it out again, ask the server whether a
        // transaction is open (whatever SQL opened it: `/* x */ BEGIN`,
        // `START TRANSACTION`, a function), and roll it back. A connection in
        // an unknown state is closed instead of reused.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let clean = match transaction_status(&client).await {
                        TxStatus::Idle => true,
                        TxStatus::InTransaction => client.batch_execute("ROLLBACK").await.is_ok(),
                        TxStatus::Unknown => false,
                    };
                    if !clean {
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

#[derive(Debug, PartialEq)]
enum TxStatus {
    Idle,
    InTransaction,
    Unknown,
}

/// The session's transaction status, from the server. tokio-postgres reads
/// the status byte of ReadyForQuery but does not expose it, so one statement
/// asks: `transaction_timestamp()` is when the current transaction began,
/// `statement_timestamp()` when this statement arrived. They are equal
/// exactly when this statement is the first of its transaction, that is when
/// no transaction block is open (pg_stat_activity's `xact_start` =
/// `query_start` means the same); inside a block the statement arrives at
/// least one round trip after the block began. A block aborted by an error
/// answers 25P02, also a transaction to roll back. Unlike an unconditional
/// `ROLLBACK`, this costs the server no "no transaction in progress" warning
/// in its log on every give-back.
async fn transaction_status(client: &tokio_postgres::Client) -> TxStatus {
    use tokio_postgres::SimpleQueryMessage;
    match client.simple_query("SELECT transaction_timestamp() = statement_timestamp()").await {
        Ok(messages) => {
            let first = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            });
            match first.flatten().as_deref() {
                Some("t") => TxStatus::Idle,
                Some("f") => TxStatus::InTransaction,
                _ => TxStatus::Unknown,
            }
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION) => TxStatus::InTransaction,
        Err(_) => TxStatus::Unknown,
    }
}

/// PostgreSQL's "cached plan must not change result type" after DDL.
fn is_stale_plan(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED && db.message().contains("cached plan"))
}

/// Spin's error text: the driver's error, debug-formatted.
fn query_failed(e: tokio_postgres::Error) -> Error {
    Error::QueryFailed(format!("{e:?}"))
}
