//! Spin's SQLite host interface over rusqlite (bundled SQLite), with Spin's
//! semantics: a component may open only the labels its `sqlite_databases`
//! lists (else `access-denied`); unknown labels are `no-such-database`.
//!
//! Unlike Spin, which opens a new connection per `open`, connections are
//! pooled per database by default and keep their prepared-statement caches
//! (`connections`: `TRIGGER_KAFKA_SQLITE_CONNECTIONS=per-open` behaves as
//! Spin); a connection goes back to the pool only outside any transaction
//! (an open one is rolled back) and with nothing an instance set on it
//! (`reset`: PRAGMAs put back, or the connection closed), so neither
//! transactions nor connection settings leak between instances. Within this process writes to a
//! database pass one gate at a time, so concurrent writers queue instead of
//! sleeping in SQLite's busy handler; across processes (this trigger beside
//! Spin's HTTP trigger) SQLite's own locking with a busy timeout applies.
//! Statements run on tokio's blocking pool, as in Spin, so a statement
//! waiting for another process's writer never holds an async worker.

pub mod bindings;
mod connections;
mod reset;

pub use connections::{Connections, SQLITE_CONNECTIONS_VARIABLE};

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RawMutex};
use rusqlite::types::{Value as RValue, ValueRef};

/// How long a statement waits for another writer (in or out of process).
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per database.
const MAX_IDLE: usize = 64;

/// A value crossing the interface (same shape in both interface versions).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// The interface's error cases (same in both versions).
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    Io(String),
}

pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Every database this process serves, by label.
pub struct Databases {
    by_label: BTreeMap<String, Arc<Database>>,
    connections: Connections,
}

struct Database {
    /// `None`: in memory, a fresh one per connection, as in Spin.
    path: Option<PathBuf>,
    /// Whether connections are reused (never for in-memory databases, which
    /// are a fresh one per connection).
    pooled: bool,
    idle: Mutex<Vec<Conn>>,
    write_gate: Arc<Mutex<()>>,
}

impl Databases {
    /// `paths` maps each label to its file (`None` = in memory). Parent
    /// directories are created, as Spin does.
    pub fn new(paths: BTreeMap<String, Option<PathBuf>>, connections: Connections) -> anyhow::Result<Self> {
        for path in paths.values().flatten() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let by_label = paths
            .into_iter()
            .map(|(label, path)| {
                let pooled = path.is_some() && connections == Connections::Pooled;
                let db = Database { path, pooled, idle: Mutex::new(Vec::new()), write_gate: Default::default() };
                (label, Arc::new(db))
            })
            .collect();
        Ok(Databases { by_label, connections })
    }

    pub fn connections(&self) -> Connections {
        self.connections
    }

    pub fn has(&self, label: &str) -> bool {
        self.by_label.contains_key(label)
    }

    pub fn path_of(&self, label: &str) -> Option<&PathBuf> {
        self.by_label.get(label)?.path.as_ref()
    }

    /// Runs `statements` against a database at startup (`--sqlite`).
    pub fn run_startup_statement(&self, label: &str, sql: &str) -> anyhow::Result<()> {
        let db = self.by_label.get(label).ok_or_else(|| anyhow::anyhow!("no database {label:?}"))?;
        let conn = db.connect().map_err(|e| anyhow::anyhow!("{e:?}"))?.conn;
        // This host's own write: wait for another process's writer.
        conn.busy_timeout(LOCK_TIMEOUT)?;
        conn.execute_batch(sql)?;
        Ok(())
    }

    /// `open` of the interface, for a component allowed `allowed` labels.
    pub fn open(&self, label: &str, allowed: &HashSet<String>) -> Result<Connection, Error> {
        if !allowed.contains(label) {
            return Err(Error::AccessDenied);
        }
        let db = self.by_label.get(label).ok_or(Error::NoSuchDatabase)?;
        let pooled = if db.pooled { db.idle.lock().pop() } else { None };
        let conn = match pooled {
            Some(conn) => conn,
            None => db.connect()?,
        };
        Ok(Connection { session: Some(Session { db: db.clone(), conn: Some(conn), gate: None }) })
    }
}

