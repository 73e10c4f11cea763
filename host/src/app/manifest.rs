//! Loads a `spin.toml` (manifest version 2) into the app model. Unknown keys
//! are tolerated, as Spin tolerates them; features the host cannot honour are
//! recorded per component and refused only for components it is asked to run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{App, ComponentDef, TriggerDef, VariableDecl};

#[derive(Deserialize)]
struct Manifest {
    spin_manifest_version: toml::Value,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, Component>,
}

#[derive(Deserialize)]
struct Application {
    name: String,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
struct Variable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct Component {
    source: toml::Value,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<toml::Value>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    dependencies: toml::Table,
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<App> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &base_dir).with_context(|| format!("invalid manifest {}", path.display()))
}

fn parse(text: &str, base_dir: &Path) -> Result<App> {
    let manifest: Manifest = toml::from_str(text)?;
    if manifest.spin_manifest_version.as_integer() != Some(2) {
        bail!("only spin_manifest_version = 2 is supported");
    }
    let variables = manifest
        .variables
        .into_iter()
        .map(|(name, v)| {
            if v.required && v.default.is_some() {
                bail!("variable {name:?} is both required and has a default");
            }
            Ok((name, VariableDecl { default: v.default, secret: v.secret }))
        })
        .collect::<Result<_>>()?;
    let components = manifest
        .component
        .into_iter()
        .map(|(id, c)| Ok((id.clone(), component(id, c, base_dir)?)))
        .collect::<Result<_>>()?;
    let trigger_settings =
        manifest.application.trigger.into_iter().map(|(ty, table)| (ty, json_object(table))).collect();
    Ok(App { name: manifest.application.name, variables, components, triggers: triggers(manifest.trigger)?, trigger_settings })
}

fn component(id: String, c: Component, base_dir: &Path) -> Result<ComponentDef> {
    let source = match &c.source {
        toml::Value::String(s) => base_dir.join(s),
        _ => bail!("component {id:?}: only a local file `source` is supported"),
    };
    let unsupported = [
        ("files", c.files.is_empty()),
        ("key_value_stores", c.key_value_stores.is_empty()),
        ("ai_models", c.ai_models.is_empty()),
        (
            "allowed_outbound_hosts",
            c.allowed_outbound_hosts.iter().all(|h| super::outbound_host_supported(h)),
        ),
        ("dependencies", c.dependencies.is_empty()),
    ]
    .into_iter()
    .filter(|(_, empty)| !empty)
    .map(|(key, _)| key.to_owned())
    .collect();
    Ok(ComponentDef {
        id,
        source,
        databases: c.sqlite_databases,
        config: c.variables,
        environment: c.environment,
        allowed_outbound_hosts: c.allowed_outbound_hosts,
        unsupported,
        host_requirements: Vec::new(),
    })
}

fn triggers(by_type: BTreeMap<String, Vec<toml::Table>>) -> Result<Vec<TriggerDef>> {
    let mut triggers = Vec::new();
    for (trigger_type, entries) in by_type {
        for (index, entry) in entries.into_iter().enumerate() {
            let config = json_object(entry);
            let component = match config.get("component") {
                Some(serde_json::Value::String(c)) => c.clone(),
                _ => bail!("[[trigger.{trigger_type}]] #{index}: `component` must name a component"),
            };
            let id = config
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{component}-{trigger_type}-trigger"));
            triggers.push(TriggerDef { id, trigger_type: trigger_type.clone(), component, config });
        }
    }
    Ok(triggers)
}

/// A TOML table as a JSON object: the app model keeps trigger config as JSON,
/// whichever way the app was loaded.
fn json_object(table: toml::Table) -> serde_json::Map<String, serde_json::Value> {
    match toml_to_json(toml::Value::Table(table)) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a TOML table converts to a JSON object"),
    }
}

fn toml_to_json(value: toml::Value) -> serde_json::Value {
    serde_json::to_value(value).expect("TOML values are representable as JSON")
}

/// The manifest path for `--from`: a file, or a directory holding `spin.toml`.
pub fn resolve_path(from: &Path) -> PathBuf {
    if from.is_dir() {
        from.join("spin.toml")
    } else {
        from.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spin_fixture_shape() {
        let app = parse(
            r#"
spin_manifest_version = 2
[application]
name = "user-info-service"
future_key = true
[application.trigger.kafka]
brokers = "{{ kafka_brokers }}"
[variables]
kafka_brokers = { default = "127.0.0.1:9092" }
api_token = { required = true, secret = true }
[[trigger.http]]
route = "/user"
component = "user-http"
[[trigger.kafka]]
component = "user-kafka"
topics = ["user_service"]
[component.user-http]
source = "target/a.wasm"
sqlite_databases = ["default"]
[component.user-http.variables]
api_token = "{{ api_token }}"
[component.user-http.build]
command = "cargo build"
[component.user-kafka]
source = "target/b.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["postgres://{{ database_host }}"]
[component.other]
source = "c.wasm"
allowed_outbound_hosts = ["postgres://db:5432", "redis://cache"]
"#,
            Path::new("/app"),
        )
        .unwrap();
        assert_eq!(app.variables["api_token"].default, None);
        assert_eq!(app.components["user-http"].source, Path::new("/app/target/a.wasm"));
        assert_eq!(app.components["user-http"].config["api_token"], "{{ api_token }}");
        // Outbound PostgreSQL is provided (templates are judged once rendered); Redis is not.
        assert_eq!(app.components["user-kafka"].unsupported, ["key_value_stores"]);
        assert_eq!(app.components["user-kafka"].allowed_outbound_hosts, ["postgres://{{ database_host }}"]);
        assert_eq!(app.components["other"].unsupported, ["allowed_outbound_hosts"]);
        let kafka = app.triggers_of("kafka").next().unwrap();
        assert_eq!(kafka.id, "user-kafka-kafka-trigger");
        assert_eq!(kafka.config["topics"][0], "user_service");
        assert_eq!(app.settings("kafka")["brokers"], "{{ kafka_brokers }}");
        assert!(app.runnable_component(kafka).is_err());
    }

    #[test]
    fn refuses_other_manifest_versions() {
        let err = parse("spin_manifest_version = 1\n[application]\nname = \"x\"", Path::new("."));
        assert!(err.unwrap_err().to_string().contains("spin_manifest_version"));
    }
}
