//! The run loop: one component over one event stream, printing a JSON line per
//! handler result and per host call. Both engines go through the same loop, so
//! their outputs can be compared byte for byte.

use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use tern_core::host::SimPlatform;
use tern_core::results::{Outcome, ResultLine};
use tern_core::{
    Engine, Error, ErrorClass, Event, Granted, Instance, Level, Limits, Output, Platform, Sample,
};

/// Which engine runs the component: the one `EngineKind`, tern-core's, which boards
/// and bundles name too.
pub use tern_core::bundle::EngineKind;

/// Parses `--engine wasmi|wasmtime` (clap lists the two names in `--help`).
pub fn engine_arg() -> impl clap::builder::TypedValueParser<Value = EngineKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(EngineKind::ALL.map(EngineKind::name)).map(|name| {
        // The possible values above are exactly the engines' names.
        EngineKind::from_name(&name).unwrap_or(EngineKind::Wasmtime)
    })
}

/// A [`SimPlatform`] shared between the run loop (which feeds it events) and the
/// instance's host (which answers the component's calls).
#[derive(Clone, Default)]
pub struct SharedSim(pub Arc<Mutex<SimPlatform>>);

impl SharedSim {
    fn with<R>(&self, f: impl FnOnce(&mut SimPlatform) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Platform for SharedSim {
    fn log(&mut self, level: Level, message: &str) {
        self.with(|s| s.log(level, message));
    }
    fn now_ms(&mut self) -> u64 {
        self.with(|s| s.now_ms())
    }
    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        self.with(|s| s.read_sensor(sensor))
    }
    fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String> {
        self.with(|s| s.gpio_set(pin, high))
    }
    fn gpio_get(&mut self, pin: u32) -> Result<bool, String> {
        self.with(|s| s.gpio_get(pin))
    }
    fn kv_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.with(|s| s.kv_get(key))
    }
    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.with(|s| s.kv_set(key, value))
    }
    fn kv_used_bytes(&mut self) -> usize {
        self.with(|s| s.kv_used_bytes())
    }
    fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String> {
        self.with(|s| s.publish(topic, payload))
    }
}

/// The kebab-case name of an error class, as printed.
pub fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::InvalidModule => "invalid-module",
        ErrorClass::ImportNotGranted => "import-not-granted",
        ErrorClass::UnknownImport => "unknown-import",
        ErrorClass::MissingExport => "missing-export",
        ErrorClass::FuelExhausted => "fuel-exhausted",
        ErrorClass::MemoryLimit => "memory-limit",
        ErrorClass::StackOverflow => "stack-overflow",
        ErrorClass::Trap => "trap",
        ErrorClass::Abi => "abi",
        ErrorClass::Poisoned => "poisoned",
        ErrorClass::Engine => "engine",
    }
}

fn error_json(e: &Error) -> Json {
    json!({ "class": class_name(e.class()), "message": e.to_string() })
}

/// What one run produced: a JSON value per line, in order.
#[derive(Debug, Default)]
pub struct Transcript {
    /// The lines.
    pub lines: Vec<Json>,
    /// Fatal errors, in order (the instance was restarted after each).
    pub errors: Vec<Error>,
}

impl Transcript {
    /// The transcript as JSON-lines text.
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.to_string());
            s.push('\n');
        }
        s
    }

    /// The handler results as the device firmware logs them, one line per export
    /// call (host calls are left out): `result <call>[ #<seq>]: ok[ <name>=<value>[
    /// <unit>], ...]`, `...: component error: <message>` or `...: runtime error:
    /// <error>`. Milli values print as decimals with three places, flags as
    /// true/false, text quoted. The end-to-end test and the demo compare a QEMU
    /// device's lines with these from the server's engine.
    pub fn result_lines(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| {
                let call = l.get("call")?.as_str()?;
                let event = l.get("seq").and_then(serde_json::Value::as_u64);
                let outputs: Vec<Output>;
                let message;
                let outcome = if let Some(ok) = l.get("ok") {
                    outputs = serde_json::from_value(ok.clone()).unwrap_or_default();
                    Outcome::Ok(&outputs)
                } else if let Some(e) = l.get("err") {
                    Outcome::ComponentError(e.as_str().unwrap_or_default())
                } else {
                    message = l
                        .get("error")
                        .and_then(|e| e["message"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    Outcome::RuntimeError(&message)
                };
                Some(
                    ResultLine {
                        call,
                        event,
                        outcome,
                    }
                    .to_string(),
                )
            })
            .collect()
    }
}

