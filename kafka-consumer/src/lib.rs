//! At-least-once Kafka consumer of the Spin Kafka trigger.
//!
//! It joins a consumer group, reads each assigned partition in order (partitions
//! concurrently), hands every record to a [`RecordHandler`], retries retryable
//! failures with exponential backoff and jitter, sends permanent failures and
//! exhausted retries to an optional dead-letter topic, and commits an offset only
//! once its record is done. It knows nothing of WebAssembly.

mod client_log;
mod commit;
mod config;
mod context;
mod dead_letter;
mod observer;
mod partition;
mod record;
mod retry;
mod runner;
mod spans;
mod topic;
mod worker;

pub use client_log::RateLimiter;
pub use config::{ConsumerConfig, GroupProtocol, StartOffset};
pub use dead_letter::{
    HEADER_ERROR, HEADER_ERROR_KIND, HEADER_ORIGINAL_OFFSET, HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    HEADER_VALUE_DROPPED, MAX_ERROR_HEADER_BYTES, TRUNCATED_MARKER,
};
pub use observer::Observer;
pub use runner::{run, run_observed};
pub use record::{HandleError, KafkaRecord, RecordHandler};
pub use retry::RetryPolicy;
pub use spans::SPAN_TARGET;
pub use topic::ensure_topic;
