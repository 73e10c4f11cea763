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
    /// 100). Processing is still one record at a time, in order, per partition.
    pub max_in_flight_per_partition: usize,
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
            start_offset: StartOffset::default(),
            dead_letter_topic: None,
            create_dead_letter_topic: true,
            dead_letter_replication: 1,
            retry: RetryPolicy::default(),
            max_in_flight_per_partition: 1000,
            max_batch: 500,
            drain_timeout: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(30),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            bail!("kafka consumer: no brokers configured");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            bail!("kafka consumer: at least one (non-empty) topic is required");
        }
        if self.group_id.trim().is_empty() {
            bail!("kafka consumer: group id must not be empty");
        }
        if self.max_batch == 0 {
            bail!("kafka consumer: max_batch must be at least 1");
        }
        if self.handler_timeout.is_zero() {
            bail!("kafka consumer: handler_timeout must be positive");
        }
        if self.max_in_flight_per_partition == 0 {
            bail!("kafka consumer: max_in_flight_per_partition must be at least 1");
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
            &self.max_in_flight_per_partition.to_string(),
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
        assert_eq!(
            c.producer_client_config().get("security.protocol"),
            Some("plaintext")
        );
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
