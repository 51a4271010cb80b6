//! A WIT world as `tern-cabi` descriptions: [`describe_world`].
//!
//! Every function of the world at its core name (wit-bindgen's and wit-component's
//! legacy mangling: import module `tern:edge/clock@0.1.0` field `now-ms`, `$root` for
//! a world-level import, export `on-event` or `tern:ruuvi/decode@0.1.0#decode`), with
//! its parameter and result types in one deduplicated [`Types`] table. What the
//! canonical ABI of `tern-cabi` cannot carry is refused with a [`DescribeError`]
//! that names the function, the parameter or result, the WIT type and the reason.

use std::collections::{HashMap, HashSet};
use std::fmt;

use tern_cabi::{FuncAbi, FuncType, ResourceId, TypeError, TypeId, TypeNode, Types, TypesBuilder};
use tern_core::image::{HostFunc, NamedFunc, Resource, World};
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, LiftLowerAbi, ManglingAndAbi, Resolve,
    ResourceIntrinsic, Type, TypeDefKind, TypeOwner, WasmExport, WasmExportKind, WasmImport,
    WorldId, WorldItem, WorldKey,
};

/// The mangling wit-bindgen uses for core modules and wit-component expects of them
/// by default: the synchronous ABI with the legacy names.
const MANGLING: ManglingAndAbi = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);

/// Which way a function crosses the component's boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The host provides it; the component imports it.
    Import,
    /// The component provides it; the host calls it.
    Export,
}

/// A world's function, for messages: `imported function `get` of
/// `tern:edge/kv@0.1.0``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncName {
    /// Imported or exported.
    pub direction: Direction,
    /// The interface (`tern:edge/kv@0.1.0`), `None` for a world-level function.
    pub interface: Option<String>,
    /// The function's WIT name (`get`, `[method]sensor.read` for a resource method).
    pub name: String,
}

impl fmt::Display for FuncName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::Import => "imported",
            Direction::Export => "exported",
        };
        write!(f, "{dir} function `{}`", self.name)?;
        if let Some(i) = &self.interface {
            write!(f, " of `{i}`")?;
        }
        Ok(())
    }
}

/// Where in a function's signature a refused type is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The parameter of this name.
    Param(String),
    /// The result.
    Result,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Param(name) => write!(f, "parameter `{name}`"),
            Place::Result => f.write_str("the result"),
        }
    }
}

/// A kind of WIT type `tern-cabi` does not describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A handle to a resource the component itself defines (an exported interface's).
    GuestResource,
    /// A handle to a resource no imported interface defines (a world-level resource).
    HostResource,
    /// A handle in an exported function: a host passes no resources to a component.
    ExportedHandle,
    /// `stream<T>`.
    Stream,
    /// `future<T>`.
    Future,
    /// `error-context`.
    ErrorContext,
    /// `list<T, N>`.
    FixedSizeList,
    /// `map<K, V>`.
    Map,
    /// `flags` with more members than the canonical ABI allows (32).
    TooManyFlags(usize),
    /// A resource handle in a component's function type (whether the component or
    /// the host defines the resource is not worked out there).
    Resource,
    /// A type a `Resolve` never has: one of an unresolved package.
    Unresolved,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::GuestResource => f.write_str(
                "handles to resources the component defines are not supported: Tern engines keep \
                 handle tables for the host's resources only (pass the resource's data instead)",
            ),
            Unsupported::HostResource => f.write_str(
                "it is a resource no imported interface defines: Tern's hosts define resources \
                 in interfaces only",
            ),
            Unsupported::ExportedHandle => f.write_str(
                "a Tern host passes no resource handles to a component's exports (pass the \
                 resource's data instead)",
            ),
            Unsupported::Stream | Unsupported::Future | Unsupported::ErrorContext => f.write_str(
                "it belongs to the component model's async ABI, which Tern does not run (use a \
                 synchronous function over lists)",
            ),
            Unsupported::FixedSizeList => f.write_str(
                "fixed-length lists are not in the canonical ABI Tern implements (use a tuple or \
                 a list)",
            ),
            Unsupported::Map => f.write_str(
                "maps are not in the canonical ABI Tern implements (use a list of tuples)",
            ),
            Unsupported::Resource => f.write_str(
                "resource handles cross between a component and its host only: a function one \
                 component lifts for another cannot take or return them",
            ),
            Unsupported::Unresolved => {
                f.write_str("it is not resolved (describe a `Resolve`'s world)")
            }
            Unsupported::TooManyFlags(n) => write!(
                f,
                "it has {n} flags; the canonical ABI allows at most 32 (split it into several \
                 flags types)"
            ),
        }
    }
}

