//! Composition: the `environment` example imports `tern:ruuvi/decode`, which the
//! `ruuvi-decoder` component exports; `tern_host::compose` makes the two one
//! component. It runs on Wasmtime as that component and on wasmi as its device image,
//! with the same transcript; each part keeps its own linear memory; replacing the
//! decoder with a mock changes no byte of the app; a decoder of another type is
//! refused.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::bundle::EngineKind;
use tern_core::{Error, Grant, Interface, Output, Value};
use tern_host::compose::{ComposeError, componentize, compose};
use tern_host::run::{CallOutcome, Transcript};
use tern_tests::{ENGINES, LentMemory, events, run, wasm};

/// The interface the app imports and the decoders export.
const DECODE: &str = "tern:ruuvi/decode@0.1.0";

/// What `components/environment/component.toml` asks for.
fn grant() -> Grant {
    Grant::parse(["log", "kv=4096"]).unwrap()
}

/// A component made of a guest module built against its own world.
fn component(name: &str) -> Vec<u8> {
    componentize(&wasm(name)).unwrap()
}

/// The environment app composed with the decoder `decoder`.
fn app_with(decoder: &str) -> Vec<u8> {
    compose(&component("environment"), &[(DECODE, &component(decoder))]).unwrap()
}

/// `component` as the device image `tern sign` makes for a wasmi board.
fn image(component: &[u8]) -> Vec<u8> {
    tern_core::image::encode(&tern_wit::device_image(component).unwrap())
}

/// The environment's event file run on `kind`: the composed component on Wasmtime,
/// its device image on wasmi.
fn run_on(kind: EngineKind, composed: &[u8]) -> Transcript {
    let f = events("environment");
    let payload = match kind {
        EngineKind::Wasmtime => composed.to_vec(),
        EngineKind::Wasmi => image(composed),
    };
    run(kind, &payload, &grant(), &f.config, &f.events)
        .unwrap_or_else(|e| panic!("the composition on {kind:?}: {e}"))
}

/// Both engines' transcripts, checked equal line by line; the one transcript.
fn on_both(composed: &[u8]) -> Transcript {
    let [wasmi, wasmtime] = ENGINES.map(|kind| run_on(kind, composed));
    assert_eq!(
        wasmi.to_jsonl(),
        wasmtime.to_jsonl(),
        "the composition's device image on wasmi differs from the component on Wasmtime"
    );
    wasmtime
}

/// `on-event`'s outcome for each event, in order.
fn event_outcomes(t: &Transcript) -> Vec<CallOutcome> {
    t.results()
        .filter(|(call, _)| call.seq().is_some())
        .map(|(_, outcome)| outcome.clone())
        .collect()
}

fn find<'a>(outputs: &'a [Output], name: &str) -> Option<&'a Value> {
    outputs.iter().find(|o| o.name == name).map(|o| &o.value)
}

/// The nested components of a component, in order, as bytes.
fn nested_components(wasm: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::ComponentSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    out.push(&wasm[unchecked_range]);
                }
                depth += 1;
            }
            wasmparser::Payload::ModuleSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// Every core module of a component, nested ones included, as bytes.
fn core_modules(wasm: &[u8]) -> Vec<&[u8]> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::ModuleSection {
                unchecked_range, ..
            } => Some(&wasm[unchecked_range]),
            _ => None,
        })
        .collect()
}

/// The memories a core module defines (not imports), and the byte ranges its active
/// data segments write at constant offsets.
fn memories_and_data(module: &[u8]) -> (usize, Vec<std::ops::Range<u64>>) {
    let mut memories = 0;
    let mut data = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload.unwrap() {
            wasmparser::Payload::MemorySection(reader) => memories += reader.count() as usize,
            wasmparser::Payload::DataSection(reader) => {
                for segment in reader {
                    let segment = segment.unwrap();
                    if let wasmparser::DataKind::Active { offset_expr, .. } = segment.kind
                        && let Ok(wasmparser::Operator::I32Const { value }) =
                            offset_expr.get_operators_reader().read()
                    {
                        let start = u64::from(value as u32);
                        data.push(start..start + segment.data.len() as u64);
                    }
                }
            }
            _ => {}
        }
    }
    (memories, data)
}

