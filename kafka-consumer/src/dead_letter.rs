//! The dead-letter topic: where records go that failed permanently or used up their
//! retries, with the original key, value and headers plus headers saying why.
//! Producing there is retried until it works (or the partition is revoked / the
//! consumer stops), because the record's offset is only committed afterwards.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::sync::watch;

use crate::client_log::ClientLog;
use crate::config::ConsumerConfig;
use crate::record::KafkaRecord;
use crate::retry::{sleep_unless_stopped, Backoff, RetryPolicy};
use crate::topic::{TopicAdmin, TopicError};

pub const HEADER_ERROR: &str = "kafka_dlt_error";
pub const HEADER_ERROR_KIND: &str = "kafka_dlt_error_kind";
pub const HEADER_ORIGINAL_TOPIC: &str = "kafka_dlt_original_topic";
pub const HEADER_ORIGINAL_PARTITION: &str = "kafka_dlt_original_partition";
pub const HEADER_ORIGINAL_OFFSET: &str = "kafka_dlt_original_offset";
/// Set (to the original value's size) when the broker refused the value as too
/// large for the dead-letter topic and the copy carries no value; the record is
/// still identified by its original topic, partition and offset.
pub const HEADER_VALUE_DROPPED: &str = "kafka_dlt_value_dropped_bytes";

/// Most bytes of the `kafka_dlt_error` header. A handler's error text has no
/// bound of its own; headers count against the broker's record size limit,
/// so a megabyte of text would make every produce of the dead-letter copy
/// fail, and its retries stall the partition. Longer text is cut (on a UTF-8
/// boundary) and ends with [`TRUNCATED_MARKER`]; the full text is in the
/// consumer's `record dead-lettered` log line.
pub const MAX_ERROR_HEADER_BYTES: usize = 4096;
/// Ends a `kafka_dlt_error` header that was cut to [`MAX_ERROR_HEADER_BYTES`].
pub const TRUNCATED_MARKER: &str = "… [truncated; the full error is in the consumer's log]";

/// Why a record is dead-lettered; the value of the `kafka_dlt_error_kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeadLetterReason {
    RetryableExhausted,
    Permanent,
    /// The handler trapped on it `max_trap_attempts` times.
    Trap,
}

impl DeadLetterReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::RetryableExhausted => "retryable-exhausted",
            DeadLetterReason::Permanent => "permanent",
            DeadLetterReason::Trap => "trap",
        }
    }
}

/// `error` within [`MAX_ERROR_HEADER_BYTES`], marker included.
pub(crate) fn bounded_error(error: &str) -> std::borrow::Cow<'_, str> {
    if error.len() <= MAX_ERROR_HEADER_BYTES {
        return error.into();
    }
    let mut cut = MAX_ERROR_HEADER_BYTES - TRUNCATED_MARKER.len();
    while !error.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TRUNCATED_MARKER}", &error[..cut]).into()
}

/// The original headers, in order, then `trace` (the dead-letter producer's
/// trace context) unless the original carries any of its keys, then the
/// dead-letter headers. An original `traceparent` thus survives unchanged (a
/// replay continues the record's own trace), and a context is never mixed
/// from two sources (its `traceparent` with the other's `tracestate`).
pub(crate) fn dead_letter_headers(
    record: &KafkaRecord,
    reason: DeadLetterReason,
    error: &str,
    trace: &[(String, Vec<u8>)],
) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + trace.len() + 5);
    for (key, value) in &record.headers {
        headers = headers.insert(Header {
            key: key.as_str(),
            value: value.as_deref(),
        });
    }
    let has = |key: &str| record.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(key));
    if !trace.iter().any(|(key, _)| has(key)) {
        for (key, value) in trace {
            headers = headers.insert(Header {
                key: key.as_str(),
                value: Some(value.as_slice()),
            });
        }
    }
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let error = bounded_error(error);
    for (key, value) in [
        (HEADER_ERROR, &*error),
        (HEADER_ERROR_KIND, reason.as_str()),
        (HEADER_ORIGINAL_TOPIC, record.topic.as_str()),
        (HEADER_ORIGINAL_PARTITION, partition.as_str()),
        (HEADER_ORIGINAL_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}

pub(crate) struct DeadLetterSink {
    topic: String,
    producer: FutureProducer<ClientLog>,
    retry: RetryPolicy,
}

impl DeadLetterSink {
    pub(crate) fn new(config: &ConsumerConfig, topic: &str) -> Result<Self> {
        let producer = config
            .producer_client_config()
            .create_with_context(ClientLog::new(&config.brokers))
            .map_err(|e| anyhow!("kafka dead-letter producer for {}: {e}", config.brokers))?;
        Ok(DeadLetterSink {
            topic: topic.to_string(),
            producer,
            retry: config.retry.clone(),
        })
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces the dead-letter copy of `record`, retrying with backoff until the
    /// broker acknowledges it. Returns false only when `stop` was set first; the
    /// record is then not committed and will be redelivered.
    pub(crate) async fn send(
        &self,
        record: &KafkaRecord,
        reason: DeadLetterReason,
        error: &str,
        trace: &[(String, Vec<u8>)],
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut headers = dead_letter_headers(record, reason, error, trace);
        // A tombstone's copy is a tombstone too (no payload), not an empty value.
        let mut payload: Option<&[u8]> = record.value.as_deref();
        let mut backoff = Backoff::new(&self.retry);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut message: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers.clone());
            if let Some(payload) = payload {
                message = message.payload(payload);
            }
            if let Some(key) = &record.key {
                message = message.key(&key[..]);
            }
            let result = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return false,
                result = self.producer.send(message, Timeout::After(Duration::from_secs(5))) => result,
            };
            let error = match result {
                Ok(_) => return true,
                Err((error, _)) => error,
            };
            // Retrying a record the broker finds too large can never succeed and
            // would block the partition: send the copy without its value instead.
            if is_too_large(&error) && payload.is_some_and(|p| !p.is_empty()) {
                tracing::warn!(
                    topic = %record.topic, partition = record.partition, offset = record.offset,
                    dead_letter_topic = %self.topic, size = payload.map_or(0, <[u8]>::len),
                    "the dead-letter topic refuses a value this large; dead-lettering the record without its value"
                );
                let size = payload.map_or(0, <[u8]>::len).to_string();
                headers = headers.insert(Header { key: HEADER_VALUE_DROPPED, value: Some(size.as_str()) });
                payload = Some(&[][..]);
                continue;
            }
            let delay = backoff.next_delay();
            tracing::warn!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                dead_letter_topic = %self.topic, attempt, error = %error,
                "producing to the dead-letter topic failed; retrying in {delay:?} (offset not committed until it succeeds)"
            );
            if !sleep_unless_stopped(delay, stop).await {
                return false;
            }
        }
    }
}

