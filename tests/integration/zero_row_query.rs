//! The host flags a `spin:postgres` `query` that yields no rows, which Spin
//! 4.0.0-4.0.2 never answer (spin#3671): a component relying on it works in
//! this host and hangs there. Driven through the real interface by a test
//! guest (tests/guests/pg-query) that runs the statement it is sent, in the
//! real host, on a real PostgreSQL. Host-only: on those Spin versions the
//! zero-row call would simply hang.


use std::time::Duration;

use crate::support::{Host, Store};

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
    let store = Store::postgres();
    let dir = tempfile::tempdir().unwrap();
    let Store::Postgres(url) = &store else { unreachable!() };
    let manifest = crate::support::postgres::pg_query_app(dir.path(), url);
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], env);
    (dir, host)
}

fn run(host: &Host, kind: &str, statement: &str) -> (u16, String) {
    let reply = crate::support::http().post(format!("{}/{kind}", host.base_url)).send(statement).unwrap();
    let status = reply.status().as_u16();
    (status, reply.into_body().read_to_string().unwrap())
}

#[test]
#[cfg_attr(test_spin, ignore = "host-only: on Spin 4.0.0-4.0.2 the zero-row query hangs")]
fn a_zero_row_query_fails_naming_spin_3671_and_fails_the_test() {
    // The harness's default for every process: TRIGGER_KAFKA_ZERO_ROW_QUERY=error.
    let (_dir, mut host) = start(&[]);
    assert_eq!(run(&host, "query", "SELECT 1"), (200, "1 rows".into()), "a query with a row answers");
    assert_eq!(run(&host, "execute", "CREATE TABLE t (a INT)"), (200, "0 rows affected".into()));
    for statement in ["SELECT a FROM t", "BEGIN", "CREATE TABLE u (a INT)"] {
        let (status, body) = run(&host, "query", statement);
        assert_eq!(status, 500, "{statement}: {body}");
        assert!(body.contains("spin#3671"), "{statement}: the guest's error names the Spin issue: {body}");
        let line = host.wait_for_output(&format!("Statement: {statement}"), Duration::from_secs(10));
        assert!(line.contains("spin#3671"), "{line}");
    }
    // The same host output fails any test whose process it comes from.
    let reported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(host)));
    let panic = reported.expect_err("a process that reported a zero-row query fails the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("3 zero-row PostgreSQL `query` call(s)"), "{message}");
}

#[test]
#[cfg_attr(test_spin, ignore = "host-only: on Spin 4.0.0-4.0.2 the zero-row query hangs")]
fn without_the_test_setting_a_zero_row_query_answers_and_warns_once() {
    // A user's run: the variable unset means warn (a deployment keeps working).
    let (_dir, mut host) = start(&[("TRIGGER_KAFKA_ZERO_ROW_QUERY", "")]);
    host.expect_zero_row_query_reports();
    for _ in 0..3 {
        assert_eq!(run(&host, "query", "SELECT 1 WHERE false"), (200, "0 rows".into()));
    }
    host.wait_for_output("Statement: SELECT 1 WHERE false", Duration::from_secs(10));
    let output = host.drain_output();
    assert_eq!(output.matches("spin#3671").count(), 1, "warned once per statement:\n{output}");
    assert!(output.contains("WARN"), "{output}");
}
