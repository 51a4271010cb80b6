//! Tern engine on Wasmtime: a signed core module becomes a component
//! (`wit-component`, against the runtime's own world, deterministic and cached), a
//! signed component runs as it is ([`component`]: its imports checked against the
//! grant, its types against the world's), and either runs with `bindgen!` host impls
//! on the pooling allocator, under the same fuel and memory limits and the same wasm
//! features table as on wasmi. A device image (`tern_core::image`) is for wasmi and
//! refused.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tern_core::abi::{Extern, ValType, check_exports, check_import, check_import_type};
use tern_core::bundle::EngineKind;
use tern_core::error::{AbiFault, TrapKind};
use tern_core::{Error, Grant, Granted, Host, Interface, Limits, Platform};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

mod bindings {
    //! Host bindings generated from `runtime/wit`.
    #![allow(missing_docs)]
    // World `runtime`: `component`'s imports and exports, and the WASI interfaces
    // (`runtime/wit/deps`) that reach the same capabilities.
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tern:edge/runtime",
    });
}

pub mod component;
mod convert;
pub mod features;
mod host;
pub mod world;

use bindings::tern::edge as wit;

/// Store data: host semantics plus the limiter.
pub struct Ctx {
    host: Host,
    limiter: Limiter,
}

struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Err(wasmtime::Error::msg("memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.hit = true;
            return Err(wasmtime::Error::msg("table limit"));
        }
        Ok(true)
    }
}

/// How many instances the pooling allocator keeps slots for.
const POOL_SLOTS: u32 = 64;

/// The Wasmtime engine, its component cache and the limits its instances run under.
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
    limits: Limits,
    /// Compiled components by their payload's bytes (a core module's or a
    /// component's): encoding and Cranelift compilation happen once per distinct
    /// payload.
    cache: Mutex<HashMap<Arc<[u8]>, wasmtime::component::Component>>,
}

/// A component compiled and linked against exactly its grant, ready to instantiate.
pub struct WasmtimeComponent {
    pre: bindings::RuntimePre<Ctx>,
    grant: Grant,
}

impl WasmtimeEngine {
    /// An engine whose instances run under `limits`.
    pub fn new(limits: Limits) -> Result<Self, Error> {
        let engine = wasmtime::Engine::new(&Self::config(&limits))
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(WasmtimeEngine {
            engine,
            limits,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The Wasmtime configuration every Tern engine uses: fuel metering on, the call
    /// depth as a native stack limit, the pooling allocator sized by `limits`, and
    /// exactly the wasm features [`EngineKind::supports`] gives Wasmtime (every
    /// feature Tern knows switched off first). Public so that benchmarks measure
    /// exactly this.
    pub fn config(limits: &Limits) -> Config {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(POOL_SLOTS)
            .total_memories(POOL_SLOTS)
            .total_tables(POOL_SLOTS)
            .max_memory_size(limits.memory_bytes as usize)
            .table_elements(limits.table_elements as usize);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .wasm_features(features::known(), false)
            .wasm_features(features::engine(EngineKind::Wasmtime), true)
            // Components: the component model, none of its later proposals (no async).
            .wasm_features(features::component_model_proposals(), false)
            .wasm_component_model(true)
            // Roughly 1 KiB of native stack per wasm frame, to match wasmi's depth limit.
            .max_wasm_stack(limits.call_depth as usize * 1024)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config
    }

    /// Turns a core module into a component, deterministically: the same module
    /// gives the same component bytes. The component's world is always the runtime's
    /// `tern:edge/component` ([`world`]): the module's own `component-type*` custom
    /// sections are dropped first, so a module without them runs, and one naming
    /// another world runs as this one or not at all.
    pub fn componentize(wasm: &[u8]) -> Result<Vec<u8>, Error> {
        let module = world::with_runtime_world(wasm)?;
        wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| Error::InvalidModule(format!("cannot make a component: {e:#}")))
    }

    /// Whether `wasm` has been compiled by this engine and is in its cache (the next
    /// load compiles nothing).
    pub fn is_compiled(&self, wasm: &[u8]) -> bool {
        self.cached(wasm).is_some()
    }

    fn cached(&self, wasm: &[u8]) -> Option<wasmtime::component::Component> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(wasm).cloned()
    }

    /// Compiles a payload [`features::validate`] accepted, once: a core module
    /// componentized first, a component as it is.
    fn compile(&self, wasm: &[u8]) -> Result<wasmtime::component::Component, Error> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(wasm) {
            return Ok(c.clone());
        }
        let componentized;
        let bytes = if wasmparser::Parser::is_component(wasm) {
            wasm
        } else {
            componentized = Self::componentize(wasm)?;
            &componentized[..]
        };
        let component = wasmtime::component::Component::from_binary(&self.engine, bytes)
            .map_err(|e| Error::InvalidModule(format!("{e:#}")))?;
        cache.insert(Arc::from(wasm), component.clone());
        Ok(component)
    }

