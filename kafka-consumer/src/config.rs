//! Consumer configuration, its defaults, and the librdkafka settings derived from it
//! for the consumer, the dead-letter producer and the admin client.

use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::retry::RetryPolicy;

/// Where a consumer group with no committed offset for a partition starts
/// (librdkafka `auto.offset.reset`). Committed offsets always win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartOffset {
    /// The default: a new group sees what was produced before it first started,
    /// which is what "nothing lost" expects of a freshly deployed app.
    #[default]
    Earliest,
    Latest,
}

/// The consumer group protocol (librdkafka `group.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// KIP-848, the default: the broker assigns partitions and moves them one
    /// at a time (incremental only: a rebalance never stops the whole group).
    /// Needs Apache Kafka 4.0 or newer (or a service that speaks it); the
    /// session timeout and heartbeat interval are the broker's (group configs).
    #[default]
    Consumer,
    /// The JoinGroup/SyncGroup protocol every Kafka since 0.9 speaks: the
    /// client-side assignor (librdkafka's `range,roundrobin` by default, an
    /// eager one that revokes every partition on each rebalance) and the
    /// client-side session timeout and heartbeat interval.
    Classic,
}

impl GroupProtocol {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            GroupProtocol::Consumer => "consumer",
            GroupProtocol::Classic => "classic",
        }
    }
}

/// Client settings the broker owns under `group.protocol=consumer`: librdkafka
/// refuses a consumer configured with any of them.
const BROKER_SIDE_UNDER_KIP_848: &[(&str, &str)] = &[
    ("session.timeout.ms", "the group's session timeout is the broker's: group.consumer.session.timeout.ms, or per group the group config consumer.session.timeout.ms"),
    ("heartbeat.interval.ms", "the heartbeat interval is the broker's: group.consumer.heartbeat.interval.ms, or per group the group config consumer.heartbeat.interval.ms"),
    ("partition.assignment.strategy", "the broker assigns partitions; pick its assignor with \"group.remote.assignor\" (uniform or range)"),
    ("group.protocol.type", "it exists only for the classic protocol"),
];

impl StartOffset {
    fn as_librdkafka(self) -> &'static str {
        match self {
            StartOffset::Earliest => "earliest",
            StartOffset::Latest => "latest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`, e.g. "127.0.0.1:9092,broker2:9092".
    pub brokers: String,
    /// Raw librdkafka settings (security.protocol, sasl.*, ssl.*, tuning...), applied
    /// to the consumer, the dead-letter producer and the admin client. The settings
    /// the delivery guarantee depends on (group.id, enable.auto.commit,
    /// enable.auto.offset.store, auto.offset.reset) cannot be overridden here.
    pub client_settings: Vec<(String, String)>,
    pub topics: Vec<String>,
    pub group_id: String,
    /// Which group protocol the consumer speaks (default KIP-848's `consumer`).
    pub group_protocol: GroupProtocol,
    /// Static membership (`group.instance.id`): a member that leaves and comes
    /// back under the same id within the session timeout keeps its partitions,
    /// and its restart moves none of them. Unique per member of a group, e.g.
    /// the Kubernetes pod name. None: a dynamic member.
    pub group_instance_id: Option<String>,
    pub start_offset: StartOffset,
    /// Where records that failed permanently, or exhausted a limited retry policy, go. When
    /// `None`, such a record is logged at error level and skipped (its offset is
    /// committed) so it cannot block its partition.
    pub dead_letter_topic: Option<String>,
    /// Create the dead-letter topic at startup when it is missing (default true).
    /// When false and the topic is missing, startup fails saying so.
    pub create_dead_letter_topic: bool,
    /// Replication factor used when creating the dead-letter topic (default 1).
    pub dead_letter_replication: i32,
    pub retry: RetryPolicy,
    /// Records librdkafka fetches ahead per partition (`queued.min.messages`, default
    /// 1000). Processing is still one record at a time, in order, per partition:
    /// these are prefetched, not in flight.
    pub prefetch_per_partition: usize,
    /// Most records handed to [`crate::RecordHandler::handle_batch`] at once
    /// (default 500; 1 disables batching).
    pub max_batch: usize,
    /// How long a revoke or a shutdown waits for each partition's in-flight record to
    /// finish before committing what is done (default 10 s). A handler still running
    /// after that is aborted (its instance and open transaction dropped) before the
    /// partition can have another worker; its record is redelivered later.
    pub drain_timeout: Duration,
    /// Longest one handler call (one record, or one batch) may run (default 30 s).
    /// A call past it is dropped, and with it the component instance and any
    /// transaction it held open; it counts as a retryable failure.
    pub handler_timeout: Duration,
}

impl ConsumerConfig {
    pub fn new(
        brokers: impl Into<String>,
        group_id: impl Into<String>,
        topics: Vec<String>,
    ) -> Self {
        ConsumerConfig {
            brokers: brokers.into(),
            client_settings: Vec::new(),
            topics,
            group_id: group_id.into(),
            group_protocol: GroupProtocol::default(),
            group_instance_id: None,
            start_offset: StartOffset::default(),
            dead_letter_topic: None,
            create_dead_letter_topic: true,
            dead_letter_replication: 1,
            retry: RetryPolicy::default(),
            prefetch_per_partition: 1000,
            max_batch: 500,
            drain_timeout: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(30),
        }
    }