/// A rusqlite connection and, when pooled, what watches it for the next user.
struct Conn {
    conn: rusqlite::Connection,
    state: Option<reset::ConnectionState>,
}

impl Database {
    fn connect(&self) -> Result<Conn, Error> {
        let io = |e: rusqlite::Error| Error::Io(e.to_string());
        let conn = match &self.path {
            Some(path) => rusqlite::Connection::open(path).map_err(io)?,
            None => rusqlite::Connection::open_in_memory().map_err(io)?,
        };
        // No busy_timeout or synchronous here: as under Spin, which sets
        // neither, the component sets them when it writes (the domain crate's
        // `prepare_write`), so both runtimes run the same statements.
        conn.set_prepared_statement_cache_capacity(64);
        // As Spin: components may not ATTACH other files.
        fn attaches_a_file(action: &rusqlite::hooks::AuthAction<'_>) -> bool {
            matches!(action, rusqlite::hooks::AuthAction::Attach { filename } if !matches!(*filename, "" | ":memory:"))
        }
        let state = if self.pooled {
            Some(reset::ConnectionState::watch(&conn, attaches_a_file).map_err(io)?)
        } else {
            conn.authorizer(Some(|ctx: rusqlite::hooks::AuthContext<'_>| {
                if attaches_a_file(&ctx.action) {
                    rusqlite::hooks::Authorization::Deny
                } else {
                    rusqlite::hooks::Authorization::Allow
                }
            }));
            None
        };
        Ok(Conn { conn, state })
    }
}

/// An open connection, the interface's `connection` resource. Its session
/// is `None` only while a statement runs on a blocking thread (or after that
/// thread panicked).
pub struct Connection {
    session: Option<Session>,
}

/// The rusqlite connection and the write gate it holds, moved as one onto
/// the blocking thread that runs a statement.
struct Session {
    db: Arc<Database>,
    conn: Option<Conn>,
    /// Held while this connection writes, or has a transaction open.
    gate: Option<parking_lot::ArcMutexGuard<RawMutex, ()>>,
}

impl Connection {
    /// Runs a statement on tokio's blocking pool, as Spin does: a statement
    /// may sleep in SQLite's busy handler (the component sets `busy_timeout`)
    /// while another process, such as `spin up`'s HTTP trigger, holds the
    /// write lock, and that sleep must not take an async worker that
    /// `/readyz` and the HTTP trigger share. If the caller goes away
    /// mid-statement (a guest past its deadline), the statement finishes on
    /// its thread and the session's drop rolls back and pools the connection.
    pub async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<QueryResult, Error> {
        let mut session = self.session.take().ok_or(Error::InvalidConnection)?;
        let ran = tokio::task::spawn_blocking(move || {
            let result = session.execute(&sql, params);
            (session, result)
        })
        .await;
        match ran {
            Ok((session, result)) => {
                self.session = Some(session);
                result
            }
            Err(e) => Err(Error::Io(format!("statement failed: {e}"))),
        }
    }

    /// Runs a statement on the calling thread (for callers already on a
    /// blocking thread, such as the readiness probe).
    pub fn execute_blocking(&mut self, sql: &str, params: Vec<Value>) -> Result<QueryResult, Error> {
        self.session.as_mut().ok_or(Error::InvalidConnection)?.execute(sql, params)
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.session.as_ref().and_then(|s| s.conn.as_ref()).map_or(0, |c| c.conn.last_insert_rowid())
    }

    pub fn changes(&self) -> u64 {
        self.session.as_ref().and_then(|s| s.conn.as_ref()).map_or(0, |c| c.conn.changes())
    }
}

