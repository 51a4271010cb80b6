//! The run loop: one component over one event stream, recorded as a typed
//! [`Transcript`] of handler results and host calls. Both engines go through the same
//! loop, so their transcripts can be compared entry by entry and, as JSON lines, byte
//! for byte.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use tern_core::board::BoardTable;
use tern_core::bundle::Header;
use tern_core::host::{HostCall, SimPlatform};
use tern_core::results::{Outcome, ResultLine};
use tern_core::{
    Engine, Error, ErrorClass, Event, Grant, Granted, Instance, Level, Limits, Output, Platform,
    Sample,
};

use crate::sign::{self, Refusal};

/// Which engine runs the component: the one `EngineKind`, tern-core's, which boards
/// and bundles name too.
pub use tern_core::bundle::EngineKind;

/// A [`SimPlatform`] shared between the run loop (which feeds it events) and the
/// instance's host (which answers the component's calls).
#[derive(Clone, Default)]
pub struct SharedSim(pub Arc<Mutex<SimPlatform>>);

impl SharedSim {
    fn with<R>(&self, f: impl FnOnce(&mut SimPlatform) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Loads kv from a kv file (`{"key": "<hex value>", ...}`, as [`SharedSim::save_kv`]
    /// writes it) if `path` exists; a missing file is an empty store.
    pub fn load_kv(&self, path: &Path) -> Result<(), String> {
        if !path.exists() {
            return Ok(());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let map: BTreeMap<String, tern_core::Bytes> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a kv file ({{\"key\": \"<hex>\"}}): {e}",
                path.display()
            )
        })?;
        self.0.lock().map_err(|_| "kv lock poisoned")?.kv =
            map.into_iter().map(|(k, v)| (k, v.0)).collect();
        Ok(())
    }

    /// Writes kv to a kv file (pretty JSON, keys sorted, values in hex).
    pub fn save_kv(&self, path: &Path) -> Result<(), String> {
        let kv: BTreeMap<String, tern_core::Bytes> = self
            .0
            .lock()
            .map_err(|_| "kv lock poisoned")?
            .kv
            .iter()
            .map(|(k, v)| (k.clone(), tern_core::Bytes(v.clone())))
            .collect();
        let text = serde_json::to_string_pretty(&kv).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
    fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.with(|s| s.kv_delete(key))
    }
    fn kv_keys(&mut self, skip: usize, take: usize) -> Vec<String> {
        self.with(|s| s.kv_keys(skip, take))
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
        ErrorClass::TypeMismatch => "type-mismatch",
        ErrorClass::FuelExhausted => "fuel-exhausted",
        ErrorClass::MemoryLimit => "memory-limit",
        ErrorClass::StackOverflow => "stack-overflow",
        ErrorClass::Trap => "trap",
        ErrorClass::Abi => "abi",
        ErrorClass::Poisoned => "poisoned",
        ErrorClass::Engine => "engine",
    }
}

/// One of the world's exports, as the run loop calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `init(config)`.
    Init,
    /// `on-event(event)` for the event at index `seq` of the stream.
    OnEvent {
        /// The event's index in its stream, from 0.
        seq: u64,
    },
    /// `health-check()`.
    HealthCheck,
}

impl Call {
    /// The export's WIT name: `init`, `on-event`, `health-check`.
    pub const fn name(self) -> &'static str {
        match self {
            Call::Init => "init",
            Call::OnEvent { .. } => "on-event",
            Call::HealthCheck => "health-check",
        }
    }

    /// For `on-event`, the event's index.
    pub const fn seq(self) -> Option<u64> {
        match self {
            Call::OnEvent { seq } => Some(seq),
            Call::Init | Call::HealthCheck => None,
        }
    }
}

/// How an export call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The component answered `ok`: `on-event`'s outputs (`init` and `health-check`
    /// return none).
    Ok(Vec<Output>),
    /// The component answered with an error of its own (`err`).
    ComponentError(String),
    /// The runtime stopped the call (fuel, memory, stack, trap, ABI, ...); the
    /// instance was then replaced if the error is fatal.
    RuntimeError(Error),
}

/// One entry of a [`Transcript`], in the order things happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A host call the component made during an export call.
    Host {
        /// The host call, its arguments and what the component got.
        call: HostCall,
        /// The export call it was made from.
        during: Call,
    },
    /// An export call's result (after the host calls it made).
    Result {
        /// The export call.
        call: Call,
        /// How it ended.
        outcome: CallOutcome,
    },
}

