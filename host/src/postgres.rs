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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use parking_lot::Mutex;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, RowStream};

use crate::instance::MAX_HOST_BUFFERED_BYTES;
use crate::outbound::AllowedHosts;

/// Connections kept per connection string (Spin keeps 64); overridable with
/// `TRIGGER_KAFKA_PG_POOL_SIZE`. A component waits for a free one beyond it.
const DEFAULT_POOL_SIZE: usize = 32;

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

/// The environment variable choosing what a zero-row `query` does.
pub const ZERO_ROW_QUERY_VARIABLE: &str = "TRIGGER_KAFKA_ZERO_ROW_QUERY";

/// What this host does when a `query` yields no rows, which Spin 4.0.0-4.0.2
/// never answer (spin#3671; SpinKube's shims from v0.25 embed Spin 4.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRowQueries {
    /// Answer it, as Spin 3.x and 4.0.3+ do.
    Allow,
    /// Answer it, and warn once per statement text (the default: a running
    /// deployment keeps working, its operator learns what will hang).
    Warn,
    /// Fail the call with an error naming spin#3671, and say so on stderr
    /// (tests: the request fails, and the harness fails the test).
    Error,
}

impl ZeroRowQueries {
    /// From `TRIGGER_KAFKA_ZERO_ROW_QUERY` (`allow`, `warn`, `error`); unset or empty: warn.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(std::env::var(ZERO_ROW_QUERY_VARIABLE).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            None | Some("") | Some("warn") => Ok(ZeroRowQueries::Warn),
            Some("allow") => Ok(ZeroRowQueries::Allow),
            Some("error") => Ok(ZeroRowQueries::Error),
            Some(other) => anyhow::bail!("{ZERO_ROW_QUERY_VARIABLE}={other:?}: expected allow, warn or error"),
        }
    }
}

/// The statements already warned about, so a hot one warns once (bounded:
/// past the limit, warnings stop rather than memory growing).
const WARNED_LIMIT: usize = 1024;

struct ZeroRowCheck {
    mode: ZeroRowQueries,
    warned: Mutex<HashSet<String>>,
}

impl ZeroRowCheck {
    /// Called for a `query` that yielded no rows; an error fails the call.
    fn report(&self, statement: &str) -> Result<(), Error> {
        let message = || {
            format!(
                "spin#3671: a spin:postgres `query` returned zero rows; Spin 4.0.0-4.0.2 never answer such a call \
                 (the component hangs). Run statements without rows through `execute`, and write lookups that \
                 may match nothing to return one row. Statement: {}",
                statement.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        };
        match self.mode {
            ZeroRowQueries::Allow => Ok(()),
            ZeroRowQueries::Warn => {
                let mut warned = self.warned.lock();
                if warned.len() < WARNED_LIMIT && warned.insert(statement.to_owned()) {
                    tracing::warn!("{}", message());
                }
                Ok(())
            }
            ZeroRowQueries::Error => {
                let message = message();
                // On stderr whatever RUST_LOG says: the test harness looks for it.
                eprintln!("trigger-kafka: error: {message}");
                Err(Error::QueryFailed(message))
            }
        }
    }
}

/// Most distinct connection strings with a pool at once. A component can
/// open any address its `allowed_outbound_hosts` permits (with a wildcard,
/// many): beyond this, the pool used least recently is dropped (its
/// connections close once their users give them back).
const MAX_POOLS: usize = 64;

/// How long `open` waits for a pooled connection (all in use), for a new one
/// to be established, or for a returned one to be checked. Past it, `open`
/// fails with `connection-failed` instead of hanging the instance.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Every pool of this process, by connection string.
pub struct Pools {
    by_address: Mutex<HashMap<String, (Pool, Instant)>>,
    zero_rows: Arc<ZeroRowCheck>,
}

impl Pools {
    pub fn new(zero_row_queries: ZeroRowQueries) -> Self {
        Pools {
            by_address: Mutex::default(),
            zero_rows: Arc::new(ZeroRowCheck { mode: zero_row_queries, warned: Mutex::default() }),
        }
    }

    /// `open` of the interface, for a component allowed `allowed`.
    pub async fn open(&self, address: &str, allowed: &AllowedHosts) -> Result<Connection, Error> {
        ensure_allowed(address, allowed)?;
        let pool = self.pool(address)?;
        let client = pool.get().await.map_err(|e| Error::ConnectionFailed(format!("{e:?}")))?;
        Ok(Connection { client: Some(client), used: false, broken: false, zero_rows: self.zero_rows.clone() })
    }

