//! The guest contract versions the trigger runs, each bound from its own WIT:
//! `trigger-kafka:kafka@0.2.0` (wit/kafka-trigger.wit), where a tombstone's
//! value is `none`, and `@0.1.0` (wit/v0.1/, as it shipped), where it is an
//! empty list. A component exports one of them; the newest it exports is
//! used, so components built against 0.1.0 keep running unchanged.

use anyhow::Result;
use kafka_consumer::{HandleError, KafkaRecord};

use crate::runtime::engine::PreparedComponent;

mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/kafka-trigger.wit",
        world: "trigger-kafka:kafka/kafka-trigger-batch@0.2.0",
        exports: { default: async },
    });
}

mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1/kafka-trigger.wit",
        world: "trigger-kafka:kafka/kafka-trigger-batch@0.1.0",
        exports: { default: async },
    });
}

/// Generates, per version, the conversion of a record and an error and the
/// two calls; only the record's value differs between versions (`$value`).
macro_rules! version {
    ($module:ident, $bindings:ident, $value:expr) => {
        mod $module {
            use super::*;
            use super::$bindings::exports::trigger_kafka::kafka::{inbound_kafka, inbound_kafka_batch};
            use super::$bindings::trigger_kafka::kafka::types as wit;

            pub struct Indices {
                single: inbound_kafka::GuestIndices,
                batch: Option<inbound_kafka_batch::GuestIndices>,
            }

            impl Indices {
                pub fn find(component: &PreparedComponent) -> Option<Self> {
                    let single = inbound_kafka::GuestIndices::new(&component.pre).ok()?;
                    let batch = inbound_kafka_batch::GuestIndices::new(&component.pre).ok();
                    Some(Indices { single, batch })
                }

                pub fn has_batch(&self) -> bool {
                    self.batch.is_some()
                }

                pub async fn call_one(&self, component: &PreparedComponent, record: KafkaRecord) -> Result<(), HandleError> {
                    let mut store = component.store().await;
                    let not_started = |e| super::not_started(component, e);
                    let instance = component.pre.instantiate_async(&mut *store).await.map_err(not_started)?;
                    let guest = self.single.load(&mut *store, &instance).map_err(not_started)?;
                    let result = guest.call_handle_message(&mut *store, &to_wit(record)).await;
                    result.map_err(|trap| super::trapped(component, trap))?.map_err(from_wit)
                }

                pub async fn call_batch(&self, component: &PreparedComponent, records: &[KafkaRecord]) -> Result<(), HandleError> {
                    let indices = self.batch.as_ref().expect("checked by has_batch");
                    let mut store = component.store().await;
                    let not_started = |e| super::not_started(component, e);
                    let instance = component.pre.instantiate_async(&mut *store).await.map_err(not_started)?;
                    let guest = indices.load(&mut *store, &instance).map_err(not_started)?;
                    let messages: Vec<wit::KafkaRecord> = records.iter().cloned().map(to_wit).collect();
                    let result = guest.call_handle_messages(&mut *store, &messages).await;
                    result.map_err(|trap| super::trapped(component, trap))?.map_err(from_wit)
                }
            }

            fn to_wit(record: KafkaRecord) -> wit::KafkaRecord {
                let value: fn(Option<Vec<u8>>) -> _ = $value;
                wit::KafkaRecord {
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                    timestamp: record.timestamp_ms,
                    key: record.key,
                    value: value(record.value),
                    headers: record.headers.into_iter().map(|(key, value)| wit::Header { key, value }).collect(),
                }
            }

            fn from_wit(error: wit::HandleError) -> HandleError {
                match error {
                    wit::HandleError::Retryable(msg) => HandleError::Retryable(msg),
                    wit::HandleError::Permanent(msg) => HandleError::Permanent(msg),
                }
            }
        }
    };
}

/// The instance could not be created: nothing of the record ran, so it is
/// the host's trouble (memory, a slot), retried as a transient failure.
fn not_started(component: &PreparedComponent, e: wasmtime::Error) -> HandleError {
    HandleError::Retryable(format!("component {} could not be instantiated: {e:#}", component.context.id))
}

/// A trap may be transient (out of memory under load) or caused by the
/// record: the consumer retries it, and dead-letters it (kind `trap`) once it
/// trapped `max_trap_attempts` times on the record.
fn trapped(component: &PreparedComponent, trap: wasmtime::Error) -> HandleError {
    HandleError::Trap(format!("component {} trapped: {trap:#}", component.context.id))
}

// 0.2.0 passes the value as it is; 0.1.0 cannot say "null", so a tombstone
// arrives empty there, as it always did.
version!(calls_v0_2, v0_2, |value| value);
version!(calls_v0_1, v0_1, |value| value.unwrap_or_default());

/// The exports of one component, in the version it was built against.
pub enum Exports {
    V0_2(calls_v0_2::Indices),
    V0_1(calls_v0_1::Indices),
}

impl Exports {
    /// The newest version the component exports; an error when none.
    pub fn find(component: &PreparedComponent) -> Result<Self> {
        if let Some(indices) = calls_v0_2::Indices::find(component) {
            return Ok(Exports::V0_2(indices));
        }
        calls_v0_1::Indices::find(component)
            .map(Exports::V0_1)
            .ok_or_else(|| anyhow::anyhow!("no known version of trigger-kafka:kafka/inbound-kafka is exported"))
    }

    pub fn has_batch(&self) -> bool {
        match self {
            Exports::V0_2(i) => i.has_batch(),
            Exports::V0_1(i) => i.has_batch(),
        }
    }

    pub async fn call_one(&self, component: &PreparedComponent, record: KafkaRecord) -> Result<(), HandleError> {
        match self {
            Exports::V0_2(i) => i.call_one(component, record).await,
            Exports::V0_1(i) => i.call_one(component, record).await,
        }
    }

    pub async fn call_batch(&self, component: &PreparedComponent, records: &[KafkaRecord]) -> Result<(), HandleError> {
        match self {
            Exports::V0_2(i) => i.call_batch(component, records).await,
            Exports::V0_1(i) => i.call_batch(component, records).await,
        }
    }
}
