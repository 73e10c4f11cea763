//! `cargo run -p xtask -- <command>`: CLI dispatch only; the work is in the library.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use xtask::{package, workspace, PLUGIN_NAME};

const USAGE: &str = "\
Project chores.

USAGE:
    cargo run -p xtask -- <COMMAND> [OPTIONS]

COMMANDS:
    package-plugin    Package trigger-kafka as a Spin plugin:
                        <target>/spin-plugin/trigger-kafka-<version>-<os>-<arch>.tar.gz
                        <target>/spin-plugin/trigger-kafka.json   (the manifest)
                      Install it with:
                        spin plugins install --file <target>/spin-plugin/trigger-kafka.json --yes
    help              Print this text.

OPTIONS (package-plugin):
    --skip-build          Don't run `cargo build --release -p trigger-kafka`;
                          package the existing <target>/release/trigger-kafka.
    --binary <PATH>       Package this trigger-kafka executable (e.g. the debug build,
                          target/debug/trigger-kafka) instead of building and packaging
                          <target>/release/trigger-kafka. Implies --skip-build.
    --url-base <URL>      Point the manifest at <URL>/<tarball name> (e.g. a release
                          download folder) instead of the local tarball's file:// URL.

<target> is $CARGO_TARGET_DIR when set, else <workspace>/target.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "package-plugin" => package_plugin(&PackageArgs::parse(rest)?),
        other => {
            eprint!("{USAGE}");
            bail!("unknown command {other:?}")
        }
    }
}

#[derive(Debug, Default)]
struct PackageArgs {
    skip_build: bool,
    binary: Option<PathBuf>,
    url_base: Option<String>,
}

impl PackageArgs {
    fn parse(args: &[String]) -> Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--skip-build" => parsed.skip_build = true,
                "--url-base" => {
                    let value = args.next().context("--url-base needs a value")?;
                    parsed.url_base = Some(value.clone());
                }
                "--binary" => {
                    let value = args.next().context("--binary needs a value")?;
                    parsed.binary = Some(PathBuf::from(value));
                }
                other => {
                    if let Some(value) = other.strip_prefix("--url-base=") {
                        parsed.url_base = Some(value.to_string());
                    } else if let Some(value) = other.strip_prefix("--binary=") {
                        parsed.binary = Some(PathBuf::from(value));
                    } else {
                        bail!("unknown option {other:?} for package-plugin (see `cargo run -p xtask -- help`)");
                    }
                }
            }
        }
        Ok(parsed)
    }
}

fn package_plugin(args: &PackageArgs) -> Result<()> {
    let root = workspace::root();
    let target = workspace::target_dir(&root);
    let version = workspace::package_version(&root.join("host/Cargo.toml"))?;

    let binary = match &args.binary {
        // Relative to where xtask was started (`cargo run` keeps the caller's cwd).
        Some(path) => std::env::current_dir()?.join(path),
        None => {
            if !args.skip_build {
                cargo_build_release(&root)?;
            }
            target
                .join("release")
                .join(format!("{PLUGIN_NAME}{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if args.binary.is_some() && !binary.is_file() {
        bail!("--binary {}: no such file", binary.display());
    }
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p {PLUGIN_NAME}` or drop --skip-build",
            binary.display()
        );
    }

    let out = package(
        &binary,
        &target.join("spin-plugin"),
        &version,
        args.url_base.as_deref(),
    )?;
    println!("tarball:  {}", out.tarball.display());
    println!("sha256:   {}", out.sha256);
    println!("manifest: {}", out.manifest.display());
    println!("url:      {}", out.url);
    println!(
        "install:  spin plugins install --file {} --yes",
        out.manifest.display()
    );
    Ok(())
}

/// Builds the release binary with the same cargo that runs us (`CARGO`, set by
/// `cargo run`), so toolchain overrides carry over. Output is inherited, hence
/// streamed live.
fn cargo_build_release(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("running: cargo build --release -p {PLUGIN_NAME}");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", PLUGIN_NAME])
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!("cargo build --release -p {PLUGIN_NAME} failed ({status})");
    }
    Ok(())
}
