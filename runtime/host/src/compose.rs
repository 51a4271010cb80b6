//! Composition: an app component whose imports other components satisfy, made into
//! one component a Tern host runs like any other.
//!
//! A component may import an interface that another component of the same app
//! exports (the `environment` example imports `tern:ruuvi/decode@0.1.0`, which the
//! `ruuvi-decoder` component exports). [`compose`] checks each plug against the app's
//! import (the interface is imported, the plug exports it, its type is a subtype of
//! the imported one), checks that every import left is one a Tern host provides (a
//! `tern:edge` interface or a type), and encodes the composition with `wasm-compose`:
//! the app and each plug are nested in it byte for byte as given, each plug is
//! instantiated and its export passed to the app's instantiation, and the app's
//! exports are the composition's. Each component keeps its own core modules, so its
//! own linear memory; a call from the app into a plug goes through the canonical ABI
//! (lifted from the caller's memory, lowered into the callee's), on Wasmtime by its
//! component runtime, on a device by `tern_wit::device_image`'s adapter.
//!
//! Composing changes no byte of the app: replacing a plug (a decoder by a mock in a
//! test) gives a composition in which the app's component is the same bytes.
//!
//! [`componentize`] makes the component of a core module built against a world of
//! its own (`tern:ruuvi/environment`, `tern:ruuvi/decoder`), from the module's
//! `component-type` sections. It is for composition only: a `tern:edge` module Tern
//! runs directly is componentized by `tern_wasmtime::WasmtimeEngine::componentize`,
//! against the runtime's world and never its own.

use std::fmt;

use tern_core::Interface;
use wasm_compose::graph::{Component, CompositionGraph, EncodeOptions};
use wasmparser::component_types::{ComponentEntityType, SubtypeCx};
use wasmparser::types::{Types, TypesRef};
use wasmparser::{ComponentTypeRef, TypeBounds, Validator};

/// The `tern:edge` interface that holds only types; imported for them, it carries no
/// capability.
const TYPES_INTERFACE: &str = "tern:edge/types@0.1.0";

/// Why components could not be composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// A core module could not be made a component ([`componentize`]).
    Componentize(String),
    /// The app or a plug is not a valid component. `component` is `app` or the
    /// interface the plug was given for.
    Invalid {
        /// `app`, or the interface of the plug.
        component: String,
        /// The validator's message.
        reason: String,
    },
    /// Two plugs for one interface.
    Duplicate {
        /// The interface.
        interface: String,
    },
    /// A plug for an interface the app does not import.
    NotImported {
        /// The interface.
        interface: String,
    },
    /// The plug given for `interface` does not export it (as an instance).
    MissingExport {
        /// The interface.
        interface: String,
    },
    /// The plug exports `interface`, but not of the type the app imports: its `item`
    /// is missing or not a subtype of the app's.
    TypeMismatch {
        /// The interface.
        interface: String,
        /// The function or type of the interface that does not fit.
        item: String,
        /// The validator's wording of the difference.
        reason: String,
    },
    /// An import that no plug satisfies and no Tern host provides (`tern:edge`
    /// interfaces and types are what a host provides).
    Unsatisfied {
        /// `app`, or the interface of the plug that imports it.
        component: String,
        /// The import's name.
        import: String,
    },
    /// The composition library refused the graph after these checks passed.
    Encode(String),
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComposeError::Componentize(e) => write!(f, "cannot make a component: {e}"),
            ComposeError::Invalid { component, reason } => {
                write!(f, "{component}: not a valid component: {reason}")
            }
            ComposeError::Duplicate { interface } => {
                write!(f, "two components plugged into `{interface}`")
            }
            ComposeError::NotImported { interface } => write!(
                f,
                "the app does not import `{interface}`: nothing to plug a component into"
            ),
            ComposeError::MissingExport { interface } => write!(
                f,
                "the component plugged into `{interface}` does not export it"
            ),
            ComposeError::TypeMismatch {
                interface,
                item,
                reason,
            } => write!(
                f,
                "the component plugged into `{interface}` exports `{item}` of another type than the app imports: {reason}"
            ),
            ComposeError::Unsatisfied { component, import } => write!(
                f,
                "{component} imports `{import}`, which no plugged component exports and no Tern host provides"
            ),
            ComposeError::Encode(e) => write!(f, "cannot compose: {e}"),
        }
    }
}

impl std::error::Error for ComposeError {}

/// The component of a core module built with wit-bindgen against a world of its own,
/// from the module's `component-type` custom sections (deterministic: the same
/// module gives the same bytes).
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, ComposeError> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| ComposeError::Componentize(format!("{e:#}")))
}

