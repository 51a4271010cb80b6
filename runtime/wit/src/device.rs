//! A component taken apart for an engine without a component model: [`device_image`].
//!
//! The component is validated (`wasmparser`, every component-model feature on, so
//! that what Tern does not run is refused here by name) and read in one pass, in
//! lockstep with the validator, whose type information resolves every type index,
//! alias and import: each component's sections become a list of definitions
//! ([`Decl`]) with their function types already described for `tern-cabi`. Nested
//! components are then flattened by instantiating the root component as the
//! component model would: each definition appends one [`Step`] (or only maps an
//! index, for aliases and exports), an inner component is run with its imports bound
//! to its instantiation's arguments, and host imports become [`Func::Import`]s. The
//! core modules the image ends up holding are validated for wasmi's features.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use tern_cabi::{FuncAbi, FuncType, ResourceId, TypeError, TypeId, TypeNode, TypesBuilder};
use tern_core::bundle::EngineKind;
use tern_core::features::{UnsupportedFeature, ValidationError};
use tern_core::image::{
    CanonOptions, CoreExport, CoreFunc, CoreInstance, CoreItem, DeviceImage, Export, Func,
    HostFunc, IMAGE_VERSION, ImageError, IndexSpaces, Resource, Step,
};
use wasmparser::component_types::{
    ComponentAnyTypeId, ComponentDefinedType, ComponentDefinedTypeId, ComponentEntityType,
    ComponentFuncTypeId, ComponentValType,
};
use wasmparser::types::TypesRef;
use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentAlias, ComponentExternalKind,
    ComponentOuterAliasKind, ComponentTypeRef, Encoding, ExternalKind, Instance, Parser, Payload,
    PrimitiveValType, ValidPayload, Validator,
};

use crate::Unsupported;

/// The most steps an image may have. A component that instantiates nested
/// components several times each can multiply its size; no real component comes
/// near this.
pub const MAX_STEPS: usize = 100_000;

/// The deepest nesting of components taken apart (flattening recurses once per
/// level).
pub const MAX_NESTING: usize = 100;

/// Why a component cannot be taken apart into a device image.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageBuildError {
    /// The bytes are a core module (or nothing wasm at all), not a component.
    NotAComponent,
    /// The component does not validate.
    Invalid(String),
    /// A function's type has (or contains) a type `tern-cabi` does not describe.
    Type {
        /// The function.
        item: String,
        /// The refused type, written as WIT would (`stream<u8>`).
        ty: String,
        /// What it is.
        what: Unsupported,
    },
    /// An async function type, or the `async` or `callback` canonical option.
    Async {
        /// The function or canonical definition.
        item: String,
    },
    /// A string encoding other than UTF-8.
    StringEncoding {
        /// The canonical definition.
        item: String,
        /// `utf16` or `latin1+utf16`.
        encoding: &'static str,
    },
    /// A canonical definition's memory is 64-bit.
    Memory64 {
        /// The canonical definition.
        item: String,
    },
    /// A canonical option Tern does not implement (`gc`, `core-type`).
    CanonOption {
        /// The canonical definition.
        item: String,
        /// The option.
        option: &'static str,
    },
    /// A canonical built-in other than `lift` and `lower`.
    Builtin {
        /// Its name (`resource.new`, `task.return`).
        name: String,
    },
    /// A component-level start function.
    Start,
    /// A value import, export or argument.
    Value {
        /// Its name.
        item: String,
    },
    /// An import of something other than a function, an instance of functions and
    /// types, or a type.
    Import {
        /// The import's name.
        name: String,
        /// What it is (`core module`, `component`).
        kind: &'static str,
    },
    /// An export of something other than a function, an instance of functions and
    /// types, or a type.
    Export {
        /// The export's name.
        name: String,
        /// What it is.
        kind: &'static str,
    },
    /// A core module or component taken from an instance, or passed to one: Tern
    /// flattens only components whose modules are known where they are defined.
    Dynamic {
        /// The alias or argument.
        item: String,
        /// `core module` or `component`.
        kind: &'static str,
    },
    /// A core exception tag in the component's definitions.
    Tag {
        /// The alias or export.
        item: String,
    },
    /// A function's types are past a limit of the description.
    Limit {
        /// The function.
        item: String,
        /// `tern-cabi`'s reason.
        error: TypeError,
    },
    /// Flattening the component's nested instantiations gives more than
    /// [`MAX_STEPS`] steps.
    TooLarge,
    /// Components nest more than [`MAX_NESTING`] deep.
    TooDeep,
    /// A core module the image holds uses a wasm feature wasmi does not run.
    Feature {
        /// The module's index in the image.
        module: usize,
        /// The feature, where it is first used and how to fix it.
        error: UnsupportedFeature,
    },
    /// A core module the image holds is not valid whatever the features.
    InvalidModule {
        /// The module's index in the image.
        module: usize,
        /// The validator's message.
        error: String,
    },
    /// The image does not pass its own check: a bug in this crate.
    Image(ImageError),
    /// A reference the validator accepted did not resolve: a bug in this crate.
    Unexpected(String),
}

impl fmt::Display for ImageBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImageBuildError as E;
        match self {
            E::NotAComponent => f.write_str(
                "not a component: a device image is made from a component (`tern sign` \
                 componentizes a core module first)",
            ),
            E::Invalid(e) => write!(f, "the component does not validate: {e}"),
            E::Type { item, ty, what } => write!(f, "{item} has type `{ty}`: {what}"),
            E::Async { item } => write!(
                f,
                "{item} is async: Tern runs the synchronous canonical ABI only"
            ),
            E::StringEncoding { item, encoding } => write!(
                f,
                "{item} uses the {encoding} string encoding: Tern moves UTF-8 strings only \
                 (build the guest with UTF-8 strings)"
            ),
            E::Memory64 { item } => write!(
                f,
                "{item} uses a 64-bit memory: Tern's canonical ABI is 32-bit"
            ),
            E::CanonOption { item, option } => write!(
                f,
                "{item} has the canonical option `{option}`, which Tern does not implement"
            ),
            E::Builtin { name } => write!(
                f,
                "the component uses `canon {name}`: Tern implements `canon lift`, `canon \
                 lower` and the host's resources' `canon resource.drop` only ({})",
                if name.starts_with("resource.") {
                    "resources the component defines are not supported"
                } else {
                    "no async tasks, streams, futures, threads or contexts"
                }
            ),
            E::Start => f.write_str(
                "the component has a start function: Tern runs none (use the core module's \
                 `_initialize`, which wit-component calls)",
            ),
            E::Value { item } => write!(
                f,
                "{item} is a component-model value: Tern passes values only through functions"
            ),
            E::Import { name, kind } => write!(
                f,
                "the component imports `{name}`, a {kind}: a device provides functions only"
            ),
            E::Export { name, kind } => write!(
                f,
                "the component exports `{name}`, a {kind}: a device calls functions only"
            ),
            E::Dynamic { item, kind } => write!(
                f,
                "{item} passes a {kind} between instances: Tern flattens compositions whose \
                 modules are defined where they are instantiated only"
            ),
            E::Tag { item } => write!(
                f,
                "{item} is an exception tag: Tern's engines run no exceptions"
            ),
            E::Limit { item, error } => write!(f, "{item}: {error}"),
            E::TooLarge => write!(
                f,
                "the component flattens to more than {MAX_STEPS} definitions (it instantiates \
                 nested components too many times)"
            ),
            E::TooDeep => write!(
                f,
                "the component nests components more than {MAX_NESTING} deep"
            ),
            E::Feature { module, error } => {
                write!(f, "core module {module}: {error}; {}", error.fix())
            }
            E::InvalidModule { module, error } => {
                write!(f, "core module {module} is not valid: {error}")
            }
            E::Image(e) => write!(f, "the device image is malformed (a tern-wit bug): {e}"),
            E::Unexpected(e) => write!(f, "unexpected component structure (a tern-wit bug): {e}"),
        }
    }
}

