//! The Kafka trigger as a [`Trigger`]: one consumer per `[[trigger.kafka]]`,
//! each with its compiled component and its observer, run side by side. When
//! one fails, the others are stopped gracefully before the failure is
//! returned, so no consumer is dropped mid-record.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kafka_consumer::ConsumerConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::launch::Services;
use crate::runtime::engine::PreparedComponent;
use crate::serve::monitoring::TriggerObserver;
use crate::triggers::Trigger;

pub struct KafkaExecutor {
    consumers: Vec<Consumer>,
}

struct Consumer {
    id: String,
    config: ConsumerConfig,
    component: PreparedComponent,
    observer: Arc<TriggerObserver>,
}

impl Trigger for KafkaExecutor {
    const TYPE: &'static str = "kafka";

    async fn prepare(services: &Services<'_>) -> Result<Self> {
        let app = services.app;
        let settings = app.settings(Self::TYPE);
        let mut consumers = Vec::new();
        for trigger in app.triggers_of(Self::TYPE) {
            let config =
                super::consumer_config(&app.name, &settings, &trigger.config, &services.variables)
                    .with_context(|| format!("Kafka trigger {}", trigger.id))?;
            // As Spin: a label no database is defined for is a startup error,
            // not a failure of every record that opens it (which, retried,
            // would stall the partition, or, dead-lettered, drain the topic).
            let def = app.runnable_component(trigger)?;
            if let Some(label) = def
                .databases
                .iter()
                .find(|label| !services.databases.has(label))
            {
                bail!(
                    "component {:?} uses SQLite database {label:?}, which is not defined: define it in the runtime config file ([sqlite_database.{label}]) or remove it from sqlite_databases",
                    def.id
                );
            }
            let component = services.prepare_component(trigger)?;
            let observer = Arc::new(TriggerObserver::new(
                &component,
                services.metrics.clone(),
                &services.health,
            ));
            consumers.push(Consumer {
                id: trigger.id.clone(),
                config,
                component,
                observer,
            });
        }
        Ok(KafkaExecutor { consumers })
    }

    async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let stop = shutdown.child_token();
        let mut tasks = JoinSet::new();
        for Consumer {
            id,
            config,
            component,
            observer,
        } in self.consumers
        {
            let stop = stop.clone();
            tasks.spawn(async move {
                super::run(config, component, observer, stop.cancelled_owned())
                    .await
                    .with_context(|| format!("Kafka trigger {id}"))
            });
        }
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let done = done.context("Kafka trigger task panicked").and_then(|r| r);
            // The first to end before shutdown (failed, or stopped when it
            // should not have) ends them all, and is the result.
            if result.is_ok() && !stop.is_cancelled() {
                result = done
                    .and_then(|()| Err(anyhow::anyhow!("a Kafka trigger stopped unexpectedly")));
            } else if result.is_ok() {
                result = done;
            }
            stop.cancel();
        }
        result
    }
}
