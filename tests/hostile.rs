//! Hostile fixtures: each misbehaviour is stopped with the same typed error class on
//! both engines, the message names the cause, and the engine keeps working.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::host::SimPlatform;
use tern_core::{Engine, Error, ErrorClass, Event, Grant, Instance, Interface, Limits};
use tern_tests::{events, wasm};

/// Loads and instantiates `name` with the development grant, runs `init`, then one
/// `on-event` per fixture event; returns the first error.
fn misbehave<E: Engine>(engine: &E, name: &str) -> (Error, E::Component) {
    let component = engine
        .load(&wasm(name), &dev(&Grant::development()))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let mut inst = engine
        .instantiate(&component, Box::new(SimPlatform::default()))
        .expect("instantiates");
    assert_eq!(inst.init(&[]), Ok(Ok(())), "{name}: init is well-behaved");
    let f = events(name);
    let err = f
        .events
        .iter()
        .find_map(|e| inst.on_event(e).err())
        .unwrap_or_else(|| panic!("{name}: no event made it misbehave"));
    // The instance is poisoned now: it refuses further calls instead of running
    // half-broken state.
    assert_eq!(inst.health_check(), Err(Error::Poisoned));
    (err, component)
}

/// After a fixture failed: a fresh instance of the same component, and a
/// well-behaved component, both run on the same engine.
fn engine_still_works<E: Engine>(engine: &E, failed: &E::Component) {
    let mut again = engine
        .instantiate(failed, Box::new(SimPlatform::default()))
        .expect("the failed component instantiates again");
    assert_eq!(again.init(&[]), Ok(Ok(())));
    assert_eq!(again.health_check(), Ok(Ok(())));

    let good = engine
        .load(&wasm("smoother"), &dev(&Grant::development()))
        .expect("smoother loads");
    let mut inst = engine
        .instantiate(&good, Box::new(SimPlatform::default()))
        .expect("smoother instantiates");
    assert_eq!(inst.init(&[]), Ok(Ok(())));
    let out = inst
        .on_event(&Event::Sample(tern_core::Sample {
            sensor: "temp-0".into(),
            milli: 21_000,
            at_ms: 1,
        }))
        .expect("the next call succeeds");
    assert!(out.is_ok(), "{out:?}");
}

fn check(name: &str, class: ErrorClass, cause: &str) {
    let limits = Limits {
        // Small enough that the runaway loop ends quickly, large enough for init.
        fuel_per_call: 2_000_000,
        memory_bytes: 1024 * 1024,
        ..Limits::HOST
    };
    let wasmi = tern_wasmi::WasmiEngine::new(limits);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(limits).expect("wasmtime starts");
    let (a, ca) = misbehave(&wasmi, name);
    let (b, cb) = misbehave(&wasmtime, name);
    assert_eq!(a.class(), class, "{name} on wasmi: {a}");
    assert_eq!(b.class(), class, "{name} on wasmtime: {b}");
    assert_eq!(
        a, b,
        "{name}: the same error, message included, on both engines"
    );
    for e in [&a, &b] {
        assert!(
            e.to_string().contains(cause),
            "`{e}` should name the cause `{cause}`"
        );
    }
    engine_still_works(&wasmi, &ca);
    engine_still_works(&wasmtime, &cb);
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    check("spin", ErrorClass::FuelExhausted, "fuel exhausted");
}

#[test]
fn memory_grow_bomb_hits_the_memory_limit() {
    check("grow-bomb", ErrorClass::MemoryLimit, "memory limit");
}

#[test]
fn deep_recursion_overflows_the_stack() {
    check("recursion", ErrorClass::StackOverflow, "stack overflow");
}

#[test]
fn a_trap_is_reported_as_a_trap() {
    check("trap", ErrorClass::Trap, "trap");
}

