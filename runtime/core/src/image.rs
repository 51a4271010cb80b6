//! What an engine without a component model runs: a world's description and the
//! device image.
//!
//! A component is core modules plus the component model's glue: which core instance
//! is made from which module with which imports, which host function is lowered into
//! a core function with which canonical options, which core function is lifted into
//! an export. wasmi runs core modules only, so the host tools take a component apart
//! when it is signed and write that glue down as a [`DeviceImage`]: the modules, the
//! type descriptions `tern-cabi` lifts and lowers by, and the definitions in the
//! order the component made them, nested components flattened. `tern-wasmi` replays
//! the definitions one by one (each refers only to what came before it), so the
//! device never parses a component, a WIT file or a type section.
//!
//! A [`World`] is the smaller description a host needs to run a *core module* built
//! against a world (today's `tern:edge` components): every function it may import,
//! by its core import name, and every function it must export, with their types.
//! The host tools make both from WIT (never from a section the guest carries), and
//! both are postcard in the signed bundle or compiled into a board's table.
//!
//! Indices are `u32` into the image's own index spaces (core instances, core
//! functions, memories, tables, globals, component functions), like the component
//! binary format's; every reference is checked by [`DeviceImage::check`] before
//! anything runs.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use tern_cabi::{FuncType, Types};

/// Every function of a world at its core names, with the type descriptions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// The world's package and name, for messages (`tern:edge/runtime@0.1.0`).
    pub name: String,
    /// Every type the functions below refer to.
    pub types: Types,
    /// Functions a component may import, by core module and name
    /// (`tern:edge/clock@0.1.0`, `now-ms`).
    pub imports: Vec<HostFunc>,
    /// Functions a component must export, by core export name (`on-event`, or
    /// `tern:ruuvi/decode@0.1.0#decode` for a function of an exported interface).
    pub exports: Vec<NamedFunc>,
    /// The host's resources the functions' handles refer to, numbered by
    /// `tern_cabi::ResourceId`.
    pub resources: Vec<Resource>,
}

/// A resource the host defines (`bucket` of `wasi:keyvalue/store`): what an
/// `own<bucket>` or `borrow<bucket>` of a description names, in a world's or an
/// image's list (each numbers its own, so two descriptions are compared by these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// The interface that defines it, as a core import module names it
    /// (`wasi:keyvalue/store@0.2.0-draft`).
    pub interface: String,
    /// The resource's name in that interface (`bucket`).
    pub name: String,
}

/// A function the host provides: an interface's function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFunc {
    /// The interface as a core import module names it: `tern:edge/kv@0.1.0`,
    /// `wasi:logging/logging@0.1.0-draft`, or `$root` for a world-level function.
    pub interface: String,
    /// The function's name in that interface (`get`).
    pub name: String,
    /// Its parameter and result types.
    pub ty: FuncType,
}

/// A function by name with its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFunc {
    /// The core export name.
    pub name: String,
    /// Its parameter and result types.
    pub ty: FuncType,
}

impl World {
    /// The function a component imports as `module`.`name`, if the world has it.
    pub fn import(&self, module: &str, name: &str) -> Option<&HostFunc> {
        self.imports
            .iter()
            .find(|f| f.interface == module && f.name == name)
    }

    /// The function a component must export as `name`, if the world has it.
    pub fn export(&self, name: &str) -> Option<&NamedFunc> {
        self.exports.iter().find(|f| f.name == name)
    }
}

/// The `tern:edge@0.1.0` world `component`, as `tern-wit` describes it from
/// `runtime/wit/tern-edge.wit`.
///
/// The description is compiled in as postcard (`tern-edge.world`, written by `cargo
/// run -p tern-wit --bin tern-wit-gen`; tern-wit's tests fail while it is out of date
/// with the WIT). It is decoded, and its types validated, on every call: an engine
/// calls this once when it starts and keeps the result.
///
/// # Panics
///
/// If the compiled-in bytes do not decode, which the tests of this crate and of
/// `tern-wit` rule out: they are part of the build, not input.
pub fn tern_edge() -> World {
    match postcard::from_bytes(include_bytes!("tern-edge.world")) {
        Ok(world) => world,
        Err(e) => panic!(
            "tern-edge.world does not decode ({e}): run `cargo run -p tern-wit --bin tern-wit-gen`"
        ),
    }
}

/// Bumped whenever the meaning of an image changes; a device refuses another.
pub const IMAGE_VERSION: u16 = 2;

