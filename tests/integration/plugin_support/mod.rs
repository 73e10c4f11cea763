//! Helpers for tests/plugin.rs, over the shared test support (building, the
//! broker, the process harness): locked apps shaped like the one real `spin up` 4.0.2
//! wrote (test-support/fixtures/spin-4.0.2/), and running `trigger-kafka` with the
//! environment `spin up` gives a trigger plugin.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

// Building, the broker, names and paths are shared with the other integration tests.
pub use crate::support::kafka::{brokers, create_topic};
pub use crate::support::{ensure_built, host_binary as binary, root, unique, wasm};
pub use crate::support::Stream;
use crate::support::Process;

/// A topic shared by the tests that only need the trigger to start.
pub fn shared_topic() -> &'static str {
    static TOPIC: OnceLock<String> = OnceLock::new();
    TOPIC.get_or_init(|| {
        let topic = unique("plugin-shared");
        create_topic(&topic, 1);
        topic
    })
}

pub fn file_url(path: &Path) -> String {
    assert!(path.is_absolute(), "{} is not absolute", path.display());
    format!("file://{}", path.display())
}

/// What the locked app's Kafka trigger says.
pub struct KafkaTrigger<'a> {
    pub topic: &'a str,
    pub group_id: &'a str,
    pub dead_letter_topic: Option<&'a str>,
}

/// A locked app shaped like test-support/fixtures/spin-4.0.2/spin.lock.json: one HTTP
/// and one Kafka trigger, `brokers = "{{ kafka_brokers }}"` (default
/// 127.0.0.1:9092, where nothing listens), a required secret `api_token`, and
/// absolute file:// sources pointing at the built components. Written to
/// `<working_dir>/spin.lock`, as `spin up` does; returns its file:// URL.
pub fn write_locked_app(working_dir: &Path, app_dir: &Path, kafka: &KafkaTrigger) -> String {
    let mut trigger_config = serde_json::json!({
        "component": "user-kafka",
        "group_id": kafka.group_id,
        "topics": [kafka.topic],
    });
    if let Some(dlq) = kafka.dead_letter_topic {
        trigger_config["dead_letter_topic"] = dlq.into();
    }
    let locked = serde_json::json!({
        "spin_lock_version": 0,
        "metadata": {
            "description": "User information over HTTP and Kafka",
            "name": "user-info-service",
            "origin": file_url(&app_dir.join("spin.toml")),
            "triggers": { "kafka": { "brokers": "{{ kafka_brokers }}" } },
            "version": "0.1.0"
        },
        "variables": {
            "api_token": { "secret": true },
            "kafka_brokers": { "default": "127.0.0.1:9092" }
        },
        "triggers": [
            {
                "id": "user-http-http-trigger",
                "trigger_type": "http",
                "trigger_config": { "component": "user-http", "route": "/user" }
            },
            {
                "id": "user-kafka-kafka-trigger",
                "trigger_type": "kafka",
                "trigger_config": trigger_config
            }
        ],
        "components": [
            {
                "id": "user-http",
                "metadata": { "databases": ["default"] },
                "source": { "content_type": "application/wasm", "source": file_url(&wasm("user_http")) },
                "config": { "api_token": "{{ api_token }}" }
            },
            {
                "id": "user-kafka",
                "metadata": { "databases": ["default"] },
                "source": { "content_type": "application/wasm", "source": file_url(&wasm("user_kafka")) }
            }
        ]
    });
    let path = working_dir.join("spin.lock");
    std::fs::write(&path, serde_json::to_string_pretty(&locked).unwrap()).unwrap();
    file_url(&path)
}

