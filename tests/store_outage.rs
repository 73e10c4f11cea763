//! A database outage, as a client expects it: a real PostgreSQL of this test's
//! own, crashed and restarted (`pg_ctl restart -m immediate`) while a client
//! keeps calling `GET /user` on the real host and `user-http` component.
//! During the outage the answer is 503 `{"detail": "Service temporarily
//! unavailable."}` with `Retry-After`, never the database's own text; the
//! connections the crash broke are discarded, and service is back within a
//! second of the database's return.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{post_json, AppSpec, Host, Store};

const JOHN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// A PostgreSQL server of this test alone (it is crashed): its port and URL.
fn own_server() -> (u16, String) {
    let port = support::free_port();
    let out = Command::new(support::root().join("scripts/postgres"))
        .args(["start", &port.to_string(), "--owner", &std::process::id().to_string()])
        .output()
        .expect("run scripts/postgres");
    assert!(out.status.success(), "could not start PostgreSQL: {}", String::from_utf8_lossy(&out.stderr));
    (port, String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

struct Answer {
    sent: Instant,
    status: Option<u16>,
    retry_after: Option<String>,
    body: String,
}

fn get_john(agent: &ureq::Agent, base: &str) -> Answer {
    let sent = Instant::now();
    match agent.get(format!("{base}/user?user_id={JOHN}")).call() {
        Ok(mut response) => Answer {
            sent,
            status: Some(response.status().as_u16()),
            retry_after: response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()),
            body: response.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(e) => Answer { sent, status: None, retry_after: None, body: e.to_string() },
    }
}

#[test]
fn a_postgres_crash_is_503_while_down_and_2xx_within_a_second_of_its_return() {
    let (port, server) = own_server();
    let name = support::unique("outage").replace('-', "_");
    support::postgres::client(&server).batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let store = Store::Postgres(support::postgres::with_database(&server, &name));
    let dir = tempfile::tempdir().unwrap();
    let manifest = AppSpec::default().write_manifest(dir.path());
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], &env);
    let base = host.base_url.clone();
    let created = post_json(&base, &serde_json::json!({"user_id": JOHN, "first_name": "John"}));
    assert_eq!(created.status, 201, "{}", created.body);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let load = std::thread::spawn({
        let base = base.clone();
        move || {
            let until = Instant::now() + Duration::from_secs(6);
            let mut answers = Vec::new();
            while Instant::now() < until {
                answers.push(get_john(&agent, &base));
                std::thread::sleep(Duration::from_millis(10));
            }
            answers
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let crashed = Instant::now();
    let status = Command::new(support::root().join("scripts/postgres"))
        .args(["crash-restart", &port.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "crash-restart failed");
    let back = Instant::now();
    let answers = load.join().unwrap();

    let mut unavailable = 0;
    for a in &answers {
        match a.status {
            Some(200) => {}
            Some(503) => {
                unavailable += 1;
                assert_eq!(a.retry_after.as_deref(), Some("1"), "503 without Retry-After");
                let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                assert_eq!(body, serde_json::json!({"detail": "Service temporarily unavailable."}));
            }
            other => panic!("unexpected answer {other:?} during the outage: {}", a.body),
        }
    }
    // The outage was seen (the crash cut every pooled connection).
    assert!(unavailable > 0, "no request saw the outage: the test proves nothing");
    let first_ok_after = answers.iter().find(|a| a.sent >= back && a.status == Some(200)).map(|a| a.sent - back);
    // Every request sent a second or more after the database accepted
    // connections again was served.
    let late_failures: Vec<_> = answers
        .iter()
        .filter(|a| a.sent >= back + Duration::from_secs(1) && a.status != Some(200))
        .map(|a| (a.sent - back, a.status))
        .collect();
    println!(
        "postgres crash-restart took {:?}; {} requests, {unavailable} answered 503; first 200 {:?} after the database's return",
        back - crashed,
        answers.len(),
        first_ok_after
    );
    assert!(late_failures.is_empty(), "failures more than a second after the database's return: {late_failures:?}");
    assert!(answers.iter().filter(|a| a.sent >= back + Duration::from_secs(1)).count() > 10);
    // The cause is logged server-side, not sent to the client.
    let out = host.drain_output();
    assert!(out.contains("user-http: database unavailable"), "{out}");
}
