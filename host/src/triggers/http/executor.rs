//! The HTTP trigger as a [`Trigger`]: every `[[trigger.http]]` route of the
//! app, compiled, behind one listener bound at prepare time (so a taken port
//! is a startup error, not a late one).

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{HttpTrigger, Route};
use crate::launch::Services;
use crate::triggers::Trigger;

pub struct HttpExecutor {
    trigger: Arc<HttpTrigger>,
    listener: TcpListener,
}

impl Trigger for HttpExecutor {
    const TYPE: &'static str = "http";

    async fn prepare(services: &Services<'_>) -> Result<Self> {
        let mut routes = Vec::new();
        for trigger in services.app.triggers_of(Self::TYPE) {
            let pattern = trigger
                .config
                .get("route")
                .and_then(|r| r.as_str())
                .with_context(|| {
                    format!(
                        "[[trigger.http]] for {:?} needs a string `route`",
                        trigger.component
                    )
                })?;
            routes.push(Route {
                pattern: pattern.to_owned(),
                component: services.prepare_component(trigger)?,
            });
        }
        let launch = services.launch;
        let listen = launch.listen.context("the HTTP trigger needs --listen")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(HttpExecutor {
            trigger: Arc::new(HttpTrigger::new(routes, launch.http_limits.clone())?),
            listener,
        })
    }

    async fn run(self, shutdown: CancellationToken) -> Result<()> {
        self.trigger
            .serve(self.listener, shutdown.cancelled_owned())
            .await
            .context("HTTP trigger")
    }
}
