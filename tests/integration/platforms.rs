//! The manifests for Fermyon Cloud (deploy/fermyon-cloud/spin.toml) and
//! Akamai Functions (deploy/akamai/spin.toml) are spin.toml's HTTP side: the
//! same route, component variables, outbound hosts and build, source paths
//! relative to where they live, and no trigger but HTTP (neither platform
//! runs trigger plugins). Akamai Functions has no SQLite, so its component is
//! user-http built without the `sqlite` feature, into its own target
//! directory, and this reads that `.wasm`'s imports: no SQLite interface, and
//! nothing that Spin 3.6 and Spin 4.0 do not both provide.


use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::root;
use toml::{Table, Value};

fn manifest(path: &str) -> Table {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Normalizes `a/b/../c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `{{ name }}` references in a string.
fn variables_in(text: &str) -> Vec<String> {
    text.split("{{").skip(1).filter_map(|rest| Some(rest.split_once("}}")?.0.trim().to_owned())).collect()
}

/// The target directory a cargo command line builds into (relative to its workdir).
fn target_dir(command: &str) -> &str {
    command.split_once("--target-dir ").map_or("target", |(_, rest)| rest.split_whitespace().next().unwrap())
}

struct Platform {
    path: &'static str,
    /// Cargo flags added to spin.toml's build of the component.
    extra_build_flags: &'static str,
    sqlite: bool,
}

const PLATFORMS: [Platform; 2] = [
    Platform { path: "deploy/fermyon-cloud/spin.toml", extra_build_flags: "", sqlite: true },
    Platform {
        path: "deploy/akamai/spin.toml",
        extra_build_flags: " --no-default-features --target-dir target/postgres-only",
        sqlite: false,
    },
];

#[test]
fn the_platform_manifests_are_spin_toml_s_http_side() {
    let app = manifest("spin.toml");
    let http = app["trigger"]["http"].as_array().unwrap();
    for platform in PLATFORMS {
        let p = platform.path;
        let m = manifest(p);
        let dir = root().join(p).parent().unwrap().to_owned();
        assert_eq!(m["spin_manifest_version"], app["spin_manifest_version"], "{p}");
        assert_eq!(m["application"]["name"], app["application"]["name"], "{p}");
        assert_eq!(m["application"]["version"], app["application"]["version"], "{p}");
        assert!(m["application"].get("trigger").is_none(), "{p}: no trigger settings but HTTP's");

        let triggers = m["trigger"].as_table().unwrap();
        assert_eq!(triggers.keys().collect::<Vec<_>>(), ["http"], "{p}: HTTP triggers only");
        assert_eq!(&m["trigger"]["http"].as_array().unwrap()[..], &http[..], "{p}: spin.toml's routes");
        let used: BTreeSet<&str> = http.iter().map(|t| t["component"].as_str().unwrap()).collect();
        let components = m["component"].as_table().unwrap();
        assert_eq!(components.keys().map(String::as_str).collect::<BTreeSet<_>>(), used, "{p}: the HTTP components only");

        for (id, component) in components {
            let original = &app["component"][id];
            let c = component.as_table().unwrap();
            for key in ["variables", "allowed_outbound_hosts"] {
                assert_eq!(c.get(key), original.get(key), "{p}: component {id}'s {key}");
            }
            if platform.sqlite {
                assert_eq!(c.get("sqlite_databases"), original.get("sqlite_databases"), "{p}: {id}'s SQLite database");
            } else {
                assert!(c.get("sqlite_databases").is_none(), "{p}: {id} is granted no SQLite database");
            }
            let others: Vec<&String> = c
                .keys()
                .filter(|k| !["source", "variables", "allowed_outbound_hosts", "sqlite_databases", "build"].contains(&k.as_str()))
                .collect();
            assert!(others.is_empty(), "{p}: {id} has no other settings than spin.toml's HTTP ones: {others:?}");

            // The same build, run from the repository root.
            let build = &c["build"];
            let workdir = normalize(&dir.join(build["workdir"].as_str().expect("a build workdir")));
            assert_eq!(workdir, root(), "{p}: {id} builds from the repository root");
            let command = build["command"].as_str().unwrap();
            let original_command = original["build"]["command"].as_str().unwrap();
            assert_eq!(command, format!("{original_command}{}", platform.extra_build_flags), "{p}: {id}'s build");
            assert_eq!(build["watch"], original["build"]["watch"], "{p}: {id}'s watched files");
            // The source is the file that command writes.
            let original_source = original["source"].as_str().unwrap();
            let in_target = original_source.strip_prefix("target/").expect("spin.toml's source is in target/");
            let built = workdir.join(target_dir(command)).join(in_target);
            assert_eq!(normalize(&dir.join(c["source"].as_str().unwrap())), built, "{p}: {id}'s source is its build's output");
        }

        // Exactly the variables the components use, declared as in spin.toml
        // (Akamai's database ones are required: there is no SQLite fallback).
        let mut referenced = BTreeSet::new();
        for component in components.values() {
            let mut strings: Vec<&str> = component["allowed_outbound_hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
            strings.extend(component["variables"].as_table().unwrap().values().map(|v| v.as_str().unwrap()));
            for text in strings {
                referenced.extend(variables_in(text));
            }
        }
        let declared = m["variables"].as_table().unwrap();
        assert_eq!(declared.keys().cloned().collect::<BTreeSet<_>>(), referenced, "{p}: its variables are the ones its components use");
        for (name, decl) in declared {
            let original = &app["variables"][name];
            assert_eq!(decl.get("secret"), original.get("secret"), "{p}: {name} is as secret as in spin.toml");
            if platform.sqlite || !name.starts_with("database_") {
                assert_eq!(decl, original, "{p}: {name} as in spin.toml");
            } else {
                assert_eq!(decl.get("required"), Some(&Value::Boolean(true)), "{p}: {name} is required (no SQLite)");
            }
        }
    }
}

#[test]
fn the_docs_give_the_platform_commands() {
    let docs = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    for command in [
        "spin build -f deploy/fermyon-cloud/spin.toml",
        "spin cloud deploy -f deploy/fermyon-cloud/spin.toml",
        "--link sqlite:default=",
        "spin build -f deploy/akamai/spin.toml",
        "spin aka deploy -f deploy/akamai/spin.toml",
    ] {
        assert!(docs.contains(command), "docs/deploy.md gives `{command}`");
    }
    assert!(!docs.contains("spin deploy "), "bare `spin deploy` fails on Spin 4");
}

/// The component-level imports of a component (not those of the modules or
/// components nested in it).
fn imports(wasm: &Path) -> Vec<String> {
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid component") {
            wasmparser::Payload::Version { encoding, .. } if depth == 0 => {
                assert_eq!(encoding, wasmparser::Encoding::Component, "{} is a component", wasm.display())
            }
            wasmparser::Payload::ModuleSection { .. } | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import.unwrap().name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

/// Interfaces both Spin 3.6 and Spin 4.0 provide to components, of those an
/// HTTP component of this kind can import: read from the `platform` worlds of
/// Spin v3.6.3 and v4.0.1 (`wit/world.wit`): `wasi:cli/imports@0.2.6` and
/// `wasi:http/outgoing-handler@0.2.6` (wasmtime links a 0.2.x import to the
/// host's 0.2.6), `fermyon:spin/platform@2.0.0` (of which these three), and
/// `spin:postgres/postgres@3.0.0`. (`spin:variables/variables@3.0.0` is
/// Spin 4's alone.)
fn provided_by_spin_3_6_and_4_0(import: &str) -> bool {
    let Some((interface, version)) = import.rsplit_once('@') else { return false };
    let wasi = ["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:http/", "wasi:io/", "wasi:random/", "wasi:sockets/"];
    if wasi.iter().any(|p| interface.starts_with(p)) {
        return version.strip_prefix("0.2.").and_then(|patch| patch.parse::<u32>().ok()).is_some_and(|patch| patch <= 6);
    }
    const SPIN: [&str; 4] = [
        "fermyon:spin/variables@2.0.0",
        "fermyon:spin/postgres@2.0.0",
        "fermyon:spin/rdbms-types@2.0.0",
        "spin:postgres/postgres@3.0.0",
    ];
    SPIN.contains(&import)
}

fn build_postgres_only() -> PathBuf {
    let status = crate::support::cargo()
        .args(["build", "--target", "wasm32-wasip2", "--release", "-p", "user-http", "--no-default-features"])
        .args(["--target-dir", "target/postgres-only"])
        .current_dir(root())
        .status()
        .expect("run cargo");
    assert!(status.success(), "the PostgreSQL-only build of user-http");
    root().join("target/postgres-only/wasm32-wasip2/release/user_http.wasm")
}

#[test]
fn the_postgres_only_component_imports_no_sqlite_and_only_what_spin_provides() {
    let wasm = build_postgres_only();
    let akamai = manifest("deploy/akamai/spin.toml");
    let source = akamai["component"]["user-http"]["source"].as_str().unwrap();
    assert_eq!(normalize(&root().join("deploy/akamai").join(source)), wasm, "the Akamai manifest ships this build");

    let names = imports(&wasm);
    eprintln!("{} imports {names:#?}", wasm.display());
    assert!(names.iter().any(|n| n.starts_with("spin:postgres/postgres@")), "it stores in PostgreSQL: {names:#?}");
    let sqlite: Vec<&String> = names.iter().filter(|n| n.contains("sqlite")).collect();
    assert!(sqlite.is_empty(), "no SQLite interface is imported: {sqlite:?}");
    let unknown: Vec<&String> = names.iter().filter(|n| !provided_by_spin_3_6_and_4_0(n)).collect();
    assert!(unknown.is_empty(), "every import is one Spin 3.6 and 4.0 provide: {unknown:?}");

    // The default build is the one that carries SQLite: the check can tell.
    crate::support::ensure_built();
    let full = imports(&crate::support::wasm("user_http"));
    assert!(full.iter().any(|n| n.contains("sqlite")), "the default build imports SQLite: {full:#?}");
    let unknown: Vec<&String> = full.iter().filter(|n| !n.contains("sqlite") && !provided_by_spin_3_6_and_4_0(n)).collect();
    assert!(unknown.is_empty(), "the default build's other imports are provided too: {unknown:?}");
}
