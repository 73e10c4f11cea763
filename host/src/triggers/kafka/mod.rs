//! The Kafka trigger: turns `[application.trigger.kafka]` and each
//! `[[trigger.kafka]]` (after `{{ variable }}` rendering) into a consumer of
//! the `kafka-consumer` crate, and calls the component's
//! `trigger-kafka:kafka/inbound-kafka` export once per record, in a fresh
//! instance, as Spin does per event.

mod executor;

pub use executor::KafkaExecutor;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kafka_consumer::{
    ConsumerConfig, GroupProtocol, HandleError, KafkaRecord, RecordHandler, RetryPolicy, StartOffset,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::runtime::engine::PreparedComponent;
use crate::interfaces::variables::Variables;

mod wit_versions;

use wit_versions::Exports;

/// `[application.trigger.kafka]`: settings shared by every Kafka trigger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSettings {
    /// Comma-separated bootstrap servers.
    brokers: String,
    /// Raw librdkafka client settings (`"security.protocol" = "SASL_SSL"`,
    /// `"sasl.username" = "{{ kafka_user }}"`, ...).
    #[serde(default)]
    client: Map<String, Value>,
    /// Every trigger's group protocol unless it sets its own.
    #[serde(default)]
    group_protocol: GroupProtocol,
    /// Every trigger's static membership id unless it sets its own.
    group_instance_id: Option<String>,
}

/// One `[[trigger.kafka]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerSettings {
    component: String,
    /// The trigger id Spin may add; accepted, the host names triggers itself.
    #[serde(default, rename = "id")]
    _id: Option<String>,
    topics: Vec<String>,
    group_id: Option<String>,
    /// `"consumer"` (KIP-848) or `"classic"`; overrides the app-level one.
    group_protocol: Option<GroupProtocol>,
    /// Static membership (`group.instance.id`), typically `"{{ pod_name }}"`;
    /// empty (a variable without value) means a dynamic member.
    group_instance_id: Option<String>,
    #[serde(default)]
    start_offset: StartOffset,
    dead_letter_topic: Option<String>,
    create_dead_letter_topic: Option<bool>,
    dead_letter_replication: Option<i32>,
    /// Handler calls per record before a retryable failure is dead-lettered;
    /// 0 = retry until it succeeds (the partition waits).
    max_attempts: Option<u32>,
    /// Traps of the component on one record before it is dead-lettered
    /// (kind `trap`), whatever max_attempts says; default 3.
    max_trap_attempts: Option<u32>,
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    /// Most records per call of the optional batch export.
    batch_size: Option<usize>,
    /// Longest one call of the component (a record, or a batch) may run; past
    /// it the instance is dropped and the call retried. Default 30 000.
    handler_timeout_ms: Option<u64>,
    /// Records fetched ahead per partition (librdkafka `queued.min.messages`).
    prefetch_per_partition: Option<usize>,
    /// The old name of `prefetch_per_partition`, which said "in flight" of
    /// records that are only fetched ahead; still accepted, with a warning.
    max_in_flight_per_partition: Option<usize>,
}

/// `prefetch_per_partition`, or its deprecated old key (a warning at startup
/// names the trigger's component).
fn prefetch(t: &TriggerSettings) -> Result<Option<usize>> {
    match (t.prefetch_per_partition, t.max_in_flight_per_partition) {
        (Some(_), Some(_)) => bail!(
            "[[trigger.kafka]] for component {:?}: max_in_flight_per_partition is the deprecated name of prefetch_per_partition; set only prefetch_per_partition",
            t.component
        ),
        (None, Some(old)) => {
            tracing::warn!(
                component = %t.component,
                "[[trigger.kafka]] key max_in_flight_per_partition is deprecated: rename it prefetch_per_partition (same meaning)"
            );
            Ok(Some(old))
        }
        (new, None) => Ok(new),
    }
}

