//! A component payload, run as it is: its imports checked against the grant and the
//! world before anything is compiled (deny by default, as for a core module), its
//! exports found, and their types and the imports' types then checked by the
//! bindings' own `InstancePre` and typed-export checks, whose failures are reported
//! as Tern's errors naming the item, with the world's type and the component's.
//!
//! What the component runs as is still the runtime's world: the bindings are
//! generated from `runtime/wit`, and a component whose types differ is refused. No
//! custom section of the component is read.

use tern_core::abi::check_import;
use tern_core::bundle::EngineKind;
use tern_core::{Error, Grant, Interface};
use wasmparser::component_types::{ComponentAnyTypeId, ComponentEntityType};
use wasmparser::types::{Types, TypesRef};
use wasmparser::{ComponentTypeRef, Parser, Payload, TypeBounds, Validator};

use crate::features;

/// The interface of the world's shared types: imported for its types only.
const TYPES_INTERFACE: &str = "tern:edge/types@0.1.0";

/// How a core module names a world-level import, and so how Tern names a
/// component's top-level import that is not an interface.
const ROOT: &str = "$root";

/// The world's functions a component must export.
pub const EXPORTS: [&str; 3] = ["init", "on-event", "health-check"];

/// A component validated under Wasmtime's features ([`features::component`]), with
/// the validator's types for the checks that follow.
pub(crate) struct Validated {
    pub(crate) types: Types,
}

/// Validates a component under Wasmtime's features. A component that does not
/// validate is refused as [`features::validate`] words it (naming a core feature
/// Wasmtime lacks, if that is why).
pub(crate) fn validate(wasm: &[u8]) -> Result<Validated, Error> {
    match Validator::new_with_features(features::component()).validate_all(wasm) {
        Ok(types) => Ok(Validated { types }),
        Err(e) => Err(match features::validate(wasm, EngineKind::Wasmtime) {
            Err(v) => v.into(),
            Ok(()) => Error::InvalidModule(e.to_string()),
        }),
    }
}

/// The component's top-level imports, by name, in order.
fn top_level_imports(wasm: &[u8]) -> Result<Vec<(String, ComponentTypeRef)>, Error> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule(e.to_string());
    let mut imports = Vec::new();
    // Nested modules' and components' payloads come inline, between their section
    // and their `End`.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    imports.push((import.name.name.to_string(), import.ty));
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Checks each import of a component against the world and `grant`, in order, with
/// [`check_import`]'s semantics: deny by default. An instance import named after a
/// `tern:edge` interface may hold that interface's functions (each checked, so an
/// interface the grant lacks is [`Error::ImportNotGranted`]) and types; the world's
/// `types` interface and type imports carry no capability. Anything else (another
/// package's interface, a top-level function, a resource, a module, a value) is
/// [`Error::UnknownImport`] naming it. Returns the interfaces whose functions it
/// imports, in order: what must be linked.
///
/// The component is validated under `features` first, to read its types: Wasmtime's
/// load uses [`features::component`]; a host tool asking what a component imports
/// before deciding which engine it is for may allow more (a component made a device
/// image is refused by name for what wasmi cannot run, not here).
pub fn check_imports(
    wasm: &[u8],
    features: wasmparser::WasmFeatures,
    grant: &Grant,
) -> Result<Vec<Interface>, Error> {
    let types = Validator::new_with_features(features)
        .validate_all(wasm)
        .map_err(|e| Error::InvalidModule(e.to_string()))?;
    imports(wasm, types.as_ref(), grant)
}

/// [`check_imports`] of a component [`validate`] accepted.
pub(crate) fn imports(
    wasm: &[u8],
    types: TypesRef<'_>,
    grant: &Grant,
) -> Result<Vec<Interface>, Error> {
    let unknown = |module: &str, name: &str| Error::UnknownImport {
        module: module.to_string(),
        name: name.to_string(),
    };
    let mut ifaces = Vec::new();
    for (name, ty) in top_level_imports(wasm)? {
        match ty {
            ComponentTypeRef::Type(TypeBounds::Eq(_)) => {}
            ComponentTypeRef::Instance(_) => {
                let Some(ComponentEntityType::Instance(id)) =
                    types.component_item_for_import(&name).map(|i| i.ty)
                else {
                    return Err(unknown(ROOT, &name));
                };
                let exports = &types[id].exports;
                let edge =
                    name == TYPES_INTERFACE || Interface::from_import_module(&name).is_some();
                if !edge {
                    let first = exports.keys().next().map_or("*", String::as_str);
                    return Err(unknown(&name, first));
                }
                for (item, export) in exports {
                    match export.ty {
                        ComponentEntityType::Func(_) => {
                            let iface = check_import(&name, item, grant)?;
                            if !ifaces.contains(&iface) {
                                ifaces.push(iface);
                            }
                        }
                        // A resource type: one the host defines in this interface
                        // (it has a `[resource-drop]`), granted with the interface.
                        ComponentEntityType::Type {
                            referenced: ComponentAnyTypeId::Resource(_),
                            ..
                        } => {
                            let iface =
                                check_import(&name, &format!("[resource-drop]{item}"), grant)
                                    .map_err(|e| match e {
                                        Error::UnknownImport { .. } => unknown(&name, item),
                                        e => e,
                                    })?;
                            if !ifaces.contains(&iface) {
                                ifaces.push(iface);
                            }
                        }
                        ComponentEntityType::Type { .. } => {}
                        _ => return Err(unknown(&name, item)),
                    }
                }
            }
            _ => return Err(unknown(ROOT, &name)),
        }
    }
    Ok(ifaces)
}

