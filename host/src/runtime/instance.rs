//! Per-instance host state (the `T` of `Store<T>`): WASI, wasi-http, the
//! resource table, memory limits, and what this component may reach (its
//! databases, the outbound hosts it is allowed, its variables). One store per request or Kafka record, as Spin.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::runtime::logs::ComponentLogs;
use crate::interfaces::outbound_networking::AllowedHosts;
use crate::interfaces::postgres::Pools;
use crate::interfaces::sqlite::{self, Databases};
use crate::interfaces::variables::Variables;

/// What one component is granted, shared by all its instances.
pub struct ComponentContext {
    pub id: String,
    pub databases: Arc<Databases>,
    pub allowed_databases: HashSet<String>,
    /// This process's PostgreSQL pools, and where this component may connect.
    pub postgres: Arc<Pools>,
    pub allowed_hosts: AllowedHosts,
    /// Its `variables` table (templates), and the app's resolved values.
    pub config: BTreeMap<String, String>,
    pub variables: Arc<Variables>,
    pub environment: Vec<(String, String)>,
    pub logs: ComponentLogs,
    pub max_memory: Option<usize>,
}

pub struct InstanceState {
    pub component: Arc<ComponentContext>,
    pub table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub limits: StoreLimits,
    /// Open `connection` resources, per interface (see MAX_CONNECTIONS).
    pub sqlite_connections: usize,
    pub postgres_connections: usize,
}

/// Connections one instance may hold open at once, per interface, as Spin's
/// `Table::new(256)`: a guest that opens without closing gets an error
/// instead of growing the host's tables.
pub const MAX_CONNECTIONS: usize = 256;

/// Bytes of result rows one host call may buffer (outside the guest's
/// `--max-instance-memory`), for SQLite and PostgreSQL alike, as Spin's
/// `MAX_HOST_BUFFERED_BYTES` (spin-world, since Spin 4.0; Spin 3.6 buffers
/// without a limit): past it the statement fails with an error saying so,
/// instead of the host growing without bound.
pub const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

/// The error text of a statement whose rows pass [`MAX_HOST_BUFFERED_BYTES`]:
/// Spin 4.0's words first, so a guest that recognises them on Spin
/// recognises them here, then how to avoid it.
pub fn result_too_large() -> String {
    format!(
        "query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes ({} MiB buffered per statement); fetch it in pages (LIMIT/OFFSET)",
        MAX_HOST_BUFFERED_BYTES >> 20
    )
}

impl InstanceState {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&component.environment);
        wasi.stdout(component.logs.stdout());
        wasi.stderr(component.logs.stderr());
        let mut limits = StoreLimitsBuilder::new();
        if let Some(max) = component.max_memory {
            limits = limits.memory_size(max);
        }
        InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: limits.build(),
            sqlite_connections: 0,
            postgres_connections: 0,
            component,
        }
    }

    pub fn open_database(&self, label: &str) -> Result<sqlite::Connection, sqlite::Error> {
        self.component.databases.open(label, &self.component.allowed_databases)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}
