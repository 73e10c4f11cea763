//! `trigger-kafka`: the Kafka trigger for Spin apps, and a host that runs a
//! Spin app's components without Spin.
//!
//! Plugin mode (started by `spin up`, `SPIN_LOCKED_URL` set): reads the locked
//! app and runs its `[[trigger.kafka]]` triggers beside Spin's own triggers.
//! Manifest mode (on its own): reads `spin.toml` and runs its Kafka and HTTP
//! triggers. Both load into the same app model; everything after is shared.

// The rooms, after Spin's own layout: what runs (triggers), what guests may
// import (interfaces), what runs guests (runtime), what is served (serve), and
// what is loaded (app).
mod app;
mod cli;
mod dlq_replay;
mod env_choice;
mod interfaces;
mod launch;
mod plugin;
mod runtime;
mod serve;
mod telemetry;
mod triggers;

use std::process::ExitCode;

use clap::Parser;

use cli::{LocalCli, PluginCli};
use launch::Launch;

fn main() -> ExitCode {
    // `spin up` probes with this flag alone and reads ALL of stderr as JSON,
    // before any app exists: answer before parsing or logging anything.
    if std::env::args().any(|a| a == "--launch-metadata-only") {
        eprint!("{}", plugin::launch_metadata_json());
        return ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--help-args-only") {
        print!("{}", plugin::help_args());
        return ExitCode::SUCCESS;
    }
    // wasmtime builds (and drops) an error on every instance teardown; with
    // RUST_BACKTRACE set, each would capture a backtrace (6% of a request's CPU).
    // Panics keep their backtraces (RUST_BACKTRACE); library errors don't need them.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // Dropped last, when main returns: flushes the spans not yet exported.
    let _telemetry = init_tracing();

    // `trigger-kafka dlq replay ...`: a tool, not a trigger run.
    if std::env::args().nth(1).as_deref() == Some("dlq") {
        return match dlq_replay::main(std::env::args().skip(2).collect()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }

    let launch = match std::env::var("SPIN_LOCKED_URL") {
        Ok(url) => Launch::plugin(url, PluginCli::parse()),
        Err(_) => Launch::local(LocalCli::parse()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(async { launch?.run().await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: spin up forwards our exit code and shows this.
            eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() -> telemetry::Telemetry {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime_cranelift=warn,cranelift_codegen=warn"));
    telemetry::install(filter)
}