#[test]
fn an_import_outside_the_grant_fails_to_load_naming_the_interface() {
    let grant = Grant::parse(["log", "clock", "sensors", "kv", "publish"]).unwrap();
    let w = wasm("ungranted");
    let wasmi = tern_wasmi::WasmiEngine::new(Limits::HOST);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(Limits::HOST).unwrap();
    let a = wasmi
        .load(&w, &dev(&grant))
        .err()
        .expect("wasmi refuses it");
    let b = wasmtime
        .load(&w, &dev(&grant))
        .err()
        .expect("wasmtime refuses it");
    for e in [&a, &b] {
        assert_eq!(
            e,
            &Error::ImportNotGranted {
                interface: Interface::Gpio
            }
        );
        assert!(e.to_string().contains("tern:edge/gpio@0.1.0"), "{e}");
    }
    // With gpio granted, the same bytes load and run.
    let all = Grant::development();
    assert!(wasmi.load(&w, &dev(&all)).is_ok());
    assert!(wasmtime.load(&w, &dev(&all)).is_ok());
    // Deny by default: the empty grant refuses a component that imports anything.
    assert!(matches!(
        wasmi.load(&wasm("smoother"), &dev(&Grant::default())),
        Err(Error::ImportNotGranted { .. })
    ));
    assert!(matches!(
        wasmtime.load(&wasm("smoother"), &dev(&Grant::default())),
        Err(Error::ImportNotGranted { .. })
    ));
}

#[test]
fn garbage_is_an_invalid_module_on_both_engines() {
    let wasmi = tern_wasmi::WasmiEngine::new(Limits::HOST);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(Limits::HOST).unwrap();
    for bytes in [&b""[..], b"\0asm\x01\0\0\0garbage", b"not wasm at all"] {
        let g = Grant::development();
        assert_eq!(
            wasmi.load(bytes, &dev(&g)).err().map(|e| e.class()),
            Some(ErrorClass::InvalidModule)
        );
        assert_eq!(
            wasmtime.load(bytes, &dev(&g)).err().map(|e| e.class()),
            Some(ErrorClass::InvalidModule)
        );
    }
}

