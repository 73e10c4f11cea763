//! Shared by the integration tests: builds the real components and host once,
//! starts the host as a real process on a free port against a real SQLite file
//! or a real PostgreSQL, talks HTTP over real sockets, and reaches the real
//! test broker. The harnesses every test crate shares (the PostgreSQL
//! launcher, the broker and DLQ helpers, the process harness) are the
//! `test-support` crate's, re-exported here under their old names.
//!
//! The runtime under test is the project's host, or, with `TEST_SPIN` naming
//! a `spin` binary (what `scripts/test-spin` sets), real `spin up` running
//! Spin's own HTTP trigger and the installed `trigger-kafka` plugin: the same
//! tests then check the app on Spin ([`Launcher`]).
#![allow(dead_code, unused_imports)]

pub mod group;
pub mod metrics;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Once;
use std::time::Duration;

pub use test_support::kafka;
pub use test_support::process::{self, Process, Stream};
pub use test_support::{eventually, free_port, root, unique};

/// What runs the app in [`Host::start`].
#[derive(Debug, Clone, PartialEq)]
pub enum Launcher {
    /// This project's `trigger-kafka`, in manifest mode.
    Host,
    /// `<spin> up`: Spin's HTTP trigger, and the `trigger-kafka` plugin
    /// installed in that Spin (`scripts/test-spin` installs it).
    Spin(PathBuf),
}

impl Launcher {
    /// `TEST_SPIN=/path/to/spin` picks real Spin; otherwise the host. It
    /// must be the `TEST_SPIN` the tests were built with (build.rs): which
    /// host-only tests are ignored was decided then.
    pub fn current() -> Launcher {
        let launcher = match std::env::var_os("TEST_SPIN") {
            Some(spin) if !spin.is_empty() => Launcher::Spin(PathBuf::from(spin)),
            _ => Launcher::Host,
        };
        assert_eq!(
            matches!(launcher, Launcher::Spin(_)),
            cfg!(test_spin),
            "TEST_SPIN differs from the one this test binary was built with: run it through cargo test"
        );
        launcher
    }

    pub fn is_spin() -> bool {
        matches!(Launcher::current(), Launcher::Spin(_))
    }
}

/// A `cargo` command for the workspace, without the package variables cargo
/// set for this test process (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...).
/// Some build scripts (ring's) rerun when those change, and a rerun rebuilds
/// everything above them: inherited, they would make a test's build of the
/// host compile rustls, wasmtime-wasi-http and the host again (1.5 minutes)
/// although scripts/build just built them.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo_test = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(&*key, "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR");
        if set_by_cargo_test {
            cmd.env_remove(&*key);
        }
    }
    cmd.current_dir(root());
    cmd
}

/// Builds the wasm components and the host, once per test binary (a no-op
/// when they are up to date, so `cargo test` alone is enough).
pub fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let run = |args: &[&str]| {
            let status = cargo().args(args).status().expect("run cargo");
            assert!(status.success(), "cargo {args:?} failed");
        };
        if std::env::var_os("TEST_COMPONENTS_DIR").is_none() {
            run(&["build", "--target", "wasm32-wasip2", "--release", "-p", "user-http", "-p", "user-kafka", "-p", "pg-query-guest"]);
        }
        // As scripts/build: the feature set `cargo test` resolves, so this
        // reuses the test build's dependencies instead of compiling them again.
        run(&["build", "--all-targets"]);
    });
}

/// A test-only guest of tests/guests/ (cargo package `package`), built once
/// per test binary; returns its `.wasm`, named `wasm_name`.
pub fn test_guest(package: &str, wasm_name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|p| p == package) {
        let status = cargo()
            .args(["build", "--target", "wasm32-wasip2", "--release", "-p", package])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the {package} test guest failed");
        built.push(package.to_owned());
    }
    wasm(wasm_name)
}

pub fn host_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    target.join("debug/trigger-kafka")
}