#[test]
fn the_composed_app_runs_the_same_on_both_engines() {
    let t = on_both(&app_with("ruuvi-decoder"));
    let outcomes = event_outcomes(&t);
    assert_eq!(outcomes.len(), events("environment").events.len());

    // The format's reference vector, the first frame, decoded across the components.
    let CallOutcome::Ok(first) = &outcomes[0] else {
        panic!("first frame: {:?}", outcomes[0]);
    };
    assert_eq!(
        find(first, "tag"),
        Some(&Value::Text("cb:b8:33:4c:88:4f".into()))
    );
    assert_eq!(find(first, "temperature"), Some(&Value::Milli(24_300)));
    assert_eq!(find(first, "humidity"), Some(&Value::Milli(53_490)));
    assert_eq!(find(first, "pressure"), Some(&Value::Milli(100_044_000)));
    assert_eq!(find(first, "too-warm"), Some(&Value::Flag(true)));
    assert_eq!(find(first, "readings"), Some(&Value::Milli(1000)));
    // The second is the same tag again: kv kept its statistics.
    let CallOutcome::Ok(second) = &outcomes[1] else {
        panic!("second frame: {:?}", outcomes[1]);
    };
    assert_eq!(find(second, "readings"), Some(&Value::Milli(2000)));
    assert!(
        t.to_jsonl().contains("\"host\":\"kv.set\""),
        "no kv.set in the transcript"
    );

    // Across the whole stream, the composition decodes exactly as the monolithic
    // `ruuvi` example does (the same `ruuvi-format` code on the other side of the
    // canonical ABI): the same temperatures, humidities and pressures, and the same
    // error messages, strings that cross from the decoder's memory into the app's.
    let f = events("environment");
    let ruuvi = run(
        EngineKind::Wasmtime,
        &wasm("ruuvi"),
        &Grant::development(),
        &[],
        &f.events,
    )
    .unwrap();
    let mut errors = 0;
    for (seq, (env, ruuvi)) in outcomes.iter().zip(event_outcomes(&ruuvi)).enumerate() {
        match (env, &ruuvi) {
            (CallOutcome::Ok(a), CallOutcome::Ok(b)) => {
                for name in ["temperature", "humidity", "pressure"] {
                    assert_eq!(find(a, name), find(b, name), "event {seq}: {name}");
                }
            }
            (CallOutcome::ComponentError(a), CallOutcome::ComponentError(b)) => {
                assert_eq!(a, b, "event {seq}");
                errors += 1;
            }
            (a, b) => panic!("event {seq}: environment {a:?}, ruuvi {b:?}"),
        }
    }
    assert!(errors >= 5, "only {errors} refused frames");
    assert!(
        t.to_jsonl().contains(
            "\"message\":\"decode: not a Ruuvi frame: company id 0x004c, expected 0x0499\""
        )
    );
    // health-check decodes the reference frame through the decoder.
    assert!(
        t.to_jsonl()
            .ends_with("{\"call\":\"health-check\",\"ok\":null}\n")
    );
}