/// The `SPIN_*` environment of each invocation recorded in
/// test-support/fixtures/spin-4.0.2/invocations.txt: [0] the `--launch-metadata-only`
/// probe, [1] the real run.
pub fn fixture_environments() -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(test_support::fixtures::spin_4_0_2().join("invocations.txt")).unwrap();
    let mut envs = Vec::new();
    for block in text.split("=== ").filter(|b| !b.trim().is_empty()) {
        let env = block
            .lines()
            .filter_map(|line| line.split_once('='))
            .filter(|(k, _)| k.starts_with("SPIN_"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        envs.push(env);
    }
    assert_eq!(envs.len(), 2, "invocations.txt should record two invocations");
    envs
}

/// Where the app lives and how `spin up` was started for it.
pub struct SpinEnv {
    /// Current directory of `spin up` (and so of the plugin).
    pub cwd: PathBuf,
    /// `SPIN_LOCAL_APP_DIR`; `None` leaves it unset (a registry app).
    pub local_app_dir: Option<String>,
    /// `SPIN_LOCKED_URL` (`spin up`'s temp working dir holds the lock file).
    pub locked_url: String,
    pub working_dir: PathBuf,
    /// `SPIN_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Extra environment (SPIN_VARIABLE_*, RUNTIME_CONFIG_FILE...).
    pub extra: Vec<(String, String)>,
}

/// Environment variables a trigger reads that the test process must not leak.
fn scrub(cmd: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("SPIN_")
            || matches!(key.as_str(), "RUNTIME_CONFIG_FILE" | "WASMTIME_CACHE_FILE" | "DISABLE_WASMTIME_CACHE" | "RUST_LOG")
        {
            cmd.env_remove(key);
        }
    }
}

/// `trigger-kafka --launch-metadata-only` as `spin up` runs it: the probe's
/// fixture environment (no SPIN_LOCKED_URL, no SPIN_LOCAL_APP_DIR).
pub fn probe(cwd: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    scrub(&mut cmd);
    let mut env = fixture_environments().remove(0);
    env.insert("SPIN_DATA_DIR".into(), cwd.join("spin-data").display().to_string());
    cmd.envs(env).args(args).current_dir(cwd);
    cmd.output().expect("run trigger-kafka")
}

/// A running plugin-mode `trigger-kafka` (the shared process harness).
pub struct Plugin(Process);

impl std::ops::Deref for Plugin {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl std::ops::DerefMut for Plugin {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl Plugin {
    /// Starts it as `spin up` would: the fixture's environment of the real
    /// run, with this app's paths, and `args` as forwarded.
    pub fn start(spin: &SpinEnv, args: &[&str]) -> Plugin {
        let mut env = fixture_environments().remove(1);
        // App variables come only from `extra` (the fixture recorded api_token).
        env.retain(|k, _| !k.starts_with("SPIN_VARIABLE_"));
        env.insert("SPIN_LOCKED_URL".into(), spin.locked_url.clone());
        env.insert("SPIN_WORKING_DIR".into(), spin.working_dir.display().to_string());
        env.insert("SPIN_DATA_DIR".into(), spin.data_dir.display().to_string());
        env.insert("SPIN_VARIABLE_KAFKA_BROKERS".into(), brokers());
        match &spin.local_app_dir {
            Some(dir) => env.insert("SPIN_LOCAL_APP_DIR".into(), dir.clone()),
            None => env.remove("SPIN_LOCAL_APP_DIR"),
        };
        for (k, v) in &spin.extra {
            env.insert(k.clone(), v.clone());
        }
        let mut cmd = Command::new(binary());
        scrub(&mut cmd);
        cmd.envs(env).env("RUST_LOG", "info").args(args).current_dir(&spin.cwd);
        Plugin(Process::spawn(&mut cmd))
    }

    /// Waits until stdout holds `needle`; returns all of stdout.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        self.0.wait_for(needle, timeout, Stream::Stdout);
        self.0.stdout()
    }
}

/// The path in the host's startup line `Storing default SQLite data to "<path>"`.
pub fn storing_path(stdout: &str) -> Option<PathBuf> {
    let line = stdout.lines().find(|l| l.starts_with("Storing default SQLite data to "))?;
    let quoted = line.trim_start_matches("Storing default SQLite data to ").trim();
    Some(PathBuf::from(serde_json::from_str::<String>(quoted).expect("a quoted path")))
}
