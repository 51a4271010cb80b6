//! Tern engine on the wasmi interpreter (`no_std`): runs a component's core module
//! with host functions that implement the canonical ABI of the `tern:edge` world.
//!
//! Wasmtime runs the same bytes as a real component; this crate does the component
//! model's lifting and lowering by hand for exactly this world, so a Cortex-M
//! device needs no component-model runtime. The parity tests in `tests/` hold the
//! two engines to byte-identical results.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

mod cabi;
mod handles;
mod image;
pub mod memory;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use tern_cabi::{FuncAbi, Types};
use tern_core::abi::{Extern, ValType, check_exports, check_import, check_import_type};
use tern_core::bundle::EngineKind;
use tern_core::edge::{self, EdgeFn};
use tern_core::features::WasmFeature;
use tern_core::image::World;
use tern_core::{Error, Event, Grant, Granted, Host, Limits, Output, Platform};
use wasmi::TrapCode;
use wasmi::{AsContextMut, ExternType, Memory, MemoryType, Module, Store};

use cabi::Export;

use memory::{Lease, StaticMemory};

pub use cabi::{AbiError, ShapeError};

/// State of one store: the host semantics plus what the shims need.
pub struct StoreData {
    host: Host,
    limiter: Limiter,
    memory: Option<Memory>,
    realloc: Option<cabi::Realloc>,
    /// One resource-handle table per component instance.
    handles: Vec<handles::HandleTable>,
}

/// Grows memory and tables up to the limits, and traps (recording why) beyond them.
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    hit: bool,
    /// Core instances, linear memories and tables a store may hold: a core module
    /// makes one instance with one memory (2 when the engine provides it: wasmi
    /// counts the store's memory and the module's import of it apart) and a table; a
    /// device image as many as its modules define and import.
    instances: usize,
    memories: usize,
    tables: usize,
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired > self.table_elements {
            self.hit = true;
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.tables
    }
    fn memories(&self) -> usize {
        self.memories
    }
}

/// The wasmi engine with the limits its instances run under.
pub struct WasmiEngine {
    engine: wasmi::Engine,
    limits: Limits,
    /// Where instances' linear memory lives, if not on the heap ([`memory`]).
    memory: Option<&'static dyn StaticMemory>,
    /// The world components are run against, and its exports' calling conventions.
    world: Arc<EngineWorld>,
}

/// A world, its types shared with every host function, and the calling convention
/// of each export `tern_core::Instance` calls, decided once per engine.
pub(crate) struct EngineWorld {
    /// The functions a component may import (the world's types are in `types`).
    imports: Vec<tern_core::image::HostFunc>,
    /// The host resources the world's handles name.
    pub(crate) resources: Vec<tern_core::image::Resource>,
    pub(crate) types: Arc<Types>,
    /// `init`, `on-event`, `health-check`: their calling conventions (which hold
    /// their types).
    pub(crate) exports: [FuncAbi; 3],
}

/// The exports `tern_core::Instance` calls, in [`EngineWorld::exports`]' order.
pub(crate) const EXPORTS: [&str; 3] = ["init", "on-event", "health-check"];

impl EngineWorld {
    fn new(world: World) -> Result<EngineWorld, Error> {
        let broken = |what: &str| Error::Engine(format!("the runtime's world description {what}"));
        let abi = |name: &str| -> Result<FuncAbi, Error> {
            let f = world
                .export(name)
                .ok_or_else(|| broken(&format!("has no export `{name}`")))?;
            FuncAbi::new(&world.types, &f.ty).map_err(|e| broken(&format!("`{name}`: {e}")))
        };
        let exports = [abi(EXPORTS[0])?, abi(EXPORTS[1])?, abi(EXPORTS[2])?];
        // Only what a load needs stays on the heap, the types once.
        Ok(EngineWorld {
            imports: world.imports,
            resources: world.resources,
            types: Arc::new(world.types),
            exports,
        })
    }

