//! The one place that turns a backend's native error code into a
//! [`DbErrorKind`]. Each adapter calls in here with what its backend carries:
//! PostgreSQL's SQLSTATE (as a code from the `postgres` crate, or inside the
//! text of Spin's `pg3` `QueryFailed`, which flattens the host's error with
//! `{:?}`), and SQLite's message (Spin's `sqlite` interface passes only
//! `Io(String)`, and SQLite reports a missing table with the generic
//! SQLITE_ERROR code, so its text is the only carrier).

use crate::db::DbErrorKind;

/// The kind of a PostgreSQL SQLSTATE (five characters; the first two are its class).
pub(crate) fn sqlstate_kind(code: &str) -> DbErrorKind {
    match code {
        // undefined_table, undefined_column
        "42P01" | "42703" => DbErrorKind::MissingSchema,
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => DbErrorKind::Busy,
        // 08: connection exception; 53: insufficient resources; 57: operator
        // intervention (admin_shutdown, cannot_connect_now, ...)
        _ if ["08", "53", "57"].iter().any(|class| code.starts_with(class)) => DbErrorKind::Unavailable,
        // 23: integrity constraint violation
        _ if code.starts_with("23") => DbErrorKind::Constraint,
        _ => DbErrorKind::Other,
    }
}

/// The SQLSTATE inside the `{:?}` text of a `tokio_postgres::Error`, which
/// is what Spin's host (and ours) puts in `pg3`'s `QueryFailed`: the
/// server's error prints its code as `SqlState(E42P01)`, or as
/// `SqlState(Other("XX123"))` for one the client does not name.
pub(crate) fn sqlstate_in(text: &str) -> Option<&str> {
    let after = |marker: &str| text.find(marker).map(|at| &text[at + marker.len()..]);
    let code = after("SqlState(E").or_else(|| after("SqlState(Other(\""))?;
    let code = code.get(..5)?;
    code.bytes().all(|b| b.is_ascii_alphanumeric()).then_some(code)
}

/// Texts a runtime writes into `QueryFailed` about the statement itself, not
/// the connection: the result is over its limit (Spin 3.6/4.0: "query result
/// exceeds limit of N bytes", the host likewise), or the host's zero-row
/// check refused it (spin#3671). The same statement fails again.
const STATEMENT_REFUSALS: &[&str] = &["query result exceeds limit of", "spin#3671"];

/// The kind of the text of a failed PostgreSQL statement, as Spin's `pg3`
/// `QueryFailed` (and this project's host) carry it: the `{:?}` text of a
/// `tokio_postgres::Error`. Without a SQLSTATE in it, and not a refusal of
/// the statement by the runtime, the connection failed (closed, reset, the
/// server gone): an outage.
pub(crate) fn query_failed_kind(text: &str) -> DbErrorKind {
    match sqlstate_in(text) {
        Some(code) => sqlstate_kind(code),
        None if STATEMENT_REFUSALS.iter().any(|sign| text.contains(sign)) => DbErrorKind::Other,
        None => DbErrorKind::Unavailable,
    }
}

/// The kind of an SQLite error message (as rusqlite and Spin's host word it).
#[cfg_attr(not(any(test, feature = "spin-sqlite")), allow(dead_code))]
pub(crate) fn sqlite_message_kind(message: &str) -> DbErrorKind {
    let has = |signs: &[&str]| signs.iter().any(|s| message.contains(s));
    if has(&["no such table", "no such column", "has no column named"]) {
        DbErrorKind::MissingSchema
    } else if has(&["database is locked", "database table is locked"]) {
        DbErrorKind::Busy
    } else if has(&["constraint failed"]) {
        DbErrorKind::Constraint
    } else if has(&["disk I/O error", "unable to open database file", "database or disk is full"]) {
        DbErrorKind::Unavailable
    } else {
        DbErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(sqlstate_kind("42P01"), DbErrorKind::MissingSchema);
        assert_eq!(sqlstate_kind("42703"), DbErrorKind::MissingSchema);
        assert_eq!(sqlstate_kind("40001"), DbErrorKind::Busy);
        assert_eq!(sqlstate_kind("57P01"), DbErrorKind::Unavailable);
        assert_eq!(sqlstate_kind("08006"), DbErrorKind::Unavailable);
        assert_eq!(sqlstate_kind("23505"), DbErrorKind::Constraint);
        assert_eq!(sqlstate_kind("42601"), DbErrorKind::Other);
    }

    #[test]
    fn the_sqlstate_is_found_in_a_flattened_client_error() {
        // The shape `format!("{e:?}")` gives a tokio_postgres server error.
        let flat = r#"Error { kind: Db, cause: Some(DbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E42P01), message: "relation \"user_info\" does not exist", detail: None }) }"#;
        assert_eq!(sqlstate_in(flat), Some("42P01"));
        assert_eq!(sqlstate_in(r#"code: SqlState(Other("XX123")), message"#), Some("XX123"));
        // A closed connection carries no SQLSTATE.
        assert_eq!(sqlstate_in("Error { kind: Closed, cause: None }"), None);
        assert_eq!(sqlstate_in("SqlState(E42"), None);
    }

    #[test]
    fn sqlite_messages_map_to_kinds() {
        assert_eq!(sqlite_message_kind("no such table: user_info"), DbErrorKind::MissingSchema);
        assert_eq!(sqlite_message_kind("table user_info has no column named revision"), DbErrorKind::MissingSchema);
        assert_eq!(sqlite_message_kind("database is locked"), DbErrorKind::Busy);
        assert_eq!(sqlite_message_kind("UNIQUE constraint failed: user_info.user_id"), DbErrorKind::Constraint);
        assert_eq!(sqlite_message_kind("near \"SELEC\": syntax error"), DbErrorKind::Other);
    }
}
