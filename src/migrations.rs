//! Schema migrations, embedded from `migrations/<dialect>/*.sql` and applied
//! from inside the components, so `spin up` on a fresh checkout needs no flags.
//!
//! Nothing checks the schema on every request: a statement that names a table
//! or column the database lacks fails with a "schema behind" error, and the
//! caller migrates and runs it again (`store::with_schema`). So a migration
//! must add what the statements that need it name (a table or a column).
//!
//! Both dialects apply pending migrations in one transaction that serializes
//! concurrent starters and re-checks what is applied, so each migration runs
//! exactly once:
//! - SQLite: the applied count is `PRAGMA user_version` (a header field),
//!   read and written inside a `BEGIN IMMEDIATE` transaction (the write lock).
//! - PostgreSQL: a `schema_migrations` table, read and written inside a
//!   transaction that first takes a transaction-scoped advisory lock.
//!
//! Every statement here runs through the port's `execute` (transaction
//! control, DDL, the bookkeeping INSERTs, the PRAGMAs that set) except the
//! reads, which each yield exactly one row (spin#3671, see `crate::db`).

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::dialect::{in_transaction, prepare_write};

/// SQLite's migrations in order: (file name, SQL). Append only; never edit one that shipped.
pub const SQLITE_MIGRATIONS: &[(&str, &str)] = &[
    ("0001_create_user_info.sql", include_str!("../migrations/sqlite/0001_create_user_info.sql")),
    ("0002_create_kafka_offsets.sql", include_str!("../migrations/sqlite/0002_create_kafka_offsets.sql")),
    ("0003_user_tombstones.sql", include_str!("../migrations/sqlite/0003_user_tombstones.sql")),
];

/// PostgreSQL's migrations, one per SQLite migration, giving the same schema.
pub const POSTGRES_MIGRATIONS: &[(&str, &str)] = &[
    ("0001_create_user_info.sql", include_str!("../migrations/postgres/0001_create_user_info.sql")),
    ("0002_create_kafka_offsets.sql", include_str!("../migrations/postgres/0002_create_kafka_offsets.sql")),
    ("0003_user_tombstones.sql", include_str!("../migrations/postgres/0003_user_tombstones.sql")),
];

/// The key of the advisory lock that serializes PostgreSQL migrations
/// ("user" in ASCII); any other user of advisory locks picks its own.
const POSTGRES_MIGRATION_LOCK: i64 = 0x7573_6572;

/// The migrations of a dialect.
pub fn migrations(dialect: Dialect) -> &'static [(&'static str, &'static str)] {
    match dialect {
        Dialect::Sqlite => SQLITE_MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    }
}

/// Brings the schema up to date; a no-op (after its checks) when it already is.
pub fn migrate(db: &impl Database) -> Result<(), DbError> {
    migrate_to(db, migrations(db.dialect()).len())
}

/// Applies the first `target` migrations (tests build older schemas with it).
pub(crate) fn migrate_to(db: &impl Database, target: usize) -> Result<(), DbError> {
    match db.dialect() {
        Dialect::Sqlite => migrate_sqlite(db, &SQLITE_MIGRATIONS[..target]),
        Dialect::Postgres => migrate_postgres(db, &POSTGRES_MIGRATIONS[..target]),
    }
}

/// How often a starter that SQLite answered "busy" without waiting tries the
/// migration again, and how long it pauses in between.
const SQLITE_BUSY_RETRIES: u32 = 50;
const SQLITE_BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Starters racing on a new file: SQLite answers some of them SQLITE_BUSY at
/// once, without its busy handler (a connection switching the file to WAL, or
/// one meeting that switch), whatever `busy_timeout` says. The migration is
/// idempotent (it reads `user_version` under the write lock), so such a
/// starter simply tries again; any other error, or a busy that outlasts the
/// retries (a second), is the caller's.
fn migrate_sqlite(db: &impl Database, wanted: &'static [(&'static str, &'static str)]) -> Result<(), DbError> {
    let mut attempt = 0;
    loop {
        match migrate_sqlite_once(db, wanted) {
            Err(e) if e.kind() == DbErrorKind::Busy && attempt < SQLITE_BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(SQLITE_BUSY_PAUSE);
            }
            result => return result,
        }
    }
}

