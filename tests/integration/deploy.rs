//! deploy/kubernetes is checked with the real tools: every overlay is rendered
//! by the real `kustomize build` (pinned in deploy/tool-versions.env, installed
//! by scripts/deploy-tools), and every rendered SpinApp, SpinAppExecutor,
//! ScaledObject, TriggerAuthentication and HTTPRoute is validated against the
//! openAPIV3Schema of the CRD that spin-operator's, KEDA's and Gateway API's
//! Go modules (at the pinned versions, from the Go module proxy's cache) ship, with unknown
//! fields rejected, as the API server's strict field validation does. Then the
//! rendered objects are checked against spin.toml and each other. A missing
//! tool fails these tests; it never skips them.
//!
//! And the Kafka trigger image's exact command (deploy/Containerfile's
//! ENTRYPOINT, in the file layout its COPY lines build) runs with the rendered
//! Deployment's environment against the local broker and PostgreSQL. Only the
//! values that name cluster endpoints (the brokers, the Secret's database URL
//! and host, the metrics port) are swapped for local ones. It must apply
//! records, turn ready on /readyz and count them on /metrics.


use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use crate::support::kafka::{brokers, create_topic, produce};
use crate::support::{eventually, root};

const NAMESPACE: &str = "user-info";

// ---------------------------------------------------------------- the tools

/// deploy/tool-versions.env: KEY=VALUE lines.
fn pins() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("deploy/tool-versions.env")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn go() -> PathBuf {
    let on_path = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    if on_path {
        return "go".into();
    }
    let fallback = PathBuf::from("/usr/local/go/bin/go");
    assert!(fallback.exists(), "no Go toolchain (go on PATH, /usr/local/go/bin/go): scripts/deploy-tools needs one");
    fallback
}

fn go_output(args: &[&str]) -> String {
    let out = Command::new(go()).args(args).env("GOTOOLCHAIN", "local").output().expect("run go");
    assert!(out.status.success(), "go {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The pinned kustomize that scripts/deploy-tools installed.
fn kustomize() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let gobin = go_output(&["env", "GOBIN"]).trim().to_owned();
        let dir = if gobin.is_empty() { PathBuf::from(go_output(&["env", "GOPATH"]).trim()).join("bin") } else { gobin.into() };
        let bin = dir.join("kustomize");
        let want = &pins()["KUSTOMIZE_VERSION"];
        let version = Command::new(&bin).arg("version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        assert_eq!(
            version.as_deref(),
            Some(want.as_str()),
            "kustomize {want} is not at {} (scripts/deploy-tools installs it)",
            bin.display()
        );
        bin
    })
}

/// A pinned Go module's directory in the module cache (`go mod download`
/// fetches it through the module proxy when it is not there yet).
fn module_dir(module_key: &str, version_key: &str) -> PathBuf {
    let pins = pins();
    let spec = format!("{}@{}", pins[module_key], pins[version_key]);
    let info: Value = serde_json::from_str(&go_output(&["mod", "download", "-json", &spec])).unwrap();
    assert!(info["Error"].is_null(), "go mod download {spec}: {}", info["Error"]);
    PathBuf::from(info["Dir"].as_str().unwrap_or_else(|| panic!("go mod download {spec}: no Dir")))
}

// ------------------------------------------------------------ CRD schemas

/// Validators for the CRDs' (group, version, kind), from the modules' CRD files.
struct Crds(BTreeMap<(String, String, String), jsonschema::Validator>);

fn crds() -> &'static Crds {
    static CRDS: OnceLock<Crds> = OnceLock::new();
    CRDS.get_or_init(|| {
        let mut files = Vec::new();
        let modules = [
            ("SPIN_OPERATOR_MODULE", "SPIN_OPERATOR_VERSION", "config/crd/bases"),
            ("KEDA_MODULE", "KEDA_VERSION", "config/crd/bases"),
            ("GATEWAY_API_MODULE", "GATEWAY_API_VERSION", "config/crd/standard"),
        ];
        for (module, version, dir) in modules {
            let bases = module_dir(module, version).join(dir);
            for entry in std::fs::read_dir(&bases).unwrap_or_else(|e| panic!("{}: {e}", bases.display())) {
                files.push(entry.unwrap().path());
            }
        }
        let mut map = BTreeMap::new();
        for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
            for crd in yaml_documents(&std::fs::read_to_string(file).unwrap()) {
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = crd["spec"]["group"].as_str().unwrap().to_owned();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
                for version in crd["spec"]["versions"].as_array().unwrap() {
                    let mut schema = version["schema"]["openAPIV3Schema"].clone();
                    strict(&mut schema, true);
                    let validator = jsonschema::draft4::options()
                        .should_validate_formats(false)
                        .build(&schema)
                        .unwrap_or_else(|e| panic!("{kind} schema: {e}"));
                    map.insert((group.clone(), version["name"].as_str().unwrap().to_owned(), kind.clone()), validator);
                }
            }
        }
        for kind in ["SpinApp", "SpinAppExecutor", "ScaledObject", "TriggerAuthentication", "HTTPRoute"] {
            assert!(map.keys().any(|(_, _, k)| k == kind), "no CRD for {kind} in the modules");
        }
        Crds(map)
    })
}

