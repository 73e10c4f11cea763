//! A Kafka-triggered guest that hangs on request, for the host's deadline
//! tests. With the variable `hang` = "true", a record whose value is `loop`
//! makes `handle-message` spin forever without calling the host. Every other
//! call (and every call with `hang` false) appends (partition, offset, value)
//! to the SQLite table `applied`, so a test counts how often each record was
//! applied, and by which process (the variable `owner`). Whatever the
//! variables, a record whose value is `trap` makes the guest panic (a trap),
//! every time; one whose value is `huge-error` fails permanently with an
//! error text of 2 MiB (multi-byte characters, so a cut by bytes would fall
//! mid-character).

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    world: "trigger-kafka:kafka/kafka-trigger",
});

use exports::trigger_kafka::kafka::inbound_kafka::Guest;
use spin_sdk::sqlite::{Connection, Value};
use trigger_kafka::kafka::types::{HandleError, KafkaRecord};

struct Hostile;

fn variable(name: &str) -> String {
    spin_sdk::variables::get(name).unwrap_or_default()
}

impl Guest for Hostile {
    fn handle_message(message: KafkaRecord) -> Result<(), HandleError> {
        if message.value == b"trap" {
            panic!("this record always traps (offset {})", message.offset);
        }
        if message.value == b"huge-error" {
            return Err(HandleError::Permanent("é".repeat(1 << 20)));
        }
        if message.value == b"loop" && variable("hang") == "true" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        let retry = |e: spin_sdk::sqlite::Error| HandleError::Retryable(format!("{e:?}"));
        let db = Connection::open_default().map_err(retry)?;
        db.execute("PRAGMA busy_timeout = 5000", &[]).map_err(retry)?;
        db.execute(
            "CREATE TABLE IF NOT EXISTS applied (partition INTEGER, offset INTEGER, value TEXT, owner TEXT)",
            &[],
        )
        .map_err(retry)?;
        db.execute(
            "INSERT INTO applied VALUES (?, ?, ?, ?)",
            &[
                Value::Integer(message.partition.into()),
                Value::Integer(message.offset),
                Value::Text(String::from_utf8_lossy(&message.value).into_owned()),
                Value::Text(variable("owner")),
            ],
        )
        .map_err(retry)?;
        Ok(())
    }
}

export!(Hostile);