/// Why a world cannot be described for `tern-cabi`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescribeError {
    /// A parameter or result has (or contains) a type `tern-cabi` does not describe.
    Unsupported {
        /// The function.
        func: FuncName,
        /// The parameter or the result.
        place: Place,
        /// The refused type as WIT writes it (`stream<u8>`, `own<sensor>`, `flags
        /// perms`).
        ty: String,
        /// What it is.
        what: Unsupported,
    },
    /// An `async` function.
    Async {
        /// The function.
        func: FuncName,
    },
    /// A resource's constructor, method or static function.
    ResourceFunction {
        /// The function.
        func: FuncName,
        /// The resource's name.
        resource: String,
    },
    /// The types are past a limit of the description (nesting depth, a type's size,
    /// the parameters' size).
    Limit {
        /// The function whose types cross it.
        func: FuncName,
        /// `tern-cabi`'s reason.
        error: TypeError,
    },
    /// Two functions of the world have the same core name.
    Duplicate {
        /// The second one.
        func: FuncName,
    },
}

impl fmt::Display for DescribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescribeError::Unsupported {
                func,
                place,
                ty,
                what,
            } => write!(f, "{func}: {place} has type `{ty}`: {what}"),
            DescribeError::Async { func } => write!(
                f,
                "{func} is async: Tern runs the synchronous canonical ABI only (declare it \
                 without `async`)"
            ),
            DescribeError::ResourceFunction { func, resource } => write!(
                f,
                "{func} belongs to resource `{resource}`, which the component defines: Tern \
                 engines keep handle tables for the host's resources only"
            ),
            DescribeError::Limit { func, error } => write!(f, "{func}: {error}"),
            DescribeError::Duplicate { func } => {
                write!(
                    f,
                    "{func} has the core name of another function of the world"
                )
            }
        }
    }
}

impl std::error::Error for DescribeError {}

/// A refused type, before the function and place are known.
struct Refusal {
    ty: String,
    what: Unsupported,
}

/// Describes every function of `world`: each imported interface's functions and
/// each world-level imported function become [`World::imports`], each world-level
/// exported function and each exported interface's function [`World::exports`], in
/// the world's order, at the core names wit-bindgen gives them.
///
/// Type aliases (`type x = y`, `use`) describe as their target; equal types share
/// one node. The resources of imported interfaces are the host's: numbered in
/// [`World::resources`] in the order handles to them appear, their methods imported
/// at their core names (`[method]bucket.get`), and each with the `[resource-drop]`
/// function a core module imports for `canon resource.drop`. Refused: resources the
/// component defines and handles to them, handles in exported functions, `async`
/// functions, `stream`, `future`,
/// `error-context`, fixed-length lists, `map`, `flags` of more than 32 members, and
/// types past `tern-cabi`'s limits ([`DescribeError`]).
pub fn describe_world(resolve: &Resolve, world: WorldId) -> Result<World, DescribeError> {
    let w = &resolve.worlds[world];
    let exported: HashSet<InterfaceId> = w
        .exports
        .values()
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let imported: HashMap<InterfaceId, String> = w
        .imports
        .iter()
        .filter_map(|(key, item)| match item {
            WorldItem::Interface { id, .. } => Some((*id, resolve.name_world_key(key))),
            _ => None,
        })
        .collect();
    let mut d = Describer {
        resolve,
        exported,
        imported,
        builder: TypesBuilder::new(),
        cache: HashMap::new(),
        types: None,
        resources: Vec::new(),
        resource_ids: HashMap::new(),
        direction: Direction::Import,
    };
    let mut imports: Vec<HostFunc> = Vec::new();
    let mut exports: Vec<NamedFunc> = Vec::new();
    for (key, item) in &w.imports {
        // Each resource the interface defines: its `[resource-drop]`, an owned handle
        // in, nothing out.
        if let WorldItem::Interface { id, .. } = item {
            for ty in resolve.interfaces[*id].types.values() {
                if !matches!(resolve.types[*ty].kind, TypeDefKind::Resource) {
                    continue;
                }
                let resource = d.resource(*ty).map_err(|what| DescribeError::Unsupported {
                    func: FuncName {
                        direction: Direction::Import,
                        interface: Some(resolve.name_world_key(key)),
                        name: format!(
                            "[resource-drop]{}",
                            resolve.types[*ty].name.as_deref().unwrap_or("?")
                        ),
                    },
                    place: Place::Param("self".into()),
                    ty: d.type_name(&Type::Id(*ty)),
                    what,
                })?;
                let own = d.builder.add(TypeNode::Own(resource));
                let (module, field) = resolve.wasm_import_name(
                    MANGLING,
                    WasmImport::ResourceIntrinsic {
                        interface: Some(key),
                        resource: *ty,
                        intrinsic: ResourceIntrinsic::ImportedDrop,
                    },
                );
                imports.push(HostFunc {
                    interface: module,
                    name: field,
                    ty: FuncType {
                        params: vec![own],
                        result: None,
                    },
                });
            }
        }
        for (interface, func) in functions(resolve, key, item) {
            let name = FuncName {
                direction: Direction::Import,
                interface: interface.map(|k| resolve.name_world_key(k)),
                name: func.name.clone(),
            };
            let ty = d.function(&name, func)?;
            let (module, field) =
                resolve.wasm_import_name(MANGLING, WasmImport::Func { interface, func });
            if imports
                .iter()
                .any(|h| h.interface == module && h.name == field)
            {
                return Err(DescribeError::Duplicate { func: name });
            }
            imports.push(HostFunc {
                interface: module,
                name: field,
                ty,
            });
        }
    }
    d.direction = Direction::Export;
    for (key, item) in &w.exports {
        for (interface, func) in functions(resolve, key, item) {
            let name = FuncName {
                direction: Direction::Export,
                interface: interface.map(|k| resolve.name_world_key(k)),
                name: func.name.clone(),
            };
            let ty = d.function(&name, func)?;
            let core = resolve.wasm_export_name(
                MANGLING,
                WasmExport::Func {
                    interface,
                    func,
                    kind: WasmExportKind::Normal,
                },
            );
            if exports.iter().any(|e| e.name == core) {
                return Err(DescribeError::Duplicate { func: name });
            }
            exports.push(NamedFunc { name: core, ty });
        }
    }
    let name = world_name(resolve, world);
    let resources = std::mem::take(&mut d.resources);
    let types = d.finish(&name)?;
    Ok(World {
        name,
        types,
        imports,
        exports,
        resources,
    })
}

