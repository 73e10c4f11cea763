//! The wasmtime engine and linker every trigger shares: compiles each
//! component once per process (and, unless disabled, caches the machine code
//! on disk across processes), links WASI 0.2, wasi-http and Spin's interfaces,
//! and pre-instantiates so that each request or record pays only for a cheap
//! instantiation from the pooling allocator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use crate::runtime::instance::{ComponentContext, InstanceState};

/// How often the engine's epoch advances. Every running guest yields to the
/// async executor once per tick (as Spin does, with the same 10 ms), so a guest
/// in an endless loop neither starves the other tasks of its worker thread nor
/// escapes a deadline or an abort: both land at its next yield.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the engine is built (`--disable-pooling`, `--disable-cache`, `--cache`).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub disable_pooling: bool,
    pub disable_cache: bool,
    pub cache_config: Option<PathBuf>,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
}

/// A compiled, linked component and what its instances are granted.
#[derive(Clone)]
pub struct PreparedComponent {
    pub pre: InstancePre<InstanceState>,
    pub context: Arc<ComponentContext>,
}

impl Runtime {
    pub fn new(options: &EngineOptions) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Compiled code checks the epoch at function entries and loop headers.
        config.epoch_interruption(true);
        if !options.disable_pooling {
            // Instances come from pre-reserved slots: instantiation is a few
            // microseconds instead of mmap calls per request.
            let mut pooling = PoolingAllocationConfig::default();
            pooling
                .total_component_instances(1_000)
                .total_core_instances(4_000)
                .total_memories(1_000)
                .total_tables(2_000)
                .max_memory_size(256 << 20)
                // Reset a freed slot with memset rather than madvise: madvise
                // costs cross-CPU TLB shootdowns and the next instance then
                // page-faults everything back (measured: ~40% of a no-op
                // request's CPU). Components here touch only a few MiB.
                .linear_memory_keep_resident(env_bytes("TRIGGER_KAFKA_MEMORY_KEEP_RESIDENT", 4 << 20))
                .table_keep_resident(env_bytes("TRIGGER_KAFKA_TABLE_KEEP_RESIDENT", 64 << 10))
                .decommit_batch_size(64);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        if !options.disable_cache {
            match wasmtime::Cache::from_file(options.cache_config.as_deref()) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(e) => tracing::warn!("compilation cache disabled: {e}"),
            }
        }
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::interfaces::add_to_linker(&mut linker)?;
        Ok(Runtime { engine, linker })
    }

    /// Compiles and links one component. A component importing something this
    /// host does not provide fails here, naming the import.
    pub fn prepare(&self, context: Arc<ComponentContext>, source: &std::path::Path) -> Result<PreparedComponent> {
        let id = &context.id;
        let bytes = std::fs::read(source)
            .with_context(|| format!("component {id:?}: cannot read {}", source.display()))?;
        if is_core_module(&bytes) {
            anyhow::bail!(
                "component {id:?}: {} is a core wasm module, not a component; build it for wasm32-wasip2",
                source.display()
            );
        }
        let component = Component::new(&self.engine, &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component {id:?}: cannot compile {}", source.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component {id:?} cannot run on this host"))?;
        Ok(PreparedComponent { pre, context })
    }
}

impl PreparedComponent {
    pub fn new_store(&self) -> Store<InstanceState> {
        let mut store = Store::new(self.pre.engine(), InstanceState::new(self.context.clone()));
        store.limiter(|state| &mut state.limits);
        // Yield at every epoch tick, forever: the caller bounds the call with
        // a timeout (a deadline also has to cover a guest waiting in a host
        // call, where no epoch check runs), and dropping the call's future at
        // a yield drops the instance with it.
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store.set_epoch_deadline(1);
        store
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine
/// lives (the thread holds only a weak reference).
fn start_epoch_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}

/// A tuning knob with a default, overridable from the environment.
fn env_bytes(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Read from the preamble alone: core modules start with version 1;
/// components use a different layer/version field.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
