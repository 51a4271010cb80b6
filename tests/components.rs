//! Component payloads: a component (what `wasm-tools component new` makes of a
//! guest's core module, here made exactly as Tern's Wasmtime engine makes it) runs
//! on Wasmtime as it is, with the results of its core module; its imports are held
//! to the grant and the world and its exports to the world's types; `tern sign`
//! embeds it for Wasmtime boards, a device image made from it for wasmi boards, and
//! refuses both at once.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::board::BoardTable;
use tern_core::bundle::{EngineKind, Version};
use tern_core::{Engine, Error, Grant, Granted, Interface, Limits};
use tern_host::boards::{LINUX_GATEWAY, QEMU_MPS2_AN386, QEMU_MPS2_AN505, SERVER};
use tern_host::keys::KeyFile;
use tern_host::sign::{BundleRequest, GrantSource, PayloadKind, Signed};
use tern_tests::{EXAMPLES, events, root, run, wasm};
use tern_wasmtime::WasmtimeEngine;

/// `name`'s core module made a component exactly as the Wasmtime engine makes it
/// (wit-component against the runtime's world: the bytes `wasm-tools component new`
/// makes of it).
fn component(name: &str) -> Vec<u8> {
    WasmtimeEngine::componentize(&wasm(name)).unwrap()
}

fn dev(grant: &Grant) -> Granted {
    Granted::for_development(grant.clone())
}

fn wasmtime() -> WasmtimeEngine {
    WasmtimeEngine::new(Limits::HOST).unwrap()
}

/// The error loading `wasm` on Wasmtime under `grant` gives.
fn load_error(wasm: &[u8], grant: &Grant) -> Error {
    match wasmtime().load(wasm, &dev(grant)) {
        Ok(_) => panic!("the component loads"),
        Err(e) => e,
    }
}

#[test]
fn a_component_runs_on_wasmtime_with_its_core_modules_results() {
    let fixtures = ["trap", "unhealthy", "hostcall", "spin", "fill"];
    for name in EXAMPLES.iter().chain(&fixtures) {
        let module = wasm(name);
        let comp = component(name);
        assert_eq!(PayloadKind::of(&comp), PayloadKind::Component);
        let f = events(name);
        let grant = Grant::development();
        let as_module = run(EngineKind::Wasmtime, &module, &grant, &f.config, &f.events)
            .unwrap()
            .to_jsonl();
        let as_component = run(EngineKind::Wasmtime, &comp, &grant, &f.config, &f.events)
            .unwrap_or_else(|e| panic!("{name} as a component: {e}"))
            .to_jsonl();
        assert_eq!(as_component, as_module, "{name}: the transcripts differ");
        assert!(as_module.lines().count() > 2, "{name}: {as_module}");
    }
}

#[test]
fn a_component_is_compiled_once_and_loads_again_from_the_cache() {
    let engine = wasmtime();
    let comp = component("smoother");
    let grant = dev(&Grant::development());
    assert!(!engine.is_compiled(&comp));
    engine.load(&comp, &grant).unwrap();
    assert!(
        engine.is_compiled(&comp),
        "the component is cached after its load"
    );
    engine.load(&comp, &grant).unwrap();
    // The cache holds components by their bytes: the core module is another entry.
    assert!(!engine.is_compiled(&wasm("smoother")));
    engine.load(&wasm("smoother"), &grant).unwrap();
    assert!(engine.is_compiled(&wasm("smoother")));
}

#[test]
fn a_component_importing_an_ungranted_interface_fails_to_load_naming_it() {
    let comp = component("ungranted");
    let grant = Grant::parse(["log", "clock", "sensors", "kv", "publish"]).unwrap();
    let e = load_error(&comp, &grant);
    assert_eq!(
        e,
        Error::ImportNotGranted {
            interface: Interface::Gpio
        }
    );
    assert!(e.to_string().contains("tern:edge/gpio@0.1.0"), "{e}");
    assert!(wasmtime().load(&comp, &dev(&Grant::development())).is_ok());
    // Deny by default.
    assert!(matches!(
        load_error(&component("smoother"), &Grant::default()),
        Error::ImportNotGranted { .. }
    ));
}

