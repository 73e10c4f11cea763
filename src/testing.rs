//! Test-only: native adapters of the domain's `Database` port, so every rule
//! is exercised against real databases: rusqlite on real SQLite files, the
//! `postgres` crate on a real PostgreSQL server started for the tests, and a
//! counting wrapper that measures how many statements a request issues.

mod counting;
mod postgres;
mod rules;
mod sqlite;
