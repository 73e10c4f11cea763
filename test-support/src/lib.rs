//! What every test of the workspace shares, written once: the real test
//! PostgreSQL (started through `scripts/postgres`, [`postgres`]), the real
//! test broker with its producer, topic and reader helpers ([`kafka`]), the
//! child-process harness ([`process`]) and the files real Spin wrote
//! ([`fixtures`]). The domain crate's unit tests, the integration tests in
//! tests/ (through their `support` module) and kafka-consumer's tests all
//! use these, so a harness is fixed in one place.
//!
//! This crate depends on no crate of the workspace: the domain crate's unit
//! tests use it, and a dependency back on the domain would give them a second
//! copy of its types.

pub mod fixtures;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod process;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The workspace's root (where `scripts/` is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// A script of `scripts/`.
pub fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A name no other test (or earlier run) uses: topics, groups, databases.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Polls `check` until it holds; panics naming `what` past `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