/// The JSON of a runtime error: `{"class": "<kebab-case class>", "message": "..."}`.
struct ErrorJson<'a>(&'a Error);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("class", class_name(self.0.class()))?;
        map.serialize_entry("message", &self.0.to_string())?;
        map.end()
    }
}

/// A host call's line: the call's own fields and, during `on-event`, its `seq`.
#[derive(Serialize)]
struct HostLine<'a> {
    #[serde(flatten)]
    call: &'a HostCall,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

impl Serialize for Entry {
    /// The entry's JSON line (see [`Transcript::to_jsonl`]): a host call as
    /// [`HostCall`] serializes (`"host"` names it) plus `"seq"` during `on-event`; a
    /// result as `"call"`, `"seq"` for `on-event`, and one of `"ok"` (the outputs, or
    /// `null` for `init` and `health-check`), `"err"` (the component's message) or
    /// `"error"` (`{"class", "message"}`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Host { call, during } => HostLine {
                call,
                seq: during.seq(),
            }
            .serialize(s),
            Entry::Result { call, outcome } => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("call", call.name())?;
                if let Some(seq) = call.seq() {
                    map.serialize_entry("seq", &seq)?;
                }
                match outcome {
                    CallOutcome::Ok(outputs) => match call {
                        Call::OnEvent { .. } => map.serialize_entry("ok", outputs)?,
                        Call::Init | Call::HealthCheck => map.serialize_entry("ok", &())?,
                    },
                    CallOutcome::ComponentError(message) => map.serialize_entry("err", message)?,
                    CallOutcome::RuntimeError(e) => map.serialize_entry("error", &ErrorJson(e))?,
                }
                map.end()
            }
        }
    }
}

