use trigger_kafka_sdk::{kafka_component, Error, Record};

/// Called once per record of `{{kafka-topic}}`, in order per partition. Return
/// `Error::Retryable` to have the record retried, `Error::Permanent` to send it
/// to the dead-letter topic; the offset is committed after `Ok` or either.
#[kafka_component]
fn handle(record: Record) -> Result<(), Error> {
    let key = record.key_str().transpose()?.unwrap_or("");
    if record.is_tombstone() {
        // A null value: on a keyed topic, "the entity of this key is gone".
        eprintln!("{{project-name | snake_case}}: {}/{}@{} key={key:?} deleted", record.topic(), record.partition(), record.offset());
        return Ok(());
    }
    let value = record.value_str()?; // not UTF-8: permanent
    eprintln!(
        "{{project-name | snake_case}}: {}/{}@{} key={key:?} value={value}",
        record.topic(),
        record.partition(),
        record.offset()
    );
    Ok(())
}