    /// The function a component imports as `module`.`name`, if the world has it.
    pub(crate) fn import(&self, module: &str, name: &str) -> Option<&tern_core::image::HostFunc> {
        self.imports
            .iter()
            .find(|f| f.interface == module && f.name == name)
    }
}

/// A validated module or device image linked against exactly its grant.
pub struct WasmiComponent {
    kind: Kind,
    grant: Grant,
    world: Arc<EngineWorld>,
}

enum Kind {
    /// A core module built against the world.
    Module {
        module: Module,
        /// What serves each of the module's imports, in order.
        imports: Vec<CoreImport>,
        /// The type of the memory the engine provides ([`memory`]), if it was
        /// rewritten.
        provided_memory: Option<MemoryType>,
    },
    /// A component taken apart when it was signed ([`tern_core::image`]).
    Image(image::Plan),
}

/// What a core module's import is given.
enum CoreImport {
    Host(Arc<cabi::HostImport>),
    /// The linear memory the engine lends ([`memory`]).
    ProvidedMemory,
}

impl WasmiEngine {
    /// An engine whose instances run under `limits`, their linear memory on the heap.
    pub fn new(limits: Limits) -> Self {
        WasmiEngine {
            engine: wasmi::Engine::new(&Self::config(&limits)),
            limits,
            memory: None,
            world: Arc::new(
                // The description is compiled in and tested; it always describes.
                EngineWorld::new(tern_core::image::tern_edge())
                    .unwrap_or_else(|e| panic!("the tern:edge description: {e}")),
            ),
        }
    }

    /// An engine whose instances keep their linear memory in `memory` (one instance
    /// at a time), which should hold `limits.memory_bytes`: see [`memory`].
    pub fn with_static_memory(limits: Limits, memory: &'static dyn StaticMemory) -> Self {
        WasmiEngine {
            memory: Some(memory),
            ..WasmiEngine::new(limits)
        }
    }

    /// The wasmi configuration every Tern engine uses: fuel metering on, the call depth
    /// limit, and exactly the wasm features [`EngineKind::supports`] gives wasmi.
    /// Public so that benchmarks measure exactly this.
    pub fn config(limits: &Limits) -> wasmi::Config {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .set_max_recursion_depth(limits.call_depth as usize);
        for feature in WasmFeature::ALL {
            set_feature(&mut config, feature, EngineKind::Wasmi.supports(feature));
        }
        config
    }
}

/// Sets one feature of wasmi's validator as the table says. What wasmi cannot switch
/// on in Tern's build is asserted off in the table at compile time.
fn set_feature(config: &mut wasmi::Config, feature: WasmFeature, on: bool) {
    use WasmFeature as F;
    match feature {
        F::MutableGlobal => config.wasm_mutable_global(on),
        F::SaturatingFloatToInt => config.wasm_saturating_float_to_int(on),
        F::SignExtension => config.wasm_sign_extension(on),
        F::MultiValue => config.wasm_multi_value(on),
        F::BulkMemory => config.wasm_bulk_memory(on),
        // Also `gc-types` (`externref`): wasmi ties them together, and so does the
        // table (asserted below).
        F::ReferenceTypes => config.wasm_reference_types(on),
        F::Floats => config.floats(on),
        F::TailCall => config.wasm_tail_call(on),
        F::MultiMemory => config.wasm_multi_memory(on),
        F::ExtendedConst => config.wasm_extended_const(on),
        F::CustomPageSizes => config.wasm_custom_page_sizes(on),
        F::WideArithmetic => config.wasm_wide_arithmetic(on),
        // Off without wasmi's `simd` and `memory64` cargo features, which no Tern
        // build turns on (a device would pay flash for them); not implemented by
        // wasmi 2.0 at all: threads, exceptions, typed function references, GC.
        F::GcTypes
        | F::Simd
        | F::RelaxedSimd
        | F::Memory64
        | F::Threads
        | F::Exceptions
        | F::FunctionReferences
        | F::Gc => config,
    };
}

