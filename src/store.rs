//! Reading, writing and deleting users, and the rule for when to migrate.
//! The upsert is one atomic statement, so concurrent creates of the same id
//! from HTTP and Kafka cannot race; a conditional write or delete carries its
//! preconditions in its WHERE (`crate::conditions`), so nothing can change
//! the user between the check and the write.
//!
//! Each request issues only what it needs: a read runs its SELECT alone; a
//! write readies the connection for writing (SQLite only) and runs its upsert.
//! Migrations run only when a statement reports the schema behind.

use std::sync::LazyLock;

use uuid::Uuid;

use crate::conditions::Preconditions;
use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::dialect::{prepare_write, query, query_changed_row};
use crate::migrations::migrate;
use crate::model::{UserInfo, UserPatch, FIELDS};

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
    /// The revision it was saved at: its ETag (`crate::etag`).
    pub revision: i64,
}

/// A current user as read, with its revision (its ETag, `crate::etag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub user: UserInfo,
    pub revision: i64,
}

/// What a conditional `POST /user` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Saved(Saved),
    /// A precondition was false; nothing was written. `current` is the
    /// revision of the user as read right after (`None`: no user).
    PreconditionFailed { current: Option<i64> },
}

/// What `DELETE /user` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// No such user (conditions or not: RFC 9110 §13.2.1, a 404 stays a 404).
    NotFound,
    /// The user exists at revision `current`, which a precondition refused.
    PreconditionFailed { current: i64 },
}
// Always exactly one row, so that a miss never makes a zero-row `query`
// (spin#3671, see `crate::db`): the one-row VALUES joined to the user, whose
// columns are NULL when there is none (or only its tombstone). user_id is
// the primary key, so the join matches at most one row.
// Columns of both: user_id, FIELDS, revision (`user_from_row`).
static SELECT_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT u.user_id, {}, u.revision \
         FROM (VALUES (1)) AS one LEFT JOIN user_info u ON u.user_id = CAST($1 AS TEXT) AND u.deleted = 0",
        FIELDS.map(|c| format!("u.{c}")).join(", ")
    )
});

// The saved row of `POST /user`'s write (`crate::upsert`). `revision` =
// `created_revision` means this write began the user's life: a create.
// Unconditional, the upsert always yields this row (its DO UPDATE has no
// WHERE); a conditional write may yield none (`query_changed_row`).
static RETURNING_USER: LazyLock<String> =
    LazyLock::new(|| format!(" RETURNING user_id, {}, revision, created_revision", FIELDS.join(", ")));

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
    Ok(read_stored(db, user_id)?.map(|s| s.user))
}

