//! The Spin trigger-plugin contract beyond loading the locked app:
//! `--launch-metadata-only` (which flags `spin up` may route to this trigger)
//! and `--help-args-only` (the options text for `spin up --help`).

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::PluginCli;

#[derive(Serialize)]
struct LaunchMetadata {
    all_flags: Vec<Flag>,
}

#[derive(Serialize)]
struct Flag {
    long: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    short: Option<String>,
}

/// Every flag the plugin accepts, aliases included, as `spin up` matches them
/// (exact strings, dashes included). Derived from the parser, so it cannot drift.
pub fn launch_metadata_json() -> String {
    let command = PluginCli::command();
    let mut all_flags = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue; // spin up keeps -h for itself
        }
        if arg.is_hide_set() {
            continue; // another trigger's flags, accepted only for Spin's fallback (cli::HttpTriggerFlags)
        }
        all_flags.push(Flag { long: format!("--{long}"), short: arg.get_short().map(|s| format!("-{s}")) });
        for alias in arg.get_visible_aliases().into_iter().flatten() {
            all_flags.push(Flag { long: format!("--{alias}"), short: None });
        }
    }
    serde_json::to_string(&LaunchMetadata { all_flags }).expect("serializable")
}

/// The options section `spin up --help` shows for this trigger.
pub fn help_args() -> String {
    PluginCli::command().help_template("{options}").render_help().to_string()
}