#[test]
fn replacing_the_decoder_with_a_mock_changes_no_byte_of_the_app() {
    let env = component("environment");
    let real = compose(&env, &[(DECODE, &component("ruuvi-decoder"))]).unwrap();
    let mock = compose(&env, &[(DECODE, &component("decoder-mock"))]).unwrap();
    assert_ne!(real, mock);
    // The app is in both compositions as it was given, and its core modules are in
    // both device images.
    for composed in [&real, &mock] {
        assert_eq!(nested_components(composed)[0], &env[..]);
        let bytes = image(composed);
        let image = tern_core::image::decode(&bytes).unwrap();
        for module in core_modules(&env) {
            assert!(
                image.modules.contains(&module),
                "an app module is missing from the image"
            );
        }
    }

    // The outputs are the mock's fixed reading, the same on both engines.
    let t = on_both(&mock);
    let outcomes = event_outcomes(&t);
    let frames = events("environment").events;
    let mut readings = 0;
    for (seq, (event, outcome)) in frames.iter().zip(&outcomes).enumerate() {
        match (event, outcome) {
            (tern_core::Event::Frame(frame), CallOutcome::ComponentError(e)) => {
                assert!(frame.is_empty(), "event {seq}: {e}");
                assert_eq!(e, "mock decoder: empty frame");
            }
            (tern_core::Event::Frame(_), CallOutcome::Ok(out)) => {
                readings += 1;
                assert_eq!(
                    find(out, "tag"),
                    Some(&Value::Text("00:11:22:33:44:55".into()))
                );
                assert_eq!(find(out, "temperature"), Some(&Value::Milli(20_000)));
                assert_eq!(find(out, "humidity"), Some(&Value::Milli(50_000)));
                assert_eq!(find(out, "pressure"), Some(&Value::Milli(100_000_000)));
                assert_eq!(find(out, "too-warm"), Some(&Value::Flag(false)));
                assert_eq!(
                    find(out, "readings"),
                    Some(&Value::Milli(readings * 1000)),
                    "event {seq}"
                );
            }
            (_, CallOutcome::Ok(out)) => assert!(out.is_empty(), "event {seq}"),
            (_, other) => panic!("event {seq}: {other:?}"),
        }
    }
    assert!(readings > 10, "{readings} readings");
}

/// Each component keeps its own linear memory: the device image holds two core
/// modules that define a memory (the app's and the decoder's; wit-component's shim
/// and fixup modules define none) and none that imports one. Both are built with
/// the same link settings, so their data and heaps lie at the same addresses, and
/// the mock fills 8 KiB of its heap with 0xA5 on every call: the outputs being right
/// (the test above) shows that the callee's writes never reached the caller's memory.
#[test]
fn each_component_has_its_own_linear_memory() {
    let composed = app_with("decoder-mock");
    let bytes = image(&composed);
    let image = tern_core::image::decode(&bytes).unwrap();
    let owners: Vec<_> = image
        .modules
        .iter()
        .map(|m| memories_and_data(m))
        .filter(|(memories, _)| *memories > 0)
        .collect();
    assert_eq!(owners.len(), 2, "modules defining a memory");
    assert!(owners.iter().all(|(memories, _)| *memories == 1));
    let overlap = owners[0].1.iter().any(|a| {
        owners[1]
            .1
            .iter()
            .any(|b| a.start < b.end && b.start < a.end)
    });
    assert!(
        overlap,
        "the two modules' data lie at different addresses: {:?} / {:?}",
        owners[0].1, owners[1].1
    );
    for module in &image.modules {
        for payload in wasmparser::Parser::new(0).parse_all(module) {
            if let wasmparser::Payload::ImportSection(reader) = payload.unwrap() {
                for imports in reader {
                    for import in imports.unwrap() {
                        let (_, import) = import.unwrap();
                        assert!(
                            !matches!(import.ty, wasmparser::TypeRef::Memory(_)),
                            "a module imports a memory: {}",
                            import.name
                        );
                    }
                }
            }
        }
    }
    // The component Wasmtime runs: the same two memories.
    let memories: usize = core_modules(&composed)
        .into_iter()
        .map(|m| memories_and_data(m).0)
        .sum();
    assert_eq!(memories, 2);
}

