//! What every trigger is prepared from, resolved once per process the way Spin
//! resolves it: the state dir and SQLite databases, the variables, the log
//! dir, the PostgreSQL pools, the wasmtime runtime, and the health and metrics
//! the triggers report to.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::Launch;
use crate::app::state::{self, RuntimeConfig};
use crate::app::{App, TriggerDef};
use crate::cli::SpinTriggerFlags;
use crate::interfaces::outbound_networking::AllowedHosts;
use crate::interfaces::postgres::{Pools, ZeroRowQueries};
use crate::interfaces::sqlite::Databases;
use crate::interfaces::variables::Variables;
use crate::runtime::engine::{EngineOptions, PreparedComponent, Runtime};
use crate::runtime::instance::ComponentContext;
use crate::runtime::logs::ComponentLogs;
use crate::serve::monitoring::{Health, Metrics};

pub struct Services<'a> {
    pub launch: &'a Launch,
    pub app: &'a App,
    pub databases: Arc<Databases>,
    pub variables: Arc<Variables>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    postgres: Arc<Pools>,
    log_dir: Option<PathBuf>,
    runtime: Runtime,
}

impl<'a> Services<'a> {
    pub fn resolve(launch: &'a Launch) -> Result<Self> {
        let flags = &launch.flags;
        let cwd = std::env::current_dir()?;
        let runtime_config = RuntimeConfig::load(flags.runtime_config_file.as_deref())?;
        let state_dir = state::state_dir(
            flags.state_dir.as_deref(),
            &runtime_config,
            launch.local_app_dir.as_deref(),
            &cwd,
        );
        let databases = Databases::new(
            state::database_paths(&runtime_config, state_dir.as_deref(), &cwd),
            crate::interfaces::sqlite::Connections::from_env()?,
        )?;
        match databases.path_of("default") {
            Some(path) => println!("Storing default SQLite data to {:?}", path),
            None => println!("No state directory: the default SQLite database is in memory"),
        }
        if databases.connections() == crate::interfaces::sqlite::Connections::PerOpen {
            println!("SQLite: a new connection per open, as Spin ({}=per-open)", crate::interfaces::sqlite::SQLITE_CONNECTIONS_VARIABLE);
        }
        run_sqlite_statements(&databases, &flags.sqlite_statements)?;
        let environment = crate::interfaces::variables::provider_environment(
            launch.local_app_dir.as_deref().map(Path::new),
            &runtime_config.variables_provider,
            std::env::vars(),
            &cwd,
        )?;
        let variables = Variables::resolve(&launch.app.variables, &flags.variables, environment)?;
        let runtime = Runtime::new(&EngineOptions {
            disable_pooling: flags.disable_pooling,
            disable_cache: flags.disable_cache,
            cache_config: flags.cache.clone(),
        })?;
        Ok(Services {
            launch,
            app: &launch.app,
            databases: Arc::new(databases),
            variables: Arc::new(variables),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            postgres: Arc::new(Pools::new(ZeroRowQueries::from_env()?, crate::interfaces::postgres::pool_size_from_env()?)),
            log_dir: log_dir(flags, &runtime_config, state_dir.as_deref(), &cwd),
            runtime,
        })
    }

    /// Compiles (or loads from the cache) the component a trigger runs, with
    /// the host services it may use.
    pub fn prepare_component(&self, trigger: &TriggerDef) -> Result<PreparedComponent> {
        let flags = &self.launch.flags;
        let def = self.app.runnable_component(trigger)?;
        // Spin renders templates in allowed_outbound_hosts from the app's variables.
        let allowed_hosts = def
            .allowed_outbound_hosts
            .iter()
            .map(|entry| self.variables.render(entry))
            .collect::<Result<Vec<_>>>()
            .and_then(|entries| AllowedHosts::parse(&entries))
            .with_context(|| format!("component {:?}", def.id))?;
        let follow = !flags.quiet
            && (flags.follow.is_empty() || flags.follow.iter().any(|f| *f == trigger.component));
        let context = ComponentContext {
            id: def.id.clone(),
            databases: self.databases.clone(),
            allowed_databases: def.databases.iter().cloned().collect::<HashSet<_>>(),
            postgres: self.postgres.clone(),
            allowed_hosts,
            config: def.config.clone(),
            variables: self.variables.clone(),
            environment: def.environment.clone().into_iter().collect(),
            logs: ComponentLogs::new(
                &def.id,
                follow,
                self.log_dir.as_deref(),
                flags.truncate_logs,
            )?,
            max_memory: flags.max_instance_memory,
        };
        self.runtime.prepare(Arc::new(context), &def.source)
    }
}

/// `--log-dir` (empty disables), else the runtime config's `log_dir`, else `<state_dir>/logs`.
fn log_dir(
    flags: &SpinTriggerFlags,
    config: &RuntimeConfig,
    state_dir: Option<&Path>,
    cwd: &Path,
) -> Option<PathBuf> {
    match flags.log_dir.as_deref().or(config.log_dir.as_deref()) {
        Some("") => None,
        Some(dir) => Some(cwd.join(dir)),
        None => state_dir.map(|s| s.join("logs")),
    }
}

fn run_sqlite_statements(databases: &Databases, statements: &[String]) -> Result<()> {
    for statement in statements {
        let (sql, label) = match statement.strip_prefix('@') {
            Some(spec) => {
                let (file, label) = match spec.rsplit_once(':') {
                    Some((file, label)) if databases.has(label) => (file, label),
                    _ => (spec, "default"),
                };
                (
                    std::fs::read_to_string(file).with_context(|| format!("--sqlite @{file}"))?,
                    label,
                )
            }
            None => (statement.clone(), "default"),
        };
        databases
            .run_startup_statement(label, &sql)
            .with_context(|| format!("--sqlite {statement:?}"))?;
    }
    Ok(())
}