/// A component whose core module exports what the world's three exports are lifted
/// from, with `imports` first and `exports` (the lifts) last. `init` and
/// `health-check` are lifted with the world's types unless `exports` replaces them.
fn hand_made(imports: &str, exports: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  {imports}
  (core module $m
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
    (func (export "init") (param i32 i32) (result i32) i32.const 0)
    (func (export "on-event") (param i32) (result i32) i32.const 0)
    (func (export "health-check") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "cabi_realloc" (core func $realloc))
  (alias core export $i "init" (core func $init))
  (alias core export $i "on-event" (core func $on))
  (alias core export $i "health-check" (core func $hc))
  {exports})"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const INIT: &str = r#"(func (export "init") (param "config" (list (tuple string string)))
    (result (result (error string))) (canon lift (core func $init) (memory $mem) (realloc $realloc)))"#;
const HEALTH: &str = r#"(func (export "health-check") (result (result (error string)))
    (canon lift (core func $hc) (memory $mem) (realloc $realloc)))"#;
/// `on-event` of the wrong type: a `u32` in, a `u32` out.
const ON_EVENT_U32: &str =
    r#"(func (export "on-event") (param "event" u32) (result u32) (canon lift (core func $on)))"#;

/// The world's `on-event`, every type spelled out.
const ON_EVENT_TYPE: &str = "func(event: variant { sample(record { sensor: string, milli: s64, at-ms: u64 }), frame(list<u8>), tick(u64) }) -> result<list<record { name: string, value: variant { milli(s64), flag(bool), text(string) }, unit: option<string> }>, string>";

#[test]
fn a_component_whose_exports_do_not_fit_the_world_is_refused_naming_the_export() {
    let all = Grant::development();
    // `on-event` of another type: the bindings' typed-export check, named.
    let wrong = hand_made("", &format!("{INIT} {ON_EVENT_U32} {HEALTH}"));
    let e = load_error(&wrong, &all);
    assert_eq!(
        e,
        Error::TypeMismatch {
            item: "on-event".into(),
            expected: ON_EVENT_TYPE.into(),
            found: "func(event: u32) -> u32".into(),
        }
    );
    assert!(
        e.to_string().starts_with(
            "type mismatch: the component's `on-event` is func(event: u32) -> u32, but the tern:edge@0.1.0 world's is func(event: variant {"
        ),
        "{e}"
    );
    // A missing export, before anything is compiled.
    let missing = hand_made("", &format!("{INIT} {ON_EVENT_U32}"));
    assert_eq!(
        load_error(&missing, &all),
        Error::MissingExport("health-check")
    );
    // An export of the world's name that is not a function.
    let instance = hand_made(
        "",
        &format!(r#"{INIT} {ON_EVENT_U32} (instance $e) (export "health-check" (instance $e))"#),
    );
    assert_eq!(
        load_error(&instance, &all),
        Error::TypeMismatch {
            item: "health-check".into(),
            expected: "func() -> result<_, string>".into(),
            found: "an instance".into(),
        }
    );
}

#[test]
fn a_component_importing_a_function_of_another_type_is_a_type_mismatch_naming_it() {
    let log =
        r#"(import "tern:edge/log@0.1.0" (instance (export "log" (func (param "message" u32)))))"#;
    let comp = hand_made(log, &format!("{INIT} {ON_EVENT_U32} {HEALTH}"));
    let e = load_error(&comp, &Grant::development());
    assert_eq!(
        e,
        Error::TypeMismatch {
            item: "tern:edge/log@0.1.0#log".into(),
            expected: "func(level: enum { trace, debug, info, warn, error }, message: string)"
                .into(),
            found: "func(message: u32)".into(),
        }
    );
    // Not granted: refused before its type matters.
    assert_eq!(
        load_error(&comp, &Grant::parse(["clock"]).unwrap()),
        Error::ImportNotGranted {
            interface: Interface::Log
        }
    );
}

#[test]
fn a_component_importing_anything_outside_tern_edge_is_refused_by_name() {
    let exports = format!("{INIT} {ON_EVENT_U32} {HEALTH}");
    let all = Grant::development();
    for (import, module, name) in [
        (
            r#"(import "wasi:cli/environment@0.2.0" (instance (export "get-environment" (func (result (list (tuple string string)))))))"#,
            "wasi:cli/environment@0.2.0",
            "get-environment",
        ),
        (r#"(import "now" (func (result u64)))"#, "$root", "now"),
        // A function `tern:edge/gpio` does not have.
        (
            r#"(import "tern:edge/gpio@0.1.0" (instance (export "explode" (func))))"#,
            "tern:edge/gpio@0.1.0",
            "explode",
        ),
        // Another version of the package.
        (
            r#"(import "tern:edge/log@0.2.0" (instance (export "log" (func (param "message" string)))))"#,
            "tern:edge/log@0.2.0",
            "log",
        ),
        // A resource the host would have to keep.
        (
            r#"(import "tern:edge/kv@0.1.0" (instance (export "store" (type (sub resource)))))"#,
            "tern:edge/kv@0.1.0",
            "store",
        ),
        // A resource of a host interface that the interface does not define.
        (
            r#"(import "wasi:keyvalue/store@0.2.0-draft" (instance (export "cursor" (type (sub resource)))))"#,
            "wasi:keyvalue/store@0.2.0-draft",
            "cursor",
        ),
    ] {
        let comp = hand_made(import, &exports);
        let e = load_error(&comp, &all);
        assert_eq!(
            e,
            Error::UnknownImport {
                module: module.into(),
                name: name.into()
            },
            "{import}"
        );
        assert!(e.to_string().contains(&format!("`{module}#{name}`")), "{e}");
    }
    // The world's types interface carries no capability.
    let types = r#"(import "tern:edge/types@0.1.0" (instance
        (type $s (record (field "milli" s64))) (export "sample" (type (eq $s)))))"#;
    let comp = hand_made(types, &exports);
    assert!(matches!(
        load_error(&comp, &Grant::default()),
        Error::TypeMismatch { item, .. } if item == "on-event"
    ));
}

