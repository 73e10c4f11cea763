//! From a loaded app and the flags to running triggers: resolves state dir,
//! databases, variables and logs the way Spin does, compiles the components
//! the selected triggers need (once), starts the triggers, and shuts them down
//! cleanly on SIGTERM or Ctrl-C.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::cli::{LocalCli, MonitoringFlags, PluginCli, SpinTriggerFlags};
use crate::engine::{EngineOptions, PreparedComponent, Runtime};
use crate::http_trigger::{HttpTrigger, Route};
use crate::instance::ComponentContext;
use crate::logs::ComponentLogs;
use crate::outbound::AllowedHosts;
use crate::postgres::{Pools, ZeroRowQueries};
use crate::monitoring::{Health, Metrics, TriggerObserver};
use crate::sqlite::Databases;
use crate::state::{self, RuntimeConfig};
use crate::variables::Variables;

pub struct Launch {
    app: App,
    flags: SpinTriggerFlags,
    /// What Spin passes as SPIN_LOCAL_APP_DIR (manifest mode: the manifest's directory).
    local_app_dir: Option<String>,
    trigger_types: Vec<String>,
    listen: Option<SocketAddr>,
    monitoring: MonitoringFlags,
}

impl Launch {
    /// Plugin mode: the locked app Spin wrote; only Kafka triggers are ours.
    pub fn plugin(locked_url: String, cli: PluginCli) -> Result<Self> {
        let app = app::locked::load(&locked_url)?;
        Ok(Launch {
            app,
            flags: cli.spin,
            local_app_dir: std::env::var("SPIN_LOCAL_APP_DIR").ok(),
            trigger_types: vec!["kafka".into()],
            listen: None,
            monitoring: cli.monitoring,
        })
    }