/// The functions an import or export of a world brings, with the interface they are
/// in (`None` at the world level).
fn functions<'a>(
    resolve: &'a Resolve,
    key: &'a WorldKey,
    item: &'a WorldItem,
) -> Vec<(Option<&'a WorldKey>, &'a Function)> {
    match item {
        WorldItem::Function(f) => vec![(None, f)],
        WorldItem::Interface { id, .. } => resolve.interfaces[*id]
            .functions
            .values()
            .map(|f| (Some(key), f))
            .collect(),
        WorldItem::Type { .. } => Vec::new(),
    }
}

/// `tern:edge/runtime@0.1.0`.
fn world_name(resolve: &Resolve, world: WorldId) -> String {
    let w = &resolve.worlds[world];
    match w.package.map(|p| &resolve.packages[p].name) {
        Some(p) => {
            let mut s = format!("{}:{}/{}", p.namespace, p.name, w.name);
            if let Some(v) = &p.version {
                s.push_str(&format!("@{v}"));
            }
            s
        }
        None => w.name.clone(),
    }
}

struct Describer<'a> {
    resolve: &'a Resolve,
    /// Interfaces the world exports: the resources they define are the component's.
    exported: HashSet<InterfaceId>,
    /// Interfaces the world imports, with their core import module names: the
    /// resources they define are the host's.
    imported: HashMap<InterfaceId, String>,
    builder: TypesBuilder,
    cache: HashMap<wit_parser::TypeId, TypeId>,
    /// The table as validated after the last function.
    types: Option<Types>,
    /// The host's resources handles refer to, by `ResourceId`.
    resources: Vec<Resource>,
    resource_ids: HashMap<wit_parser::TypeId, ResourceId>,
    /// Whether the function being described is imported or exported.
    direction: Direction,
}