impl std::error::Error for ImageBuildError {}

type Result<T, E = ImageBuildError> = std::result::Result<T, E>;

/// Takes `component` apart into the core modules it holds and the definitions that
/// tie them together, for `tern-wasmi` to replay ([`DeviceImage`]).
///
/// Validates the component first (component model on, every core feature Tern
/// knows), then walks its sections in order, flattening nested components: a
/// function an inner component imports from another's export becomes that export's
/// [`Func::Lift`], and the outer component's imports become [`Func::Import`]s named
/// by the import (`tern:edge/kv@0.1.0`, or `$root` for a function imported at the
/// top) and the function. Exports are the top-level component's functions, and the
/// functions of the instances it exports as `instance#function`.
///
/// Refused, with the item named: async function types and the `async` and
/// `callback` options, string encodings other than UTF-8, 64-bit memories, the `gc`
/// and `core-type` options, resources the component defines (their handles and
/// `canon resource.new`/`rep`/`drop`), handles in lifted functions, `stream`,
/// `future` and `error-context` and every other built-in but `lift`, `lower` and
/// `resource.drop`, fixed-length lists and maps, a component start function,
/// values, imports and exports that are neither functions, instances nor types, and
/// any core module the image holds that does not validate for wasmi (the feature is
/// named, [`ImageBuildError::Feature`]).
///
/// The resources of the root's imported instances are the host's
/// ([`DeviceImage::resources`]): handles to them may be in imported functions' types,
/// and a component's `canon resource.drop` of one becomes a lowering of the host's
/// `[resource-drop]<name>` function. Each component instance gets its own handle
/// table (`CoreFunc::Lower::table`).
pub fn device_image(component: &[u8]) -> Result<DeviceImage> {
    if !Parser::is_component(component) {
        return Err(ImageBuildError::NotAComponent);
    }
    let Parsed {
        root,
        modules: defined,
        builder,
        resources,
    } = Reader::read(component)?;
    let mut run = Runner {
        steps: Vec::new(),
        spaces: IndexSpaces::default(),
        resources: &resources,
        drops: HashMap::new(),
        tables: 0,
    };
    let exported = run.run(&root, None)?;
    let Runner {
        mut steps, tables, ..
    } = run;

    let mut exports = Vec::new();
    for (name, item) in exported {
        match item {
            Item::Func(func) => exports.push(Export { name, func }),
            Item::Instance(inst) => {
                for (fname, item) in &inst.items {
                    match item {
                        Item::Func(func) => exports.push(Export {
                            name: format!("{name}#{fname}"),
                            func: *func,
                        }),
                        Item::Instance(_) => {
                            return Err(ImageBuildError::Export {
                                name: format!("{name}#{fname}"),
                                kind: "instance",
                            });
                        }
                    }
                }
            }
        }
    }

    // Only the modules the steps instantiate, each distinct module once, in the
    // order the component defines them.
    let mut used = vec![false; defined.len()];
    for step in &steps {
        if let Step::Instance(CoreInstance::Instantiate { module, .. }) = step
            && let Some(u) = used.get_mut(*module as usize)
        {
            *u = true;
        }
    }
    let mut modules: Vec<Vec<u8>> = Vec::new();
    let mut renumber: Vec<u32> = Vec::with_capacity(defined.len());
    for (bytes, used) in defined.iter().zip(&used) {
        let index = match modules.iter().position(|m| m == bytes) {
            Some(i) => i,
            None if *used => {
                modules.push(bytes.clone());
                modules.len() - 1
            }
            None => {
                renumber.push(u32::MAX);
                continue;
            }
        };
        renumber.push(index_u32(index));
    }
    for step in &mut steps {
        if let Step::Instance(CoreInstance::Instantiate { module, .. }) = step {
            *module = renumber.get(*module as usize).copied().unwrap_or(u32::MAX);
        }
    }
    for (module, bytes) in modules.iter().enumerate() {
        match crate::features::validate_module(bytes, EngineKind::Wasmi) {
            Ok(()) => {}
            Err(ValidationError::Unsupported(error)) => {
                return Err(ImageBuildError::Feature { module, error });
            }
            Err(ValidationError::Invalid(error)) => {
                return Err(ImageBuildError::InvalidModule { module, error });
            }
        }
    }

    let types = builder.finish().map_err(|error| ImageBuildError::Limit {
        item: "the component's types".into(),
        error,
    })?;
    let image = DeviceImage {
        version: IMAGE_VERSION,
        types,
        modules,
        steps,
        exports,
        resources: resources.list.iter().map(|r| r.resource.clone()).collect(),
        tables,
    };
    image.check().map_err(ImageBuildError::Image)?;
    Ok(image)
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------
// Reading: each component's sections as definitions, types described.

/// A core item kind as the definitions keep it.
#[derive(Clone, Copy, Debug)]
enum CoreKind {
    Func,
    Memory,
    Table,
    Global,
}

/// What an instantiation argument or instance export refers to, by index in the
/// component's index spaces.
#[derive(Clone, Copy, Debug)]
enum ArgRef {
    Func(u32),
    Instance(u32),
    /// A type: nothing to carry.
    Type,
}

/// Canonical options as indices into the component's core index spaces.
#[derive(Clone, Copy, Debug, Default)]
struct Options {
    memory: Option<u32>,
    realloc: Option<u32>,
    post_return: Option<u32>,
}

/// One definition of a component, in order.
#[derive(Debug)]
enum Decl {
    /// A function import: at the top, from the host (with its type); inside, an
    /// argument of the instantiation.
    ImportFunc { name: String, ty: Option<FuncType> },
    /// An instance import: at the top, an interface of host functions (with their
    /// types, in the instance type's order); inside, an argument.
    ImportInstance {
        name: String,
        funcs: Option<Vec<(String, FuncType)>>,
        /// The resource types the instance exports, by name, as the validator
        /// numbers them in this component.
        resources: Vec<(String, wasmparser::component_types::ResourceId)>,
    },
    /// `canon resource.drop` of a resource type, as the validator numbers it.
    ResourceDrop {
        resource: wasmparser::component_types::ResourceId,
    },
    /// `core instance (instantiate module (with name instance)*)`.
    Instantiate {
        module: usize,
        args: Vec<(String, u32)>,
    },
    /// `core instance (export name item)*`.
    CoreExports(Vec<(String, CoreKind, u32)>),
    /// `alias core export instance name`.
    CoreAlias {
        instance: u32,
        kind: CoreKind,
        name: String,
    },
    /// `instance (instantiate component (with name item)*)`.
    InstantiateComponent {
        component: Rc<Component>,
        args: Vec<(String, ArgRef)>,
    },
    /// `instance (export name item)*`.
    InstanceExports(Vec<(String, ArgRef)>),
    /// `alias export instance name (func)`.
    AliasFunc { instance: u32, name: String },
    /// `alias export instance name (instance)`.
    AliasInstance { instance: u32, name: String },
    /// `canon lift`.
    Lift {
        core_func: u32,
        ty: FuncType,
        options: Options,
    },
    /// `canon lower`.
    Lower { func: u32, options: Options },
    /// `export name (func f)`: also a new function index.
    ExportFunc { name: String, func: u32 },
    /// `export name (instance i)`: also a new instance index.
    ExportInstance { name: String, instance: u32 },
}

/// A component's definitions.
#[derive(Debug, Default)]
struct Component {
    decls: Vec<Decl>,
}

/// What a component being read has defined so far, where the reading needs it.
#[derive(Default)]
struct Level {
    decls: Vec<Decl>,
    /// The component's core-module index space: indices into [`Parsed::modules`].
    modules: Vec<usize>,
    /// The component's component index space.
    components: Vec<Rc<Component>>,
    /// A name for each core function, for messages.
    core_func_names: Vec<String>,
    /// A name for each function, for messages.
    func_names: Vec<String>,
}

/// The component read.
struct Parsed {
    root: Component,
    /// Every core module defined anywhere, in order.
    modules: Vec<Vec<u8>>,
    builder: TypesBuilder,
    resources: HostResources,
}

/// The host's resources: those of the root component's imported instances, in the
/// order they are imported, numbered by `ResourceId`.
#[derive(Default)]
struct HostResources {
    list: Vec<HostResource>,
    /// The validator's id of each, for the handles in the root's imported functions.
    ids: HashMap<wasmparser::component_types::ResourceId, ResourceId>,
}

struct HostResource {
    resource: Resource,
    /// `own<resource>`, the parameter of its `[resource-drop]` function.
    own: TypeId,
}

struct Reader<'a> {
    bytes: &'a [u8],
    validator: Validator,
    builder: TypesBuilder,
    cache: HashMap<ComponentDefinedTypeId, TypeId>,
    modules: Vec<Vec<u8>>,
    /// The components being read, outermost first.
    stack: Vec<Level>,
    resources: HostResources,
}

