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
// Used by the Spin adapters (the `spin-*` features) and the native test adapters only.
#[cfg_attr(not(any(test, feature = "spin-postgres")), allow(dead_code))]
mod error_codes;
mod input;
mod migrations;
mod model;
mod offsets;
mod store;
mod upsert;

pub use db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
pub use input::{parse_patch, parse_user_id, FieldErrors, InputError, MAX_BODY_BYTES};
pub use migrations::{migrate, migrations, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use model::{UserInfo, UserPatch};
pub use offsets::{apply_records, Applied, BatchError, Record};
pub use store::{read_user, write_user, Saved, UpsertOutcome};

#[cfg(test)]
mod testing;

#[cfg(feature = "spin-postgres")]
pub mod spin;