/// Checks that the world's exports are there and are functions, from the
/// validator's types, before the component is compiled: a missing one is
/// [`Error::MissingExport`], another kind of item [`Error::TypeMismatch`]. Their
/// function types are checked by the bindings ([`export_error`]).
pub(crate) fn check_exports(validated: &Validated) -> Result<(), Error> {
    let types = validated.types.as_ref();
    for name in EXPORTS {
        match types.component_item_for_export(name).map(|i| &i.ty) {
            None => return Err(Error::MissingExport(name)),
            Some(ComponentEntityType::Func(_)) => {}
            Some(other) => {
                return Err(Error::TypeMismatch {
                    item: name.to_string(),
                    expected: crate::world::func_type(None, name).unwrap_or_default(),
                    found: entity_text(other),
                });
            }
        }
    }
    Ok(())
}

/// The error for a component the linker's `instantiate_pre` refused. Every import
/// was checked against the world by name before ([`imports`]) and every granted
/// interface is linked, so what is left is an imported function of another type
/// than the world's: [`Error::TypeMismatch`] naming it (`tern:edge/log@0.1.0#log`).
pub(crate) fn import_error(e: &wasmtime::Error, validated: &Validated) -> Error {
    let messages: Vec<String> = e.chain().map(ToString::to_string).collect();
    // "component imports instance `X`, but a matching implementation was not found
    // in the linker", then "instance export `f` has the wrong type".
    let instance = messages
        .iter()
        .find_map(|m| between(m.strip_prefix("component imports instance `")?));
    let func = messages
        .iter()
        .find_map(|m| between(m.strip_prefix("instance export `")?));
    if let (Some(instance), Some(func)) = (instance, func) {
        let types = validated.types.as_ref();
        let found = types
            .component_item_for_import(instance)
            .and_then(|i| match i.ty {
                ComponentEntityType::Instance(id) => types[id].exports.get(func),
                _ => None,
            })
            .map(|item| match item.ty {
                ComponentEntityType::Func(id) => tern_wit::text::component_func(types, id),
                ref other => entity_text(other),
            });
        if let (Some(expected), Some(found)) =
            (crate::world::func_type(Some(instance), func), found)
        {
            return Error::TypeMismatch {
                item: format!("{instance}#{func}"),
                expected,
                found,
            };
        }
    }
    Error::InvalidModule(format!(
        "the component's imports do not fit the tern:edge@0.1.0 world: {}",
        e.root_cause()
    ))
}

/// The error for a component the bindings' typed-export checks refused
/// (`type-checking export func `on-event``): [`Error::TypeMismatch`] naming the
/// export, with the world's type and the component's.
pub(crate) fn export_error(e: &wasmtime::Error, validated: &Validated) -> Error {
    let types = validated.types.as_ref();
    let named = e.chain().find_map(|m| {
        let m = m.to_string();
        let name = between(m.strip_prefix("type-checking export func `")?)?;
        EXPORTS.into_iter().find(|n| *n == name)
    });
    let name = named.or_else(|| {
        // "no export `x` found", "export `x` is not a function": ruled out by
        // `check_exports`, but named if the bindings say so.
        e.chain().find_map(|m| {
            let m = m.to_string();
            let rest = m
                .strip_prefix("no export `")
                .or_else(|| m.strip_prefix("export `"))?;
            let name = between(rest)?;
            EXPORTS.into_iter().find(|n| *n == name)
        })
    });
    let Some(name) = name else {
        return Error::InvalidModule(format!(
            "the component's exports do not fit the tern:edge@0.1.0 world: {}",
            e.root_cause()
        ));
    };
    match types.component_item_for_export(name).map(|i| &i.ty) {
        None => Error::MissingExport(name),
        Some(found) => Error::TypeMismatch {
            item: name.to_string(),
            expected: crate::world::func_type(None, name).unwrap_or_default(),
            found: match found {
                ComponentEntityType::Func(id) => tern_wit::text::component_func(types, *id),
                other => entity_text(other),
            },
        },
    }
}

/// What comes before the next backtick.
fn between(s: &str) -> Option<&str> {
    s.split_once('`').map(|(name, _)| name)
}

/// An item that is not a function, for a type mismatch.
fn entity_text(e: &ComponentEntityType) -> String {
    match e {
        ComponentEntityType::Module(_) => "a core module",
        ComponentEntityType::Func(_) => "a function",
        ComponentEntityType::Value(_) => "a value",
        ComponentEntityType::Type { .. } => "a type",
        ComponentEntityType::Instance(_) => "an instance",
        ComponentEntityType::Component(_) => "a component",
    }
    .to_string()
}