fn invalid(e: wasmparser::BinaryReaderError) -> ImageBuildError {
    ImageBuildError::Invalid(e.to_string())
}

fn unexpected(what: impl fmt::Display) -> ImageBuildError {
    ImageBuildError::Unexpected(what.to_string())
}

impl<'a> Reader<'a> {
    fn read(bytes: &'a [u8]) -> Result<Parsed> {
        let features = crate::features::component();
        let mut reader = Reader {
            bytes,
            validator: Validator::new_with_features(features),
            builder: TypesBuilder::new(),
            cache: HashMap::new(),
            modules: Vec::new(),
            stack: Vec::new(),
            resources: HostResources::default(),
        };
        let mut parser = Parser::new(0);
        parser.set_features(features);
        // Module or component, innermost last.
        let mut nesting: Vec<Encoding> = Vec::new();
        let mut bodies = Vec::new();
        let mut root = None;
        for payload in parser.parse_all(bytes) {
            let payload = payload.map_err(invalid)?;
            if let ValidPayload::Func(func, body) =
                reader.validator.payload(&payload).map_err(invalid)?
            {
                bodies.push((func, body));
            }
            match &payload {
                Payload::Version { encoding, .. } => {
                    nesting.push(*encoding);
                    if *encoding == Encoding::Component {
                        if reader.stack.len() >= MAX_NESTING {
                            return Err(ImageBuildError::TooDeep);
                        }
                        reader.stack.push(Level::default());
                    }
                }
                Payload::End(_) => {
                    let ended = nesting.pop();
                    if ended == Some(Encoding::Component) {
                        let level = reader
                            .stack
                            .pop()
                            .ok_or_else(|| unexpected("a component ends twice"))?;
                        let component = Component { decls: level.decls };
                        match reader.stack.last_mut() {
                            Some(parent) => parent.components.push(Rc::new(component)),
                            None => root = Some(component),
                        }
                    }
                }
                _ if nesting.last() == Some(&Encoding::Component) => reader.section(payload)?,
                // Inside a core module: the validator's business.
                _ => {}
            }
        }
        let mut allocs = wasmparser::FuncValidatorAllocations::default();
        for (func, body) in bodies {
            let mut v = func.into_validator(allocs);
            v.validate(&body).map_err(invalid)?;
            allocs = v.into_allocations();
        }
        Ok(Parsed {
            root: root.ok_or_else(|| unexpected("no component"))?,
            modules: reader.modules,
            builder: reader.builder,
            resources: reader.resources,
        })
    }

    fn level(&mut self) -> Result<&mut Level> {
        self.stack
            .last_mut()
            .ok_or_else(|| unexpected("a section outside any component"))
    }

