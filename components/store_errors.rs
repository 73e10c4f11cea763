//! Test data of both components: the failures a component meets from its
//! store, in the very words the runtimes send them, each with the kind the
//! production classification must give it (`user_info::spin`'s `From` impls
//! over `user_info::error_codes`). Each component's tests pin their own answer
//! per kind on top: the HTTP component 503 or 500, the Kafka component retry
//! or dead-letter. Included by both with `#[path]`: one table.
//!
//! Where the words come from (read from the sources, not copied):
//! - Spin 3.6.3 and 4.0.2, SQLite (crates/sqlite-inproc, crates/factor-sqlite):
//!   `Io(rusqlite::Error::to_string())` for every statement or open failure,
//!   `Io("too many connections opened")`, `Io("query result exceeds limit of
//!   N bytes")`, and the `NoSuchDatabase`/`AccessDenied`/`InvalidConnection`
//!   variants. rusqlite's text is SQLite's own message (`sqlite3_errmsg`),
//!   the open failure's with the path appended.
//! - Spin 3.6.3 and 4.0.2, PostgreSQL (crates/factor-outbound-pg, and
//!   crates/world's conversion of `postgres@4` errors to `postgres@3`, which
//!   keeps `as_text`): `QueryFailed(format!("{e:?}"))` of the
//!   `tokio_postgres::Error` when a statement fails; `ConnectionFailed` with
//!   the `{:?}` of the pool's anyhow error, "too many connections", or
//!   "address postgres://… is not permitted". A server error that arrives
//!   while rows stream goes through anyhow first: in 3.6.3 its `{:?}` is the
//!   driver error's Display chain (no SQLSTATE), in 4.0.2 it is the Display
//!   of the `postgres@4` error, which wasmtime's bindings write as its Debug
//!   (the SQLSTATE stays, inside `as_text`).
//! - This project's host (host/src/interfaces/sqlite, .../postgres): the
//!   same rusqlite and driver texts, plus its own ("database is locked
//!   (another writer in this process)", "too many open connections: 256 per
//!   instance", its result limit, its zero-row check).
//!
//! The SQLite and driver texts below are what rusqlite and tokio-postgres
//! print for those errors; the domain's own tests (src/testing/rules.rs,
//! `each_adapter_reports_the_kind_of_a_failure`) make real SQLite files and a
//! real PostgreSQL produce them and classify them with the same functions.

use std::fmt;

use spin_sdk::pg3::PgError;
use spin_sdk::sqlite::Error as SqliteError;
use user_info::DbError;
use user_info::DbErrorKind::{self, *};

pub enum Failure {
    Sqlite(SqliteError),
    Postgres(PgError),
}

pub struct Case {
    /// Which runtime sends it, and when.
    pub origin: &'static str,
    pub failure: Failure,
    /// What the production classification must make of it.
    pub kind: DbErrorKind,
}

impl Case {
    /// The failure as the component sees it: through the production adapter.
    pub fn classified(&self) -> DbError {
        match &self.failure {
            Failure::Sqlite(e) => DbError::from(e),
            Failure::Postgres(e) => DbError::from(e),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.failure, Failure::Sqlite(_))
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failure = match &self.failure {
            Failure::Sqlite(e) => format!("sqlite {e:?}"),
            Failure::Postgres(e) => format!("postgres {e:?}"),
        };
        write!(f, "{} ({failure})", self.origin)
    }
}

const SPIN: &str = "Spin 3.6.3 and 4.0.2";
const SPIN_AND_HOST: &str = "Spin 3.6.3 and 4.0.2, and the host";
const HOST: &str = "the host";

fn sqlite(origin: &'static str, text: &str, kind: DbErrorKind) -> Case {
    Case { origin, failure: Failure::Sqlite(SqliteError::Io(text.to_owned())), kind }
}

fn query_failed(origin: &'static str, text: &str, kind: DbErrorKind) -> Case {
    Case { origin, failure: Failure::Postgres(PgError::QueryFailed(text.to_owned())), kind }
}

fn connection_failed(origin: &'static str, text: &str, kind: DbErrorKind) -> Case {
    Case { origin, failure: Failure::Postgres(PgError::ConnectionFailed(text.to_owned())), kind }
}