impl Session {
    fn execute(&mut self, sql: &str, params: Vec<Value>) -> Result<QueryResult, Error> {
        let io = |e: rusqlite::Error| Error::Io(e.to_string());
        let conn = &self.conn.as_ref().ok_or(Error::InvalidConnection)?.conn;
        let mut stmt = conn.prepare_cached(sql).map_err(io)?;
        if self.gate.is_none() && (!stmt.readonly() || is_transaction_start(sql)) {
            // On a blocking thread already: waiting here takes no async worker.
            let gate = self
                .db
                .write_gate
                .try_lock_arc_for(LOCK_TIMEOUT)
                .ok_or_else(|| Error::Io("database is locked (another writer in this process)".into()))?;
            self.gate = Some(gate);
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let params = params.into_iter().map(|v| match v {
            Value::Integer(i) => RValue::Integer(i),
            Value::Real(f) => RValue::Real(f),
            Value::Text(s) => RValue::Text(s),
            Value::Blob(b) => RValue::Blob(b),
            Value::Null => RValue::Null,
        });
        let result = (|| {
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(io)?;
            let mut out = Vec::new();
            let mut buffered = 0usize;
            while let Some(row) = rows.next().map_err(io)? {
                let mut values = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    let value = match row.get_ref(i).map_err(io)? {
                        ValueRef::Integer(v) => Value::Integer(v),
                        ValueRef::Real(v) => Value::Real(v),
                        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        ValueRef::Null => Value::Null,
                    };
                    buffered += std::mem::size_of::<Value>()
                        + match &value {
                            Value::Text(t) => t.len(),
                            Value::Blob(b) => b.len(),
                            _ => 0,
                        };
                    if buffered > crate::runtime::instance::MAX_HOST_BUFFERED_BYTES {
                        // An `io` error (the interface has no better one).
                        return Err(Error::Io(crate::runtime::instance::result_too_large()));
                    }
                    values.push(value);
                }
                out.push(values);
            }
            Ok(out)
        })();
        drop(stmt);
        if conn.is_autocommit() {
            self.gate = None;
        }
        Ok(QueryResult { columns, rows: result? })
    }
}

