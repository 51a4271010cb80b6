//! Running a device image (`tern_core::image::DeviceImage`): a component's core
//! modules, instantiated and linked by replaying its definitions in order.
//!
//! What the component model would do at instantiation, done with core wasm: each
//! `Step` appends one item to its index space (component functions, core functions,
//! memories, tables, globals, core instances) and refers only to items made before
//! it (`DeviceImage::check`). A host import becomes a host function over the
//! canonical ABI with the lowering's own `memory` and `realloc`; a lowering of
//! another component's lifted export becomes an adapter that copies values from one
//! memory to the other; a lifted export becomes an [`Export`]. wit-component's shim
//! and fixup modules (its way to lower an import whose options name the memory of a
//! module not yet instantiated) run as the ordinary core modules they are.
//!
//! Loading checks everything that does not need a store: the image decodes, every
//! host import is in the runtime's world, granted, and has the world's type, the
//! exports `tern_core::Instance` calls exist with the world's types, and every module
//! validates under wasmi's features.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use tern_cabi::{FuncAbi, ResourceId, TypeId, Types};
use tern_core::abi::check_import;
use tern_core::edge::EdgeFn;
use tern_core::image::{self, CanonOptions, CoreFunc, CoreInstance, CoreItem, Func, Step};
use tern_core::{Error, Granted};
use wasmi::{Extern, ExternType, MemoryType, Module, Store};

use crate::cabi::{self, Export, HostImport, MemSource, Realloc};
use crate::{EXPORTS, EngineWorld, StoreData, memory};

/// A device image, loaded: its modules validated, its host imports resolved.
pub(crate) struct Plan {
    steps: Vec<Step>,
    modules: Vec<Module>,
    /// One per component function (index space "funcs"), in order.
    funcs: Vec<PlanFunc>,
    /// The modules whose memories the engine provides ([`memory`]), and their types:
    /// one per component of a composed app, each given its own share of the board's
    /// buffer ([`memory::split`]).
    pub(crate) provided_memory: Vec<MemoryType>,
    /// The module each of [`Plan::provided_memory`] is for, in the same order.
    provided_to: Vec<u32>,
    /// The component functions `init`, `on-event`, `health-check` are.
    exports: [u32; 3],
    pub(crate) types: Arc<Types>,
    /// How many core instances the image makes (the store's limiter allows them).
    pub(crate) instances: usize,
    /// How many memories and tables its modules define and import.
    pub(crate) memories: usize,
    pub(crate) tables: usize,
    /// How many resource-handle tables its component instances have.
    pub(crate) handle_tables: usize,
}

/// A component function, as the plan calls it.
enum PlanFunc {
    /// A host import: what serves it and how.
    Host(Arc<HostImport>),
    /// A lifted core function: its calling convention.
    Lift(FuncAbi),
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidModule(what.into())
}

/// A function's parameter and result types.
type Signature<'a> = (&'a [TypeId], Option<TypeId>);

/// Whether function `a` (its types in `at`) has the type of function `b` (in `bt`),
/// `resources` deciding whether a resource of `at`'s handles is one of `bt`'s.
fn same_func(
    at: &Types,
    a: Signature<'_>,
    bt: &Types,
    b: Signature<'_>,
    resources: &dyn Fn(ResourceId, ResourceId) -> bool,
) -> bool {
    a.0.len() == b.0.len()
        && a.0
            .iter()
            .zip(b.0)
            .all(|(x, y)| at.same_with(*x, bt, *y, resources))
        && match (a.1, b.1) {
            (None, None) => true,
            (Some(x), Some(y)) => at.same_with(x, bt, y, resources),
            _ => false,
        }
}

/// Whether resource `r` of an image's list is the world's resource `w`: the same
/// interface (any patch release of a WASI 0.2 interface, as imports match) and name.
fn same_resource(
    image: &[image::Resource],
    world: &[image::Resource],
    r: ResourceId,
    w: ResourceId,
) -> bool {
    match (image.get(r.0 as usize), world.get(w.0 as usize)) {
        (Some(r), Some(w)) => {
            let iface = tern_core::Interface::from_import_module(&r.interface);
            r.name == w.name
                && iface.is_some()
                && iface == tern_core::Interface::from_import_module(&w.interface)
        }
        _ => false,
    }
}