    fn types(&self) -> Result<TypesRef<'_>> {
        self.validator
            .types(0)
            .ok_or_else(|| unexpected("no type information"))
    }

    fn is_root(&self) -> bool {
        self.stack.len() == 1
    }

    /// One section of the component being read.
    fn section(&mut self, payload: Payload<'_>) -> Result<()> {
        match payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let bytes = self
                    .bytes
                    .get(unchecked_range)
                    .ok_or_else(|| unexpected("a module outside the component"))?
                    .to_vec();
                self.modules.push(bytes);
                let id = self.modules.len() - 1;
                self.level()?.modules.push(id);
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    self.import(import.name.name, import.ty)?;
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    let name = export.name.name.to_string();
                    let level = self.level()?;
                    match export.kind {
                        ComponentExternalKind::Func => {
                            level.func_names.push(format!("export `{name}`"));
                            level.decls.push(Decl::ExportFunc {
                                name,
                                func: export.index,
                            });
                        }
                        ComponentExternalKind::Instance => level.decls.push(Decl::ExportInstance {
                            name,
                            instance: export.index,
                        }),
                        ComponentExternalKind::Type => {}
                        ComponentExternalKind::Value => {
                            return Err(ImageBuildError::Value {
                                item: format!("export `{name}`"),
                            });
                        }
                        kind @ (ComponentExternalKind::Module
                        | ComponentExternalKind::Component) => {
                            return Err(ImageBuildError::Export {
                                name,
                                kind: kind_name(kind),
                            });
                        }
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    self.alias(alias.map_err(invalid)?)?;
                }
            }
            Payload::InstanceSection(reader) => {
                for instance in reader {
                    let decl = match instance.map_err(invalid)? {
                        Instance::Instantiate { module_index, args } => {
                            let module = *self
                                .level()?
                                .modules
                                .get(module_index as usize)
                                .ok_or_else(|| unexpected("a core module index"))?;
                            Decl::Instantiate {
                                module,
                                args: args.iter().map(|a| (a.name.to_string(), a.index)).collect(),
                            }
                        }
                        Instance::FromExports(exports) => {
                            let mut items = Vec::with_capacity(exports.len());
                            for e in exports.iter() {
                                let kind =
                                    core_kind(e.kind).ok_or_else(|| ImageBuildError::Tag {
                                        item: format!("core instance export `{}`", e.name),
                                    })?;
                                items.push((e.name.to_string(), kind, e.index));
                            }
                            Decl::CoreExports(items)
                        }
                    };
                    self.level()?.decls.push(decl);
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                for instance in reader {
                    let decl = match instance.map_err(invalid)? {
                        wasmparser::ComponentInstance::Instantiate {
                            component_index,
                            args,
                        } => {
                            let component = self
                                .level()?
                                .components
                                .get(component_index as usize)
                                .cloned()
                                .ok_or_else(|| unexpected("a component index"))?;
                            let args = args
                                .iter()
                                .map(|a| {
                                    let item = format!("instantiation argument `{}`", a.name);
                                    Ok((a.name.to_string(), arg_ref(a.kind, a.index, item)?))
                                })
                                .collect::<Result<_>>()?;
                            Decl::InstantiateComponent { component, args }
                        }
                        wasmparser::ComponentInstance::FromExports(exports) => {
                            Decl::InstanceExports(
                                exports
                                    .iter()
                                    .map(|e| {
                                        let item = format!("instance export `{}`", e.name.name);
                                        Ok((
                                            e.name.name.to_string(),
                                            arg_ref(e.kind, e.index, item)?,
                                        ))
                                    })
                                    .collect::<Result<_>>()?,
                            )
                        }
                    };
                    self.level()?.decls.push(decl);
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                for canon in reader {
                    self.canon(canon.map_err(invalid)?)?;
                }
            }
            Payload::ComponentStartSection { .. } => return Err(ImageBuildError::Start),
            // Types are the validator's; a nested component's definitions come as
            // their own payloads, after its header.
            _ => {}
        }
        Ok(())
    }

    fn import(&mut self, name: &str, ty: ComponentTypeRef) -> Result<()> {
        let root = self.is_root();
        let decl = match ty {
            ComponentTypeRef::Func(_) => {
                let ty = if root {
                    let item = format!("imported function `{name}`");
                    let ty = self.types()?.component_item_for_import(name).map(|i| i.ty);
                    match ty {
                        Some(ComponentEntityType::Func(id)) => {
                            Some(self.func_type(id, &item, true)?)
                        }
                        _ => return Err(unexpected(format!("the type of import `{name}`"))),
                    }
                } else {
                    None
                };
                self.level()?.func_names.push(format!("import `{name}`"));
                Decl::ImportFunc {
                    name: name.to_string(),
                    ty,
                }
            }
            ComponentTypeRef::Instance(_) => {
                let types = self.types()?;
                let Some(ComponentEntityType::Instance(id)) =
                    types.component_item_for_import(name).map(|i| i.ty)
                else {
                    return Err(unexpected(format!("the type of import `{name}`")));
                };
                let exports: Vec<(String, ComponentEntityType)> = types[id]
                    .exports
                    .iter()
                    .map(|(n, i)| (n.clone(), i.ty))
                    .collect();
                let resources: Vec<(String, wasmparser::component_types::ResourceId)> = exports
                    .iter()
                    .filter_map(|(n, ty)| match ty {
                        ComponentEntityType::Type {
                            referenced: ComponentAnyTypeId::Resource(r),
                            ..
                        } => Some((n.clone(), r.resource())),
                        _ => None,
                    })
                    .collect();
                if root {
                    // The host's resources, before any function type names them.
                    for (rname, r) in &resources {
                        let id = ResourceId(index_u32(self.resources.list.len()));
                        let own = self.builder.add(TypeNode::Own(id));
                        self.resources.list.push(HostResource {
                            resource: Resource {
                                interface: name.to_string(),
                                name: rname.clone(),
                            },
                            own,
                        });
                        self.resources.ids.insert(*r, id);
                    }
                }
                let funcs = if root {
                    let mut funcs = Vec::new();
                    for (fname, ty) in exports {
                        match ty {
                            ComponentEntityType::Func(id) => {
                                let item = format!("imported function `{fname}` of `{name}`");
                                funcs.push((fname, self.func_type(id, &item, true)?));
                            }
                            ComponentEntityType::Type { .. } => {}
                            ComponentEntityType::Value(_) => {
                                return Err(ImageBuildError::Value {
                                    item: format!("`{fname}` of import `{name}`"),
                                });
                            }
                            other => {
                                return Err(ImageBuildError::Import {
                                    name: format!("{name}#{fname}"),
                                    kind: entity_name(&other),
                                });
                            }
                        }
                    }
                    Some(funcs)
                } else {
                    None
                };
                Decl::ImportInstance {
                    name: name.to_string(),
                    funcs,
                    resources,
                }
            }
            ComponentTypeRef::Type(_) => return Ok(()),
            ComponentTypeRef::Value(_) => {
                return Err(ImageBuildError::Value {
                    item: format!("import `{name}`"),
                });
            }
            ComponentTypeRef::Module(_) => {
                return Err(ImageBuildError::Import {
                    name: name.into(),
                    kind: "core module",
                });
            }
            ComponentTypeRef::Component(_) => {
                return Err(ImageBuildError::Import {
                    name: name.into(),
                    kind: "component",
                });
            }
        };
        self.level()?.decls.push(decl);
        Ok(())
    }

    fn alias(&mut self, alias: ComponentAlias<'_>) -> Result<()> {
        let decl = match alias {
            ComponentAlias::InstanceExport {
                kind,
                instance_index,
                name,
            } => match kind {
                ComponentExternalKind::Func => {
                    self.level()?.func_names.push(format!("`{name}`"));
                    Decl::AliasFunc {
                        instance: instance_index,
                        name: name.to_string(),
                    }
                }
                ComponentExternalKind::Instance => Decl::AliasInstance {
                    instance: instance_index,
                    name: name.to_string(),
                },
                ComponentExternalKind::Type => return Ok(()),
                ComponentExternalKind::Value => {
                    return Err(ImageBuildError::Value {
                        item: format!("alias of `{name}`"),
                    });
                }
                kind @ (ComponentExternalKind::Module | ComponentExternalKind::Component) => {
                    return Err(ImageBuildError::Dynamic {
                        item: format!("alias of instance export `{name}`"),
                        kind: kind_name(kind),
                    });
                }
            },
            ComponentAlias::CoreInstanceExport {
                kind,
                instance_index,
                name,
            } => {
                let kind = core_kind(kind).ok_or_else(|| ImageBuildError::Tag {
                    item: format!("alias of core export `{name}`"),
                })?;
                if let CoreKind::Func = kind {
                    self.level()?
                        .core_func_names
                        .push(format!("core export `{name}`"));
                }
                Decl::CoreAlias {
                    instance: instance_index,
                    kind,
                    name: name.to_string(),
                }
            }
            ComponentAlias::Outer { kind, count, index } => {
                let outer = self
                    .stack
                    .len()
                    .checked_sub(1 + count as usize)
                    .and_then(|i| self.stack.get(i))
                    .ok_or_else(|| unexpected("an outer alias past the outermost component"))?;
                match kind {
                    ComponentOuterAliasKind::CoreModule => {
                        let module = *outer
                            .modules
                            .get(index as usize)
                            .ok_or_else(|| unexpected("an outer core module index"))?;
                        self.level()?.modules.push(module);
                    }
                    ComponentOuterAliasKind::Component => {
                        let component = outer
                            .components
                            .get(index as usize)
                            .cloned()
                            .ok_or_else(|| unexpected("an outer component index"))?;
                        self.level()?.components.push(component);
                    }
                    ComponentOuterAliasKind::Type | ComponentOuterAliasKind::CoreType => {}
                }
                return Ok(());
            }
        };
        self.level()?.decls.push(decl);
        Ok(())
    }

    fn canon(&mut self, canon: CanonicalFunction) -> Result<()> {
        match canon {
            CanonicalFunction::Lift {
                core_func_index,
                type_index,
                options,
            } => {
                let item = format!(
                    "the function lifted from {}",
                    self.level()?
                        .core_func_names
                        .get(core_func_index as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("core function {core_func_index}"))
                );
                let options = self.options(&options, &item)?;
                let types = self.types()?;
                let id = match (type_index < types.component_type_count())
                    .then(|| types.component_any_type_at(type_index))
                {
                    Some(ComponentAnyTypeId::Func(id)) => id,
                    _ => return Err(unexpected(format!("the type of {item}"))),
                };
                let ty = self.func_type(id, &item, false)?;
                let level = self.level()?;
                level.func_names.push(item);
                level.decls.push(Decl::Lift {
                    core_func: core_func_index,
                    ty,
                    options,
                });
            }
            CanonicalFunction::Lower {
                func_index,
                options,
            } => {
                let item = format!(
                    "the lowering of {}",
                    self.level()?
                        .func_names
                        .get(func_index as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("function {func_index}"))
                );
                let options = self.options(&options, &item)?;
                let level = self.level()?;
                level.core_func_names.push(item);
                level.decls.push(Decl::Lower {
                    func: func_index,
                    options,
                });
            }
            CanonicalFunction::ResourceDrop { resource } => {
                let types = self.types()?;
                let id = match (resource < types.component_type_count())
                    .then(|| types.component_any_type_at(resource))
                {
                    Some(ComponentAnyTypeId::Resource(r)) => r.resource(),
                    _ => return Err(unexpected("the type of a `resource.drop`")),
                };
                let level = self.level()?;
                level.core_func_names.push("`resource.drop`".into());
                level.decls.push(Decl::ResourceDrop { resource: id });
            }
            other => {
                return Err(ImageBuildError::Builtin {
                    name: builtin_name(&other),
                });
            }
        }
        Ok(())
    }

    fn options(&self, options: &[CanonicalOption], item: &str) -> Result<Options> {
        let mut o = Options::default();
        for option in options {
            match *option {
                CanonicalOption::UTF8 => {}
                CanonicalOption::UTF16 => {
                    return Err(ImageBuildError::StringEncoding {
                        item: item.into(),
                        encoding: "utf16",
                    });
                }
                CanonicalOption::CompactUTF16 => {
                    return Err(ImageBuildError::StringEncoding {
                        item: item.into(),
                        encoding: "latin1+utf16",
                    });
                }
                CanonicalOption::Memory(m) => {
                    let types = self.types()?;
                    if m >= types.memory_count() {
                        return Err(unexpected(format!("the memory of {item}")));
                    }
                    if types.memory_at(m).memory64 {
                        return Err(ImageBuildError::Memory64 { item: item.into() });
                    }
                    o.memory = Some(m);
                }
                CanonicalOption::Realloc(f) => o.realloc = Some(f),
                CanonicalOption::PostReturn(f) => o.post_return = Some(f),
                CanonicalOption::Async | CanonicalOption::Callback(_) => {
                    return Err(ImageBuildError::Async { item: item.into() });
                }
                CanonicalOption::CoreType(_) => {
                    return Err(ImageBuildError::CanonOption {
                        item: item.into(),
                        option: "core-type",
                    });
                }
                CanonicalOption::Gc => {
                    return Err(ImageBuildError::CanonOption {
                        item: item.into(),
                        option: "gc",
                    });
                }
            }
        }
        Ok(o)
    }

    /// Describes a component function type, and checks the description still
    /// validates and gives the function a calling convention. Handles to the host's
    /// resources are allowed in an imported function's type (`host`), refused in a
    /// lifted one's (a host passes no handles to exports, and handles do not cross
    /// between the components of an app).
    fn func_type(&mut self, id: ComponentFuncTypeId, item: &str, host: bool) -> Result<FuncType> {
        let types = self
            .validator
            .types(0)
            .ok_or_else(|| unexpected("no type information"))?;
        let f = &types[id];
        if f.async_ {
            return Err(ImageBuildError::Async { item: item.into() });
        }
        let refused = |(ty, what): (String, Unsupported)| ImageBuildError::Type {
            item: item.into(),
            ty,
            what,
        };
        let mut v = Describe {
            b: &mut self.builder,
            cache: &mut self.cache,
            types,
            resources: &self.resources.ids,
            host,
        };
        let mut params = Vec::with_capacity(f.params.len());
        for (_, t) in f.params.iter() {
            params.push(v.val(*t).map_err(refused)?);
        }
        let result = match f.result {
            Some(t) => Some(v.val(t).map_err(refused)?),
            None => None,
        };
        if !host {
            for (t, &id) in f
                .params
                .iter()
                .map(|(_, t)| t)
                .chain(&f.result)
                .zip(params.iter().chain(&result))
            {
                if has_handle(&self.builder, id) {
                    return Err(refused((
                        crate::text::component_val(types, *t),
                        Unsupported::Resource,
                    )));
                }
            }
        }
        let ty = FuncType { params, result };
        let limit = |error| ImageBuildError::Limit {
            item: item.into(),
            error,
        };
        let table = self.builder.clone().finish().map_err(limit)?;
        FuncAbi::new(&table, &ty).map_err(limit)?;
        Ok(ty)
    }
}

