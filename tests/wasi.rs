//! WASI interfaces beside `tern:edge`: a component of its own world
//! (`components/heartbeat`: wasi:logging, wasi:clocks/monotonic-clock and
//! wasi:keyvalue/store with its `bucket` resource, built with wit-bindgen alone)
//! runs the same on both engines, as a core module and as the component
//! wit-component makes of it, and its imports are held to the grant by capability
//! (`log`, `clock`, `kv`), deny by default.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::bundle::EngineKind;
use tern_core::{Error, Grant, Interface, Output, Value};
use tern_host::compose::componentize;
use tern_host::run::{CallOutcome, Transcript};
use tern_tests::{ENGINES, events, run, wasm};

/// What `components/heartbeat/component.toml` asks for.
fn grant() -> Grant {
    Grant::parse(["log", "clock", "kv=64"]).unwrap()
}

/// heartbeat as a component of its own world (wit-component reads the module's
/// `component-type` section), as `wasm-tools component new` makes it.
fn component() -> Vec<u8> {
    componentize(&wasm("heartbeat")).unwrap()
}

/// heartbeat's events run on `kind`: the component on Wasmtime, its device image on
/// wasmi (as `tern sign` makes them).
fn run_on(kind: EngineKind, payload: &[u8], grant: &Grant) -> Result<Transcript, Error> {
    let f = events("heartbeat");
    run(kind, payload, grant, &f.config, &f.events)
}

/// `on-event`'s outputs for each event, in order (`None` for an event that failed).
fn outputs(t: &Transcript) -> Vec<Option<Vec<Output>>> {
    t.results()
        .filter(|(call, _)| call.seq().is_some())
        .map(|(_, outcome)| match outcome {
            CallOutcome::Ok(outputs) => Some(outputs.clone()),
            _ => None,
        })
        .collect()
}

/// `payload` with every `from` replaced by `to` (same length: no section sizes change).
fn renamed(payload: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = payload.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from.as_bytes() {
            out[i..i + from.len()].copy_from_slice(to.as_bytes());
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "`{from}` is in the payload");
    out
}

#[test]
fn a_component_of_its_own_world_runs_the_same_on_both_engines() {
    let comp = component();
    let [wasmi, wasmtime] = ENGINES.map(|kind| run_on(kind, &comp, &grant()).unwrap().to_jsonl());
    assert_eq!(wasmi, wasmtime, "heartbeat differs between the engines");
    // The core module it was made from, on both engines: the same again.
    for kind in ENGINES {
        assert_eq!(
            run_on(kind, &wasm("heartbeat"), &grant())
                .unwrap()
                .to_jsonl(),
            wasmtime,
            "the core module on {kind:?}"
        );
    }
}