impl Plan {
    /// Decodes and checks an encoded image against the runtime's `world` and
    /// `grant`; `rewrite_memory` when the engine lends the linear memory.
    pub(crate) fn load(
        engine: &wasmi::Engine,
        bytes: &[u8],
        grant: &Granted,
        world: &EngineWorld,
        rewrite_memory: bool,
    ) -> Result<Plan, Error> {
        let image = image::decode(bytes).map_err(|e| invalid(e.to_string()))?;
        let types = Arc::new(image.types);
        let mut modules = Vec::with_capacity(image.modules.len());
        let (mut provided_memory, mut provided_to) = (Vec::new(), Vec::new());
        let (mut memories, mut tables) = (0, 0);
        for (i, wasm) in image.modules.iter().enumerate() {
            let rewritten = if rewrite_memory {
                memory::import_defined_memory(wasm)
            } else {
                None
            };
            let module = Module::new(engine, rewritten.as_deref().unwrap_or(wasm))
                .map_err(|e| invalid(format!("device image module {i}: {e}")))?;
            for import in module.imports() {
                // wasmi's limiter counts an imported table or memory again in each
                // instance that imports it.
                match import.ty() {
                    ExternType::Memory(_) => memories += 1,
                    ExternType::Table(_) => tables += 1,
                    _ => {}
                }
                if let ExternType::Memory(ty) = import.ty()
                    && rewritten.is_some()
                    && import.module() == memory::MODULE
                {
                    provided_memory.push(*ty);
                    provided_to.push(i as u32);
                }
            }
            // Validated by wasmi above, so the walk follows it.
            let (t, m) = memory::defined_tables_and_memories(rewritten.as_deref().unwrap_or(wasm))
                .unwrap_or((0, 0));
            tables += t;
            memories += m;
            modules.push(module);
        }
        let mut funcs = Vec::new();
        let mut instances = 0;
        for step in &image.steps {
            match step {
                Step::Func(Func::Import(h)) => {
                    let iface = check_import(&h.interface, &h.name, grant.grant())?;
                    let item = format!("{}#{}", h.interface, h.name);
                    let want = world
                        .import(iface.import_module(), &h.name)
                        .ok_or_else(|| Error::UnknownImport {
                            module: h.interface.clone(),
                            name: h.name.clone(),
                        })?;
                    let (ours, theirs) = (&h.ty, &want.ty);
                    let resources = |r, w| same_resource(&image.resources, &world.resources, r, w);
                    if !same_func(
                        &types,
                        (&ours.params, ours.result),
                        &world.types,
                        (&theirs.params, theirs.result),
                        &resources,
                    ) {
                        return Err(Error::TypeMismatch {
                            item,
                            expected: "the type the runtime's world gives it".into(),
                            found: "another type in the device image".into(),
                        });
                    }
                    let f = EdgeFn::of(iface, &h.name).ok_or_else(|| {
                        Error::Engine(format!(
                            "{item} is in the world but has no host implementation"
                        ))
                    })?;
                    let abi =
                        FuncAbi::new(&types, &h.ty).map_err(|e| invalid(format!("{item}: {e}")))?;
                    funcs.push(PlanFunc::Host(Arc::new(HostImport::new(
                        types.clone(),
                        abi,
                        f,
                    ))));
                }
                Step::Func(Func::Lift { ty, .. }) => {
                    let abi = FuncAbi::new(&types, ty)
                        .map_err(|e| invalid(format!("a lifted function: {e}")))?;
                    funcs.push(PlanFunc::Lift(abi));
                }
                Step::Instance(CoreInstance::Instantiate { .. }) => instances += 1,
                _ => {}
            }
        }
        let mut exports = [0; 3];
        for (i, (slot, name)) in exports.iter_mut().zip(EXPORTS).enumerate() {
            let export = image
                .exports
                .iter()
                .find(|e| e.name == name)
                .ok_or(Error::MissingExport(name))?;
            let Some(PlanFunc::Lift(abi)) = funcs.get(export.func as usize) else {
                return Err(invalid(format!(
                    "`{name}` is not a lifted function of the image"
                )));
            };
            let want = &world.exports[i];
            if !same_func(
                &types,
                (abi.params(), abi.result()),
                &world.types,
                (want.params(), want.result()),
                &|_, _| false,
            ) {
                return Err(Error::TypeMismatch {
                    item: name.into(),
                    expected: "the type the runtime's world gives it".into(),
                    found: "another type in the device image".into(),
                });
            }
            *slot = export.func;
        }
        Ok(Plan {
            steps: image.steps,
            modules,
            funcs,
            provided_memory,
            provided_to,
            exports,
            types,
            instances,
            memories,
            tables,
            handle_tables: image.tables as usize,
        })
    }

