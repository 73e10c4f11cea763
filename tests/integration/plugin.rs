//! `trigger-kafka` as a Spin 4.0.2 trigger plugin, driven exactly as real
//! `spin up` drives one (test-support/fixtures/spin-4.0.2/, /work/shared/spin-trigger-protocol.md):
//! the `--launch-metadata-only` probe, the locked app at `SPIN_LOCKED_URL`,
//! the plugin runner's `SPIN_*` environment, the forwarded flags, the state
//! dir shared with Spin's HTTP trigger, SIGTERM; and the plugin package
//! `spin plugins install --file` reads.
//!
//! Needs the local broker (`scripts/kafka-broker`, started on demand) and
//! builds `trigger-kafka` and the components on first use.


use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::plugin_support::*;
use serde_json::Value;

const STARTUP: Duration = Duration::from_secs(90);
const SHUTDOWN: Duration = Duration::from_secs(10);
const STORING: &str = "Storing default SQLite data to ";
const IN_MEMORY: &str = "No state directory";

/// Spin's common trigger flags (protocol: "Common trigger flags a compatible
/// plugin should accept"), long and short forms.
const SPIN_COMMON_FLAGS: &[&str] = &[
    "--log-dir", "-L", "--truncate-logs", "--disable-cache", "--cache", "--disable-pooling", "--debug-info",
    "--follow", "--quiet", "-q", "--sh", "--shush", "--runtime-config-file", "--state-dir",
    "--allow-transient-write", "--experimental-wasi-otel", "--key-value", "--sqlite", "--max-instance-memory",
    "--variable",
];

/// What Spin's built-in HTTP trigger lists in its launch metadata.
fn http_trigger_flags() -> BTreeSet<String> {
    SPIN_COMMON_FLAGS
        .iter()
        .chain(&["--listen", "--tls-cert", "--tls-key", "--find-free-port"])
        .map(|s| s.to_string())
        .collect()
}

/// `spin up`'s routing of forwarded args in a multi-trigger app: groups of a
/// flag plus at most one following non-flag value, each going to the triggers
/// whose metadata lists the flag (exact match); a group nobody accepts fails.
fn spin_route(args: &[&str], triggers: &[(&str, &BTreeSet<String>)]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut routed: BTreeMap<String, Vec<String>> = triggers.iter().map(|(t, _)| (t.to_string(), vec![])).collect();
    let mut i = 0;
    while i < args.len() {
        let mut group = vec![args[i].to_string()];
        if i + 1 < args.len() && !args[i + 1].starts_with('-') {
            group.push(args[i + 1].to_string());
        }
        i += group.len();
        let takers: Vec<&str> = triggers.iter().filter(|(_, f)| f.contains(&group[0])).map(|(t, _)| *t).collect();
        if takers.is_empty() {
            return Err(format!("Unrecognised trigger option {:?}", group[0]));
        }
        for t in takers {
            routed.get_mut(t).unwrap().extend(group.iter().cloned());
        }
    }
    Ok(routed)
}

/// Flags (long and short) in the launch metadata JSON, which must be the
/// probe's entire stderr.
fn metadata_flags(stderr: &[u8]) -> BTreeSet<String> {
    let json: Value = serde_json::from_slice(stderr)
        .unwrap_or_else(|e| panic!("stderr is not only LaunchMetadata JSON ({e}): {:?}", String::from_utf8_lossy(stderr)));
    let mut flags = BTreeSet::new();
    for flag in json["all_flags"].as_array().expect("all_flags array") {
        let long = flag["long"].as_str().expect("long flag");
        assert!(long.starts_with("--"), "{long}: dashes included");
        flags.insert(long.to_owned());
        if let Some(short) = flag.get("short") {
            let short = short.as_str().expect("short flag string");
            assert!(short.starts_with('-') && short.len() == 2, "{short}");
            flags.insert(short.to_owned());
        }
    }
    flags
}