const _: () = {
    use WasmFeature as F;
    let wasmi = EngineKind::Wasmi;
    assert!(wasmi.supports(F::GcTypes) == wasmi.supports(F::ReferenceTypes));
    assert!(!wasmi.supports(F::Simd) && !wasmi.supports(F::RelaxedSimd));
    assert!(!wasmi.supports(F::Memory64) && !wasmi.supports(F::Threads));
    assert!(!wasmi.supports(F::Exceptions) && !wasmi.supports(F::FunctionReferences));
    assert!(!wasmi.supports(F::Gc));
};

impl WasmiEngine {
    /// A store for `host` under this engine's limits, allowing `(instances, memories,
    /// tables)`, its fuel filled for the first call.
    fn store(
        &self,
        host: Host,
        (instances, memories, tables): (usize, usize, usize),
    ) -> Result<Store<StoreData>, Error> {
        let data = StoreData {
            host,
            limiter: Limiter {
                memory_bytes: self.limits.memory_bytes as usize,
                table_elements: self.limits.table_elements as usize,
                hit: false,
                instances,
                memories,
                tables,
            },
            memory: None,
            realloc: None,
            handles: Vec::new(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limiter);
        store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(store)
    }

    /// A core module built against the world: each import checked against the grant
    /// and the world's description, and given its host function.
    fn load_module(&self, wasm: &[u8], grant: &Granted) -> Result<Kind, Error> {
        let rewritten = match self.memory {
            Some(_) => memory::import_defined_memory(wasm),
            None => None,
        };
        let module = Module::new(&self.engine, rewritten.as_deref().unwrap_or(wasm))
            .map_err(|e| Error::InvalidModule(e.to_string()))?;
        let mut imports: Vec<CoreImport> = Vec::new();
        let mut linked: Vec<(&str, &str, Arc<cabi::HostImport>)> = Vec::new();
        let mut provided_memory = None;
        for import in module.imports() {
            if import.module() == memory::MODULE {
                // Only the rewrite's own import, which it appends last, is ours.
                match import.ty() {
                    ExternType::Memory(ty) if rewritten.is_some() && provided_memory.is_none() => {
                        provided_memory = Some(*ty);
                        imports.push(CoreImport::ProvidedMemory);
                        continue;
                    }
                    _ => {}
                }
            }
            let iface = check_import(import.module(), import.name(), grant)?;
            check_import_type(
                import.module(),
                import.name(),
                iface,
                &extern_of(import.ty()),
            )?;
            if let Some((_, _, imp)) = linked
                .iter()
                .find(|(m, n, _)| *m == import.module() && *n == import.name())
            {
                imports.push(CoreImport::Host(imp.clone()));
                continue;
            }
            let world = &self.world;
            let f = world.import(iface.import_module(), import.name());
            let host = EdgeFn::of(iface, import.name());
            let (Some(f), Some(host)) = (f, host) else {
                return Err(Error::Engine(format!(
                    "{}.{} is in the world but has no host implementation",
                    import.module(),
                    import.name()
                )));
            };
            let abi = FuncAbi::new(&world.types, &f.ty).map_err(|e| {
                Error::Engine(format!("{}.{}: {e}", import.module(), import.name()))
            })?;
            let imp = Arc::new(cabi::HostImport::new(world.types.clone(), abi, host));
            linked.push((import.module(), import.name(), imp.clone()));
            imports.push(CoreImport::Host(imp));
        }
        check_exports(|name| module.get_export(name).as_ref().map(extern_of))?;
        Ok(Kind::Module {
            module,
            imports,
            provided_memory,
        })
    }

    /// Instantiates a core module with its host functions and finds the world's
    /// exports, the module's own `memory` and `cabi_realloc` as their options.
    fn instantiate_module(
        &self,
        store: &mut Store<StoreData>,
        component: &WasmiComponent,
        module: &Module,
        imports: &[CoreImport],
        provided: Option<Memory>,
    ) -> Result<[Export; 3], Error> {
        let mut externs = Vec::with_capacity(imports.len());
        for import in imports {
            externs.push(match import {
                CoreImport::Host(imp) => {
                    wasmi::Extern::Func(cabi::host_func(store, imp.clone(), cabi::MemSource::Store))
                }
                CoreImport::ProvidedMemory => wasmi::Extern::Memory(
                    provided
                        .ok_or_else(|| Error::Engine("the engine lends no linear memory".into()))?,
                ),
            });
        }
        let instance = wasmi::Instance::new(&mut *store, module, &externs)
            .map_err(|e| map_error(e, store, &self.limits))?;
        let memory = instance
            .get_memory(&*store, "memory")
            .ok_or(Error::MissingExport("memory"))?;
        let typed = |store: &Store<StoreData>, name: &'static str| {
            instance
                .get_func(store, name)
                .ok_or(Error::MissingExport(name))
        };
        let realloc = typed(store, "cabi_realloc")?
            .typed::<(i32, i32, i32, i32), i32>(&*store)
            .map_err(|e| Error::InvalidModule(format!("cabi_realloc: {e}")))?;
        let export = |store: &Store<StoreData>, i: usize| -> Result<Export, Error> {
            let name = EXPORTS[i];
            let func = typed(store, name)?;
            let post_return = instance.get_func(store, &format!("cabi_post_{name}"));
            Ok(Export::new(
                func,
                component.world.exports[i].clone(),
                Some(memory),
                Some(realloc),
                post_return,
            ))
        };
        let exports = [export(store, 0)?, export(store, 1)?, export(store, 2)?];
        store.data_mut().memory = Some(memory);
        store.data_mut().realloc = Some(realloc);
        // A WASI-style reactor (a C toolchain's module) initialises itself in
        // `_initialize`; a component runs it once everything is linked (component
        // model #378), so Wasmtime runs it here too. (In a device image,
        // wit-component's own start module calls it.)
        if let Some(initialize) = instance.get_func(&*store, "_initialize") {
            initialize
                .typed::<(), ()>(&*store)
                .map_err(|e| {
                    Error::InvalidModule(format!("`_initialize` takes and returns nothing: {e}"))
                })?
                .call(&mut *store, ())
                .map_err(|e| map_error(e, store, &self.limits))?;
        }
        Ok(exports)
    }
}