/// On a device the components' memories are not on the heap: the board lends one
/// buffer (`limits.memory-bytes`), which the engine splits between them. The app runs
/// there as it does on Wasmtime; a buffer that cannot hold both components'
/// minimums is a memory limit, not a crash.
#[test]
fn the_composed_app_runs_in_the_memory_a_board_lends() {
    use tern_core::Engine as _;
    let composed = app_with("ruuvi-decoder");
    let wasmtime = run_on(EngineKind::Wasmtime, &composed);
    let f = events("environment");
    let granted = tern_core::Granted::for_development(grant());
    // The QEMU boards' 256 KiB: four pages for the two components.
    let limits = tern_core::Limits {
        memory_bytes: 4 * 65_536,
        ..tern_core::Limits::HOST
    };
    let engine = tern_wasmi::WasmiEngine::with_static_memory(limits, LentMemory::new(4));
    let lent = tern_host::run::run_stream(
        &engine,
        &image(&composed),
        &granted,
        &f.config,
        &f.events,
        &tern_host::run::SharedSim::default(),
    )
    .unwrap();
    assert_eq!(lent.to_jsonl(), wasmtime.to_jsonl());

    let engine = tern_wasmi::WasmiEngine::with_static_memory(limits, LentMemory::new(1));
    let component = engine.load(&image(&composed), &granted).unwrap();
    let err = engine
        .instantiate(&component, Box::new(tern_host::run::SharedSim::default()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
}

/// A decoder whose `decode` has another type than the app imports is refused before
/// anything runs, naming the interface and the function.
#[test]
fn a_decoder_of_another_type_is_refused() {
    // A real component of the wrong type, made by wit-component from a module that
    // fits the WIT: `decode` takes a string.
    let wit = r#"
        package tern:ruuvi@0.1.0;
        interface decode {
            record reading {
                temperature-milli: option<s64>,
                humidity-milli: option<s64>,
                pressure-pa: option<u32>,
                accel-milli-g: tuple<option<s32>, option<s32>, option<s32>>,
                battery-mv: option<u32>,
                tx-power-dbm: option<s32>,
                movement: option<u8>,
                sequence: option<u16>,
                mac: option<list<u8>>,
            }
            decode: func(frame: string) -> result<reading, string>;
        }
        world decoder { export decode; }
    "#;
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("wrong.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("decoder")).unwrap();
    let mut module = wit_component::dummy_module(
        &resolve,
        world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let wrong = componentize(&module).unwrap();
    let err = compose(&component("environment"), &[(DECODE, &wrong)]).unwrap_err();
    match &err {
        ComposeError::TypeMismatch {
            interface, item, ..
        } => {
            assert_eq!(interface, DECODE);
            assert_eq!(item, "decode");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("exports `decode` of another type"));
}

/// Every other refusal, each with its typed error.
#[test]
fn compositions_that_cannot_be_made_are_refused_by_name() {
    let env = component("environment");
    let decoder = component("ruuvi-decoder");
    // Nothing plugged into the decoder import: not something a host provides.
    assert_eq!(
        compose(&env, &[]).unwrap_err(),
        ComposeError::Unsatisfied {
            component: "app".into(),
            import: DECODE.into(),
        }
    );
    // A plug that does not export the interface (the app itself).
    assert_eq!(
        compose(&env, &[(DECODE, &env)]).unwrap_err(),
        ComposeError::MissingExport {
            interface: DECODE.into()
        }
    );
    // An interface the app does not import.
    assert_eq!(
        compose(&env, &[("tern:ruuvi/encode@0.1.0", &decoder)]).unwrap_err(),
        ComposeError::NotImported {
            interface: "tern:ruuvi/encode@0.1.0".into()
        }
    );
    // Two decoders.
    assert_eq!(
        compose(&env, &[(DECODE, &decoder), (DECODE, &decoder)]).unwrap_err(),
        ComposeError::Duplicate {
            interface: DECODE.into()
        }
    );
    // A core module is not a component.
    assert!(matches!(
        compose(&env, &[(DECODE, &wasm("ruuvi-decoder"))]).unwrap_err(),
        ComposeError::Invalid { component, .. } if component == DECODE
    ));
    assert!(matches!(
        compose(&wasm("environment"), &[(DECODE, &decoder)]).unwrap_err(),
        ComposeError::Invalid { component, .. } if component == "app"
    ));
}

/// The same components compose to the same bytes.
#[test]
fn composition_is_deterministic() {
    assert_eq!(app_with("ruuvi-decoder"), app_with("ruuvi-decoder"));
}

/// Deny by default holds through composition: the app's kv import is refused at load
/// on both engines when the grant lacks kv, as for a module.
#[test]
fn the_composition_is_granted_as_any_component() {
    let composed = app_with("ruuvi-decoder");
    let f = events("environment");
    let grant = Grant::parse(["log"]).unwrap();
    for kind in ENGINES {
        let payload = match kind {
            EngineKind::Wasmtime => composed.clone(),
            EngineKind::Wasmi => image(&composed),
        };
        let err = run(kind, &payload, &grant, &f.config, &f.events).unwrap_err();
        assert_eq!(
            err,
            Error::ImportNotGranted {
                interface: Interface::Kv
            },
            "{kind:?}"
        );
    }
}