/// A component taken apart for an engine that runs core wasm only.
///
/// `M` holds each core module's bytes: owned (`Vec<u8>`) where an image is made,
/// borrowed from the bundle (`&[u8]`, [`decode`]) where one is loaded, so that a
/// device does not hold a second copy of every module on its heap while wasmi
/// compiles them. Both have the same encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceImage<M = Vec<u8>> {
    /// [`IMAGE_VERSION`] when it was made.
    pub version: u16,
    /// Every type the functions refer to.
    pub types: Types,
    /// Core modules, as core wasm binaries, in the order the component defines them.
    pub modules: Vec<M>,
    /// The definitions in the order the component makes them.
    pub steps: Vec<Step>,
    /// What the image exports: component functions by name (`on-event`,
    /// `tern:ruuvi/decode@0.1.0#decode`).
    pub exports: Vec<Export>,
    /// The host resources the types' handles name, by `tern_cabi::ResourceId`.
    pub resources: Vec<Resource>,
    /// How many resource-handle tables the image's lowerings use: one per component
    /// instance, so that a component can use only the handles it was given.
    pub tables: u32,
}

/// One definition; each appends one item to its index space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// A component function (index space "funcs").
    Func(Func),
    /// A core function (index space "core funcs").
    CoreFunc(CoreFunc),
    /// A core memory exported by an instance (index space "memories").
    Memory(CoreExport),
    /// A core table exported by an instance (index space "tables").
    Table(CoreExport),
    /// A core global exported by an instance (index space "globals").
    Global(CoreExport),
    /// A core instance (index space "instances").
    Instance(CoreInstance),
}

/// A component-level function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// Imported from the host: granted or not by the board's policy like any import.
    Import(HostFunc),
    /// A core function lifted with canonical options (`canon lift`): an export, or
    /// (in a composition) what another component's import is lowered from.
    Lift {
        /// The core function lifted (index space "core funcs").
        core_func: u32,
        /// The component function's type.
        ty: FuncType,
        /// Memory, `cabi_realloc` and post-return.
        options: CanonOptions,
    },
}

/// A core function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoreFunc {
    /// An instance's export.
    Export(CoreExport),
    /// A component function lowered with canonical options (`canon lower`): a host
    /// call, or a call into another component's lifted export.
    Lower {
        /// The component function lowered (index space "funcs").
        func: u32,
        /// Memory and `cabi_realloc` (a lowering has no post-return).
        options: CanonOptions,
        /// The handle table of the component instance that lowers it: where the
        /// handles it passes are looked up and those it receives are put (below
        /// [`DeviceImage::tables`]). A resource's `canon resource.drop` is the
        /// lowering of the host's `[resource-drop]<name>` function.
        table: u32,
    },
}

/// An item an instance exports, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreExport {
    /// The core instance (index space "instances").
    pub instance: u32,
    /// The export's name.
    pub name: String,
}

/// A core instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoreInstance {
    /// `module` instantiated; each import module name is served by an instance.
    Instantiate {
        /// Index into [`DeviceImage::modules`].
        module: u32,
        /// Import module name and the instance (index space "instances") serving it.
        args: Vec<(String, u32)>,
    },
    /// A bag of items made into an instance, to be passed as an argument.
    Exports(Vec<(String, CoreItem)>),
}

/// An item of one of the core index spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoreItem {
    /// Index space "core funcs".
    Func(u32),
    /// Index space "memories".
    Memory(u32),
    /// Index space "tables".
    Table(u32),
    /// Index space "globals".
    Global(u32),
}

/// The canonical options of a lift or lower. Strings are UTF-8 always (an image with
/// another encoding is refused when it is made).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonOptions {
    /// The memory pointers refer to (index space "memories").
    pub memory: Option<u32>,
    /// `cabi_realloc` (index space "core funcs").
    pub realloc: Option<u32>,
    /// Called after a lifted export's result has been read (index space "core funcs").
    pub post_return: Option<u32>,
}

/// A component function the image exports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// The export's name.
    pub name: String,
    /// Index space "funcs".
    pub func: u32,
}

/// Why an image is not well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Made for another version of this format.
    Version {
        /// The image's version.
        found: u16,
    },
    /// A definition refers to an item not defined before it.
    Dangling {
        /// The step (the number of steps for an export).
        step: usize,
        /// The index space.
        space: &'static str,
        /// The index.
        index: u32,
    },
    /// A function type refers to a type the description does not have.
    UnknownType {
        /// The step.
        step: usize,
    },
    /// A handle type names a resource the image does not list.
    UnknownResource {
        /// The resource id.
        resource: u32,
    },
    /// Two exports share a name.
    DuplicateExport {
        /// The name.
        name: String,
    },
    /// The bytes are not an encoded image.
    Malformed(&'static str),
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ImageError::Version { found } => write!(
                f,
                "device image version {found}, this runtime reads {IMAGE_VERSION}: sign the component again with this release's `tern sign`"
            ),
            ImageError::Dangling { step, space, index } => write!(
                f,
                "device image step {step} refers to {space} {index}, which is not defined before it"
            ),
            ImageError::UnknownType { step } => write!(
                f,
                "device image step {step} has a function type the image's type description does not have"
            ),
            ImageError::UnknownResource { resource } => write!(
                f,
                "device image types name resource {resource}, which its resource list does not have"
            ),
            ImageError::DuplicateExport { name } => {
                write!(f, "device image exports `{name}` twice")
            }
            ImageError::Malformed(why) => write!(f, "not a device image: {why}"),
        }
    }
}

