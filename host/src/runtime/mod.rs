//! What runs guests: the wasmtime engine and its epoch ticker (deadlines),
//! the per-instance state, and the components' stdout/stderr.

pub mod engine;
pub mod instance;
pub mod logs;
