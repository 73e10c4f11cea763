//! Kafka-triggered updates, end to end: a real broker, the real `user-kafka`
//! component in the real host, the real SQLite file the HTTP side reads (and
//! the README example also on a real PostgreSQL).


use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use crate::support::kafka::{brokers, consume_all, create_topic, produce, records_in};
use crate::support::{
    eventually, get, post_json, revisions, try_revisions, user_in_db, AppSpec, Host, Launcher, Protocol, Store,
};

struct App {
    _dir: tempfile::TempDir,
    spec: AppSpec,
    manifest: std::path::PathBuf,
    state: std::path::PathBuf,
    store: Store,
}

impl App {
    fn new(spec: AppSpec) -> App {
        App::on(spec, Store::Sqlite)
    }

    fn on(spec: AppSpec, store: Store) -> App {
        create_topic(&spec.topic, 3);
        let dir = tempfile::tempdir().unwrap();
        let manifest = spec.write_manifest(dir.path());
        let state = dir.path().join(".spin");
        App { _dir: dir, spec, manifest, state, store }
    }

    fn start(&self, triggers: &[&str]) -> Host {
        let env = self.store.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Host::start(&self.manifest, &self.state, triggers, &env)
    }

    fn db(&self) -> std::path::PathBuf {
        self.state.join("sqlite_db.db")
    }

    fn send(&self, records: &[(Option<String>, Vec<u8>)]) {
        produce(&self.spec.topic, records);
    }
}

mod tombstones;

fn keyed(user_id: &str, body: serde_json::Value) -> (Option<String>, Vec<u8>) {
    (Some(user_id.to_owned()), body.to_string().into_bytes())
}

#[test]
fn seed_example_message_updates_what_get_returns() {
    seed_example_message_updates_what_get_returns_on(Store::Sqlite);
}

#[test]
fn seed_example_message_updates_what_get_returns_on_postgres() {
    seed_example_message_updates_what_get_returns_on(Store::postgres());
}

fn seed_example_message_updates_what_get_returns_on(store: Store) {
    let app = App::on(AppSpec::default(), store);
    let host = app.start(&["http", "kafka"]);
    let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let created = post_json(&host.base_url, &json!({"user_id": id, "first_name": "John", "last_name": "Doe",
        "email": "john.doe@example.com", "phone_number": "1234567890"}));
    assert_eq!(created.status, 201);
    app.send(&[keyed(id, json!({"user_id": id, "email": "john.new@example.com", "phone_number": "0987654321"}))]);
    eventually("the Kafka update to reach GET /user", Duration::from_secs(60), || {
        get(&host.base_url, &format!("/user?user_id={id}")).json()["email"] == "john.new@example.com"
    });
    assert_eq!(
        get(&host.base_url, &format!("/user?user_id={id}")).json(),
        json!({"user_id": id, "first_name": "John", "last_name": "Doe",
               "email": "john.new@example.com", "phone_number": "0987654321"})
    );
}

/// A user who runs `RUST_LOG=info spin up --listen …`. Spin 4.0.2 cannot
/// read the triggers' launch metadata then (its own log lines share the
/// stderr it parses) and gives every flag to every trigger; the plugin
/// ignores the HTTP trigger's flags and runs on (`cli::HttpTriggerFlags`).
/// On the host it is a plain run with RUST_LOG set.
#[test]
fn a_bare_rust_log_info_still_runs_both_triggers() {
    let app = App::new(AppSpec::default());
    let mut host = Host::start(&app.manifest, &app.state, &["http", "kafka"], &[("RUST_LOG", "info")]);
    let id = uuid::Uuid::new_v4().to_string();
    app.send(&[keyed(&id, json!({"user_id": id, "first_name": "Rusty"}))]);
    eventually("the Kafka record to reach GET /user", Duration::from_secs(60), || {
        get(&host.base_url, &format!("/user?user_id={id}")).json()["first_name"] == "Rusty"
    });
    if let Launcher::Spin(_) = Launcher::current() {
        // The premise: Spin did fall back. If a later Spin reads the metadata
        // despite RUST_LOG, this test no longer checks the plugin's part.
        host.wait_for_output("allowing all", Duration::from_secs(5));
        host.wait_for_output("ignoring --listen: flags of Spin's HTTP trigger", Duration::from_secs(5));
    }
}

