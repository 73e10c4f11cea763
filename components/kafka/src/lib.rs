//! Kafka-triggered component: each record of topic `user_service` carries the
//! same JSON as a `POST /user` body and goes through the domain's one upsert,
//! effectively once: the domain records the last applied offset per partition
//! with the upserts and skips redelivered records. This file only maps domain
//! outcomes onto the trigger's contract: bad input is permanent (dead-letter
//! it), a database failure is retryable. The store (SQLite or PostgreSQL) is
//! the domain's choice from the `database_url` variable.

wit_bindgen::generate!({
    path: "../../wit",
    world: "trigger-kafka:kafka/kafka-trigger-batch",
});

use exports::trigger_kafka::kafka::inbound_kafka::Guest;
use exports::trigger_kafka::kafka::inbound_kafka_batch::Guest as BatchGuest;
use trigger_kafka::kafka::types::{HandleError, KafkaRecord};
use user_info::spin::Store;
use user_info::{ApplyError, Record};

struct UserKafka;

fn to_handle_error(e: ApplyError) -> HandleError {
    match e {
        ApplyError::Invalid(e) => HandleError::Permanent(e.to_string()),
        ApplyError::Database(e) => HandleError::Retryable(e.to_string()),
    }
}

fn as_record(m: &KafkaRecord) -> Record<'_> {
    Record { topic: &m.topic, partition: m.partition, offset: m.offset, value: &m.value }
}

/// Applies the records in one transaction. No per-record log line: at tens of
/// thousands of records per second it would cost more than the upsert (the
/// trigger logs failures); skipped redeliveries are rare and worth a line.
fn apply(messages: &[KafkaRecord]) -> Result<(), (usize, ApplyError)> {
    let db = Store::open().map_err(|e| (0, ApplyError::Database(e)))?;
    let records: Vec<Record<'_>> = messages.iter().map(as_record).collect();
    let applied = user_info::apply_records(&db, &records)?;
    if applied.skipped > 0 {
        let first = &messages[0];
        eprintln!(
            "user-kafka: skipped {} already applied record(s) of {}/{} (offsets {}..={})",
            applied.skipped,
            first.topic,
            first.partition,
            first.offset,
            messages[messages.len() - 1].offset
        );
    }
    Ok(())
}

impl Guest for UserKafka {
    fn handle_message(message: KafkaRecord) -> Result<(), HandleError> {
        apply(std::slice::from_ref(&message)).map_err(|(_, e)| to_handle_error(e))
    }
}

impl BatchGuest for UserKafka {
    /// One transaction for the whole batch; the trigger replays a failed batch
    /// record by record, which pins the error on the right record.
    fn handle_messages(messages: Vec<KafkaRecord>) -> Result<(), HandleError> {
        apply(&messages).map_err(|(index, e)| match e {
            ApplyError::Invalid(e) => HandleError::Permanent(format!("offset {}: {e}", messages[index].offset)),
            other => to_handle_error(other),
        })
    }
}

export!(UserKafka);