impl WasmiEngine {
    /// Instantiates `wasm`, a core module that imports nothing, and calls its export
    /// `name` of type `ty` (over `types`) with `args` through the generic canonical
    /// ABI: the module's `memory` and `cabi_realloc` as the canonical options,
    /// `cabi_post_<name>` (if exported) as post-return, under this engine's limits.
    /// For tools and for the differential tests, which hold this path to Wasmtime's
    /// for any type.
    pub fn call_once(
        &self,
        wasm: &[u8],
        types: &Types,
        name: &str,
        ty: &tern_cabi::FuncType,
        args: &[tern_cabi::Val],
    ) -> Result<Option<tern_cabi::Val>, Error> {
        let abi = FuncAbi::new(types, ty).map_err(|e| Error::Engine(format!("`{name}`: {e}")))?;
        let module =
            Module::new(&self.engine, wasm).map_err(|e| Error::InvalidModule(e.to_string()))?;
        let host = Host::new(
            Grant::default(),
            Box::new(tern_core::SimPlatform::default()),
        );
        let mut store = self.store(host, (1, 1, 1))?;
        let instance = wasmi::Instance::new(&mut store, &module, &[])
            .map_err(|e| map_error(e, &store, &self.limits))?;
        let func = instance
            .get_func(&store, name)
            .ok_or_else(|| Error::InvalidModule(format!("no export `{name}`")))?;
        let memory = instance.get_memory(&store, "memory");
        let realloc = instance
            .get_func(&store, "cabi_realloc")
            .and_then(|f| f.typed::<(i32, i32, i32, i32), i32>(&store).ok());
        let post_return = instance.get_func(&store, &format!("cabi_post_{name}"));
        let export = Export::new(func, abi, memory, realloc, post_return);
        export
            .call(store.as_context_mut(), types, args)
            .map_err(|e| map_error(e, &store, &self.limits))
    }
}