/// A built component. `TEST_COMPONENTS_DIR=<dir>` runs the tests on the
/// `.wasm` files there instead (e.g. an older build, to show what a test
/// catches in it); nothing is built for them then.
pub fn wasm(name: &str) -> PathBuf {
    let dir = match std::env::var_os("TEST_COMPONENTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root().join("target/wasm32-wasip2/release"),
    };
    dir.join(format!("{name}.wasm"))
}

/// Where the app keeps its users.
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    /// Spin SQLite `default` (the `database_url` variable left empty).
    Sqlite,
    /// A fresh PostgreSQL database: its URL, given as `database_url`.
    Postgres(String),
}

impl Store {
    /// A new PostgreSQL database on the test server.
    pub fn postgres() -> Store {
        Store::Postgres(postgres::new_database())
    }

    /// The environment that selects this store for a host process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::Sqlite => vec![],
            Store::Postgres(url) => vec![
                ("SPIN_VARIABLE_DATABASE_URL", url.clone()),
                ("SPIN_VARIABLE_DATABASE_HOST", postgres::authority(url)),
            ],
        }
    }
}

/// The consumer group protocol a test's trigger speaks (`group_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// KIP-848, the trigger's default.
    Consumer,
    Classic,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Consumer => "consumer",
            Protocol::Classic => "classic",
        }
    }

    /// `[application.trigger.kafka.client]` lines giving the group a session
    /// timeout of `ms` where the client owns it (classic); under KIP-848 it is
    /// the broker's (10 s on the test broker), and setting it is an error.
    pub fn session_timeout(self, ms: u32) -> String {
        match self {
            Protocol::Classic => format!("\"session.timeout.ms\" = {ms}\n"),
            Protocol::Consumer => String::new(),
        }
    }
}

/// Runs `fn $test(protocol: Protocol)` as two tests, `$test::consumer` and
/// `$test::classic`.
#[macro_export]
macro_rules! under_both_protocols {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[test]
                fn consumer() {
                    super::$test($crate::support::Protocol::Consumer)
                }
                #[test]
                fn classic() {
                    super::$test($crate::support::Protocol::Classic)
                }
            }
        )+
    };
}

/// Settings of the app manifest a test runs.
pub struct AppSpec {
    pub topic: String,
    pub group: String,
    pub dead_letter_topic: String,
    /// `group_protocol` of `[application.trigger.kafka]`.
    pub protocol: Protocol,
    /// Extra lines for the `[[trigger.kafka]]` table.
    pub kafka_extra: String,
    /// Raw librdkafka settings (`"key" = "value"` lines) for
    /// `[application.trigger.kafka.client]`.
    pub kafka_client: String,
    /// Databases the HTTP component may open.
    pub http_databases: String,
    /// Both components' `allowed_outbound_hosts` (a TOML array).
    pub allowed_outbound_hosts: String,
}

impl Default for AppSpec {
    fn default() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        AppSpec {
            topic: format!("user_service_{id}"),
            group: format!("group_{id}"),
            dead_letter_topic: format!("user_service_{id}.dlq"),
            protocol: Protocol::Consumer,
            kafka_extra: "initial_backoff_ms = 20\nmax_backoff_ms = 200\n".into(),
            kafka_client: String::new(),
            http_databases: r#"["default"]"#.into(),
            // As spin.toml: granted through the database_host variable.
            allowed_outbound_hosts: r#"["postgres://{{ database_host }}"]"#.into(),
        }
    }
}