/// The user with this id and its revision, if any. One SELECT in the usual case.
pub fn read_stored(db: &impl Database, user_id: Uuid) -> Result<Option<Stored>, DbError> {
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

/// `POST /user` with an already validated patch and the request's
/// preconditions, checked and written in one statement:
/// - with `If-Match`, an UPDATE of the current user (it never creates);
/// - otherwise the upsert, whose DO UPDATE carries `If-None-Match` as its
///   WHERE (a tombstone or no row always takes the write: no current user
///   matches no tag).
///
/// When the statement writes nothing, the current revision is read for the
/// 412's ETag.
pub fn write_user_if(db: &impl Database, patch: &UserPatch, preconditions: &Preconditions) -> Result<Written, DbError> {
    if preconditions.is_empty() {
        return write_user(db, patch).map(Written::Saved);
    }
    prepare_write(db)?;
    let write = || {
        let (mut sql, mut params) = if preconditions.requires_current() {
            crate::upsert::update_statement(patch)
        } else {
            crate::upsert::statement(&[patch])
        };
        let (condition, values) = preconditions.sql(params.len() + 1).expect("conditions present");
        sql.push_str(if preconditions.requires_current() { " AND " } else { " WHERE " });
        sql.push_str(&condition);
        sql.push_str(&RETURNING_USER);
        params.extend(values);
        query_changed_row(db, &sql, &params)?.map(|row| saved_from_row(&row)).transpose()
    };
    match with_schema(db, write)? {
        Some(saved) => Ok(Written::Saved(saved)),
        None => Ok(Written::PreconditionFailed { current: find_user(db, patch.user_id)?.map(|s| s.revision) }),
    }
}

/// `DELETE /user`: turns the user into a tombstone (`crate::tombstone`) if
/// it exists and the preconditions hold, in one statement.
pub fn delete_user(db: &impl Database, user_id: Uuid, preconditions: &Preconditions) -> Result<Deleted, DbError> {
    prepare_write(db)?;
    let delete = || {
        let mut sql = crate::tombstone::statement(1);
        let mut params = vec![SqlValue::Text(user_id.to_string())];
        if let Some((condition, values)) = preconditions.sql(2) {
            sql.push_str(" AND ");
            sql.push_str(&condition);
            params.extend(values);
        }
        sql.push_str(" RETURNING revision");
        query_changed_row(db, &sql, &params)
    };
    if with_schema(db, delete)?.is_some() {
        return Ok(Deleted::Deleted);
    }
    if preconditions.is_empty() {
        return Ok(Deleted::NotFound);
    }
    Ok(match find_user(db, user_id)? {
        Some(current) => Deleted::PreconditionFailed { current: current.revision },
        None => Deleted::NotFound,
    })
}

/// Looks a user up by id (no migration, no retry).
pub(crate) fn find_user(db: &impl Database, user_id: Uuid) -> Result<Option<Stored>, DbError> {
    let rows = query(db, &SELECT_USER, &[SqlValue::Text(user_id.to_string())])?;
    match rows.first() {
        // A NULL key: the LEFT JOIN found no user.
        Some(row) if row.first() == Some(&SqlValue::Null) => Ok(None),
        Some(row) => user_from_row(row).map(|(user, revision)| Some(Stored { user, revision })),
        None => Err(DbError::other("the user lookup returned no row")),
    }
}

/// Creates or updates the user named by `patch.user_id`, touching only the
/// fields the patch carries. One statement, no migration: callers go
/// through [`with_schema`].
fn upsert_user(db: &impl Database, patch: &UserPatch) -> Result<Saved, DbError> {
    let (mut sql, params) = crate::upsert::statement(&[patch]);
    sql.push_str(&RETURNING_USER);
    let rows = query(db, &sql, &params)?;
    saved_from_row(rows.first().ok_or_else(|| DbError::other("upsert returned no row"))?)
}

fn saved_from_row(row: &[SqlValue]) -> Result<Saved, DbError> {
    let (user, revision) = user_from_row(row)?;
    let created_revision = match row.get(FIELDS.len() + 2) {
        Some(SqlValue::Integer(r)) => *r,
        other => return Err(DbError::other(format!("created_revision: expected integer, got {other:?}"))),
    };
    let outcome = if revision == created_revision { UpsertOutcome::Created } else { UpsertOutcome::Updated };
    Ok(Saved { user, outcome, revision })
}

fn user_from_row(row: &[SqlValue]) -> Result<(UserInfo, i64), DbError> {
    let text = |i: usize| match row.get(i) {
        Some(SqlValue::Text(s)) => Ok(s.clone()),
        other => Err(DbError::other(format!("column {i}: expected text, got {other:?}"))),
    };
    let user_id = Uuid::parse_str(&text(0)?).map_err(|e| DbError::other(format!("stored user_id: {e}")))?;
    let revision = match row.get(FIELDS.len() + 1) {
        Some(SqlValue::Integer(r)) => *r,
        other => return Err(DbError::other(format!("revision: expected integer, got {other:?}"))),
    };
    let mut fields = [const { String::new() }; FIELDS.len()];
    for (i, field) in fields.iter_mut().enumerate() {
        *field = text(i + 1)?;
    }
    Ok((UserInfo::from_fields(user_id, fields), revision))
}