fn is_too_large(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode;
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidRecord)
    )
}

/// Startup step: makes sure the dead-letter topic exists, creating it (with as many
/// partitions as the first source topic, else 1) when allowed. Waits, retrying with
/// backoff, while the broker is unreachable; fails only when the cluster refuses.
pub(crate) async fn prepare_dead_letter_topic(config: &ConsumerConfig, topic: &str) -> Result<()> {
    let admin = TopicAdmin::new(&config.brokers, &config.client_settings)?;
    let mut backoff = Backoff::new(&config.retry);
    loop {
        match try_prepare(&admin, config, topic).await {
            Ok(()) => return Ok(()),
            Err(TopicError::Fatal(message)) => bail!("dead-letter topic {topic}: {message}"),
            Err(TopicError::Transient(message)) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    brokers = %config.brokers, dead_letter_topic = topic,
                    "cannot check/create the dead-letter topic yet ({message}); is the broker reachable? retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn try_prepare(
    admin: &TopicAdmin,
    config: &ConsumerConfig,
    topic: &str,
) -> Result<(), TopicError> {
    if admin.partition_count(topic).await?.is_some() {
        tracing::debug!(dead_letter_topic = topic, "dead-letter topic exists");
        return Ok(());
    }
    if !config.create_dead_letter_topic {
        return Err(TopicError::Fatal(format!(
            "topic does not exist and create_dead_letter_topic is false: create it first (e.g. with as many partitions as {})",
            config.topics[0]
        )));
    }
    let partitions = admin
        .partition_count(&config.topics[0])
        .await?
        .unwrap_or(1)
        .max(1);
    let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
    let created = admin
        .create(topic, partitions, config.dead_letter_replication)
        .await?;
    if created {
        tracing::info!(
            dead_letter_topic = topic,
            partitions,
            replication = config.dead_letter_replication,
            "created the missing dead-letter topic"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    #[test]
    fn a_long_error_is_cut_on_a_character_boundary_with_a_marker() {
        assert_eq!(bounded_error("short"), "short");
        let exact = "x".repeat(MAX_ERROR_HEADER_BYTES);
        assert_eq!(bounded_error(&exact), exact);
        // Two-byte characters, so a cut at the byte bound falls mid-character.
        let long = "é".repeat(MAX_ERROR_HEADER_BYTES);
        let cut = bounded_error(&long);
        assert!(cut.len() <= MAX_ERROR_HEADER_BYTES, "{}", cut.len());
        assert!(cut.len() >= MAX_ERROR_HEADER_BYTES - TRUNCATED_MARKER.len() - 1, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATED_MARKER));
        assert!(cut.trim_end_matches(TRUNCATED_MARKER).chars().all(|c| c == 'é'));
    }

    #[test]
    fn an_original_traceparent_is_kept_and_no_trace_header_is_added() {
        let original = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let record = KafkaRecord {
            topic: "users".into(),
            partition: 0,
            offset: 1,
            timestamp_ms: None,
            key: None,
            value: None,
            headers: vec![("TraceParent".into(), Some(original.as_bytes().to_vec()))],
        };
        let trace = vec![
            ("traceparent".to_string(), b"00-other".to_vec()),
            ("tracestate".to_string(), b"k=v".to_vec()),
        ];
        let headers = dead_letter_headers(&record, DeadLetterReason::Permanent, "e", &trace);
        let got: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .take(2)
            .collect();
        assert_eq!(
            got,
            vec![
                ("TraceParent".to_string(), Some(original.as_bytes().to_vec())),
                (HEADER_ERROR.to_string(), Some(b"e".to_vec())),
            ]
        );
    }

    #[test]
    fn headers_keep_originals_and_add_dead_letter_ones() {
        let record = KafkaRecord {
            topic: "users".into(),
            partition: 2,
            offset: 41,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![
                ("trace".into(), Some(b"abc".to_vec())),
                ("empty".into(), None),
            ],
        };
        let trace = vec![("traceparent".to_string(), b"00-new".to_vec())];
        let headers = dead_letter_headers(&record, DeadLetterReason::Permanent, "bad email", &trace);
        let got: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        let s = |k: &str, v: &str| (k.to_string(), Some(v.as_bytes().to_vec()));
        assert_eq!(
            got,
            vec![
                s("trace", "abc"),
                ("empty".to_string(), None),
                s("traceparent", "00-new"),
                s(HEADER_ERROR, "bad email"),
                s(HEADER_ERROR_KIND, "permanent"),
                s(HEADER_ORIGINAL_TOPIC, "users"),
                s(HEADER_ORIGINAL_PARTITION, "2"),
                s(HEADER_ORIGINAL_OFFSET, "41"),
            ]
        );
    }
}
