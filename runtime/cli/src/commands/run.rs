//! `tern run`: one component over an event stream, on either engine, printing its
//! transcript (or only its result lines).

use std::path::PathBuf;
use std::process::ExitCode;

use tern_core::bundle::EngineKind;
use tern_host::events::EventFile;
use tern_host::run::{Engines, GrantedBy, NotRunnable, SharedSim};

use super::{Outcome, engine_arg, read};

/// The arguments of `tern run`.
#[derive(clap::Args)]
pub struct Args {
    /// The component: a core wasm module built by `cargo xtask components`, or a
    /// signed bundle (then --board decides whether it is accepted and what it gets).
    component: PathBuf,
    /// Run as this board: its limits, and its policy for bundles. A bare wasm gets
    /// everything the board offers.
    #[arg(long)]
    board: Option<String>,
    /// Which engine runs it.
    #[arg(long, value_parser = engine_arg(), default_value = "wasmtime")]
    engine: EngineKind,
    /// Event stream (JSON lines; see components/*/events.jsonl).
    #[arg(long)]
    events: PathBuf,
    /// Grant a capability, optionally scoped: log, clock, sensors[=id,..],
    /// gpio[=pin,..], kv[=quota-bytes], publish[=topic-prefix]. Repeatable. `log`
    /// and `clock` also allow WASI's wasi:logging/logging and
    /// wasi:clocks/monotonic-clock. Without any --grant the development grant
    /// (everything, unscoped) is used.
    #[arg(long = "grant", value_name = "ITEM")]
    grants: Vec<String>,
    /// Keep kv in this JSON file (created if missing, written back at the end).
    #[arg(long)]
    kv: Option<PathBuf>,
    /// Print only the handler results, one line each, as the device firmware logs
    /// them (`result on-event #3: ok smoothed=21.530 degC`), instead of JSON lines.
    #[arg(long)]
    results: bool,
    /// Fuel (instructions) per export call [default: the board's, else 10000000].
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear-memory limit in bytes [default: the board's, else 4194304].
    #[arg(long)]
    memory: Option<u32>,
}

/// Runs `tern run`.
pub fn run(args: Args) -> Outcome {
    let bytes = read(&args.component)?;
    let board = args
        .board
        .as_deref()
        .map(tern_host::boards::named)
        .transpose()
        .map_err(|e| e.to_string())?;
    let file = EventFile::read(&args.events)?;
    let prepared = tern_host::run::prepare(bytes, board, &args.grants).map_err(|e| match e {
        NotRunnable::Refused(r) => format!("{}: {r}", args.component.display()),
        e => e.to_string(),
    })?;
    match &prepared.by {
        GrantedBy::Bundle { header, board } => eprintln!(
            "tern: bundle {} {} accepted by board {}",
            header.manifest.name,
            header.manifest.version,
            board.name()
        ),
        GrantedBy::Development => eprintln!(
            "tern: no --grant or --board given: using the development grant (every interface, unscoped)"
        ),
        GrantedBy::Items | GrantedBy::BoardOffer => {}
    }
    let limits = tern_host::run::limits(board, args.fuel, args.memory);
    let sim = SharedSim::default();
    if let Some(path) = &args.kv {
        sim.load_kv(path)?;
    }
    let engines = Engines::new(limits).map_err(|e| e.to_string())?;
    let transcript = engines
        .run(
            args.engine,
            &prepared.wasm,
            &prepared.grant,
            &file.config,
            &file.events,
            &sim,
        )
        .map_err(|e| format!("{}: {e}", args.component.display()))?;
    if args.results {
        for line in transcript.result_lines() {
            super::outln!("{line}")?;
        }
    } else {
        super::out(&transcript.to_jsonl())?;
    }
    if let Some(path) = &args.kv {
        sim.save_kv(path)?;
    }
    for e in transcript.errors() {
        eprintln!("tern: the component failed and was restarted: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
