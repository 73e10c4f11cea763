//! Packages a small real executable (a shell script) with `xtask::package` and
//! checks what Spin's installer relies on, by reading the real files back.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::read::GzDecoder;
use serde_json::Value;
use sha2::{Digest, Sha256};
use xtask::{package, PackageOutput};

const SCRIPT: &[u8] = b"#!/bin/sh\necho trigger-kafka stand-in \"$@\"\n";

/// A fresh directory under the system temp dir, removed on drop. Hand-rolled
/// (not the `tempfile` crate) to keep xtask's dependency list as it is.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "xtask-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the stand-in "binary" as an executable file named like the real one.
fn write_binary(dir: &Path) -> PathBuf {
    let path = dir.join("trigger-kafka");
    fs::write(&path, SCRIPT).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        // Prove it really is a runnable executable, not just bytes.
        let out = run_fresh_executable(&path);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "trigger-kafka stand-in x\n"
        );
    }
    path
}

/// Runs a just-written executable. Another test thread forking at the moment
/// this file was still open for writing makes exec fail with ETXTBSY until that
/// child execs (a known Unix race), so that error is retried briefly.
#[cfg(unix)]
fn run_fresh_executable(path: &Path) -> std::process::Output {
    for _ in 0..50 {
        match std::process::Command::new(path).arg("x").output() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other.unwrap(),
        }
    }
    panic!("{} stayed busy", path.display());
}

fn read_manifest(out: &PackageOutput) -> Value {
    serde_json::from_str(&fs::read_to_string(&out.manifest).unwrap()).unwrap()
}

struct Entry {
    path: PathBuf,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    is_file: bool,
    contents: Vec<u8>,
}

fn tar_entries(tarball: &Path) -> Vec<Entry> {
    let mut archive = tar::Archive::new(GzDecoder::new(fs::File::open(tarball).unwrap()));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut contents = Vec::new();
            e.read_to_end(&mut contents).unwrap();
            Entry {
                path: e.path().unwrap().into_owned(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                is_file: h.entry_type().is_file(),
                contents,
            }
        })
        .collect()
}

fn spin_os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        other => other,
    };
    (std::env::consts::OS, arch)
}

#[test]
fn manifest_checksum_matches_the_tarball_bytes() {
    let tmp = TempDir::new();
    let out = package(
        &write_binary(tmp.path()),
        &tmp.path().join("out"),
        "0.1.0",
        None,
    )
    .unwrap();

    let manifest = read_manifest(&out);
    let sha = manifest["packages"][0]["sha256"].as_str().unwrap();
    let expected: String = Sha256::digest(fs::read(&out.tarball).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, expected);
    assert_eq!(sha.len(), 64);
    assert!(
        sha.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex: {sha}"
    );
    assert_eq!(out.sha256, expected);
}

#[test]
fn tarball_holds_exactly_the_executable_at_top_level() {
    let tmp = TempDir::new();
    let out = package(
        &write_binary(tmp.path()),
        &tmp.path().join("out"),
        "0.1.0",
        None,
    )
    .unwrap();

    let (os, arch) = spin_os_arch();
    assert_eq!(
        out.tarball,
        tmp.path()
            .join("out")
            .join(format!("trigger-kafka-0.1.0-{os}-{arch}.tar.gz"))
    );
    assert_eq!(
        out.manifest,
        tmp.path().join("out").join("trigger-kafka.json")
    );

    let entries = tar_entries(&out.tarball);
    assert_eq!(entries.len(), 1, "exactly one entry");
    let e = &entries[0];
    assert_eq!(
        e.path,
        Path::new(&format!("trigger-kafka{}", std::env::consts::EXE_SUFFIX))
    );
    assert_eq!(e.path.components().count(), 1, "at top level");
    assert!(e.is_file);
    assert_eq!(e.mode & 0o777, 0o755);
    assert_eq!(e.mode & 0o111, 0o111, "exec bits set");
    assert_eq!(e.contents, SCRIPT);
    assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0));
}

