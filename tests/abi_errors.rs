//! Canonical-ABI faults: hand-written modules break the ABI through a host import's
//! arguments or return area and through an export's result, and both engines report
//! the same `Error::Abi`, whose message is the fault's fixed summary
//! (`tern_core::error::AbiFault`: no address, no length, no engine text, no wasm
//! backtrace), after the same host calls. A host call whose result cannot be stored
//! has run first on both engines (the canonical ABI's order).
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use tern_core::error::AbiFault;
use tern_core::{Bytes, Error, Event, Grant, HostCall};
use tern_host::run::{Call, CallOutcome, Entry, Transcript};

/// Every host function of the world with the core type `tern_core::abi` gives it,
/// named for the modules below (as tests/hostile.rs writes them).
const IMPORTS: &str = r#"
  (import "tern:edge/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "tern:edge/clock@0.1.0" "now-ms" (func $now (result i64)))
  (import "tern:edge/sensors@0.1.0" "read" (func $read (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "set" (func $gpio_set (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "get" (func $gpio_get (param i32 i32)))
  (import "tern:edge/kv@0.1.0" "get" (func $kv_get (param i32 i32 i32)))
  (import "tern:edge/kv@0.1.0" "set" (func $kv_set (param i32 i32 i32 i32 i32)))
  (import "tern:edge/publish@0.1.0" "publish" (func $publish (param i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "open" (func $kv_open (param i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "[method]bucket.get"
    (func $bucket_get (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "[resource-drop]bucket"
    (func $bucket_drop (param i32)))
"#;

/// A bump `cabi_realloc(old_ptr, old_size, align, new_size)` from 4096.
const BUMP: &str = "
    global.get $heap local.get 2 i32.add i32.const 1 i32.sub
    i32.const 0 local.get 2 i32.sub i32.and local.tee 0
    local.get 3 i32.add global.set $heap
    local.get 0";

/// The result area every well-behaved export returns: 16, twelve zero bytes, `ok`
/// (with an empty list for `on-event`).
const OK: &str = "i32.const 16";

/// A module in the world: `memory` (one page; "key" at 64, "v1" at 80), `realloc`'s
/// body, `on-event`'s and `health-check`'s bodies, and more data segments. `init`
/// answers `ok`. Layouts used below: `on-event`'s `result<list<output>, string>` is
/// 12 bytes (discriminant, then the list's pointer at +4 and length at +8); an
/// `output` is 40 bytes aligned to 8: `name` at 0, `value` at 8 (discriminant, payload
/// at 16), `unit` at 24 (discriminant, string at 28).
struct Guest<'a> {
    realloc: &'a str,
    on_event: &'a str,
    health_check: &'a str,
    data: &'a str,
}

impl Default for Guest<'_> {
    fn default() -> Self {
        Guest {
            realloc: BUMP,
            on_event: OK,
            health_check: OK,
            data: "",
        }
    }
}

impl Guest<'_> {
    fn wasm(&self) -> Vec<u8> {
        let Guest {
            realloc,
            on_event,
            health_check,
            data,
        } = self;
        wat::parse_str(format!(
            r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 64) "key")
  (data (i32.const 80) "v1")
  {data}
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) {realloc})
  (func (export "init") (param i32 i32) (result i32) {OK})
  (func (export "on-event") (param i32 i64 i32 i64 i64) (result i32) {on_event})
  (func (export "health-check") (result i32) {health_check}))"#
        ))
        .unwrap()
    }
}

/// `on-event` returning the result area at 256 that `data` fills in.
fn returns(data: &str) -> Vec<u8> {
    Guest {
        on_event: "i32.const 256",
        data,
        ..Guest::default()
    }
    .wasm()
}

/// `on-event` making the host calls `calls`, then answering `ok`.
fn calls(calls: &str) -> Vec<u8> {
    let on_event = format!("{calls} {OK}");
    Guest {
        on_event: &on_event,
        ..Guest::default()
    }
    .wasm()
}

/// Runs `wasm` with `config` over one tick on both engines; the two transcripts must
/// be identical (host calls, results, errors), and the first runtime error on each
/// must be `Error::Abi` with `fault`'s summary, free of addresses and backtraces.
/// Returns the transcript.
fn faults(wasm: &[u8], config: &[(&str, &str)], fault: AbiFault) -> Transcript {
    let config: Vec<(String, String)> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let [a, b] = tern_tests::ENGINES.map(|k| {
        tern_tests::run(k, wasm, &Grant::development(), &config, &[Event::Tick(1)])
            .unwrap_or_else(|e| panic!("loads and instantiates on {}: {e}", k.name()))
    });
    assert_eq!(a.to_jsonl(), b.to_jsonl(), "wasmi and Wasmtime differ");
    let expected = Error::Abi(fault.summary().into());
    for (t, engine) in [(&a, "wasmi"), (&b, "Wasmtime")] {
        let first = t.errors().next();
        assert_eq!(first, Some(&expected), "{engine}:\n{}", t.to_jsonl());
        let text = expected.to_string();
        for leak in ["0x", "backtrace", "wasm function", "\n"] {
            assert!(!text.contains(leak), "{engine}: `{text}` contains `{leak}`");
        }
    }
    a
}

/// The outcome of the first `on-event`.
fn on_event_outcome(t: &Transcript) -> &CallOutcome {
    t.results()
        .find(|(c, _)| matches!(c, Call::OnEvent { .. }))
        .map(|(_, o)| o)
        .unwrap()
}

/// The host calls made during the first `on-event`.
fn on_event_calls(t: &Transcript) -> Vec<&HostCall> {
    t.host_calls()
        .filter(|(_, c)| matches!(c, Call::OnEvent { .. }))
        .map(|(h, _)| h)
        .collect()
}

#[test]
fn a_misaligned_return_area_for_kv_get_and_sensors_read() {
    // kv.get's option<list<u8>> is aligned to 4, sensors.read's result<sample,
    // string> to 8. Both calls are made, then their results cannot be stored.
    let t = faults(
        &calls("i32.const 64 i32.const 3 i32.const 1026 call $kv_get"),
        &[],
        AbiFault::ReturnAreaMisaligned,
    );
    assert!(matches!(on_event_calls(&t)[..], [HostCall::KvGet { .. }]));
    let t = faults(
        &calls("i32.const 64 i32.const 3 i32.const 1028 call $read"),
        &[],
        AbiFault::ReturnAreaMisaligned,
    );
    assert!(matches!(
        on_event_calls(&t)[..],
        [HostCall::SensorRead { .. }]
    ));
}

#[test]
fn an_out_of_bounds_return_area() {
    faults(
        &calls("i32.const 1 i32.const 0xfffffff0 call $gpio_get"),
        &[],
        AbiFault::OutOfBounds,
    );
    faults(
        &calls("i32.const 1 i32.const 65532 call $gpio_get"),
        &[],
        AbiFault::OutOfBounds,
    );
}

#[test]
fn an_out_of_bounds_string_for_log() {
    // Past the end of memory, and past the end of the address space; no call is made.
    for (ptr, len) in [(0xffff_0000u32, 10), (65530, 7), (0xffff_fff0, 0x20)] {
        let t = faults(
            &calls(&format!(
                "i32.const 2 i32.const {ptr} i32.const {len} call $log"
            )),
            &[],
            AbiFault::OutOfBounds,
        );
        assert!(on_event_calls(&t).is_empty());
    }
}

#[test]
fn invalid_utf8_for_log() {
    // A stray continuation byte, a truncated sequence, an encoded surrogate.
    for (bytes, len) in [(r"\ff\fe", 2), (r"ok\c3", 3), (r"\ed\a0\80", 3)] {
        let data = format!(r#"(data (i32.const 300) "{bytes}")"#);
        let on_event = format!("i32.const 2 i32.const 300 i32.const {len} call $log {OK}");
        let w = Guest {
            on_event: &on_event,
            data: &data,
            ..Guest::default()
        }
        .wasm();
        let t = faults(&w, &[], AbiFault::InvalidUtf8);
        assert!(on_event_calls(&t).is_empty());
    }
}

#[test]
fn an_invalid_log_level() {
    // `level` is an enum of 5 cases.
    faults(
        &calls("i32.const 5 i32.const 64 i32.const 3 call $log"),
        &[],
        AbiFault::InvalidDiscriminant,
    );
}

#[test]
fn an_out_of_bounds_list_for_kv_set() {
    let t = faults(
        &calls(
            "i32.const 64 i32.const 3 i32.const 0xffff0000 i32.const 100 i32.const 1024 call $kv_set",
        ),
        &[],
        AbiFault::OutOfBounds,
    );
    // Refused while lifting the arguments: the value is never written.
    assert!(on_event_calls(&t).is_empty());
}

#[test]
fn on_event_returning_a_bad_result_discriminant() {
    faults(
        &returns(r#"(data (i32.const 256) "\02")"#),
        &[],
        AbiFault::InvalidDiscriminant,
    );
}

#[test]
fn a_bad_variant_discriminant_in_an_output() {
    // One output at 512: name "", value case 3 of `value`'s 3.
    faults(
        &returns(
            r#"(data (i32.const 256) "\00\00\00\00\00\02\00\00\01\00\00\00")
               (data (i32.const 520) "\03")"#,
        ),
        &[],
        AbiFault::InvalidDiscriminant,
    );
}

#[test]
fn an_invalid_option_discriminant_in_an_output() {
    // One output at 512: name "", value milli 0, unit discriminant 2.
    faults(
        &returns(
            r#"(data (i32.const 256) "\00\00\00\00\00\02\00\00\01\00\00\00")
               (data (i32.const 536) "\02")"#,
        ),
        &[],
        AbiFault::InvalidDiscriminant,
    );
}

#[test]
fn invalid_utf8_in_an_output() {
    // One output at 512 named by the 2 bytes at 300.
    faults(
        &returns(
            r#"(data (i32.const 256) "\00\00\00\00\00\02\00\00\01\00\00\00")
               (data (i32.const 512) "\2c\01\00\00\02\00\00\00")
               (data (i32.const 300) "\ff\fe")"#,
        ),
        &[],
        AbiFault::InvalidUtf8,
    );
}

#[test]
fn a_misaligned_list_pointer_in_the_on_event_result() {
    // Outputs are aligned to 8; the list at 516 is inside memory.
    faults(
        &returns(r#"(data (i32.const 256) "\00\00\00\00\04\02\00\00\01\00\00\00")"#),
        &[],
        AbiFault::ListMisaligned,
    );
}

#[test]
fn an_out_of_bounds_list_in_the_on_event_result() {
    faults(
        &returns(r#"(data (i32.const 256) "\00\00\00\00\00\00\ff\ff\01\00\00\00")"#),
        &[],
        AbiFault::OutOfBounds,
    );
}

#[test]
fn a_list_length_that_overflows() {
    // 2^28 outputs of 40 bytes: past 4 GiB (and past the ABI's 2^28 - 1 bytes).
    faults(
        &returns(r#"(data (i32.const 256) "\00\00\00\00\00\02\00\00\00\00\00\10")"#),
        &[],
        AbiFault::OutOfBounds,
    );
    // kv.set's value of 2^32 - 1 bytes: over the ABI's limit, and past memory.
    let t = faults(
        &calls("i32.const 64 i32.const 3 i32.const 80 i32.const -1 i32.const 1024 call $kv_set"),
        &[],
        AbiFault::OutOfBounds,
    );
    assert!(on_event_calls(&t).is_empty());
    // log's message of 2^28 bytes, over the ABI's limit for strings.
    faults(
        &calls("i32.const 2 i32.const 64 i32.const 0x10000000 call $log"),
        &[],
        AbiFault::OutOfBounds,
    );
}

#[test]
fn a_misaligned_or_out_of_bounds_result_pointer() {
    fn returning(ptr: &str) -> Vec<u8> {
        Guest {
            on_event: ptr,
            ..Guest::default()
        }
        .wasm()
    }
    faults(&returning("i32.const 258"), &[], AbiFault::ResultMisaligned);
    faults(&returning("i32.const 65532"), &[], AbiFault::OutOfBounds);
    faults(
        &returning("i32.const 0xfffffff8"),
        &[],
        AbiFault::OutOfBounds,
    );
}

#[test]
fn cabi_realloc_returning_a_misaligned_pointer() {
    // `init`'s config, list<tuple<string, string>>, is aligned to 4.
    let w = Guest {
        realloc: "i32.const 1026",
        ..Guest::default()
    }
    .wasm();
    let t = faults(&w, &[("a", "b")], AbiFault::ReallocMisaligned);
    assert!(matches!(
        t.results().next(),
        Some((Call::Init, CallOutcome::RuntimeError(Error::Abi(_))))
    ));
}

#[test]
fn cabi_realloc_returning_an_out_of_bounds_pointer() {
    // For `init`'s config.
    let w = Guest {
        realloc: "i32.const 0xffff0000",
        ..Guest::default()
    }
    .wasm();
    faults(&w, &[("a", "b")], AbiFault::OutOfBounds);

    // For the 2 bytes kv.get returns: after the call, like the return area.
    let realloc =
        format!("local.get 3 i32.const 2 i32.eq if (result i32) i32.const 65535 else {BUMP} end");
    let w = Guest {
        realloc: &realloc,
        on_event: &format!(
            "i32.const 64 i32.const 3 i32.const 80 i32.const 2 i32.const 1024 call $kv_set
             i32.const 64 i32.const 3 i32.const 1024 call $kv_get {OK}"
        ),
        ..Guest::default()
    }
    .wasm();
    let t = faults(&w, &[], AbiFault::OutOfBounds);
    assert!(matches!(
        on_event_calls(&t)[..],
        [
            HostCall::KvSet { .. },
            HostCall::KvGet {
                result: Some(_),
                ..
            }
        ]
    ));
}

/// The canonical ABI's order on both engines: `canon lower` calls the host function,
/// then stores its result. kv.set with a misaligned return area therefore writes the
/// value, is in the trace, and only then faults; the next instance reads the value.
#[test]
fn a_host_call_runs_before_its_misaligned_return_area_faults() {
    let w = Guest {
        on_event: &format!(
            "i32.const 64 i32.const 3 i32.const 80 i32.const 2 i32.const 1026 call $kv_set {OK}"
        ),
        health_check: &format!("i32.const 64 i32.const 3 i32.const 1024 call $kv_get {OK}"),
        ..Guest::default()
    }
    .wasm();
    let t = faults(&w, &[], AbiFault::ReturnAreaMisaligned);
    let ok = CallOutcome::Ok(Vec::new());
    let event = Call::OnEvent { seq: 0 };
    let value = || Bytes(b"v1".to_vec());
    assert_eq!(
        t.entries,
        [
            Entry::Result {
                call: Call::Init,
                outcome: ok.clone(),
            },
            Entry::Host {
                call: HostCall::KvSet {
                    key: "key".into(),
                    value: value(),
                    result: Ok(()),
                },
                during: event,
            },
            Entry::Result {
                call: event,
                outcome: CallOutcome::RuntimeError(Error::Abi(
                    AbiFault::ReturnAreaMisaligned.summary().into()
                )),
            },
            // The instance was replaced; kv outlives it.
            Entry::Result {
                call: Call::Init,
                outcome: ok.clone(),
            },
            Entry::Host {
                call: HostCall::KvGet {
                    key: "key".into(),
                    result: Some(value()),
                },
                during: Call::HealthCheck,
            },
            Entry::Result {
                call: Call::HealthCheck,
                outcome: ok,
            },
        ],
        "{}",
        t.to_jsonl()
    );
    assert!(matches!(on_event_outcome(&t), CallOutcome::RuntimeError(_)));
}

/// `open("")` with its `result<own<bucket>, error>` in the return area at `area`
/// (the handle at `area + 4`).
fn open_at(area: u32) -> String {
    format!("i32.const 64 i32.const 0 i32.const {area} call $kv_open")
}

/// The handle `open_at(area)` left.
fn handle_at(area: u32) -> String {
    format!("(i32.load (i32.const {}))", area + 4)
}

/// A handle the instance's table does not hold (0, never given, dropped, dropped
/// twice) is the same fault on both engines, after the same host calls: the call
/// that takes it is not made.
#[test]
fn a_bucket_handle_the_instance_does_not_hold() {
    let get =
        |handle: &str| format!("{handle} i32.const 64 i32.const 3 i32.const 1040 call $bucket_get");
    for body in [get("i32.const 0"), get("i32.const 7")] {
        let t = faults(&calls(&body), &[], AbiFault::UnknownHandle);
        assert!(on_event_calls(&t).is_empty(), "{body}");
    }
    let (open, h) = (open_at(1024), handle_at(1024));
    for body in [
        format!("{open} {h} call $bucket_drop {}", get(&h)),
        format!("{open} {h} call $bucket_drop {h} call $bucket_drop"),
    ] {
        let t = faults(&calls(&body), &[], AbiFault::UnknownHandle);
        assert!(
            matches!(
                on_event_calls(&t)[..],
                [
                    HostCall::KvOpen { result: Ok(0), .. },
                    HostCall::BucketDrop { bucket: 0 }
                ]
            ),
            "{body}"
        );
    }
}

/// Handles are numbered alike on both engines (the spec's table: from 1, the last
/// freed reused first): open, open, drop the first, open again; the two handles
/// then held are logged as levels (1 = debug, 2 = info), so a difference would
/// show in the transcript.
#[test]
fn bucket_handles_are_numbered_alike_on_both_engines() {
    let body = format!(
        "{} {} {h1} call $bucket_drop {} {} i32.const 64 i32.const 3 call $log \
         {} i32.const 64 i32.const 3 call $log",
        open_at(1024),
        open_at(1040),
        open_at(1056),
        handle_at(1056),
        handle_at(1040),
        h1 = handle_at(1024),
    );
    let wasm = calls(&body);
    let [a, b] = tern_tests::ENGINES
        .map(|k| tern_tests::run(k, &wasm, &Grant::development(), &[], &[Event::Tick(1)]).unwrap());
    assert_eq!(a.to_jsonl(), b.to_jsonl(), "wasmi and Wasmtime differ");
    assert_eq!(a.errors().next(), None, "{}", a.to_jsonl());
    let levels: Vec<tern_core::Level> = on_event_calls(&a)
        .into_iter()
        .filter_map(|c| match c {
            HostCall::Log { level, .. } => Some(*level),
            _ => None,
        })
        .collect();
    assert_eq!(
        levels,
        [tern_core::Level::Debug, tern_core::Level::Info],
        "handles 1 (reused) and 2"
    );
}
