//! What the consumer hands to the application: the record, the handler trait and the
//! handler's verdict (retry it or give up on it).

use std::fmt;
use std::future::Future;

use rdkafka::message::{Headers, Message};

/// One Kafka record, detached from librdkafka's buffers so the handler may keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Create/append time in milliseconds since the epoch, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    /// `None` is Kafka's null value (a tombstone), distinct from an empty one.
    pub value: Option<Vec<u8>>,
    /// In wire order; duplicate keys are kept.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl KafkaRecord {
    pub(crate) fn from_message<M: Message>(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        KafkaRecord {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// How a handler failed, which decides what the consumer does with the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleError {
    /// Transient (database busy, downstream timeout...): retried with backoff, then
    /// dead-lettered once the retry policy's attempts are used up.
    Retryable(String),
    /// Retrying cannot help (invalid payload...): dead-lettered at once.
    Permanent(String),
    /// The handler crashed (a WebAssembly trap: a panic, an out-of-bounds
    /// access, memory exhausted). Retried like [`HandleError::Retryable`],
    /// but once it happened [`crate::RetryPolicy::max_trap_attempts`] times on
    /// the same record it is dead-lettered (kind `trap`), even when
    /// `max_attempts` is unlimited: a record that crashes its handler every
    /// time would otherwise stall its partition for good.
    Trap(String),
}

impl HandleError {
    pub fn message(&self) -> &str {
        match self {
            HandleError::Retryable(m) | HandleError::Permanent(m) | HandleError::Trap(m) => m,
        }
    }
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Retryable(m) => write!(f, "retryable: {m}"),
            HandleError::Permanent(m) => write!(f, "permanent: {m}"),
            HandleError::Trap(m) => write!(f, "trap: {m}"),
        }
    }
}

impl std::error::Error for HandleError {}

/// Processes one record. Called for one record at a time per partition, in offset
/// order; calls for different partitions run concurrently. Implementors can write
/// `async fn handle(&self, record: KafkaRecord) -> Result<(), HandleError>`.
///
/// Must be idempotent: delivery is at-least-once, so a record can be seen again after
/// a crash, a rebalance or a shutdown that interrupted its retries.
pub trait RecordHandler: Send + Sync + 'static {
    fn handle(&self, record: KafkaRecord) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Optionally processes consecutive records of one partition at once, all or
    /// nothing. `None` means batches are not supported (the default). On an error
    /// the consumer assumes nothing was applied and replays the records one by one
    /// through [`RecordHandler::handle`], so retries and dead-lettering stay per
    /// record. Only records already fetched are batched: a batch never waits.
    fn handle_batch(
        &self,
        records: &[KafkaRecord],
    ) -> impl Future<Output = Option<Result<(), HandleError>>> + Send {
        let _ = records;
        async { None }
    }

    /// Called with the span a record, or a batch (`records.len() > 1`), is about
    /// to be processed in, before it is entered: the place to give it the trace
    /// context the records carry (a W3C `traceparent` header: the record's span
    /// becomes its child, a batch's span links every record's). Only called
    /// when the span is enabled (see [`crate::SPAN_TARGET`]). The default does nothing.
    fn trace_span(&self, span: &tracing::Span, records: &[KafkaRecord]) {
        let _ = (span, records);
    }

    /// Headers carrying `span`'s trace context, for a record the consumer
    /// produces within it: the dead-letter copy, which gets those the original
    /// lacks (a `traceparent` the original carried is kept as it was). Only
    /// called when the span is enabled. The default adds none.
    fn trace_headers(&self, span: &tracing::Span) -> Vec<(String, Vec<u8>)> {
        let _ = span;
        Vec::new()
    }
}
