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

mod abi;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use tern_core::abi::{REQUIRED_EXPORTS, check_import};
use tern_core::{Error, Event, Grant, Granted, Host, Limits, Output, Platform};
use wasmi::TrapCode;
use wasmi::{Linker, Memory, Module, Store, TypedFunc};

pub use abi::AbiError;

/// State of one store: the host semantics plus what the shims need.
pub struct StoreData {
    host: Host,
    limiter: Limiter,
    memory: Option<Memory>,
    realloc: Option<TypedFunc<(i32, i32, i32, i32), i32>>,
}

/// Grows memory and tables up to the limits, and traps (recording why) beyond them.
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    hit: bool,
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
        1
    }
    fn tables(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
}

/// The wasmi engine with the limits its instances run under.
pub struct WasmiEngine {
    engine: wasmi::Engine,
    limits: Limits,
}

/// A validated module linked against exactly its grant.
pub struct WasmiComponent {
    module: Module,
    linker: Linker<StoreData>,
    grant: Grant,
}

impl WasmiEngine {
    /// An engine whose instances run under `limits`.
    pub fn new(limits: Limits) -> Self {
        WasmiEngine {
            engine: wasmi::Engine::new(&Self::config(&limits)),
            limits,
        }
    }

    /// The wasmi configuration every Tern engine uses: fuel metering on, the call depth
    /// limit, custom page sizes. Public so that benchmarks measure exactly this.
    pub fn config(limits: &Limits) -> wasmi::Config {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .set_max_recursion_depth(limits.call_depth as usize)
            .wasm_custom_page_sizes(true);
        config
    }
}

impl tern_core::Engine for WasmiEngine {
    type Component = WasmiComponent;
    type Instance = WasmiInstance;

    fn load(&self, wasm: &[u8], grant: &Granted) -> Result<WasmiComponent, Error> {
        let module =
            Module::new(&self.engine, wasm).map_err(|e| Error::InvalidModule(e.to_string()))?;
        let mut linker = Linker::new(&self.engine);
        let mut linked = Vec::new();
        for import in module.imports() {
            let iface = check_import(import.module(), import.name(), grant)?;
            if !linked.contains(&iface) {
                abi::define(&mut linker, iface).map_err(|e| Error::Engine(e.to_string()))?;
                linked.push(iface);
            }
        }
        for name in REQUIRED_EXPORTS {
            if module.get_export(name).is_none() {
                return Err(Error::MissingExport(name));
            }
        }
        Ok(WasmiComponent {
            module,
            linker,
            grant: grant.grant().clone(),
        })
    }