impl Describer<'_> {
    /// Describes `f`'s parameters and result, and checks that `tern-cabi` accepts the
    /// table so far and the function's calling convention.
    fn function(&mut self, name: &FuncName, f: &Function) -> Result<FuncType, DescribeError> {
        match &f.kind {
            FunctionKind::Freestanding => {}
            FunctionKind::AsyncFreestanding
            | FunctionKind::AsyncMethod(_)
            | FunctionKind::AsyncStatic(_) => {
                return Err(DescribeError::Async { func: name.clone() });
            }
            FunctionKind::Method(r) | FunctionKind::Static(r) | FunctionKind::Constructor(r) => {
                // A host resource's function is a host function like any other (its
                // `self` and results are handles in its type); the component's are
                // refused.
                if self.direction == Direction::Export || self.resource(*r).is_err() {
                    return Err(DescribeError::ResourceFunction {
                        func: name.clone(),
                        resource: self.type_name(&Type::Id(*r)),
                    });
                }
            }
        }
        let refused = |place: Place| {
            let func = name.clone();
            move |r: Refusal| DescribeError::Unsupported {
                func,
                place,
                ty: r.ty,
                what: r.what,
            }
        };
        let mut params = Vec::with_capacity(f.params.len());
        for p in &f.params {
            params.push(
                self.ty(&p.ty)
                    .map_err(refused(Place::Param(p.name.clone())))?,
            );
        }
        let result = match &f.result {
            Some(t) => Some(self.ty(t).map_err(refused(Place::Result))?),
            None => None,
        };
        let ty = FuncType { params, result };
        // Checked per function, so that a limit names the function that crosses it.
        let limit = |error| DescribeError::Limit {
            func: name.clone(),
            error,
        };
        let types = self.builder.clone().finish().map_err(limit)?;
        FuncAbi::new(&types, &ty).map_err(limit)?;
        self.types = Some(types);
        Ok(ty)
    }

    /// The table every function was checked against; for a world without functions,
    /// the empty table.
    fn finish(self, world: &str) -> Result<Types, DescribeError> {
        match self.types {
            Some(types) => Ok(types),
            // The empty table is valid: this error is never seen.
            None => TypesBuilder::new()
                .finish()
                .map_err(|error| DescribeError::Limit {
                    func: FuncName {
                        direction: Direction::Export,
                        interface: None,
                        name: world.to_string(),
                    },
                    error,
                }),
        }
    }

    fn ty(&mut self, t: &Type) -> Result<TypeId, Refusal> {
        let node = match t {
            Type::Bool => TypeNode::Bool,
            Type::U8 => TypeNode::U8,
            Type::U16 => TypeNode::U16,
            Type::U32 => TypeNode::U32,
            Type::U64 => TypeNode::U64,
            Type::S8 => TypeNode::S8,
            Type::S16 => TypeNode::S16,
            Type::S32 => TypeNode::S32,
            Type::S64 => TypeNode::S64,
            Type::F32 => TypeNode::F32,
            Type::F64 => TypeNode::F64,
            Type::Char => TypeNode::Char,
            Type::String => TypeNode::String,
            Type::ErrorContext => return Err(self.refuse(t, Unsupported::ErrorContext)),
            Type::Id(id) => return self.typedef(*id),
        };
        Ok(self.builder.add(node))
    }

    fn opt(&mut self, t: &Option<Type>) -> Result<Option<TypeId>, Refusal> {
        t.as_ref().map(|t| self.ty(t)).transpose()
    }

    fn typedef(&mut self, id: wit_parser::TypeId) -> Result<TypeId, Refusal> {
        if let Some(t) = self.cache.get(&id) {
            return Ok(*t);
        }
        let me = Type::Id(id);
        let node = match &self.resolve.types[id].kind {
            TypeDefKind::Type(t) => {
                let t = self.ty(t)?;
                self.cache.insert(id, t);
                return Ok(t);
            }
            TypeDefKind::Record(r) => TypeNode::Record(
                r.fields
                    .iter()
                    .map(|f| self.ty(&f.ty))
                    .collect::<Result<_, _>>()?,
            ),
            TypeDefKind::Tuple(t) => TypeNode::Tuple(
                t.types
                    .iter()
                    .map(|t| self.ty(t))
                    .collect::<Result<_, _>>()?,
            ),
            TypeDefKind::Variant(v) => TypeNode::Variant(
                v.cases
                    .iter()
                    .map(|c| self.opt(&c.ty))
                    .collect::<Result<_, _>>()?,
            ),
            TypeDefKind::Enum(e) => TypeNode::Enum(count(e.cases.len())),
            TypeDefKind::Flags(f) => {
                if f.flags.len() > 32 {
                    return Err(self.refuse(&me, Unsupported::TooManyFlags(f.flags.len())));
                }
                TypeNode::Flags(count(f.flags.len()))
            }
            TypeDefKind::Option(t) => TypeNode::Option(self.ty(t)?),
            TypeDefKind::Result(r) => TypeNode::Result {
                ok: self.opt(&r.ok)?,
                err: self.opt(&r.err)?,
            },
            TypeDefKind::List(t) => TypeNode::List(self.ty(t)?),
            TypeDefKind::Handle(h @ (Handle::Own(r) | Handle::Borrow(r))) => {
                if self.direction == Direction::Export {
                    return Err(self.refuse(&me, Unsupported::ExportedHandle));
                }
                let resource = self.resource(*r).map_err(|what| self.refuse(&me, what))?;
                match h {
                    Handle::Own(_) => TypeNode::Own(resource),
                    Handle::Borrow(_) => TypeNode::Borrow(resource),
                }
            }
            TypeDefKind::Resource => {
                let what = self.resource(id).err().unwrap_or(Unsupported::Resource);
                return Err(self.refuse(&me, what));
            }
            TypeDefKind::Future(_) => return Err(self.refuse(&me, Unsupported::Future)),
            TypeDefKind::Stream(_) => return Err(self.refuse(&me, Unsupported::Stream)),
            TypeDefKind::FixedLengthList(..) => {
                return Err(self.refuse(&me, Unsupported::FixedSizeList));
            }
            TypeDefKind::Map(..) => return Err(self.refuse(&me, Unsupported::Map)),
            // A `Resolve` has none; an unresolved package would.
            TypeDefKind::Unknown => return Err(self.refuse(&me, Unsupported::Unresolved)),
        };
        let t = self.builder.add(node);
        self.cache.insert(id, t);
        Ok(t)
    }

    /// Resource `r` (through any aliases) as the host's resource it is, numbered in
    /// [`World::resources`]; why not, if it is the component's or no imported
    /// interface's.
    fn resource(&mut self, mut r: wit_parser::TypeId) -> Result<ResourceId, Unsupported> {
        while let TypeDefKind::Type(Type::Id(next)) = self.resolve.types[r].kind {
            r = next;
        }
        if let Some(id) = self.resource_ids.get(&r) {
            return Ok(*id);
        }
        let module = match self.resolve.types[r].owner {
            TypeOwner::Interface(i) if self.exported.contains(&i) => {
                return Err(Unsupported::GuestResource);
            }
            TypeOwner::Interface(i) => self
                .imported
                .get(&i)
                .cloned()
                .ok_or(Unsupported::HostResource)?,
            _ => return Err(Unsupported::HostResource),
        };
        let id = ResourceId(count(self.resources.len()));
        self.resources.push(Resource {
            interface: module,
            name: self.resolve.types[r].name.clone().unwrap_or_default(),
        });
        self.resource_ids.insert(r, id);
        Ok(id)
    }

    fn refuse(&self, t: &Type, what: Unsupported) -> Refusal {
        Refusal {
            ty: self.type_name(t),
            what,
        }
    }

    /// The type as WIT writes it: its name if it has one, else its constructor.
    fn type_name(&self, t: &Type) -> String {
        crate::text::wit_type(self.resolve, t, crate::text::Names::Kept)
    }
}