impl<M> DeviceImage<M> {
    /// Checks every reference points at something defined before it, so that running
    /// the steps in order never looks up a missing item.
    pub fn check(&self) -> Result<(), ImageError> {
        if self.version != IMAGE_VERSION {
            return Err(ImageError::Version {
                found: self.version,
            });
        }
        for node in self.types.nodes() {
            if let tern_cabi::TypeNode::Own(r) | tern_cabi::TypeNode::Borrow(r) = node
                && r.0 as usize >= self.resources.len()
            {
                return Err(ImageError::UnknownResource { resource: r.0 });
            }
        }
        let mut n = IndexSpaces::default();
        for (step, s) in self.steps.iter().enumerate() {
            let need = |space: &'static str, index: u32, len: u32| {
                if index < len {
                    Ok(())
                } else {
                    Err(ImageError::Dangling { step, space, index })
                }
            };
            let ty_ok = |ty: &FuncType| {
                ty.params
                    .iter()
                    .chain(&ty.result)
                    .all(|id| self.types.node(*id).is_some())
                    .then_some(())
                    .ok_or(ImageError::UnknownType { step })
            };
            let options = |o: &CanonOptions, n: &IndexSpaces| {
                if let Some(m) = o.memory {
                    need("memory", m, n.memories)?;
                }
                for f in [o.realloc, o.post_return].into_iter().flatten() {
                    need("core func", f, n.core_funcs)?;
                }
                Ok(())
            };
            match s {
                Step::Func(Func::Import(h)) => {
                    ty_ok(&h.ty)?;
                }
                Step::Func(Func::Lift {
                    core_func,
                    ty,
                    options: o,
                }) => {
                    ty_ok(ty)?;
                    need("core func", *core_func, n.core_funcs)?;
                    options(o, &n)?;
                }
                Step::CoreFunc(CoreFunc::Export(e)) => {
                    need("instance", e.instance, n.instances)?;
                }
                Step::CoreFunc(CoreFunc::Lower {
                    func,
                    options: o,
                    table,
                }) => {
                    need("func", *func, n.funcs)?;
                    need("handle table", *table, self.tables)?;
                    options(o, &n)?;
                }
                Step::Memory(e) | Step::Table(e) | Step::Global(e) => {
                    need("instance", e.instance, n.instances)?;
                }
                Step::Instance(CoreInstance::Instantiate { module, args }) => {
                    let modules = u32::try_from(self.modules.len()).unwrap_or(u32::MAX);
                    need("module", *module, modules)?;
                    for (_, i) in args {
                        need("instance", *i, n.instances)?;
                    }
                }
                Step::Instance(CoreInstance::Exports(items)) => {
                    for (_, item) in items {
                        match *item {
                            CoreItem::Func(i) => need("core func", i, n.core_funcs)?,
                            CoreItem::Memory(i) => need("memory", i, n.memories)?,
                            CoreItem::Table(i) => need("table", i, n.tables)?,
                            CoreItem::Global(i) => need("global", i, n.globals)?,
                        }
                    }
                }
            }
            n.define(s);
        }
        // A set, not a scan of the earlier exports: an image is input, and a scan is
        // quadratic in its length.
        let mut names = BTreeSet::new();
        for e in &self.exports {
            if e.func >= n.funcs {
                return Err(ImageError::Dangling {
                    step: self.steps.len(),
                    space: "func",
                    index: e.func,
                });
            }
            if !names.insert(e.name.as_str()) {
                return Err(ImageError::DuplicateExport {
                    name: e.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// How many items each index space holds so far. Each [`Step`] appends one item to
/// its space, so the index a step defines is its space's count before it: the one
/// numbering rule that the image's maker (`tern-wit`) follows and
/// [`DeviceImage::check`] holds an image to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSpaces {
    funcs: u32,
    core_funcs: u32,
    memories: u32,
    tables: u32,
    globals: u32,
    instances: u32,
}

impl IndexSpaces {
    /// Counts `step` into its index space; returns the index it defines there.
    pub fn define(&mut self, step: &Step) -> u32 {
        let space = match step {
            Step::Func(_) => &mut self.funcs,
            Step::CoreFunc(_) => &mut self.core_funcs,
            Step::Memory(_) => &mut self.memories,
            Step::Table(_) => &mut self.tables,
            Step::Global(_) => &mut self.globals,
            Step::Instance(_) => &mut self.instances,
        };
        let index = *space;
        *space = index.saturating_add(1);
        index
    }
}

/// The first bytes of an encoded [`DeviceImage`]: never a core module's or a
/// component's (`\0asm`), so a payload says what it is.
pub const IMAGE_MAGIC: [u8; 4] = *b"\0tdi";

/// Whether `bytes` are an encoded device image (by their magic; [`decode`] checks
/// the rest).
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&IMAGE_MAGIC)
}

/// `image` as the bytes a bundle carries: [`IMAGE_MAGIC`], then postcard.
pub fn encode<M: Serialize>(image: &DeviceImage<M>) -> Vec<u8> {
    let mut out = Vec::from(IMAGE_MAGIC);
    // Writing to a Vec cannot fail; postcard's only error is a full buffer.
    if let Ok(body) = postcard::to_allocvec(image) {
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes and [checks](DeviceImage::check) an image: exactly the bytes [`encode`]
/// writes, nothing after them. The modules are borrowed from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<DeviceImage<&[u8]>, ImageError> {
    let body = bytes
        .strip_prefix(&IMAGE_MAGIC)
        .ok_or(ImageError::Malformed(
            "it does not start with the device-image magic",
        ))?;
    let (image, rest): (DeviceImage<&[u8]>, _) = postcard::take_from_bytes(body)
        .map_err(|_| ImageError::Malformed("its body is not a device image"))?;
    if !rest.is_empty() {
        return Err(ImageError::Malformed("bytes follow the image"));
    }
    image.check()?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use crate::Interface;

    #[test]
    fn the_compiled_in_world_decodes_with_every_function() {
        let w = super::tern_edge();
        assert_eq!(w.name, "tern:edge/runtime@0.1.0");
        for iface in Interface::ALL {
            for name in crate::abi::functions(iface) {
                assert!(w.import(iface.import_module(), name).is_some(), "{name}");
            }
        }
        for name in ["init", "on-event", "health-check"] {
            assert!(w.export(name).is_some(), "{name}");
        }
    }

    /// An image with one host import lowered into `tables` handle tables, its type
    /// holding a handle to resource `resource`, and `resources` listed.
    fn image(table: u32, tables: u32, resource: u32, resources: usize) -> super::DeviceImage {
        use super::*;
        let mut b = tern_cabi::TypesBuilder::new();
        let own = b.add(tern_cabi::TypeNode::Own(tern_cabi::ResourceId(resource)));
        DeviceImage {
            version: IMAGE_VERSION,
            types: b.finish().unwrap(),
            modules: Vec::new(),
            steps: alloc::vec![
                Step::Func(Func::Import(HostFunc {
                    interface: "wasi:keyvalue/store@0.2.0-draft".into(),
                    name: "[resource-drop]bucket".into(),
                    ty: FuncType {
                        params: alloc::vec![own],
                        result: None,
                    },
                })),
                Step::CoreFunc(CoreFunc::Lower {
                    func: 0,
                    options: CanonOptions::default(),
                    table,
                }),
            ],
            exports: Vec::new(),
            resources: (0..resources)
                .map(|_| Resource {
                    interface: "wasi:keyvalue/store@0.2.0-draft".into(),
                    name: "bucket".into(),
                })
                .collect(),
            tables,
        }
    }

    #[test]
    fn handle_tables_and_resources_are_checked_like_every_reference() {
        use super::*;
        let good = image(0, 1, 0, 1);
        assert_eq!(decode(&encode(&good)).map(|_| ()), Ok(()));
        // A lowering into a handle table the image does not have.
        assert_eq!(
            image(1, 1, 0, 1).check(),
            Err(ImageError::Dangling {
                step: 1,
                space: "handle table",
                index: 1
            })
        );
        // A handle to a resource the image does not list.
        let e = image(0, 1, 1, 1).check().unwrap_err();
        assert_eq!(e, ImageError::UnknownResource { resource: 1 });
        assert!(alloc::format!("{e}").contains("resource 1"), "{e}");
        // An image of the version before resources is refused, saying to sign again.
        let old = DeviceImage { version: 1, ..good };
        let e = decode(&encode(&old)).unwrap_err();
        assert_eq!(e, ImageError::Version { found: 1 });
        assert!(
            alloc::format!("{e}").contains("sign the component again"),
            "{e}"
        );
    }
}
