//! Which tests the test runner reports as skipped. libtest cannot skip a test
//! at run time (a test that returns early is reported "ok"), so a skip is
//! decided when the tests are compiled, from the environment, and becomes
//! `#[ignore = "reason"]` (`cfg_attr`): the runner then lists the test as
//! "ignored" with its reason and counts it apart, never as a pass.
//!
//! - `SKIP_POSTGRES=1`: the domain's PostgreSQL tests (no server to run them on).
//! - `TEST_SPIN` set (what scripts/test-spin sets): the integration tests that
//!   check this project's own host and cannot run on Spin.
//!
//! Cargo builds again when either variable changes; a binary run by hand
//! with another `TEST_SPIN` than it was built with refuses to start its
//! first app (tests/integration/support's `Launcher::current`).

fn main() {
    println!("cargo:rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo:rustc-check-cfg=cfg(test_spin)");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SKIP_POSTGRES");
    println!("cargo:rerun-if-env-changed=TEST_SPIN");
    if std::env::var("SKIP_POSTGRES").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=skip_postgres");
    }
    if std::env::var_os("TEST_SPIN").is_some_and(|spin| !spin.is_empty()) {
        println!("cargo:rustc-cfg=test_spin");
    }
}