#[test]
fn thousand_messages_keep_the_last_value_per_key() {
    let app = App::new(AppSpec::default());
    let users: Vec<String> = (0..60).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut rng = rand::rng();
    let mut last: HashMap<String, String> = HashMap::new();
    let records: Vec<_> = (0..1000)
        .map(|seq| {
            let user = &users[rng.random_range(0..users.len())];
            let value = format!("v{seq:04}");
            last.insert(user.clone(), value.clone());
            keyed(user, json!({"user_id": user, "first_name": value}))
        })
        .collect();
    app.send(&records);
    let host = app.start(&["kafka"]);
    eventually("every user's last value", Duration::from_secs(90), || {
        last.iter().all(|(u, v)| user_in_db(&app.db(), u).is_some_and(|row| row["first_name"] == *v))
    });
    drop(host);
}

#[test]
fn poison_messages_are_dead_lettered_and_never_stall_a_partition() {
    let app = App::new(AppSpec::default());
    let good: Vec<String> = (0..30).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let poison: Vec<(Option<String>, Vec<u8>)> = vec![
        (Some("k-json".into()), b"{not json".to_vec()),
        (Some("k-uuid".into()), json!({"user_id": "not-a-uuid"}).to_string().into_bytes()),
        (Some("k-types".into()), json!({"user_id": good[0], "email": 42.5, "first_name": ["x"]}).to_string().into_bytes()),
        (Some("k-big".into()), vec![b'x'; 2 * 1024 * 1024]),
        (Some("k-empty".into()), Vec::new()),
        (None, json!(["not", "an", "object"]).to_string().into_bytes()),
    ];
    // Every partition gets poison between good records: the keys spread them.
    let mut records = Vec::new();
    for (i, user) in good.iter().enumerate() {
        records.push(keyed(user, json!({"user_id": user, "last_name": format!("good{i}")})));
        if i % 5 == 2 {
            records.push(poison[i / 5].clone());
        }
    }
    app.send(&records);
    let host = app.start(&["kafka"]);
    eventually("all good records applied", Duration::from_secs(90), || {
        good.iter().enumerate().all(|(i, u)| user_in_db(&app.db(), u).is_some_and(|r| r["last_name"] == format!("good{i}")))
    });
    let dead = consume_all(&app.spec.dead_letter_topic, poison.len(), Duration::from_secs(60));
    assert_eq!(dead.len(), poison.len(), "every poison record is in the dead-letter topic");
    for (key, value) in &poison {
        let d = dead.iter().find(|d| d.key.as_deref() == key.as_deref().map(str::as_bytes)).expect("dead-lettered");
        assert_eq!(&d.value, value, "value kept for key {key:?}");
        assert_eq!(d.header("origin"), Some("test"), "original headers kept");
        assert_eq!(d.header("kafka_dlt_original_topic"), Some(app.spec.topic.as_str()));
        assert_eq!(d.header("kafka_dlt_error_kind"), Some("permanent"));
        assert!(d.header("kafka_dlt_original_partition").unwrap().parse::<i32>().is_ok());
        assert!(d.header("kafka_dlt_original_offset").unwrap().parse::<i64>().is_ok());
        assert!(!d.header("kafka_dlt_error").unwrap().is_empty());
    }
    let types = dead.iter().find(|d| d.key.as_deref() == Some(b"k-types".as_slice())).unwrap();
    let error = types.header("kafka_dlt_error").unwrap();
    assert!(error.contains("email") && error.contains("first_name"), "error names the fields: {error}");
    drop(host);
}

