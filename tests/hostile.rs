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

/// Test components run unsigned: their grant is given by name, not by a board's policy.
fn dev(grant: &tern_core::Grant) -> tern_core::Granted {
    tern_core::Granted::for_development(grant.clone())
}
