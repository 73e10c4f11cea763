//! The domain's `Database` port over Spin's host interfaces, for the wasm
//! components (only compiled with the `spin` feature), and the one rule both
//! components use to pick their store at deploy time: the `database_url`
//! variable. Empty (the default): Spin's SQLite database `default`.
//! `postgres://…` (or `postgresql://…`): that PostgreSQL database.
//! Without the `spin-sqlite` feature the SQLite store is not compiled in (nor
//! its host interface imported), and an empty `database_url` is an error.

mod postgres;
#[cfg(feature = "spin-sqlite")]
mod sqlite;

pub use postgres::SpinPostgres;
#[cfg(feature = "spin-sqlite")]
pub use sqlite::SpinSqlite;

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};

/// The component variable naming the store.
pub const DATABASE_URL_VARIABLE: &str = "database_url";

/// The SQLite database label the components are granted in spin.toml.
#[cfg(feature = "spin-sqlite")]
pub const SQLITE_LABEL: &str = "default";

/// The store a component works on.
pub enum Store {
    #[cfg(feature = "spin-sqlite")]
    Sqlite(SpinSqlite),
    Postgres(SpinPostgres),
}

impl Store {
    /// Opens the store `database_url` names (see the module doc). A variable
    /// the component does not declare counts as empty, so a component with no
    /// `[component.x.variables]` entry keeps SQLite.
    pub fn open() -> Result<Store, DbError> {
        use spin_sdk::variables::Error;
        let url = match spin_sdk::variables::get(DATABASE_URL_VARIABLE) {
            Ok(url) => url,
            Err(Error::Undefined(_)) => String::new(),
            // Falling back to SQLite here could write to the wrong store.
            // A variables provider (Vault, Azure Key Vault) may be down for a while.
            Err(e) => return Err(DbError::new(DbErrorKind::Unavailable, format!("variable {DATABASE_URL_VARIABLE}: {e}"))),
        };
        let url = url.trim();
        if url.is_empty() {
            #[cfg(feature = "spin-sqlite")]
            return SpinSqlite::open(SQLITE_LABEL).map(Store::Sqlite);
            #[cfg(not(feature = "spin-sqlite"))]
            return Err(DbError::other("database_url is empty, and this build has no SQLite store: set it to a postgres:// URL"));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            SpinPostgres::open(url).map(Store::Postgres)
        } else {
            // Never echo the value: it may hold a password.
            Err(DbError::other("database_url must be empty (SQLite) or a postgres:// URL"))
        }
    }
}

impl Database for Store {
    fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "spin-sqlite")]
            Store::Sqlite(db) => db.dialect(),
            Store::Postgres(db) => db.dialect(),
        }
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        match self {
            #[cfg(feature = "spin-sqlite")]
            Store::Sqlite(db) => db.execute(sql, params),
            Store::Postgres(db) => db.execute(sql, params),
        }
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        match self {
            #[cfg(feature = "spin-sqlite")]
            Store::Sqlite(db) => db.query(sql, params),
            Store::Postgres(db) => db.query(sql, params),
        }
    }
}
