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

/// A database failure, with the backend's own message.
#[derive(Debug, Clone, PartialEq)]
pub struct DbError(pub String);

impl DbError {
    /// The statement names a table or column that does not exist yet: the
    /// schema is behind (a fresh database, or an older one), so migrating and
    /// running the statement again can succeed. SQLite says so in words;
    /// PostgreSQL's SQLSTATEs 42P01 (undefined table) and 42703 (undefined
    /// column) appear in every error text its clients produce.
    pub fn is_schema_behind(&self) -> bool {
        const SIGNS: [&str; 5] = ["no such table", "no such column", "has no column named", "42P01", "42703"];
        SIGNS.iter().any(|s| self.0.contains(s))
    }

    /// SQLite's SQLITE_BUSY/SQLITE_LOCKED: another connection holds a lock.
    pub fn is_busy(&self) -> bool {
        self.0.contains("database is locked") || self.0.contains("database table is locked")
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
