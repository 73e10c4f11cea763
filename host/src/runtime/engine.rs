//! The wasmtime engine and linker every trigger shares: compiles each
//! component once per process (and, unless disabled, caches the machine code
//! on disk across processes), links WASI 0.2, wasi-http and Spin's interfaces,
//! and pre-instantiates so that each request or record pays only for a cheap
//! instantiation from the pooling allocator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use crate::runtime::instance::{ComponentContext, InstanceState};

/// How often the engine's epoch advances. Every running guest yields to the
/// async executor once per tick (as Spin does, with the same 10 ms), so a guest
/// in an endless loop neither starves the other tasks of its worker thread nor
/// escapes a deadline or an abort: both land at its next yield.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Component instances alive at once in this process, HTTP requests and
/// Kafka calls together (`TRIGGER_KAFKA_INSTANCE_SLOTS`). The pooling
/// allocator reserves this many slots; a call beyond it waits for a free
/// one (see [`PreparedComponent::store`]) instead of failing, so no limit
/// of the triggers (`--http-max-connections`, partitions, batches) has to be
/// kept below it.
pub const DEFAULT_INSTANCE_SLOTS: u32 = 1_000;
pub const INSTANCE_SLOTS_VARIABLE: &str = "TRIGGER_KAFKA_INSTANCE_SLOTS";
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
    slots: Arc<Semaphore>,
}

/// A compiled, linked component and what its instances are granted.
#[derive(Clone)]
pub struct PreparedComponent {
    pub pre: InstancePre<InstanceState>,
    pub context: Arc<ComponentContext>,
    /// The process's instance slots, shared by every component.
    slots: Arc<Semaphore>,
}

/// A store holding one of the process's instance slots. Fields drop in
/// order: the store (and the instance in its pooling slot) first, then the
/// permit, so a waiter never gets a permit before the slot is free.
pub struct InstanceStore {
    store: Store<InstanceState>,
    _slot: OwnedSemaphorePermit,
}

impl std::ops::Deref for InstanceStore {
    type Target = Store<InstanceState>;
    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

impl std::ops::DerefMut for InstanceStore {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.store
    }
}

impl Runtime {
    pub fn new(options: &EngineOptions) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Compiled code checks the epoch at function entries and loop headers.
        config.epoch_interruption(true);
        let slots = crate::env_choice::number_from_env(INSTANCE_SLOTS_VARIABLE, DEFAULT_INSTANCE_SLOTS, 1)?;
        let keep_memory = crate::env_choice::number_from_env("TRIGGER_KAFKA_MEMORY_KEEP_RESIDENT", 4usize << 20, 0)?;
        let keep_table = crate::env_choice::number_from_env("TRIGGER_KAFKA_TABLE_KEEP_RESIDENT", 64usize << 10, 0)?;
        if !options.disable_pooling {
            // Instances come from pre-reserved slots: instantiation is a few
            // microseconds instead of mmap calls per request.
            // The semaphore admits `slots` instances; the pool holds more.
            // wasmtime may give a freed slot back to its pool after our
            // permit is released (its batched decommit queues: a flush takes
            // a shard's queue out under the lock and returns the slots after
            // dropping it, so a concurrent allocation can find neither a free
            // slot nor a queue to flush). The headroom covers that window, so
            // an admitted call never fails for want of a slot (seen once as a
            // 500 under load in host_limits::calls_beyond_the_instance_slots_…).
            let pooled = slots.saturating_add((slots / 8).max(8));
            let mut pooling = PoolingAllocationConfig::default();
            pooling
                .total_component_instances(pooled)
                .total_core_instances(pooled.saturating_mul(4))
                .total_memories(pooled)
                .total_tables(pooled.saturating_mul(2))
                .total_stacks(pooled.saturating_mul(2))
                .max_memory_size(256 << 20)
                // Reset a freed slot with memset rather than madvise: madvise
                // costs cross-CPU TLB shootdowns and the next instance then
                // page-faults everything back (measured: ~40% of a no-op
                // request's CPU). Components here touch only a few MiB.
                .linear_memory_keep_resident(keep_memory)
                .table_keep_resident(keep_table)
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
        Ok(Runtime { engine, linker, slots: Arc::new(Semaphore::new(slots as usize)) })
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
        Ok(PreparedComponent { pre, context, slots: self.slots.clone() })
    }
}

impl PreparedComponent {
    /// A fresh store for one instance, once one of the process's instance
    /// slots is free (waiting for it otherwise; callers bound the wait with
    /// their call's deadline).
    pub async fn store(&self) -> InstanceStore {
        let slot = self.slots.clone().acquire_owned().await.expect("the slot semaphore is never closed");
        InstanceStore { store: self.new_store(), _slot: slot }
    }

    fn new_store(&self) -> Store<InstanceState> {
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

/// Read from the preamble alone: core modules start with version 1;
/// components use a different layer/version field.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