crate::under_both_protocols!(sigterm_and_kill_mid_stream_lose_nothing);
fn sigterm_and_kill_mid_stream_lose_nothing(protocol: Protocol) {
    let app = App::new(AppSpec { protocol, ..AppSpec::default() });
    let users: Vec<String> = (0..600).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let records: Vec<_> = users.iter().map(|u| keyed(u, json!({"user_id": u, "email": "a@example.com"}))).collect();
    let count = |app: &App| -> usize {
        rusqlite::Connection::open(app.db())
            .and_then(|c| c.query_row("SELECT count(*) FROM user_info", [], |r| r.get::<_, i64>(0)))
            .map_or(0, |n| n as usize)
    };
    app.send(&records[..300]);
    let host = app.start(&["kafka"]);
    eventually("some progress", Duration::from_secs(60), || count(&app) > 0);
    let status = host.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    app.send(&records[300..]);
    let host = app.start(&["kafka"]);
    eventually("more progress", Duration::from_secs(60), || count(&app) > 300);
    host.kill(); // a crash: uncommitted records are redelivered

    let host = app.start(&["kafka"]);
    eventually("every record applied", Duration::from_secs(90), || count(&app) == users.len());
    drop(host);
    // Each once: the records redelivered after the kill were skipped.
    let revisions = revisions(&app.db());
    assert_eq!(revisions.len(), users.len());
    assert_eq!(revisions.values().filter(|r| **r != 1).count(), 0);
    // Nothing was dead-lettered on the way.
    assert_eq!(records_in(&brokers(), &app.spec.dead_letter_topic), 0);
}

#[test]
fn concurrent_http_and_kafka_writers_share_the_database() {
    let app = App::new(AppSpec::default());
    let users: Vec<String> = (0..100).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    // Kafka owns first_name, HTTP owns email, on the same users, at the same time,
    // from two processes on one SQLite file (as `spin up` runs them).
    let kafka_records: Vec<_> = (0..1000)
        .map(|i| {
            let u = &users[i % users.len()];
            keyed(u, json!({"user_id": u, "first_name": format!("k{}", i / users.len())}))
        })
        .collect();
    let http_host = app.start(&["http"]);
    let kafka_host = app.start(&["kafka"]);
    let base = http_host.base_url.clone();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = base.clone();
            let users = users.clone();
            std::thread::spawn(move || {
                for round in 0..3 {
                    for u in users.iter().skip(w).step_by(4) {
                        let reply = post_json(&base, &json!({"user_id": u, "email": format!("r{round}@example.com")}));
                        assert!(reply.status == 200 || reply.status == 201, "{}: {}", reply.status, reply.body);
                    }
                }
            })
        })
        .collect();
    app.send(&kafka_records);
    for w in writers {
        w.join().unwrap();
    }
    eventually("Kafka's last values", Duration::from_secs(90), || {
        users.iter().all(|u| user_in_db(&app.db(), u).is_some_and(|r| r["first_name"] == "k9"))
    });
    for u in &users {
        let row = user_in_db(&app.db(), u).unwrap();
        assert_eq!(row["email"], "r2@example.com", "HTTP's last value survives Kafka's updates");
    }
    let mut http_host = http_host;
    let mut kafka_host = kafka_host;
    for out in [http_host.drain_output(), kafka_host.drain_output()] {
        assert!(!out.contains("database is locked"), "no lock errors:\n{out}");
        assert!(!out.contains("retrying"), "no retries:\n{out}");
    }
    assert_eq!(records_in(&brokers(), &app.spec.dead_letter_topic), 0, "nothing dead-lettered");
}