fn uuid_v4_like(n: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A temp app dir laid out as `spin up` sees it: cwd = the app dir (holding
/// spin.toml), the locked app in a separate working dir, a data dir.
struct TestApp {
    tmp: tempfile::TempDir,
    app_dir: PathBuf,
    working_dir: PathBuf,
    locked_url: String,
}

impl TestApp {
    fn new(kafka: &KafkaTrigger) -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        // Canonical: the trigger reports paths against getcwd().
        let base = tmp.path().canonicalize().unwrap();
        let app_dir = base.join("user-info-service");
        let working_dir = base.join("spinup-XXXXXX");
        std::fs::create_dir_all(&app_dir).unwrap();
        std::fs::create_dir_all(&working_dir).unwrap();
        std::fs::copy(test_support::fixtures::spin_4_0_2().join("spin.toml"), app_dir.join("spin.toml")).unwrap();
        let locked_url = write_locked_app(&working_dir, &app_dir, kafka);
        TestApp { tmp, app_dir, working_dir, locked_url }
    }

    fn spin_env(&self, local_app_dir: Option<&str>, extra: &[(&str, &str)]) -> SpinEnv {
        SpinEnv {
            cwd: self.app_dir.clone(),
            local_app_dir: local_app_dir.map(str::to_owned),
            locked_url: self.locked_url.clone(),
            working_dir: self.working_dir.clone(),
            data_dir: self.tmp.path().join("spin-data"),
            extra: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

const API_TOKEN: (&str, &str) = ("SPIN_VARIABLE_API_TOKEN", "s3cret");

// ---------------------------------------------------------------------------
// 1. The whole launch, as `spin up --listen 127.0.0.1:3998 --state-dir .spin`
//    beside spin.toml runs it.

#[test]
fn spin_up_launch_consumes_into_the_state_dir_database_and_stops_on_sigterm() {
    ensure_built();
    let topic = unique("plugin-launch");
    let group = unique("plugin-launch-group");
    let dlq = format!("{topic}.dlq");
    create_topic(&topic, 2);
    let app = TestApp::new(&KafkaTrigger { topic: &topic, group_id: &group, dead_letter_topic: Some(&dlq) });

    // The multi-trigger probe: flag alone, fixture probe environment, all of
    // stderr is the JSON.
    let probe_out = probe(&app.app_dir, &["--launch-metadata-only"]);
    assert!(probe_out.status.success(), "probe exit {}", probe_out.status);
    let ours = metadata_flags(&probe_out.stderr);

    // Spin routes the user's args by that metadata.
    let http = http_trigger_flags();
    let user_args = ["--listen", "127.0.0.1:3998", "--state-dir", ".spin"];
    let routed = spin_route(&user_args, &[("http", &http), ("kafka", &ours)]).unwrap();
    assert_eq!(routed["kafka"], ["--state-dir", ".spin"]);
    assert_eq!(spin_route(&["--bogus"], &[("http", &http), ("kafka", &ours)]).unwrap_err(), "Unrecognised trigger option \"--bogus\"");

    // The real run, SPIN_LOCAL_APP_DIR empty (spin up beside spin.toml).
    let args: Vec<&str> = routed["kafka"].iter().map(String::as_str).collect();
    let mut plugin = Plugin::start(&app.spin_env(Some(""), &[API_TOKEN]), &args);
    let stdout = plugin.wait_for_stdout(STORING, STARTUP);
    let db = app.app_dir.join(".spin/sqlite_db.db");
    assert_eq!(storing_path(&stdout), Some(db.clone()), "{}", plugin.output());

    // Two users and one record the component refuses (dead-lettered).
    let users: Vec<(String, String)> =
        (0..3).map(|i| (uuid_v4_like(i), format!("user{i}-{}@example.com", std::process::id()))).collect();
    let bad_key = "not-a-user";
    let mut records: Vec<(Option<String>, Vec<u8>)> = users
        .iter()
        .map(|(id, email)| (Some(id.clone()), serde_json::json!({ "user_id": id, "email": email }).to_string().into_bytes()))
        .collect();
    records.push((Some(bad_key.to_owned()), b"{\"user_id\": 42}".to_vec()));
    crate::support::kafka::produce(&topic, &records);

    // The database Spin's HTTP trigger reads.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let found = read_users(&db);
        if users.iter().all(|(id, email)| found.get(id) == Some(email)) {
            break found;
        }
        assert!(Instant::now() < deadline, "users not in {} after 30 s: {found:?}\n{}", db.display(), plugin.output());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(found.len(), users.len(), "{found:?}");

    // The refused record went to the locked app's dead_letter_topic.
    let dead = crate::support::kafka::consume_all(&dlq, 1, Duration::from_secs(30));
    assert_eq!(dead.first().and_then(|d| d.key.as_deref()), Some(bad_key.as_bytes()), "{}", plugin.output());

    let status = plugin.terminate(SHUTDOWN);
    assert!(status.success(), "SIGTERM should end in exit 0, got {status}\n{}", plugin.output());
    let output = plugin.output();
    assert!(!output.contains("s3cret"), "the secret variable leaked into the output\n{output}");
}

/// In plugin mode the plugin is the process that runs `user-kafka`, so it
/// provides Spin's outbound PostgreSQL as Spin would: `database_url` and the
/// `allowed_outbound_hosts` template from the locked app, values from
/// `SPIN_VARIABLE_*`. A locked app granting another host is refused with
/// Spin's error and nothing is written.
#[test]
fn plugin_mode_ingests_into_postgres_through_allowed_outbound_hosts() {
    ensure_built();
    let database = crate::support::postgres::new_database();
    let authority = crate::support::postgres::authority(&database);
    let run = |granted: &str| {
        let topic = unique("plugin-pg");
        let group = unique("plugin-pg-group");
        create_topic(&topic, 1);
        let app = TestApp::new(&KafkaTrigger { topic: &topic, group_id: &group, dead_letter_topic: None });
        // The locked app as Spin writes it for spin.toml's database variables.
        let path = app.working_dir.join("spin.lock");
        let mut locked: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        locked["variables"]["database_url"] = serde_json::json!({ "default": "", "secret": true });
        locked["variables"]["database_host"] = serde_json::json!({ "default": "database.invalid:5432" });
        let kafka = locked["components"].as_array_mut().unwrap().iter_mut().find(|c| c["id"] == "user-kafka").unwrap();
        kafka["metadata"]["allowed_outbound_hosts"] = serde_json::json!([granted]);
        kafka["config"] = serde_json::json!({ "database_url": "{{ database_url }}" });
        std::fs::write(&path, serde_json::to_string_pretty(&locked).unwrap()).unwrap();

        let env = [API_TOKEN, ("SPIN_VARIABLE_DATABASE_URL", database.as_str()), ("SPIN_VARIABLE_DATABASE_HOST", authority.as_str())];
        let mut plugin = Plugin::start(&app.spin_env(Some(""), &env), &["--state-dir", ".spin"]);
        plugin.wait_for_stdout(STORING, STARTUP);
        let id = uuid_v4_like(std::process::id() as u64 ^ granted.len() as u64);
        let value = serde_json::json!({ "user_id": id, "email": "pg@example.com" }).to_string();
        crate::support::kafka::produce(&topic, &[(Some(id.clone()), value.into_bytes())]);
        (plugin, id, app)
    };

    let (mut plugin, id, _app) = run("postgres://{{ database_host }}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while crate::support::postgres::user_in_db(&database, &id).is_none() {
        assert!(Instant::now() < deadline, "the record never reached PostgreSQL\n{}", plugin.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(crate::support::postgres::user_in_db(&database, &id).unwrap()["email"], "pg@example.com");
    assert!(plugin.terminate(SHUTDOWN).success());

    let (mut refused, id, _app) = run("postgres://db.example.com:5432");
    let needle = format!("disallowed destination 'postgres://{authority}'");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !refused.stderr().contains(&needle) {
        assert!(Instant::now() < deadline, "no Spin-style refusal\n{}", refused.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(crate::support::postgres::user_in_db(&database, &id).is_none());
    refused.terminate(SHUTDOWN);
}

/// `user_id -> email` from `user_info`, empty while the file or table is missing.
fn read_users(db: &Path) -> BTreeMap<String, String> {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return BTreeMap::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT user_id, email FROM user_info") else { return BTreeMap::new() };
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 2. Launch metadata, help text, unknown flags.

#[test]
fn launch_metadata_lists_exactly_the_flags_the_binary_accepts() {
    ensure_built();
    let tmp = tempfile::tempdir().unwrap();

    let meta = probe(tmp.path(), &["--launch-metadata-only"]);
    assert!(meta.status.success(), "{}", meta.status);
    let meta_flags = metadata_flags(&meta.stderr);
    for flag in SPIN_COMMON_FLAGS {
        assert!(meta_flags.contains(*flag), "Spin's common flag {flag} missing from launch metadata {meta_flags:?}");
    }
    for not_ours in ["--listen", "--tls-cert", "--tls-key", "--find-free-port", "-h", "--help"] {
        assert!(!meta_flags.contains(not_ours), "{not_ours} must stay with spin up / the HTTP trigger");
    }

    // `spin up --help` runs the plugin with --help-args-only.
    let mut help_cmd = Command::new(binary());
    help_cmd
        .arg("--help-args-only")
        .env("SPIN_PLUGINS_SUPPRESS_COMPATIBILITY_WARNINGS", "1")
        .envs(fixture_environments().remove(0))
        .current_dir(tmp.path());
    let help = help_cmd.output().unwrap();
    assert!(help.status.success(), "--help-args-only exit {}", help.status);
    let help_text = String::from_utf8(help.stdout).unwrap();
    let help_flags = flags_in_help(&help_text);
    // Every flag the parser accepts is in the help; the hidden protocol flags
    // are not, and --help/--version are spin up's own.
    let expected: BTreeSet<String> = meta_flags
        .iter()
        .filter(|f| !matches!(f.as_str(), "--help-args-only" | "--launch-metadata-only"))
        .cloned()
        .collect();
    let shown: BTreeSet<String> =
        help_flags.into_iter().filter(|f| !matches!(f.as_str(), "-h" | "--help" | "-V" | "--version")).collect();
    assert_eq!(shown, expected, "help text:\n{help_text}");

    // Each listed flag really parses in plugin mode (with a value where it
    // takes one): the run then fails only on the locked app it cannot read.
    let takes_value = |f: &str| {
        help_text.lines().map(str::trim_start).any(|l| {
            l.starts_with('-') && l.contains(" <") && l.split([',', ' ']).any(|token| token == f)
        })
    };
    for flag in &expected {
        let mut cmd = Command::new(binary());
        cmd.arg(flag);
        if takes_value(flag) {
            cmd.arg(if flag == "--max-instance-memory" { "1000000" } else { "x=y" });
        }
        let out = cmd
            .env("SPIN_LOCKED_URL", format!("file://{}/missing.lock", tmp.path().display()))
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("missing.lock"), "{flag} should parse, then the locked app fail: {stderr}");
    }
}

/// Flag names in clap's options text (`  -L, --log-dir <LOG_DIR>`, `[aliases: --sh, --shush]`).
fn flags_in_help(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') && line.len() - trimmed.len() <= 6 {
            for token in trimmed.split([',', ' ']).take_while(|t| !t.starts_with('<')) {
                if token.starts_with('-') {
                    flags.insert(token.to_owned());
                }
            }
        }
        if let Some(rest) = line.split("[aliases: ").nth(1) {
            for alias in rest.trim_end_matches(']').split(", ") {
                flags.insert(alias.trim_end_matches(']').to_owned());
            }
        }
    }
    flags
}

#[test]
fn an_unknown_flag_in_plugin_mode_fails_naming_it() {
    ensure_built();
    let app = TestApp::new(&KafkaTrigger { topic: shared_topic(), group_id: &unique("g"), dead_letter_topic: None });
    let mut plugin = Plugin::start(&app.spin_env(Some(""), &[API_TOKEN]), &["--state-dir", ".spin", "--bogus", "5"]);
    let status = plugin.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "--bogus accepted\n{}", plugin.output());
    assert!(plugin.stderr().contains("--bogus"), "{}", plugin.output());
    assert!(!app.app_dir.join(".spin").exists(), "nothing should start on a bad flag");
}

/// When `spin up` cannot read the triggers' launch metadata it gives every
/// flag to every trigger (`kafka::a_bare_rust_log_info_still_runs_both_triggers`
/// sees it on real Spin): the HTTP trigger's flags, values and all, are
/// accepted and ignored with a warning naming them, and the trigger runs.
#[test]
fn http_trigger_flags_from_spins_fallback_are_ignored_with_a_warning() {
    ensure_built();
    let app = TestApp::new(&KafkaTrigger { topic: shared_topic(), group_id: &unique("g"), dead_letter_topic: None });
    let args = ["--state-dir", ".spin", "--listen", "127.0.0.1:3000", "--find-free-port", "--request-timeout", "5s"];
    let mut plugin = Plugin::start(&app.spin_env(Some(""), &[API_TOKEN]), &args);
    plugin.wait_for("ignoring --listen, --find-free-port, --request-timeout: flags of Spin's HTTP trigger", STARTUP, Stream::Either);
    plugin.wait_for("Kafka trigger for component", STARTUP, Stream::Either);
    let status = plugin.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}\n{}", plugin.output());
}

// ---------------------------------------------------------------------------
// 3. State dir resolution, observed where the default database goes.

/// Runs the plugin with `args` (plus a `--sqlite` statement, which makes the
/// default database file exist at startup), waits for its startup line, and
/// stops it with SIGTERM (exit 0). Returns the app and where the database is
/// (`None`: in memory).
fn state_run(local_app_dir: Option<&str>, args: &[&str], runtime_config: Option<&str>) -> (TestApp, Option<PathBuf>) {
    ensure_built();
    let app = TestApp::new(&KafkaTrigger { topic: shared_topic(), group_id: &unique("g"), dead_letter_topic: None });
    let mut args: Vec<&str> = args.to_vec();
    if let Some(toml) = runtime_config {
        std::fs::write(app.app_dir.join("runtime-config.toml"), toml).unwrap();
        args.extend(["--runtime-config-file", "runtime-config.toml"]);
    }
    args.extend(["--sqlite", "CREATE TABLE IF NOT EXISTS startup_probe (x INTEGER)"]);
    let mut plugin = Plugin::start(&app.spin_env(local_app_dir, &[API_TOKEN]), &args);
    let deadline = Instant::now() + STARTUP;
    let db = loop {
        let out = plugin.stdout();
        if out.contains(IN_MEMORY) {
            break None;
        }
        if let Some(path) = storing_path(&out) {
            break Some(path);
        }
        if Instant::now() > deadline || plugin.exited() {
            panic!("no state line\n{}", plugin.output());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(db) = &db {
        // --sqlite runs right after the line; the file must then exist.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has_table(db, "startup_probe") {
            assert!(Instant::now() < deadline, "{} not created at startup\n{}", db.display(), plugin.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let status = plugin.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}\n{}", plugin.output());
    (app, db)
}

fn has_table(db: &Path, table: &str) -> bool {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [table], |r| r.get::<_, i64>(0))
        .map(|n| n == 1)
        .unwrap_or(false)
}

#[test]
fn state_dir_empty_local_app_dir_is_the_current_directory() {
    let (app, db) = state_run(Some(""), &[], None);
    assert_eq!(db, Some(app.app_dir.join(".spin/sqlite_db.db")));
}

#[test]
fn state_dir_relative_local_app_dir_is_against_the_current_directory() {
    // `spin up -f sub` from the parent: cwd = parent, SPIN_LOCAL_APP_DIR = "sub".
    let (app, db) = state_run(Some("sub"), &[], None);
    assert_eq!(db, Some(app.app_dir.join("sub/.spin/sqlite_db.db")));
}

#[test]
fn state_dir_absolute_local_app_dir() {
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere.path().canonicalize().unwrap();
    let (_app, db) = state_run(Some(elsewhere.to_str().unwrap()), &[], None);
    assert_eq!(db, Some(elsewhere.join(".spin/sqlite_db.db")));
}

#[test]
fn state_dir_unset_local_app_dir_means_in_memory() {
    // A registry app: no SPIN_LOCAL_APP_DIR, no flag, no runtime config.
    let (app, db) = state_run(None, &[], None);
    assert_eq!(db, None);
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
}

#[test]
fn state_dir_flag_absolute_beats_local_app_dir() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path().canonicalize().unwrap().join("state");
    let (app, db) = state_run(Some(""), &["--state-dir", state.to_str().unwrap()], None);
    assert_eq!(db, Some(state.join("sqlite_db.db")));
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
}

#[test]
fn state_dir_flag_relative_is_against_the_current_directory() {
    let (app, db) = state_run(Some("sub"), &["--state-dir", "my-state"], None);
    assert_eq!(db, Some(app.app_dir.join("my-state/sqlite_db.db")));
}

#[test]
fn state_dir_flag_empty_unsets_it() {
    // Spin: `--state-dir ""` is UserProvidedPath::Unset: no state dir at all,
    // neither the runtime config's nor `$SPIN_LOCAL_APP_DIR/.spin`.
    let (app, db) = state_run(Some(""), &["--state-dir", ""], Some("state_dir = \"cfg-state\"\n"));
    assert_eq!(db, None);
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
    assert!(!app.app_dir.join("cfg-state").exists());
}

#[test]
fn state_dir_from_runtime_config() {
    let (app, db) = state_run(Some(""), &[], Some("state_dir = \"cfg-state\"\n"));
    assert_eq!(db, Some(app.app_dir.join("cfg-state/sqlite_db.db")));
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
}

#[test]
fn state_dir_flag_beats_runtime_config() {
    let (app, db) = state_run(Some(""), &["--state-dir", "flag-state"], Some("state_dir = \"cfg-state\"\n"));
    assert_eq!(db, Some(app.app_dir.join("flag-state/sqlite_db.db")));
}

#[test]
fn state_dir_empty_in_runtime_config_unsets_it() {
    let (app, db) = state_run(Some(""), &[], Some("state_dir = \"\"\n"));
    assert_eq!(db, None);
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
}

#[test]
fn runtime_config_default_database_path_is_against_the_current_directory() {
    let toml = "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/custom.db\"\n";
    let (app, db) = state_run(Some(""), &["--state-dir", ".spin"], Some(toml));
    assert_eq!(db, Some(app.app_dir.join("data/custom.db")));
    assert!(!app.app_dir.join(".spin/sqlite_db.db").exists());
}

/// Runs the plugin expecting a startup failure; returns its stderr.
fn failing_run(extra_env: &[(&str, &str)], args: &[&str], runtime_config: Option<&str>) -> String {
    ensure_built();
    let app = TestApp::new(&KafkaTrigger { topic: shared_topic(), group_id: &unique("g"), dead_letter_topic: None });
    let mut args: Vec<&str> = args.to_vec();
    if let Some(toml) = runtime_config {
        std::fs::write(app.app_dir.join("runtime-config.toml"), toml).unwrap();
        args.extend(["--runtime-config-file", "runtime-config.toml"]);
    }
    let mut plugin = Plugin::start(&app.spin_env(Some(""), extra_env), &args);
    let status = plugin.wait_exit(STARTUP);
    assert!(!status.success(), "should fail at startup\n{}", plugin.output());
    let errors: Vec<String> = plugin.stderr().lines().filter(|l| l.starts_with("Error: ")).map(str::to_owned).collect();
    assert_eq!(errors.len(), 1, "one error line expected\n{}", plugin.output());
    errors[0].clone()
}

#[test]
fn libsql_database_in_runtime_config_is_a_clear_error() {
    let toml = "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://example.turso.io\"\ntoken = \"t\"\n";
    let error = failing_run(&[API_TOKEN], &["--state-dir", ".spin"], Some(toml));
    assert!(error.contains("libsql") && error.contains("sqlite_database.default"), "{error}");
}

#[test]
fn a_required_variable_without_value_fails_naming_it() {
    // No SPIN_VARIABLE_API_TOKEN: api_token is required (no default) and secret.
    let error = failing_run(&[], &["--state-dir", ".spin"], None);
    assert!(error.contains("api_token"), "{error}");
}

#[test]
fn sigterm_during_startup_still_exits_0() {
    // --disable-cache: compiling the component takes a noticeable while, and
    // `spin up` may be stopped right then.
    ensure_built();
    let app = TestApp::new(&KafkaTrigger { topic: shared_topic(), group_id: &unique("g"), dead_letter_topic: None });
    let mut plugin =
        Plugin::start(&app.spin_env(Some(""), &[API_TOKEN]), &["--state-dir", ".spin", "--disable-cache"]);
    plugin.wait_for_stdout(STORING, STARTUP);
    let status = plugin.terminate(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM during startup: {status}\n{}", plugin.output());
}

// ---------------------------------------------------------------------------
// 4. The plugin package `spin plugins install --file` reads. What the package
//    holds (checksum, the one executable entry, os/arch, the file:// URL) is
//    xtask's own tests' (xtask/tests/package.rs); this is the end to end run:
//    the real command on the real binary, which then runs as the plugin.

#[test]
fn package_plugin_writes_an_installable_manifest_and_tarball() {
    ensure_built();
    let out = crate::support::cargo()
        .args(["xtask", "package-plugin", "--binary", "target/debug/trigger-kafka"])
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "package-plugin failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));

    let manifest_path = root().join("target/spin-plugin/trigger-kafka.json");
    assert!(stdout.contains(&format!("manifest: {}", manifest_path.display())), "{stdout}");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["name"], "trigger-kafka");
    let version = manifest["version"].as_str().unwrap();
    let host_toml = std::fs::read_to_string(root().join("host/Cargo.toml")).unwrap();
    assert!(host_toml.contains(&format!("version = \"{version}\"")), "manifest version {version}");
    assert!(admits_spin_4_0_2(manifest["spinCompatibility"].as_str().unwrap()), "{}", manifest["spinCompatibility"]);

    // What `spin plugins install` unpacks from the package runs as the plugin.
    let url = manifest["packages"][0]["url"].as_str().unwrap();
    let tarball = PathBuf::from(url.strip_prefix("file://").unwrap_or_else(|| panic!("{url} is not file://")));
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(unpacked.path()).status().unwrap();
    assert!(status.success());
    let installed = unpacked.path().join("trigger-kafka");
    let probe = Command::new(&installed).arg("--launch-metadata-only").output().unwrap();
    assert!(probe.status.success());
    assert!(metadata_flags(&probe.stderr).contains("--state-dir"));
}

/// Whether a `>=X.Y[.Z]` requirement admits 4.0.2 (the form xtask writes).
fn admits_spin_4_0_2(requirement: &str) -> bool {
    let min = requirement.strip_prefix(">=").unwrap_or_else(|| panic!("unexpected requirement {requirement}"));
    let parts: Vec<u64> = min.trim().split('.').map(|p| p.parse().unwrap()).collect();
    let min = (parts[0], parts.get(1).copied().unwrap_or(0), parts.get(2).copied().unwrap_or(0));
    min <= (4, 0, 2)
}