/// What describes value types: the builder, the validator's types, and the host's
/// resources that handles may name.
struct Describe<'a, 'b> {
    b: &'a mut TypesBuilder,
    cache: &'a mut HashMap<ComponentDefinedTypeId, TypeId>,
    types: TypesRef<'b>,
    resources: &'a HashMap<wasmparser::component_types::ResourceId, ResourceId>,
    /// Whether handles may be in the type (an imported function's).
    host: bool,
}

impl Describe<'_, '_> {
    /// A value type described, or the refused type and why.
    fn val(&mut self, t: ComponentValType) -> Result<TypeId, (String, Unsupported)> {
        let types = self.types;
        let id = match t {
            ComponentValType::Primitive(p) => return primitive(self.b, p),
            ComponentValType::Type(id) => id,
        };
        if let Some(t) = self.cache.get(&id) {
            return Ok(*t);
        }
        let refuse = |what| Err((crate::text::component_val(types, t), what));
        let node = match &types[id] {
            ComponentDefinedType::Primitive(p) => {
                let t = primitive(self.b, *p)?;
                self.cache.insert(id, t);
                return Ok(t);
            }
            ComponentDefinedType::Record(r) => {
                let mut fields = Vec::with_capacity(r.fields.len());
                for t in r.fields.values() {
                    fields.push(self.val(*t)?);
                }
                TypeNode::Record(fields)
            }
            ComponentDefinedType::Tuple(tuple) => {
                let mut elems = Vec::with_capacity(tuple.types.len());
                for t in tuple.types.iter() {
                    elems.push(self.val(*t)?);
                }
                TypeNode::Tuple(elems)
            }
            ComponentDefinedType::Variant(var) => {
                let mut cases = Vec::with_capacity(var.cases.len());
                for c in var.cases.values() {
                    cases.push(match c.ty {
                        Some(t) => Some(self.val(t)?),
                        None => None,
                    });
                }
                TypeNode::Variant(cases)
            }
            ComponentDefinedType::List { element, .. } => TypeNode::List(self.val(*element)?),
            ComponentDefinedType::Option { ty, .. } => TypeNode::Option(self.val(*ty)?),
            ComponentDefinedType::Result { ok, err, .. } => TypeNode::Result {
                ok: match ok {
                    Some(t) => Some(self.val(*t)?),
                    None => None,
                },
                err: match err {
                    Some(t) => Some(self.val(*t)?),
                    None => None,
                },
            },
            ComponentDefinedType::Enum(cases) => TypeNode::Enum(index_u32(cases.len())),
            ComponentDefinedType::Flags(flags) => {
                if flags.len() > 32 {
                    return refuse(Unsupported::TooManyFlags(flags.len()));
                }
                TypeNode::Flags(index_u32(flags.len()))
            }
            ComponentDefinedType::Own(r) | ComponentDefinedType::Borrow(r) => {
                if !self.host {
                    return refuse(Unsupported::Resource);
                }
                // Only the host's resources have handle tables on a device.
                let Some(resource) = self.resources.get(&r.resource()).copied() else {
                    return refuse(Unsupported::HostResource);
                };
                match &types[id] {
                    ComponentDefinedType::Own(_) => TypeNode::Own(resource),
                    _ => TypeNode::Borrow(resource),
                }
            }
            ComponentDefinedType::Future { .. } => return refuse(Unsupported::Future),
            ComponentDefinedType::Stream { .. } => return refuse(Unsupported::Stream),
            ComponentDefinedType::FixedLengthList { .. } => {
                return refuse(Unsupported::FixedSizeList);
            }
            ComponentDefinedType::Map { .. } => return refuse(Unsupported::Map),
        };
        let t = self.b.add(node);
        self.cache.insert(id, t);
        Ok(t)
    }
}