/// A CRD's structural schema as a JSON schema that rejects what the API
/// server's strict field validation rejects: a field the schema does not
/// name, in any object that does not preserve unknown fields (the server
/// would prune it). `nullable` becomes a null type. The root's `metadata` is
/// the API server's own (ObjectMeta), left open.
fn strict(schema: &mut Value, root: bool) {
    let Value::Object(node) = schema else { return };
    let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if node.get("type") == Some(&json!("object")) && !preserve && !node.contains_key("additionalProperties") {
        node.insert("additionalProperties".into(), Value::Bool(false));
    }
    if node.remove("nullable") == Some(Value::Bool(true)) {
        if let Some(Value::String(t)) = node.get("type").cloned() {
            node.insert("type".into(), json!([t, "null"]));
        }
    }
    if let Some(Value::Object(props)) = node.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if root && name == "metadata" {
                continue;
            }
            strict(prop, false);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get_mut(key) {
            strict(child, false);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = node.get_mut(key) {
            list.iter_mut().for_each(|c| strict(c, false));
        }
    }
}

/// Errors of an object against its CRD; None when it is not a CRD kind.
fn crd_errors(object: &Value) -> Option<Vec<String>> {
    let (group, version) = object["apiVersion"].as_str()?.split_once('/')?;
    let kind = object["kind"].as_str()?;
    let validator = crds().0.get(&(group.to_owned(), version.to_owned(), kind.to_owned()))?;
    Some(validator.iter_errors(object).map(|e| format!("{} at {}", e, e.instance_path())).collect())
}

const CRD_GROUPS: [&str; 3] = ["core.spinkube.dev", "keda.sh", "gateway.networking.k8s.io"];

// -------------------------------------------------------------- rendering

fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kubernetes() -> PathBuf {
    root().join("deploy/kubernetes")
}

/// `kustomize build <dir>`: the rendered objects.
fn build(dir: &Path) -> Vec<Value> {
    let out = Command::new(kustomize()).arg("build").arg(dir).output().expect("run kustomize");
    assert!(out.status.success(), "kustomize build {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    yaml_documents(&String::from_utf8(out.stdout).unwrap())
}

/// An overlay written for the test under target/, built on deploy/kubernetes.
fn build_overlay(name: &str, kustomization: &str) -> Vec<Value> {
    let dir = root().join("target/deploy-test").join(crate::support::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    // kustomize takes only relative paths to other kustomizations.
    let text = kustomization.replace("@K/", "../../../deploy/kubernetes/");
    std::fs::write(dir.join("kustomization.yaml"), text).unwrap();
    let objects = build(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    objects
}

/// Every overlay a user applies or builds on: the base, the examples, and the
/// base with each component alone.
fn overlays() -> Vec<(String, Vec<Value>)> {
    let mut all = vec![
        ("base".to_owned(), build(&kubernetes().join("base"))),
        ("examples".to_owned(), build(&kubernetes().join("examples"))),
    ];
    for entry in std::fs::read_dir(kubernetes().join("components")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let objects = build_overlay(&name, &format!("resources: [\"@K/base\"]\ncomponents: [\"@K/components/{name}\"]\n"));
        all.push((format!("base + components/{name}"), objects));
    }
    all
}

struct Rendered<'a>(&'a [Value]);

impl<'a> Rendered<'a> {
    fn all(&self, kind: &str) -> Vec<&'a Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }
    fn find(&self, kind: &str, name: &str) -> Option<&'a Value> {
        self.0.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
    fn one(&self, kind: &str) -> &'a Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "one {kind}");
        all[0]
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn spin_toml() -> toml::Table {
    std::fs::read_to_string(root().join("spin.toml")).unwrap().parse().unwrap()
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn env_entry<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    container(deployment)["env"].as_array()?.iter().find(|e| e["name"] == name)
}

fn env_value<'a>(deployment: &'a Value, name: &str) -> Option<&'a str> {
    env_entry(deployment, name)?["value"].as_str()
}

/// (Secret, key) pairs an object reads.
fn secret_refs(objects: &[Value]) -> BTreeSet<(String, String)> {
    let mut refs = BTreeSet::new();
    fn walk(v: &Value, refs: &mut BTreeSet<(String, String)>) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("secretKeyRef") {
                    refs.insert((s(&r["name"]).to_owned(), s(&r["key"]).to_owned()));
                }
                if let Some(secret) = map.get("secret").filter(|s| s["secretName"].is_string()) {
                    for item in secret["items"].as_array().into_iter().flatten() {
                        refs.insert((s(&secret["secretName"]).to_owned(), s(&item["key"]).to_owned()));
                    }
                }
                map.values().for_each(|c| walk(c, refs));
            }
            Value::Array(list) => list.iter().for_each(|c| walk(c, refs)),
            _ => {}
        }
    }
    for object in objects {
        walk(object, &mut refs);
        if object["kind"] == "TriggerAuthentication" {
            for r in object["spec"]["secretTargetRef"].as_array().into_iter().flatten() {
                refs.insert((s(&r["name"]).to_owned(), s(&r["key"]).to_owned()));
            }
        }
        if object["kind"] == "SpinAppExecutor" {
            if let Some(name) = object["spec"]["deploymentConfig"]["caCertSecret"].as_str() {
                // The key the operator mounts at /etc/ssl/certs/ca-certificates.crt.
                refs.insert((name.to_owned(), "ca-certificates.crt".to_owned()));
            }
        }
    }
    refs
}

// ------------------------------------------------------------------ tests