fn is_transaction_start(sql: &str) -> bool {
    let head = sql.trim_start().get(..5).unwrap_or("");
    head.eq_ignore_ascii_case("begin") || head.eq_ignore_ascii_case("savep")
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // An instance that ends mid-transaction must not hand it to the next.
        if !conn.conn.is_autocommit() && conn.conn.execute_batch("ROLLBACK").is_err() {
            return; // a connection in an unknown state is closed, not pooled
        }
        self.gate = None;
        // Nor what it set on the connection (see `reset`).
        let clean = conn.state.as_ref().is_some_and(|state| state.reset(&conn.conn));
        if self.db.pooled && clean {
            let mut idle = self.db.idle.lock();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbs(dir: &std::path::Path) -> Databases {
        dbs_with(dir, Connections::Pooled)
    }

    fn dbs_with(dir: &std::path::Path, connections: Connections) -> Databases {
        Databases::new(
            BTreeMap::from([
                ("default".to_owned(), Some(dir.join("sqlite_db.db"))),
                ("other".to_owned(), None),
            ]),
            connections,
        )
        .unwrap()
    }

    /// What one instance sets on its connection never reaches the next
    /// `open`, in either mode, whichever component (the set of labels it is
    /// granted) opens the label next: PRAGMAs are put back or the
    /// connection is closed, TEMP objects close it. Pooled, a connection
    /// whose instance only set restorable PRAGMAs is still reused.
    #[tokio::test(flavor = "multi_thread")]
    async fn nothing_an_instance_sets_on_its_connection_reaches_the_next() {
        let one = HashSet::from(["default".to_owned()]);
        let other = HashSet::from(["default".to_owned(), "other".to_owned()]);
        let query = |c: &mut Connection, sql: &str| c.execute_blocking(sql, vec![]).unwrap().rows;
        for connections in [Connections::Pooled, Connections::PerOpen] {
            let dir = tempfile::tempdir().unwrap();
            let dbs = dbs_with(dir.path(), connections);
            let mut c = dbs.open("default", &one).unwrap();
            let opening_timeout = query(&mut c, "PRAGMA busy_timeout");
            let opening_synchronous = query(&mut c, "PRAGMA synchronous");
            query(&mut c, "CREATE TABLE t (x INTEGER)");
            query(&mut c, "INSERT INTO t VALUES (1)");
            query(&mut c, "PRAGMA busy_timeout = 1234");
            query(&mut c, "PRAGMA synchronous = OFF");
            query(&mut c, "PRAGMA cache_size = 12345");
            drop(c);
            if connections == Connections::Pooled {
                assert_eq!(dbs.by_label["default"].idle.lock().len(), 1, "restorable PRAGMAs keep the connection pooled");
            }
            let mut c = dbs.open("default", &other).unwrap();
            assert_eq!(query(&mut c, "PRAGMA cache_size"), vec![vec![Value::Integer(-2000)]], "{connections:?}: SQLite's default");
            assert_eq!(query(&mut c, "PRAGMA busy_timeout"), opening_timeout, "{connections:?}");
            assert_eq!(query(&mut c, "PRAGMA synchronous"), opening_synchronous, "{connections:?}");
            assert_eq!(c.last_insert_rowid(), 0, "{connections:?}");
            // Things that are not put back: the connection is not reused.
            query(&mut c, "CREATE TEMP TABLE scratch (x)");
            query(&mut c, "PRAGMA recursive_triggers = ON");
            query(&mut c, "PRAGMA cache_size = 777");
            drop(c);
            // The other spelling of a TEMP table.
            let mut c = dbs.open("default", &one).unwrap();
            query(&mut c, "CREATE TABLE temp.other_scratch (x)");
            drop(c);
            let mut c = dbs.open("default", &one).unwrap();
            assert_eq!(query(&mut c, "SELECT count(*) FROM temp.sqlite_schema"), vec![vec![Value::Integer(0)]], "{connections:?}");
            assert_eq!(query(&mut c, "PRAGMA recursive_triggers"), vec![vec![Value::Integer(0)]], "{connections:?}");
            assert_eq!(query(&mut c, "PRAGMA cache_size"), vec![vec![Value::Integer(-2000)]], "{connections:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn access_rules_follow_spin() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = dbs(dir.path());
        let allowed = HashSet::from(["default".to_owned(), "missing".to_owned()]);
        assert!(dbs.open("default", &allowed).is_ok());
        assert_eq!(dbs.open("other", &allowed).err(), Some(Error::AccessDenied));
        assert_eq!(dbs.open("missing", &allowed).err(), Some(Error::NoSuchDatabase));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn open_transactions_do_not_leak_into_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = dbs(dir.path());
        let allowed = HashSet::from(["default".to_owned()]);
        let mut c = dbs.open("default", &allowed).unwrap();
        c.execute_blocking("CREATE TABLE t (x INTEGER)", vec![]).unwrap();
        c.execute_blocking("BEGIN", vec![]).unwrap();
        c.execute_blocking("INSERT INTO t VALUES (?)", vec![Value::Integer(1)]).unwrap();
        drop(c); // abandoned mid-transaction
        let mut c = dbs.open("default", &allowed).unwrap();
        let r = c.execute_blocking("SELECT count(*) AS n FROM t", vec![]).unwrap();
        assert_eq!(r.columns, ["n"]);
        assert_eq!(r.rows, vec![vec![Value::Integer(0)]]);
        c.execute_blocking("INSERT INTO t VALUES (?)", vec![Value::Text("two".into())]).unwrap();
        assert_eq!(c.changes(), 1);
        assert_eq!(c.last_insert_rowid(), 1);
    }
}