    /// A linker with the world's types and exactly the interfaces in `ifaces`.
    fn linker(&self, ifaces: &[Interface]) -> Result<Linker<Ctx>, Error> {
        let mut linker = Linker::new(&self.engine);
        let engine_err = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
        wit::types::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c).map_err(engine_err)?;
        for iface in ifaces {
            link(&mut linker, *iface).map_err(engine_err)?;
        }
        Ok(linker)
    }

    /// Loads a component payload as it is, in a core module's order: validation
    /// under Wasmtime's features, the imports against the grant and the world
    /// ([`component::check_imports`]), the world's exports, the memories and
    /// tables against the limits, all before compiling; then the bindings' checks of
    /// the imported and exported functions' types.
    fn load_component(&self, wasm: &[u8], grant: &Granted) -> Result<WasmtimeComponent, Error> {
        let validated = component::validate(wasm)?;
        let ifaces = component::imports(wasm, validated.types.as_ref(), grant)?;
        component::check_exports(&validated)?;
        Sizes::of(wasm)?.check(&self.limits)?;
        let compiled = match self.cached(wasm) {
            Some(c) => c,
            None => self.compile(wasm)?,
        };
        let pre = self
            .linker(&ifaces)?
            .instantiate_pre(&compiled)
            .map_err(|e| component::import_error(&e, &validated))?;
        let pre =
            bindings::RuntimePre::new(pre).map_err(|e| component::export_error(&e, &validated))?;
        Ok(WasmtimeComponent {
            pre,
            grant: grant.grant().clone(),
        })
    }
}

/// Checks the core module's imports and exports against the grant and the world
/// before it is componentized, with the same `tern_core::abi` checks, in the same
/// order, as wasmi's load: a module that does not fit is refused alike by both. Then
/// its memories and tables against `limits` ([`Sizes::check`]).
fn check_module(wasm: &[u8], grant: &Grant, limits: &Limits) -> Result<Vec<Interface>, Error> {
    use wasmparser::{CompositeInnerType, ExternalKind, Payload, TypeRef};
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule(e.to_string());
    // Function types by type index (`None` for struct and array types), and the type
    // index of every function, imported ones first.
    let mut types: Vec<Option<wasmparser::FuncType>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, Extern)> = Vec::new();
    let mut sizes = Sizes::default();
    let mut ifaces = Vec::new();
    let func = |types: &[Option<wasmparser::FuncType>], index: Option<u32>| {
        let ty = index
            .and_then(|i| types.get(i as usize))
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::InvalidModule("a function with no function type".into()))?;
        let vals = |v: &[wasmparser::ValType]| v.iter().map(|t| val_type(*t)).collect();
        Ok::<_, Error>(Extern::Func {
            params: vals(ty.params()),
            results: vals(ty.results()),
        })
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        sizes.read(&payload)?;
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(invalid)?.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    let iface = check_import(import.module, import.name, grant)?;
                    let found = match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            funcs.push(t);
                            func(&types, Some(t))?
                        }
                        TypeRef::Memory(_) => Extern::Memory,
                        TypeRef::Table(_) => Extern::Table,
                        TypeRef::Global(_) => Extern::Global,
                        TypeRef::Tag(_) => Extern::Tag,
                    };
                    check_import_type(import.module, import.name, iface, &found)?;
                    if !ifaces.contains(&iface) {
                        ifaces.push(iface);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    funcs.push(ty.map_err(invalid)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    let found = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            func(&types, funcs.get(export.index as usize).copied())?
                        }
                        ExternalKind::Memory => Extern::Memory,
                        ExternalKind::Table => Extern::Table,
                        ExternalKind::Global => Extern::Global,
                        ExternalKind::Tag => Extern::Tag,
                    };
                    exports.push((export.name.to_string(), found));
                }
            }
            _ => {}
        }
    }
    check_exports(|name| {
        exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
    })?;
    sizes.check(limits)?;
    Ok(ifaces)
}

