//! Every integration test of the workspace, in one test binary: each module
//! was once a test target of its own, and each target linked wasmtime's
//! dependencies, librdkafka and the harness again. One binary is linked once.
//! Filter by module as before: `cargo test --test integration -- http::`.

mod plugin_support;
mod support;

mod auth;
mod broker_failover;
mod delivery;
mod deploy;
mod dlq_replay;
mod effectively_once;
mod hostile_clients;
mod host_limits;
mod hostile_guest;
mod http;
mod kafka;
mod kafka_deadlines;
mod kafka_poison;
mod openapi;
mod otel_traces;
mod pg_result_cap;
mod pg_transactions;
mod platforms;
mod plugin;
mod scale_out;
mod sqlite_off_workers;
mod static_membership;
mod store_outage;
mod template;
mod time_lag;
mod zero_row_query;