/// What one run produced: every handler result and host call, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The entries, in the order they happened: each export call's host calls, then
    /// its result.
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// The transcript as JSON lines, one per entry ([`Entry`]'s serialization), keys
    /// in sorted order at every level: `{"call":"on-event","ok":[...],"seq":3}`,
    /// `{"host":"kv.set",...,"seq":3}`. Byte for byte the same for the same run on
    /// either engine.
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for entry in &self.entries {
            // Through `serde_json::Value`, whose objects keep their keys sorted: the
            // order does not depend on the order of fields in Rust.
            let line = serde_json::to_value(entry).unwrap_or(serde_json::Value::Null);
            s.push_str(&line.to_string());
            s.push('\n');
        }
        s
    }

    /// Every export call's result, in order (host calls left out).
    pub fn results(&self) -> impl Iterator<Item = (Call, &CallOutcome)> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Result { call, outcome } => Some((*call, outcome)),
            Entry::Host { .. } => None,
        })
    }

    /// Every host call, with the export call it was made from.
    pub fn host_calls(&self) -> impl Iterator<Item = (&HostCall, Call)> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Host { call, during } => Some((call, *during)),
            Entry::Result { .. } => None,
        })
    }

    /// The outputs of each `on-event` that answered `ok`, in event order.
    pub fn event_outputs(&self) -> impl Iterator<Item = &[Output]> {
        self.results()
            .filter_map(|(call, outcome)| match (call, outcome) {
                (Call::OnEvent { .. }, CallOutcome::Ok(outputs)) => Some(outputs.as_slice()),
                _ => None,
            })
    }

    /// Runtime errors, in order (the instance was restarted after each fatal one).
    pub fn errors(&self) -> impl Iterator<Item = &Error> {
        self.results().filter_map(|(_, outcome)| match outcome {
            CallOutcome::RuntimeError(e) => Some(e),
            _ => None,
        })
    }

    /// The handler results as the device firmware logs them ([`ResultLine`]), one
    /// line per export call (host calls are left out): `result <call>[ #<seq>]: ok[
    /// <name>=<value>[ <unit>], ...]`, `...: component error: <message>` or `...:
    /// runtime error: <error>`. Milli values print as decimals with three places, flags
    /// as true/false, text quoted. The end-to-end test and the demo compare a QEMU
    /// device's lines with these from the server's engine.
    pub fn result_lines(&self) -> Vec<String> {
        self.results()
            .map(|(call, outcome)| {
                ResultLine {
                    call: call.name(),
                    event: call.seq(),
                    outcome: match outcome {
                        CallOutcome::Ok(outputs) => Outcome::Ok(outputs),
                        CallOutcome::ComponentError(message) => Outcome::ComponentError(message),
                        CallOutcome::RuntimeError(e) => Outcome::RuntimeError(e),
                    },
                }
                .to_string()
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
        record(t, &mut inst, Call::Init, r.map(|r| r.map(|()| Vec::new())));
        Ok(inst)
    };
    for (seq, event) in (0u64..).zip(events) {
        let inst = match &mut instance {
            Some(i) => i,
            None => instance.insert(start(&mut t)?),
        };
        sim.with(|s| s.observe(event));
        let r = inst.on_event(event);
        let fatal = matches!(&r, Err(e) if e.is_fatal());
        record(&mut t, inst, Call::OnEvent { seq }, r);
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
        Call::HealthCheck,
        r.map(|r| r.map(|()| Vec::new())),
    );
    Ok(t)
}

/// Appends the host calls `inst` made during `call`, then the call's result.
fn record<I: Instance>(
    t: &mut Transcript,
    inst: &mut I,
    call: Call,
    result: Result<Result<Vec<Output>, String>, Error>,
) {
    t.entries.extend(
        inst.host()
            .take_trace()
            .into_iter()
            .map(|host| Entry::Host {
                call: host,
                during: call,
            }),
    );
    let outcome = match result {
        Ok(Ok(outputs)) => CallOutcome::Ok(outputs),
        Ok(Err(message)) => CallOutcome::ComponentError(message),
        Err(e) => CallOutcome::RuntimeError(e),
    };
    t.entries.push(Entry::Result { call, outcome });
}

/// How a component about to run got its grant ([`prepare`]).
#[derive(Clone, Debug)]
pub enum GrantedBy {
    /// A signed bundle the board's install policy accepted: the grant is its manifest's.
    Bundle {
        /// The bundle's header.
        header: Box<Header>,
        /// The board whose policy and trust keys decided.
        board: &'static BoardTable,
    },
    /// Unsigned code granted by `--grant` items, on a developer's host.
    Items,
    /// Unsigned code on a board: everything the board offers.
    BoardOffer,
    /// Unsigned code with neither items nor a board: the development grant (every
    /// interface, unscoped).
    Development,
}

/// A component ready to run: its wasm, its grant and where that came from.
#[derive(Debug)]
pub struct Prepared {
    /// The payload: a core module, a component or a device image (a bundle's
    /// verified payload).
    pub wasm: Vec<u8>,
    /// What it is granted.
    pub grant: Granted,
    /// Why.
    pub by: GrantedBy,
}

/// Why [`prepare`] will not run a component.
#[derive(Debug)]
pub enum NotRunnable {
    /// A signed bundle, but no board to decide on it.
    BundleWithoutBoard,
    /// A signed bundle and `--grant` items: a bundle's grant is its signed manifest.
    GrantForBundle,
    /// A `--grant` item that does not parse.
    Grant(String),
    /// The board refused the bundle.
    Refused(Refusal),
}

impl fmt::Display for NotRunnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRunnable::BundleWithoutBoard => f.write_str(
                "this is a signed bundle: pass --board to say whose policy and trust keys decide",
            ),
            NotRunnable::GrantForBundle => f.write_str(
                "--grant does not apply to a bundle: its grant is its signed manifest, checked against the board",
            ),
            NotRunnable::Grant(e) => f.write_str(e),
            NotRunnable::Refused(r) => write!(f, "{r}"),
        }
    }
}

impl std::error::Error for NotRunnable {}

