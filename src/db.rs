//! The narrow SQL port the domain needs: run one statement with positional
//! parameters and get rows back. Implemented by Spin's SQLite in the
//! components and by rusqlite in native tests; nothing else leaks in.

/// A SQLite value, the subset the domain reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

/// A database failure, with the backend's own message.
#[derive(Debug, Clone, PartialEq)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// One connection to a SQLite database.
pub trait Database {
    /// Runs exactly one SQL statement and returns its rows (empty when it has none).
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError>;
}
