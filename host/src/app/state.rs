//! Where state lives, resolved exactly as Spin resolves it, so this process
//! and `spin up`'s HTTP trigger open the very same SQLite files:
//! state dir = `--state-dir`, else the runtime config's `state_dir`, else
//! `$SPIN_LOCAL_APP_DIR/.spin` (empty value = current directory), else none
//! (databases are then in memory). An empty `--state-dir ""` or
//! `state_dir = ""` explicitly unsets it: no state dir, whatever follows
//! (Spin's `UserProvidedPath::Unset`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The subset of Spin's runtime config file this host acts on.
#[derive(Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    pub state_dir: Option<String>,
    pub log_dir: Option<String>,
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseConfig>,
    /// `[[variables_provider]]` tables (see variables::provider_environment).
    #[serde(default)]
    pub variables_provider: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
pub struct SqliteDatabaseConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<PathBuf>,
}

impl RuntimeConfig {
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let config: RuntimeConfig = toml::from_str(&text)
            .with_context(|| format!("invalid runtime config {}", path.display()))?;
        for (label, db) in &config.sqlite_database {
            if db.kind != "spin" {
                bail!(
                    "runtime config [sqlite_database.{label}]: type {:?} is not supported by this trigger (only \"spin\")",
                    db.kind
                );
            }
        }
        Ok(config)
    }
}

/// Resolves the state directory (relative results are against `cwd`).
pub fn state_dir(
    flag: Option<&str>,
    runtime_config: &RuntimeConfig,
    local_app_dir: Option<&str>,
    cwd: &Path,
) -> Option<PathBuf> {
    match flag.or(runtime_config.state_dir.as_deref()) {
        Some("") => None,
        Some(dir) => Some(cwd.join(dir)),
        None => local_app_dir.map(|dir| cwd.join(dir).join(".spin")),
    }
}

/// Where each database label lives: the runtime config's path (relative to
/// `cwd`), else `default` -> `<state_dir>/sqlite_db.db`; `None` = in memory.
pub fn database_paths(
    runtime_config: &RuntimeConfig,
    state_dir: Option<&Path>,
    cwd: &Path,
) -> BTreeMap<String, Option<PathBuf>> {
    let mut paths = BTreeMap::from([(
        "default".to_owned(),
        state_dir.map(|dir| dir.join("sqlite_db.db")),
    )]);
    for (label, db) in &runtime_config.sqlite_database {
        paths.insert(label.clone(), db.path.as_ref().map(|p| cwd.join(p)));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/work/app";

    fn resolve(flag: Option<&str>, config_dir: Option<&str>, local: Option<&str>) -> Option<PathBuf> {
        let config = RuntimeConfig { state_dir: config_dir.map(str::to_owned), ..Default::default() };
        state_dir(flag, &config, local, Path::new(CWD))
    }

    #[test]
    fn state_dir_precedence_matches_spin() {
        assert_eq!(resolve(Some("/abs"), Some("cfg"), Some("app")), Some("/abs".into()));
        assert_eq!(resolve(Some("rel"), None, None), Some("/work/app/rel".into()));
        assert_eq!(resolve(None, Some("cfg"), Some("app")), Some("/work/app/cfg".into()));
        // Empty explicitly unsets: neither the config nor the app dir applies.
        assert_eq!(resolve(Some(""), Some("cfg"), Some("app")), None);
        assert_eq!(resolve(None, Some(""), Some("")), None);
        assert_eq!(resolve(None, None, Some("")), Some("/work/app/.spin".into()));
        assert_eq!(resolve(None, None, Some("sub/dir")), Some("/work/app/sub/dir/.spin".into()));
        assert_eq!(resolve(None, None, Some("/abs/app")), Some("/abs/app/.spin".into()));
        assert_eq!(resolve(None, None, None), None);
    }

    #[test]
    fn runtime_config_database_paths() {
        let config: RuntimeConfig = toml::from_str(
            "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/main.db\"\n[sqlite_database.other]\ntype = \"spin\"\n",
        )
        .unwrap();
        let paths = database_paths(&config, Some(Path::new("/s")), Path::new(CWD));
        assert_eq!(paths["default"], Some("/work/app/data/main.db".into()));
        assert_eq!(paths["other"], None);
        let plain = database_paths(&RuntimeConfig::default(), Some(Path::new("/s")), Path::new(CWD));
        assert_eq!(plain["default"], Some("/s/sqlite_db.db".into()));
    }
}