    /// The checks [`crate::run`] makes first, for callers that want
    /// configuration errors before they start anything.
    pub fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            bail!("kafka consumer: no brokers configured");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            bail!("kafka consumer: at least one (non-empty) topic is required");
        }
        if self.group_id.trim().is_empty() {
            bail!("kafka consumer: group id must not be empty");
        }
        if let Some(id) = &self.group_instance_id {
            if id.trim().is_empty() || id.len() > 249 {
                bail!("kafka consumer: group_instance_id must be 1 to 249 characters, got {id:?}");
            }
        }
        for (key, why) in [
            ("group.protocol", "set the trigger's group_protocol instead"),
            ("group.instance.id", "set the trigger's group_instance_id instead"),
        ] {
            if user_value(&self.client_settings, key).is_some() {
                bail!("kafka client setting {key:?} is not accepted: {why}");
            }
        }
        if self.group_protocol == GroupProtocol::Consumer {
            for (key, why) in BROKER_SIDE_UNDER_KIP_848 {
                if user_value(&self.client_settings, key).is_some() {
                    bail!(
                        "kafka client setting {key:?} cannot be used with group_protocol = \"consumer\" (KIP-848): {why}; \
                         or set group_protocol = \"classic\" to keep it client-side"
                    );
                }
            }
        }
        if self.max_batch == 0 {
            bail!("kafka consumer: max_batch must be at least 1");
        }
        if self.handler_timeout.is_zero() {
            bail!("kafka consumer: handler_timeout must be positive");
        }
        if self.prefetch_per_partition == 0 {
            bail!("kafka consumer: prefetch_per_partition must be at least 1");
        }
        if let Some(dlt) = &self.dead_letter_topic {
            // A dead-letter topic we also consume would feed failures back forever.
            if self.topics.contains(dlt) {
                bail!("kafka consumer: dead-letter topic {dlt:?} is also a source topic");
            }
            if self.dead_letter_replication < 1 {
                bail!("kafka consumer: dead_letter_replication must be at least 1");
            }
        }
        Ok(())
    }

    pub(crate) fn consumer_client_config(&self) -> ClientConfig {
        let mut config = base_client_config(&self.brokers, &self.client_settings);
        set_default(
            &mut config,
            &self.client_settings,
            "queued.min.messages",
            &self.prefetch_per_partition.to_string(),
        );
        // Stored offsets reach the broker within a second, which bounds the
        // duplicates after a crash (revoke and shutdown commit synchronously anyway).
        set_default(
            &mut config,
            &self.client_settings,
            "auto.commit.interval.ms",
            "1000",
        );
        set_default(
            &mut config,
            &self.client_settings,
            "enable.partition.eof",
            "false",
        );
        // Commit strategy (see commit.rs): librdkafka auto-commits, but only offsets we
        // store explicitly once a record is done (handled, dead-lettered or skipped).
        force(
            &mut config,
            &self.client_settings,
            "group.id",
            &self.group_id,
        );
        // Validated: the user cannot set these two through client_settings.
        config.set("group.protocol", self.group_protocol.as_librdkafka());
        if let Some(id) = &self.group_instance_id {
            config.set("group.instance.id", id);
        }
        force(
            &mut config,
            &self.client_settings,
            "enable.auto.commit",
            "true",
        );
        force(
            &mut config,
            &self.client_settings,
            "enable.auto.offset.store",
            "false",
        );
        force(
            &mut config,
            &self.client_settings,
            "auto.offset.reset",
            self.start_offset.as_librdkafka(),
        );
        config
    }

    pub(crate) fn producer_client_config(&self) -> ClientConfig {
        let mut config = base_client_config(&self.brokers, &self.client_settings);
        // A dead-letter copy is the only trace of a record whose offset is then
        // committed: acknowledged by every in-sync replica, so a leader failover
        // cannot lose it, and idempotent, so a produce retried across a failover
        // cannot write it twice.
        force(&mut config, &self.client_settings, "acks", "all");
        force(&mut config, &self.client_settings, "enable.idempotence", "true");
        // librdkafka's default of 5 minutes would leave a failing dead-letter produce
        // silent for that long; our own loop retries and logs instead.
        set_default(
            &mut config,
            &self.client_settings,
            "message.timeout.ms",
            "30000",
        );
        // A record the source topic accepted must fit in its dead-letter copy:
        // don't let librdkafka's 1 MB default refuse it locally; the broker's own
        // limit decides (see dead_letter.rs for what happens when it refuses).
        set_default(
            &mut config,
            &self.client_settings,
            "message.max.bytes",
            "100000000",
        );
        config
    }
}

