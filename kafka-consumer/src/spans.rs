//! The spans record processing runs in, named and attributed after
//! OpenTelemetry's semantic conventions for messaging (Kafka): one `process`
//! span per record (or per batch) from the moment it left the partition's
//! queue until its offset is stored for commit, with `commit` and, for a
//! dead-lettered record, `send` (the dead-letter copy) as children.
//!
//! They are plain `tracing` spans under [`SPAN_TARGET`]: the consumer knows no
//! exporter. An application that exports them (tracing-opentelemetry) also
//! gives them their remote parents through [`crate::RecordHandler::trace_span`];
//! one that does not leaves the target disabled, and then a span costs one
//! check of a cached flag and its fields are never evaluated.

use tracing::field::Empty;
use tracing::Span;

use crate::record::KafkaRecord;

/// The `tracing` target of every span of this module.
pub const SPAN_TARGET: &str = "kafka_consumer::spans";

/// The span one record is processed in (handler calls, retries, dead letter, commit).
pub(crate) fn process(record: &KafkaRecord, group: &str) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "process",
        "otel.name" = %format_args!("process {}", record.topic),
        "otel.kind" = "consumer",
        "otel.status_code" = Empty,
        "otel.status_description" = Empty,
        "messaging.system" = "kafka",
        "messaging.operation.type" = "process",
        "messaging.operation.name" = "process",
        "messaging.destination.name" = %record.topic,
        "messaging.destination.partition.id" = %record.partition,
        "messaging.consumer.group.name" = %group,
        "messaging.kafka.offset" = record.offset,
        "messaging.message.body.size" = record.value.as_ref().map_or(0, Vec::len),
        "error.type" = Empty,
    )
}

/// The span of one call of the handler's batch export (`records` > 1). Each
/// record's own trace context becomes a link, as the conventions say for batches.
pub(crate) fn process_batch(records: &[KafkaRecord], group: &str) -> Span {
    let first = &records[0];
    tracing::info_span!(
        target: SPAN_TARGET,
        "process",
        "otel.name" = %format_args!("process {}", first.topic),
        "otel.kind" = "consumer",
        "otel.status_code" = Empty,
        "otel.status_description" = Empty,
        "messaging.system" = "kafka",
        "messaging.operation.type" = "process",
        "messaging.operation.name" = "process",
        "messaging.destination.name" = %first.topic,
        "messaging.destination.partition.id" = %first.partition,
        "messaging.consumer.group.name" = %group,
        "messaging.batch.message_count" = records.len(),
        // Not a convention (a batch has no single offset): the range it covers.
        "messaging.kafka.offset.first" = first.offset,
        "messaging.kafka.offset.last" = records[records.len() - 1].offset,
    )
}

/// Storing a done record's offset for the next commit (librdkafka's
/// auto-commit sends it to the broker within `auto.commit.interval.ms`, and
/// a revoke or shutdown commits at once).
pub(crate) fn commit(topic: &str, partition: i32, offset: i64) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "commit",
        "otel.name" = %format_args!("commit {topic}"),
        "otel.kind" = "internal",
        "messaging.system" = "kafka",
        "messaging.operation.type" = "settle",
        "messaging.operation.name" = "commit",
        "messaging.destination.name" = %topic,
        "messaging.destination.partition.id" = %partition,
        "messaging.kafka.offset" = offset,
    )
}

/// Producing a record's dead-letter copy (every attempt until the broker took it).
pub(crate) fn dead_letter_send(dead_letter_topic: &str) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "send",
        "otel.name" = %format_args!("send {dead_letter_topic}"),
        "otel.kind" = "producer",
        "messaging.system" = "kafka",
        "messaging.operation.type" = "send",
        "messaging.operation.name" = "send",
        "messaging.destination.name" = %dead_letter_topic,
    )
}

/// Marks the current span (a record's `process`) as failed: the record was
/// dead-lettered (or skipped without a dead-letter topic) for `kind`.
pub(crate) fn record_failure(kind: &str, error: &str) {
    let span = Span::current();
    span.record("otel.status_code", "error");
    span.record("otel.status_description", error);
    span.record("error.type", kind);
}
