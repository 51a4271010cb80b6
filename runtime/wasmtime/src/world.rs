//! The runtime's own `tern:edge/component` world, which the Wasmtime path puts into
//! every core module before componentizing it.
//!
//! A guest built with wit-bindgen carries its world in `component-type*` custom
//! sections. They are not signed apart from the payload as a whole, a C toolchain or a
//! strip may drop them, and a guest could name another world in them. wasmi never
//! reads them (it runs the core module against this world's ABI), so Wasmtime must
//! not either: the sections are dropped and the runtime's world, parsed from the WIT
//! text compiled into `tern-core` ([`tern_core::wit::WIT_TEXT`]), takes their place.

use std::sync::OnceLock;

use tern_core::Error;
use tern_wit::text;
use wasmparser::{Parser, Payload};
use wit_parser::{Resolve, WorldId};

/// The resolved WIT and its world `runtime` (`component` and the WASI interfaces),
/// which core modules are componentized against and whose functions' types error
/// messages quote.
pub(crate) struct World {
    resolve: Resolve,
    runtime: WorldId,
}

/// The world, resolved once per process from the same text `bindgen!` compiled.
pub(crate) fn world() -> Result<&'static World, Error> {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            let (resolve, package) = tern_wit::runtime_wit()?;
            let runtime = resolve
                .select_world(&[package], Some("runtime"))
                .map_err(|e| format!("{e:#}"))?;
            Ok(World { resolve, runtime })
        })
        .as_ref()
        .map_err(|e| Error::Engine(format!("the runtime's WIT does not resolve: {e}")))
}

/// The world's type of one of its functions, every type spelled out as a
/// component's is ([`tern_wit::text`], `func(pin: u32, high: bool) -> result<_,
/// string>`): a function of an imported interface (`tern:edge/gpio@0.1.0`, `set`)
/// or, with `interface` `None`, an export of the world (`on-event`).
pub(crate) fn func_type(interface: Option<&str>, name: &str) -> Option<String> {
    let World { resolve, runtime } = world().ok()?;
    let w = &resolve.worlds[*runtime];
    let func = match interface {
        Some(iface) => w.imports.iter().find_map(|(key, item)| match item {
            wit_parser::WorldItem::Interface { id, .. } if resolve.name_world_key(key) == iface => {
                resolve.interfaces[*id].functions.get(name)
            }
            _ => None,
        })?,
        None => w.exports.values().find_map(|item| match item {
            wit_parser::WorldItem::Function(f) if f.name == name => Some(f),
            _ => None,
        })?,
    };
    let render = |t| text::wit_type(resolve, t, text::Names::SpelledOut);
    let params: Vec<String> = func
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, render(&p.ty)))
        .collect();
    Some(text::func(&params, func.result.as_ref().map(render)))
}

/// Whether a custom section carries component-type metadata (wit-bindgen's
/// `component-type:wit-bindgen:0.61.1:tern:edge@0.1.0:component:encoded world`, or any
/// other name wit-component would read).
pub fn is_component_type(name: &str) -> bool {
    name.starts_with("component-type")
}

/// `wasm` with its own `component-type*` custom sections dropped and the runtime's
/// world embedded in their place. Every other section is copied byte for byte, in
/// order, so the result depends only on `wasm`.
pub(crate) fn with_runtime_world(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    // World `runtime`: a core module may import the WASI interfaces too (it uses
    // what it imports; wit-component keeps only those).
    let World { resolve, runtime } = world()?;
    let mut module = strip_component_type(wasm)?;
    wit_component::embed_component_metadata(
        &mut module,
        resolve,
        *runtime,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| Error::Engine(format!("cannot embed the tern:edge world: {e:#}")))?;
    Ok(module)
}

/// `wasm` without its `component-type*` custom sections.
pub fn strip_component_type(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule(e.to_string());
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        if let Payload::Version { encoding, .. } = &payload
            && *encoding != wasmparser::Encoding::Module
        {
            return Err(Error::InvalidModule(
                "a component, not a core module".to_string(),
            ));
        }
        if let Payload::CustomSection(section) = &payload
            && is_component_type(section.name())
        {
            continue;
        }
        // Whole sections only: the code section arrives once as a whole and then
        // once per function body, which `as_section` leaves out.
        if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    #[test]
    fn the_runtime_world_resolves_and_exports_the_handlers() {
        let World { resolve, runtime } = world().unwrap();
        let w = &resolve.worlds[*runtime];
        assert_eq!(w.name, "runtime");
        let exports: Vec<String> = w
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert_eq!(exports, ["init", "on-event", "health-check"]);
    }

    #[test]
    fn stripping_keeps_every_other_section_and_embedding_is_deterministic() {
        // An empty module with a component-type section and a name section.
        let mut wasm = wasm_encoder::Module::new();
        wasm.section(&wasm_encoder::CustomSection {
            name: "component-type:other".into(),
            data: b"not a world".into(),
        });
        wasm.section(&wasm_encoder::CustomSection {
            name: "name".into(),
            data: b"".into(),
        });
        let wasm = wasm.finish();
        let stripped = strip_component_type(&wasm).unwrap();
        let names: Vec<String> = Parser::new(0)
            .parse_all(&stripped)
            .filter_map(|p| match p.unwrap() {
                Payload::CustomSection(c) => Some(c.name().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["name"]);
        assert_eq!(
            with_runtime_world(&wasm).unwrap(),
            with_runtime_world(&stripped).unwrap()
        );
    }
}
