//! A guest cannot make the host buffer an unbounded PostgreSQL result: the
//! host streams a `query`'s rows and fails the call with `query-failed`
//! naming the limit once they pass 128 MiB (the same limit as SQLite's, and
//! as Spin's `MAX_HOST_BUFFERED_BYTES`). Driven through the real interface by
//! the pg-query test guest (tests/guests/pg-query) in the real host, on a
//! real PostgreSQL; the rows are made by the server (`generate_series`), so
//! nothing large crosses the test's own side.


use crate::support::{Host, Store};

fn run(host: &Host, kind: &str, statement: &str) -> (u16, String) {
    let reply = crate::support::http().post(format!("{}/{kind}", host.base_url)).send(statement).unwrap();
    let status = reply.status().as_u16();
    (status, reply.into_body().read_to_string().unwrap())
}

/// `n` rows of 1 MiB each.
fn mebibyte_rows(n: usize) -> String {
    format!("SELECT repeat('x', 1048576) FROM generate_series(1, {n})")
}

#[test]
#[cfg_attr(test_spin, ignore = "host-only: the limit is this host's")]
fn a_query_past_the_buffered_bytes_limit_fails_naming_it_and_the_host_serves_on() {
    let store = Store::postgres();
    let Store::Postgres(url) = &store else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::support::postgres::pg_query_app(dir.path(), url);
    // One pooled connection: the request after the failed one gets the very
    // connection whose result was cut off, so it must be usable again.
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], &[("TRIGGER_KAFKA_PG_POOL_SIZE", "1")]);

    assert_eq!(run(&host, "query", &mebibyte_rows(8)), (200, "8 rows".into()), "within the limit, rows arrive");
    let (status, body) = run(&host, "query", &mebibyte_rows(200));
    assert_eq!(status, 500, "200 MiB of rows must not reach the guest: {body}");
    assert!(body.starts_with("Error::QueryFailed("), "the interface's query-failed: {body}");
    assert!(body.contains("query result exceeds limit of 134217728 bytes"), "Spin 4.0's words: {body}");
    assert!(body.contains("128 MiB"), "{body}");

    // The host serves on, on the same connection, which answers in order.
    assert_eq!(run(&host, "query", "SELECT 1"), (200, "1 rows".into()));
    assert_eq!(run(&host, "script", "query SELECT 41 + 1 AS n"), (200, "Some([DbValue::Int32(42)])".into()));
    host.terminate();
}