/// Builds the consumer configuration of one trigger.
pub fn consumer_config(
    app_name: &str,
    app_settings: &Map<String, Value>,
    trigger: &Map<String, Value>,
    variables: &Variables,
) -> Result<ConsumerConfig> {
    let app: AppSettings = serde_json::from_value(variables.render_json(&Value::Object(app_settings.clone()))?)
        .context("[application.trigger.kafka]")?;
    let t: TriggerSettings = serde_json::from_value(variables.render_json(&Value::Object(trigger.clone()))?)
        .with_context(|| format!("[[trigger.kafka]] for component {:?}", trigger.get("component")))?;
    let prefetch_per_partition = prefetch(&t)?;
    let group_id = t.group_id.unwrap_or_else(|| format!("{app_name}-{}", t.component));
    let mut config = ConsumerConfig::new(app.brokers, group_id, t.topics);
    config.group_protocol = t.group_protocol.unwrap_or(app.group_protocol);
    config.group_instance_id = t.group_instance_id.or(app.group_instance_id).filter(|id| !id.trim().is_empty());
    config.start_offset = t.start_offset;
    config.dead_letter_topic = t.dead_letter_topic;
    if let Some(create) = t.create_dead_letter_topic {
        config.create_dead_letter_topic = create;
    }
    if let Some(replication) = t.dead_letter_replication {
        config.dead_letter_replication = replication;
    }
    let defaults = RetryPolicy::default();
    config.retry = RetryPolicy {
        max_attempts: t.max_attempts.unwrap_or(defaults.max_attempts),
        max_trap_attempts: t.max_trap_attempts.unwrap_or(defaults.max_trap_attempts),
        initial_backoff: t.initial_backoff_ms.map_or(defaults.initial_backoff, Duration::from_millis),
        max_backoff: t.max_backoff_ms.map_or(defaults.max_backoff, Duration::from_millis),
        ..defaults
    };
    if let Some(ms) = t.handler_timeout_ms {
        config.handler_timeout = Duration::from_millis(ms);
    }
    if let Some(records) = prefetch_per_partition {
        config.prefetch_per_partition = records;
    }
    if let Some(batch) = t.batch_size {
        config.max_batch = batch;
        // Fetch at least a batch ahead, or batches could never fill.
        config.prefetch_per_partition = config.prefetch_per_partition.max(batch);
    }
    for (key, value) in app.client {
        let value = match value {
            Value::String(s) => s,
            Value::Bool(_) | Value::Number(_) => value.to_string(),
            _ => bail!("[application.trigger.kafka.client] {key:?}: expected a string, number or boolean"),
        };
        config.client_settings.push((key, value));
    }
    config.validate()?;
    Ok(config)
}

/// Calls a component: a fresh instance per record, or per batch when the
/// component also exports `inbound-kafka-batch`, in the contract version the
/// component was built against (`wit_versions`).
pub struct ComponentHandler {
    exports: Exports,
    component: PreparedComponent,
}

impl ComponentHandler {
    pub fn new(component: PreparedComponent) -> Result<Self> {
        let exports = Exports::find(&component).with_context(|| {
            format!(
                "component {:?} does not export trigger-kafka:kafka/inbound-kafka (0.2.0 or 0.1.0)",
                component.context.id
            )
        })?;
        Ok(ComponentHandler { exports, component })
    }
}

impl RecordHandler for ComponentHandler {
    async fn handle(&self, record: KafkaRecord) -> Result<(), HandleError> {
        self.exports.call_one(&self.component, record).await
    }

    async fn handle_batch(&self, records: &[KafkaRecord]) -> Option<Result<(), HandleError>> {
        if !self.exports.has_batch() {
            return None;
        }
        Some(self.exports.call_batch(&self.component, records).await)
    }

    fn trace_span(&self, span: &tracing::Span, records: &[KafkaRecord]) {
        crate::telemetry::adopt_record_context(span, records);
    }

    fn trace_headers(&self, span: &tracing::Span) -> Vec<(String, Vec<u8>)> {
        crate::telemetry::trace_headers(span)
    }
}