fn migrate_sqlite_once(db: &impl Database, wanted: &'static [(&'static str, &'static str)]) -> Result<(), DbError> {
    prepare_write(db)?;
    // WAL lets readers and one writer (the HTTP and the Kafka trigger, two
    // processes) work at once. It is persistent in the file and cannot change
    // inside a transaction; an in-memory database refuses it harmlessly.
    db.execute("PRAGMA journal_mode = WAL", &[])?;
    in_transaction(db, || {
        // One row always: the header field.
        let current = integer(db.query("PRAGMA user_version", &[])?, "PRAGMA user_version")?;
        let pending = pending(wanted, current);
        if pending.is_empty() {
            return Ok(());
        }
        apply(db, pending)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        db.execute(&format!("PRAGMA user_version = {}", wanted.len()), &[])?;
        Ok(())
    })
}

fn migrate_postgres(db: &impl Database, wanted: &'static [(&'static str, &'static str)]) -> Result<(), DbError> {
    in_transaction(db, || {
        // Held until COMMIT/ROLLBACK: a concurrent starter waits here, then
        // finds the migrations applied. (count(*) makes the void result a
        // number; the one row makes it a `query` Spin 4.0.x answers.)
        db.query(
            &format!("SELECT count(*) FROM (SELECT pg_advisory_xact_lock({POSTGRES_MIGRATION_LOCK})) AS locked"),
            &[],
        )?;
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT NOT NULL PRIMARY KEY, \
                 name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            &[],
        )?;
        // An aggregate without GROUP BY: exactly one row, also on an empty table.
        let rows = db.query("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?;
        let current = integer(rows, "schema_migrations")?;
        apply(db, pending(wanted, current))?;
        for (index, (name, _)) in wanted.iter().enumerate().skip(current.max(0) as usize) {
            db.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[SqlValue::Integer(index as i64 + 1), SqlValue::Text((*name).to_owned())],
            )?;
        }
        Ok(())
    })
}

fn pending(all: &'static [(&'static str, &'static str)], applied: i64) -> &'static [(&'static str, &'static str)] {
    &all[(applied.max(0) as usize).min(all.len())..]
}

fn apply(db: &impl Database, migrations: &[(&str, &str)]) -> Result<(), DbError> {
    for (name, sql) in migrations {
        for statement in statements(sql) {
            db.execute(statement, &[]).map_err(|e| e.context(&format!("migration {name}")))?;
        }
    }
    Ok(())
}

fn integer(rows: Vec<Vec<SqlValue>>, what: &str) -> Result<i64, DbError> {
    match rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Integer(v)) => Ok(*v),
        other => Err(DbError::other(format!("unexpected {what} result: {other:?}"))),
    }
}

/// Splits a migration file into statements, because Spin's `execute` runs one
/// statement per call. Splits on `;` outside quotes and `--` comments; that is
/// all our plain DDL needs (no trigger bodies with inner semicolons).
fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote, mut comment) = (0, None::<char>, false);
    for (i, c) in sql.char_indices() {
        match (quote, comment, c) {
            (_, true, '\n') => comment = false,
            (_, true, _) => {}
            (Some(q), _, c) if c == q => quote = None,
            (Some(_), _, _) => {}
            (None, _, '\'' | '"') => quote = Some(c),
            (None, _, '-') if sql[i..].starts_with("--") => comment = true,
            (None, _, ';') => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sql[start..]);
    out.into_iter()
        .filter(|s| s.lines().any(|l| !l.trim().is_empty() && !l.trim().starts_with("--")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_statements_outside_quotes_and_comments() {
        let sql = "-- a; comment\nCREATE TABLE t (a TEXT DEFAULT ';');\n\nINSERT INTO t VALUES ('x;y');\n-- trailing;\n";
        let parts = statements(sql);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].contains("CREATE TABLE"));
        assert!(parts[1].contains("'x;y'"));
    }

    mod properties {
        use super::statements;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_splits_into_pieces_of_itself_never_a_panic(sql in any::<String>()) {
                for part in statements(&sql) {
                    prop_assert!(sql.contains(part));
                }
            }

            #[test]
            fn plain_statements_come_back_one_each(
                parts in proptest::collection::vec("[A-Za-z0-9_ (),.']{1,40}", 1..8)
                    .prop_map(|v| v.into_iter().map(|p| p.replace('\'', "")).filter(|p| !p.trim().is_empty()).collect::<Vec<_>>()),
                quoted in "[a-z; -]{0,20}",
            ) {
                // Each statement ends in a quoted string holding `;` and `--`, which must not split it.
                let with_quotes: Vec<String> = parts.iter().map(|p| format!("{p} '{quoted}'")).collect();
                let sql = with_quotes.join(";\n-- a comment; with a semicolon\n");
                let split = statements(&sql);
                prop_assert_eq!(split.len(), with_quotes.len(), "{:?}", split);
                for (got, want) in split.iter().zip(&with_quotes) {
                    prop_assert!(got.contains(want.as_str()), "{:?} lacks {:?}", got, want);
                }
            }
        }
    }
}