/// Whether a value of type `id` holds a resource handle.
fn has_handle(b: &TypesBuilder, id: TypeId) -> bool {
    let any = |ids: &[TypeId]| ids.iter().any(|t| has_handle(b, *t));
    match b.node(id) {
        Some(TypeNode::Own(_) | TypeNode::Borrow(_)) => true,
        Some(TypeNode::Record(ts) | TypeNode::Tuple(ts)) => any(ts),
        Some(TypeNode::Variant(cases)) => cases.iter().flatten().any(|t| has_handle(b, *t)),
        Some(TypeNode::List(t) | TypeNode::Option(t)) => has_handle(b, *t),
        Some(TypeNode::Result { ok, err }) => {
            ok.is_some_and(|t| has_handle(b, t)) || err.is_some_and(|t| has_handle(b, t))
        }
        _ => false,
    }
}

fn primitive(b: &mut TypesBuilder, p: PrimitiveValType) -> Result<TypeId, (String, Unsupported)> {
    let node = match p {
        PrimitiveValType::Bool => TypeNode::Bool,
        PrimitiveValType::S8 => TypeNode::S8,
        PrimitiveValType::U8 => TypeNode::U8,
        PrimitiveValType::S16 => TypeNode::S16,
        PrimitiveValType::U16 => TypeNode::U16,
        PrimitiveValType::S32 => TypeNode::S32,
        PrimitiveValType::U32 => TypeNode::U32,
        PrimitiveValType::S64 => TypeNode::S64,
        PrimitiveValType::U64 => TypeNode::U64,
        PrimitiveValType::F32 => TypeNode::F32,
        PrimitiveValType::F64 => TypeNode::F64,
        PrimitiveValType::Char => TypeNode::Char,
        PrimitiveValType::String => TypeNode::String,
        PrimitiveValType::ErrorContext => {
            return Err(("error-context".into(), Unsupported::ErrorContext));
        }
    };
    Ok(b.add(node))
}

fn core_kind(kind: ExternalKind) -> Option<CoreKind> {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => Some(CoreKind::Func),
        ExternalKind::Memory => Some(CoreKind::Memory),
        ExternalKind::Table => Some(CoreKind::Table),
        ExternalKind::Global => Some(CoreKind::Global),
        ExternalKind::Tag => None,
    }
}