/// Bootstrap servers plus the user's raw settings: the part every client shares.
pub(crate) fn base_client_config(brokers: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in settings {
        config.set(key, value);
    }
    config
}

fn user_value<'a>(settings: &'a [(String, String)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn set_default(config: &mut ClientConfig, settings: &[(String, String)], key: &str, value: &str) {
    if user_value(settings, key).is_none() {
        config.set(key, value);
    }
}

fn force(config: &mut ClientConfig, settings: &[(String, String)], key: &str, value: &str) {
    if let Some(user) = user_value(settings, key) {
        if user != value {
            tracing::warn!(
                key,
                ignored = user,
                used = value,
                "kafka client setting overridden by the consumer"
            );
        }
    }
    config.set(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarantee_settings_cannot_be_overridden_but_tuning_can() {
        let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
        c.client_settings = vec![
            ("enable.auto.offset.store".into(), "true".into()),
            ("auto.commit.interval.ms".into(), "250".into()),
            ("security.protocol".into(), "plaintext".into()),
        ];
        let cc = c.consumer_client_config();
        assert_eq!(cc.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(cc.get("auto.commit.interval.ms"), Some("250"));
        assert_eq!(cc.get("security.protocol"), Some("plaintext"));
        assert_eq!(cc.get("group.id"), Some("g"));
        assert_eq!(cc.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(cc.get("queued.min.messages"), Some("1000"));
        assert_eq!(cc.get("group.protocol"), Some("consumer"));
        assert_eq!(cc.get("group.instance.id"), None);
        let pc = c.producer_client_config();
        assert_eq!(pc.get("security.protocol"), Some("plaintext"));
        assert_eq!(pc.get("acks"), Some("all"));
        assert_eq!(pc.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn protocol_and_static_membership_reach_librdkafka() {
        let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
        c.group_protocol = GroupProtocol::Classic;
        c.group_instance_id = Some("pod-0".into());
        c.client_settings = vec![("session.timeout.ms".into(), "6000".into())];
        assert!(c.validate().is_ok());
        let cc = c.consumer_client_config();
        assert_eq!(cc.get("group.protocol"), Some("classic"));
        assert_eq!(cc.get("group.instance.id"), Some("pod-0"));
        assert_eq!(cc.get("session.timeout.ms"), Some("6000"));
    }

    #[test]
    fn broker_side_settings_are_a_clear_error_under_kip_848() {
        for key in ["session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy", "group.protocol.type"] {
            let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
            c.client_settings = vec![(key.into(), "1".into())];
            let error = c.validate().unwrap_err().to_string();
            assert!(error.contains(key) && error.contains("group_protocol = \"classic\""), "{error}");
            // What librdkafka itself says, less helpfully, when the check is missing.
            let created: Result<rdkafka::consumer::BaseConsumer, _> = c.consumer_client_config().create();
            assert!(created.is_err(), "{key}: librdkafka accepted it");
            c.group_protocol = GroupProtocol::Classic;
            assert!(c.validate().is_ok(), "{key} is fine under the classic protocol");
        }
        for key in ["group.protocol", "group.instance.id"] {
            let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
            c.client_settings = vec![(key.into(), "x".into())];
            let error = c.validate().unwrap_err().to_string();
            assert!(error.contains(key) && error.contains("instead"), "{error}");
        }
        let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
        c.group_instance_id = Some(" ".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn validation() {
        let mut c = ConsumerConfig::new("b:9092", "g", vec!["t".into()]);
        assert!(c.validate().is_ok());
        c.dead_letter_topic = Some("t".into());
        assert!(c.validate().is_err());
        c.dead_letter_topic = Some("t.dlt".into());
        assert!(c.validate().is_ok());
        c.retry.max_attempts = 0; // unlimited
        assert!(c.validate().is_ok());
        c.max_batch = 0;
        assert!(c.validate().is_err());
    }
}
