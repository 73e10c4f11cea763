//! Kafka-triggered Spin components for the `trigger-kafka` plugin.
//!
//! One function is a component: mark it [`kafka_component`]. It receives a
//! [`Record`] (or a `Vec<Record>` for batches) and returns `Ok(())` once the
//! record is processed, or an [`Error`] that tells the trigger what to do:
//! [`Error::Retryable`] retries with backoff, [`Error::Permanent`] sends the
//! record to the dead-letter topic at once. Offsets are committed only after
//! `Ok` or dead-lettering, per partition in order; delivery is at least once,
//! so make the handler idempotent.
//!
//! ```
//! use trigger_kafka_sdk::{kafka_component, Error, Record};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: u64, total_cents: i64 }
//!
//! #[kafka_component]
//! fn handle(record: Record) -> Result<(), Error> {
//!     let order: Order = record.value_json()?; // bad JSON: permanent
//!     eprintln!("order {} of {} cents", order.id, order.total_cents);
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! The types work on every target, so handlers can be unit-tested natively
//! with [`Record::new`]; only the generated exports need wasm32-wasip2.
//!
//! The contract itself is [`WIT`] (package `trigger-kafka:kafka@0.2.0`, where
//! a tombstone is told from an empty value: [`Record::is_tombstone`]).

// The attribute's expansion names this crate by its absolute path.
extern crate self as trigger_kafka_sdk;

mod error;
mod record;

pub use error::Error;
pub use record::{Headers, Record};

/// Turns a function into the component's Kafka handler.
///
/// - `fn(Record) -> Result<(), Error>`: one record per call; the component
///   implements the world `kafka-trigger`.
/// - `fn(Vec<Record>) -> Result<(), Error>`: consecutive records of one
///   partition per call (at most the trigger's `batch_size`, only records
///   already fetched); the world `kafka-trigger-batch`. Process them all or
///   nothing (one transaction): on any error the trigger replays them one
///   record per call, so errors are per record. Single records arrive as a
///   one-element `Vec`.
///
/// ```
/// use trigger_kafka_sdk::{kafka_component, Error, Record};
///
/// #[kafka_component]
/// fn apply(records: Vec<Record>) -> Result<(), Error> {
///     for record in &records {
///         let key = record.key_str().ok_or_else(|| Error::permanent("a record needs a key"))??;
///         eprintln!("{key}: {} bytes", record.value().len());
///     }
///     Ok(())
/// }
/// # fn main() {}
/// ```
pub use trigger_kafka_sdk_macro::kafka_component;

/// The trigger's guest contract (WIT), as the host is built against it.
///
/// ```
/// assert!(trigger_kafka_sdk::WIT.contains("package trigger-kafka:kafka@0.2.0;"));
/// ```
pub const WIT: &str = include_str!("../wit/kafka-trigger.wit");

/// Used by the expansion of [`kafka_component`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// A WIT `kafka-record`, taken apart.
    pub struct WitParts {
        pub topic: String,
        pub partition: i32,
        pub offset: i64,
        pub timestamp: Option<i64>,
        pub key: Option<Vec<u8>>,
        pub value: Option<Vec<u8>>,
        pub headers: Vec<(String, Option<Vec<u8>>)>,
    }
}
