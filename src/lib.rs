//! The User Information Service's domain, shared by every component.
//!
//! It owns the `UserInfo` model, the validation of incoming JSON, the atomic
//! upsert and delete, conditional requests (ETags), the effectively-once bookkeeping of Kafka records and the schema
//! migrations. It never knows where SQL runs: callers hand it a [`Database`]
//! (Spin's SQLite or PostgreSQL inside components; rusqlite or the `postgres`
//! crate in native tests), so the rules are written and tested once, and the
//! differences between the two SQL dialects live in `dialect` and `migrations`.

mod conditions;
mod db;
mod dialect;
// Used by the Spin adapters (the `spin-*` features) and the native test adapters only.
#[cfg_attr(not(any(test, feature = "spin-postgres")), allow(dead_code))]
mod error_codes;
mod input;
mod migrations;
mod model;
mod offsets;
mod store;
mod tombstone;
mod upsert;

pub use conditions::{etag, Preconditions, ReadVerdict, Tags};
pub use db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
pub use input::{parse_patch, parse_tombstone_key, parse_user_id, FieldErrors, InputError, MAX_BODY_BYTES};
pub use migrations::{migrate, migrations, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use model::{UserInfo, UserPatch};
pub use offsets::{apply_records, Applied, BatchError, Record};
pub use store::{delete_user, read_stored, read_user, write_user, write_user_if, Deleted, Saved, Stored, UpsertOutcome, Written};

#[cfg(test)]
mod testing;

#[cfg(feature = "spin-postgres")]
pub mod spin;