impl AppSpec {
    /// The project's spin.toml shape, with absolute component paths and this test's names.
    pub fn write_manifest(&self, dir: &Path) -> PathBuf {
        let manifest = format!(
            r#"spin_manifest_version = 2
[application]
name = "user-info-service"
[application.trigger.kafka]
brokers = "{{{{ kafka_brokers }}}}"
group_protocol = "{protocol}"
group_instance_id = "{{{{ pod_name }}}}"
[application.trigger.kafka.client]
{client}
[variables]
kafka_brokers = {{ default = "127.0.0.1:9092" }}
pod_name = {{ default = "" }}
database_url = {{ default = "", secret = true }}
database_host = {{ default = "database.invalid:5432" }}
api_token = {{ default = "", secret = true }}
[[trigger.http]]
route = "/user"
component = "user-http"
[[trigger.kafka]]
component = "user-kafka"
topics = ["{topic}"]
group_id = "{group}"
dead_letter_topic = "{dlq}"
{extra}
[component.user-http]
source = "{http}"
sqlite_databases = {http_dbs}
allowed_outbound_hosts = {outbound}
variables = {{ database_url = "{{{{ database_url }}}}", api_token = "{{{{ api_token }}}}" }}
[component.user-kafka]
source = "{kafka}"
sqlite_databases = ["default"]
allowed_outbound_hosts = {outbound}
variables = {{ database_url = "{{{{ database_url }}}}" }}
"#,
            topic = self.topic,
            group = self.group,
            dlq = self.dead_letter_topic,
            extra = self.kafka_extra,
            protocol = self.protocol.as_str(),
            client = self.kafka_client,
            http = wasm("user_http").display(),
            kafka = wasm("user_kafka").display(),
            http_dbs = self.http_databases,
            outbound = self.allowed_outbound_hosts,
        );
        let path = dir.join("spin.toml");
        std::fs::write(&path, manifest).unwrap();
        path
    }
}

/// A running `trigger-kafka` process in manifest mode.
pub struct Host {
    process: Process,
    pub base_url: String,
}

impl Host {
    /// Starts the app of `manifest` with state in `state_dir`, running the
    /// given trigger types; waits until HTTP serves (when http is among them).
    /// Runs in this project's host, or in real `spin up` (see [`Launcher`]).
    pub fn start(manifest: &Path, state_dir: &Path, triggers: &[&str], env: &[(&str, &str)]) -> Host {
        Host::start_with(manifest, state_dir, triggers, env, |_| {})
    }

    /// [`Host::start`], with a last say on the command (limits, extra flags).
    pub fn start_with(
        manifest: &Path,
        state_dir: &Path,
        triggers: &[&str],
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Host {
        ensure_built();
        let port = free_port();
        let mut cmd = match Launcher::current() {
            Launcher::Host => {
                let mut cmd = Command::new(host_binary());
                cmd.arg("-f").arg(manifest).arg("--listen").arg(format!("127.0.0.1:{port}"));
                cmd.arg("--state-dir").arg(state_dir);
                for t in triggers {
                    cmd.arg("--trigger").arg(t);
                }
                cmd
            }
            Launcher::Spin(spin) => spin_up(&spin, manifest, state_dir, triggers, port),
        };
        cmd.env("SPIN_VARIABLE_KAFKA_BROKERS", kafka::brokers());
        // The host and the plugin log at info by default. RUST_LOG=info
        // would also turn on Spin's own info lines, which the `spin
        // trigger-kafka --launch-metadata-only` child writes to the stderr
        // that `spin up` parses as the plugin's launch metadata: spin then
        // gives every flag to every trigger (docs/spin-plugin.md, "Logging";
        // one test does it on purpose through `env`). Unset, as a user runs it.
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        configure(&mut cmd);
        let mut host = Host { process: Process::spawn(&mut cmd), base_url: format!("http://127.0.0.1:{port}") };
        if triggers.contains(&"http") {
            host.wait_for_output("Serving http://", Duration::from_secs(120));
        } else {
            host.wait_for_output("Kafka trigger for component", Duration::from_secs(120));
        }
        host
    }

    /// Waits until the host prints a line containing `needle` (either
    /// stream); panics with its output otherwise.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> String {
        self.process.wait_for(needle, timeout, Stream::Either)
    }

    /// Whether the process has exited on its own.
    pub fn exited(&mut self) -> bool {
        self.process.exited()
    }

    /// For a test that provokes zero-row query reports on purpose (see `process`).
    pub fn expect_zero_row_query_reports(&mut self) {
        self.process.expect_zero_row_query_reports();
    }

    /// Everything printed so far (both streams).
    pub fn drain_output(&mut self) -> String {
        self.process.output()
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.process.terminate(Duration::from_secs(30))
    }

