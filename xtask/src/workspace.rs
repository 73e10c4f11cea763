//! Where things are in the workspace: its root, the cargo target directory and
//! the `trigger-kafka` package version.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The workspace root: the parent of this crate's manifest directory.
///
/// Taken from `CARGO_MANIFEST_DIR` at compile time, so it does not depend on the
/// directory `cargo run -p xtask` was invoked from.
pub fn root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .expect("xtask's manifest dir has a parent (the workspace root)")
        .to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set, else `<root>/target`.
///
/// A relative `CARGO_TARGET_DIR` is resolved against the workspace root because
/// that is the directory we run the nested `cargo build` in, and cargo resolves
/// it against its working directory: both then agree on the same folder.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Reads `version` from the `[package]` table of a Cargo.toml.
///
/// A deliberately tiny reader instead of a TOML dependency: we only need one
/// plain string key, and it keeps xtask (and Cargo.lock) lean. Anything it does
/// not understand, such as `version.workspace = true`, is an error rather than a
/// guess, so a wrong version never ends up in a published manifest.
pub fn package_version(cargo_toml: &Path) -> Result<String> {
    let text = std::fs::read_to_string(cargo_toml)
        .with_context(|| format!("reading {}", cargo_toml.display()))?;
    parse_package_version(&text).with_context(|| format!("in {}", cargo_toml.display()))
}

/// The parsing half of [`package_version`], separate so it can be unit-tested.
pub fn parse_package_version(text: &str) -> Result<String> {
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line.split('#').next().unwrap_or("").trim() == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.starts_with("version.") {
            bail!("[package] version is not a plain string ({line:?}); set it explicitly");
        }
        if key != "version" {
            continue;
        }
        let value = value.trim();
        let Some(rest) = value.strip_prefix('"') else {
            bail!("[package] version is not a plain string ({line:?}); set it explicitly");
        };
        let Some(end) = rest.find('"') else {
            bail!("unterminated version string: {line:?}")
        };
        let version = &rest[..end];
        if !is_semver(version) {
            bail!("[package] version {version:?} is not semver (MAJOR.MINOR.PATCH)");
        }
        return Ok(version.to_string());
    }
    bail!("no version in the [package] table")
}

/// Spin's installer parses `version` as semver; check the shape up front.
pub fn is_semver(version: &str) -> bool {
    // Build metadata and pre-release come after the core `MAJOR.MINOR.PATCH`.
    let (core, _build) = version.split_once('+').unwrap_or((version, ""));
    let (core, pre) = match core.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (core, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numbers_ok = numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    let pre_ok = pre.is_none_or(|p| {
        !p.is_empty()
            && p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    numbers_ok && pre_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_package_version_not_a_dependency_version() {
        let toml = r#"
[package]
name = "trigger-kafka"
version = "1.2.3" # comment
edition = "2021"

[dependencies]
wasmtime = { version = "=48.0.8" }
"#;
        assert_eq!(parse_package_version(toml).unwrap(), "1.2.3");
    }

    #[test]
    fn ignores_version_keys_outside_package() {
        let toml = "[workspace.package]\nversion = \"9.9.9\"\n[package]\nname = \"x\"\nversion = \"0.1.0\"\n";
        assert_eq!(parse_package_version(toml).unwrap(), "0.1.0");
    }

    #[test]
    fn rejects_inherited_or_missing_versions() {
        assert!(parse_package_version("[package]\nversion.workspace = true\n").is_err());
        assert!(parse_package_version("[package]\nversion = { workspace = true }\n").is_err());
        assert!(parse_package_version("[package]\nname = \"x\"\n").is_err());
        assert!(parse_package_version("[package]\nversion = \"1.0\"\n").is_err());
    }

    #[test]
    fn semver_shapes() {
        for ok in ["0.1.0", "1.2.3-rc.1", "1.2.3+build.5", "10.20.30-alpha-1+x"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.2", "01.2.3", "1.2.3-", "v1.2.3", "1.2.x", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn the_real_host_manifest_has_a_version() {
        let version = package_version(&root().join("host/Cargo.toml")).unwrap();
        assert!(is_semver(&version));
    }
}
