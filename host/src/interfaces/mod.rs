//! Spin's host interfaces, one module per interface as in Spin's
//! `factor-*` crates, each binding its own WIT world (host/wit/host.wit) and
//! implementing it: SQLite, PostgreSQL, variables, and the outbound-network
//! allow-list that PostgreSQL connections are checked against. WASI and
//! wasi:http come from wasmtime-wasi(-http) and are linked in the runtime.

pub mod outbound_networking;
pub mod postgres;
pub mod sqlite;
pub mod variables;

use wasmtime::component::Linker;

use crate::runtime::instance::InstanceState;

/// Links every Spin interface this host provides.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    sqlite::bindings::add_to_linker(linker)?;
    variables::bindings::add_to_linker(linker)?;
    postgres::bindings::add_to_linker(linker)?;
    Ok(())
}
