//! Offset commits. Strategy: `enable.auto.commit=true` with
//! `enable.auto.offset.store=false`. librdkafka then commits only offsets we store
//! explicitly, and we store one only after its record is done (handled, dead-lettered
//! or skipped), so nothing is committed ahead of processing (at-least-once). We chose
//! this over `enable.auto.commit=false` plus our own commit loop because librdkafka
//! then retries failed commits, commits the removed partitions on unassign and on
//! close by itself, and - since librdkafka 2.0 - refuses to store an offset for a
//! partition that is no longer assigned, so a handler that finishes after its
//! partition was revoked cannot move the group's offset. Revoke and shutdown add an
//! explicit synchronous commit so "what is done" is on the broker before we return.

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

/// Marks the record at `offset` done: the group will resume after it.
pub(crate) fn store_done<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    // Kafka's committed offset is the next record to read. Not `store_offset`: it
    // wraps the legacy rd_kafka_offset_store, which adds the 1 itself.
    let mut tpl = TopicPartitionList::new();
    if let Err(error) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1)) {
        tracing::error!(topic, partition, offset, %error, "cannot build the offset to store");
        return;
    }
    if let Err(error) = consumer.store_offsets(&tpl) {
        // Expected after a revoke (the partition is not ours any more): the next
        // owner gets the record again, which at-least-once allows.
        tracing::debug!(topic, partition, offset, %error, "offset not stored (partition no longer assigned?)");
    }
}

/// Synchronously commits every stored offset of the current assignment.
pub(crate) fn commit_sync<C: ConsumerContext, K: Consumer<C>>(consumer: &K, why: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::debug!(why, "offsets committed"),
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(why, %error, "synchronous offset commit failed; the stored offsets stay pending for the next commit")
        }
    }
}