/// Decides what `bytes` (a core wasm module, a component or a signed bundle) runs
/// as, and with which grant: a bundle only through `board`'s install policy
/// ([`sign::verify_stream`]), with exactly its manifest's grant; unsigned code with
/// the `items` (`--grant` syntax), else everything `board` offers, else the
/// development grant.
pub fn prepare(
    bytes: Vec<u8>,
    board: Option<&'static BoardTable>,
    items: &[String],
) -> Result<Prepared, NotRunnable> {
    if sign::is_bundle(&bytes) {
        let board = board.ok_or(NotRunnable::BundleWithoutBoard)?;
        if !items.is_empty() {
            return Err(NotRunnable::GrantForBundle);
        }
        let (header, grant, wasm) =
            sign::verify_stream(&bytes[..], board, None).map_err(NotRunnable::Refused)?;
        return Ok(Prepared {
            wasm,
            grant,
            by: GrantedBy::Bundle {
                header: Box::new(header),
                board,
            },
        });
    }
    let (grant, by) = if !items.is_empty() {
        // Unsigned code on a developer's host: granted by name, not by a policy.
        let grant = Grant::parse(items.iter().map(String::as_str))
            .map_err(|e| NotRunnable::Grant(e.to_string()))?;
        (grant, GrantedBy::Items)
    } else if let Some(board) = board {
        (board.offers().to_grant(), GrantedBy::BoardOffer)
    } else {
        (Grant::development(), GrantedBy::Development)
    };
    Ok(Prepared {
        wasm: bytes,
        grant: Granted::for_development(grant),
        by,
    })
}

/// The limits a run gets: the board's (else [`Limits::HOST`]) with `fuel` per call and
/// `memory` bytes overriding theirs when given.
pub fn limits(board: Option<&BoardTable>, fuel: Option<u64>, memory: Option<u32>) -> Limits {
    let base = board.map_or(Limits::HOST, |b| b.limits());
    Limits {
        fuel_per_call: fuel.unwrap_or(base.fuel_per_call),
        memory_bytes: memory.unwrap_or(base.memory_bytes),
        ..base
    }
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

    /// Runs on the engine named by `kind` (see [`run_stream`]). A component given
    /// for wasmi runs as the device image `tern sign` would make of it
    /// ([`for_engine`]).
    pub fn run(
        &self,
        kind: EngineKind,
        wasm: &[u8],
        grant: &Granted,
        config: &[(String, String)],
        events: &[Event],
        sim: &SharedSim,
    ) -> Result<Transcript, Error> {
        let wasm = for_engine(wasm, kind)?;
        match kind {
            EngineKind::Wasmi => run_stream(&self.wasmi, &wasm, grant, config, events, sim),
            EngineKind::Wasmtime => run_stream(&self.wasmtime, &wasm, grant, config, events, sim),
        }
    }
}

/// What `engine` runs for `wasm`: a component, on wasmi, as its device image
/// ([`sign::device_image`], what `tern sign` signs for a wasmi board; a component
/// wasmi cannot run is [`Error::InvalidModule`] with the reason); anything else as it
/// is (the engine then checks it).
pub fn for_engine(wasm: &[u8], engine: EngineKind) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    if engine == EngineKind::Wasmi && sign::PayloadKind::of(wasm) == sign::PayloadKind::Component {
        return sign::device_image(wasm)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| Error::InvalidModule(format!("the component cannot run on wasmi: {e}")));
    }
    Ok(std::borrow::Cow::Borrowed(wasm))
}

#[cfg(test)]
mod tests {
    use tern_core::Value;
    use tern_core::wit::Bytes;

    use super::*;

    fn output(name: &str, value: Value, unit: Option<&str>) -> Output {
        Output {
            name: name.into(),
            value,
            unit: unit.map(Into::into),
        }
    }

    /// Every kind of entry, as one run of a component could produce it.
    fn transcript() -> Transcript {
        let event = Call::OnEvent { seq: 3 };
        Transcript {
            entries: vec![
                Entry::Host {
                    call: HostCall::Log {
                        level: Level::Info,
                        message: "hello".into(),
                    },
                    during: Call::Init,
                },
                Entry::Result {
                    call: Call::Init,
                    outcome: CallOutcome::Ok(Vec::new()),
                },
                Entry::Host {
                    call: HostCall::KvSet {
                        key: "ema".into(),
                        value: Bytes(vec![0xab, 0x01]),
                        result: Ok(()),
                    },
                    during: event,
                },
                Entry::Result {
                    call: event,
                    outcome: CallOutcome::Ok(vec![
                        output("smoothed", Value::Milli(-500), Some("degC")),
                        output("alarm", Value::Flag(true), None),
                    ]),
                },
                Entry::Result {
                    call: Call::OnEvent { seq: 4 },
                    outcome: CallOutcome::ComponentError("no sensor".into()),
                },
                Entry::Result {
                    call: Call::OnEvent { seq: 5 },
                    outcome: CallOutcome::RuntimeError(Error::FuelExhausted { budget: 7 }),
                },
                Entry::Result {
                    call: Call::HealthCheck,
                    outcome: CallOutcome::Ok(Vec::new()),
                },
            ],
        }
    }

