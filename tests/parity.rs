//! Parity: the same component and events give byte-identical results and identical
//! ordered host-call traces on wasmi and Wasmtime.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use proptest::prelude::*;
use tern_core::bundle::EngineKind;
use tern_core::features::{ValidationError, WasmFeature};
use tern_core::{Error, Event, Grant, Sample, Value};
use tern_tests::{ENGINES, EXAMPLES, events, run, wasm, without_custom_sections};

fn both(name: &str, grant: &Grant, config: &[(String, String)], evs: &[Event]) -> [String; 2] {
    let w = wasm(name);
    ENGINES.map(|k| {
        run(k, &w, grant, config, evs)
            .unwrap_or_else(|e| panic!("{name} on {}: {e}", k.name()))
            .to_jsonl()
    })
}

/// Whether a transcript has a handler line with a runtime `error` (not the
/// component's own `err`).
fn has_fatal_error(transcript: &str) -> bool {
    transcript.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
        v.get("call").is_some() && v.get("error").is_some()
    })
}

#[test]
fn every_example_is_identical_on_both_engines() {
    for name in EXAMPLES {
        let f = events(name);
        let [a, b] = both(name, &Grant::development(), &f.config, &f.events);
        assert_eq!(a, b, "{name}: wasmi and wasmtime transcripts differ");
        // The transcript is not trivially empty: every event got a handler result and
        // the component made host calls.
        let results = a
            .lines()
            .filter(|l| l.starts_with("{\"call\":\"on-event\""))
            .count();
        assert_eq!(results, f.events.len(), "{name}: one result per event");
        assert!(
            a.lines().any(|l| l.starts_with("{\"host\"")),
            "{name}: no host calls"
        );
        assert!(
            !has_fatal_error(&a),
            "{name}: a fatal error in an example:\n{a}"
        );
    }
}

/// The smoother's averages, recomputed here from the events: alpha from the config,
/// ema' = ema + (x - ema) * alpha, integer milli-units.
#[test]
fn smoother_computes_the_moving_average() {
    let f = events("smoother");
    let alpha = f
        .config
        .iter()
        .find(|(k, _)| k == "alpha")
        .map(|(_, v)| {
            let (i, frac) = v.split_once('.').unwrap_or((v, ""));
            let frac = format!("{frac:0<3}");
            i.parse::<i64>().unwrap() * 1000 + frac[..3].parse::<i64>().unwrap()
        })
        .unwrap_or(250);
    let evs: Vec<Event> = (0..20)
        .map(|i| {
            Event::Sample(Sample {
                sensor: "temp-0".into(),
                milli: 20_000 + (i * 7919 % 5000) - 2500,
                at_ms: 1000 * i as u64,
            })
        })
        .collect();
    for kind in ENGINES {
        let t = run(
            kind,
            &wasm("smoother"),
            &Grant::development(),
            &f.config,
            &evs,
        )
        .unwrap();
        let mut ema: Option<i64> = None;
        let got: Vec<i64> = t
            .event_outputs()
            .map(|outputs| match outputs.first().map(|o| &o.value) {
                Some(Value::Milli(m)) => *m,
                other => panic!("a milli output, not {other:?}"),
            })
            .collect();
        let want: Vec<i64> = evs
            .iter()
            .map(|e| {
                let Event::Sample(s) = e else { unreachable!() };
                let next = match ema {
                    None => s.milli,
                    Some(p) => p + (s.milli - p) * alpha / 1000,
                };
                ema = Some(next);
                next
            })
            .collect();
        assert_eq!(got, want, "on {}", kind.name());
    }
}

/// Scopes are enforced inside the host functions: a pin outside the grant is an
/// error value the component sees, identically on both engines, and nothing crashes.
#[test]
fn scoped_grants_return_errors_to_the_guest_on_both_engines() {
    let f = events("alarm");
    let grant = Grant::parse(["log", "clock", "sensors", "kv", "publish", "gpio=999"]).unwrap();
    let [a, b] = both("alarm", &grant, &f.config, &f.events);
    assert_eq!(a, b);
    assert!(
        a.contains("is not granted"),
        "the alarm drove a pin outside its grant and should have been told so:\n{a}"
    );
    assert!(
        !has_fatal_error(&a),
        "a scope violation must not be fatal:\n{a}"
    );
}

fn is_world_section(name: &str) -> bool {
    name.starts_with("component-type")
}

/// What a component runs as comes from the runtime's WIT, never from the module's own
/// `component-type` custom sections: without them (stripped, or never written by a C
/// toolchain) every example gives the same results and host calls on both engines as
/// with them.
#[test]
fn a_module_without_its_world_section_runs_as_it_does_with_it() {
    for name in EXAMPLES {
        let f = events(name);
        let original = wasm(name);
        assert!(
            tern_tests::custom_sections(&original)
                .iter()
                .any(|s| is_world_section(s)),
            "{name} was built with wit-bindgen's component-type section"
        );
        let expected = run(
            ENGINES[0],
            &original,
            &Grant::development(),
            &f.config,
            &f.events,
        )
        .unwrap();
        let no_world = without_custom_sections(&original, is_world_section);
        // What wasm-strip, or a linker that keeps no custom sections, leaves.
        let bare = without_custom_sections(&original, |_| true);
        assert!(tern_tests::custom_sections(&bare).is_empty());
        for w in [&original, &no_world, &bare] {
            for k in ENGINES {
                let t = run(k, w, &Grant::development(), &f.config, &f.events)
                    .unwrap_or_else(|e| panic!("{name} on {}: {e}", k.name()));
                assert_eq!(
                    t.result_lines(),
                    expected.result_lines(),
                    "{name} on {}",
                    k.name()
                );
                assert_eq!(t.to_jsonl(), expected.to_jsonl(), "{name} on {}", k.name());
            }
        }
    }
}

