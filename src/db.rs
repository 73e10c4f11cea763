//! The narrow SQL port the domain needs: run one statement with positional
//! parameters, either for its effect or for its rows, and say which SQL
//! dialect runs it. Implemented by Spin's SQLite and PostgreSQL interfaces in
//! the components and by rusqlite / the `postgres` crate in native tests;
//! nothing else leaks in.
//!
//! Why the port tells the two kinds apart: Spin 4.0.0 to 4.0.2 never answer a
//! `spin:postgres` `query` whose statement yields no rows (spin#3671: the host
//! waits for a column list that only comes with the first row), and SpinKube's
//! shims from v0.25 embed Spin 4.0.1. So on PostgreSQL a statement without
//! rows must go through the interface's `execute`, and every `query` the
//! domain issues is written to yield at least one row, whatever the data
//! (a lookup that may match nothing joins onto a one-row `VALUES`).

/// A SQL value, the subset the domain reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

/// The SQL dialect behind a [`Database`]. Everything that differs between the
/// two (placeholders, transaction start, per-connection pragmas, migrations)
/// is decided in `crate::dialect` and `crate::migrations` from this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// What kind of failure a [`DbError`] is, decided by the adapter that met it
/// from the backend's own code (see `crate::error_codes`), so that callers
/// branch on the kind, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A table or column the statement names does not exist yet: the schema
    /// is behind (a fresh or older database), so migrating and running the
    /// statement again can succeed.
    MissingSchema,
    /// Another connection holds a lock (SQLite's SQLITE_BUSY/SQLITE_LOCKED,
    /// PostgreSQL's lock and serialization failures): retrying can succeed.
    Busy,
    /// The data broke a constraint: the same statement fails again.
    Constraint,
    /// The database cannot be reached or is shutting down (an outage):
    /// the same request may succeed once it is back.
    Unavailable,
    /// Anything else, including a store configured wrongly (a label or an
    /// address not granted): retrying cannot help.
    Other,
}

/// A database failure: its kind and the backend's own message.
#[derive(Debug, Clone, PartialEq)]
pub struct DbError {
    kind: DbErrorKind,
    message: String,
}

impl DbError {
    pub fn new(kind: DbErrorKind, message: impl Into<String>) -> Self {
        DbError { kind, message: message.into() }
    }

    /// A failure of kind [`DbErrorKind::Other`], such as a result of an
    /// unexpected shape.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(DbErrorKind::Other, message)
    }

    pub fn kind(&self) -> DbErrorKind {
        self.kind
    }

    /// The same failure, its message prefixed with what was being done.
    pub fn context(self, doing: &str) -> Self {
        DbError { message: format!("{doing}: {}", self.message), ..self }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {}

/// One connection to a database.
pub trait Database {
    /// Which SQL this connection speaks.
    fn dialect(&self) -> Dialect;

    /// Runs exactly one SQL statement for its effect: one that returns no
    /// rows (`BEGIN`, `COMMIT`, `ROLLBACK`, DDL, `SET`, a `PRAGMA` that sets,
    /// `INSERT`/`UPDATE`/`DELETE` without `RETURNING`). The statement is
    /// already in this dialect's syntax.
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError>;

    /// Runs exactly one SQL statement that returns rows, and returns them.
    /// On PostgreSQL it must yield at least one row whatever the data (see
    /// the module doc); the PostgreSQL test adapter fails a call that yields
    /// none. SQLite has no such limit (Spin's SQLite `execute` returns rows
    /// of any count), which the dialect-specific Kafka claim relies on.
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError>;
}