    /// SIGTERM, then waits at most `timeout` for the exit (panics past it).
    pub fn terminate_within(&mut self, timeout: Duration) -> ExitStatus {
        self.process.terminate(timeout)
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        self.process.kill();
    }
}

/// `spin up` for the given trigger types of `manifest`. Spin has no trigger
/// filter, but runs only the components named with `-c` (and so only their
/// triggers): the components of the wanted types' `[[trigger.<type>]]`
/// tables. `--listen` goes only to an app with HTTP: in an app with a single
/// trigger type, Spin forwards every flag to that trigger.
fn spin_up(spin: &Path, manifest: &Path, state_dir: &Path, triggers: &[&str], port: u16) -> Command {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let all_types: Vec<&String> = doc.get("trigger").and_then(|t| t.as_table()).map(|t| t.keys().collect()).unwrap_or_default();
    let mut cmd = Command::new(spin);
    cmd.arg("up").arg("-f").arg(manifest);
    if !all_types.iter().all(|t| triggers.contains(&t.as_str())) {
        for t in triggers {
            let tables = doc["trigger"].get(*t).and_then(|v| v.as_array()).unwrap_or_else(|| panic!("no [[trigger.{t}]]"));
            for table in tables {
                cmd.arg("-c").arg(table["component"].as_str().expect("a trigger names its component"));
            }
        }
    }
    if triggers.contains(&"http") {
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    }
    cmd.arg("--state-dir").arg(state_dir);
    // Beside the manifest, as a user runs it (Spin resolves nothing else against it).
    cmd.current_dir(manifest.parent().unwrap());
    cmd
}

/// An HTTP client that reports every status instead of failing on 4xx/5xx.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A response, reduced to what tests assert on.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub allow: Option<String>,
    pub etag: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.expect("HTTP request failed");
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let etag = header("etag");
    let body = response.body_mut().read_to_string().unwrap();
    Reply { status: response.status().as_u16(), content_type, allow, etag, body }
}

/// GET with request headers (`If-None-Match`, `If-Match`, ...).
pub fn get_with(base: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = http().get(format!("{base}{path_and_query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.call())
}

/// POST /user of a JSON body with request headers.
pub fn post_json_with(base: &str, body: &serde_json::Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = http().post(format!("{base}/user")).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send(body.to_string()))
}

/// DELETE with request headers.
pub fn delete_with(base: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = http().delete(format!("{base}{path_and_query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.call())
}

pub fn get(base: &str, path_and_query: &str) -> Reply {
    reply(http().get(format!("{base}{path_and_query}")).call())
}

pub fn post(base: &str, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
    reply(http().post(format!("{base}/user")).header("content-type", content_type).send(body.as_ref()))
}

pub fn post_json(base: &str, body: &serde_json::Value) -> Reply {
    post(base, "application/json", body.to_string())
}

/// Every user's revision (how many upserts it has seen), straight from the
/// SQLite file. A missing file or table fails the test: "every revision is
/// 1" must not pass over no rows at all.
pub fn revisions(db: &Path) -> std::collections::HashMap<String, i64> {
    try_revisions(db).unwrap_or_else(|| panic!("{} has no user_info table", db.display()))
}

/// [`revisions`], or None while the file or its table does not exist yet:
/// for polling, where "not yet" is a normal answer.
pub fn try_revisions(db: &Path) -> Option<std::collections::HashMap<String, i64>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut statement = conn.prepare("SELECT user_id, revision FROM user_info").ok()?;
    Some(statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect())
}

/// Reads a user straight from the SQLite file (what any process would see).
pub fn user_in_db(db: &Path, user_id: &str) -> Option<serde_json::Value> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT user_id, first_name, last_name, email, phone_number FROM user_info WHERE user_id = ?1",
        [user_id],
        |r| {
            Ok(serde_json::json!({
                "user_id": r.get::<_, String>(0)?, "first_name": r.get::<_, String>(1)?,
                "last_name": r.get::<_, String>(2)?, "email": r.get::<_, String>(3)?,
                "phone_number": r.get::<_, String>(4)?,
            }))
        },
    )
    .ok()
}
