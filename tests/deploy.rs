//! deploy/ cannot drift from the code: the Kubernetes manifests are read and
//! checked against spin.toml and each other, and the Kafka trigger image's
//! exact command (deploy/Containerfile's ENTRYPOINT, in the file layout its
//! COPY lines build) runs with the Deployment's environment against the local
//! broker and PostgreSQL. Only the values that name cluster endpoints (the
//! brokers, the Secret's database URL and host, the metrics port) are swapped
//! for local ones. It must apply records, turn ready on /readyz and count them
//! on /metrics.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use serde_yaml::Value;
use support::kafka::{brokers, create_topic, produce};
use support::{eventually, root};

fn yaml(file: &str) -> Value {
    let path = root().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[*key],
        };
    }
    cur.as_str().unwrap_or_else(|| panic!("no string at {path:?}"))
}

fn spin_toml() -> toml::Table {
    std::fs::read_to_string(root().join("spin.toml")).unwrap().parse().unwrap()
}

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
    let mut image = Image::default();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => image = Image::default(), // only the last stage is the image
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
        return support::host_binary();
    }
    if let Some(file) = rel.strip_prefix("target/wasm32-wasip2/release/") {
        return support::wasm(file.trim_end_matches(".wasm"));
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
fn manifests_agree_with_the_app_and_each_other() {
    let kustomization = yaml("kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for file in ["secret.example.yaml", "spinapp.yaml", "kafka-trigger.yaml", "scaledobject.yaml"] {
        assert!(resources.contains(&file), "kustomization lists {file}");
    }
    let app = spin_toml();
    let kafka = &app["trigger"]["kafka"][0];
    let declared = app["variables"].as_table().unwrap();
    let secret = yaml("secret.example.yaml");
    let secret_name = str_at(&secret, &["metadata", "name"]);
    let secret_has = |r: &Value| {
        assert_eq!(str_at(r, &["name"]), secret_name, "refers to the example Secret");
        assert!(secret["stringData"][str_at(r, &["key"])].is_string(), "the Secret has key {:?}", r["key"]);
    };

    let spinapp = yaml("spinapp.yaml");
    assert_eq!(str_at(&spinapp, &["apiVersion"]), "core.spinkube.dev/v1alpha1");
    assert_eq!(str_at(&spinapp, &["kind"]), "SpinApp");
    assert_eq!(str_at(&spinapp, &["spec", "executor"]), "containerd-shim-spin");
    assert_eq!(spinapp["spec"]["replicas"].as_u64(), Some(2));
    assert_eq!(spinapp["spec"]["components"], serde_yaml::from_str::<Value>("[user-http]").unwrap());
    assert!(app["trigger"]["http"].as_array().unwrap().iter().any(|t| t["component"].as_str() == Some("user-http")));
    let mut spinapp_vars = Vec::new();
    for var in spinapp["spec"]["variables"].as_sequence().unwrap() {
        let name = str_at(var, &["name"]);
        assert!(declared.contains_key(name), "SpinApp variable {name} is declared in spin.toml");
        secret_has(&var["valueFrom"]["secretKeyRef"]);
        spinapp_vars.push(name);
    }
    assert!(spinapp_vars.contains(&"database_url"), "database_url comes from the Secret");

    let deployment = yaml("kafka-trigger.yaml");
    assert_eq!(str_at(&deployment, &["kind"]), "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    for env in container["env"].as_sequence().unwrap() {
        if let Value::Mapping(_) = env["valueFrom"]["secretKeyRef"] {
            secret_has(&env["valueFrom"]["secretKeyRef"]);
        }
        if let Some(var) = str_at(env, &["name"]).strip_prefix("SPIN_VARIABLE_") {
            assert!(declared.contains_key(&var.to_ascii_lowercase()), "{var} is declared in spin.toml");
        }
    }
    assert_eq!(str_at(container, &["livenessProbe", "httpGet", "path"]), "/healthz");
    assert_eq!(str_at(container, &["readinessProbe", "httpGet", "path"]), "/readyz");
    let probe_port = str_at(container, &["readinessProbe", "httpGet", "port"]);
    let port = container["ports"].as_sequence().unwrap().iter().find(|p| p["name"].as_str() == Some(probe_port)).unwrap();
    let listen = deployment_env(&deployment)["TRIGGER_KAFKA_METRICS_LISTEN"].clone().unwrap();
    assert!(listen.ends_with(&format!(":{}", port["containerPort"].as_u64().unwrap())), "probes reach the metrics listener");

    let scaled = yaml("scaledobject.yaml");
    assert_eq!(str_at(&scaled, &["apiVersion"]), "keda.sh/v1alpha1");
    assert_eq!(str_at(&scaled, &["spec", "scaleTargetRef", "name"]), str_at(&deployment, &["metadata", "name"]));
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(str_at(trigger, &["type"]), "kafka");
    assert_eq!(str_at(trigger, &["metadata", "consumerGroup"]), kafka["group_id"].as_str().unwrap());
    assert_eq!(str_at(trigger, &["metadata", "topic"]), kafka["topics"][0].as_str().unwrap());
    assert_eq!(
        str_at(trigger, &["metadata", "bootstrapServers"]),
        deployment_env(&deployment)["SPIN_VARIABLE_KAFKA_BROKERS"].clone().unwrap(),
        "KEDA watches the brokers the trigger consumes from"
    );
    // A group never uses more consumers than partitions (3, as scripts/run creates the topic).
    let max = scaled["spec"]["maxReplicaCount"].as_u64().unwrap();
    let run = std::fs::read_to_string(root().join("scripts/run")).unwrap();
    assert!(run.contains(&format!("create-topic user_service {max} ")), "maxReplicaCount {max} is the partition count");

    let image = containerfile();
    let uid: u32 = image.user.parse().expect("USER is a numeric uid (runAsNonRoot needs one)");
    assert_ne!(uid, 0, "non-root");
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(uid as u64));
}

