//! A guest that misbehaves cannot take the host down: the real `hostile-http`
//! component (tests/guests/hostile-http) in the real host, over real sockets.
//! A request to a route that loops forever times out with a JSON 504 while
//! other requests are served; SIGTERM during such a loop still exits within
//! the shutdown grace; an instance allocating past `--max-instance-memory`
//! fails alone.


use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{get, Host};

fn build_guest() -> PathBuf {
    crate::support::test_guest("hostile-http", "hostile_http")
}

/// An app whose every route is the hostile component.
fn manifest(dir: &Path) -> PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "hostile"
[[trigger.http]]
route = "/..."
component = "hostile"
[component.hostile]
source = "{}"
sqlite_databases = ["default"]
"#,
        build_guest().display()
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path());
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], env);
    (dir, host)
}

#[test]
fn a_looping_route_times_out_while_other_requests_are_served() {
    let (_dir, host) = start(&[("TRIGGER_HTTP_REQUEST_TIMEOUT", "3")]);
    let base = host.base_url.clone();
    // More loops than the host has worker threads: without interruption
    // they would occupy every one of them.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let loops: Vec<_> = (0..workers)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let reply = get(&base, "/loop");
                (reply, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // While every loop runs, other requests are answered (each within the
    // client's 30 s timeout, which a stalled host would exceed).
    for _ in 0..10 {
        let reply = get(&base, "/ok");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, "ok");
    }
    for handle in loops {
        let (reply, elapsed) = handle.join().unwrap();
        assert_eq!(reply.status, 504, "{}", reply.body);
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(reply.json(), serde_json::json!({"detail": "The request timed out."}));
        assert!(elapsed >= Duration::from_secs(3), "answered before the deadline: {elapsed:?}");
        println!("looping request answered 504 after {elapsed:?} (deadline 3 s)");
    }
    // And the host keeps serving afterwards.
    assert_eq!(get(&base, "/ok").status, 200);
    let mut host = host;
    let out = host.drain_output();
    assert!(out.contains("did not answer /loop within the request timeout"), "{out}");
}

#[test]
fn sigterm_during_an_endless_loop_exits_within_the_shutdown_grace() {
    // The default request deadline (30 s) is longer than the shutdown grace
    // (10 s): the grace is what bounds the exit.
    let (_dir, mut host) = start(&[]);
    let base = host.base_url.clone();
    let looping = std::thread::spawn(move || {
        let _ = crate::support::http().get(format!("{base}/loop")).call();
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = host.terminate_within(Duration::from_secs(15));
    let elapsed = started.elapsed();
    println!("SIGTERM with a guest looping: exited ({status}) after {elapsed:?}");
    assert!(status.success(), "{status}");
    let _ = looping.join();
}

#[test]
fn an_instance_allocating_past_max_instance_memory_fails_alone() {
    let (_dir, host) = start(&[("SPIN_MAX_INSTANCE_MEMORY", &(16u64 << 20).to_string())]);
    let base = &host.base_url;
    let small = get(base, "/alloc?mib=4");
    assert_eq!(small.status, 200, "{}", small.body);
    let big = get(base, "/alloc?mib=64");
    assert_eq!(big.status, 500, "an allocation past the 16 MiB limit must fail: {}", big.body);
    // The failed instance took nothing down with it.
    assert_eq!(get(base, "/alloc?mib=4").status, 200);
    assert_eq!(get(base, "/ok").status, 200);
}

#[test]
fn a_guest_that_asks_for_too_much_gets_errors_and_the_host_serves_on() {
    let (_dir, host) = start(&[]);
    let get = |path: &str| {
        let reply = crate::support::http().get(format!("{}{path}", host.base_url)).call().unwrap();
        let status = reply.status().as_u16();
        (status, reply.into_body().read_to_string().unwrap())
    };
    // Within the limits, both work.
    assert_eq!(get("/sqlite-open?n=256"), (200, "opened 256".into()));
    assert_eq!(get("/sqlite-big?mib=4"), (200, "4 rows".into()));
    // Past them: a clear error to the guest.
    let (status, body) = get("/sqlite-open?n=300");
    assert_eq!(status, 500);
    assert!(body.contains("open 257 failed") && body.contains("too many open connections: 256 per instance"), "{body}");
    let (status, body) = get("/sqlite-big?mib=200");
    assert_eq!(status, 500);
    assert!(body.contains("query result exceeds limit of 134217728 bytes"), "Spin 4.0's words: {body}");
    assert!(body.contains("128 MiB"), "{body}");
    // The host serves on.
    assert_eq!(get("/"), (200, "ok".into()));
    host.terminate();
}
