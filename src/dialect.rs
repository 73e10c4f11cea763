//! What differs between SQLite and PostgreSQL for the statements the domain
//! runs, in one place: placeholders, how a write transaction starts, and the
//! per-connection settings SQLite needs before it writes. Every statement is
//! written once, in PostgreSQL's `$1` placeholder style with explicit `CAST`s
//! (which PostgreSQL needs to type its parameters and SQLite accepts).

use std::borrow::Cow;

use crate::db::{Database, DbError, Dialect, SqlValue};

/// How long a SQLite connection waits for another writer before failing with
/// "database is locked".
const BUSY_TIMEOUT_MS: u32 = 5_000;

impl Dialect {
    /// The statement in this dialect: SQLite numbers its parameters `?1`.
    /// (Values only ever travel as parameters, so no `$` is in a literal.)
    fn sql(self, text: &str) -> Cow<'_, str> {
        match self {
            Dialect::Postgres => Cow::Borrowed(text),
            Dialect::Sqlite => Cow::Owned(text.replace('$', "?")),
        }
    }

    /// Starts a transaction that will write. SQLite takes the write lock at
    /// once (IMMEDIATE), so a transaction never fails half-way on a lock
    /// upgrade; PostgreSQL locks rows as it goes.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// Runs one of the domain's statements that return rows on `db`, in its
/// dialect. Each one yields at least one row (see `crate::db`).
pub(crate) fn query(db: &impl Database, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
    db.query(&db.dialect().sql(sql), params)
}

/// Runs a write statement with RETURNING that changes at most one row (a
/// conditional write or a delete) and returns that row, if any. On
/// PostgreSQL a `query` must yield a row (spin#3671, `crate::db`), so the
/// statement runs in a data-modifying CTE left-joined onto a one-row VALUES:
/// one row always, NULL in the first column (a NOT NULL column of the
/// RETURNING) when nothing changed. SQLite's `query` may yield no rows.
pub(crate) fn query_changed_row(db: &impl Database, sql: &str, params: &[SqlValue]) -> Result<Option<Vec<SqlValue>>, DbError> {
    match db.dialect() {
        Dialect::Sqlite => Ok(query(db, sql, params)?.into_iter().next()),
        Dialect::Postgres => {
            let wrapped = format!("WITH changed AS ({sql}) SELECT changed.* FROM (VALUES (1)) AS one LEFT JOIN changed ON true");
            match query(db, &wrapped, params)?.into_iter().next() {
                None => Err(DbError::other("the write's one-row query returned no row")),
                Some(row) if row.first() == Some(&SqlValue::Null) => Ok(None),
                Some(row) => Ok(Some(row)),
            }
        }
    }
}

/// Runs one of the domain's statements without rows on `db`, in its dialect.
pub(crate) fn execute(db: &impl Database, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
    db.execute(&db.dialect().sql(sql), params)
}

/// Readies a connection for writing. This is the one place that sets SQLite's
/// `busy_timeout` and `synchronous`, and only for requests that write:
/// - Spin (3.x and 4.x) opens a fresh SQLite connection per `open` and sets
///   neither, so only the component can; the project's host therefore sets
///   none either, and both runtimes behave alike.
/// - `busy_timeout`: the HTTP and the Kafka trigger write one file from two
///   processes; without it a writer fails at once with "database is locked".
///   Readers in WAL mode do not wait for writers, so a GET skips it (and sets
///   it only to retry after a rare busy answer, see `store::read_user`).
/// - `synchronous = NORMAL`: in WAL mode it skips the fsync per commit
///   (fsyncs at checkpoints) and survives process crashes intact; only an OS
///   crash or power cut can lose the last commits. That trade buys the write
///   rate a Kafka stream needs. It only matters for a connection that commits.
/// PostgreSQL needs neither: its server waits for locks and owns durability.
pub(crate) fn prepare_write(db: &impl Database) -> Result<(), DbError> {
    if db.dialect() == Dialect::Sqlite {
        db.execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"), &[])?;
        db.execute("PRAGMA synchronous = NORMAL", &[])?;
    }
    Ok(())
}

/// Runs `work` in one write transaction: committed when it succeeds, rolled
/// back when it (or the commit) fails.
pub(crate) fn in_transaction<T>(db: &impl Database, work: impl FnOnce() -> Result<T, DbError>) -> Result<T, DbError> {
    db.execute(db.dialect().begin_write(), &[])?;
    let result = work().and_then(|value| db.execute("COMMIT", &[]).map(|()| value));
    if result.is_err() {
        // Nothing to do if it fails too: the connection is dropped with it.
        let _ = db.execute("ROLLBACK", &[]);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_numbers_placeholders_with_question_marks() {
        assert_eq!(Dialect::Sqlite.sql("SELECT $1, CAST($2 AS TEXT)"), "SELECT ?1, CAST(?2 AS TEXT)");
        assert_eq!(Dialect::Postgres.sql("SELECT $1"), "SELECT $1");
    }
}