/// The Deployment's container environment: literal values, or `None` when
/// the value comes from elsewhere (a Secret).
fn deployment_env(deployment: &Value) -> BTreeMap<String, Option<String>> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (str_at(e, &["name"]).to_owned(), e["value"].as_str().map(str::to_owned)))
        .collect()
}

#[test]
fn the_trigger_image_command_with_the_deployment_environment_applies_records() {
    support::ensure_built();
    let image = containerfile();
    let dir = tempfile::tempdir().unwrap();
    let executable = lay_out(&image, dir.path());
    let workdir = dir.path().join(image.workdir.trim_start_matches('/'));

    let database = support::postgres::new_database();
    let secret = yaml("secret.example.yaml");
    let local_secret = |key: &str| match key {
        "database-url" => database.clone(),
        "database-host" => support::postgres::authority(&database),
        other => secret["stringData"][other].as_str().unwrap().to_owned(),
    };
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let deployment = yaml("kafka-trigger.yaml");
    let mut env: Vec<(String, String)> = image.env.clone();
    for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap() {
        let name = str_at(e, &["name"]).to_owned();
        let value = match (name.as_str(), e["value"].as_str()) {
            ("SPIN_VARIABLE_KAFKA_BROKERS", Some(_)) => brokers(),
            ("TRIGGER_KAFKA_METRICS_LISTEN", Some(_)) => metrics.clone(),
            (_, Some(v)) => v.to_owned(),
            (_, None) => local_secret(str_at(e, &["valueFrom", "secretKeyRef", "key"])),
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
    let status = |path: &str| support::http().get(format!("{base}{path}")).call().map(|r| r.status().as_u16()).ok();
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
        users.iter().all(|u| support::postgres::user_in_db(&database, u).is_some_and(|r| r["first_name"] == "Deployed"))
    });
    let handled = || -> f64 {
        let body = support::http().get(format!("{base}/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
        body.lines()
            .filter(|l| l.starts_with("trigger_kafka_records_handled_total{") && l.contains(&format!("topic=\"{topic}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    eventually("/metrics to count the records", Duration::from_secs(30), || handled() >= users.len() as f64);

    // SIGTERM, as Kubernetes stops a pod: a clean exit.
    Command::new("kill").args(["-TERM", &guard.0.id().to_string()]).status().unwrap();
    let exit = guard.0.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}