    /// Each connection string in use, and each of `configured` (the stores
    /// the components are configured with, in use yet or not), answering
    /// `SELECT 1` (for `/readyz`).
    pub async fn probe(&self, configured: &[String]) -> Result<(), String> {
        let mut pools: Vec<(String, Pool)> =
            self.by_address.lock().iter().map(|(address, (pool, _))| (address.clone(), pool.clone())).collect();
        for address in configured {
            if !pools.iter().any(|(a, _)| a == address) {
                let pool = self.pool(address).map_err(|e| format!("PostgreSQL {}: {e:?}", redact(address)))?;
                pools.push((address.clone(), pool));
            }
        }
        for (address, pool) in pools {
            let host = redact(&address);
            let client = pool.get().await.map_err(|e| format!("PostgreSQL {host}: no connection: {e}"))?;
            if let Err(e) = client.simple_query("SELECT 1").await {
                if e.is_closed() {
                    drop(Object::take(client));
                }
                return Err(format!("PostgreSQL {host} does not answer: {e}"));
            }
        }
        Ok(())
    }

    fn pool(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self.by_address.lock();
        if let Some((pool, used)) = pools.get_mut(address) {
            *used = Instant::now();
            return Ok(pool.clone());
        }
        let pool = new_pool(address).map_err(|e| Error::ConnectionFailed(format!("{e:?}")))?;
        if pools.len() >= MAX_POOLS {
            if let Some(oldest) = pools.iter().min_by_key(|(_, (_, used))| *used).map(|(a, _)| a.clone()) {
                pools.remove(&oldest);
            }
        }
        pools.insert(address.to_owned(), (pool.clone(), Instant::now()));
        Ok(pool)
    }
}

/// A connection string without its password, for messages.
fn redact(address: &str) -> String {
    match address.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
        }
        Err(_) => "(unparsable address)".into(),
    }
}

fn new_pool(address: &str) -> anyhow::Result<Pool> {
    let config: tokio_postgres::Config = address.parse().context("parsing Postgres connection string")?;
    // Liveness is checked without a round trip (a connection the server
    // closed, as on a restart, is seen closed and discarded); what matters
    // between two users of a connection (an open transaction) is handled on
    // give-back.
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = if config.get_ssl_mode() == SslMode::Disable {
        Manager::from_config(config, tokio_postgres::NoTls, manager_config)
    } else {
        let connector = native_tls::TlsConnector::builder().build().context("TLS setup")?;
        Manager::from_config(config, postgres_native_tls::MakeTlsConnector::new(connector), manager_config)
    };
    let size = std::env::var("TRIGGER_KAFKA_PG_POOL_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_POOL_SIZE);
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()?)
}

/// Spin's check: every TCP host of the connection string, with the port at
/// the same index (or the only port), must be allowed for `postgres`.
fn ensure_allowed(address: &str, allowed: &AllowedHosts) -> Result<(), Error> {
    let config: tokio_postgres::Config = address.parse().map_err(|e: tokio_postgres::Error| Error::ConnectionFailed(e.to_string()))?;
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => {
                let port = ports.get(i).or(if ports.len() == 1 { ports.first() } else { None }).copied();
                if !allowed.allows("postgres", name, port) {
                    let authority = match port {
                        Some(p) => format!("{name}:{p}"),
                        None => name.clone(),
                    };
                    report_disallowed(&format!("postgres://{authority}"));
                    return Err(Error::ConnectionFailed(format!("address postgres://{authority} is not permitted")));
                }
            }
            Host::Unix(_) => return Err(Error::ConnectionFailed("Unix sockets are not supported on WebAssembly".into())),
        }
    }
    Ok(())
}

/// What Spin prints when a component is refused a destination.
fn report_disallowed(destination: &str) {
    tracing::error!("Outbound network destination not allowed: {destination}");
    eprintln!("A component tried to make an outbound network connection to disallowed destination '{destination}'.");
    eprintln!("To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section.");
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
                return Err(Error::QueryFailed(crate::instance::result_too_large()));
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

/// What one converted value costs the host, counted against
/// [`MAX_HOST_BUFFERED_BYTES`] (as SQLite counts it).
fn buffered_size(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Str(s) => s.len(),
            Value::Binary(b) => b.len(),
            _ => 0,
        }
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

/// A NULL that fits any parameter type (tokio-postgres otherwise checks the
/// Rust type of a `None` against the column's).
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(tokio_postgres::types::IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

fn to_sql(params: Vec<Value>) -> Result<Vec<Box<dyn ToSql + Send + Sync>>, String> {
    use chrono::{NaiveDate, NaiveTime};
    let date = |(y, m, d): (i32, u8, u8)| {
        NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(|| format!("invalid date {y}-{m}-{d}"))
    };
    let time = |(h, m, s, ns): (u8, u8, u8, u32)| {
        NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns).ok_or_else(|| format!("invalid time {h}:{m}:{s}.{ns}"))
    };
    params
        .into_iter()
        .map(|v| -> Result<Box<dyn ToSql + Send + Sync>, String> {
            Ok(match v {
                Value::Boolean(v) => Box::new(v),
                Value::Int8(v) => Box::new(v),
                Value::Int16(v) => Box::new(v),
                Value::Int32(v) => Box::new(v),
                Value::Int64(v) => Box::new(v),
                Value::Floating32(v) => Box::new(v),
                Value::Floating64(v) => Box::new(v),
                Value::Str(v) => Box::new(v),
                Value::Binary(v) => Box::new(v),
                Value::Date(d) => Box::new(date(d)?),
                Value::Time(t) => Box::new(time(t)?),
                Value::Datetime((y, mo, d, h, mi, s, ns)) => Box::new(date((y, mo, d))?.and_time(time((h, mi, s, ns))?)),
                Value::Timestamp(secs) => Box::new(
                    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0).ok_or_else(|| format!("invalid epoch timestamp {secs}"))?,
                ),
                Value::Null => Box::new(Null),
                Value::Unsupported => return Err("unsupported parameter value".into()),
            })
        })
        .collect()
}