/// Loads `wasm` on `engine` under `grant` and runs `init(config)` then `on-event` for
/// each event. A fatal error is recorded and the component is instantiated again (its
/// kv survives in `sim`), as a supervisor on a device would.
pub fn run_stream<E: Engine>(
    engine: &E,
    wasm: &[u8],
    grant: &Granted,
    config: &[(String, String)],
    events: &[Event],
    sim: &SharedSim,
) -> Result<Transcript, Error> {
    let component = engine.load(wasm, grant)?;
    let mut t = Transcript::default();
    let mut instance = None;
    let start = |t: &mut Transcript| -> Result<E::Instance, Error> {
        let mut inst = engine.instantiate(&component, Box::new(sim.clone()))?;
        let r = inst.init(config);
        record(
            t,
            &mut inst,
            json!({ "call": "init" }),
            r.map(|r| r.map(|()| Json::Null)),
        );
        Ok(inst)
    };
    for (seq, event) in events.iter().enumerate() {
        let inst = match &mut instance {
            Some(i) => i,
            None => instance.insert(start(&mut t)?),
        };
        sim.with(|s| s.observe(event));
        let r = inst.on_event(event);
        let r = r.map(|r| r.map(|outs| serde_json::to_value(outs).unwrap_or(Json::Null)));
        let fatal = matches!(&r, Err(e) if e.is_fatal());
        record(&mut t, inst, json!({ "call": "on-event", "seq": seq }), r);
        if fatal {
            instance = None;
        }
    }
    let inst = match &mut instance {
        Some(i) => i,
        None => instance.insert(start(&mut t)?),
    };
    let r = inst.health_check();
    record(
        &mut t,
        inst,
        json!({ "call": "health-check" }),
        r.map(|r| r.map(|()| Json::Null)),
    );
    Ok(t)
}

fn record<I: Instance>(
    t: &mut Transcript,
    inst: &mut I,
    mut line: Json,
    result: Result<Result<Json, String>, Error>,
) {
    let seq = line.get("seq").cloned();
    for call in inst.host().take_trace() {
        let mut h = serde_json::to_value(call).unwrap_or(Json::Null);
        if let (Some(seq), Some(obj)) = (&seq, h.as_object_mut()) {
            obj.insert("seq".into(), seq.clone());
        }
        t.lines.push(h);
    }
    let obj = line.as_object_mut().expect("line is an object");
    match result {
        Ok(Ok(v)) => {
            obj.insert("ok".into(), v);
        }
        Ok(Err(e)) => {
            obj.insert("err".into(), Json::String(e));
        }
        Err(e) => {
            obj.insert("error".into(), error_json(&e));
            t.errors.push(e);
        }
    }
    t.lines.push(line);
}

/// Both engines with the same limits, made once and reused: Wasmtime caches compiled
/// components per engine.
pub struct Engines {
    /// The wasmi engine.
    pub wasmi: tern_wasmi::WasmiEngine,
    /// The Wasmtime engine.
    pub wasmtime: tern_wasmtime::WasmtimeEngine,
}

impl Engines {
    /// Both engines under `limits`.
    pub fn new(limits: Limits) -> Result<Engines, Error> {
        Ok(Engines {
            wasmi: tern_wasmi::WasmiEngine::new(limits),
            wasmtime: tern_wasmtime::WasmtimeEngine::new(limits)?,
        })
    }

    /// Runs on the engine named by `kind` (see [`run_stream`]).
    pub fn run(
        &self,
        kind: EngineKind,
        wasm: &[u8],
        grant: &Granted,
        config: &[(String, String)],
        events: &[Event],
        sim: &SharedSim,
    ) -> Result<Transcript, Error> {
        match kind {
            EngineKind::Wasmi => run_stream(&self.wasmi, wasm, grant, config, events, sim),
            EngineKind::Wasmtime => run_stream(&self.wasmtime, wasm, grant, config, events, sim),
        }
    }
}
