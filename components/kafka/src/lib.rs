//! Kafka-triggered component: each record of topic `user_service` carries the
//! same JSON as a `POST /user` body and goes through the domain's one upsert,
//! or is a tombstone (a null value, told from an empty one by the contract's
//! 0.2.0) whose key names the user to delete; effectively once: the domain records the last applied offset per partition
//! with the upserts and skips redelivered records. This file only maps domain
//! outcomes onto the trigger's contract: bad input is permanent (dead-letter
//! it), a database failure is retryable. The store (SQLite or PostgreSQL) is
//! the domain's choice from the `database_url` variable.

use trigger_kafka_sdk::{kafka_component, Error, Record};
use user_info::spin::Store;
use user_info::BatchError;

fn as_record(r: &Record) -> user_info::Record<'_> {
    user_info::Record { topic: r.topic(), partition: r.partition(), offset: r.offset(), key: r.key(), value: r.payload() }
}

/// Applies the records in one transaction. No per-record log line: at tens of
/// thousands of records per second it would cost more than the upsert (the
/// trigger logs failures); skipped redeliveries are rare and worth a line.
fn apply(records: &[Record]) -> Result<(), BatchError> {
    let db = Store::open()?;
    let domain: Vec<user_info::Record<'_>> = records.iter().map(as_record).collect();
    let applied = user_info::apply_records(&db, &domain)?;
    if applied.skipped > 0 {
        let first = &records[0];
        eprintln!(
            "user-kafka: skipped {} already applied record(s) of {}/{} (offsets {}..={})",
            applied.skipped,
            first.topic(),
            first.partition(),
            first.offset(),
            records[records.len() - 1].offset()
        );
    }
    Ok(())
}

/// One transaction for the whole batch; the trigger replays a failed batch
/// record by record, which pins the error on the right record. Single records
/// arrive as a batch of one (the trigger batches only two or more), whose
/// errors need no offset: the dead-letter headers carry it.
#[kafka_component]
fn handle(records: Vec<Record>) -> Result<(), Error> {
    apply(&records).map_err(|e| match e {
        BatchError::Invalid { index, error } if records.len() > 1 => {
            Error::Permanent(format!("offset {}: {error}", records[index].offset()))
        }
        BatchError::Invalid { error, .. } => Error::Permanent(error.to_string()),
        BatchError::Database(e) => Error::Retryable(e.to_string()),
    })
}
