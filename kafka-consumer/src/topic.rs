//! Topic administration through rdkafka's AdminClient: looking topics up and creating
//! the dead-letter topic, telling "broker not reachable yet" (retry) apart from
//! "the cluster refused" (fail startup with a message).

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;

use crate::client_log::{is_connectivity_error, ClientLog};
use crate::config::base_client_config;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a topic step failed.
#[derive(Debug)]
pub(crate) enum TopicError {
    /// Broker unreachable, timed out, controller moving...: try again later.
    Transient(String),
    /// The cluster answered no (bad replication factor, not authorized...).
    Fatal(String),
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicError::Transient(m) | TopicError::Fatal(m) => f.write_str(m),
        }
    }
}

fn classify(context: &str, error: KafkaError) -> TopicError {
    let message = format!("{context}: {error}");
    let transient = is_connectivity_error(&error)
        || matches!(error, KafkaError::AdminOp(_) | KafkaError::MetadataFetch(_))
            && !matches!(
                error.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::SaslAuthenticationFailed
                        | RDKafkaErrorCode::Authentication
                        | RDKafkaErrorCode::InvalidArgument
                )
            );
    if transient {
        TopicError::Transient(message)
    } else {
        TopicError::Fatal(message)
    }
}

pub(crate) struct TopicAdmin {
    admin: Arc<AdminClient<ClientLog>>,
}

impl TopicAdmin {
    pub(crate) fn new(brokers: &str, settings: &[(String, String)]) -> anyhow::Result<Self> {
        let mut config = base_client_config(brokers, settings);
        // A metadata lookup must not create the topic as a side effect on clusters
        // with auto.create.topics.enable: we create it with our partition count.
        config.set("allow.auto.create.topics", "false");
        let admin = config
            .create_with_context(ClientLog::new(brokers))
            .map_err(|e| anyhow!("kafka admin client for {brokers}: {e}"))?;
        Ok(TopicAdmin {
            admin: Arc::new(admin),
        })
    }

    /// Partition count of `topic`, or None if it does not exist.
    pub(crate) async fn partition_count(&self, topic: &str) -> Result<Option<usize>, TopicError> {
        let admin = self.admin.clone();
        let name = topic.to_string();
        // fetch_metadata blocks the calling thread until the broker answers.
        let metadata = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(Some(&name), REQUEST_TIMEOUT)
        })
        .await
        .map_err(|e| TopicError::Fatal(format!("metadata lookup task failed: {e}")))?
        .map_err(|e| classify(&format!("fetching metadata of topic {topic}"), e))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error() {
            None if found.partitions().is_empty() => Ok(None),
            None => Ok(Some(found.partitions().len())),
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => Ok(None),
            Some(err) => Err(classify(
                &format!("metadata of topic {topic}"),
                KafkaError::MetadataFetch(err.into()),
            )),
        }
    }

    /// Creates `topic`; an already existing topic counts as success.
    pub(crate) async fn create(
        &self,
        topic: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<bool, TopicError> {
        let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        let options = AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|e| classify(&format!("creating topic {topic}"), e))?;
        let mut created = false;
        for result in results {
            match result {
                Ok(_) => created = true,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(classify(
                        &format!("creating topic {name}"),
                        KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(created)
    }
}

/// Creates `topic` with `partitions` partitions and the given replication factor,
/// unless it exists already (which is success). One attempt: the caller decides
/// whether to retry.
pub async fn ensure_topic(
    brokers: &str,
    client_settings: &[(String, String)],
    topic: &str,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    let admin = TopicAdmin::new(brokers, client_settings)?;
    let created = admin
        .create(topic, partitions, replication)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if created {
        tracing::info!(topic, partitions, replication, "created kafka topic");
    }
    Ok(())
}
