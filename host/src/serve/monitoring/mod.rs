//! Health and metrics of the Kafka triggers, served on `--metrics-listen`:
//! `/healthz` (the process answers), `/readyz` (every Kafka trigger is a member
//! of its consumer group, its brokers answer, none of its partitions is paused
//! retrying a record, and its SQLite databases and the PostgreSQL databases in
//! use answer a read) and `/metrics` (Prometheus text).
//! The consumer reports through [`kafka_consumer::Observer`]; this module turns
//! that into counters, a latency histogram, lag gauges (in records and in
//! seconds), pause gauges and readiness.

mod metrics;
mod observer;
mod readiness;

use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

pub use metrics::Metrics;
pub use observer::TriggerObserver;
pub use readiness::Health;
use crate::serve::ServeLimits;

/// Binds `addr` now (so a taken port is a startup error), then serves until `shutdown`.
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<impl std::future::Future<Output = Result<()>>> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("--metrics-listen: cannot listen on {addr}"))?;
    tracing::info!("Health and metrics on http://{}/ (healthz, readyz, metrics)", listener.local_addr()?);
    let limits = ServeLimits { max_connections: 128, ..ServeLimits::default() };
    Ok(async move {
        crate::serve::serve(
            "metrics server",
            listener,
            limits,
            |_client| {
                let (metrics, health) = (metrics.clone(), health.clone());
                hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (metrics, health) = (metrics.clone(), health.clone());
                    async move { Ok::<_, std::convert::Infallible>(answer(&request, &metrics, &health).await) }
                })
            },
            shutdown,
        )
        .await;
        Ok(())
    })
}

async fn answer(request: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    };
    let json = "application/json";
    match request.uri().path() {
        "/healthz" => reply(StatusCode::OK, json, r#"{"status":"alive"}"#.into()),
        "/readyz" => match health.not_ready().await {
            None => reply(StatusCode::OK, json, r#"{"ready":true}"#.into()),
            Some(reason) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json,
                serde_json::json!({"ready": false, "reason": reason}).to_string(),
            ),
        },
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => reply(StatusCode::NOT_FOUND, json, r#"{"detail":"Not found."}"#.into()),
    }
}
