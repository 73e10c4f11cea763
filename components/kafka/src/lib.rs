//! Kafka-triggered component: each record of topic `user_service` carries the
//! same JSON as a `POST /user` body and goes through the domain's one upsert.
//! This file only maps domain outcomes onto the trigger's contract: bad input
//! is permanent (dead-letter it), a database failure is retryable.

wit_bindgen::generate!({
    path: "../../wit",
    world: "trigger-kafka:kafka/kafka-trigger",
});

use exports::trigger_kafka::kafka::inbound_kafka::Guest;
use trigger_kafka::kafka::types::{HandleError, KafkaRecord};
use user_info::spin_sqlite::SpinSqlite;
use user_info::ApplyError;

/// The database label this component is granted in spin.toml.
const DATABASE: &str = "default";

struct UserKafka;

impl Guest for UserKafka {
    fn handle_message(message: KafkaRecord) -> Result<(), HandleError> {
        let applied = SpinSqlite::open(DATABASE)
            .map_err(ApplyError::Database)
            .and_then(|db| user_info::apply_update(&db, &message.value));
        match applied {
            // No per-record log line: at tens of thousands of records per
            // second it would cost more than the upsert. The trigger logs failures.
            Ok(_) => Ok(()),
            Err(ApplyError::Invalid(e)) => Err(HandleError::Permanent(e.to_string())),
            Err(ApplyError::Database(e)) => Err(HandleError::Retryable(e.to_string())),
        }
    }
}

export!(UserKafka);
