//! The `tern` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tern::events::EventFile;
use tern::run::{EngineKind, Engines, SharedSim};
use tern_core::{Grant, Limits};

/// Tern: run WebAssembly components on edge devices, gateways and servers.
#[derive(Parser)]
#[command(name = "tern", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a component over an event stream and print, one JSON line each, its
    /// results and the host calls it made.
    ///
    /// Sensors and the clock are simulated from the event file, gpio pins and kv
    /// live in memory (kv in a file with --kv), published messages appear as
    /// `publish.publish` lines.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The component: a core wasm module built by `cargo xtask components`.
    component: PathBuf,
    /// Which engine runs it.
    #[arg(long, value_enum, default_value = "wasmtime")]
    engine: EngineKind,
    /// Event stream (JSON lines; see components/*/events.jsonl).
    #[arg(long)]
    events: PathBuf,
    /// Grant an interface, optionally scoped: log, clock, sensors[=id,..],
    /// gpio[=pin,..], kv[=quota-bytes], publish[=topic-prefix]. Repeatable.
    /// Without any --grant the development grant (everything, unscoped) is used.
    #[arg(long = "grant", value_name = "ITEM")]
    grants: Vec<String>,
    /// Keep kv in this JSON file (created if missing, written back at the end).
    #[arg(long)]
    kv: Option<PathBuf>,
    /// Fuel (instructions) per export call.
    #[arg(long, default_value_t = Limits::HOST.fuel_per_call)]
    fuel: u64,
    /// Linear-memory limit in bytes.
    #[arg(long, default_value_t = Limits::HOST.memory_bytes)]
    memory: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> Result<ExitCode, String> {
    let wasm = std::fs::read(&args.component)
        .map_err(|e| format!("cannot read {}: {e}", args.component.display()))?;
    let text = std::fs::read_to_string(&args.events)
        .map_err(|e| format!("cannot read {}: {e}", args.events.display()))?;
    let file = EventFile::parse(&text).map_err(|e| format!("{}: {e}", args.events.display()))?;
    let grant = if args.grants.is_empty() {
        eprintln!(
            "tern: no --grant given: using the development grant (every interface, unscoped)"
        );
        Grant::development()
    } else {
        Grant::parse(args.grants.iter().map(String::as_str)).map_err(|e| e.to_string())?
    };
    let limits = Limits {
        fuel_per_call: args.fuel,
        memory_bytes: args.memory,
        ..Limits::HOST
    };
    let sim = SharedSim::default();
    if let Some(path) = args.kv.as_ref().filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let map: std::collections::BTreeMap<String, tern_core::Bytes> = serde_json::from_str(&text)
            .map_err(|e| {
                format!(
                    "{}: not a kv file ({{\"key\": \"<hex>\"}}): {e}",
                    path.display()
                )
            })?;
        sim.0.lock().map_err(|_| "kv lock poisoned")?.kv =
            map.into_iter().map(|(k, v)| (k, v.0)).collect();
    }
    let engines = Engines::new(limits).map_err(|e| e.to_string())?;
    let transcript = engines
        .run(args.engine, &wasm, &grant, &file.config, &file.events, &sim)
        .map_err(|e| format!("{}: {e}", args.component.display()))?;
    print!("{}", transcript.to_jsonl());
    if let Some(path) = &args.kv {
        let kv: std::collections::BTreeMap<String, tern_core::Bytes> = sim
            .0
            .lock()
            .map_err(|_| "kv lock poisoned")?
            .kv
            .iter()
            .map(|(k, v)| (k.clone(), tern_core::Bytes(v.clone())))
            .collect();
        let text = serde_json::to_string_pretty(&kv).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for e in &transcript.errors {
        eprintln!("tern: the component failed and was restarted: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
