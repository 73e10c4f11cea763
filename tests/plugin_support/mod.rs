//! Helpers for tests/plugin.rs: building the trigger and the components once,
//! the local broker, locked apps shaped like the one real `spin up` 4.0.2
//! wrote (tests/fixtures/spin-4.0.2/), and running `trigger-kafka` with the
//! environment `spin up` gives a trigger plugin.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BROKER_PORT: u16 = 19092;
pub const BROKERS: &str = "127.0.0.1:19092";

// Building, the broker and paths are shared with the other integration tests.
pub use crate::support::kafka::create_topic;
pub use crate::support::{ensure_built, host_binary as binary, root, wasm};

/// A topic shared by the tests that only need the trigger to start.
pub fn shared_topic() -> &'static str {
    static TOPIC: OnceLock<String> = OnceLock::new();
    TOPIC.get_or_init(|| {
        let topic = unique("plugin-shared");
        create_topic(&topic, 1);
        topic
    })
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
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

/// A locked app shaped like tests/fixtures/spin-4.0.2/spin.lock.json: one HTTP
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
/// tests/fixtures/spin-4.0.2/invocations.txt: [0] the `--launch-metadata-only`
/// probe, [1] the real run.
pub fn fixture_environments() -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/spin-4.0.2/invocations.txt")).unwrap();
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

/// A running plugin-mode `trigger-kafka`, its output collected line by line.
pub struct Plugin {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
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
        env.insert("SPIN_VARIABLE_KAFKA_BROKERS".into(), BROKERS.into());
        match &spin.local_app_dir {
            Some(dir) => env.insert("SPIN_LOCAL_APP_DIR".into(), dir.clone()),
            None => env.remove("SPIN_LOCAL_APP_DIR"),
        };
        for (k, v) in &spin.extra {
            env.insert(k.clone(), v.clone());
        }
        let mut cmd = Command::new(binary());
        scrub(&mut cmd);
        cmd.envs(env)
            .env("RUST_LOG", "info")
            .args(args)
            .current_dir(&spin.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn trigger-kafka");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Plugin { child: Some(child), stdout, stderr }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn output(&self) -> String {
        format!("--- stdout:\n{}--- stderr:\n{}", self.stdout(), self.stderr())
    }

    /// Waits until stdout holds `needle`; panics (with the output) on timeout
    /// or if the process exits first.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return out;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                panic!("trigger-kafka exited ({status}) before printing {needle:?}\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited (its output then fully collected).
    pub fn exited(&mut self) -> bool {
        let done = self.child.as_mut().unwrap().try_wait().unwrap().is_some();
        if done {
            std::thread::sleep(Duration::from_millis(100)); // let the readers drain
        }
        done
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM (what `spin up` sends its triggers) and waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM {pid}");
        self.wait_exit(timeout)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    buf
}

/// The path in the host's startup line `Storing default SQLite data to "<path>"`.
pub fn storing_path(stdout: &str) -> Option<PathBuf> {
    let line = stdout.lines().find(|l| l.starts_with("Storing default SQLite data to "))?;
    let quoted = line.trim_start_matches("Storing default SQLite data to ").trim();
    Some(PathBuf::from(serde_json::from_str::<String>(quoted).expect("a quoted path")))
}
