//! The host's own answers and limits, against the real `hostile-http`
//! component (tests/guests/hostile-http) in the real host:
//! - every response the host makes itself (a trap, an instance that cannot
//!   be created, no route, a timeout) is JSON, as the README promises of
//!   every response, and names no internal cause;
//! - a call beyond the process's instance slots waits for one instead of
//!   failing;
//! - beyond `--http-max-connections`, a client waits in the listen backlog
//!   and is served once a connection closes (the README's claim);
//! - a pooled SQLite connection (the host's default) hands nothing an
//!   instance set on it to the next instance;
//! - a malformed `TRIGGER_KAFKA_*` number is a startup error naming it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{get, Host, Process};

/// An app serving the hostile component on `route`.
fn manifest(dir: &Path, route: &str) -> PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "hostile"
[[trigger.http]]
route = "{route}"
component = "hostile"
[component.hostile]
source = "{}"
sqlite_databases = ["default"]
"#,
        crate::support::test_guest("hostile-http", "hostile_http").display()
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn start(route: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), route);
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], env);
    (dir, host)
}

fn assert_json(reply: &crate::support::Reply, status: u16, body: serde_json::Value) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json", "{status}: {}", reply.body);
    assert_eq!(reply.json(), body);
}

#[test]
fn every_response_the_host_makes_itself_is_json() {
    let (_dir, mut host) = start("/app/...", &[("TRIGGER_HTTP_REQUEST_TIMEOUT", "2")]);
    let base = host.base_url.clone();
    assert_json(&get(&base, "/app/trap"), 500, json!({"detail": "Internal server error."}));
    assert_json(&get(&base, "/elsewhere"), 404, json!({"detail": "Not found."}));
    assert_json(&get(&base, "/app/loop"), 504, json!({"detail": "The request timed out."}));
    // The cause is in the log, not in the answer.
    let out = host.drain_output();
    assert!(out.contains("component hostile failed"), "{out}");
    assert_eq!(get(&base, "/app/ok").body, "ok");

    // An instance that cannot even be created (its memory's initial size
    // is past the limit) is a JSON 500 too.
    let (_dir, host) = start("/...", &[("SPIN_MAX_INSTANCE_MEMORY", "65536")]);
    assert_json(&get(&host.base_url, "/ok"), 500, json!({"detail": "Internal server error."}));
}

#[test]
fn calls_beyond_the_instance_slots_wait_for_one_instead_of_failing() {
    // 2 slots, 6 calls of 1.5 s at once: three rounds, every call answered.
    // (Without the wait, the pool's 1,000 slots and 1,024 connections let a
    // client get a 500 past 1,000 calls at once; 2 slots show the same.)
    let (_dir, mut host) = start("/...", &[("TRIGGER_KAFKA_INSTANCE_SLOTS", "2")]);
    let started = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let base = host.base_url.clone();
            std::thread::spawn(move || get(&base, "/sleep?ms=1500"))
        })
        .collect();
    let replies: Vec<(u16, String)> = calls.into_iter().map(|c| c.join().unwrap()).map(|r| (r.status, r.body)).collect();
    for reply in &replies {
        // The host's log says why, should one fail.
        assert_eq!((reply.0, reply.1.as_str()), (200, "slept"), "{replies:?}\n{}", host.drain_output());
    }
    let elapsed = started.elapsed();
    println!("6 calls of 1.5 s through 2 instance slots: {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(4400), "3 rounds of 1.5 s, so the slots held: {elapsed:?}");
}

/// `GET path` on a fresh connection that the client closes after the
/// answer; the status line and when it arrived.
fn one_request(addr: &str, path: &str, started: Instant) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    (answer.lines().next().unwrap_or("").to_owned(), started.elapsed())
}

#[test]
fn beyond_http_max_connections_a_client_waits_in_the_backlog_and_is_then_served() {
    let (_dir, host) = start("/...", &[("TRIGGER_HTTP_MAX_CONNECTIONS", "2")]);
    let addr = host.base_url.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let calls: Vec<_> = (0..3u64)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                // In order, so the third is the one beyond the cap.
                std::thread::sleep(Duration::from_millis(200 * i));
                one_request(&addr, "/sleep?ms=2000", started)
            })
        })
        .collect();
    let answers: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    println!("{answers:?}");
    for (status, _) in &answers {
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    let (_, third) = answers[2];
    assert!(third >= Duration::from_millis(3900), "the third waited for a connection to close: {third:?}");
}

#[test]
fn pooled_sqlite_connections_carry_nothing_from_one_instance_to_the_next() {
    // The host's default mode, set explicitly (the harness runs Spin's).
    let (_dir, host) = start("/...", &[("TRIGGER_KAFKA_SQLITE_CONNECTIONS", "pooled")]);
    // Each instance finds a fresh connection's state, then leaves a TEMP
    // table and a cache_size behind.
    for _ in 0..5 {
        let reply = get(&host.base_url, "/sqlite-leak");
        assert_eq!((reply.status, reply.body.as_str()), (200, "temp=0 cache=-2000"));
    }
}

#[test]
fn a_malformed_number_variable_is_a_startup_error_naming_it() {
    for (variable, value) in [
        ("TRIGGER_KAFKA_PG_POOL_SIZE", "32connections"),
        ("TRIGGER_KAFKA_MEMORY_KEEP_RESIDENT", "4MiB"),
        ("TRIGGER_KAFKA_INSTANCE_SLOTS", "0"),
    ] {
        crate::support::ensure_built();
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), "/...");
        let mut host = Process::spawn(
            std::process::Command::new(crate::support::host_binary())
                .arg("-f")
                .arg(&manifest)
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", crate::support::free_port()))
                .arg("--state-dir")
                .arg(dir.path().join(".spin"))
                .env(variable, value),
        );
        let status = host.wait_exit(Duration::from_secs(60));
        assert!(!status.success(), "{variable}={value}");
        let out = host.output();
        assert!(out.contains(&format!("{variable}=\"{value}\"")) && out.contains("expected a whole number"), "{out}");
    }
}
