//! Readiness: every Kafka trigger is a member of its consumer group, its
//! brokers answer, none of its partitions is paused retrying a record, and
//! its SQLite databases and the PostgreSQL databases in use answer a read.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::engine::PreparedComponent;

/// How long `/readyz` waits for a database to answer.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);


/// What readiness knows of one Kafka trigger.
pub(super) struct TriggerHealth {
    pub(super) component: String,
    /// Assigned by its group (possibly zero partitions) and not revoked since.
    pub(super) joined: AtomicBool,
    /// The brokers answered the consumer's last probe.
    pub(super) reachable: AtomicBool,
    /// Partitions paused retrying a record.
    pub(super) stalled: Mutex<BTreeSet<(String, i32)>>,
    /// Databases the component may open, probed with a read.
    pub(super) component_handle: PreparedComponent,
}

/// The health of every Kafka trigger of this process.
#[derive(Default)]
pub struct Health {
    pub(super) triggers: Mutex<Vec<Arc<TriggerHealth>>>,
}

impl Health {
    /// Why the process is not ready, or None when it is.
    pub(super) async fn not_ready(&self) -> Option<String> {
        let triggers = self.triggers.lock().clone();
        for trigger in &triggers {
            if !trigger.joined.load(Ordering::SeqCst) {
                return Some(format!("kafka trigger {}: not a member of its consumer group yet", trigger.component));
            }
            if !trigger.reachable.load(Ordering::SeqCst) {
                return Some(format!("kafka trigger {}: the Kafka brokers do not answer", trigger.component));
            }
            if let Some((topic, partition)) = trigger.stalled.lock().iter().next().cloned() {
                return Some(format!(
                    "kafka trigger {}: partition {topic}[{partition}] is paused retrying a failed record",
                    trigger.component
                ));
            }
        }
        for trigger in &triggers {
            if let Err(reason) = probe_databases(&trigger.component_handle).await {
                return Some(format!("kafka trigger {}: {reason}", trigger.component));
            }
        }
        None
    }
}

/// The PostgreSQL stores the component is configured with: each of its
/// variables whose value, resolved now (a variable provider may change it),
/// is a PostgreSQL connection URL. Whatever the variable is called: the host
/// knows no app's names. Probed before any instance opens them, so a store
/// that is down before the first request makes the process not ready.
fn configured_postgres(context: &crate::runtime::instance::ComponentContext) -> Vec<String> {
    context
        .config
        .values()
        .filter_map(|template| context.variables.render(template).ok())
        .filter_map(|value| crate::interfaces::postgres::connection_url(&value).map(str::to_owned))
        .collect()
}

/// A read on each SQLite database the component may open (the file is there,
/// readable, and not held by a stuck writer in rollback-journal mode), and on
/// each PostgreSQL database in use.
async fn probe_databases(component: &PreparedComponent) -> Result<(), String> {
    let context = component.context.clone();
    let probe = tokio::task::spawn_blocking(move || {
        for label in &context.allowed_databases {
            let mut connection = context
                .databases
                .open(label, &context.allowed_databases)
                .map_err(|e| format!("database {label:?} cannot be opened: {e:?}"))?;
            connection
                .execute_blocking("SELECT count(*) FROM sqlite_schema", Vec::new())
                .map_err(|e| format!("database {label:?} does not answer: {e:?}"))?;
        }
        Ok::<(), String>(())
    });
    match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, probe).await {
        Ok(Ok(result)) => result?,
        Ok(Err(panic)) => return Err(format!("database probe failed: {panic}")),
        Err(_) => return Err(format!("database did not answer within {DATABASE_PROBE_TIMEOUT:?}")),
    }
    // Every PostgreSQL database the components of this process use (each
    // connection string they opened): a store that is down makes the process
    // not ready, whichever store the app is configured with.
    let configured = configured_postgres(&component.context);
    match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, component.context.postgres.probe(&configured)).await {
        Ok(result) => result,
        Err(_) => Err(format!("PostgreSQL did not answer within {DATABASE_PROBE_TIMEOUT:?}")),
    }
}
