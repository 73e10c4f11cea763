//! The `spin new -t kafka-rust` template (templates/kafka-rust) as a user
//! outside this repository meets it, with real Spin: `spin templates install
//! --dir`, `spin new --accept-defaults`, `spin build`, `spin up`, and a
//! produced record reaches the handler. The generated app is built exactly as
//! generated, plus one `[patch.crates-io]` standing in for the SDK crates
//! until they are published (docs/spin-plugin.md). The patch points at what
//! `cargo package` makes of them, the very files crates.io would get, so a
//! file left out of a package fails here. It needs Spin's own template engine and `spin
//! build`, so it runs only under `scripts/test-spin` (ignored, and so counted
//! apart, in `scripts/test`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{kafka, root, Host, Launcher};

/// Runs a `spin` subcommand in `dir`; panics with its output when it fails.
fn spin(spin: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(spin).args(args).current_dir(dir).output().expect("run spin");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "spin {args:?} failed ({}):\n{text}", out.status);
    text
}

/// `cargo package` of the SDK and its macro (no verification build: the
/// template's build below is that), unpacked under `into`: each crate's name
/// and directory, as crates.io would serve them.
fn package_sdk(into: &Path) -> Vec<(&'static str, std::path::PathBuf)> {
    let status = crate::support::cargo()
        .args(["package", "--no-verify", "--allow-dirty", "-p", "trigger-kafka-sdk-macro", "-p", "trigger-kafka-sdk"])
        .status()
        .expect("run cargo package");
    assert!(status.success(), "cargo package of the SDK crates");
    [("trigger-kafka-sdk-macro", "sdk/macro"), ("trigger-kafka-sdk", "sdk")]
        .into_iter()
        .map(|(name, dir)| {
            let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap()).unwrap();
            let version = manifest["package"]["version"].as_str().unwrap();
            let krate = root().join(format!("target/package/{name}-{version}.crate"));
            let status = Command::new("tar").arg("xzf").arg(&krate).arg("-C").arg(into).status().expect("run tar");
            assert!(status.success(), "unpack {}", krate.display());
            (name, into.join(format!("{name}-{version}")))
        })
        .collect()
}

#[test]
#[ignore = "needs real Spin's `spin new` and `spin build`: scripts/test-spin runs it"]
fn spin_new_kafka_rust_builds_and_handles_a_record() {
    let Launcher::Spin(spin_bin) = Launcher::current() else {
        panic!("TEST_SPIN must name a spin binary: run this test through scripts/test-spin")
    };
    let topic = format!("events_{}", uuid::Uuid::new_v4().simple());
    kafka::create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();

    // Into the Spin data directory scripts/test-spin made, beside the plugin.
    spin(&spin_bin, &root(), &["templates", "install", "--dir", ".", "--upgrade"]);
    let listed = spin(&spin_bin, dir.path(), &["templates", "list"]);
    assert!(listed.contains("kafka-rust"), "{listed}");
    let brokers = format!("kafka-brokers={}", kafka::brokers());
    let topic_value = format!("kafka-topic={topic}");
    spin(
        &spin_bin,
        dir.path(),
        &["new", "-t", "kafka-rust", "kafka-hello", "--accept-defaults", "--value", &brokers, "--value", &topic_value],
    );
    let project = dir.path().join("kafka-hello");
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(project.join("spin.toml")).unwrap()).unwrap();
    assert_eq!(manifest["application"]["name"].as_str(), Some("kafka-hello"));
    assert_eq!(manifest["trigger"]["kafka"][0]["topics"][0].as_str(), Some(topic.as_str()));
    assert_eq!(manifest["trigger"]["kafka"][0]["group_id"].as_str(), Some("kafka-rust"), "the default group");

    // The one addition: the packaged SDK crates in place of the crates.io release.
    let cargo_toml = project.join("Cargo.toml");
    let generated = std::fs::read_to_string(&cargo_toml).unwrap();
    assert!(generated.contains("trigger-kafka-sdk = \""), "a crates.io dependency on the SDK:\n{generated}");
    let packaged = package_sdk(dir.path());
    let mut patch = String::from("\n[patch.crates-io]\n");
    for (name, path) in &packaged {
        patch.push_str(&format!("{name} = {{ path = {:?} }}\n", path.display().to_string()));
    }
    std::fs::write(&cargo_toml, generated + &patch).unwrap();
    // Build output kept across runs (a symlink, so the app's paths hold).
    let cache = root().join("target/template-kafka-rust");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, project.join("target")).unwrap();
    spin(&spin_bin, &project, &["build"]);

    let mut app = Host::start(&project.join("spin.toml"), &project.join(".spin"), &["kafka"], &[]);
    let value = format!("hello-{}", uuid::Uuid::new_v4());
    kafka::produce(&topic, &[(Some("k1".into()), value.clone().into_bytes())]);
    let line = app.wait_for_output(&format!("kafka_hello: {topic}/0@0 key=\"k1\" value={value}"), Duration::from_secs(120));
    assert!(line.contains(&value));
}
