//! Project chores run through `cargo run -p xtask -- <command>`.
//!
//! The logic lives in a library (rather than only in `main.rs`) so that the
//! integration tests under `xtask/tests/` can call it directly on small real
//! files, without building the (slow) `trigger-kafka` binary.

pub mod manifest;
pub mod package;
pub mod workspace;

pub use package::{package, PackageOutput, PLUGIN_NAME};
