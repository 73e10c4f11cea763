//! The HTTP contract of `/user`, end to end: the real `user-http` component in
//! the real host, over real sockets, against both stores the `database_url`
//! variable chooses between: a real SQLite file (empty) and a real PostgreSQL
//! (`postgres://…`). The contract is the same byte for byte, so every contract
//! test runs once per store.


use serde_json::json;
use crate::support::{get, post, post_json, AppSpec, Host, Store};

/// Runs each named test function once per store (`sqlite::name`, `postgres::name`).
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Store::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Store::postgres()) } )*
        }
    };
}

// After the macro: they run their tests on both stores with it.
mod conditional;
mod delete;

on_both_stores!(
    readme_example_create_then_get,
    create_then_update_statuses_and_partial_updates,
    get_errors,
    post_errors_write_nothing,
    other_methods_are_refused_with_allow,
    data_survives_a_restart,
    unmatched_routes_are_404_and_health_answers,
);

const JOHN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

struct App {
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    manifest: std::path::PathBuf,
    store: Store,
    host: Host,
}

fn start_host(manifest: &std::path::Path, state: &std::path::Path, store: &Store) -> Host {
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Host::start(manifest, state, &["http"], &env)
}

impl App {
    /// The user as stored, read straight from the store's own database.
    fn stored(&self, user_id: &str) -> Option<serde_json::Value> {
        match &self.store {
            Store::Sqlite => crate::support::user_in_db(&self.state.join("sqlite_db.db"), user_id),
            Store::Postgres(url) => crate::support::postgres::user_in_db(url, user_id),
        }
    }
}

fn start(spec: AppSpec, store: Store) -> App {
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let state = dir.path().join(".spin");
    let host = start_host(&manifest, &state, &store);
    App { _dir: dir, state, manifest, store, host }
}

fn john() -> serde_json::Value {
    json!({"user_id": JOHN, "first_name": "John", "last_name": "Doe",
           "email": "john.doe@example.com", "phone_number": "1234567890"})
}

fn readme_example_create_then_get(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let created = post_json(base, &john());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.content_type, "application/json");
    // Same keys, same order, same values as the README shows.
    assert_eq!(
        created.body,
        r#"{"user_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","first_name":"John","last_name":"Doe","email":"john.doe@example.com","phone_number":"1234567890"}"#
    );
    let fetched = get(base, &format!("/user?user_id={JOHN}"));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created.body);
    // Written where database_url says, and only there.
    assert_eq!(app.stored(JOHN), Some(john()));
    if let Store::Postgres(_) = app.store {
        assert!(!app.state.join("sqlite_db.db").exists(), "PostgreSQL mode must not touch SQLite");
    }
}

fn create_then_update_statuses_and_partial_updates(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4();
    let created = post_json(base, &json!({"user_id": id.to_string().to_uppercase(), "first_name": " Ann "}));
    assert_eq!(created.status, 201);
    assert_eq!(
        created.json(),
        json!({"user_id": id.to_string(), "first_name": "Ann", "last_name": "", "email": "", "phone_number": ""})
    );
    let updated = post_json(base, &json!({"user_id": id, "email": "ann@example.org", "unknown": [1, 2]}));
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["first_name"], "Ann", "absent fields stay unchanged");
    assert_eq!(updated.json()["email"], "ann@example.org");
    let cleared = post_json(base, &json!({"user_id": id, "first_name": ""}));
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.json()["first_name"], "");
    assert_eq!(cleared.json()["email"], "ann@example.org");
    assert_eq!(get(base, &format!("/user?user_id={id}")).json(), cleared.json());
}

fn get_errors(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let missing = get(base, &format!("/user?user_id={}", uuid::Uuid::new_v4()));
    assert_eq!((missing.status, missing.json()), (404, json!({"detail": "Not found."})));
    let no_id = get(base, "/user");
    assert_eq!((no_id.status, no_id.json()), (400, json!({"user_id": ["This field is required."]})));
    let bad_id = get(base, "/user?user_id=not-a-uuid");
    assert_eq!((bad_id.status, bad_id.json()), (400, json!({"user_id": ["Must be a valid UUID."]})));
    assert_eq!(bad_id.content_type, "application/json");
}

fn post_errors_write_nothing(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(Vec<u8>, &str, u16, serde_json::Value)> = vec![
        (b"{not json".to_vec(), "application/json", 400, json!("detail")),
        (b"[1, 2]".to_vec(), "application/json", 400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})),
        (json!({"first_name": "x"}).to_string().into_bytes(), "application/json", 400,
            json!({"user_id": ["This field is required."]})),
        (json!({"user_id": id, "email": "nope"}).to_string().into_bytes(), "application/json", 400,
            json!({"email": ["Enter a valid email address."]})),
        (json!({"user_id": id, "first_name": "Ok", "last_name": null}).to_string().into_bytes(), "application/json", 400,
            json!({"last_name": ["This field may not be null."]})),
        (json!({"user_id": id, "first_name": "x".repeat(151)}).to_string().into_bytes(), "application/json", 400,
            json!({"first_name": ["Ensure this field has no more than 150 characters."]})),
        (json!({"user_id": id, "phone_number": "call me"}).to_string().into_bytes(), "application/json", 400,
            json!("phone_number")),
        (json!({"user_id": id, "email": ["a@b.co"]}).to_string().into_bytes(), "application/json", 400,
            json!({"email": ["Not a valid string."]})),
        (json!({"user_id": id}).to_string().into_bytes(), "text/plain", 415,
            json!({"detail": "Unsupported media type \"text/plain\" in request."})),
        (vec![b' '; 64 * 1024 + 1], "application/json", 413, json!("detail")),
    ];
    for (body, content_type, status, expected) in cases {
        let reply = post(base, content_type, &body);
        assert_eq!(reply.status, status, "{content_type} {}: {}", String::from_utf8_lossy(&body[..body.len().min(80)]), reply.body);
        assert_eq!(reply.content_type, "application/json");
        match expected {
            serde_json::Value::String(key) => assert!(reply.json().get(&key).is_some(), "{} lacks {key}", reply.body),
            expected => assert_eq!(reply.json(), expected),
        }
    }
    // The rejected writes left nothing behind, not even a partial user.
    assert_eq!(get(base, &format!("/user?user_id={id}")).status, 404);
}

