//! A PostgreSQL connection given back mid-transaction reaches the next
//! instance rolled back, however the transaction was opened: the host asks
//! the server, it does not read the guest's SQL. Driven by the pg-query test
//! guest in the real host on a real PostgreSQL.


use std::time::Duration;

use crate::support::{Host, Store};

fn script(host: &Host, lines: &str) -> String {
    let reply = crate::support::http().post(format!("{}/script", host.base_url)).send(lines).unwrap();
    let status = reply.status().as_u16();
    let body = reply.into_body().read_to_string().unwrap();
    assert_eq!(status, 200, "{lines}: {body}");
    body
}

#[test]
fn a_transaction_left_open_by_an_instance_is_rolled_back_before_the_next() {
    let Store::Postgres(url) = Store::postgres() else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::support::postgres::pg_query_app(dir.path(), &url);
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], &[]);

    // An instance opens a transaction that no SQL-text rule would spot,
    // creates a temporary table in it, and ends without COMMIT.
    let first = script(
        &host,
        "query SELECT pg_backend_pid()::text\nexecute /* x */ BEGIN\nexecute CREATE TEMP TABLE leaked (a int)",
    );
    let pid: String = first.lines().next().unwrap().chars().filter(char::is_ascii_digit).collect();
    assert!(!pid.is_empty(), "{first}");

    // The next instances on the same backend (the pool hands it out again)
    // see no transaction id already assigned (the leaked one had one, for
    // its CREATE) and no table: the transaction was rolled back.
    let mut reused = false;
    for _ in 0..20 {
        let next = script(
            &host,
            "query SELECT pg_backend_pid()::text, (pg_current_xact_id_if_assigned() IS NULL)::text, (to_regclass('pg_temp.leaked') IS NULL)::text",
        );
        if next.contains(&format!(r#"Str("{pid}")"#)) {
            assert!(next.matches(r#"Str("true")"#).count() == 2, "an open transaction reached the next instance: {next}");
            reused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reused, "the pool never handed the backend {pid} out again");
    host.terminate();
}
