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
    apply(&records).map_err(|e| trigger_error(e, &records))
}

/// Bad input is permanent: the trigger dead-letters the record at once. A
/// database failure of any kind is retryable: the partition waits on the
/// record (`max_attempts = 0`), so no valid record is dead-lettered for an
/// outage, a lock or a store configured wrongly.
fn trigger_error(e: BatchError, records: &[Record]) -> Error {
    match e {
        BatchError::Invalid { index, error } if records.len() > 1 => {
            Error::Permanent(format!("offset {}: {error}", records[index].offset()))
        }
        BatchError::Invalid { error, .. } => Error::Permanent(error.to_string()),
        BatchError::Database(e) => Error::Retryable(e.to_string()),
    }
}

#[cfg(test)]
#[path = "../../store_errors.rs"]
mod store_errors;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every real failure of either store, from each runtime, through the
    /// adapters' production classification and this component's mapping:
    /// retried, never dead-lettered, whatever its kind.
    #[test]
    fn every_database_failure_is_retried_never_dead_lettered() {
        let records = [Record::new("user_service", 0, 7, b"{}".to_vec())];
        let cases = store_errors::cases();
        store_errors::assert_every_kind_on_both_stores(&cases);
        for case in &cases {
            let error = case.classified();
            assert_eq!(error.kind(), case.kind, "{case}");
            match trigger_error(BatchError::Database(error), &records) {
                Error::Retryable(message) => assert!(!message.is_empty(), "{case}"),
                Error::Permanent(message) => panic!("{case}: dead-lettered: {message}"),
            }
        }
    }

    #[test]
    fn an_invalid_record_is_dead_lettered_naming_its_offset_in_a_batch() {
        let records: Vec<Record> = (7..9).map(|offset| Record::new("user_service", 0, offset, b"{}".to_vec())).collect();
        let invalid = |index| BatchError::Invalid { index, error: user_info::parse_patch(b"[]").unwrap_err() };
        match trigger_error(invalid(1), &records) {
            Error::Permanent(message) => assert!(message.starts_with("offset 8: "), "{message}"),
            other => panic!("{other:?}"),
        }
        match trigger_error(invalid(0), &records[..1]) {
            Error::Permanent(message) => assert!(!message.starts_with("offset"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