#[test]
fn manifest_has_what_spin_requires() {
    let tmp = TempDir::new();
    let out = package(
        &write_binary(tmp.path()),
        &tmp.path().join("out"),
        "1.2.3-rc.1",
        None,
    )
    .unwrap();
    let m = read_manifest(&out);

    assert_eq!(m["name"], "trigger-kafka");
    assert_eq!(m["version"], "1.2.3-rc.1");
    assert_eq!(m["spinCompatibility"], ">=3.0");
    assert_eq!(m["license"], "MIT");
    assert!(m["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(m["homepage"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://")));

    let packages = m["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1);
    let (os, arch) = spin_os_arch();
    assert_eq!(packages[0]["os"], os);
    assert_eq!(packages[0]["arch"], arch);

    // An absolute file:// URL that leads to the tarball.
    let url = packages[0]["url"].as_str().unwrap();
    assert_eq!(url, out.url);
    let path = url.strip_prefix("file://").expect("file:// URL");
    #[cfg(unix)]
    {
        assert!(path.starts_with('/'), "absolute: {url}");
        let path = Path::new(path);
        assert!(path.is_file(), "{url} exists");
        assert_eq!(
            fs::canonicalize(path).unwrap(),
            fs::canonicalize(&out.tarball).unwrap()
        );
    }
    let _ = path;
}

#[test]
fn packaging_twice_gives_the_same_checksum() {
    let tmp = TempDir::new();
    let binary = write_binary(tmp.path());
    let first = package(&binary, &tmp.path().join("a"), "0.1.0", None).unwrap();

    // Rewrite the same bytes later (new mtime on disk): the tarball must not care.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(&binary, SCRIPT).unwrap();
    let second = package(&binary, &tmp.path().join("b"), "0.1.0", None).unwrap();
    let again = package(&binary, &tmp.path().join("a"), "0.1.0", None).unwrap();

    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.sha256, again.sha256);
    assert_eq!(
        fs::read(&first.tarball).unwrap(),
        fs::read(&second.tarball).unwrap()
    );
}

#[test]
fn url_base_points_the_manifest_at_the_release() {
    let tmp = TempDir::new();
    let out = package(
        &write_binary(tmp.path()),
        &tmp.path().join("out"),
        "0.1.0",
        Some("https://example.com/dl/v0.1.0/"),
    )
    .unwrap();
    let (os, arch) = spin_os_arch();
    let m = read_manifest(&out);
    assert_eq!(
        m["packages"][0]["url"],
        format!("https://example.com/dl/v0.1.0/trigger-kafka-0.1.0-{os}-{arch}.tar.gz")
    );
    // The checksum is of the same local tarball either way.
    let local = package(
        &write_binary(tmp.path()),
        &tmp.path().join("local"),
        "0.1.0",
        None,
    )
    .unwrap();
    assert_eq!(out.sha256, local.sha256);

    assert!(package(
        &write_binary(tmp.path()),
        &tmp.path().join("x"),
        "0.1.0",
        Some("example.com/dl")
    )
    .is_err());
}

#[test]
fn file_url_percent_encodes_awkward_paths() {
    let tmp = TempDir::new();
    let dir = tmp.path().join("with space#hash");
    fs::create_dir_all(&dir).unwrap();
    let out = package(&write_binary(tmp.path()), &dir, "0.1.0", None).unwrap();
    assert!(out.url.starts_with("file://"));
    assert!(out.url.contains("with%20space%23hash"), "{}", out.url);
    assert!(!out.url.contains(' '));
}

#[test]
fn refuses_a_missing_binary_or_bad_version() {
    let tmp = TempDir::new();
    let missing = tmp.path().join("nope");
    let err = package(&missing, &tmp.path().join("out"), "0.1.0", None).unwrap_err();
    assert!(format!("{err:#}").contains("no plugin binary"), "{err:#}");
    assert!(package(
        &write_binary(tmp.path()),
        &tmp.path().join("out"),
        "0.1",
        None
    )
    .is_err());
}
