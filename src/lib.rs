//! The User Information Service's domain, shared by every component.
//!
//! It owns the `UserInfo` model, the validation of incoming JSON, the atomic
//! upsert, the effectively-once bookkeeping of Kafka records and the schema
//! migrations. It never knows where SQL runs: callers hand it a [`Database`]
//! (Spin's SQLite or PostgreSQL inside components; rusqlite or the `postgres`
//! crate in native tests), so the rules are written and tested once, and the
//! differences between the two SQL dialects live in `dialect` and `migrations`.

mod db;
mod dialect;
mod input;
mod kafka;
mod migrations;
mod model;
mod store;

pub use db::{Database, DbError, Dialect, SqlValue};
pub use input::{parse_patch, parse_user_id, FieldErrors, InputError, MAX_BODY_BYTES};
pub use kafka::{apply_records, Applied, Record};
pub use migrations::{migrate, migrations, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use model::{UserInfo, UserPatch};
pub use store::{find_user, read_user, upsert_user, write_user, Saved, UpsertOutcome};

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

/// Validates a JSON update (the `POST /user` body) and applies it with the
/// upsert. Kafka records go through [`apply_records`] instead, which adds the
/// offset bookkeeping.
pub fn apply_update(db: &impl Database, json: &[u8]) -> Result<Saved, ApplyError> {
    let patch = parse_patch(json).map_err(ApplyError::Invalid)?;
    write_user(db, &patch).map_err(ApplyError::Database)
}

#[cfg(test)]
mod testing;

#[cfg(feature = "spin-postgres")]
pub mod spin;