fn arg_ref(kind: ComponentExternalKind, index: u32, item: String) -> Result<ArgRef> {
    match kind {
        ComponentExternalKind::Func => Ok(ArgRef::Func(index)),
        ComponentExternalKind::Instance => Ok(ArgRef::Instance(index)),
        ComponentExternalKind::Type => Ok(ArgRef::Type),
        ComponentExternalKind::Value => Err(ImageBuildError::Value { item }),
        kind @ (ComponentExternalKind::Module | ComponentExternalKind::Component) => {
            Err(ImageBuildError::Dynamic {
                item,
                kind: kind_name(kind),
            })
        }
    }
}

fn kind_name(kind: ComponentExternalKind) -> &'static str {
    match kind {
        ComponentExternalKind::Module => "core module",
        ComponentExternalKind::Func => "function",
        ComponentExternalKind::Value => "value",
        ComponentExternalKind::Type => "type",
        ComponentExternalKind::Instance => "instance",
        ComponentExternalKind::Component => "component",
    }
}

fn entity_name(e: &ComponentEntityType) -> &'static str {
    match e {
        ComponentEntityType::Module(_) => "core module",
        ComponentEntityType::Func(_) => "function",
        ComponentEntityType::Value(_) => "value",
        ComponentEntityType::Type { .. } => "type",
        ComponentEntityType::Instance(_) => "instance",
        ComponentEntityType::Component(_) => "component",
    }
}

/// The spec's name of a canonical built-in (`resource.new`, `stream.cancel-read`).
fn builtin_name(f: &CanonicalFunction) -> String {
    let debug = format!("{f:?}");
    let camel: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut words: Vec<String> = Vec::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() || words.is_empty() {
            words.push(c.to_ascii_lowercase().to_string());
        } else if let Some(w) = words.last_mut() {
            w.push(c);
        }
    }
    // Two-word prefixes of the spec: `error-context.new`, `waitable-set.wait`.
    let split = match words.first().map(String::as_str) {
        Some("error") | Some("waitable") if words.len() > 2 => 2,
        _ => 1,
    };
    let (head, tail) = words.split_at(split.min(words.len()));
    if tail.is_empty() {
        head.join("-")
    } else {
        format!("{}.{}", head.join("-"), tail.join("-"))
    }
}

// ---------------------------------------------------------------------------------
// Running: the root component instantiated, nested components flattened.

/// A component-level item, by its index in the image.
#[derive(Clone, Debug)]
enum Item {
    Func(u32),
    Instance(Rc<Inst>),
}

/// A component instance: its exports by name (types left out but for the host's
/// resources, which it may pass on by name).
#[derive(Debug, Default)]
struct Inst {
    items: Vec<(String, Item)>,
    /// The host resources (image numbering) it exports, by name.
    resources: Vec<(String, ResourceId)>,
}

impl Inst {
    fn get(&self, name: &str) -> Option<&Item> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, i)| i)
    }
}

/// One instantiation's index spaces, mapped to the image's.
#[derive(Default)]
struct Frame {
    funcs: Vec<u32>,
    core_funcs: Vec<u32>,
    memories: Vec<u32>,
    tables: Vec<u32>,
    globals: Vec<u32>,
    core_instances: Vec<u32>,
    instances: Vec<Rc<Inst>>,
    /// The host resources this component's imports gave it, by the validator's ids.
    resources: HashMap<wasmparser::component_types::ResourceId, ResourceId>,
}

impl Frame {
    /// Named references (an instantiation's arguments, an instance's exports) as the
    /// items they are in this frame; types, which carry nothing, left out.
    fn items(&self, refs: &[(String, ArgRef)]) -> Result<Vec<(String, Item)>> {
        refs.iter()
            .filter_map(|(n, a)| {
                let item = match a {
                    ArgRef::Func(i) => at(&self.funcs, *i, "function").map(Item::Func),
                    ArgRef::Instance(i) => at(&self.instances, *i, "instance").map(Item::Instance),
                    ArgRef::Type => return None,
                };
                Some(item.map(|item| (n.clone(), item)))
            })
            .collect()
    }
}

fn at<T: Clone>(space: &[T], index: u32, what: &str) -> Result<T> {
    space
        .get(index as usize)
        .cloned()
        .ok_or_else(|| unexpected(format!("{what} {index}")))
}

struct Runner<'a> {
    steps: Vec<Step>,
    /// The index each step defines, by the image's own numbering rule.
    spaces: IndexSpaces,
    resources: &'a HostResources,
    /// The `[resource-drop]` host function of each resource, once emitted.
    drops: HashMap<ResourceId, u32>,
    /// Handle tables given out: one per component instance.
    tables: u32,
}