/// A `component-type` section for `world` of the WIT package `wit`, appended to
/// `wasm` as wit-bindgen would have.
fn with_guest_world(wasm: &[u8], wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_source("guest.wit", wit).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut out = wasm.to_vec();
    wit_component::embed_component_metadata(
        &mut out,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    out
}

/// A guest's `component-type` section naming another world changes nothing: a
/// component that fits the runtime's world runs as it does, and one that fits only the
/// guest's world is refused by both engines alike.
#[test]
fn a_guest_supplied_world_cannot_change_what_runs() {
    // Exports only `health-check`: as the component's world, `init` and `on-event`
    // would not exist.
    let other = "package evil:other@1.0.0;
        world component { export health-check: func() -> result<_, string>; }";
    // Same package name as the runtime's, another `on-event`.
    let impostor = "package tern:edge@0.1.0;
        world component {
            export init: func(config: list<tuple<string, string>>) -> result<_, string>;
            export on-event: func(at: u64) -> result<_, string>;
            export health-check: func() -> result<_, string>;
        }";
    let f = events("smoother");
    let original = wasm("smoother");
    let expected = run(
        ENGINES[0],
        &original,
        &Grant::development(),
        &f.config,
        &f.events,
    )
    .unwrap()
    .result_lines();
    let no_world = without_custom_sections(&original, is_world_section);
    for guest in [
        with_guest_world(&no_world, other, "component"),
        with_guest_world(&no_world, impostor, "component"),
        // Beside the module's own section, as a second one a tool added.
        with_guest_world(&original, other, "component"),
    ] {
        for k in ENGINES {
            let t = run(k, &guest, &Grant::development(), &f.config, &f.events)
                .unwrap_or_else(|e| panic!("smoother on {}: {e}", k.name()));
            assert_eq!(t.result_lines(), expected, "on {}", k.name());
        }
    }
    // A module that fits the impostor world (`on-event` takes one i64), not the
    // runtime's.
    let fits_impostor = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
            (func (export "init") (param i32 i32) (result i32) i32.const 16)
            (func (export "on-event") (param i64) (result i32) i32.const 16)
            (func (export "health-check") (result i32) i32.const 16))"#,
    )
    .unwrap();
    let guest = with_guest_world(&fits_impostor, impostor, "component");
    let errors = ENGINES.map(|k| run(k, &guest, &Grant::development(), &[], &[]).err());
    assert_eq!(errors[0], errors[1], "both engines refuse it alike");
    assert_eq!(
        errors[0],
        Some(Error::TypeMismatch {
            item: "on-event".into(),
            expected: "func (i32, i64, i32, i64, i64) -> (i32)".into(),
            found: "func (i64) -> (i32)".into(),
        })
    );
}

/// A module that needs exactly one wasm feature (beyond the MVP), for each feature
/// the probes cover.
fn probe(feature: WasmFeature) -> &'static str {
    use WasmFeature as F;
    match feature {
        F::MutableGlobal => r#"(module (import "m" "g" (global (mut i32))))"#,
        F::SaturatingFloatToInt => {
            "(module (func (param f32) (result i32) local.get 0 i32.trunc_sat_f32_s))"
        }
        F::SignExtension => "(module (func (param i32) (result i32) local.get 0 i32.extend8_s))",
        F::MultiValue => "(module (func (result i32 i32) i32.const 0 i32.const 1))",
        F::BulkMemory => {
            r#"(module (memory 1) (data $d "x")
                (func i32.const 0 i32.const 0 i32.const 1 memory.init $d))"#
        }
        F::ReferenceTypes => "(module (table 1 funcref) (table 1 funcref))",
        F::GcTypes => "(module (func (param externref)))",
        F::Floats => "(module (func (result f64) f64.const 1))",
        F::Simd => "(module (func (result v128) v128.const i32x4 0 0 0 0))",
        F::RelaxedSimd => {
            "(module (func (param v128) (result v128)
                local.get 0 local.get 0 i8x16.relaxed_swizzle))"
        }
        F::Threads => "(module (memory 1 1 shared))",
        F::TailCall => "(module (func $f return_call $f))",
        F::MultiMemory => "(module (memory 1) (memory 1))",
        F::Exceptions => "(module (tag $t) (func throw $t))",
        F::Memory64 => "(module (memory i64 1))",
        F::ExtendedConst => "(module (global i32 (i32.add (i32.const 1) (i32.const 2))))",
        F::FunctionReferences => {
            "(module (type $t (func)) (func (param (ref null $t)) local.get 0 call_ref $t))"
        }
        F::Gc => "(module (type (struct)))",
        F::CustomPageSizes => "(module (memory 1 (pagesize 1)))",
        F::WideArithmetic => {
            "(module (func (param i64 i64 i64 i64) (result i64 i64)
                local.get 0 local.get 1 local.get 2 local.get 3 i64.add128))"
        }
    }
}

