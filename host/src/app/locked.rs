//! Loads the locked app (`spin.lock` JSON) that `spin up` hands a trigger
//! plugin through `SPIN_LOCKED_URL`. The format grows between Spin releases,
//! so every struct here ignores fields it does not know.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{App, ComponentDef, TriggerDef, VariableDecl};

#[derive(Deserialize)]
struct LockedApp {
    #[serde(default)]
    must_understand: Vec<String>,
    #[serde(default)]
    metadata: Map<String, Value>,
    /// Host features the whole app needs (Spin: every trigger checks these).
    #[serde(default)]
    host_requirements: Map<String, Value>,
    #[serde(default)]
    variables: BTreeMap<String, LockedVariable>,
    #[serde(default)]
    triggers: Vec<LockedTrigger>,
    #[serde(default)]
    components: Vec<LockedComponent>,
}

#[derive(Deserialize)]
struct LockedVariable {
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct LockedTrigger {
    id: String,
    trigger_type: String,
    #[serde(default)]
    trigger_config: Map<String, Value>,
}

#[derive(Deserialize)]
struct LockedComponent {
    id: String,
    #[serde(default)]
    metadata: Map<String, Value>,
    source: LockedSource,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<Value>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    dependencies: Map<String, Value>,
    /// Host features this component needs (e.g. `local_service_chaining`).
    #[serde(default)]
    host_requirements: Map<String, Value>,
}

#[derive(Deserialize)]
struct LockedSource {
    source: Option<String>,
}

/// Features of the lock format this loader understands (`must_understand`):
/// it reads both kinds of host requirements. Understanding them is not
/// providing them: as in Spin, the app's requirements must all be met, and a
/// component's only when this trigger runs it (see `App::runnable_component`),
/// so an HTTP component that chains services does not stop the Kafka trigger.
const UNDERSTOOD: &[&str] = &["host_requirements", "component_host_requirements"];

/// Reads the locked app at a `file://` URL.
pub fn load(url: &str) -> Result<App> {
    let path = file_url_to_path(url).with_context(|| format!("SPIN_LOCKED_URL {url:?}"))?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read locked app {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid locked app {}", path.display()))
}

pub fn parse(text: &str) -> Result<App> {
    let locked: LockedApp = serde_json::from_str(text)?;
    if let Some(feature) = locked.must_understand.iter().find(|f| !UNDERSTOOD.contains(&f.as_str())) {
        bail!("the locked app requires feature {feature:?}, which this trigger does not understand");
    }
    if !locked.host_requirements.is_empty() {
        let keys: Vec<&str> = locked.host_requirements.keys().map(String::as_str).collect();
        bail!("the app requires host feature(s) {}, which this trigger does not provide", keys.join(", "));
    }
    let name = locked.metadata.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    let trigger_settings = match locked.metadata.get("triggers") {
        Some(Value::Object(triggers)) => triggers
            .iter()
            .filter_map(|(ty, v)| v.as_object().map(|m| (ty.clone(), m.clone())))
            .collect(),
        _ => BTreeMap::new(),
    };
    let variables = locked
        .variables
        .into_iter()
        .map(|(name, v)| (name, VariableDecl { default: v.default, secret: v.secret }))
        .collect();

    let components = locked.components.into_iter().map(|c| Ok((c.id.clone(), component(c)?))).collect::<Result<_>>()?;

    let triggers = locked
        .triggers
        .into_iter()
        .map(|t| {
            let component = t
                .trigger_config
                .get("component")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("trigger {:?} names no component", t.id))?;
            Ok(TriggerDef { id: t.id, trigger_type: t.trigger_type, component, config: t.trigger_config })
        })
        .collect::<Result<_>>()?;

    Ok(App { name, variables, components, triggers, trigger_settings })
}

fn component(c: LockedComponent) -> Result<ComponentDef> {
    let source = match c.source.source.as_deref() {
        Some(url) if url.starts_with("file://") => file_url_to_path(url)?,
        Some(other) => bail!("component {:?}: unsupported source {other:?}", c.id),
        None => bail!("component {:?}: only file sources are supported", c.id),
    };
    let list = |key: &str| -> Vec<String> {
        c.metadata
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let allowed_outbound_hosts = list("allowed_outbound_hosts");
    let mut unsupported: Vec<String> = ["key_value_stores", "ai_models"]
        .into_iter()
        .filter(|key| !list(key).is_empty())
        .map(str::to_owned)
        .collect();
    if !allowed_outbound_hosts.iter().all(|h| super::outbound_host_supported(h)) {
        unsupported.push("allowed_outbound_hosts".into());
    }
    if !c.files.is_empty() {
        unsupported.push("files".into());
    }
    if !c.dependencies.is_empty() {
        unsupported.push("dependencies".into());
    }
    Ok(ComponentDef {
        databases: list("databases"),
        id: c.id,
        source,
        config: c.config,
        environment: c.env,
        allowed_outbound_hosts,
        unsupported,
        host_requirements: c.host_requirements.keys().cloned().collect(),
    })
}

fn file_url_to_path(url: &str) -> Result<PathBuf> {
    url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
        .with_context(|| format!("{url:?} is not a file:// URL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = test_support::fixtures::SPIN_4_0_2_LOCKED_APP;

    #[test]
    fn reads_what_spin_4_0_2_wrote() {
        let app = parse(FIXTURE).unwrap();
        assert_eq!(app.name, "user-info-service");
        assert_eq!(app.settings("kafka")["brokers"], "{{ kafka_brokers }}");
        assert_eq!(app.variables["kafka_brokers"].default.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(app.variables["api_token"].default, None);
        let kafka = app.triggers_of("kafka").next().unwrap();
        assert_eq!(kafka.component, "user-kafka");
        assert_eq!(kafka.config["dead_letter_topic"], "user_service.dlq");
        let component = app.runnable_component(kafka).unwrap();
        assert_eq!(component.databases, ["default"]);
        assert!(component.source.ends_with("user_kafka.wasm"));
        assert_eq!(app.components["user-http"].config["api_token"], "{{ api_token }}");
    }

    #[test]
    fn tolerates_unknown_fields_but_not_unknown_requirements() {
        let grown = FIXTURE.replacen('{', "{\"some_future_field\": {\"x\": 1},", 1);
        assert!(parse(&grown).is_ok());
        let demanding = FIXTURE.replacen('{', "{\"must_understand\": [\"teleport\"],", 1);
        assert!(parse(&demanding).unwrap_err().to_string().contains("teleport"));
    }

    /// `fixture` with `host_requirements` added to component `id`.
    fn with_component_requirement(fixture: &str, id: &str) -> String {
        let mut app: Value = serde_json::from_str(fixture).unwrap();
        app["must_understand"] = serde_json::json!(["component_host_requirements"]);
        let components = app["components"].as_array_mut().unwrap();
        let component = components.iter_mut().find(|c| c["id"] == id).unwrap();
        component["host_requirements"] = serde_json::json!({"local_service_chaining": "required"});
        app.to_string()
    }

    // What Spin writes when an HTTP component chains services: the Kafka trigger
    // runs, as Spin's own triggers do; only a requirement of a component it runs,
    // or of the whole app, stops it.
    #[test]
    fn host_requirements_count_only_for_the_components_this_trigger_runs() {
        let app = parse(&with_component_requirement(FIXTURE, "user-http")).unwrap();
        let kafka = app.triggers_of("kafka").next().unwrap();
        assert!(app.runnable_component(kafka).is_ok());

        let app = parse(&with_component_requirement(FIXTURE, "user-kafka")).unwrap();
        let kafka = app.triggers_of("kafka").next().unwrap();
        let err = app.runnable_component(kafka).unwrap_err().to_string();
        assert!(err.contains("user-kafka") && err.contains("local_service_chaining"), "{err}");

        let mut whole_app: Value = serde_json::from_str(FIXTURE).unwrap();
        whole_app["must_understand"] = serde_json::json!(["host_requirements"]);
        whole_app["host_requirements"] = serde_json::json!({"local_service_chaining": "required"});
        let err = parse(&whole_app.to_string()).unwrap_err().to_string();
        assert!(err.contains("local_service_chaining"), "{err}");
    }
}