fn other_methods_are_refused_with_allow(store: Store) {
    let app = start(AppSpec::default(), store);
    let reply = crate::support::http().put(format!("{}/user", app.host.base_url)).send("{}").unwrap();
    assert_eq!(reply.status().as_u16(), 405);
    assert_eq!(reply.headers()["allow"], "GET, POST, DELETE");
    assert_eq!(reply.headers()["content-type"], "application/json");
}

fn data_survives_a_restart(store: Store) {
    let app = start(AppSpec::default(), store);
    assert_eq!(post_json(&app.host.base_url, &john()).status, 201);
    let App { _dir, state, manifest, store, host } = app;
    let status = host.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let again = start_host(&manifest, &state, &store);
    let fetched = get(&again.base_url, &format!("/user?user_id={JOHN}"));
    assert_eq!((fetched.status, fetched.json()), (200, john()));
}

#[test]
fn a_database_label_not_granted_is_access_denied() {
    // The component opens "default", which this manifest does not grant it
    // (it grants none: granting an undefined label is a startup error).
    let app = start(AppSpec { http_databases: "[]".into(), ..AppSpec::default() }, Store::Sqlite);
    let reply = post_json(&app.host.base_url, &john());
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.json(), json!({"detail": "A server error occurred."}));
    let mut host = app.host;
    host.wait_for_output("access denied", std::time::Duration::from_secs(10));
}

fn unmatched_routes_are_404_and_health_answers(store: Store) {
    let app = start(AppSpec::default(), store);
    assert_eq!(get(&app.host.base_url, "/nope").status, 404);
    assert_eq!(get(&app.host.base_url, "/.well-known/spin/health").status, 200);
}

#[test]
#[cfg_attr(test_spin, ignore = "host-only: checks this host's refusal of an interface it lacks")]
fn a_component_importing_what_the_host_lacks_is_refused_at_startup() {
    crate::support::ensure_built();
    let dir = tempfile::tempdir().unwrap();
    // A component (WAT text, which the host compiles like binary) importing an
    // interface this host does not provide.
    let wat = dir.path().join("needs_kv.wat");
    std::fs::write(&wat, r#"(component (import "fermyon:spin/key-value@2.0.0" (instance (export "get" (func)))))"#).unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"kv\"\n[component.kv]\nsource = \"{}\"\n",
            wat.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::host_binary())
        .args(["-f", manifest.to_str().unwrap(), "--listen", &format!("127.0.0.1:{}", crate::support::free_port())])
        .arg("--state-dir")
        .arg(dir.path().join(".spin"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("fermyon:spin/key-value@2.0.0"), "names the interface: {stderr}");
    assert!(stderr.contains("\"kv\""), "names the component: {stderr}");
}

#[test]
fn a_postgres_host_not_in_allowed_outbound_hosts_is_refused_as_spin_refuses_it() {
    let store = Store::postgres();
    let Store::Postgres(url) = &store else { unreachable!() };
    let authority = crate::support::postgres::authority(url);
    let spec = AppSpec { allowed_outbound_hosts: r#"["postgres://db.example.com"]"#.into(), ..AppSpec::default() };
    let app = start(spec, store.clone());
    let reply = post_json(&app.host.base_url, &john());
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.json(), json!({"detail": "A server error occurred."}));
    let mut host = app.host;
    // Spin's words, on the host's stderr and in the component's error.
    host.wait_for_output(
        &format!("A component tried to make an outbound network connection to disallowed destination 'postgres://{authority}'."),
        std::time::Duration::from_secs(10),
    );
    host.wait_for_output(&format!("address postgres://{authority} is not permitted"), std::time::Duration::from_secs(10));
    // Nothing reached the database: not even the schema.
    let tables = crate::support::postgres::client(url)
        .query("SELECT 1 FROM information_schema.tables WHERE table_name = 'user_info'", &[])
        .unwrap();
    assert!(tables.is_empty());
}

#[test]
fn http_is_served_with_no_broker_reachable() {
    // Both triggers, as scripts/run starts them, with the brokers pointing at
    // a port nobody listens on: HTTP serves, the Kafka trigger keeps trying.
    let dir = tempfile::tempdir().unwrap();
    let manifest = AppSpec::default().write_manifest(dir.path());
    let nobody = format!("127.0.0.1:{}", crate::support::free_port());
    let mut host = Host::start(&manifest, &dir.path().join(".spin"), &["http", "kafka"], &[("SPIN_VARIABLE_KAFKA_BROKERS", &nobody)]);
    let base = host.base_url.clone();
    assert_eq!(post_json(&base, &john()).status, 201);
    let fetched = get(&base, &format!("/user?user_id={JOHN}"));
    assert_eq!((fetched.status, fetched.json()), (200, john()));
    // The Kafka trigger says why it is not consuming (while it prepares the
    // dead-letter topic, or later while consuming).
    crate::support::eventually("the Kafka trigger reporting the broker unreachable", std::time::Duration::from_secs(60), || {
        let out = host.drain_output();
        out.contains("Kafka brokers unreachable") || out.contains("is the broker reachable?")
    });
    // Still serving while the Kafka trigger retries.
    assert_eq!(get(&base, &format!("/user?user_id={JOHN}")).status, 200);
}
