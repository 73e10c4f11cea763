//! The Spin plugin manifest (the JSON `spin plugins install --file` reads).
//!
//! Spin deserializes it with camelCase field names and closed enums for `os`
//! and `arch`, so the values below must be spelled exactly as Spin spells them.

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Spin releases this plugin targets (its trigger-plugin protocol of Spin 3).
pub const SPIN_COMPATIBILITY: &str = ">=3.0";
pub const LICENSE: &str = "MIT";
pub const DESCRIPTION: &str =
    "Kafka trigger for Spin: runs a Spin app's components on messages consumed from Kafka topics";
// Placeholder: the project has no public home yet; point this at its repository
// once published. Spin only displays it, it does not fetch it.
pub const HOMEPAGE: &str = "https://github.com/spinframework/spin";

/// An (os, arch) pair in Spin's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    /// The platform this xtask runs on, which is also the one the nested
    /// `cargo build` (no `--target`) produces the binary for.
    pub fn host() -> Result<Self> {
        Self::from_rust(std::env::consts::OS, std::env::consts::ARCH)
    }

    /// Maps Rust's names to Spin's: Spin says `amd64` where Rust says `x86_64`.
    pub fn from_rust(os: &str, arch: &str) -> Result<Self> {
        let os = match os {
            "linux" => "linux",
            "macos" => "macos",
            "windows" => "windows",
            other => bail!("Spin plugins do not support OS {other:?} (only linux, macos, windows)"),
        };
        let arch = match arch {
            "x86_64" => "amd64",
            "aarch64" => "aarch64",
            "arm" => "arm",
            other => {
                bail!("Spin plugins do not support arch {other:?} (only x86_64, aarch64, arm)")
            }
        };
        Ok(Self { os, arch })
    }
}

/// One downloadable build of the plugin.
#[derive(Debug, Clone)]
pub struct PluginPackage {
    pub platform: Platform,
    /// Absolute URL of the tarball (Spin refuses relative ones).
    pub url: String,
    /// Lowercase hex SHA-256 of the tarball bytes; Spin verifies it.
    pub sha256: String,
}

/// Builds the manifest JSON for plugin `name` at `version`.
pub fn manifest(name: &str, version: &str, packages: &[PluginPackage]) -> Value {
    let packages: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "os": p.platform.os,
                "arch": p.platform.arch,
                "url": p.url,
                "sha256": p.sha256,
            })
        })
        .collect();
    json!({
        "name": name,
        "description": DESCRIPTION,
        "homepage": HOMEPAGE,
        "version": version,
        "spinCompatibility": SPIN_COMPATIBILITY,
        "license": LICENSE,
        "packages": packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rust_platform_names_to_spin_names() {
        assert_eq!(
            Platform::from_rust("linux", "x86_64").unwrap(),
            Platform {
                os: "linux",
                arch: "amd64"
            }
        );
        assert_eq!(
            Platform::from_rust("macos", "aarch64").unwrap(),
            Platform {
                os: "macos",
                arch: "aarch64"
            }
        );
        assert_eq!(
            Platform::from_rust("windows", "arm").unwrap(),
            Platform {
                os: "windows",
                arch: "arm"
            }
        );
        assert!(Platform::from_rust("freebsd", "x86_64").is_err());
        assert!(Platform::from_rust("linux", "riscv64").is_err());
    }
}