/// The one table of which engine runs which wasm feature (`EngineKind::supports`) is
/// what both engines, as Tern configures them, actually accept, and what the payload
/// check (`tern sign`, the host's install check) answers, naming the feature.
#[test]
fn each_engine_accepts_exactly_the_wasm_features_its_table_gives_it() {
    let limits = tern_core::Limits::HOST;
    let wasmi = wasmi::Engine::new(&tern_wasmi::WasmiEngine::config(&limits));
    let wasmtime = wasmtime::Engine::new(&tern_wasmtime::WasmtimeEngine::config(&limits)).unwrap();
    for feature in WasmFeature::ALL {
        let w = wat::parse_str(probe(feature)).unwrap();
        for kind in EngineKind::ALL {
            let supported = kind.supports(feature);
            let accepted = match kind {
                EngineKind::Wasmi => wasmi::Module::new(&wasmi, &w[..]).is_ok(),
                EngineKind::Wasmtime => wasmtime::Module::validate(&wasmtime, &w).is_ok(),
            };
            assert_eq!(accepted, supported, "{} on {}", feature, kind.name());
            match tern_wasmtime::features::validate(&w, kind) {
                Ok(()) => assert!(supported, "{feature} passes the check for {}", kind.name()),
                Err(ValidationError::Unsupported(u)) => {
                    assert!(!supported, "{feature} on {}: {u}", kind.name());
                    // Relaxed SIMD's probe needs `v128` first, which wasmi lacks too.
                    let needed = match (feature, kind) {
                        (WasmFeature::RelaxedSimd, EngineKind::Wasmi) => WasmFeature::Simd,
                        _ => feature,
                    };
                    assert_eq!(u.feature, needed, "{feature} on {}: {u}", kind.name());
                }
                Err(e) => panic!("{feature} on {}: {e}", kind.name()),
            }
        }
    }
}

fn sample_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (prop::sample::select(vec!["temp-0", "temp-1", "hum-0"]), -40_000i64..85_000, 0u64..1_000_000)
            .prop_map(|(s, milli, at_ms)| Event::Sample(Sample { sensor: s.into(), milli, at_ms })),
        1 => (0u64..1_000_000).prop_map(Event::Tick),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Event::Frame),
    ]
}

fn ruuvi_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        // Well-formed Ruuvi format-5 manufacturer data with random fields.
        3 => prop::collection::vec(any::<u8>(), 23).prop_map(|body| {
            let mut f = vec![0x99, 0x04, 0x05];
            f.extend(body);
            Event::Frame(f)
        }),
        // Anything at all.
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Event::Frame),
        1 => (0u64..1_000_000).prop_map(Event::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn smoother_random_streams_match(evs in prop::collection::vec(sample_event(), 1..30)) {
        let [a, b] = both("smoother", &Grant::development(), &[], &evs);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn ruuvi_random_frames_match(evs in prop::collection::vec(ruuvi_event(), 1..30)) {
        let [a, b] = both("ruuvi", &Grant::development(), &[], &evs);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn alarm_random_streams_match(evs in prop::collection::vec(sample_event(), 1..30)) {
        let [a, b] = both("alarm", &Grant::development(), &[], &evs);
        prop_assert_eq!(a, b);
    }
}

/// The official Ruuvi RAWv2 test vector (docs.ruuvi.com, "Data format 5") decodes to
/// its published values through both engines.
#[test]
fn ruuvi_decodes_the_official_test_vector_on_both_engines() {
    let frame =
        tern_core::wit::hex_bytes::decode("99040512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")
            .unwrap();
    for kind in ENGINES {
        let t = run(
            kind,
            &wasm("ruuvi"),
            &Grant::development(),
            &[],
            &[Event::Frame(frame.clone())],
        )
        .unwrap();
        let outputs = t.event_outputs().next().expect("on-event answered ok");
        let get = |name: &str| {
            outputs
                .iter()
                .find(|o| o.name == name)
                .unwrap_or_else(|| panic!("no `{name}` in {outputs:?}"))
                .value
                .clone()
        };
        assert_eq!(
            get("temperature"),
            Value::Milli(24_300),
            "24.3 degC on {}",
            kind.name()
        );
        assert_eq!(
            get("humidity"),
            Value::Milli(53_490),
            "53.49 % on {}",
            kind.name()
        );
        assert_eq!(
            get("pressure"),
            Value::Milli(100_044_000),
            "100044 Pa on {}",
            kind.name()
        );
        assert_eq!(get("sequence"), Value::Milli(205_000));
        assert_eq!(get("mac"), Value::Text("cb:b8:33:4c:88:4f".into()));
    }
}