impl Runner<'_> {
    fn emit(&mut self, step: Step) -> Result<u32> {
        if self.steps.len() >= MAX_STEPS {
            return Err(ImageBuildError::TooLarge);
        }
        let index = self.spaces.define(&step);
        self.steps.push(step);
        Ok(index)
    }

    fn options(&self, frame: &Frame, o: Options) -> Result<CanonOptions> {
        Ok(CanonOptions {
            memory: o
                .memory
                .map(|m| at(&frame.memories, m, "memory"))
                .transpose()?,
            realloc: o
                .realloc
                .map(|f| at(&frame.core_funcs, f, "core function"))
                .transpose()?,
            post_return: o
                .post_return
                .map(|f| at(&frame.core_funcs, f, "core function"))
                .transpose()?,
        })
    }

    /// Instantiates `component`: with the host's imports when `args` is `None`, else
    /// with these arguments. Returns its exports.
    fn run(
        &mut self,
        component: &Component,
        args: Option<&[(String, Item)]>,
    ) -> Result<Vec<(String, Item)>> {
        let mut f = Frame::default();
        let mut exports = Vec::new();
        // This component instance's own handle table.
        let table = self.tables;
        self.tables = self
            .tables
            .checked_add(1)
            .ok_or(ImageBuildError::TooLarge)?;
        let arg = |name: &str| {
            args.and_then(|a| a.iter().find(|(n, _)| n == name))
                .map(|(_, i)| i.clone())
                .ok_or_else(|| unexpected(format!("no argument for import `{name}`")))
        };
        for decl in &component.decls {
            match decl {
                Decl::ImportFunc { name, ty } => {
                    let func = match (args, ty) {
                        (None, Some(ty)) => self.emit(Step::Func(Func::Import(HostFunc {
                            interface: "$root".into(),
                            name: name.clone(),
                            ty: ty.clone(),
                        })))?,
                        _ => match arg(name)? {
                            Item::Func(func) => func,
                            Item::Instance(_) => {
                                return Err(unexpected(format!("import `{name}` of an instance")));
                            }
                        },
                    };
                    f.funcs.push(func);
                }
                Decl::ImportInstance {
                    name,
                    funcs,
                    resources,
                } => {
                    let inst = match (args, funcs) {
                        (None, Some(funcs)) => {
                            let mut items = Vec::with_capacity(funcs.len());
                            for (fname, ty) in funcs {
                                let func = self.emit(Step::Func(Func::Import(HostFunc {
                                    interface: name.clone(),
                                    name: fname.clone(),
                                    ty: ty.clone(),
                                })))?;
                                items.push((fname.clone(), Item::Func(func)));
                            }
                            let resources = resources
                                .iter()
                                .map(|(rname, r)| {
                                    let id =
                                        self.resources.ids.get(r).copied().ok_or_else(|| {
                                            unexpected(format!("resource `{rname}` of `{name}`"))
                                        })?;
                                    Ok((rname.clone(), id))
                                })
                                .collect::<Result<_>>()?;
                            Rc::new(Inst { items, resources })
                        }
                        _ => match arg(name)? {
                            Item::Instance(inst) => inst,
                            Item::Func(_) => {
                                return Err(unexpected(format!("import `{name}` of a function")));
                            }
                        },
                    };
                    // The resource types this component sees through the import are
                    // the ones its argument passes on.
                    for (rname, r) in resources {
                        if let Some((_, id)) = inst.resources.iter().find(|(n, _)| n == rname) {
                            f.resources.insert(*r, *id);
                        }
                    }
                    f.instances.push(inst);
                }
                Decl::Instantiate { module, args } => {
                    let args = args
                        .iter()
                        .map(|(n, i)| Ok((n.clone(), at(&f.core_instances, *i, "core instance")?)))
                        .collect::<Result<_>>()?;
                    let i = self.emit(Step::Instance(CoreInstance::Instantiate {
                        module: index_u32(*module),
                        args,
                    }))?;
                    f.core_instances.push(i);
                }
                Decl::CoreExports(items) => {
                    let items = items
                        .iter()
                        .map(|(n, kind, i)| {
                            let item = match kind {
                                CoreKind::Func => {
                                    CoreItem::Func(at(&f.core_funcs, *i, "core function")?)
                                }
                                CoreKind::Memory => {
                                    CoreItem::Memory(at(&f.memories, *i, "memory")?)
                                }
                                CoreKind::Table => CoreItem::Table(at(&f.tables, *i, "table")?),
                                CoreKind::Global => CoreItem::Global(at(&f.globals, *i, "global")?),
                            };
                            Ok((n.clone(), item))
                        })
                        .collect::<Result<_>>()?;
                    let i = self.emit(Step::Instance(CoreInstance::Exports(items)))?;
                    f.core_instances.push(i);
                }
                Decl::CoreAlias {
                    instance,
                    kind,
                    name,
                } => {
                    let e = CoreExport {
                        instance: at(&f.core_instances, *instance, "core instance")?,
                        name: name.clone(),
                    };
                    let (step, space) = match kind {
                        CoreKind::Func => (Step::CoreFunc(CoreFunc::Export(e)), &mut f.core_funcs),
                        CoreKind::Memory => (Step::Memory(e), &mut f.memories),
                        CoreKind::Table => (Step::Table(e), &mut f.tables),
                        CoreKind::Global => (Step::Global(e), &mut f.globals),
                    };
                    space.push(self.emit(step)?);
                }
                Decl::InstantiateComponent { component, args } => {
                    let args = f.items(args)?;
                    let items = self.run(component, Some(&args))?;
                    f.instances.push(Rc::new(Inst {
                        items,
                        resources: Vec::new(),
                    }));
                }
                Decl::InstanceExports(items) => {
                    let items = f.items(items)?;
                    f.instances.push(Rc::new(Inst {
                        items,
                        resources: Vec::new(),
                    }));
                }
                Decl::AliasFunc { instance, name } => {
                    let inst = at(&f.instances, *instance, "instance")?;
                    match inst.get(name) {
                        Some(Item::Func(func)) => f.funcs.push(*func),
                        _ => return Err(unexpected(format!("function `{name}` of an instance"))),
                    }
                }
                Decl::AliasInstance { instance, name } => {
                    let inst = at(&f.instances, *instance, "instance")?;
                    match inst.get(name) {
                        Some(Item::Instance(i)) => f.instances.push(i.clone()),
                        _ => return Err(unexpected(format!("instance `{name}` of an instance"))),
                    }
                }
                Decl::Lift {
                    core_func,
                    ty,
                    options,
                } => {
                    let step = Step::Func(Func::Lift {
                        core_func: at(&f.core_funcs, *core_func, "core function")?,
                        ty: ty.clone(),
                        options: self.options(&f, *options)?,
                    });
                    let i = self.emit(step)?;
                    f.funcs.push(i);
                }
                Decl::Lower { func, options } => {
                    let step = Step::CoreFunc(CoreFunc::Lower {
                        func: at(&f.funcs, *func, "function")?,
                        options: self.options(&f, *options)?,
                        table,
                    });
                    let i = self.emit(step)?;
                    f.core_funcs.push(i);
                }
                Decl::ResourceDrop { resource } => {
                    // The host's resource this component knows by `resource`; its drop
                    // is the lowering of the host's `[resource-drop]` function.
                    // Every instance import (the root's too) put its resources there.
                    let id =
                        f.resources
                            .get(resource)
                            .copied()
                            .ok_or(ImageBuildError::Builtin {
                                name: "resource.drop".into(),
                            })?;
                    let func = match self.drops.get(&id) {
                        Some(func) => *func,
                        None => {
                            let r = self
                                .resources
                                .list
                                .get(id.0 as usize)
                                .ok_or_else(|| unexpected("a host resource"))?;
                            let func = self.emit(Step::Func(Func::Import(HostFunc {
                                interface: r.resource.interface.clone(),
                                name: format!("[resource-drop]{}", r.resource.name),
                                ty: FuncType {
                                    params: vec![r.own],
                                    result: None,
                                },
                            })))?;
                            self.drops.insert(id, func);
                            func
                        }
                    };
                    let i = self.emit(Step::CoreFunc(CoreFunc::Lower {
                        func,
                        options: CanonOptions::default(),
                        table,
                    }))?;
                    f.core_funcs.push(i);
                }
                Decl::ExportFunc { name, func } => {
                    let func = at(&f.funcs, *func, "function")?;
                    f.funcs.push(func);
                    exports.push((name.clone(), Item::Func(func)));
                }
                Decl::ExportInstance { name, instance } => {
                    let inst = at(&f.instances, *instance, "instance")?;
                    f.instances.push(inst.clone());
                    exports.push((name.clone(), Item::Instance(inst)));
                }
            }
        }
        Ok(exports)
    }
}