fn data_type(ty: &Type) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::BYTEA => DataType::Binary,
        Type::FLOAT4 => DataType::Floating32,
        Type::FLOAT8 => DataType::Floating64,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DataType::Datetime,
        Type::DATE => DataType::Date,
        Type::TIME => DataType::Time,
        _ => DataType::Other,
    }
}

fn convert_row(row: &Row) -> Result<Vec<Value>, String> {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize, f: impl Fn(T) -> Value) -> Result<Value, String> {
        row.try_get::<_, Option<T>>(i).map(|v| v.map_or(Value::Null, f)).map_err(|e| format!("{e:?}"))
    }
    let time = |t: NaiveTime| (t.hour() as u8, t.minute() as u8, t.second() as u8, t.nanosecond());
    let datetime = move |d: NaiveDateTime| {
        let (h, mi, s, ns) = time(d.time());
        Value::Datetime((d.year(), d.month() as u8, d.day() as u8, h, mi, s, ns))
    };
    (0..row.len())
        .map(|i| match *row.columns()[i].type_() {
            Type::BOOL => get(row, i, Value::Boolean),
            Type::BYTEA => get(row, i, Value::Binary),
            Type::FLOAT4 => get(row, i, Value::Floating32),
            Type::FLOAT8 => get(row, i, Value::Floating64),
            Type::INT2 => get(row, i, Value::Int16),
            Type::INT4 => get(row, i, Value::Int32),
            Type::INT8 => get(row, i, Value::Int64),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, i, Value::Str),
            Type::TIMESTAMP => get(row, i, datetime),
            Type::TIMESTAMPTZ => get(row, i, |d: chrono::DateTime<chrono::Utc>| datetime(d.naive_utc())),
            Type::DATE => get(row, i, |d: NaiveDate| Value::Date((d.year(), d.month() as u8, d.day() as u8))),
            Type::TIME => get(row, i, |t: NaiveTime| Value::Time(time(t))),
            _ => Ok(Value::Unsupported),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_row_query_modes() {
        assert_eq!(ZeroRowQueries::parse(None).unwrap(), ZeroRowQueries::Warn, "a user's run keeps working");
        assert_eq!(ZeroRowQueries::parse(Some("error")).unwrap(), ZeroRowQueries::Error);
        assert_eq!(ZeroRowQueries::parse(Some("allow")).unwrap(), ZeroRowQueries::Allow);
        assert!(ZeroRowQueries::parse(Some("strict")).unwrap_err().to_string().contains("TRIGGER_KAFKA_ZERO_ROW_QUERY"));
        let check = |mode| ZeroRowCheck { mode, warned: Mutex::default() };
        let Err(Error::QueryFailed(message)) = check(ZeroRowQueries::Error).report("SELECT 1\n  WHERE false") else {
            panic!("error mode fails the call")
        };
        assert!(message.contains("spin#3671") && message.ends_with("Statement: SELECT 1 WHERE false"), "{message}");
        let warn = check(ZeroRowQueries::Warn);
        assert_eq!(warn.report("BEGIN"), Ok(()));
        assert_eq!(warn.report("BEGIN"), Ok(()));
        assert_eq!(warn.warned.lock().len(), 1, "one warning per statement");
    }

    #[test]
    fn only_allowed_hosts_are_opened() {
        let allowed = AllowedHosts::parse(&["postgres://db.internal:5433".to_owned()]).unwrap();
        assert_eq!(ensure_allowed("postgres://u@db.internal:5433/app", &allowed), Ok(()));
        assert_eq!(
            ensure_allowed("postgres://u@db.internal/app", &allowed),
            Err(Error::ConnectionFailed("address postgres://db.internal:5432 is not permitted".into())),
        );
        assert_eq!(
            ensure_allowed("host=db.internal,other port=5433 user=u", &allowed),
            Err(Error::ConnectionFailed("address postgres://other:5433 is not permitted".into())),
        );
        assert!(matches!(ensure_allowed("not a url at all = =", &allowed), Err(Error::ConnectionFailed(_))));
    }
}
