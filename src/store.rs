//! Reading and writing users, and the rule for when to migrate. The upsert is
//! one atomic statement, so concurrent creates of the same id from HTTP and
//! Kafka cannot race.
//!
//! Each request issues only what it needs: a read runs its SELECT alone; a
//! write readies the connection for writing (SQLite only) and runs its upsert.
//! Migrations run only when a statement reports the schema behind.

use uuid::Uuid;

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::dialect::{prepare_write, query};
use crate::migrations::migrate;
use crate::model::{UserInfo, UserPatch};

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

// Always exactly one row, so that a miss never makes a zero-row `query`
// (spin#3671, see `crate::db`): the one-row VALUES joined to the user, whose
// columns are NULL when there is none. user_id is the primary key, so the
// join matches at most one row.
const SELECT_USER: &str = "SELECT u.user_id, u.first_name, u.last_name, u.email, u.phone_number, u.revision \
     FROM (VALUES (1)) AS one LEFT JOIN user_info u ON u.user_id = CAST($1 AS TEXT)";

// The saved row of `POST /user`'s upsert (`crate::upsert::statement`).
// `revision` = 1 means the INSERT branch ran. Always exactly one row: the
// DO UPDATE has no WHERE, so one branch returns it.
const RETURNING_USER: &str = " RETURNING user_id, first_name, last_name, email, phone_number, revision";

/// Runs `work`; when it finds the schema behind (a fresh or older database),
/// migrates and runs it once more. `work` must leave no transaction open when
/// it fails. Concurrent callers may all migrate: migrations serialize and
/// re-check, so each applies once.
pub(crate) fn with_schema<T>(db: &impl Database, work: impl Fn() -> Result<T, DbError>) -> Result<T, DbError> {
    match work() {
        Err(e) if e.kind() == DbErrorKind::MissingSchema => {
            migrate(db)?;
            work()
        }
        other => other,
    }
}

/// `GET /user`: the user with this id, if any. One SELECT in the usual case.
pub fn read_user(db: &impl Database, user_id: Uuid) -> Result<Option<UserInfo>, DbError> {
    let read = || find_user(db, user_id);
    match with_schema(db, &read) {
        // In WAL mode a reader waits for nobody, except in rare moments (the
        // first connection recovering the WAL, a checkpoint restarting it);
        // then wait as a writer would, rather than fail the request.
        Err(e) if e.kind() == DbErrorKind::Busy && db.dialect() == Dialect::Sqlite => {
            prepare_write(db)?;
            read()
        }
        other => other,
    }
}

/// `POST /user` with an already validated patch: the upsert, after readying
/// the connection for writing.
pub fn write_user(db: &impl Database, patch: &UserPatch) -> Result<Saved, DbError> {
    prepare_write(db)?;
    with_schema(db, || upsert_user(db, patch))
}

/// Looks a user up by id (no migration, no retry).
pub(crate) fn find_user(db: &impl Database, user_id: Uuid) -> Result<Option<UserInfo>, DbError> {
    let rows = query(db, SELECT_USER, &[SqlValue::Text(user_id.to_string())])?;
    match rows.first() {
        // A NULL key: the LEFT JOIN found no user.
        Some(row) if row.first() == Some(&SqlValue::Null) => Ok(None),
        Some(row) => user_from_row(row).map(|(u, _)| Some(u)),
        None => Err(DbError::other("the user lookup returned no row")),
    }
}

/// Creates or updates the user named by `patch.user_id`, touching only the
/// fields the patch carries. One statement, no migration: callers go
/// through [`with_schema`].
fn upsert_user(db: &impl Database, patch: &UserPatch) -> Result<Saved, DbError> {
    let (mut sql, params) = crate::upsert::statement(&[patch]);
    sql.push_str(RETURNING_USER);
    let rows = query(db, &sql, &params)?;
    let row = rows.first().ok_or_else(|| DbError::other("upsert returned no row"))?;
    let (user, revision) = user_from_row(row)?;
    let outcome = if revision == 1 { UpsertOutcome::Created } else { UpsertOutcome::Updated };
    Ok(Saved { user, outcome })
}

fn user_from_row(row: &[SqlValue]) -> Result<(UserInfo, i64), DbError> {
    let text = |i: usize| match row.get(i) {
        Some(SqlValue::Text(s)) => Ok(s.clone()),
        other => Err(DbError::other(format!("column {i}: expected text, got {other:?}"))),
    };
    let user_id = Uuid::parse_str(&text(0)?).map_err(|e| DbError::other(format!("stored user_id: {e}")))?;
    let revision = match row.get(5) {
        Some(SqlValue::Integer(r)) => *r,
        other => return Err(DbError::other(format!("revision: expected integer, got {other:?}"))),
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
