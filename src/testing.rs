//! Test-only: native adapters of the domain's `Database` port, so every rule
//! is exercised against real databases: rusqlite on real SQLite files, the
//! `postgres` crate on a real PostgreSQL server started for the tests, and a
//! counting wrapper that measures how many statements a request issues.

mod counting;
mod postgres;
mod rules;
mod sqlite;

/// What `POST /user` does with a body the test knows is valid: validate it,
/// then the upsert (with its migration on a fresh database).
pub(crate) fn post(db: &impl crate::Database, json: &[u8]) -> Result<crate::Saved, crate::DbError> {
    let patch = crate::parse_patch(json).expect("a valid test body");
    crate::write_user(db, &patch)
}