    /// Manifest mode: every trigger type of the app, or those asked for.
    pub fn local(cli: LocalCli) -> Result<Self> {
        let manifest = app::manifest::resolve_path(&cli.from);
        let app = app::manifest::load(&manifest)?;
        let present: Vec<String> = app.triggers.iter().map(|t| t.trigger_type.clone()).collect();
        let trigger_types = if cli.triggers.is_empty() { present.clone() } else { cli.triggers.clone() };
        for ty in present.iter().chain(&cli.triggers) {
            if ty != "http" && ty != "kafka" {
                bail!("trigger type {ty:?} is not supported by this host (only http and kafka)");
            }
        }
        let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Launch {
            app,
            flags: cli.spin,
            local_app_dir: Some(dir.to_string_lossy().into_owned()),
            trigger_types,
            listen: Some(cli.listen),
            monitoring: cli.monitoring,
        })
    }

    pub async fn run(self) -> Result<()> {
        // Take over SIGTERM/SIGINT before the slow part (compiling components):
        // a signal during startup must also end in a graceful exit 0, not in
        // death by the default signal action.
        let signals = ShutdownSignals::install()?;
        let flags = &self.flags;
        if !flags.key_values.is_empty() {
            // spin up routes --key-value to every trigger that lists it; the HTTP
            // trigger may need it, so refusing it here would stop the whole app.
            tracing::warn!("--key-value ignored: this trigger provides no key-value stores");
        }
        let cwd = std::env::current_dir()?;
        let runtime_config = RuntimeConfig::load(flags.runtime_config_file.as_deref())?;
        let state_dir = state::state_dir(flags.state_dir.as_deref(), &runtime_config, self.local_app_dir.as_deref(), &cwd);
        let databases = Databases::new(state::database_paths(&runtime_config, state_dir.as_deref(), &cwd))?;
        match databases.path_of("default") {
            Some(path) => println!("Storing default SQLite data to {:?}", path),
            None => println!("No state directory: the default SQLite database is in memory"),
        }
        run_sqlite_statements(&databases, &flags.sqlite_statements)?;
        let databases = Arc::new(databases);
        let environment = crate::variables::provider_environment(
            self.local_app_dir.as_deref().map(Path::new),
            &runtime_config.variables_provider,
            std::env::vars(),
            &cwd,
        )?;
        let variables = Arc::new(Variables::resolve(&self.app.variables, &flags.variables, environment)?);
        let log_dir = log_dir(flags, &runtime_config, state_dir.as_deref(), &cwd);
        let postgres = Arc::new(Pools::new(ZeroRowQueries::from_env()?));

        let runtime = Runtime::new(&EngineOptions {
            disable_pooling: flags.disable_pooling,
            disable_cache: flags.disable_cache,
            cache_config: flags.cache.clone(),
        })?;
        let prepare = |component_id: &str, trigger: &app::TriggerDef| -> Result<PreparedComponent> {
            let def = self.app.runnable_component(trigger)?;
            // Spin renders templates in allowed_outbound_hosts from the app's variables.
            let allowed_hosts = def
                .allowed_outbound_hosts
                .iter()
                .map(|entry| variables.render(entry))
                .collect::<Result<Vec<_>>>()
                .and_then(|entries| AllowedHosts::parse(&entries))
                .with_context(|| format!("component {:?}", def.id))?;
            let follow = !flags.quiet && (flags.follow.is_empty() || flags.follow.iter().any(|f| f == component_id));
            let context = ComponentContext {
                id: def.id.clone(),
                databases: databases.clone(),
                allowed_databases: def.databases.iter().cloned().collect::<HashSet<_>>(),
                postgres: postgres.clone(),
                allowed_hosts,
                config: def.config.clone(),
                variables: variables.clone(),
                environment: def.environment.clone().into_iter().collect(),
                logs: ComponentLogs::new(&def.id, follow, log_dir.as_deref(), flags.truncate_logs)?,
                max_memory: flags.max_instance_memory,
            };
            runtime.prepare(Arc::new(context), &def.source)
        };

        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        if self.trigger_types.iter().any(|t| t == "http") {
            let mut routes = Vec::new();
            for trigger in self.app.triggers_of("http") {
                let pattern = trigger.config.get("route").and_then(|r| r.as_str()).with_context(|| {
                    format!("[[trigger.http]] for {:?} needs a string `route`", trigger.component)
                })?;
                routes.push(Route { pattern: pattern.to_owned(), component: prepare(&trigger.component, trigger)? });
            }
            let listen = self.listen.context("the HTTP trigger needs --listen")?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let http = Arc::new(HttpTrigger::new(routes)?);
            let stop = shutdown.clone();
            tasks.spawn(async move { http.serve(listener, stop.cancelled_owned()).await.context("HTTP trigger") });
        }
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        if self.trigger_types.iter().any(|t| t == "kafka") {
            let settings = self.app.settings("kafka");
            for trigger in self.app.triggers_of("kafka") {
                let config = crate::kafka_trigger::consumer_config(&self.app.name, &settings, &trigger.config, &variables)
                    .with_context(|| format!("Kafka trigger {}", trigger.id))?;
                // As Spin: a label no database is defined for is a startup error,
                // not a failure of every record that opens it (which, retried,
                // would stall the partition, or, dead-lettered, drain the topic).
                let def = self.app.runnable_component(trigger)?;
                if let Some(label) = def.databases.iter().find(|label| !databases.has(label)) {
                    bail!(
                        "component {:?} uses SQLite database {label:?}, which is not defined: define it in the runtime config file ([sqlite_database.{label}]) or remove it from sqlite_databases",
                        def.id
                    );
                }
                let component = prepare(&trigger.component, trigger)?;
                let observer = Arc::new(TriggerObserver::new(&component, metrics.clone(), &health));
                let stop = shutdown.clone();
                let id = trigger.id.clone();
                tasks.spawn(async move {
                    crate::kafka_trigger::run(config, component, observer, stop.cancelled_owned())
                        .await
                        .with_context(|| format!("Kafka trigger {id}"))
                });
            }
        }
        if tasks.is_empty() {
            bail!("the app has no {} triggers to run", self.trigger_types.join(" or "));
        }
        if let Some(addr) = &self.monitoring.metrics_listen {
            let server = crate::monitoring::serve(addr, metrics, health, shutdown.clone().cancelled_owned()).await?;
            tasks.spawn(async move { server.await.context("metrics server") });
        }

        // Run until a signal, or until a trigger fails (then stop the others).
        let mut result = Ok(());
        tokio::select! {
            _ = signals.received() => tracing::info!("shutting down"),
            Some(done) = tasks.join_next() => {
                result = done.context("trigger task panicked").and_then(|r| r);
                if result.is_ok() {
                    result = Err(anyhow::anyhow!("a trigger stopped unexpectedly"));
                }
            }
        }
        shutdown.cancel();
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.context("trigger task panicked").and_then(|r| r) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }
}

/// `--log-dir` (empty disables), else the runtime config's `log_dir`, else `<state_dir>/logs`.
fn log_dir(flags: &SpinTriggerFlags, config: &RuntimeConfig, state_dir: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
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
                (std::fs::read_to_string(file).with_context(|| format!("--sqlite @{file}"))?, label)
            }
            None => (statement.clone(), "default"),
        };
        databases
            .run_startup_statement(label, &sql)
            .with_context(|| format!("--sqlite {statement:?}"))?;
    }
    Ok(())
}

/// SIGTERM (what `spin up` sends its triggers) and SIGINT (Ctrl-C), caught
/// from the moment they are installed.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}
