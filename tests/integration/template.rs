//! The `spin new -t kafka-rust` template (templates/kafka-rust), the path a
//! new user takes: rendered with Spin's rules (Liquid `{{ }}` with Spin's
//! `kebab_case` and `snake_case` filters, its built-in `project-name`,
//! `authors` and `output-path`, `.tmpl` suffixes dropped), built for
//! wasm32-wasip2 against this repository's SDK, and run in the real host
//! against the real broker: a produced record reaches the handler.


use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use heck::{ToKebabCase, ToSnakeCase};
use liquid_core::{Display_filter, Filter, FilterReflection, ParseFilter, Result as LiquidResult, Runtime, Value, ValueView};
use crate::support::{kafka, Host};

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "kebab_case", description = "Spin's kebab_case", parsed(KebabCaseFilter))]
struct KebabCase;

#[derive(Debug, Default, Display_filter)]
#[name = "kebab_case"]
struct KebabCaseFilter;

impl Filter for KebabCaseFilter {
    fn evaluate(&self, input: &dyn ValueView, _: &dyn Runtime) -> LiquidResult<Value> {
        Ok(Value::scalar(input.to_kstr().as_str().to_kebab_case()))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "snake_case", description = "Spin's snake_case", parsed(SnakeCaseFilter))]
struct SnakeCase;

#[derive(Debug, Default, Display_filter)]
#[name = "snake_case"]
struct SnakeCaseFilter;

impl Filter for SnakeCaseFilter {
    fn evaluate(&self, input: &dyn ValueView, _: &dyn Runtime) -> LiquidResult<Value> {
        Ok(Value::scalar(input.to_kstr().as_str().to_snake_case()))
    }
}

fn template_dir() -> PathBuf {
    crate::support::root().join("templates/kafka-rust")
}

/// The template's declared parameters with their defaults.
fn declared_parameters() -> BTreeMap<String, toml::Value> {
    let text = std::fs::read_to_string(template_dir().join("metadata/spin-template.toml")).unwrap();
    let meta: toml::Table = toml::from_str(&text).expect("spin-template.toml is TOML");
    assert_eq!(meta["manifest_version"].as_str(), Some("1"));
    assert_eq!(meta["id"].as_str(), Some("kafka-rust"));
    let snippet = meta["add_component"]["snippets"]["component"].as_str().unwrap();
    assert!(template_dir().join("metadata/snippets").join(snippet).is_file(), "the add-component snippet exists");
    meta["parameters"].as_table().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Renders every file under `from` into `to` as `spin new` does.
fn render_tree(from: &Path, to: &Path, globals: &liquid::Object) {
    let parser = liquid::ParserBuilder::with_stdlib().filter(KebabCase).filter(SnakeCase).build().unwrap();
    for entry in walk(from) {
        let relative = entry.strip_prefix(from).unwrap();
        let mut target = to.join(relative);
        if target.extension().is_some_and(|e| e == "tmpl") {
            target.set_extension("");
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        let rendered = parser
            .parse(&text)
            .and_then(|t| t.render(globals))
            .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, rendered).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn spin_new_kafka_rust_builds_and_handles_a_record() {
    let params = declared_parameters();
    for name in ["kafka-brokers", "kafka-topic", "kafka-group", "project-description"] {
        assert!(params.contains_key(name), "the template declares {name}");
    }
    let topic = format!("events_{}", uuid::Uuid::new_v4().simple());
    kafka::create_topic(&topic, 1);

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("kafka-hello");
    // Spin's answers: the built-ins plus each parameter (defaults, except where a test needs its own).
    let mut globals = liquid::Object::new();
    globals.insert("project-name".into(), Value::scalar("Kafka Hello"));
    globals.insert("authors".into(), Value::scalar("Test <test@example.com>"));
    globals.insert("output-path".into(), Value::scalar("kafka-hello"));
    for (name, spec) in &params {
        let default = spec.get("default").and_then(toml::Value::as_str).unwrap_or_default();
        globals.insert(name.clone().into(), Value::scalar(default.to_owned()));
    }
    globals.insert("kafka-brokers".into(), Value::scalar(kafka::brokers()));
    globals.insert("kafka-topic".into(), Value::scalar(topic.clone()));
    globals.insert("kafka-group".into(), Value::scalar(format!("group_{topic}")));
    render_tree(&template_dir().join("content"), &project, &globals);

    // The snippet `spin add` uses renders too, and names the same component.
    let snippet_dir = dir.path().join("snippet");
    render_tree(&template_dir().join("metadata/snippets"), &snippet_dir, &globals);
    let snippet = std::fs::read_to_string(snippet_dir.join("component.txt")).unwrap();
    assert!(snippet.contains("[component.kafka-hello]"), "{snippet}");
    assert!(snippet.contains("kafka-hello/target/wasm32-wasip2/release/kafka_hello.wasm"), "{snippet}");

    let manifest = std::fs::read_to_string(project.join("spin.toml")).unwrap();
    let parsed: toml::Table = toml::from_str(&manifest).unwrap_or_else(|e| panic!("spin.toml: {e}\n{manifest}"));
    assert_eq!(parsed["application"]["name"].as_str(), Some("kafka-hello"));
    assert_eq!(parsed["trigger"]["kafka"][0]["topics"][0].as_str(), Some(topic.as_str()));
    assert_eq!(
        parsed["component"]["kafka-hello"]["source"].as_str(),
        Some("target/wasm32-wasip2/release/kafka_hello.wasm")
    );

    // The SDK is not on crates.io yet: this repository's copy overrides it, and
    // the workspace's lock pins the rest (so the build reuses what is compiled).
    let cargo_toml = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml).unwrap();
    assert!(text.contains("trigger-kafka-sdk = \"0.1\""), "{text}");
    let sdk = crate::support::root().join("sdk");
    let text = text.replace(
        "trigger-kafka-sdk = \"0.1\"",
        &format!("trigger-kafka-sdk = {{ path = {:?} }}", sdk.display().to_string()),
    );
    std::fs::write(&cargo_toml, text).unwrap();
    std::fs::copy(crate::support::root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = crate::support::root().join("target/template-kafka-rust");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--target", "wasm32-wasip2", "--release", "--offline"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "the generated project builds");
    let wasm = project.join("target/wasm32-wasip2/release/kafka_hello.wasm");
    std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
    std::fs::copy(target.join("wasm32-wasip2/release/kafka_hello.wasm"), &wasm).unwrap();

    let mut host = Host::start(&project.join("spin.toml"), &project.join(".spin"), &["kafka"], &[]);
    let value = format!("hello-{}", uuid::Uuid::new_v4());
    kafka::produce(&topic, &[(Some("k1".into()), value.clone().into_bytes())]);
    let line = host.wait_for_output(&format!("kafka_hello: {topic}/0@0 key=\"k1\" value={value}"), Duration::from_secs(120));
    assert!(line.contains(&value));
}