    fn instantiate(
        &self,
        component: &WasmiComponent,
        platform: Box<dyn Platform + Send>,
    ) -> Result<WasmiInstance, Error> {
        let data = StoreData {
            host: Host::new(component.grant.clone(), platform),
            limiter: Limiter {
                memory_bytes: self.limits.memory_bytes as usize,
                table_elements: self.limits.table_elements as usize,
                hit: false,
            },
            memory: None,
            realloc: None,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limiter);
        let fuel = self.limits.fuel_per_call;
        store
            .set_fuel(fuel)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let instance = component
            .linker
            .instantiate_and_start(&mut store, &component.module)
            .map_err(|e| map_error(e, &store, &self.limits))?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or(Error::MissingExport("memory"))?;
        let typed = |store: &Store<StoreData>, name: &'static str| {
            instance
                .get_func(store, name)
                .ok_or(Error::MissingExport(name))
        };
        let realloc = typed(&store, "cabi_realloc")?
            .typed::<(i32, i32, i32, i32), i32>(&store)
            .map_err(|e| Error::InvalidModule(format!("cabi_realloc: {e}")))?;
        let sig = |e: wasmi::Error, name: &str| {
            Error::InvalidModule(format!(
                "`{name}` does not have the tern:edge signature: {e}"
            ))
        };
        let init = typed(&store, "init")?
            .typed::<(i32, i32), i32>(&store)
            .map_err(|e| sig(e, "init"))?;
        let on_event = typed(&store, "on-event")?
            .typed::<(i32, i64, i32, i64, i64), i32>(&store)
            .map_err(|e| sig(e, "on-event"))?;
        let health_check = typed(&store, "health-check")?
            .typed::<(), i32>(&store)
            .map_err(|e| sig(e, "health-check"))?;
        let post = |store: &Store<StoreData>, name: &str| {
            instance
                .get_func(store, name)
                .and_then(|f| f.typed::<i32, ()>(store).ok())
        };
        let post_init = post(&store, "cabi_post_init");
        let post_on_event = post(&store, "cabi_post_on-event");
        let post_health_check = post(&store, "cabi_post_health-check");
        store.data_mut().memory = Some(memory);
        store.data_mut().realloc = Some(realloc);
        Ok(WasmiInstance {
            store,
            limits: self.limits,
            init,
            on_event,
            health_check,
            post_init,
            post_on_event,
            post_health_check,
            poisoned: false,
        })
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

/// One running instance on wasmi.
pub struct WasmiInstance {
    store: Store<StoreData>,
    limits: Limits,
    init: TypedFunc<(i32, i32), i32>,
    on_event: TypedFunc<(i32, i64, i32, i64, i64), i32>,
    health_check: TypedFunc<(), i32>,
    post_init: Option<TypedFunc<i32, ()>>,
    post_on_event: Option<TypedFunc<i32, ()>>,
    post_health_check: Option<TypedFunc<i32, ()>>,
    poisoned: bool,
}

/// Turns a wasmi error into Tern's typed error.
fn map_error(e: wasmi::Error, store: &Store<StoreData>, limits: &Limits) -> Error {
    if store.data().limiter.hit {
        return Error::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    if let Some(abi) = e.downcast_ref::<AbiError>() {
        return Error::Abi(abi.0.clone());
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

/// Trap descriptions in the wording both engines report.
fn trap_text(code: TrapCode) -> &'static str {
    match code {
        TrapCode::UnreachableCodeReached => "wasm `unreachable` instruction executed",
        TrapCode::MemoryOutOfBounds => "out of bounds memory access",
        TrapCode::TableOutOfBounds => "undefined element: out of bounds table access",
        TrapCode::IndirectCallToNull => "uninitialized element",
        TrapCode::IntegerDivisionByZero => "integer divide by zero",
        TrapCode::IntegerOverflow => "integer overflow",
        TrapCode::BadConversionToInteger => "invalid conversion to integer",
        TrapCode::BadSignature => "indirect call type mismatch",
        _ => "trap",
    }
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

    fn post(&mut self, f: Option<TypedFunc<i32, ()>>, ret: i32) -> Result<(), wasmi::Error> {
        match f {
            Some(f) => f.call(&mut self.store, ret),
            None => Ok(()),
        }
    }
}

impl tern_core::Instance for WasmiInstance {
    fn init(&mut self, config: &[(String, String)]) -> Result<Result<(), String>, Error> {
        self.call(|me| {
            let (ptr, len) = abi::lower_config(&mut me.store, config)?;
            let ret = me.init.call(&mut me.store, (ptr, len))?;
            let out = abi::lift_result_unit(&me.store, ret)?;
            me.post(me.post_init, ret)?;
            Ok(out)
        })
    }

    fn on_event(&mut self, event: &Event) -> Result<Result<Vec<Output>, String>, Error> {
        self.call(|me| {
            let params = abi::lower_event(&mut me.store, event)?;
            let ret = me.on_event.call(&mut me.store, params)?;
            let out = abi::lift_outputs(&me.store, ret)?;
            me.post(me.post_on_event, ret)?;
            Ok(out)
        })
    }

    fn health_check(&mut self) -> Result<Result<(), String>, Error> {
        self.call(|me| {
            let ret = me.health_check.call(&mut me.store, ())?;
            let out = abi::lift_result_unit(&me.store, ret)?;
            me.post(me.post_health_check, ret)?;
            Ok(out)
        })
    }

    fn host(&mut self) -> &mut Host {
        &mut self.store.data_mut().host
    }
}