/// Every host function of the world, imported with the core type `tern_core::abi`
/// gives it: what a module built without wit-bindgen (a C toolchain's) imports.
const IMPORTS: &str = r#"
  (import "tern:edge/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "tern:edge/clock@0.1.0" "now-ms" (func (result i64)))
  (import "tern:edge/sensors@0.1.0" "read" (func (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "set" (func (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "get" (func (param i32 i32)))
  (import "tern:edge/kv@0.1.0" "get" (func (param i32 i32 i32)))
  (import "tern:edge/kv@0.1.0" "set" (func (param i32 i32 i32 i32 i32)))
  (import "tern:edge/publish@0.1.0" "publish" (func (param i32 i32 i32 i32 i32)))
"#;

/// The world's exports, by hand: a bump allocator, and handlers that answer `ok`
/// (their result areas at 16 hold zeros). `health-check` traps unless `_initialize`
/// ran first.
const EXPORTS: &str = r#"
  (memory (export "memory") 1)
  (data (i32.const 64) "initialised")
  (global $ready (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    global.get $heap local.get 2 i32.add i32.const 1 i32.sub
    i32.const 0 local.get 2 i32.sub i32.and local.tee $p
    local.get 3 i32.add global.set $heap
    local.get $p)
  (func (export "init") (param i32 i32) (result i32) i32.const 16)
  (func (export "on-event") (param i32 i64 i32 i64 i64) (result i32) i32.const 16)
"#;

const HEALTH_CHECK: &str = r#"
  (func (export "health-check") (result i32)
    global.get $ready i32.eqz if unreachable end
    i32.const 16)
"#;

/// A WASI-style reactor's initialiser: logs `initialised` at `info`.
const INITIALIZE: &str = r#"
  (func (export "_initialize")
    i32.const 1 global.set $ready
    i32.const 2 i32.const 64 i32.const 11 call $log)
"#;

/// A module built without wit-bindgen, so without a `component-type` section: a C
/// toolchain's reactor, written out by hand. Both engines link every import with the
/// core types `tern_core::abi` gives them, run `_initialize` once after instantiation
/// (as the component model does), and give the same transcript.
#[test]
fn a_module_without_wit_bindgen_metadata_runs_alike() {
    let w = wat::parse_str(format!(
        "(module {IMPORTS} {EXPORTS} {HEALTH_CHECK} {INITIALIZE})"
    ))
    .unwrap();
    // Only the `name` section that wat writes.
    assert_eq!(tern_tests::custom_sections(&w), ["name"]);
    let [a, b] = tern_tests::ENGINES.map(|k| {
        tern_tests::run(k, &w, &Grant::development(), &[], &[Event::Tick(1)])
            .unwrap_or_else(|e| panic!("runs on {}: {e}", k.name()))
    });
    assert_eq!(a.to_jsonl(), b.to_jsonl());
    assert_eq!(
        a.result_lines(),
        b.result_lines(),
        "wasmi and Wasmtime results differ"
    );
    assert!(
        a.results()
            .all(|(_, o)| matches!(o, tern_host::run::CallOutcome::Ok(_))),
        "{}",
        a.to_jsonl()
    );
    assert!(a.to_jsonl().contains("initialised"), "{}", a.to_jsonl());
}

/// A module whose imports or exports do not fit the `tern:edge` world is refused at
/// load by both engines with the same error, naming what does not fit.
#[test]
fn a_module_that_does_not_fit_the_world_is_refused_alike_naming_the_misfit() {
    let module = |imports: &str, rest: &str| {
        wat::parse_str(format!("(module {imports} {EXPORTS} {rest})")).unwrap()
    };
    let log = "tern:edge/log@0.1.0";
    let mismatch = |item: &str, expected: &str, found: &str| Error::TypeMismatch {
        item: item.into(),
        expected: expected.into(),
        found: found.into(),
    };
    let cases = [
        (
            "an import of the wrong type",
            module(
                &format!(r#"(import "{log}" "log" (func (param i32)))"#),
                HEALTH_CHECK,
            ),
            mismatch(
                "tern:edge/log@0.1.0#log",
                "func (i32, i32, i32) -> ()",
                "func (i32) -> ()",
            ),
        ),
        (
            "an import the interface lacks",
            module(
                r#"(import "tern:edge/gpio@0.1.0" "explode" (func))"#,
                HEALTH_CHECK,
            ),
            Error::UnknownImport {
                module: "tern:edge/gpio@0.1.0".into(),
                name: "explode".into(),
            },
        ),
        (
            "an import outside the world",
            module(r#"(import "env" "memory" (memory 1))"#, HEALTH_CHECK),
            Error::UnknownImport {
                module: "env".into(),
                name: "memory".into(),
            },
        ),
        (
            "no health-check",
            module("", ""),
            Error::MissingExport("health-check"),
        ),
        (
            "health-check a global",
            module("", r#"(global (export "health-check") i32 (i32.const 0))"#),
            mismatch("health-check", "func () -> (i32)", "a global"),
        ),
        (
            "health-check of the wrong type",
            module(
                "",
                r#"(func (export "health-check") (param i32) (result i32) i32.const 16)"#,
            ),
            mismatch("health-check", "func () -> (i32)", "func (i32) -> (i32)"),
        ),
        (
            "a post-return function of the wrong type",
            module(
                "",
                &format!(r#"{HEALTH_CHECK} (func (export "cabi_post_init") (param i64))"#),
            ),
            mismatch("cabi_post_init", "func (i32) -> ()", "func (i64) -> ()"),
        ),
        (
            "an initialiser of the wrong type",
            module(
                "",
                &format!(r#"{HEALTH_CHECK} (func (export "_initialize") (param i32))"#),
            ),
            mismatch("_initialize", "func () -> ()", "func (i32) -> ()"),
        ),
    ];
    let wasmi = tern_wasmi::WasmiEngine::new(Limits::HOST);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(Limits::HOST).unwrap();
    let g = dev(&Grant::development());
    for (what, w, expected) in cases {
        let a = wasmi.load(&w, &g).err();
        let b = wasmtime.load(&w, &g).err();
        assert_eq!(a.as_ref(), Some(&expected), "{what} on wasmi");
        assert_eq!(b.as_ref(), Some(&expected), "{what} on wasmtime");
        let text = expected.to_string();
        let named = match &expected {
            Error::TypeMismatch { item, .. } => item.clone(),
            Error::UnknownImport { module, name } => format!("{module}#{name}"),
            Error::MissingExport(name) => name.to_string(),
            e => panic!("{e}"),
        };
        assert!(
            text.contains(&format!("`{named}`")),
            "{what}: `{text}` names `{named}`"
        );
    }
    // The same exports, fitting, load and run on both.
    let fits = module("", HEALTH_CHECK);
    assert!(wasmi.load(&fits, &g).is_ok());
    assert!(wasmtime.load(&fits, &g).is_ok());
}

/// A module using SIMD runs on Wasmtime and is refused by wasmi (as on a device),
/// as an invalid module naming the proposal; one using threads is refused by both,
/// before its imports are looked at.
#[test]
fn wasm_features_are_those_of_each_engines_table() {
    let simd_health = r#"(func (export "health-check") (result i32)
        v128.const i32x4 16 0 0 0 i32x4.extract_lane 0)"#;
    let simd = wat::parse_str(format!("(module {EXPORTS} {simd_health})")).unwrap();
    let g = dev(&Grant::development());
    let wasmi = tern_wasmi::WasmiEngine::new(Limits::HOST);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(Limits::HOST).unwrap();
    let component = wasmtime.load(&simd, &g).expect("Wasmtime runs SIMD");
    let mut inst = wasmtime
        .instantiate(&component, Box::new(SimPlatform::default()))
        .unwrap();
    assert_eq!(inst.health_check(), Ok(Ok(())));
    let e = wasmi.load(&simd, &g).err().expect("wasmi refuses SIMD");
    assert_eq!(e.class(), ErrorClass::InvalidModule);
    assert!(e.to_string().contains("SIMD"), "{e}");

    // Also outside the world: validation comes first on both engines.
    let threads = wat::parse_str(format!(
        r#"(module (import "env" "x" (func)) {EXPORTS} {HEALTH_CHECK} (memory $shared 1 1 shared))"#
    ))
    .unwrap();
    for e in [
        wasmi.load(&threads, &g).err(),
        wasmtime.load(&threads, &g).err(),
    ] {
        assert_eq!(
            e.as_ref().map(Error::class),
            Some(ErrorClass::InvalidModule),
            "{e:?}"
        );
    }
    let e = wasmtime.load(&threads, &g).err().unwrap().to_string();
    assert!(
        e.contains("wasmtime does not support the `threads` proposal"),
        "{e}"
    );
}

/// Limits small enough for the modules below to exceed: 16 pages, 100 table elements.
const SMALL: Limits = Limits {
    memory_bytes: 1024 * 1024,
    table_elements: 100,
    ..Limits::HOST
};

/// The first error of loading `wasm` (development grant) and instantiating it, on each
/// engine under `limits`: wasmi then Wasmtime.
fn first_error(wasm: &[u8], limits: Limits) -> [Option<Error>; 2] {
    fn on<E: Engine>(engine: &E, wasm: &[u8]) -> Option<Error> {
        let component = match engine.load(wasm, &dev(&Grant::development())) {
            Ok(c) => c,
            Err(e) => return Some(e),
        };
        engine
            .instantiate(&component, Box::new(SimPlatform::default()))
            .err()
    }
    let wasmi = tern_wasmi::WasmiEngine::new(limits);
    let wasmtime = tern_wasmtime::WasmtimeEngine::new(limits).unwrap();
    [on(&wasmi, wasm), on(&wasmtime, wasm)]
}

/// `EXPORTS` and `HEALTH_CHECK` with a memory of `memory` (its limits) and `rest`.
fn module_with(memory: &str, rest: &str) -> Vec<u8> {
    let exports = EXPORTS.replace(
        r#"(memory (export "memory") 1)"#,
        &format!(r#"(memory (export "memory") {memory})"#),
    );
    wat::parse_str(format!("(module {exports} {HEALTH_CHECK} {rest})")).unwrap()
}

/// An initial memory over `Limits::memory_bytes` is `MemoryLimit` on both engines, as
/// growing past it is (Wasmtime refuses it at load, since its pooling allocator would
/// not compile it; wasmi, which does not show a module's memories, when it creates
/// the memory at instantiation). One exactly at the limit runs on both.
#[test]
fn an_initial_memory_over_the_limit_is_a_memory_limit_on_both_engines() {
    let limit = Error::MemoryLimit {
        limit_bytes: SMALL.memory_bytes,
    };
    for memory in ["17", "17 17", "100 200"] {
        let [a, b] = first_error(&module_with(memory, ""), SMALL);
        assert_eq!(a.as_ref(), Some(&limit), "memory {memory} on wasmi");
        assert_eq!(b.as_ref(), Some(&limit), "memory {memory} on wasmtime");
    }
    // At the limit, or growable past it: the limit applies when it grows.
    for memory in ["16", "1 100"] {
        assert_eq!(
            first_error(&module_with(memory, ""), SMALL),
            [None, None],
            "memory {memory}"
        );
    }
}

/// An initial table over `Limits::table_elements` is `MemoryLimit` on both engines,
/// as growing a table past it is; one at the limit runs on both.
#[test]
fn an_initial_table_over_the_limit_is_a_memory_limit_on_both_engines() {
    let limit = Error::MemoryLimit {
        limit_bytes: SMALL.memory_bytes,
    };
    for table in [
        "(table 101 funcref)",
        r#"(table (export "t") 101 funcref)"#,
        "(table 1000 2000 funcref)",
    ] {
        let [a, b] = first_error(&module_with("1", table), SMALL);
        assert_eq!(a.as_ref(), Some(&limit), "{table} on wasmi");
        assert_eq!(b.as_ref(), Some(&limit), "{table} on wasmtime");
    }
    assert_eq!(
        first_error(&module_with("1", "(table 100 funcref)"), SMALL),
        [None, None]
    );
}

/// A start function (or a reactor's `_initialize`) that traps fails instantiation
/// with the same `Error::Trap`, message included, on both engines: the trap's own
/// description, without Wasmtime's `wasm trap: ` prefix or a backtrace.
#[test]
fn a_trapping_start_function_is_the_same_trap_on_both_engines() {
    use tern_core::error::TrapKind;
    let cases = [
        (
            "(func $boot unreachable) (start $boot)",
            TrapKind::Unreachable,
        ),
        (
            "(func $boot i32.const 1 i32.const 0 i32.div_u drop) (start $boot)",
            TrapKind::IntegerDivisionByZero,
        ),
        (
            "(func $boot i32.const 70000 i32.load drop) (start $boot)",
            TrapKind::MemoryOutOfBounds,
        ),
        (
            r#"(data (i32.const 70000) "x")"#,
            TrapKind::MemoryOutOfBounds,
        ),
        (
            r#"(func (export "_initialize") unreachable)"#,
            TrapKind::Unreachable,
        ),
    ];
    for (rest, kind) in cases {
        let trap = Error::Trap(kind.message().into());
        let [a, b] = first_error(&module_with("1", rest), Limits::HOST);
        assert_eq!(a.as_ref(), Some(&trap), "{rest} on wasmi");
        assert_eq!(b.as_ref(), Some(&trap), "{rest} on wasmtime");
        let text = trap.to_string();
        assert!(
            !text.contains("wasm trap") && !text.contains('\n'),
            "{text}"
        );
    }
}

/// An import of the world's name that is not a function, or a function with another
/// result (the test above has other parameters), is the same `TypeMismatch` on both
/// engines, at load.
#[test]
fn imports_of_another_kind_or_result_are_the_same_type_mismatch() {
    let mismatch = |item: &str, expected: &str, found: &str| Error::TypeMismatch {
        item: item.into(),
        expected: expected.into(),
        found: found.into(),
    };
    let log = "func (i32, i32, i32) -> ()";
    let cases = [
        (
            r#"(import "tern:edge/log@0.1.0" "log" (memory 1))"#,
            mismatch("tern:edge/log@0.1.0#log", log, "a memory"),
        ),
        (
            r#"(import "tern:edge/log@0.1.0" "log" (global i32))"#,
            mismatch("tern:edge/log@0.1.0#log", log, "a global"),
        ),
        (
            r#"(import "tern:edge/log@0.1.0" "log" (table 1 funcref))"#,
            mismatch("tern:edge/log@0.1.0#log", log, "a table"),
        ),
        (
            r#"(import "tern:edge/clock@0.1.0" "now-ms" (func (result i32)))"#,
            mismatch(
                "tern:edge/clock@0.1.0#now-ms",
                "func () -> (i64)",
                "func () -> (i32)",
            ),
        ),
        (
            r#"(import "tern:edge/gpio@0.1.0" "get" (func (param i32 i32) (result i32)))"#,
            mismatch(
                "tern:edge/gpio@0.1.0#get",
                "func (i32, i32) -> ()",
                "func (i32, i32) -> (i32)",
            ),
        ),
    ];
    for (import, expected) in cases {
        let w = wat::parse_str(format!("(module {import} {EXPORTS} {HEALTH_CHECK})")).unwrap();
        let [a, b] = first_error(&w, Limits::HOST);
        assert_eq!(a.as_ref(), Some(&expected), "{import} on wasmi");
        assert_eq!(b.as_ref(), Some(&expected), "{import} on wasmtime");
    }
}

/// Test components run unsigned: their grant is given by name, not by a board's policy.
fn dev(grant: &tern_core::Grant) -> tern_core::Granted {
    tern_core::Granted::for_development(grant.clone())
}