#[test]
fn every_overlay_renders_objects_the_crds_accept() {
    for (name, objects) in overlays() {
        let mut validated = BTreeSet::new();
        for object in &objects {
            let kind = s(&object["kind"]);
            match crd_errors(object) {
                Some(errors) => {
                    assert!(errors.is_empty(), "{name}: {kind} {} is refused by its CRD: {errors:#?}", object["metadata"]["name"]);
                    validated.insert(kind.to_owned());
                }
                None => {
                    let group = s(&object["apiVersion"]).split('/').next().unwrap();
                    assert!(!CRD_GROUPS.contains(&group), "{name}: {kind} {} has no CRD at its apiVersion", object["apiVersion"]);
                }
            }
        }
        for kind in ["SpinApp", "SpinAppExecutor", "ScaledObject"] {
            assert!(validated.contains(kind), "{name} renders a {kind}");
        }
        if name == "examples" {
            assert!(validated.contains("HTTPRoute") && validated.contains("TriggerAuthentication"), "{name}: {validated:?}");
        }
    }
}

// The lag-seconds option: a second KEDA trigger, Prometheus on a gauge the host
// really exports, beside the base's Kafka scaler (which it must not replace).
#[test]
fn the_lag_seconds_option_adds_a_prometheus_trigger_on_an_exported_gauge() {
    let objects = build_overlay("keda-lag-seconds", "resources: [\"@K/base\"]\ncomponents: [\"@K/components/keda-lag-seconds\"]\n");
    let rendered = Rendered(&objects);
    let scaled = rendered.one("ScaledObject");
    assert_eq!(crd_errors(scaled), Some(Vec::new()), "{scaled:#}");
    let triggers = scaled["spec"]["triggers"].as_array().unwrap();
    let types: Vec<&str> = triggers.iter().map(|t| s(&t["type"])).collect();
    assert_eq!(types, ["kafka", "prometheus"]);
    let prometheus = &triggers[1];
    assert_eq!(prometheus["metricType"], "Value");
    let query = s(&prometheus["metadata"]["query"]);
    assert!(query.contains("trigger_kafka_consumer_lag_seconds{"), "{query}");
    let exported = std::fs::read_to_string(root().join("host/src/serve/monitoring/metrics.rs")).unwrap();
    assert!(exported.contains("\"trigger_kafka_consumer_lag_seconds\""), "the host registers the gauge the query reads");
    let threshold: f64 = s(&prometheus["metadata"]["threshold"]).parse().expect("a number of seconds");
    assert!(threshold > 0.0);
    // The topic it watches is the one the Kafka scaler and spin.toml consume.
    let topic = s(&triggers[0]["metadata"]["topic"]);
    assert!(query.contains(&format!("topic=\"{topic}\"")), "{query} watches {topic}");
    let deployment = rendered.one("Deployment");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "Prometheus scrapes the trigger's /metrics");
}

#[test]
fn the_crd_check_rejects_unknown_and_mistyped_fields() {
    let objects = build(&kubernetes().join("base"));
    let rendered = Rendered(&objects);
    let spinapp = rendered.one("SpinApp");
    assert_eq!(crd_errors(spinapp), Some(vec![]));
    let refused = |mutate: &dyn Fn(&mut Value)| {
        let mut copy = spinapp.clone();
        mutate(&mut copy);
        !crd_errors(&copy).unwrap().is_empty()
    };
    assert!(refused(&|o| o["spec"]["imageName"] = json!("x")), "an unknown spec field");
    assert!(refused(&|o| o["spec"]["checks"]["liveness"]["httpGet"]["port"] = json!(80)), "an unknown nested field");
    assert!(refused(&|o| o["spec"]["replicas"] = json!("two")), "a wrong type");
    assert!(refused(&|o| o["spec"].as_object_mut().unwrap().remove("executor").map(drop).unwrap()), "a required field missing");
    let mut scaled = rendered.one("ScaledObject").clone();
    scaled["spec"]["cooldown"] = json!(30);
    assert!(!crd_errors(&scaled).unwrap().is_empty(), "an unknown ScaledObject field");
}