/// The memories and tables a core module defines, or every core module of a
/// component, read from its sections.
#[derive(Default)]
struct Sizes {
    memories: Vec<wasmparser::MemoryType>,
    tables: Vec<wasmparser::TableType>,
}

impl Sizes {
    /// Those of `wasm`, a core module or a component.
    fn of(wasm: &[u8]) -> Result<Sizes, Error> {
        let mut sizes = Sizes::default();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            sizes.read(&payload.map_err(|e| Error::InvalidModule(e.to_string()))?)?;
        }
        Ok(sizes)
    }

    /// Adds a payload's memories or tables, if it is their section.
    fn read(&mut self, payload: &wasmparser::Payload<'_>) -> Result<(), Error> {
        let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule(e.to_string());
        match payload {
            wasmparser::Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    self.memories.push(memory.map_err(invalid)?);
                }
            }
            wasmparser::Payload::TableSection(reader) => {
                for table in reader.clone() {
                    self.tables.push(table.map_err(invalid)?.ty);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A memory or table whose initial size is over `limits` is
    /// [`Error::MemoryLimit`], as on wasmi, whose limiter refuses to create it (at
    /// instantiation: wasmi does not show a module's memories before). Checked here
    /// because Wasmtime's pooling allocator, sized by the same limits, refuses such a
    /// module when it is compiled, in its own words.
    fn check(&self, limits: &Limits) -> Result<(), Error> {
        let memory_limit = Error::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
        for memory in &self.memories {
            let bytes = u128::from(memory.initial) << memory.page_size_log2.unwrap_or(16);
            if bytes > u128::from(limits.memory_bytes) {
                return Err(memory_limit);
            }
        }
        if self
            .tables
            .iter()
            .any(|t| t.initial > u64::from(limits.table_elements))
        {
            return Err(memory_limit);
        }
        Ok(())
    }
}

fn val_type(t: wasmparser::ValType) -> ValType {
    match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(_) => ValType::Ref,
    }
}

fn link(linker: &mut Linker<Ctx>, iface: Interface) -> wasmtime::Result<()> {
    type D = HasSelf<Ctx>;
    match iface {
        Interface::Log => wit::log::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::Clock => wit::clock::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::Sensors => wit::sensors::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::Gpio => wit::gpio::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::Kv => wit::kv::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::Publish => wit::publish::add_to_linker::<Ctx, D>(linker, |c| c),
        Interface::WasiLogging => {
            bindings::wasi::logging::logging::add_to_linker::<Ctx, D>(linker, |c| c)
        }
        Interface::WasiMonotonicClock => {
            bindings::wasi::clocks::monotonic_clock::add_to_linker::<Ctx, D>(linker, |c| c)
        }
        Interface::WasiKeyvalueStore => {
            bindings::wasi::keyvalue::store::add_to_linker::<Ctx, D>(linker, |c| c)
        }
    }
}

impl tern_core::Engine for WasmtimeEngine {
    type Component = WasmtimeComponent;
    type Instance = WasmtimeInstance;

