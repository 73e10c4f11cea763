//! Kafka-triggered component: each record of topic `user_service` carries the
//! same JSON as a `POST /user` body and goes through the domain's one upsert.
//! This file only maps domain outcomes onto the trigger's contract: bad input
//! is permanent (dead-letter it), a database failure is retryable.

wit_bindgen::generate!({
    path: "../../wit",
    world: "trigger-kafka:kafka/kafka-trigger-batch",
});

use exports::trigger_kafka::kafka::inbound_kafka::Guest;
use exports::trigger_kafka::kafka::inbound_kafka_batch::Guest as BatchGuest;
use trigger_kafka::kafka::types::{HandleError, KafkaRecord};
use user_info::spin_sqlite::SpinSqlite;
use user_info::ApplyError;

/// The database label this component is granted in spin.toml.
const DATABASE: &str = "default";

struct UserKafka;

fn to_handle_error(e: ApplyError) -> HandleError {
    match e {
        ApplyError::Invalid(e) => HandleError::Permanent(e.to_string()),
        ApplyError::Database(e) => HandleError::Retryable(e.to_string()),
    }
}

impl Guest for UserKafka {
    fn handle_message(message: KafkaRecord) -> Result<(), HandleError> {
        // No per-record log line: at tens of thousands of records per second
        // it would cost more than the upsert. The trigger logs failures.
        SpinSqlite::open(DATABASE)
            .map_err(ApplyError::Database)
            .and_then(|db| user_info::apply_update(&db, &message.value))
            .map(drop)
            .map_err(to_handle_error)
    }
}

impl BatchGuest for UserKafka {
    /// One transaction for the whole batch; the trigger replays a failed batch
    /// record by record, which pins the error on the right record.
    fn handle_messages(messages: Vec<KafkaRecord>) -> Result<(), HandleError> {
        let db = SpinSqlite::open(DATABASE).map_err(|e| to_handle_error(ApplyError::Database(e)))?;
        let values: Vec<&[u8]> = messages.iter().map(|m| m.value.as_slice()).collect();
        user_info::apply_updates(&db, &values).map(drop).map_err(|(index, e)| match e {
            ApplyError::Invalid(e) => HandleError::Permanent(format!(
                "offset {}: {e}",
                messages[index].offset
            )),
            other => to_handle_error(other),
        })
    }
}

export!(UserKafka);
