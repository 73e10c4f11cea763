//! Reading and writing users. The upsert is one atomic statement, so
//! concurrent creates of the same id from HTTP and Kafka cannot race.

use uuid::Uuid;

use crate::db::{Database, DbError, SqlValue};
use crate::migrations::migrate;
use crate::model::{UserInfo, UserPatch};

/// How long a connection waits for another writer before failing with
/// "database is locked". Spin opens a fresh connection per component instance
/// and sets no busy timeout of its own, so the domain sets it.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// Whether the upsert created the user or updated an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
}

/// A user as saved by the upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub user: UserInfo,
    pub outcome: UpsertOutcome,
}

/// Readies a freshly opened connection: busy timeout, durability, migrations.
/// Three cheap statements; hosts may open a new connection per request (Spin does).
pub fn prepare(db: &impl Database) -> Result<(), DbError> {
    db.execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"), &[])?;
    // In WAL mode NORMAL skips the fsync per commit (fsyncs at checkpoints)
    // and survives process crashes intact; only an OS crash or power cut can
    // lose the last commits. That trade buys the ingest rate a Kafka stream needs.
    db.execute("PRAGMA synchronous = NORMAL", &[])?;
    migrate(db)
}

const SELECT_USER: &str = "SELECT user_id, first_name, last_name, email, phone_number, revision \
     FROM user_info WHERE user_id = ?1";

// Absent fields (NULL parameters) keep the stored value on update and become
// '' on insert. `revision` = 1 in the RETURNING row means the INSERT branch ran.
const UPSERT_USER: &str = "INSERT INTO user_info \
         (user_id, first_name, last_name, email, phone_number, revision) \
     VALUES (?1, coalesce(?2, ''), coalesce(?3, ''), coalesce(?4, ''), coalesce(?5, ''), 1) \
     ON CONFLICT (user_id) DO UPDATE SET \
         first_name = coalesce(?2, first_name), \
         last_name = coalesce(?3, last_name), \
         email = coalesce(?4, email), \
         phone_number = coalesce(?5, phone_number), \
         revision = revision + 1 \
     RETURNING user_id, first_name, last_name, email, phone_number, revision";

/// Looks a user up by id.
pub fn find_user(db: &impl Database, user_id: Uuid) -> Result<Option<UserInfo>, DbError> {
    let rows = db.execute(SELECT_USER, &[SqlValue::Text(user_id.to_string())])?;
    rows.first().map(|row| user_from_row(row).map(|(u, _)| u)).transpose()
}

/// Creates or updates the user named by `patch.user_id`, touching only the
/// fields the patch carries.
pub fn upsert_user(db: &impl Database, patch: &UserPatch) -> Result<Saved, DbError> {
    let text = |v: &Option<String>| v.clone().map_or(SqlValue::Null, SqlValue::Text);
    let rows = db.execute(
        UPSERT_USER,
        &[
            SqlValue::Text(patch.user_id.to_string()),
            text(&patch.first_name),
            text(&patch.last_name),
            text(&patch.email),
            text(&patch.phone_number),
        ],
    )?;
    let row = rows.first().ok_or_else(|| DbError("upsert returned no row".into()))?;
    let (user, revision) = user_from_row(row)?;
    let outcome = if revision == 1 { UpsertOutcome::Created } else { UpsertOutcome::Updated };
    Ok(Saved { user, outcome })
}

fn user_from_row(row: &[SqlValue]) -> Result<(UserInfo, i64), DbError> {
    let text = |i: usize| match row.get(i) {
        Some(SqlValue::Text(s)) => Ok(s.clone()),
        other => Err(DbError(format!("column {i}: expected text, got {other:?}"))),
    };
    let user_id = Uuid::parse_str(&text(0)?).map_err(|e| DbError(format!("stored user_id: {e}")))?;
    let revision = match row.get(5) {
        Some(SqlValue::Integer(r)) => *r,
        other => return Err(DbError(format!("revision: expected integer, got {other:?}"))),
    };
    let user = UserInfo {
        user_id,
        first_name: text(1)?,
        last_name: text(2)?,
        email: text(3)?,
        phone_number: text(4)?,
    };
    Ok((user, revision))
}