    fn load(&self, wasm: &[u8], grant: &Granted) -> Result<WasmtimeComponent, Error> {
        if tern_core::image::is_image(wasm) {
            return Err(Error::InvalidModule(features::IMAGE_ON_WASMTIME.into()));
        }
        if wasmparser::Parser::is_component(wasm) {
            return self.load_component(wasm, grant);
        }
        // In wasmi's order: validation (under the engine's features) first, then the
        // fit to the grant and the world. A cached module has been validated.
        let cached = self.cached(wasm);
        if cached.is_none() {
            features::validate(wasm, EngineKind::Wasmtime)?;
        }
        let ifaces = check_module(wasm, grant, &self.limits)?;
        let component = match cached {
            Some(c) => c,
            None => self.compile(wasm)?,
        };
        let linker = self.linker(&ifaces)?;
        let engine_err = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::RuntimePre::new)
            .map_err(engine_err)?;
        Ok(WasmtimeComponent {
            pre,
            grant: grant.grant().clone(),
        })
    }

    fn instantiate(
        &self,
        component: &WasmtimeComponent,
        platform: Box<dyn Platform + Send>,
    ) -> Result<WasmtimeInstance, Error> {
        let ctx = Ctx {
            host: Host::new(component.grant.clone(), platform),
            limiter: Limiter {
                memory_bytes: self.limits.memory_bytes as usize,
                table_elements: self.limits.table_elements as usize,
                hit: false,
            },
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|c| &mut c.limiter);
        store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let bindings = component.pre.instantiate(&mut store).map_err(|e| {
            // A start function's or `_initialize`'s trap or ABI fault as in a call;
            // anything else (the pool is full) is the engine's, without a backtrace.
            classify(&e, &store, &self.limits)
                .unwrap_or_else(|| Error::Engine(e.root_cause().to_string()))
        })?;
        Ok(WasmtimeInstance {
            store,
            bindings,
            limits: self.limits,
            poisoned: false,
        })
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

/// Turns a Wasmtime error from an export call into Tern's typed error.
fn map_error(e: wasmtime::Error, store: &Store<Ctx>, limits: &Limits) -> Error {
    // Outside a trap, a synchronous call fails only when lifting or lowering a value
    // breaks the canonical ABI: one Wasmtime words in a way `abi_fault` does not know
    // is still an ABI fault, with the generic summary, never Wasmtime's text.
    classify(&e, store, limits).unwrap_or_else(|| Error::Abi(AbiFault::Other.summary().into()))
}

/// The typed error for what both engines report alike: limits, traps and ABI faults,
/// with wasmi's classes and wording. Wasmtime's own text (and the wasm backtrace it
/// attaches to errors raised inside wasm) never reaches a message.
fn classify(e: &wasmtime::Error, store: &Store<Ctx>, limits: &Limits) -> Option<Error> {
    if store.data().limiter.hit {
        return Some(Error::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        });
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Some(match trap {
            Trap::OutOfFuel => Error::FuelExhausted {
                budget: limits.fuel_per_call,
            },
            Trap::StackOverflow => Error::StackOverflow,
            trap => Error::Trap(trap_kind(*trap).message().into()),
        });
    }
    abi_fault(e).map(|fault| Error::Abi(fault.summary().into()))
}

/// A Wasmtime trap in the wording both engines report.
fn trap_kind(trap: Trap) -> TrapKind {
    match trap {
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
        Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
        Trap::BadSignature => TrapKind::BadSignature,
        Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
        Trap::IntegerOverflow => TrapKind::IntegerOverflow,
        Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
        _ => TrapKind::Other,
    }
}