impl tern_core::Engine for WasmiEngine {
    type Component = WasmiComponent;
    type Instance = WasmiInstance;

    fn load(&self, wasm: &[u8], grant: &Granted) -> Result<WasmiComponent, Error> {
        let kind = if tern_core::image::is_image(wasm) {
            Kind::Image(image::Plan::load(
                &self.engine,
                wasm,
                grant,
                &self.world,
                self.memory.is_some(),
            )?)
        } else {
            self.load_module(wasm, grant)?
        };
        Ok(WasmiComponent {
            kind,
            grant: grant.grant().clone(),
            world: self.world.clone(),
        })
    }

    fn instantiate(
        &self,
        component: &WasmiComponent,
        platform: Box<dyn Platform + Send>,
    ) -> Result<WasmiInstance, Error> {
        // Taken before the store exists, so it is given back after the store is gone
        // (locals drop in reverse order; in the instance it is the last field).
        let provided_ty: &[MemoryType] = match &component.kind {
            Kind::Module {
                provided_memory, ..
            } => provided_memory.as_slice(),
            Kind::Image(plan) => &plan.provided_memory,
        };
        let (buffer, lease) = match (!provided_ty.is_empty(), self.memory) {
            (true, Some(m)) => {
                let buffer = m.take().ok_or_else(|| {
                    Error::Engine(
                        "the linear memory is in use by another instance: drop it first".into(),
                    )
                })?;
                (Some(buffer), Some(Lease(m)))
            }
            _ => (None, None),
        };
        let (instances, memories, tables) = match &component.kind {
            Kind::Module { .. } => (1, 1, 1),
            Kind::Image(plan) => (plan.instances, plan.memories, plan.tables),
        };
        let host = Host::new(component.grant.clone(), platform);
        let lent = if buffer.is_some() {
            provided_ty.len()
        } else {
            0
        };
        let mut store = self.store(host, (instances, memories + lent, tables))?;
        let handle_tables = match &component.kind {
            Kind::Module { .. } => 1,
            Kind::Image(plan) => plan.handle_tables,
        };
        store
            .data_mut()
            .handles
            .resize_with(handle_tables, Default::default);
        let too_small = |_| Error::MemoryLimit {
            limit_bytes: self.limits.memory_bytes,
        };
        let mut provided = Vec::with_capacity(lent);
        if let Some(buffer) = buffer {
            for (ty, share) in provided_ty.iter().zip(memory::split(buffer, provided_ty)?) {
                provided.push(Memory::new_static(&mut store, *ty, share).map_err(too_small)?);
            }
        }
        let (exports, types) = match &component.kind {
            Kind::Module {
                module, imports, ..
            } => (
                self.instantiate_module(
                    &mut store,
                    component,
                    module,
                    imports,
                    provided.first().copied(),
                )?,
                component.world.types.clone(),
            ),
            Kind::Image(plan) => {
                let exports = plan
                    .instantiate(&mut store, &provided)
                    .map_err(|f| match f {
                        image::Fault::Wasm(e) => map_error(e, &store, &self.limits),
                        image::Fault::Plan(what) => Error::InvalidModule(what),
                    })?;
                (exports, plan.types.clone())
            }
        };
        Ok(WasmiInstance {
            store,
            limits: self.limits,
            exports,
            types,
            poisoned: false,
            _lease: lease,
        })
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

/// An import's or export's type as `tern_core::abi` compares it with the world.
fn extern_of(ty: &ExternType) -> Extern {
    let val = |t: &wasmi::ValType| match t {
        wasmi::ValType::I32 => ValType::I32,
        wasmi::ValType::I64 => ValType::I64,
        wasmi::ValType::F32 => ValType::F32,
        wasmi::ValType::F64 => ValType::F64,
        wasmi::ValType::V128 => ValType::V128,
        wasmi::ValType::FuncRef | wasmi::ValType::ExternRef => ValType::Ref,
    };
    match ty {
        ExternType::Func(f) => Extern::Func {
            params: f.params().iter().map(val).collect(),
            results: f.results().iter().map(val).collect(),
        },
        ExternType::Memory(_) => Extern::Memory,
        ExternType::Table(_) => Extern::Table,
        ExternType::Global(_) => Extern::Global,
    }
}

/// One running instance on wasmi.
pub struct WasmiInstance {
    store: Store<StoreData>,
    limits: Limits,
    /// `init`, `on-event`, `health-check`, in [`EXPORTS`]' order.
    exports: [Export; 3],
    types: Arc<Types>,
    poisoned: bool,
    /// Last, so it is dropped after the store: gives the static memory back.
    _lease: Option<Lease>,
}

/// Turns a wasmi error into Tern's typed error.
fn map_error(e: wasmi::Error, store: &Store<StoreData>, limits: &Limits) -> Error {
    if store.data().limiter.hit {
        return Error::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    if let Some(message) = cabi::abi_message(&e) {
        return Error::Abi(message);
    }
    match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => Error::FuelExhausted {
            budget: limits.fuel_per_call,
        },
        Some(TrapCode::StackOverflow) => Error::StackOverflow,
        Some(TrapCode::GrowthOperationLimited) => Error::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        },
        Some(code) => Error::Trap(trap_text(code).to_string()),
        None => Error::Engine(e.to_string()),
    }
}

/// Trap descriptions in the wording both engines report ([`tern_core::error::TrapKind`]).
fn trap_text(code: TrapCode) -> &'static str {
    use tern_core::error::TrapKind;
    let kind = match code {
        TrapCode::UnreachableCodeReached => TrapKind::Unreachable,
        TrapCode::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        TrapCode::TableOutOfBounds => TrapKind::TableOutOfBounds,
        TrapCode::IndirectCallToNull => TrapKind::IndirectCallToNull,
        TrapCode::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
        TrapCode::IntegerOverflow => TrapKind::IntegerOverflow,
        TrapCode::BadConversionToInteger => TrapKind::BadConversionToInteger,
        TrapCode::BadSignature => TrapKind::BadSignature,
        _ => TrapKind::Other,
    };
    kind.message()
}

