//! The triggers this host runs: Spin's HTTP trigger (manifest mode only; under
//! `spin up`, Spin serves HTTP itself) and the Kafka trigger. Both are a
//! [`Trigger`]: prepared from the loaded app and the shared services, then
//! run until shutdown, as Spin's trigger executors are.

pub mod http;
pub mod kafka;

use std::future::Future;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::launch::Services;

pub trait Trigger: Sized + Send + 'static {
    /// The manifest's trigger type: `[[trigger.<TYPE>]]`.
    const TYPE: &'static str;

    /// Everything that can fail at startup (config, components, sockets)
    /// fails here, before any trigger runs.
    fn prepare(services: &Services<'_>) -> impl Future<Output = Result<Self>> + Send;

    /// Runs until `shutdown` is cancelled (then finishes gracefully) or the
    /// trigger fails.
    fn run(self, shutdown: CancellationToken) -> impl Future<Output = Result<()>> + Send;
}
