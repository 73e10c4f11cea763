//! Schema migrations, embedded from `migrations/*.sql` and applied from inside
//! the components, so `spin up` on a fresh checkout needs no extra flags.
//!
//! The applied count lives in SQLite's `PRAGMA user_version` (a header field:
//! reading it costs no table lookup). Pending migrations run in one
//! `BEGIN IMMEDIATE` transaction that re-checks the version, so two processes
//! starting together apply each migration exactly once.

use crate::db::{Database, DbError, SqlValue};

/// The migrations in order: (file name, SQL). Append only; never edit one that shipped.
pub const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_create_user_info.sql",
    include_str!("../migrations/0001_create_user_info.sql"),
)];

/// Brings the schema up to date. Cheap when it already is (one PRAGMA read).
pub fn migrate(db: &impl Database) -> Result<(), DbError> {
    let target = MIGRATIONS.len() as i64;
    if schema_version(db)? >= target {
        return Ok(());
    }
    // WAL lets readers and one writer (the HTTP and the Kafka trigger, two
    // processes) work at once. It is persistent in the file and cannot change
    // inside a transaction; an in-memory database refuses it harmlessly.
    db.execute("PRAGMA journal_mode = WAL", &[])?;
    db.execute("BEGIN IMMEDIATE", &[])?;
    let result = apply_pending(db, target);
    match result {
        Ok(()) => db.execute("COMMIT", &[]).map(drop),
        Err(e) => {
            let _ = db.execute("ROLLBACK", &[]);
            Err(e)
        }
    }
}

fn apply_pending(db: &impl Database, target: i64) -> Result<(), DbError> {
    let current = schema_version(db)?;
    for (name, sql) in MIGRATIONS.iter().skip(current.max(0) as usize) {
        for statement in statements(sql) {
            db.execute(statement, &[])
                .map_err(|e| DbError(format!("migration {name}: {e}")))?;
        }
    }
    // PRAGMA takes no bound parameters; the value is our own integer.
    db.execute(&format!("PRAGMA user_version = {target}"), &[])?;
    Ok(())
}

fn schema_version(db: &impl Database) -> Result<i64, DbError> {
    let rows = db.execute("PRAGMA user_version", &[])?;
    match rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Integer(v)) => Ok(*v),
        other => Err(DbError(format!("unexpected PRAGMA user_version result: {other:?}"))),
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
}