impl WasmiInstance {
    /// Runs one export call: fuel refill, lowering, the call, lifting, post-return.
    /// Any failure poisons the instance.
    fn call<T>(
        &mut self,
        run: impl FnOnce(&mut Self) -> Result<T, wasmi::Error>,
    ) -> Result<T, Error> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::Engine(e.to_string()))?;
        match run(self) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.poisoned = true;
                Err(map_error(e, &self.store, &self.limits))
            }
        }
    }

    /// Calls export `i` of [`EXPORTS`] with `args`.
    fn call_export(
        &mut self,
        i: usize,
        args: &[tern_cabi::Val],
    ) -> Result<Option<tern_cabi::Val>, wasmi::Error> {
        let export = &self.exports[i];
        export.call(self.store.as_context_mut(), &self.types, args)
    }
}

/// A lifted result that is not the world's type.
fn shape(e: edge::ShapeError) -> wasmi::Error {
    wasmi::Error::host(ShapeError(e))
}

impl tern_core::Instance for WasmiInstance {
    fn init(&mut self, config: &[(String, String)]) -> Result<Result<(), String>, Error> {
        self.call(|me| {
            let r = me.call_export(0, &[edge::config_val(config)])?;
            edge::unit_result_of(r, "init's result").map_err(shape)
        })
    }

    fn on_event(&mut self, event: &Event) -> Result<Result<Vec<Output>, String>, Error> {
        self.call(|me| {
            let r = me.call_export(1, &[edge::event_val(event)])?;
            edge::outputs_of(r).map_err(shape)
        })
    }

    fn health_check(&mut self) -> Result<Result<(), String>, Error> {
        self.call(|me| {
            let r = me.call_export(2, &[])?;
            edge::unit_result_of(r, "health-check's result").map_err(shape)
        })
    }

    fn host(&mut self) -> &mut Host {
        &mut self.store.data_mut().host
    }
}