    /// A lifted function as a call through its canonical options; `None` for a host
    /// import.
    fn export_of(&self, f: &RtFunc) -> Option<Export> {
        let RtFunc::Lift {
            plan,
            core,
            options,
        } = f
        else {
            return None;
        };
        let Some(PlanFunc::Lift(abi)) = self.funcs.get(*plan) else {
            return None;
        };
        Some(Export::new(
            *core,
            abi.clone(),
            options.memory,
            options.realloc,
            options.post_return,
        ))
    }

    /// Replays the steps in `store`; `provided` are the engine's memories for
    /// [`Plan::provided_memory`]'s modules, in its order. Returns the three exports.
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<StoreData>,
        provided: &[wasmi::Memory],
    ) -> Result<[Export; 3], Fault> {
        let mut rt = Rt::default();
        let mut next_func = 0usize;
        for (index, step) in self.steps.iter().enumerate() {
            let broken = |what: &str| Fault::Plan(format!("device image step {index}: {what}"));
            match step {
                Step::Func(Func::Import(_)) => {
                    rt.funcs.push(RtFunc::Host(next_func));
                    next_func += 1;
                }
                Step::Func(Func::Lift {
                    core_func, options, ..
                }) => {
                    let core = *rt
                        .core_funcs
                        .get(*core_func as usize)
                        .ok_or_else(|| broken("no such core function"))?;
                    let options = rt.options(store, options).map_err(&broken)?;
                    rt.funcs.push(RtFunc::Lift {
                        plan: next_func,
                        core,
                        options,
                    });
                    next_func += 1;
                }
                Step::CoreFunc(CoreFunc::Export(e)) => {
                    let f = rt
                        .export(store, e.instance, &e.name)
                        .and_then(Extern::into_func)
                        .ok_or_else(|| broken(&format!("no function `{}` to alias", e.name)))?;
                    rt.core_funcs.push(f);
                }
                Step::CoreFunc(CoreFunc::Lower {
                    func,
                    options,
                    table,
                }) => {
                    let caller = rt.options(store, options).map_err(&broken)?;
                    let mem = MemSource::Fixed(caller.memory, caller.realloc, *table);
                    let f = match rt.funcs.get(*func as usize) {
                        Some(RtFunc::Host(i)) => match self.funcs.get(*i) {
                            Some(PlanFunc::Host(imp)) => cabi::host_func(store, imp.clone(), mem),
                            _ => return Err(broken("not a host import")),
                        },
                        Some(lifted @ RtFunc::Lift { .. }) => {
                            let callee = self
                                .export_of(lifted)
                                .ok_or_else(|| broken("not a lifted function"))?;
                            let abi = callee.abi().clone();
                            cabi::adapter(store, self.types.clone(), abi, mem, callee)
                        }
                        None => return Err(broken("no such function")),
                    };
                    rt.core_funcs.push(f);
                }
                Step::Memory(e) => {
                    let m = rt
                        .export(store, e.instance, &e.name)
                        .and_then(Extern::into_memory)
                        .ok_or_else(|| broken(&format!("no memory `{}` to alias", e.name)))?;
                    rt.memories.push(m);
                }
                Step::Table(e) => {
                    let t = rt
                        .export(store, e.instance, &e.name)
                        .and_then(Extern::into_table)
                        .ok_or_else(|| broken(&format!("no table `{}` to alias", e.name)))?;
                    rt.tables.push(t);
                }
                Step::Global(e) => {
                    let g = rt
                        .export(store, e.instance, &e.name)
                        .and_then(Extern::into_global)
                        .ok_or_else(|| broken(&format!("no global `{}` to alias", e.name)))?;
                    rt.globals.push(g);
                }
                Step::Instance(CoreInstance::Instantiate { module, args }) => {
                    let m = self
                        .modules
                        .get(*module as usize)
                        .ok_or_else(|| broken("no such module"))?;
                    let lent = self
                        .provided_to
                        .iter()
                        .position(|i| i == module)
                        .and_then(|k| provided.get(k).copied());
                    let mut externs = Vec::new();
                    for import in m.imports() {
                        if let (Some(mem), memory::MODULE) = (lent, import.module()) {
                            externs.push(Extern::Memory(mem));
                            continue;
                        }
                        let arg = args
                            .iter()
                            .find(|(name, _)| name == import.module())
                            .ok_or_else(|| {
                                broken(&format!(
                                    "nothing given for import module `{}`",
                                    import.module()
                                ))
                            })?;
                        let item = rt.export(store, arg.1, import.name()).ok_or_else(|| {
                            broken(&format!("`{}` has no `{}`", import.module(), import.name()))
                        })?;
                        externs.push(item);
                    }
                    let instance =
                        wasmi::Instance::new(&mut *store, m, &externs).map_err(Fault::Wasm)?;
                    rt.instances.push(RtInstance::Core(instance));
                }
                Step::Instance(CoreInstance::Exports(items)) => {
                    let mut bag = Vec::with_capacity(items.len());
                    for (name, item) in items {
                        let e = match *item {
                            CoreItem::Func(i) => {
                                rt.core_funcs.get(i as usize).map(|f| Extern::Func(*f))
                            }
                            CoreItem::Memory(i) => {
                                rt.memories.get(i as usize).map(|m| Extern::Memory(*m))
                            }
                            CoreItem::Table(i) => {
                                rt.tables.get(i as usize).map(|t| Extern::Table(*t))
                            }
                            CoreItem::Global(i) => {
                                rt.globals.get(i as usize).map(|g| Extern::Global(*g))
                            }
                        }
                        .ok_or_else(|| broken("an item not defined before it"))?;
                        bag.push((name.clone(), e));
                    }
                    rt.instances.push(RtInstance::Bag(bag));
                }
            }
        }
        let export = |i: usize| -> Result<Export, Fault> {
            rt.funcs
                .get(self.exports[i] as usize)
                .and_then(|f| self.export_of(f))
                .ok_or_else(|| Fault::Plan(format!("`{}` is not lifted", EXPORTS[i])))
        };
        Ok([export(0)?, export(1)?, export(2)?])
    }
}

