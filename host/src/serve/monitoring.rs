//! Health and metrics of the Kafka triggers, served on `--metrics-listen`:
//! `/healthz` (the process answers), `/readyz` (every Kafka trigger is a member
//! of its consumer group, its brokers answer, none of its partitions is paused
//! retrying a record, and its SQLite databases and the PostgreSQL databases in
//! use answer a read) and `/metrics` (Prometheus text).
//! The consumer reports through [`kafka_consumer::Observer`]; this module turns
//! that into counters, a latency histogram, lag gauges (in records and in
//! seconds), pause gauges and readiness.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::runtime::engine::PreparedComponent;
use crate::serve::ServeLimits;

/// How long `/readyz` waits for a database to answer.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentTopic {
    component: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicPartition {
    topic: String,
    partition: i32,
}

/// Every metric of the process (names without the `_total` suffix that the
/// exposition adds to counters).
pub struct Metrics {
    registry: Registry,
    handled: Family<ComponentTopic, Counter>,
    retried: Family<ComponentTopic, Counter>,
    failed: Family<ComponentTopic, Counter>,
    dead_lettered: Family<ComponentTopic, Counter>,
    skipped: Family<ComponentTopic, Counter>,
    duration: Family<ComponentTopic, Histogram>,
    lag: Family<TopicPartition, Gauge>,
    lag_seconds: Family<TopicPartition, SecondsGauge>,
    paused_seconds: Family<TopicPartition, SecondsGauge>,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let handled = Family::<ComponentTopic, Counter>::default();
        let retried = Family::<ComponentTopic, Counter>::default();
        let failed = Family::<ComponentTopic, Counter>::default();
        let dead_lettered = Family::<ComponentTopic, Counter>::default();
        let skipped = Family::<ComponentTopic, Counter>::default();
        // 100 µs .. ~13 s: a record's upsert is sub-millisecond, a batch or a
        // call waiting on a locked database takes seconds.
        let duration = Family::<ComponentTopic, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let lag = Family::<TopicPartition, Gauge>::default();
        let lag_seconds = Family::<TopicPartition, SecondsGauge>::default();
        let paused_seconds = Family::<TopicPartition, SecondsGauge>::default();
        registry.register(
            "trigger_kafka_records_handled",
            "Records the component applied successfully",
            handled.clone(),
        );
        registry.register(
            "trigger_kafka_records_retried",
            "Retries scheduled after a retryable failure",
            retried.clone(),
        );
        registry.register(
            "trigger_kafka_records_failed",
            "Handler calls for one record that returned an error (each attempt counts)",
            failed.clone(),
        );
        registry.register(
            "trigger_kafka_records_dead_lettered",
            "Records sent to the dead-letter topic",
            dead_lettered.clone(),
        );
        registry.register(
            "trigger_kafka_records_skipped",
            "Records that failed for good and were skipped, for want of a dead-letter topic",
            skipped.clone(),
        );
        registry.register(
            "trigger_kafka_handler_duration_seconds",
            "Duration of a handler call (one record, or one batch)",
            duration.clone(),
        );
        registry.register(
            "trigger_kafka_consumer_lag",
            "Records not yet done: high watermark minus the next offset to process",
            lag.clone(),
        );
        registry.register(
            "trigger_kafka_consumer_lag_seconds",
            "Now minus the timestamp of the oldest record received and not yet done (0 when none is held)",
            lag_seconds.clone(),
        );
        registry.register(
            "trigger_kafka_partition_paused_seconds",
            "How long the partition has been paused retrying a record (0 when not paused)",
            paused_seconds.clone(),
        );
        Metrics { registry, handled, retried, failed, dead_lettered, skipped, duration, lag, lag_seconds, paused_seconds }
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

/// What readiness knows of one Kafka trigger.
struct TriggerHealth {
    component: String,
    /// Assigned by its group (possibly zero partitions) and not revoked since.
    joined: AtomicBool,
    /// The brokers answered the consumer's last probe.
    reachable: AtomicBool,
    /// Partitions paused retrying a record.
    stalled: Mutex<BTreeSet<(String, i32)>>,
    /// Databases the component may open, probed with a read.
    component_handle: PreparedComponent,
}

/// The health of every Kafka trigger of this process.
#[derive(Default)]
pub struct Health {
    triggers: Mutex<Vec<Arc<TriggerHealth>>>,
}

impl Health {
    /// Why the process is not ready, or None when it is.
    async fn not_ready(&self) -> Option<String> {
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

/// The PostgreSQL store the component is configured with: its
/// `database_url` variable, resolved now (a variable provider may change
/// it), when it names PostgreSQL. Probed before any instance opens it, so a
/// store that is down before the first request makes the process not ready.
fn configured_postgres(context: &crate::runtime::instance::ComponentContext) -> Vec<String> {
    let Some(template) = context.config.get("database_url") else { return Vec::new() };
    match context.variables.render(template) {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => vec![url],
        _ => Vec::new(),
    }
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

/// The consumer's reports for one trigger, into the metrics and its readiness.
pub struct TriggerObserver {
    component: String,
    metrics: Arc<Metrics>,
    health: Arc<TriggerHealth>,
}

impl TriggerObserver {
    /// Registers a trigger of `component` with readiness (not ready until its
    /// consumer joins the group).
    pub fn new(component: &PreparedComponent, metrics: Arc<Metrics>, health: &Health) -> Self {
        let trigger = Arc::new(TriggerHealth {
            component: component.context.id.clone(),
            joined: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            stalled: Mutex::new(BTreeSet::new()),
            component_handle: component.clone(),
        });
        health.triggers.lock().push(trigger.clone());
        TriggerObserver { component: component.context.id.clone(), metrics, health: trigger }
    }

    fn labels(&self, topic: &str) -> ComponentTopic {
        ComponentTopic { component: self.component.clone(), topic: topic.to_owned() }
    }
}

impl kafka_consumer::Observer for TriggerObserver {
    fn assigned(&self, _partitions: &[(String, i32)]) {
        self.health.joined.store(true, Ordering::SeqCst);
    }

    fn revoked(&self, partitions: &[(String, i32)], rejoining: bool) {
        if rejoining {
            self.health.joined.store(false, Ordering::SeqCst);
        }
        for (topic, partition) in partitions {
            let labels = TopicPartition { topic: topic.clone(), partition: *partition };
            self.metrics.lag.remove(&labels);
            self.metrics.lag_seconds.remove(&labels);
            self.metrics.paused_seconds.remove(&labels);
        }
    }

    fn member_without_partitions(&self) {
        self.health.joined.store(true, Ordering::SeqCst);
    }

    fn brokers_reachable(&self, reachable: bool) {
        self.health.reachable.store(reachable, Ordering::SeqCst);
    }

    fn handler_call(&self, topic: &str, records: usize, elapsed: Duration, ok: bool) {
        let labels = self.labels(topic);
        self.metrics.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if ok {
            self.metrics.handled.get_or_create(&labels).inc_by(records as u64);
        } else if records == 1 {
            // A failed batch is replayed record by record; those calls count.
            self.metrics.failed.get_or_create(&labels).inc();
        }
    }

    fn retrying(&self, topic: &str, _partition: i32) {
        self.metrics.retried.get_or_create(&self.labels(topic)).inc();
    }

    fn dead_lettered(&self, topic: &str, _partition: i32) {
        self.metrics.dead_lettered.get_or_create(&self.labels(topic)).inc();
    }

    fn skipped(&self, topic: &str, _partition: i32) {
        self.metrics.skipped.get_or_create(&self.labels(topic)).inc();
    }

    fn stalled(&self, topic: &str, partition: i32, stalled: bool) {
        let key = (topic.to_owned(), partition);
        let mut set = self.health.stalled.lock();
        if stalled {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.metrics.lag.get_or_create(&TopicPartition { topic: topic.to_owned(), partition }).set(lag);
    }

    fn time_lag(&self, topic: &str, partition: i32, lag: Duration, paused: Duration) {
        let labels = TopicPartition { topic: topic.to_owned(), partition };
        self.metrics.lag_seconds.get_or_create(&labels).set(lag.as_secs_f64());
        self.metrics.paused_seconds.get_or_create(&labels).set(paused.as_secs_f64());
    }
}

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