/// Composes `app` with `plugs`: each `(interface, component)` satisfies the app's
/// import of `interface` (`tern:ruuvi/decode@0.1.0`) with the component's export of
/// the same name. The result imports what the app and the plugs import from the host
/// (once each) and exports what the app exports; the app and the plugs are in it as
/// given, byte for byte.
///
/// Refused, in this order: an `app` that is not a valid component
/// ([`ComposeError::Invalid`]); then per plug, in order, a second plug for an
/// interface ([`ComposeError::Duplicate`]), an interface the app does not import
/// ([`ComposeError::NotImported`]), a plug that is not a valid component, that does
/// not export the interface ([`ComposeError::MissingExport`]) or exports it with
/// another type ([`ComposeError::TypeMismatch`]); then the first import, of the app
/// and then of each plug, that is neither plugged nor provided by a Tern host
/// ([`ComposeError::Unsatisfied`]).
pub fn compose(app: &[u8], plugs: &[(&str, &[u8])]) -> Result<Vec<u8>, ComposeError> {
    // One validator for every component, so that their types can be compared.
    let mut validator = Validator::new();
    let app_types = validate(&mut validator, app, "app")?;
    for (i, &(interface, plug)) in plugs.iter().enumerate() {
        if plugs[..i].iter().any(|(other, _)| *other == interface) {
            return Err(ComposeError::Duplicate {
                interface: interface.to_string(),
            });
        }
        let Some(ComponentEntityType::Instance(imported)) = app_types
            .as_ref()
            .component_item_for_import(interface)
            .map(|i| i.ty)
        else {
            return Err(ComposeError::NotImported {
                interface: interface.to_string(),
            });
        };
        let types = validate(&mut validator, plug, interface)?;
        let Some(ComponentEntityType::Instance(exported)) = types
            .as_ref()
            .component_item_for_export(interface)
            .map(|i| i.ty)
        else {
            return Err(ComposeError::MissingExport {
                interface: interface.to_string(),
            });
        };
        check_fit(
            interface,
            types.as_ref(),
            exported,
            app_types.as_ref(),
            imported,
        )?;
    }
    let plugged = |name: &str| plugs.iter().any(|(interface, _)| *interface == name);
    for (name, ty) in top_level_imports(app)? {
        if !plugged(&name) && !host_provided(&name, ty) {
            return Err(ComposeError::Unsatisfied {
                component: "app".to_string(),
                import: name,
            });
        }
    }
    for &(interface, plug) in plugs {
        for (name, ty) in top_level_imports(plug)? {
            if !host_provided(&name, ty) {
                return Err(ComposeError::Unsatisfied {
                    component: interface.to_string(),
                    import: name,
                });
            }
        }
    }
    encode(app, plugs).map_err(ComposeError::Encode)
}

/// Validates `wasm` as a component; its types, or [`ComposeError::Invalid`] naming it.
fn validate(validator: &mut Validator, wasm: &[u8], name: &str) -> Result<Types, ComposeError> {
    let invalid = |reason: String| ComposeError::Invalid {
        component: name.to_string(),
        reason,
    };
    if !wasmparser::Parser::is_component(wasm) {
        return Err(invalid("a core module, not a component".to_string()));
    }
    validator.reset();
    validator
        .validate_all(wasm)
        .map_err(|e| invalid(e.to_string()))
}

/// Checks that the plug's exported instance `exported` fits the app's imported
/// instance `imported`: every item the app imports is there and a subtype of it.
fn check_fit(
    interface: &str,
    plug: TypesRef<'_>,
    exported: wasmparser::component_types::ComponentInstanceTypeId,
    app: TypesRef<'_>,
    imported: wasmparser::component_types::ComponentInstanceTypeId,
) -> Result<(), ComposeError> {
    let mismatch = |item: &str, reason: String| ComposeError::TypeMismatch {
        interface: interface.to_string(),
        item: item.to_string(),
        reason,
    };
    let offered = &plug[exported].exports;
    for (item, wanted) in &app[imported].exports {
        let Some(found) = offered.get(item) else {
            return Err(mismatch(item, "missing".to_string()));
        };
        SubtypeCx::new_with_refs(plug, app)
            .component_entity_type(&found.ty, &wanted.ty, 0)
            .map_err(|e| mismatch(item, e.message().to_string()))?;
    }
    // The same question asked of the whole instance, as instantiation asks it (type
    // exports are substituted by the ones the plug gives).
    SubtypeCx::new_with_refs(plug, app)
        .component_entity_type(
            &ComponentEntityType::Instance(exported),
            &ComponentEntityType::Instance(imported),
            0,
        )
        .map_err(|e| mismatch(interface, e.message().to_string()))
}

/// Whether a Tern host provides an import: a type, the world's types interface or a
/// `tern:edge` interface. Whether its functions are the world's and granted is the
/// engine's check at load.
fn host_provided(name: &str, ty: ComponentTypeRef) -> bool {
    match ty {
        ComponentTypeRef::Type(TypeBounds::Eq(_)) => true,
        ComponentTypeRef::Instance(_) => {
            name == TYPES_INTERFACE || Interface::from_import_module(name).is_some()
        }
        _ => false,
    }
}

/// A valid component's top-level imports, in order.
fn top_level_imports(wasm: &[u8]) -> Result<Vec<(String, ComponentTypeRef)>, ComposeError> {
    let invalid = |e: wasmparser::BinaryReaderError| ComposeError::Encode(e.to_string());
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
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

/// An error of the composition library with its causes (`anyhow`'s alternate form).
fn text(e: impl fmt::Display) -> String {
    format!("{e:#}")
}

/// The composition graph: each plug instantiated, its export passed to the app's
/// instantiation, the app's exports exported; components defined in it, as given.
fn encode(app: &[u8], plugs: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let mut validator = Validator::new();
    let mut graph = CompositionGraph::new();
    let app_id = Component::from_bytes(&mut validator, "app", app)
        .and_then(|c| graph.add_component(c))
        .map_err(text)?;
    let app_instance = graph.instantiate(app_id).map_err(text)?;
    for (i, &(interface, plug)) in plugs.iter().enumerate() {
        let component =
            Component::from_bytes(&mut validator, format!("plug{i}"), plug).map_err(text)?;
        let (export, _, _) = component
            .export_by_name(interface)
            .ok_or_else(|| format!("no export `{interface}`"))?;
        let id = graph.add_component(component).map_err(text)?;
        let instance = graph.instantiate(id).map_err(text)?;
        let (import, _) = graph
            .get_component(app_id)
            .and_then(|c| c.import_by_name(interface))
            .ok_or_else(|| format!("no import `{interface}`"))?;
        graph
            .connect(instance, Some(export), app_instance, import)
            .map_err(text)?;
    }
    graph
        .encode(EncodeOptions {
            define_components: true,
            export: Some(app_instance),
            validate: true,
        })
        .map_err(text)
}