#[test]
fn the_overlays_images_reach_the_spinapp_and_the_deployment() {
    let objects = build_overlay(
        "images",
        "resources: [\"@K/base\"]\nimages:\n  - name: user-info-service\n    newName: registry.test/app\n    newTag: \"9.8.7\"\n  \
         - name: user-info-kafka-trigger\n    newName: registry.test/trigger\n    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    );
    let rendered = Rendered(&objects);
    assert_eq!(rendered.one("SpinApp")["spec"]["image"], "registry.test/app:9.8.7");
    assert_eq!(
        container(rendered.one("Deployment"))["image"],
        "registry.test/trigger@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );

    let examples = build(&kubernetes().join("examples"));
    let rendered = Rendered(&examples);
    assert_eq!(rendered.one("SpinApp")["spec"]["image"], "ghcr.io/example/user-info-service:0.1.0");
    assert_eq!(container(rendered.one("Deployment"))["image"], "ghcr.io/example/user-info-kafka-trigger:0.1.0");
}

#[test]
fn namespaces_executor_secrets_and_budgets_are_in_place() {
    for (name, objects) in overlays() {
        let rendered = Rendered(&objects);
        let namespace = rendered.one("Namespace");
        assert_eq!(namespace["metadata"]["name"], NAMESPACE);
        let labels = &namespace["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline", "{name}: enforced Pod Security level");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted", "{name}");
        for object in objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(object["metadata"]["namespace"], NAMESPACE, "{name}: {} {}", object["kind"], object["metadata"]["name"]);
        }

        // spin-operator resolves the executor in the SpinApp's namespace.
        let spinapp = rendered.one("SpinApp");
        let executor = rendered
            .find("SpinAppExecutor", s(&spinapp["spec"]["executor"]))
            .unwrap_or_else(|| panic!("{name}: the SpinApp's executor is rendered beside it"));
        assert_eq!(executor["metadata"]["namespace"], spinapp["metadata"]["namespace"]);
        assert_eq!(executor["spec"]["createDeployment"], true);
        let config = &executor["spec"]["deploymentConfig"];
        assert_eq!(config["runtimeClassName"], "wasmtime-spin-v2", "{name}: containerd-shim-spin's RuntimeClass");
        let ca_mounted = config["installDefaultCACerts"] == true || config["caCertSecret"].is_string();
        assert!(ca_mounted, "{name}: the shim's pods get a CA bundle to verify PostgreSQL with");
        if config["caCertSecret"].is_string() {
            // Otherwise the operator would create that Secret, with public roots only.
            assert_ne!(config["installDefaultCACerts"], true, "{name}: caCertSecret is the user's own");
        }

        // The base creates no Secret; whatever renders Secrets has every key read.
        let secrets = rendered.all("Secret");
        if name == "base" || name.starts_with("base +") {
            assert!(secrets.is_empty(), "{name}: the base creates no Secret");
        } else {
            for (secret, key) in secret_refs(&objects) {
                let found = rendered.find("Secret", &secret).unwrap_or_else(|| panic!("{name}: Secret {secret} is rendered"));
                assert!(
                    found["stringData"][&key].is_string() || found["data"][&key].is_string(),
                    "{name}: Secret {secret} has key {key}"
                );
            }
        }

        // A PodDisruptionBudget selecting each workload's pods.
        let deployment = rendered.one("Deployment");
        let pod_labels = |object: &Value| -> BTreeMap<String, String> {
            if object["kind"] == "SpinApp" {
                // spin-operator labels a SpinApp's pods with its name.
                BTreeMap::from([("core.spinkube.dev/app-name".to_owned(), s(&object["metadata"]["name"]).to_owned())])
            } else {
                serde_json::from_value(object["spec"]["template"]["metadata"]["labels"].clone()).unwrap()
            }
        };
        for workload in [spinapp, deployment] {
            let labels = pod_labels(workload);
            let budgets = rendered.all("PodDisruptionBudget");
            let covered = budgets.iter().any(|pdb| {
                let wanted: BTreeMap<String, String> = serde_json::from_value(pdb["spec"]["selector"]["matchLabels"].clone()).unwrap();
                !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
            });
            assert!(covered, "{name}: a PodDisruptionBudget selects {}'s pods", workload["metadata"]["name"]);
        }
    }
}

#[test]
fn the_spinapp_runs_the_http_component_with_checks_and_a_token() {
    let app = spin_toml();
    let declared = app["variables"].as_table().unwrap();
    for (name, objects) in overlays() {
        let spinapp = Rendered(&objects).one("SpinApp").clone();
        // spin-operator's Service for a SpinApp: its name, port 80.
        for route in Rendered(&objects).all("HTTPRoute") {
            for backend in route["spec"]["rules"].as_array().unwrap().iter().flat_map(|r| r["backendRefs"].as_array().unwrap()) {
                assert_eq!(backend["name"], spinapp["metadata"]["name"], "{name}: the route reaches the SpinApp's Service");
                assert_eq!(backend["port"], 80, "{name}: the Service's port");
            }
        }
        let spec = &spinapp["spec"];
        assert_eq!(spec["components"], json!(["user-http"]), "{name}: the shim runs HTTP triggers only");
        assert!(app["trigger"]["http"].as_array().unwrap().iter().any(|t| t["component"].as_str() == Some("user-http")));
        assert!(spec["replicas"].as_u64().unwrap() >= 2, "{name}: more than one HTTP pod");
        for probe in ["liveness", "readiness"] {
            assert_eq!(spec["checks"][probe]["httpGet"]["path"], "/.well-known/spin/health", "{name}: {probe} check");
        }
        let mut variables = BTreeMap::new();
        for var in spec["variables"].as_array().unwrap() {
            let var_name = s(&var["name"]);
            assert!(declared.contains_key(var_name), "{name}: SpinApp variable {var_name} is declared in spin.toml");
            variables.insert(var_name.to_owned(), var.clone());
        }
        for secret in ["database_url", "api_token"] {
            assert!(
                variables[secret]["valueFrom"]["secretKeyRef"]["name"].is_string(),
                "{name}: {secret} comes from a Secret"
            );
        }
    }
}

#[test]
fn the_kafka_side_and_keda_agree() {
    let app = spin_toml();
    let kafka = &app["trigger"]["kafka"][0];
    let declared = app["variables"].as_table().unwrap();
    let client = app["application"]["trigger"]["kafka"]["client"].as_table().unwrap();
    let run = std::fs::read_to_string(root().join("scripts/run")).unwrap();
    let image = containerfile();
    for (name, objects) in overlays() {
        let rendered = Rendered(&objects);
        let deployment = rendered.one("Deployment");
        assert!(deployment["spec"]["replicas"].is_null(), "{name}: KEDA owns the replica count; a fixed one resets it");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let uid: u64 = image.user.parse().expect("USER is a numeric uid (runAsNonRoot needs one)");
        assert_ne!(uid, 0);
        assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(uid));
        let c = container(deployment);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");

        for env in c["env"].as_array().unwrap() {
            if let Some(var) = s(&env["name"]).strip_prefix("SPIN_VARIABLE_") {
                let var = var.to_ascii_lowercase();
                // The pod name is exposed for a per-pod identity of the trigger.
                assert!(var == "pod_name" || declared.contains_key(&var), "{name}: {var} is declared in spin.toml");
            }
        }
        let pod_name = env_entry(deployment, "SPIN_VARIABLE_POD_NAME").expect("the pod name exposed");
        assert_eq!(pod_name["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");

        assert_eq!(s(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
        assert_eq!(s(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
        let probe_port = s(&c["readinessProbe"]["httpGet"]["port"]);
        let port = c["ports"].as_array().unwrap().iter().find(|p| p["name"] == probe_port).unwrap();
        let listen = env_value(deployment, "TRIGGER_KAFKA_METRICS_LISTEN").unwrap();
        assert!(listen.ends_with(&format!(":{}", port["containerPort"])), "{name}: probes reach the metrics listener");

        let scaled = rendered.one("ScaledObject");
        let spec = &scaled["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
        let min = spec["minReplicaCount"].as_u64().unwrap_or(0);
        if min >= 1 {
            // KEDA's cooldownPeriod only applies to scaling to zero.
            assert!(spec["cooldownPeriod"].is_null(), "{name}: cooldownPeriod does nothing with minReplicaCount {min}");
            let window = &spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"];
            assert!(window.as_u64().is_some_and(|w| w >= 60), "{name}: scale-down is slowed by the HPA's window");
        } else {
            assert!(spec["cooldownPeriod"].is_u64(), "{name}: scaling to zero needs a cooldownPeriod");
        }
        let max = spec["maxReplicaCount"].as_u64().unwrap();
        assert!(run.contains(&format!("create-topic user_service {max} ")), "{name}: maxReplicaCount {max} is the partition count");

        let trigger = &spec["triggers"][0];
        assert_eq!(trigger["type"], "kafka");
        let meta = &trigger["metadata"];
        assert_eq!(s(&meta["consumerGroup"]), kafka["group_id"].as_str().unwrap());
        assert_eq!(s(&meta["topic"]), kafka["topics"][0].as_str().unwrap());
        assert_eq!(
            s(&meta["bootstrapServers"]),
            env_value(deployment, "SPIN_VARIABLE_KAFKA_BROKERS").unwrap(),
            "{name}: KEDA watches the brokers the trigger consumes from"
        );

        // TLS and SASL: KEDA and the trigger's client settings say the same.
        let protocol = env_value(deployment, "SPIN_VARIABLE_KAFKA_SECURITY_PROTOCOL")
            .map(str::to_owned)
            .unwrap_or_else(|| declared["kafka_security_protocol"]["default"].as_str().unwrap().to_owned())
            .to_ascii_lowercase();
        assert_eq!(client["security.protocol"].as_str(), Some("{{ kafka_security_protocol }}"));
        let keda_tls = meta["tls"].as_str().unwrap_or("disable");
        assert_eq!(keda_tls == "enable", protocol.ends_with("ssl"), "{name}: KEDA's tls matches {protocol}");
        let keda_sasl = meta["sasl"].as_str().unwrap_or("none");
        assert_eq!(keda_sasl != "none", protocol.starts_with("sasl"), "{name}: KEDA's sasl matches {protocol}");
        if protocol.starts_with("sasl") {
            let mechanism = env_value(deployment, "SPIN_VARIABLE_KAFKA_SASL_MECHANISM").unwrap();
            let keda_name = match mechanism {
                "PLAIN" => "plaintext",
                "SCRAM-SHA-256" => "scram_sha256",
                "SCRAM-SHA-512" => "scram_sha512",
                other => panic!("{name}: mechanism {other}"),
            };
            assert_eq!(keda_sasl, keda_name, "{name}: one SASL mechanism");
            let auth_name = s(&trigger["authenticationRef"]["name"]);
            let auth = rendered.find("TriggerAuthentication", auth_name).expect("the TriggerAuthentication is rendered");
            let param = |p: &str| {
                let r = auth["spec"]["secretTargetRef"].as_array().unwrap().iter().find(|r| r["parameter"] == p);
                r.map(|r| (s(&r["name"]).to_owned(), s(&r["key"]).to_owned()))
            };
            for (parameter, variable) in [("username", "SPIN_VARIABLE_KAFKA_USERNAME"), ("password", "SPIN_VARIABLE_KAFKA_PASSWORD")] {
                let r = &env_entry(deployment, variable).unwrap()["valueFrom"]["secretKeyRef"];
                assert_eq!(param(parameter), Some((s(&r["name"]).to_owned(), s(&r["key"]).to_owned())), "{name}: one {parameter}");
            }
            // The brokers' CA: the Secret key KEDA reads is the file the trigger names.
            let (ca_secret, ca_key) = param("ca").expect("KEDA gets the brokers' CA");
            let location = env_value(deployment, "SPIN_VARIABLE_KAFKA_SSL_CA_LOCATION").unwrap();
            assert_eq!(mounted_secret_file(deployment, location), Some((ca_secret, ca_key)), "{name}: one brokers' CA");
        }

        // A private PostgreSQL CA: the trigger's OpenSSL reads the bundle the shim gets.
        let executor = rendered.one("SpinAppExecutor");
        if let Some(ca) = executor["spec"]["deploymentConfig"]["caCertSecret"].as_str() {
            let file = env_value(deployment, "SSL_CERT_FILE").expect("the trigger verifies PostgreSQL with the same CA");
            assert_eq!(mounted_secret_file(deployment, file), Some((ca.to_owned(), "ca-certificates.crt".to_owned())), "{name}");
        }
    }
}

/// The (Secret, key) a file path in the trigger's container is mounted from.
fn mounted_secret_file(deployment: &Value, path: &str) -> Option<(String, String)> {
    let mount = container(deployment)["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| path.starts_with(&format!("{}/", s(&m["mountPath"]).trim_end_matches('/'))))?;
    let relative = &path[s(&mount["mountPath"]).trim_end_matches('/').len() + 1..];
    let volume = deployment["spec"]["template"]["spec"]["volumes"].as_array()?.iter().find(|v| v["name"] == mount["name"])?;
    let secret = &volume["secret"];
    let item = secret["items"].as_array()?.iter().find(|i| i["path"] == relative)?;
    Some((s(&secret["secretName"]).to_owned(), s(&item["key"]).to_owned()))
}

#[test]
fn the_image_builds_reproducibly_from_sources_only() {
    let text = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    let from = text.lines().find(|l| l.starts_with("FROM ") && l.contains(" AS build")).expect("a build stage");
    let tag = from.split_whitespace().nth(1).unwrap().rsplit_once(':').unwrap().1;
    let version = tag.split('-').next().unwrap();
    assert_eq!(version.split('.').count(), 3, "the build image is pinned to a patch release: {from}");
    // rust-toolchain.toml's channel would override the image's toolchain;
    // RUSTUP_TOOLCHAIN overrides that file.
    assert!(text.contains(&format!("ENV RUSTUP_TOOLCHAIN={version}")), "the build uses the image's own toolchain {version}");
    for line in text.lines().filter(|l| l.contains("cargo build")) {
        assert!(line.contains("--locked"), "builds Cargo.lock's versions: {line}");
    }
    let ignore = std::fs::read_to_string(root().join(".containerignore")).expect(".containerignore");
    let entries: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target/", ".git"] {
        assert!(entries.contains(&entry), ".containerignore keeps {entry} out of the build context");
    }
}

// ---------------------------------------------------- the trigger image

/// The final stage of deploy/Containerfile.
#[derive(Debug, Default)]
struct Image {
    workdir: String,
    /// (sources in the build stage, destination in the image)
    copies: Vec<(Vec<String>, String)>,
    user: String,
    entrypoint: Vec<String>,
    env: Vec<(String, String)>,
}

fn containerfile() -> Image {
    let text = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    // Only the last stage is the image.
    let last_from = lines.iter().rposition(|l| l.to_ascii_uppercase().starts_with("FROM ")).expect("a FROM line");
    let mut image = Image::default();
    for line in &lines[last_from + 1..] {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "WORKDIR" => image.workdir = rest.to_owned(),
            "USER" => image.user = rest.to_owned(),
            "ENTRYPOINT" => image.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec (JSON) form"),
            "CMD" => panic!("the image's command is its ENTRYPOINT alone"),
            "ENV" => {
                let (k, v) = rest.split_once('=').expect("ENV KEY=VALUE");
                image.env.push((k.to_owned(), v.trim_matches('"').to_owned()));
            }
            "COPY" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert!(words[0].starts_with("--from="), "the image copies only from the build stage: {line}");
                let (dest, sources) = words[1..].split_last().unwrap();
                image.copies.push((sources.iter().map(|s| s.to_string()).collect(), dest.to_string()));
            }
            _ => {}
        }
    }
    image
}

/// Where a build-stage path (`/src/...`, the repository) is in this checkout:
/// the components as the tests build them, and the host's debug build.
fn local_source(path: &str) -> PathBuf {
    let rel = path.strip_prefix("/src/").unwrap_or_else(|| panic!("{path} is not from the repository"));
    if rel == "target/release/trigger-kafka" {
        return crate::support::host_binary();
    }
    if let Some(file) = rel.strip_prefix("target/wasm32-wasip2/release/") {
        return crate::support::wasm(file.trim_end_matches(".wasm"));
    }
    root().join(rel)
}

/// Lays out the image's files under `dir` (absolute image paths below it);
/// returns the executable the entrypoint names.
fn lay_out(image: &Image, dir: &Path) -> PathBuf {
    let mut executable = None;
    for (sources, dest) in &image.copies {
        let dest = if dest.starts_with('/') { dest.clone() } else { format!("{}/{dest}", image.workdir) };
        for source in sources {
            let from = local_source(source);
            let to = if dest.ends_with('/') {
                dir.join(dest.trim_start_matches('/')).join(Path::new(source).file_name().unwrap())
            } else {
                dir.join(dest.trim_start_matches('/'))
            };
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
            if to.file_name() == Path::new(&image.entrypoint[0]).file_name() && to.starts_with(dir.join("usr/local/bin")) {
                executable = Some(to);
            }
        }
    }
    executable.expect("the entrypoint's executable is copied to /usr/local/bin")
}

#[test]
fn the_trigger_image_command_with_the_rendered_environment_applies_records() {
    crate::support::ensure_built();
    let image = containerfile();
    let dir = tempfile::tempdir().unwrap();
    let executable = lay_out(&image, dir.path());
    let workdir = dir.path().join(image.workdir.trim_start_matches('/'));

    // The base's Deployment as kustomize renders it; the Secret's values are
    // the local PostgreSQL's.
    let objects = build(&kubernetes().join("base"));
    let deployment = Rendered(&objects).one("Deployment").clone();
    let database = crate::support::postgres::new_database();
    let local_secret = |name: &str, key: &str| match (name, key) {
        ("user-info-database", "database-url") => database.clone(),
        ("user-info-database", "database-host") => crate::support::postgres::authority(&database),
        other => panic!("the base Deployment reads an unexpected Secret key {other:?}"),
    };
    let metrics = format!("127.0.0.1:{}", crate::support::free_port());
    let mut env: Vec<(String, String)> = image.env.clone();
    for e in container(&deployment)["env"].as_array().unwrap() {
        let name = s(&e["name"]).to_owned();
        let value = match (name.as_str(), e["value"].as_str()) {
            ("SPIN_VARIABLE_KAFKA_BROKERS", Some(_)) => brokers(),
            ("TRIGGER_KAFKA_METRICS_LISTEN", Some(_)) => metrics.clone(),
            (_, Some(v)) => v.to_owned(),
            (_, None) => {
                let from = &e["valueFrom"];
                if let Some(field) = from["fieldRef"]["fieldPath"].as_str() {
                    assert_eq!(field, "metadata.name");
                    "user-kafka-trigger-5d9c7b8f6-x2x4q".to_owned()
                } else {
                    local_secret(s(&from["secretKeyRef"]["name"]), s(&from["secretKeyRef"]["key"]))
                }
            }
        };
        env.push((name, value));
    }

    let app = spin_toml();
    let topic = app["trigger"]["kafka"][0]["topics"][0].as_str().unwrap().to_owned();
    create_topic(&topic, 3);
    let child = Command::new(&executable)
        .args(&image.entrypoint[1..])
        .current_dir(&workdir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the image's command");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = Kill(child);

    let base = format!("http://{metrics}");
    let status = |path: &str| crate::support::http().get(format!("{base}{path}")).call().map(|r| r.status().as_u16()).ok();
    eventually("/healthz to answer", Duration::from_secs(120), || {
        if let Ok(Some(exit)) = guard.0.try_wait() {
            panic!("the trigger exited: {exit}");
        }
        status("/healthz") == Some(200)
    });
    eventually("/readyz to turn ready", Duration::from_secs(120), || status("/readyz") == Some(200));

    let users: Vec<String> = (0..30).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let records: Vec<_> = users
        .iter()
        .map(|u| (Some(u.clone()), json!({"user_id": u, "first_name": "Deployed"}).to_string().into_bytes()))
        .collect();
    produce(&topic, &records);
    eventually("the records in PostgreSQL", Duration::from_secs(120), || {
        users.iter().all(|u| crate::support::postgres::user_in_db(&database, u).is_some_and(|r| r["first_name"] == "Deployed"))
    });
    let handled = || -> f64 {
        let body = crate::support::http().get(format!("{base}/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
        body.lines()
            .filter(|l| l.starts_with("trigger_kafka_records_handled_total{") && l.contains(&format!("topic=\"{topic}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    eventually("/metrics to count the records, each once", Duration::from_secs(30), || handled() == users.len() as f64);

    // SIGTERM, as Kubernetes stops a pod: a clean exit.
    Command::new("kill").args(["-TERM", &guard.0.id().to_string()]).status().unwrap();
    let exit = guard.0.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}

/// The Kafka trigger image's command, laid out under a temporary directory,
/// running with an environment; killed when dropped.
struct ImageRun {
    child: std::process::Child,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl Drop for ImageRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ImageRun {
    /// `files` are written at their image paths first (mounted Secrets), and
    /// an environment value naming one of them names that local file;
    /// `edit_manifest` may rename the app's topic and group.
    fn start(env: &[(String, String)], files: &[(&str, &str)], edit_manifest: impl Fn(String) -> String) -> ImageRun {
        let image = containerfile();
        let dir = tempfile::tempdir().unwrap();
        let executable = lay_out(&image, dir.path());
        let workdir = dir.path().join(image.workdir.trim_start_matches('/'));
        let manifest = workdir.join("spin.toml");
        std::fs::write(&manifest, edit_manifest(std::fs::read_to_string(&manifest).unwrap())).unwrap();
        for (path, content) in files {
            let local = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(local.parent().unwrap()).unwrap();
            std::fs::write(local, content).unwrap();
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| match files.iter().find(|(path, _)| path == v) {
                Some((path, _)) => (k.clone(), dir.path().join(path.trim_start_matches('/')).display().to_string()),
                None => (k.clone(), v.clone()),
            })
            .collect();
        let metrics = format!("127.0.0.1:{}", crate::support::free_port());
        let child = Command::new(&executable)
            .args(&image.entrypoint[1..])
            .current_dir(&workdir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(image.env.iter().cloned())
            .envs(env)
            .env("TRIGGER_KAFKA_METRICS_LISTEN", &metrics)
            .spawn()
            .expect("run the image's command");
        ImageRun { child, metrics, _dir: dir }
    }

    /// SIGTERM, as Kubernetes stops a pod: the trigger leaves its group at
    /// once (a killed one would hold its partitions until its session expires).
    fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "clean exit on SIGTERM: {exit}");
    }

    /// The image path `path` as this run's local file.
    fn local(&self, path: &str) -> PathBuf {
        self._dir.path().join(path.trim_start_matches('/'))
    }

    fn readyz(&mut self) -> (u16, String) {
        if let Ok(Some(exit)) = self.child.try_wait() {
            panic!("the trigger exited: {exit}");
        }
        match crate::support::http().get(format!("http://{}/readyz", self.metrics)).call() {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }
}

/// A private CA and a server certificate for 127.0.0.1 it signed, made with
/// the openssl command: (CA certificate, server certificate, server key).
fn private_ca(dir: &Path) -> (String, String, String) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (Debian's openssl package)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=user-info test CA", "-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n").unwrap();
    openssl(&[
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
        "-out", "server.crt",
    ]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read("ca.crt"), read("server.crt"), read("server.key"))
}

/// A PostgreSQL server of this test's own (scripts/postgres, stopped when the
/// test binary exits) serving TLS with `cert` and `key`; returns its URL with
/// sslmode=require.
fn postgres_with_tls(cert: &str, key: &str) -> String {
    let port = crate::support::free_port().to_string();
    let out = Command::new(root().join("scripts/postgres"))
        .args(["start", &port, "--owner", &std::process::id().to_string()])
        .output()
        .expect("run scripts/postgres");
    assert!(out.status.success(), "could not start PostgreSQL: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // The server's own directory (scripts/postgres), readable by its user.
    let tls = PathBuf::from(format!("/tmp/user-info-postgres-{port}/tls"));
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("server.crt"), cert).unwrap();
    std::fs::write(tls.join("server.key"), key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tls.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        let status = Command::new("chown").args(["-R", "postgres:"]).arg(&tls).status().unwrap();
        assert!(status.success(), "chown the key to the postgres user");
    }
    let mut client = crate::support::postgres::client(&url);
    // One statement at a time: ALTER SYSTEM refuses a multi-statement batch.
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}/server.crt'", tls.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}/server.key'", tls.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        client.batch_execute(&statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    eventually("PostgreSQL to serve TLS", Duration::from_secs(30), || {
        crate::support::postgres::client(&url).query_one("SHOW ssl", &[]).unwrap().get::<_, String>(0) == "on"
    });
    url.replace("sslmode=disable", "sslmode=require")
}

#[test]
fn with_the_postgres_ca_component_the_trigger_verifies_a_private_ca() {
    crate::support::ensure_built();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(certs.path());
    let database = postgres_with_tls(&cert, &key);

    // The trigger's environment and mounts as base + components/postgres-ca renders them.
    let objects = build_overlay("postgres-ca", "resources: [\"@K/base\"]\ncomponents: [\"@K/components/postgres-ca\"]\n");
    let deployment = Rendered(&objects).one("Deployment").clone();
    let cert_file = env_value(&deployment, "SSL_CERT_FILE").expect("the component names the CA bundle").to_owned();
    let (secret, key_name) = mounted_secret_file(&deployment, &cert_file).expect("mounted from a Secret");
    assert_eq!((secret.as_str(), key_name.as_str()), ("user-info-ca", "ca-certificates.crt"));
    let mut env = Vec::new();
    for e in container(&deployment)["env"].as_array().unwrap() {
        let name = s(&e["name"]).to_owned();
        let value = match (name.as_str(), e["value"].as_str()) {
            ("SPIN_VARIABLE_KAFKA_BROKERS", Some(_)) => brokers(),
            (_, Some(v)) => v.to_owned(),
            (_, None) => match e["valueFrom"]["secretKeyRef"]["key"].as_str() {
                Some("database-url") => database.clone(),
                Some("database-host") => crate::support::postgres::authority(&database),
                _ => "user-kafka-trigger-0".to_owned(), // the pod name
            },
        };
        env.push((name, value));
    }

    let topic = crate::support::unique("user_service_ca");
    let group = crate::support::unique("user-info-ca");
    create_topic(&topic, 1);
    let rename = |manifest: String| {
        manifest
            .replace("topics = [\"user_service\"]", &format!("topics = [\"{topic}\"]"))
            .replace("group_id = \"user-info-service\"", &format!("group_id = \"{group}\""))
    };
    let user = uuid::Uuid::new_v4().to_string();
    produce(&topic, &[(Some(user.clone()), json!({"user_id": user, "first_name": "Verified"}).to_string().into_bytes())]);
    let plain = database.replace("sslmode=require", "sslmode=disable");

    // Without the bundle (SSL_CERT_FILE unset), the private CA is not trusted:
    // the record's database write fails and its partition pauses, retrying.
    let without: Vec<(String, String)> = env.iter().filter(|(k, _)| k != "SSL_CERT_FILE").cloned().collect();
    let mut run = ImageRun::start(&without, &[], &rename);
    eventually("the partition to pause on the untrusted certificate", Duration::from_secs(120), || {
        let (status, body) = run.readyz();
        status == 503 && body.contains("paused retrying")
    });
    assert!(crate::support::postgres::user_in_db(&plain, &user).is_none(), "nothing written without a trusted certificate");
    run.stop();

    // With the Secret's bundle mounted where the component says, it is.
    let run = ImageRun::start(&env, &[(&cert_file, &ca)], &rename);
    assert!(run.local(&cert_file).exists());
    eventually("the record written over verified TLS", Duration::from_secs(120), || {
        crate::support::postgres::user_in_db(&plain, &user).is_some_and(|r| r["first_name"] == "Verified")
    });
    let tls_sessions: i64 = crate::support::postgres::client(&plain)
        .query_one("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND usename = 'postgres'", &[])
        .unwrap()
        .get(0);
    assert!(tls_sessions >= 1, "the trigger's connections use TLS");
}