    /// The JSON lines are the documented format (README.md): keys sorted at every
    /// level, `seq` on `on-event` results and their host calls, `ok` `null` for the
    /// exports that return nothing.
    #[test]
    fn jsonl_is_the_documented_format() {
        let fuel = Error::FuelExhausted { budget: 7 }.to_string();
        let want = [
            r#"{"host":"log.log","level":"info","message":"hello"}"#.to_string(),
            r#"{"call":"init","ok":null}"#.to_string(),
            r#"{"host":"kv.set","key":"ema","result":{"Ok":null},"seq":3,"value":"ab01"}"#
                .to_string(),
            r#"{"call":"on-event","ok":[{"name":"smoothed","unit":"degC","value":{"milli":-500}},{"name":"alarm","value":{"flag":true}}],"seq":3}"#
                .to_string(),
            r#"{"call":"on-event","err":"no sensor","seq":4}"#.to_string(),
            format!(
                r#"{{"call":"on-event","error":{{"class":"fuel-exhausted","message":"{fuel}"}},"seq":5}}"#
            ),
            r#"{"call":"health-check","ok":null}"#.to_string(),
        ];
        let got = transcript().to_jsonl();
        assert_eq!(got.lines().collect::<Vec<_>>(), want);
        assert!(got.ends_with('\n'));
    }

    #[test]
    fn result_lines_come_from_the_typed_entries() {
        let t = transcript();
        let fuel = Error::FuelExhausted { budget: 7 };
        assert_eq!(
            t.result_lines(),
            [
                "result init: ok".to_string(),
                "result on-event #3: ok smoothed=-0.500 degC, alarm=true".to_string(),
                "result on-event #4: component error: no sensor".to_string(),
                format!("result on-event #5: runtime error: {fuel}"),
                "result health-check: ok".to_string(),
            ]
        );
        assert_eq!(t.errors().collect::<Vec<_>>(), [&fuel]);
        assert_eq!(t.event_outputs().count(), 1);
        assert_eq!(
            t.host_calls().map(|(_, during)| during).collect::<Vec<_>>(),
            [Call::Init, Call::OnEvent { seq: 3 }]
        );
    }

    #[test]
    fn kv_files_round_trip_and_a_missing_one_is_empty() {
        let path = std::env::temp_dir().join(format!("tern-kv-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sim = SharedSim::default();
        sim.load_kv(&path).unwrap();
        assert_eq!(sim.with(|s| s.kv_used_bytes()), 0);
        sim.with(|s| s.kv_set("ema", &[0xab, 0x01])).unwrap();
        sim.save_kv(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"ema\": \"ab01\"\n}\n"
        );
        let again = SharedSim::default();
        again.load_kv(&path).unwrap();
        assert_eq!(again.with(|s| s.kv_get("ema")), Some(vec![0xab, 0x01]));
        std::fs::write(&path, "[]").unwrap();
        assert!(again.load_kv(&path).unwrap_err().contains("not a kv file"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn limits_are_the_boards_unless_overridden() {
        assert_eq!(limits(None, None, None), Limits::HOST);
        let board = &crate::boards::QEMU_MPS2_AN386;
        assert_eq!(limits(Some(board), None, None), board.limits());
        let l = limits(Some(board), Some(5), Some(65536));
        assert_eq!((l.fuel_per_call, l.memory_bytes), (5, 65536));
        assert_eq!(l.call_depth, board.limits().call_depth);
    }

    #[test]
    fn unsigned_code_is_granted_by_items_then_board_then_development() {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let p = prepare(wasm.clone(), None, &["log".to_string()]).unwrap();
        assert!(matches!(p.by, GrantedBy::Items));
        let board = &crate::boards::LINUX_GATEWAY;
        let p = prepare(wasm.clone(), Some(board), &[]).unwrap();
        assert!(matches!(p.by, GrantedBy::BoardOffer));
        let p = prepare(wasm.clone(), None, &[]).unwrap();
        assert!(matches!(p.by, GrantedBy::Development));
        assert_eq!(p.wasm, wasm);
        assert!(matches!(
            prepare(wasm, None, &["wind".to_string()]),
            Err(NotRunnable::Grant(_))
        ));
    }
}
