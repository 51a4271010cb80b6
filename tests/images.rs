//! Device images: a component, taken apart by `tern-wit` into core modules and its
//! definitions, runs on wasmi through the plan executor with the same results and the
//! same host-call trace as the component on Wasmtime, and as the core module the
//! component was made from.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::bundle::EngineKind;
use tern_core::{Error, ErrorClass, Grant, Interface};
use tern_tests::{EXAMPLES, events, run, wasm};

/// `name`'s core module as a component, exactly as Wasmtime boards make it (the same
/// bytes `wasm-tools component new` makes from it).
fn component(name: &str) -> Vec<u8> {
    tern_wasmtime::WasmtimeEngine::componentize(&wasm(name)).unwrap()
}

/// `name` as the device image `tern sign` makes for a wasmi board.
fn image(name: &str) -> Vec<u8> {
    let image = tern_wit::device_image(&component(name)).unwrap();
    tern_core::image::encode(&image)
}

#[test]
fn every_example_runs_from_its_device_image_as_it_runs_as_a_module() {
    for name in EXAMPLES {
        let f = events(name);
        let grant = Grant::development();
        let module = run(
            EngineKind::Wasmtime,
            &wasm(name),
            &grant,
            &f.config,
            &f.events,
        )
        .unwrap()
        .to_jsonl();
        let image = run(
            EngineKind::Wasmi,
            &image(name),
            &grant,
            &f.config,
            &f.events,
        )
        .unwrap_or_else(|e| panic!("{name}'s image on wasmi: {e}"))
        .to_jsonl();
        assert_eq!(
            image, module,
            "{name}: the image on wasmi differs from Wasmtime"
        );
        assert!(
            image.lines().any(|l| l.starts_with("{\"host\"")),
            "{name}: no host calls"
        );
    }
}

/// The image has wit-component's shim and fixup modules: the host functions whose
/// lowering needs the main module's memory reach it through a table the fixup module
/// fills after the main module exists, and they still see the right memory.
#[test]
fn the_image_of_a_component_is_several_modules_and_still_runs() {
    let bytes = image("smoother");
    let decoded = tern_core::image::decode(&bytes).unwrap();
    assert!(
        decoded.modules.len() >= 3,
        "{} modules",
        decoded.modules.len()
    );
}

/// Deny by default holds for images: a host import outside the grant fails to load
/// with the interface named, as for a module.
#[test]
fn an_image_importing_an_ungranted_interface_fails_to_load() {
    let f = events("smoother");
    let mut grant = Grant::development();
    grant.kv = None;
    let err = run(
        EngineKind::Wasmi,
        &image("smoother"),
        &grant,
        &f.config,
        &f.events,
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::ImportNotGranted {
            interface: Interface::Kv
        }
    );
}

/// An image that does not decode is an invalid module, not a panic.
#[test]
fn a_truncated_image_is_an_invalid_module() {
    let bytes = image("alarm");
    for cut in [4, bytes.len() / 2, bytes.len() - 1] {
        let err = run(
            EngineKind::Wasmi,
            &bytes[..cut],
            &Grant::development(),
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.class(),
            ErrorClass::InvalidModule,
            "cut at {cut}: {err}"
        );
    }
}
