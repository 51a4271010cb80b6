//! Parity: the same component and events give byte-identical results and identical
//! ordered host-call traces on wasmi and Wasmtime.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use proptest::prelude::*;
use tern_core::{Event, Grant, Sample, Value};
use tern_tests::{ENGINES, EXAMPLES, events, run, wasm};

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