/// A `tokio_postgres::Error`'s `{:?}` for a server error: what `QueryFailed` carries.
fn server_error(severity: &str, code: &str, message: &str) -> String {
    let parsed = if severity == "FATAL" { "Fatal" } else { "Error" };
    format!(
        "Error {{ kind: Db, cause: Some(DbError {{ severity: {severity:?}, parsed_severity: Some({parsed}), code: SqlState({code}), \
         message: {message:?}, detail: None, hint: None, position: None, where_: None, schema: None, table: None, column: None, \
         datatype: None, constraint: None, file: Some(\"postgres.c\"), line: Some(3297), routine: Some(\"ProcessInterrupts\") }}) }}"
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        // SQLite, the `Io` texts.
        sqlite(SPIN_AND_HOST, "no such table: user_info", MissingSchema),
        sqlite(SPIN_AND_HOST, "no such column: revision", MissingSchema),
        sqlite(SPIN_AND_HOST, "table user_info has no column named revision", MissingSchema),
        sqlite(SPIN_AND_HOST, "database is locked", Busy),
        sqlite(SPIN_AND_HOST, "database table is locked: user_info", Busy),
        sqlite(HOST, "database is locked (another writer in this process)", Busy),
        sqlite(SPIN_AND_HOST, "UNIQUE constraint failed: user_info.user_id", Constraint),
        sqlite(SPIN_AND_HOST, "NOT NULL constraint failed: user_info.first_name", Constraint),
        sqlite(SPIN_AND_HOST, "disk I/O error", Unavailable),
        sqlite(SPIN_AND_HOST, "database or disk is full", Unavailable),
        sqlite(SPIN_AND_HOST, "unable to open database file: /srv/app/.spin/sqlite_db.db", Unavailable),
        sqlite(SPIN_AND_HOST, "near \"SELEC\": syntax error", Other),
        sqlite(HOST, "near \"SELEC\": syntax error in SELEC 1 at offset 0", Other),
        sqlite(SPIN_AND_HOST, "attempt to write a readonly database", Other),
        sqlite(SPIN, "too many connections opened", Other),
        sqlite(SPIN, "query result exceeds limit of 134217728 bytes", Other),
        sqlite(HOST, "too many open connections: 256 per instance", Other),
        sqlite(
            HOST,
            "query result exceeds limit of 134217728 bytes (128 MiB buffered per statement); fetch it in pages (LIMIT/OFFSET)",
            Other,
        ),
        // SQLite, the interface's other variants.
        Case { origin: SPIN_AND_HOST, failure: Failure::Sqlite(SqliteError::NoSuchDatabase), kind: Other },
        Case { origin: SPIN_AND_HOST, failure: Failure::Sqlite(SqliteError::AccessDenied), kind: Other },
        Case { origin: SPIN_AND_HOST, failure: Failure::Sqlite(SqliteError::InvalidConnection), kind: Unavailable },
        Case { origin: SPIN, failure: Failure::Sqlite(SqliteError::DatabaseFull), kind: Unavailable },
        // PostgreSQL, a statement's server error: `QueryFailed` with the driver error's `{:?}`.
        // Two verbatim from PostgreSQL 15 through tokio-postgres 0.7 (as the domain's tests print them)...
        query_failed(
            SPIN_AND_HOST,
            r#"Error { kind: Db, cause: Some(DbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E42P01), message: "relation \"user_info\" does not exist", detail: None, hint: None, position: Some(Original(21)), where_: None, schema: None, table: None, column: None, datatype: None, constraint: None, file: Some("parse_relation.c"), line: Some(1392), routine: Some("parserOpenTable") }) }"#,
            MissingSchema,
        ),
        query_failed(
            SPIN_AND_HOST,
            r#"Error { kind: Db, cause: Some(DbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E23505), message: "duplicate key value violates unique constraint \"user_info_pkey\"", detail: Some("Key (user_id)=(00000000-0000-0000-0000-000000000001) already exists."), hint: None, position: None, where_: None, schema: Some("public"), table: Some("user_info"), column: None, datatype: None, constraint: Some("user_info_pkey"), file: Some("nbtinsert.c"), line: Some(664), routine: Some("_bt_check_unique") }) }"#,
            Constraint,
        ),
        // ... and the rest in the same shape.
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E42P01", "relation \"user_info\" does not exist"), MissingSchema),
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E42703", "column \"revision\" does not exist"), MissingSchema),
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E40001", "could not serialize access due to concurrent update"), Busy),
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E40P01", "deadlock detected"), Busy),
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E55P03", "could not obtain lock on row in relation \"user_info\""), Busy),
        query_failed(
            SPIN_AND_HOST,
            &server_error("ERROR", "E23505", "duplicate key value violates unique constraint \"user_info_pkey\""),
            Constraint,
        ),
        query_failed(SPIN_AND_HOST, &server_error("FATAL", "E57P01", "terminating connection due to administrator command"), Unavailable),
        query_failed(SPIN_AND_HOST, &server_error("FATAL", "E53300", "sorry, too many clients already"), Unavailable),
        query_failed(SPIN_AND_HOST, &server_error("ERROR", "E42601", "syntax error at or near \"SELEC\""), Other),
        query_failed(
            SPIN_AND_HOST,
            &server_error("ERROR", "Other(\"XX123\")", "a code the driver does not name"),
            Other,
        ),
        // ... the connection failing under a statement: no SQLSTATE.
        query_failed(SPIN_AND_HOST, "Error { kind: Closed, cause: None }", Unavailable),
        query_failed(
            SPIN_AND_HOST,
            "Error { kind: Io, cause: Some(Os { code: 104, kind: ConnectionReset, message: \"Connection reset by peer\" }) }",
            Unavailable,
        ),
        // ... a server error while rows stream (see the module doc).
        query_failed(
            "Spin 3.6.3, an error while rows stream: no SQLSTATE, so taken for an outage",
            "db error: FATAL: terminating connection due to administrator command\n\nCaused by:\n    \
             FATAL: terminating connection due to administrator command",
            Unavailable,
        ),
        query_failed(
            "Spin 4.0.2, an error while rows stream",
            &format!(
                "QueryFailed(DbError(DbError {{ as_text: {:?}, severity: \"ERROR\", code: \"40P01\", message: \"deadlock detected\", \
                 detail: None, extras: [] }}))",
                server_error("ERROR", "E40P01", "deadlock detected")
            ),
            Busy,
        ),
        // ... the runtime refusing the statement itself.
        query_failed(SPIN, "query result exceeds limit of 134217728 bytes", Other),
        query_failed(
            HOST,
            "query result exceeds limit of 134217728 bytes (128 MiB buffered per statement); fetch it in pages (LIMIT/OFFSET)",
            Other,
        ),
        query_failed(
            "the host, TRIGGER_KAFKA_ZERO_ROW_QUERY=error",
            "spin#3671: a spin:postgres `query` returned zero rows; Spin 4.0.0-4.0.2 never answer such a call \
             (the component hangs). Run statements without rows through `execute`, and write lookups that may match \
             nothing to return one row. Statement: SELECT 1 WHERE false",
            Other,
        ),
        // PostgreSQL, connecting.
        connection_failed(
            SPIN,
            "Error occurred while creating a new object: error connecting to server: Connection refused (os error 111)\n\n\
             Caused by:\n    0: error connecting to server: Connection refused (os error 111)\n    1: Connection refused (os error 111)",
            Unavailable,
        ),
        connection_failed(
            HOST,
            "Backend(Error { kind: Connect, cause: Some(Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }) })",
            Unavailable,
        ),
        connection_failed(HOST, "Timeout(Wait)", Unavailable),
        connection_failed(SPIN, "too many connections", Unavailable),
        connection_failed(SPIN_AND_HOST, "no connection found", Unavailable),
        connection_failed(SPIN_AND_HOST, "address postgres://db.internal:5432 is not permitted", Other),
        // PostgreSQL, the interface's other variants.
        Case { origin: SPIN, failure: Failure::Postgres(PgError::BadParameter("invalid parameter".into())), kind: Other },
        Case {
            origin: SPIN_AND_HOST,
            failure: Failure::Postgres(PgError::ValueConversionFailed("cannot convert".into())),
            kind: Other,
        },
        Case {
            origin: HOST,
            failure: Failure::Postgres(PgError::Other("too many open connections: 256 per instance".into())),
            kind: Other,
        },
    ]
}

/// Every kind occurs on each store: a kind that a store's cases lack is not
/// pinned for that store.
pub fn assert_every_kind_on_both_stores(cases: &[Case]) {
    for kind in [MissingSchema, Busy, Constraint, Unavailable, Other] {
        for sqlite in [true, false] {
            assert!(
                cases.iter().any(|c| c.kind == kind && c.is_sqlite() == sqlite),
                "no {} case of {kind:?}",
                if sqlite { "SQLite" } else { "PostgreSQL" }
            );
        }
    }
}
