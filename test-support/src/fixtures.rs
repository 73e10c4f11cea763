//! What real Spin 4.0.2 wrote and how it ran a trigger plugin
//! (fixtures/spin-4.0.2/, its README says how they were recorded). They live
//! here, in a test crate, so that no production crate reaches into tests/:
//! the host's unit tests read them through this module.

use std::path::PathBuf;

/// The directory of the Spin 4.0.2 recordings.
pub fn spin_4_0_2() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/spin-4.0.2"))
}

/// The locked app `spin up` 4.0.2 wrote for the project's spin.toml.
pub const SPIN_4_0_2_LOCKED_APP: &str = include_str!("../fixtures/spin-4.0.2/spin.lock.json");
