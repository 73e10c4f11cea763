//! The one HTTP/1 serve loop of this host, shared by the HTTP trigger and the
//! health and metrics server, hardened against clients that misbehave:
//! - a cap on open connections: at the cap the listener stops accepting, so
//!   further clients wait in the kernel's backlog instead of costing
//!   descriptors and memory;
//! - hyper's header read timeout: a client must send a request's complete
//!   head within it. hyper starts that timer whenever it waits for a head, so
//!   it also closes a keep-alive connection that stays idle that long, and a
//!   connection that never sends anything;
//! - accept errors (EMFILE when descriptors run out, ECONNABORTED...) back off
//!   exponentially instead of spinning, and are logged once per interval
//!   with a count;
//! - graceful shutdown (hyper-util's): on shutdown the listener closes, idle
//!   connections close, and requests in flight finish, for at most a grace
//!   period.

pub mod monitoring;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use kafka_consumer::RateLimiter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one server tolerates.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request head (and the longest a
    /// keep-alive connection may sit idle).
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl ServeLimits {
    /// The defaults, here only (the CLI's flags show and use these).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Shortest and longest pause after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accept failures and cap hits are logged at most once per interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` resolves; `service` makes the service
/// of one connection from the client's address.
pub async fn serve<S, B, F>(
    name: &'static str,
    listener: TcpListener,
    limits: ServeLimits,
    service: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let mut errors = AcceptErrors::default();
    let at_cap = RateLimiter::new(LOG_INTERVAL);
    tokio::pin!(shutdown);
    loop {
        let Some(slot) = connection_slot(name, &slots, limits.max_connections, &at_cap, shutdown.as_mut()).await
        else {
            break;
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    errors.succeeded(name);
                    accepted
                }
                Err(error) => {
                    let pause = errors.failed(name, &error);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service(client)));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!("{name}: connection from {client}: {e}");
            }
        });
    }
    drop(listener);
    tracing::info!("{name} stopping: finishing in-flight requests");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("{name}: some requests were still running after {:?}", limits.shutdown_grace);
    }
}

struct AcceptErrors {
    log: RateLimiter,
    backoff: Option<Duration>,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        AcceptErrors { log: RateLimiter::new(LOG_INTERVAL), backoff: None }
    }
}

impl AcceptErrors {
    /// The pause before the next accept.
    fn failed(&mut self, name: &str, error: &std::io::Error) -> Duration {
        let pause = self.backoff.map_or(ACCEPT_BACKOFF_MIN, |b| (b * 2).min(ACCEPT_BACKOFF_MAX));
        self.backoff = Some(pause);
        if let Some(suppressed) = self.log.check() {
            let count = suppressed + 1;
            tracing::warn!(
                "{name}: accept failed: {error} ({count} failure(s) since the last report; retrying with backoff up to {ACCEPT_BACKOFF_MAX:?})"
            )
        }
        pause
    }

    fn succeeded(&mut self, name: &str) {
        if self.backoff.take().is_some() {
            tracing::info!("{name}: accepting connections again ({} failure(s) since the last report)", self.log.suppressed());
            self.log.reset();
        }
    }
}

/// A free connection slot; at the cap, waits for one (logging that, rate
/// limited). `None` once shutdown comes first.
async fn connection_slot(
    name: &str,
    slots: &Arc<Semaphore>,
    max_connections: usize,
    at_cap: &RateLimiter,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Some(slot);
    }
    if let Some(suppressed) = at_cap.check() {
        let count = suppressed + 1;
        tracing::warn!(
            "{name}: {max_connections} connections open (the cap); new clients wait ({count} time(s) since the last report)"
        )
    }
    tokio::select! {
        slot = slots.clone().acquire_owned() => Some(slot.expect("never closed")),
        _ = shutdown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_and_log_once_per_interval() {
        let mut errors = AcceptErrors::default();
        let error = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..12).map(|_| errors.failed("test", &error)).collect();
        assert_eq!(pauses[0], ACCEPT_BACKOFF_MIN);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), ACCEPT_BACKOFF_MAX);
        // The first failure was reported; the 11 after it are counted, not logged.
        assert_eq!(errors.log.suppressed(), 11);
        errors.succeeded("test");
        assert_eq!(errors.backoff, None);
        assert_eq!(errors.failed("test", &error), ACCEPT_BACKOFF_MIN);
    }
}
