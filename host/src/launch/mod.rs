//! From a loaded app and the flags to running triggers: resolves the shared
//! services the way Spin does ([`Services`]), prepares each selected trigger
//! (compiling its components once), runs them, and shuts them down cleanly on
//! SIGTERM or Ctrl-C, or when one of them fails.

mod services;
mod signals;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::cli::{LocalCli, MonitoringFlags, PluginCli, SpinTriggerFlags};
use crate::triggers::http::{HttpExecutor, HttpLimits};
use crate::triggers::kafka::KafkaExecutor;
use crate::triggers::Trigger;
pub use services::Services;
use signals::ShutdownSignals;

pub struct Launch {
    pub app: App,
    pub flags: SpinTriggerFlags,
    /// What Spin passes as SPIN_LOCAL_APP_DIR (manifest mode: the manifest's directory).
    pub local_app_dir: Option<String>,
    trigger_types: Vec<String>,
    pub listen: Option<SocketAddr>,
    pub http_limits: HttpLimits,
    monitoring: MonitoringFlags,
}

impl Launch {
    /// Plugin mode: the locked app Spin wrote; only Kafka triggers are ours.
    pub fn plugin(locked_url: String, cli: PluginCli) -> Result<Self> {
        let foreign = cli.http_trigger.given();
        if !foreign.is_empty() {
            tracing::warn!(
                "ignoring {}: flags of Spin's HTTP trigger, which spin up passed to every trigger because it \
                 could not read the triggers' launch metadata (with RUST_LOG=info, scope it: \
                 RUST_LOG=trigger_kafka=info; see docs/spin-plugin.md)",
                foreign.join(", ")
            );
        }
        let app = app::locked::load(&locked_url)?;
        Ok(Launch {
            app,
            flags: cli.spin,
            local_app_dir: std::env::var("SPIN_LOCAL_APP_DIR").ok(),
            trigger_types: vec!["kafka".into()],
            listen: None,
            http_limits: HttpLimits::default(),
            monitoring: cli.monitoring,
        })
    }

    /// Manifest mode: every trigger type of the app, or those asked for.
    pub fn local(cli: LocalCli) -> Result<Self> {
        let manifest = app::manifest::resolve_path(&cli.from);
        let app = app::manifest::load(&manifest)?;
        let present: Vec<String> = app
            .triggers
            .iter()
            .map(|t| t.trigger_type.clone())
            .collect();
        let trigger_types = if cli.triggers.is_empty() {
            present.clone()
        } else {
            cli.triggers.clone()
        };
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
            http_limits: cli.http.limits(),
            monitoring: cli.monitoring,
        })
    }

    pub async fn run(self) -> Result<()> {
        // Take over SIGTERM/SIGINT before the slow part (compiling components):
        // a signal during startup must also end in a graceful exit 0, not in
        // death by the default signal action.
        let signals = ShutdownSignals::install()?;
        if !self.flags.key_values.is_empty() {
            // spin up routes --key-value to every trigger that lists it; the HTTP
            // trigger may need it, so refusing it here would stop the whole app.
            tracing::warn!("--key-value ignored: this trigger provides no key-value stores");
        }
        let services = Services::resolve(&self)?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        self.start::<HttpExecutor>(&services, &mut tasks, &shutdown)
            .await?;
        self.start::<KafkaExecutor>(&services, &mut tasks, &shutdown)
            .await?;
        if tasks.is_empty() {
            bail!(
                "the app has no {} triggers to run",
                self.trigger_types.join(" or ")
            );
        }
        if let Some(addr) = &self.monitoring.metrics_listen {
            let (metrics, health) = (services.metrics.clone(), services.health.clone());
            let server = crate::serve::monitoring::serve(
                addr,
                metrics,
                health,
                shutdown.clone().cancelled_owned(),
            )
            .await?;
            tasks.spawn(async move { server.await.context("metrics server") });
        }
        supervise(signals, tasks, shutdown).await
    }

    /// Prepares and spawns trigger `T` if it was selected.
    async fn start<T: Trigger>(
        &self,
        services: &Services<'_>,
        tasks: &mut JoinSet<Result<()>>,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let selected = self.trigger_types.iter().any(|t| t == T::TYPE);
        if !selected || self.app.triggers_of(T::TYPE).next().is_none() {
            return Ok(());
        }
        let trigger = T::prepare(services).await?;
        let stop = shutdown.clone();
        tasks.spawn(trigger.run(stop));
        Ok(())
    }
}

/// Runs until a signal, or until a task ends (a trigger failed, or stopped
/// when it should not have): then stops the others and waits for them.
async fn supervise(
    signals: ShutdownSignals,
    mut tasks: JoinSet<Result<()>>,
    shutdown: CancellationToken,
) -> Result<()> {
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
