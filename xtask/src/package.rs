//! Packaging: the plugin tarball and its manifest, written to an output folder.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};

use crate::manifest::{self, Platform, PluginPackage};
use crate::workspace::is_semver;

/// The plugin's name. Spin requires it lowercase and requires the tarball to
/// hold, at its top level, an executable of exactly this name. It is also how
/// Spin finds the trigger: an app with `[[trigger.kafka]]` runs plugin `trigger-kafka`.
pub const PLUGIN_NAME: &str = "trigger-kafka";

/// Name of the manifest file. Stable (no version or platform in it) so scripts
/// and docs can always say `spin plugins install --file target/spin-plugin/trigger-kafka.json`.
pub const MANIFEST_FILE: &str = "trigger-kafka.json";

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct PackageOutput {
    /// `<out_dir>/trigger-kafka-<version>-<os>-<arch>.tar.gz`
    pub tarball: PathBuf,
    /// `<out_dir>/trigger-kafka.json`
    pub manifest: PathBuf,
    /// Lowercase hex SHA-256 of the tarball, as written in the manifest.
    pub sha256: String,
    /// The package URL written in the manifest.
    pub url: String,
}

/// Packages `binary` as the `trigger-kafka` Spin plugin for the host platform.
///
/// Writes the tarball and the manifest into `out_dir` (created if missing).
/// With `url_base`, the manifest points at `<url_base>/<tarball name>` (for a
/// published release); without it, at the local tarball through a `file://` URL.
pub fn package(
    binary: &Path,
    out_dir: &Path,
    version: &str,
    url_base: Option<&str>,
) -> Result<PackageOutput> {
    ensure!(
        is_semver(version),
        "version {version:?} is not semver; Spin rejects it"
    );
    let platform = Platform::host()?;

    let meta = fs::metadata(binary)
        .with_context(|| format!("no plugin binary at {}", binary.display()))?;
    ensure!(meta.is_file(), "{} is not a file", binary.display());
    let contents = fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;

    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let tarball_name = format!(
        "{PLUGIN_NAME}-{version}-{}-{}.tar.gz",
        platform.os, platform.arch
    );
    let tarball = out_dir.join(&tarball_name);

    let bytes = tarball_bytes(&entry_name(), &contents)?;
    fs::write(&tarball, &bytes).with_context(|| format!("writing {}", tarball.display()))?;
    let sha256 = sha256_hex(&bytes);

    let url = match url_base {
        Some(base) => release_url(base, &tarball_name)?,
        None => file_url(&tarball)?,
    };

    let manifest_json = manifest::manifest(
        PLUGIN_NAME,
        version,
        &[PluginPackage {
            platform,
            url: url.clone(),
            sha256: sha256.clone(),
        }],
    );
    let manifest = out_dir.join(MANIFEST_FILE);
    let mut text = serde_json::to_string_pretty(&manifest_json)?;
    text.push('\n');
    fs::write(&manifest, text).with_context(|| format!("writing {}", manifest.display()))?;

    Ok(PackageOutput {
        tarball,
        manifest,
        sha256,
        url,
    })
}

/// The executable's name inside the tarball. On Windows Spin runs `<name>.exe`.
fn entry_name() -> String {
    format!("{PLUGIN_NAME}{}", std::env::consts::EXE_SUFFIX)
}

/// A gzipped tar holding one regular file `name` (mode 0755) with `contents`.
///
/// Deterministic on purpose, so the same binary always yields the same
/// checksum (reproducible releases, no spurious manifest churn): every header
/// field that would otherwise leak the build machine (mtime, uid/gid, owner
/// names, the source file's mode) is fixed, and the gzip header carries no
/// timestamp or file name.
pub fn tarball_bytes(name: &str, contents: &[u8]) -> Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    // Executable by everyone: Spin runs the plugin as whichever user installed it.
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("")?;
    header.set_groupname("")?;

    // `GzEncoder::new` writes mtime 0 and no file name in the gzip header.
    let gz = GzEncoder::new(Vec::new(), Compression::best());
    let mut builder = tar::Builder::new(gz);
    // `append_data` sets the path and the header checksum.
    builder.append_data(&mut header, name, contents)?;
    let gz = builder.into_inner()?;
    Ok(gz.finish()?)
}

/// Lowercase hex SHA-256 (the form Spin compares against).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `<base>/<tarball>`, tolerating a trailing slash on `base`. Spin needs an
/// absolute URL, so a base without a scheme is refused here, not at install.
fn release_url(base: &str, tarball_name: &str) -> Result<String> {
    let base = base.trim_end_matches('/');
    let Some((scheme, rest)) = base.split_once("://") else {
        bail!("--url-base {base:?} is not an absolute URL (expected e.g. https://host/path)");
    };
    ensure!(
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !rest.is_empty(),
        "--url-base {base:?} is not an absolute URL (expected e.g. https://host/path)"
    );
    Ok(format!("{base}/{tarball_name}"))
}

/// An absolute `file://` URL for an existing file.
///
/// The path is canonicalized (Spin needs an absolute URL, and a relative
/// `CARGO_TARGET_DIR` would otherwise leak through) and percent-encoded so that
/// spaces or `#` in a checkout path do not break URL parsing.
pub fn file_url(path: &Path) -> Result<String> {
    let abs = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut s = abs.to_string_lossy().into_owned();
    if cfg!(windows) {
        // `canonicalize` yields `\\?\C:\...`; URLs want `/C:/...`.
        if let Some(stripped) = s.strip_prefix(r"\\?\") {
            s = stripped.to_string();
        }
        s = format!("/{}", s.replace('\\', "/"));
    }
    let mut url = String::from("file://");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~:".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_url_joins_and_validates() {
        assert_eq!(
            release_url("https://example.com/releases/v1/", "t.tar.gz").unwrap(),
            "https://example.com/releases/v1/t.tar.gz"
        );
        assert!(release_url("example.com/releases", "t.tar.gz").is_err());
        assert!(release_url("https://", "t.tar.gz").is_err());
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