/// Why a plan did not instantiate.
pub(crate) enum Fault {
    /// wasmi refused or trapped (mapped like any call's error).
    Wasm(wasmi::Error),
    /// The image's definitions do not fit together.
    Plan(String),
}

/// Canonical options resolved to this store's items.
#[derive(Clone, Copy, Default)]
struct Options {
    memory: Option<wasmi::Memory>,
    realloc: Option<Realloc>,
    post_return: Option<wasmi::Func>,
}

/// A component function in this store.
enum RtFunc {
    /// Index into [`Plan::funcs`].
    Host(usize),
    /// A lifted core function, [`Plan::funcs`] index for its ABI.
    Lift {
        plan: usize,
        core: wasmi::Func,
        options: Options,
    },
}

enum RtInstance {
    Core(wasmi::Instance),
    Bag(Vec<(String, Extern)>),
}

/// The index spaces as the steps fill them.
#[derive(Default)]
struct Rt {
    funcs: Vec<RtFunc>,
    core_funcs: Vec<wasmi::Func>,
    memories: Vec<wasmi::Memory>,
    tables: Vec<wasmi::Table>,
    globals: Vec<wasmi::Global>,
    instances: Vec<RtInstance>,
}

impl Rt {
    fn export(&self, store: &Store<StoreData>, instance: u32, name: &str) -> Option<Extern> {
        match self.instances.get(instance as usize)? {
            RtInstance::Core(i) => i.get_export(store, name),
            RtInstance::Bag(items) => items.iter().find(|(n, _)| n == name).map(|(_, e)| *e),
        }
    }

    fn options(&self, store: &Store<StoreData>, o: &CanonOptions) -> Result<Options, &'static str> {
        let memory = match o.memory {
            Some(i) => Some(*self.memories.get(i as usize).ok_or("no such memory")?),
            None => None,
        };
        let realloc = match o.realloc {
            Some(i) => Some(
                self.core_funcs
                    .get(i as usize)
                    .ok_or("no such realloc")?
                    .typed::<(i32, i32, i32, i32), i32>(store)
                    .map_err(|_| "realloc does not have cabi_realloc's type")?,
            ),
            None => None,
        };
        let post_return = match o.post_return {
            Some(i) => Some(
                *self
                    .core_funcs
                    .get(i as usize)
                    .ok_or("no such post-return")?,
            ),
            None => None,
        };
        Ok(Options {
            memory,
            realloc,
            post_return,
        })
    }
}