#[test]
fn a_device_image_is_refused_on_wasmtime_and_a_component_runs_as_one_on_wasmi() {
    let image = tern_host::sign::device_image(&component("smoother")).unwrap();
    assert_eq!(PayloadKind::of(&image), PayloadKind::DeviceImage);
    let e = load_error(&image, &Grant::development());
    assert!(
        matches!(&e, Error::InvalidModule(m) if m.starts_with("a device image is for wasmi boards")),
        "{e}"
    );
    // `tern run --engine wasmi` (and `tern_tests::run`) of a component: its image.
    let comp = component("smoother");
    let for_wasmi = tern_host::run::for_engine(&comp, EngineKind::Wasmi).unwrap();
    assert_eq!(for_wasmi.as_ref(), image.as_slice());
    let for_wasmtime = tern_host::run::for_engine(&comp, EngineKind::Wasmtime).unwrap();
    assert_eq!(for_wasmtime.as_ref(), comp.as_slice());
    let module = wasm("smoother");
    let module_for_wasmi = tern_host::run::for_engine(&module, EngineKind::Wasmi).unwrap();
    assert_eq!(module_for_wasmi.as_ref(), module.as_slice());
}

fn dev_key() -> KeyFile {
    KeyFile::read(&root().join("boards/keys/tern-dev-2026.key")).unwrap()
}