// The whole broker goes away for 30 s while records are still being produced,
// then comes back with its data: the trigger rides it out in the same process,
// says it is not ready meanwhile, and applies every record exactly once.
// Once per protocol (one broker of the test's own, so one after the other); the
// consumer-protocol run loses the broker to a crash, the classic run to a clean stop.
#[test]
fn the_broker_down_for_30_s_mid_stream_loses_and_repeats_nothing() {
    use crate::support::kafka::{broker_script, produce_to, test_port};
    // A broker of this test's own: stopping the shared one would disturb the others.
    // Three above the shared broker's port, so parallel suites on other ports do not meet.
    let port = (test_port() + 3).to_string();
    let port = port.as_str();
    let brokers = format!("127.0.0.1:{port}");
    broker_script(&["reset", port]);
    let _broker = crate::support::kafka::OwnBrokers(vec![port.to_owned()]);
    broker_script(&["start", port]);
    for (protocol, how) in [(Protocol::Consumer, "kill"), (Protocol::Classic, "stop")] {
        let spec = AppSpec { protocol, ..AppSpec::default() };
        broker_script(&["create-topic", &spec.topic, "3", port]);
        let dir = tempfile::tempdir().unwrap();
        let manifest = spec.write_manifest(dir.path());
        let state = dir.path().join(".spin");
        let db = state.join("sqlite_db.db");
        const ROUNDS: usize = 5;
        let users: Vec<String> = (0..200).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let records: Vec<_> = (0..ROUNDS)
            .flat_map(|r| users.iter().map(move |u| keyed(u, json!({"user_id": u, "phone_number": format!("555 010{r}")}))))
            .collect();
        let metrics = crate::support::free_port();
        let listen = format!("127.0.0.1:{metrics}");
        let readyz = || crate::support::get(&format!("http://{listen}"), "/readyz");
        let mut host = Host::start(
            &manifest,
            &state,
            &["kafka"],
            &[("SPIN_VARIABLE_KAFKA_BROKERS", brokers.as_str()), ("TRIGGER_KAFKA_METRICS_LISTEN", listen.as_str())],
        );
        eventually("/readyz ready", Duration::from_secs(60), || readyz().status == 200);

        // Produced in paced chunks from a thread, so the broker goes while records
        // are still arriving; the producer waits for it to come back.
        let stream = {
            let (brokers, topic, records) = (brokers.clone(), spec.topic.clone(), records.clone());
            std::thread::spawn(move || {
                for chunk in records.chunks(50) {
                    produce_to(&brokers, &topic, chunk);
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        eventually("a first part applied", Duration::from_secs(60), || try_revisions(&db).is_some_and(|r| r.len() >= 100));
        broker_script(&[how, port]);
        let down = std::time::Instant::now();
        let mut during = Vec::new();
        while down.elapsed() < Duration::from_secs(30) {
            let reply = readyz();
            during.push((reply.status, reply.body));
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(!stream.is_finished(), "the stream ended before the broker came back");
        broker_script(&["start", port]);
        // Ready again, and every record applied once, the last one last.
        eventually("/readyz ready again", Duration::from_secs(120), || readyz().status == 200);
        stream.join().unwrap();
        eventually("every record", Duration::from_secs(120), || {
            let have = revisions(&db);
            users.iter().all(|u| have.get(u) == Some(&(ROUNDS as i64)))
        });
        for user in &users {
            let row = user_in_db(&db, user).unwrap();
            assert_eq!(row["phone_number"], format!("555 010{}", ROUNDS - 1), "{protocol:?}: {user}'s last record");
        }
        let unready: Vec<&(u16, String)> = during.iter().filter(|(status, _)| *status == 503).collect();
        assert!(
            unready.iter().any(|(_, body)| body.contains("brokers do not answer")),
            "{protocol:?}: /readyz during the outage: {during:?}"
        );
        assert!(!host.exited(), "{protocol:?}: the trigger exited");
        let output = host.drain_output();
        assert!(output.contains("Kafka brokers unreachable"), "{protocol:?}: the outage was not logged:\n{output}");
        assert_eq!(output.matches("kafka consumer started").count(), 1, "{protocol:?}: the consumer restarted:\n{output}");
        let status = host.terminate();
        assert!(status.success(), "{protocol:?}: {status:?}");
    }
}