/// A count of cases or flags as `u32` (a WIT type has far fewer than 2^32).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The runtime's WIT resolved from the text compiled into `tern-core`: the WASI
/// packages ([`tern_core::wit::WASI_WIT`]) and then `tern:edge`
/// ([`tern_core::wit::WIT_TEXT`]). Returns the resolve and `tern:edge`'s package. The
/// one way every host reads its WIT (this crate's description, Wasmtime's embedded
/// world and type messages).
pub fn runtime_wit() -> Result<(Resolve, wit_parser::PackageId), String> {
    let mut resolve = Resolve::default();
    for (path, text) in tern_core::wit::WASI_WIT {
        resolve
            .push_source(path, text)
            .map_err(|e| format!("{path}: {e:#}"))?;
    }
    let package = resolve
        .push_source("runtime/wit/tern-edge.wit", tern_core::wit::WIT_TEXT)
        .map_err(|e| format!("runtime/wit/tern-edge.wit: {e:#}"))?;
    Ok((resolve, package))
}

/// The `tern:edge@0.1.0` world `runtime` (the world `component` and the WASI
/// interfaces a board may offer beside it), described from the WIT compiled into
/// `tern-core` ([`runtime_wit`]).
///
/// # Panics
///
/// If that text does not resolve or describe, which the tests rule out: it is
/// compiled in, not input.
pub fn tern_edge() -> World {
    #[allow(clippy::expect_used, reason = "compiled-in text, checked by the tests")]
    let (resolve, package) = runtime_wit().expect("the runtime's WIT resolves");
    #[allow(clippy::expect_used, reason = "compiled-in text, checked by the tests")]
    let world = resolve
        .select_world(&[package], Some("runtime"))
        .expect("tern-edge.wit has world `runtime`");
    #[allow(clippy::expect_used, reason = "compiled-in text, checked by the tests")]
    describe_world(&resolve, world).expect("tern:edge describes")
}