#[test]
fn heartbeat_counts_beats_and_its_clock_never_goes_back() {
    let t = run_on(EngineKind::Wasmtime, &component(), &grant()).unwrap();
    let f = events("heartbeat");
    let outputs = outputs(&t);
    assert_eq!(outputs.len(), f.events.len(), "one result per event");
    for (i, out) in outputs.iter().enumerate() {
        let out = out.as_ref().unwrap();
        let beats = out.iter().find(|o| o.name == "beats").unwrap();
        assert_eq!(beats.value, Value::Milli((i as i64 + 1) * 1000));
        let monotonic = out.iter().find(|o| o.name == "monotonic").unwrap();
        assert_eq!(monotonic.value, Value::Flag(true));
        // `beats` and `last-ns`: the scratch key was set, seen, deleted, not seen.
        let keys = out.iter().find(|o| o.name == "keys").unwrap();
        assert_eq!(keys.value, Value::Milli(2000));
        let store = out.iter().find(|o| o.name == "store").unwrap();
        assert_eq!(store.value, Value::Flag(true));
    }
    // The clock was read through WASI, in nanoseconds, and logged with its context.
    let jsonl = t.to_jsonl();
    assert!(jsonl.contains(r#""host":"monotonic-clock.now""#), "{jsonl}");
    assert!(jsonl.contains("heartbeat: started"), "{jsonl}");
    assert!(jsonl.contains("heartbeat: beat 1 (tick) at "), "{jsonl}");
    // Each event opened the bucket and dropped it: the bucket's number is free
    // again each time. health-check opened `elsewhere` and got `no-such-store`.
    let opened = jsonl
        .matches(r#""host":"keyvalue.open","identifier":"","result":{"Ok":0}"#)
        .count();
    let dropped = jsonl.matches(r#""bucket":0,"host":"bucket.drop""#).count();
    assert!(opened > f.events.len(), "{jsonl}");
    assert_eq!(opened, dropped, "{jsonl}");
    assert!(
        jsonl.contains(r#""identifier":"elsewhere","result":{"Err":"no-such-store"}"#),
        "{jsonl}"
    );
}

/// A bucket is the component's kv: the grant's quota holds for `bucket.set` as for
/// `kv.set`, an error value the component sees (heartbeat fails the event with it),
/// the same on both engines.
#[test]
fn the_kv_quota_holds_for_buckets() {
    let tight = Grant::parse(["log", "clock", "kv=20"]).unwrap();
    let comp = component();
    let [wasmi, wasmtime] = ENGINES.map(|kind| run_on(kind, &comp, &tight).unwrap());
    assert_eq!(wasmi.to_jsonl(), wasmtime.to_jsonl());
    let outcomes = outputs(&wasmtime);
    assert!(outcomes.iter().all(Option::is_none), "{outcomes:?}");
    assert!(
        wasmtime
            .to_jsonl()
            .contains("kv quota exceeded: 28 bytes needed, 20 granted"),
        "{}",
        wasmtime.to_jsonl()
    );
}

/// A WASI interface is granted as the capability it reaches: without `clock`,
/// importing `wasi:clocks/monotonic-clock` fails to load on both engines with the
/// same error, naming the interface and the grant that would allow it; without `kv`,
/// importing `wasi:keyvalue/store` does.
#[test]
fn a_wasi_import_without_its_capability_fails_to_load_naming_both() {
    let comp = component();
    for (grant, interface, cap) in [
        (["log", "kv=64"], Interface::WasiMonotonicClock, "clock"),
        (["log", "clock"], Interface::WasiKeyvalueStore, "kv"),
    ] {
        let grant = Grant::parse(grant).unwrap();
        for kind in ENGINES {
            let err = run_on(kind, &comp, &grant).unwrap_err();
            assert_eq!(err, Error::ImportNotGranted { interface }, "{kind:?}");
            let message = err.to_string();
            assert!(
                message.contains(interface.import_module())
                    && message.contains(&format!("grant `{cap}`")),
                "{message}"
            );
        }
    }
}

/// A component built against a later WASI 0.2 release links as Wasmtime links it
/// (semver-compatible: the functions have one type in every 0.2 release); another
/// minor version is outside the world on both engines.
#[test]
fn wasi_0_2_patch_releases_link_and_other_versions_do_not() {
    let comp = component();
    let from = "wasi:clocks/monotonic-clock@0.2.0";
    let later = renamed(&comp, from, "wasi:clocks/monotonic-clock@0.2.7");
    let expected = run_on(EngineKind::Wasmtime, &comp, &grant())
        .unwrap()
        .to_jsonl();
    for kind in ENGINES {
        assert_eq!(
            run_on(kind, &later, &grant()).unwrap().to_jsonl(),
            expected,
            "@0.2.7 on {kind:?}"
        );
    }
    let other = renamed(&comp, from, "wasi:clocks/monotonic-clock@0.3.0");
    for kind in ENGINES {
        let err = run_on(kind, &other, &grant()).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownImport { module, .. } if module.contains("@0.3.0")),
            "@0.3.0 on {kind:?}: {err}"
        );
    }
}
