//! The User Information Service's domain, shared by every component.
//!
//! It owns the `UserInfo` model, the validation of incoming JSON, the atomic
//! upsert and the schema migrations. It never knows where SQL runs: callers
//! hand it a [`Database`] (Spin's SQLite inside components, rusqlite in native
//! tests), so the rules are written and tested once.

mod db;
mod input;
mod migrations;
mod model;
mod store;

pub use db::{Database, DbError, SqlValue};
pub use input::{parse_patch, parse_user_id, FieldErrors, InputError, MAX_BODY_BYTES};
pub use migrations::{migrate, MIGRATIONS};
pub use model::{UserInfo, UserPatch};
pub use store::{find_user, prepare, upsert_user, Saved, UpsertOutcome};

/// What applying an update (from an HTTP body or a Kafka record) can end in.
#[derive(Debug)]
pub enum ApplyError {
    /// The input itself is wrong; retrying it can never succeed.
    Invalid(InputError),
    /// The database failed; the same input may succeed later.
    Database(DbError),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Invalid(e) => write!(f, "invalid input: {e}"),
            ApplyError::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Validates every update, then applies them in order in one transaction: all
/// or nothing. On an invalid input nothing is written and its index is given.
pub fn apply_updates(db: &impl Database, jsons: &[&[u8]]) -> Result<Vec<Saved>, (usize, ApplyError)> {
    let patches = jsons
        .iter()
        .enumerate()
        .map(|(i, json)| parse_patch(json).map_err(|e| (i, ApplyError::Invalid(e))))
        .collect::<Result<Vec<_>, _>>()?;
    let db_error = |e| (0, ApplyError::Database(e));
    prepare(db).map_err(db_error)?;
    db.execute("BEGIN IMMEDIATE", &[]).map_err(db_error)?;
    let saved = patches.iter().map(|p| upsert_user(db, p)).collect::<Result<Vec<_>, _>>();
    let finished = match saved {
        Ok(saved) => db.execute("COMMIT", &[]).map(|_| saved),
        Err(e) => Err(e),
    };
    finished.map_err(|e| {
        let _ = db.execute("ROLLBACK", &[]);
        db_error(e)
    })
}

/// Validates a JSON update (the `POST /user` body, or a Kafka record value) and
/// applies it with the upsert. The one entry point both components use.
pub fn apply_update(db: &impl Database, json: &[u8]) -> Result<Saved, ApplyError> {
    let patch = parse_patch(json).map_err(ApplyError::Invalid)?;
    prepare(db).map_err(ApplyError::Database)?;
    upsert_user(db, &patch).map_err(ApplyError::Database)
}

#[cfg(test)]
mod sqlite_file;

#[cfg(feature = "spin")]
pub mod spin_sqlite;