/// Signs `wasm` as `tern sign` does from the repository root (the smoother's
/// component.toml gives its capabilities).
fn sign(
    wasm: &[u8],
    name: &str,
    boards: &[&'static BoardTable],
    engines: &[EngineKind],
) -> Result<Signed, String> {
    let imports = tern_host::sign::imported_interfaces(wasm)?;
    let (capabilities, source) =
        tern_host::sign::requested_capabilities(&[], None, name, &imports, &root())?;
    assert!(matches!(source, GrantSource::ComponentToml(_)));
    let key = dev_key();
    tern_host::sign::sign(BundleRequest {
        wasm,
        name,
        version: Version::parse("1.0.0").unwrap(),
        security_counter: 1,
        boards,
        engines,
        capabilities,
        source,
        keys: std::slice::from_ref(&key),
    })
}

fn payload(bundle: &[u8]) -> Vec<u8> {
    let mut decoder = tern_core::bundle::HeaderDecoder::new();
    let (_, payload) = decoder.feed(bundle).unwrap().unwrap();
    payload.to_vec()
}

#[test]
fn a_component_is_signed_as_it_is_for_wasmtime_and_as_a_device_image_for_wasmi() {
    let comp = component("smoother");
    // The grant comes from the component's imports as from the module's.
    assert_eq!(
        tern_host::sign::imported_interfaces(&comp).unwrap(),
        tern_host::sign::imported_interfaces(&wasm("smoother")).unwrap()
    );

    let signed = sign(&comp, "smoother", &[&SERVER, &LINUX_GATEWAY], &[]).unwrap();
    assert!(signed.refusal.is_none(), "{:?}", signed.refusal);
    assert_eq!(signed.payload, PayloadKind::Component);
    assert_eq!(payload(&signed.bytes), comp);
    // The server accepts it and runs it as its core module runs.
    let prepared = tern_host::run::prepare(signed.bytes.clone(), Some(&SERVER), &[]).unwrap();
    let f = events("smoother");
    let engines = tern_host::run::Engines::new(Limits::HOST).unwrap();
    let sim = tern_host::run::SharedSim::default();
    let t = engines
        .run(
            EngineKind::Wasmtime,
            &prepared.wasm,
            &prepared.grant,
            &f.config,
            &f.events,
            &sim,
        )
        .unwrap();
    let module = run(
        EngineKind::Wasmtime,
        &wasm("smoother"),
        prepared.grant.grant(),
        &f.config,
        &f.events,
    )
    .unwrap();
    assert_eq!(t.to_jsonl(), module.to_jsonl());
    // A wasmi board refuses the component as a payload.
    assert!(matches!(
        tern_host::run::prepare(signed.bytes, Some(&QEMU_MPS2_AN386), &[]),
        Err(tern_host::run::NotRunnable::Refused(_))
    ));

    for (boards, engines) in [
        (&[&QEMU_MPS2_AN386, &QEMU_MPS2_AN505][..], &[][..]),
        (&[][..], &[EngineKind::Wasmi][..]),
    ] {
        let signed = sign(&comp, "smoother", boards, engines).unwrap();
        assert!(signed.refusal.is_none(), "{:?}", signed.refusal);
        assert_eq!(signed.payload, PayloadKind::DeviceImage);
        let bytes = payload(&signed.bytes);
        let image = tern_core::image::decode(&bytes).unwrap();
        let exports: Vec<&str> = image.exports.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(exports, ["init", "on-event", "health-check"]);
        assert_eq!(
            payload(&signed.bytes),
            tern_host::sign::device_image(&comp).unwrap()
        );
    }
    // The wasmi board's host-side install check accepts the image; the server refuses it.
    let signed = sign(&comp, "smoother", &[&QEMU_MPS2_AN386], &[]).unwrap();
    assert!(tern_host::sign::verify_stream(&signed.bytes[..], &QEMU_MPS2_AN386, None).is_ok());

    // A core module is signed as it is for every board.
    let module = wasm("smoother");
    let signed = sign(&module, "smoother", &[&SERVER, &QEMU_MPS2_AN386], &[]).unwrap();
    assert_eq!(signed.payload, PayloadKind::Module);
    assert_eq!(payload(&signed.bytes), module);
}

#[test]
fn a_component_is_not_signed_for_both_engines_at_once() {
    let comp = component("smoother");
    let e = sign(&comp, "smoother", &[&SERVER, &QEMU_MPS2_AN386], &[]).expect_err("refused");
    assert!(
        e.starts_with("a component is signed once per engine"),
        "{e}"
    );
    assert!(
        e.contains("sign it once with --board server and once with --board qemu-mps2-an386"),
        "{e}"
    );
    let e = sign(&comp, "smoother", &[&LINUX_GATEWAY], &[EngineKind::Wasmi]).expect_err("refused");
    assert!(
        e.contains("once with --board linux-gateway and once with --engine wasmi"),
        "{e}"
    );
}

#[test]
fn a_component_wasmi_cannot_run_is_refused_for_wasmi_with_the_reason() {
    // An async lift: Tern runs the synchronous canonical ABI only.
    let async_lift = wat::parse_str(include_str!("wat/async-lift.wat")).unwrap();
    let boards: &[&'static BoardTable] = &[&QEMU_MPS2_AN386];
    let key = dev_key();
    let e = tern_host::sign::sign(BundleRequest {
        wasm: &async_lift,
        name: "async",
        version: Version::parse("1.0.0").unwrap(),
        security_counter: 1,
        boards,
        engines: &[],
        capabilities: Grant::default(),
        source: GrantSource::Flags,
        keys: std::slice::from_ref(&key),
    })
    .expect_err("refused");
    assert_eq!(
        e,
        "the component cannot run on wasmi (--board qemu-mps2-an386): the function lifted from core export `f` is async: Tern runs the synchronous canonical ABI only"
    );
    // Its imports (none) are still read, for the grant.
    assert_eq!(
        tern_host::sign::imported_interfaces(&async_lift).unwrap(),
        []
    );
}