/// Runs one trigger until `shutdown`, reporting to `observer` (metrics, readiness).
pub async fn run(
    config: ConsumerConfig,
    component: PreparedComponent,
    observer: Arc<dyn kafka_consumer::Observer>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let id = component.context.id.clone();
    tracing::info!(
        "Kafka trigger for component {id}: topics {:?}, group {:?}, brokers {}",
        config.topics,
        config.group_id,
        config.brokers
    );
    let handler = Arc::new(ComponentHandler::new(component)?);
    kafka_consumer::run_observed(config, handler, observer, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::VariableDecl;
    use std::collections::BTreeMap;

    fn vars() -> Variables {
        let decls = BTreeMap::from([
            ("kafka_brokers".to_owned(), VariableDecl { default: Some("b1:9092".into()), secret: false }),
            ("kafka_password".to_owned(), VariableDecl { default: None, secret: true }),
        ]);
        Variables::resolve(&decls, &["kafka_password=pw".into()], vec![]).unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn renders_variables_and_maps_every_key() {
        let app = map(serde_json::json!({
            "brokers": "{{ kafka_brokers }}",
            "client": {"security.protocol": "SASL_SSL", "sasl.password": "{{ kafka_password }}", "socket.keepalive.enable": true}
        }));
        let trigger = map(serde_json::json!({
            "component": "user-kafka", "topics": ["user_service"], "start_offset": "latest",
            "dead_letter_topic": "user_service.dlq", "max_attempts": 3, "initial_backoff_ms": 50,
            "max_backoff_ms": 1000, "batch_size": 500, "handler_timeout_ms": 2500
        }));
        let c = consumer_config("app", &app, &trigger, &vars()).unwrap();
        assert_eq!(c.brokers, "b1:9092");
        assert_eq!(c.group_id, "app-user-kafka");
        assert_eq!(c.start_offset, StartOffset::Latest);
        assert_eq!(c.dead_letter_topic.as_deref(), Some("user_service.dlq"));
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.retry.max_trap_attempts, 3, "the default");
        assert_eq!(c.retry.initial_backoff, Duration::from_millis(50));
        assert_eq!(c.max_batch, 500);
        assert_eq!(c.handler_timeout, Duration::from_millis(2500));
        assert_eq!(c.prefetch_per_partition, 1000);
        assert!(c.client_settings.contains(&("sasl.password".into(), "pw".into())));
        assert!(c.client_settings.contains(&("socket.keepalive.enable".into(), "true".into())));
    }

    #[test]
    fn group_protocol_defaults_to_kip_848_and_a_trigger_overrides_the_app() {
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"]}));
        let app = map(serde_json::json!({"brokers": "x"}));
        let c = consumer_config("app", &app, &trigger, &vars()).unwrap();
        assert_eq!((c.group_protocol, c.group_instance_id), (GroupProtocol::Consumer, None));

        let app = map(serde_json::json!({"brokers": "x", "group_protocol": "classic", "group_instance_id": "{{ kafka_brokers }}"}));
        let c = consumer_config("app", &app, &trigger, &vars()).unwrap();
        assert_eq!((c.group_protocol, c.group_instance_id.as_deref()), (GroupProtocol::Classic, Some("b1:9092")));

        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "group_protocol": "consumer", "group_instance_id": "pod-1"}));
        let c = consumer_config("app", &app, &trigger, &vars()).unwrap();
        assert_eq!((c.group_protocol, c.group_instance_id.as_deref()), (GroupProtocol::Consumer, Some("pod-1")));

        // An empty id (a pod_name variable left at its "" default) is a dynamic member.
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "group_instance_id": ""}));
        assert_eq!(consumer_config("app", &app, &trigger, &vars()).unwrap().group_instance_id, None);

        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "group_protocol": "eager"}));
        let err = format!("{:#}", consumer_config("app", &app, &trigger, &vars()).unwrap_err());
        assert!(err.contains("eager") && err.contains("consumer") && err.contains("classic"), "{err}");
    }

    #[test]
    fn a_broker_side_setting_under_kip_848_is_a_startup_error_naming_it() {
        let app = map(serde_json::json!({"brokers": "x", "client": {"session.timeout.ms": 6000}}));
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"]}));
        let err = format!("{:#}", consumer_config("app", &app, &trigger, &vars()).unwrap_err());
        assert!(err.contains("session.timeout.ms") && err.contains("group_protocol"), "{err}");
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "group_protocol": "classic"}));
        assert!(consumer_config("app", &app, &trigger, &vars()).is_ok());
    }

    #[test]
    fn prefetch_per_partition_and_its_deprecated_old_key() {
        let app = map(serde_json::json!({"brokers": "x"}));
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "prefetch_per_partition": 50}));
        assert_eq!(consumer_config("app", &app, &trigger, &vars()).unwrap().prefetch_per_partition, 50);
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "max_in_flight_per_partition": 70}));
        assert_eq!(consumer_config("app", &app, &trigger, &vars()).unwrap().prefetch_per_partition, 70);
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "prefetch_per_partition": 0}));
        let err = format!("{:#}", consumer_config("app", &app, &trigger, &vars()).unwrap_err());
        assert!(err.contains("prefetch_per_partition"), "{err}");
        let trigger = map(serde_json::json!({
            "component": "c", "topics": ["t"], "prefetch_per_partition": 50, "max_in_flight_per_partition": 70
        }));
        let err = format!("{:#}", consumer_config("app", &app, &trigger, &vars()).unwrap_err());
        assert!(err.contains("deprecated") && err.contains("prefetch_per_partition"), "{err}");
    }

    #[test]
    fn typos_are_startup_errors() {
        let app = map(serde_json::json!({"brokers": "x"}));
        let trigger = map(serde_json::json!({"component": "c", "topics": ["t"], "dead_leter_topic": "d"}));
        let err = format!("{:#}", consumer_config("app", &app, &trigger, &vars()).unwrap_err());
        assert!(err.contains("dead_leter_topic"), "{err}");
    }
}