/// The ABI fault a Wasmtime error reports, if it is one: the kinds `tern-cabi` gives
/// on wasmi ([`AbiFault`]), from the messages of Wasmtime 48's component runtime
/// (`runtime/component/func/{host,typed,options}.rs`, `func.rs`, `values.rs` and the
/// `ComponentType` derive), looked for along the error's chain, past the wasm
/// backtrace Wasmtime adds as context. Public for the differential tests, which hold
/// any type's faults on both engines to one summary.
pub fn abi_fault(e: &wasmtime::Error) -> Option<AbiFault> {
    // Raised with `?` from `str::from_utf8` and `char::try_from`.
    if e.downcast_ref::<std::str::Utf8Error>().is_some() {
        return Some(AbiFault::InvalidUtf8);
    }
    if e.downcast_ref::<std::char::CharTryFromError>().is_some() {
        return Some(AbiFault::InvalidChar);
    }
    e.chain()
        .find_map(|cause| wasmtime_abi_fault(&cause.to_string()))
}

/// One Wasmtime message as an [`AbiFault`].
fn wasmtime_abi_fault(message: &str) -> Option<AbiFault> {
    Some(match message {
        // A host function's parameter area or return area (`validate_inbounds`):
        // no `tern:edge` import has more than 16 flat parameters, so none takes them
        // in memory, and this is the return area, as wasmi reports it.
        "pointer not aligned" => AbiFault::ReturnAreaMisaligned,
        // The pointer an export returned.
        "return pointer not aligned" => AbiFault::ResultMisaligned,
        "list pointer is not aligned" => AbiFault::ListMisaligned,
        "realloc return: result not aligned" => AbiFault::ReallocMisaligned,
        "pointer out of bounds"
        | "pointer size overflow"
        | "pointer out of bounds of memory"
        | "string pointer/length out of bounds of memory"
        | "list pointer/length out of bounds of memory"
        | "realloc return: beyond end of memory" => AbiFault::OutOfBounds,
        "invalid option discriminant" | "invalid expected discriminant" => {
            AbiFault::InvalidDiscriminant
        }
        m if m.starts_with("string pointer not aligned") => AbiFault::StringMisaligned,
        // Variants and enums (the derive), and values lifted dynamically.
        m if m.starts_with("unexpected discriminant: ")
            || (m.starts_with("discriminant ") && m.contains(" out of range ")) =>
        {
            AbiFault::InvalidDiscriminant
        }
        m if m.starts_with("invalid utf-8 sequence")
            || m.starts_with("incomplete utf-8 byte sequence") =>
        {
            AbiFault::InvalidUtf8
        }
        // Resource handles (`vm/component/handle_table.rs`, `resources.rs`).
        m if m.starts_with("unknown handle index ") => AbiFault::UnknownHandle,
        m if m.starts_with("handle index ") && m.contains(" used with the wrong type") => {
            AbiFault::HandleType
        }
        m if m.starts_with("cannot allocate another handle") => AbiFault::HandleTableFull,
        _ => return None,
    })
}

/// One running instance on Wasmtime.
pub struct WasmtimeInstance {
    store: Store<Ctx>,
    bindings: bindings::Runtime,
    limits: Limits,
    poisoned: bool,
}

impl WasmtimeInstance {
    fn call<T>(
        &mut self,
        run: impl FnOnce(&bindings::Runtime, &mut Store<Ctx>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::Engine(e.to_string()))?;
        run(&self.bindings, &mut self.store).map_err(|e| {
            self.poisoned = true;
            map_error(e, &self.store, &self.limits)
        })
    }
}

impl tern_core::Instance for WasmtimeInstance {
    fn init(&mut self, config: &[(String, String)]) -> Result<Result<(), String>, Error> {
        self.call(|b, s| b.call_init(s, config))
    }

    fn on_event(
        &mut self,
        event: &tern_core::Event,
    ) -> Result<Result<Vec<tern_core::Output>, String>, Error> {
        let event = convert::event(event);
        self.call(|b, s| b.call_on_event(s, &event))
            .map(|r| r.map(|outs| outs.into_iter().map(convert::output).collect()))
    }

    fn health_check(&mut self) -> Result<Result<(), String>, Error> {
        self.call(|b, s| b.call_health_check(s))
    }

    fn host(&mut self) -> &mut Host {
        &mut self.store.data_mut().host
    }
}
