//! The `tern` command.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tern::events::EventFile;
use tern::run::{EngineKind, Engines, SharedSim};
use tern_core::board::{BoardTable, TrustKey};
use tern_core::bundle::{self, Target, Version, key_id};
use tern_core::wit::hex_bytes;
use tern_core::{Grant, Granted, Limits};

/// Tern: run WebAssembly components on edge devices, gateways and servers; sign,
/// verify and inspect their bundles; serve a fleet and update it over the air.
#[derive(Parser)]
#[command(name = "tern", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a component (core wasm or signed bundle) over an event stream, printing its
    /// results and host calls.
    ///
    /// Prints one JSON line per handler result and per host call (with --results,
    /// only the results, as the device firmware logs them). Sensors and the clock are
    /// simulated from the event file, gpio pins and kv live in memory (kv in a file
    /// with --kv), published messages appear as `publish.publish` lines.
    Run(RunArgs),
    /// Generate an Ed25519 signing key pair for `tern sign --key`.
    ///
    /// Writes DIR/NAME.key (mode 0600, never printed) and DIR/NAME.pub. Put the .pub
    /// hex into a board.toml's [trust] keys.
    Keygen(KeygenArgs),
    /// Wrap a component in a signed bundle, refusing one a --board would not install.
    ///
    /// Requested capabilities come from --grant, else from component.toml's
    /// [capabilities] (--component-toml, else `components/<name>/component.toml` or
    /// `components/fixtures/<name>/component.toml` under the current directory), else
    /// they are the interfaces the wasm imports, unscoped (said on stderr). Each
    /// --board's install policy is then checked as `tern verify` does; if one would
    /// refuse the bundle, tern sign says why and how to fix it and writes nothing
    /// (unless --sign-anyway).
    Sign(SignArgs),
    /// Check whether a board would accept a bundle: exit 0, or 1 with the reason.
    ///
    /// Runs the board's install policy with its compiled-in trust keys and
    /// capabilities, then checks the payload against the signed hash.
    Verify(VerifyArgs),
    /// Print a bundle's manifest and signatures, and which boards' keys verify them.
    Inspect(InspectArgs),
    /// List the boards compiled into this tern, with what they trust and offer.
    Boards,
    /// Encode an event file as the sensor feed a QEMU device reads.
    ///
    /// The device's simulated sensors read it from `tern-feed.bin` in QEMU's working
    /// directory; format in boards/qemu-mps2-an386/firmware/README.md.
    Feed(FeedArgs),
    /// Run the fleet server: bundles, assignments, downloads and device status.
    ///
    /// Stores bundles, assigns them, serves downloads and collects device status
    /// (HTTP API in docs/protocol.md). Stops cleanly on Ctrl-C.
    Serve(ServeArgs),
    /// Run a gateway agent: take updates from the fleet server and run the component.
    ///
    /// Checks in, downloads, verifies, stages, trials, confirms or rolls back,
    /// reports, and runs the active component on the board's engine.
    Gateway(GatewayArgs),
    /// Upload a signed bundle to the fleet server (admin).
    Publish(PublishArgs),
    /// Assign a published bundle to a device (`device:ID`) or a group (`group:NAME`) (admin).
    Assign(AssignArgs),
    /// Register a device and its token, optionally in a group (admin).
    Provision(ProvisionArgs),
    /// Show what every device runs and its recent status history (admin).
    Devices(AdminArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory for the server's state (database and bundles); created if missing.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// File holding the admin token (or set TERN_ADMIN_TOKEN); at least 16 characters.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// How long devices are told to wait between check-ins, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    poll_ms: u32,
    /// Register a device at start: ID=TOKEN or ID=TOKEN@GROUP. Repeatable.
    #[arg(long = "device", value_name = "ID=TOKEN[@GROUP]")]
    devices: Vec<String>,
}

#[derive(clap::Args)]
struct GatewayArgs {
    /// The board this gateway is (its compiled-in table decides everything).
    #[arg(long, default_value = "linux-gateway")]
    board: String,
    /// Fleet server, http://HOST:PORT.
    #[arg(long)]
    server: String,
    /// State directory: file-backed flash slots and partial downloads.
    #[arg(long)]
    data: PathBuf,
    /// This device's id.
    #[arg(long)]
    device: String,
    /// File holding this device's token (or set TERN_DEVICE_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Events to feed the component (trial and running).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Longest wait between check-ins, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    poll_ms: u64,
    /// Exit after this many check-ins.
    #[arg(long)]
    max_polls: Option<u32>,
    /// Events a trial must handle without a runtime error before it is confirmed.
    #[arg(long, default_value_t = 3)]
    trial_events: u32,
}

#[derive(clap::Args)]
struct AdminArgs {
    /// Fleet server, http://HOST:PORT.
    #[arg(long)]
    server: String,
    /// File holding the admin token (or set TERN_ADMIN_TOKEN).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PublishArgs {
    /// The signed bundle.
    bundle: PathBuf,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct AssignArgs {
    /// `device:ID` or `group:NAME`.
    target: String,
    /// Bundle id (as `tern publish` printed it: the bundle's SHA-256 in hex), or a
    /// bundle file.
    bundle: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct ProvisionArgs {
    /// Device id.
    device: String,
    /// File holding the device's token (or set TERN_DEVICE_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Group to put the device in.
    #[arg(long)]
    group: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct KeygenArgs {
    /// Directory for the key files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Base name of the files.
    #[arg(long, default_value = "tern-signing")]
    name: String,
}

#[derive(clap::Args)]
struct SignArgs {
    /// The component's core wasm (target/components/<name>.wasm).
    component: PathBuf,
    /// Private key file; repeat for several signatures.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// Component version, major.minor.patch.
    #[arg(long)]
    version: String,
    /// Security counter: boards install only a counter above the installed one.
    #[arg(long)]
    counter: u64,
    /// A board the bundle is for; repeatable. Its install policy must accept the
    /// bundle (see --sign-anyway).
    #[arg(long = "board")]
    boards: Vec<String>,
    /// An engine the bundle is for (any board running it); repeatable.
    #[arg(long = "engine", value_parser = tern::run::engine_arg())]
    engines: Vec<EngineKind>,
    /// Component name, 1 to 64 characters of a-z, 0-9 and - (default: the file name
    /// without .wasm).
    #[arg(long)]
    name: Option<String>,
    /// component.toml with [capabilities] (default: components/<name>/component.toml
    /// or components/fixtures/<name>/component.toml, if present).
    #[arg(long)]
    component_toml: Option<PathBuf>,
    /// Requested capability, overriding component.toml: log, clock,
    /// sensors[=id,..], gpio[=pin,..], kv[=bytes], publish[=prefix]. Repeatable.
    #[arg(long = "grant", value_name = "ITEM")]
    grants: Vec<String>,
    /// Write the bundle even if a board named with --board would refuse it (the
    /// refusal is still printed). Without it, tern sign checks each --board's
    /// install policy first, as `tern verify` does, and writes nothing if one refuses.
    #[arg(long)]
    sign_anyway: bool,
    /// Where to write the bundle.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The bundle.
    bundle: PathBuf,
    /// The board whose policy decides.
    #[arg(long)]
    board: String,
    /// Check the signatures against this public key (a .pub file or 64 hex chars)
    /// instead of the board's compiled-in keys: a what-if before changing a board.
    #[arg(long)]
    trust: Option<String>,
    /// Security counter of the installed component, if any.
    #[arg(long)]
    installed_counter: Option<u64>,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The bundle.
    bundle: PathBuf,
}

#[derive(clap::Args)]
struct FeedArgs {
    /// Event file (.jsonl), as `tern run --events` takes it.
    events: PathBuf,
    /// Where to write the feed.
    #[arg(short, long, default_value = "tern-feed.bin")]
    output: PathBuf,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The component: a core wasm module built by `cargo xtask components`, or a
    /// signed bundle (then --board decides whether it is accepted and what it gets).
    component: PathBuf,
    /// Run as this board: its limits, and its policy for bundles. A bare wasm gets
    /// everything the board offers.
    #[arg(long)]
    board: Option<String>,
    /// Which engine runs it.
    #[arg(long, value_parser = tern::run::engine_arg(), default_value = "wasmtime")]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Keygen(args) => keygen(args),
        Command::Sign(args) => sign(args),
        Command::Verify(args) => verify(args),
        Command::Inspect(args) => inspect(args),
        Command::Boards => boards(),
        Command::Feed(args) => feed(args),
        Command::Serve(args) => block_on(serve(args)),
        Command::Gateway(args) => block_on(gateway(args)),
        Command::Publish(args) => block_on(publish(args)),
        Command::Assign(args) => block_on(assign(args)),
        Command::Provision(args) => block_on(provision(args)),
        Command::Devices(args) => block_on(devices(args)),
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
    let bytes = std::fs::read(&args.component)
        .map_err(|e| format!("cannot read {}: {e}", args.component.display()))?;
    let board = args.board.as_deref().map(board_named).transpose()?;
    let text = std::fs::read_to_string(&args.events)
        .map_err(|e| format!("cannot read {}: {e}", args.events.display()))?;
    let file = EventFile::parse(&text).map_err(|e| format!("{}: {e}", args.events.display()))?;
    let (wasm, grant) = if tern::sign::is_bundle(&bytes) {
        let board = board.ok_or(
            "this is a signed bundle: pass --board to say whose policy and trust keys decide",
        )?;
        if !args.grants.is_empty() {
            return Err("--grant does not apply to a bundle: its grant is its signed manifest, checked against the board".into());
        }
        let (header, grant, payload) = tern::sign::verify_stream(&bytes[..], board, None)
            .map_err(|e| format!("{}: {e}", args.component.display()))?;
        eprintln!(
            "tern: bundle {} {} accepted by board {}",
            header.manifest.name, header.manifest.version, board.name
        );
        (payload, grant)
    } else if !args.grants.is_empty() {
        // Unsigned code on a developer's host: granted by name, not by a policy.
        let grant =
            Grant::parse(args.grants.iter().map(String::as_str)).map_err(|e| e.to_string())?;
        (bytes, Granted::for_development(grant))
    } else if let Some(board) = board {
        (bytes, Granted::for_development(board.offers.to_grant()))
    } else {
        eprintln!(
            "tern: no --grant or --board given: using the development grant (every interface, unscoped)"
        );
        (bytes, Granted::for_development(Grant::development()))
    };
    let base = board.map_or(Limits::HOST, |b| b.limits);
    let limits = Limits {
        fuel_per_call: args.fuel.unwrap_or(base.fuel_per_call),
        memory_bytes: args.memory.unwrap_or(base.memory_bytes),
        ..base
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
    if args.results {
        for line in transcript.result_lines() {
            println!("{line}");
        }
    } else {
        print!("{}", transcript.to_jsonl());
    }
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

fn board_named(name: &str) -> Result<&'static BoardTable, String> {
    tern::boards::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = tern::boards::ALL.iter().map(|b| b.name).collect();
        format!(
            "unknown board `{name}`; this tern knows {}",
            known.join(", ")
        )
    })
}

fn keygen(args: KeygenArgs) -> Result<ExitCode, String> {
    let (key, public_path, public) = tern::keys::generate(&args.out, &args.name)?;
    println!("private key: {} (mode 0600; keep it secret)", key.display());
    println!("public key:  {}", public_path.display());
    println!("public-key = \"{}\"", hex_bytes::encode(&public));
    println!("key id:      {}", tern::keys::key_id_hex(&key_id(&public)));
    Ok(ExitCode::SUCCESS)
}

/// Looks for `components/<name>/component.toml` (or under fixtures/).
fn find_component_toml(name: &str) -> Option<PathBuf> {
    [
        PathBuf::from("components")
            .join(name)
            .join("component.toml"),
        PathBuf::from("components/fixtures")
            .join(name)
            .join("component.toml"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn sign(args: SignArgs) -> Result<ExitCode, String> {
    use tern::sign::GrantSource;
    let wasm = std::fs::read(&args.component)
        .map_err(|e| format!("cannot read {}: {e}", args.component.display()))?;
    let name = match &args.name {
        Some(n) => {
            tern::sign::check_name(n, None).map_err(|e| e.to_string())?;
            n.clone()
        }
        None => {
            let stem = args
                .component
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or("cannot derive a component name from the file name; pass --name NAME (1 to 64 characters of a-z, 0-9 and -)")?;
            let file = args.component.file_name().map(PathBuf::from);
            tern::sign::check_name(stem, file).map_err(|e| e.to_string())?;
            stem.to_string()
        }
    };
    let version = Version::parse(&args.version)
        .ok_or_else(|| format!("--version `{}`: expected major.minor.patch", args.version))?;
    let imports = tern::sign::imported_interfaces(&wasm)
        .map_err(|e| format!("{}: {e}", args.component.display()))?;
    let (capabilities, source) = if !args.grants.is_empty() {
        let g = Grant::parse(args.grants.iter().map(String::as_str)).map_err(|e| e.to_string())?;
        (g, GrantSource::Flags)
    } else if let Some(path) = args
        .component_toml
        .clone()
        .or_else(|| find_component_toml(&name))
    {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let g = tern_board::component_capabilities(&text, &path).map_err(|e| e.to_string())?;
        (g, GrantSource::ComponentToml(path))
    } else {
        let g = tern::sign::default_capabilities(&imports);
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into());
        let flags = tern::sign::grant_flags(&g);
        eprintln!(
            "tern: no component.toml for `{name}` (looked for components/{name}/component.toml and components/fixtures/{name}/component.toml in {cwd}): requesting every interface the wasm imports, unscoped: {}; pass --grant or --component-toml to scope them",
            if flags.is_empty() { "nothing" } else { &flags }
        );
        (g, GrantSource::Imports)
    };
    let boards = args
        .boards
        .iter()
        .map(|b| board_named(b))
        .collect::<Result<Vec<_>, _>>()?;
    let mut targets: Vec<Target> = args.boards.iter().cloned().map(Target::Board).collect();
    targets.extend(args.engines.iter().map(|e| Target::Engine(*e)));
    let keys = args
        .keys
        .iter()
        .map(|k| tern::keys::KeyFile::read(k))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = tern::sign::build(
        &wasm,
        &name,
        version,
        args.counter,
        targets,
        capabilities,
        &keys,
    )?;
    // What each named board's install policy says, before anything is written.
    let mut decoder = bundle::HeaderDecoder::new();
    let (header, _) = decoder
        .feed(&bytes)
        .map_err(|e| format!("internal error: the bundle just built does not decode: {e}"))?
        .ok_or("internal error: the bundle just built is truncated")?;
    if let Err(refusal) = tern::sign::check_boards(&header, &boards, source, &imports) {
        if !args.sign_anyway {
            return Err(format!(
                "not signing: {refusal}\n  or pass --sign-anyway to write it regardless (those boards will still refuse to install it)\nnothing was written to {}",
                args.output.display()
            ));
        }
        eprintln!("tern: warning: {refusal}");
        eprintln!(
            "tern: --sign-anyway: writing it regardless; the board(s) above will refuse to install it"
        );
    }
    std::fs::write(&args.output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", args.output.display()))?;
    println!(
        "signed {name} {version} (counter {}) with {} key(s): {} ({} bytes)",
        args.counter,
        keys.len(),
        args.output.display(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, String> {
    let board = board_named(&args.board)?;
    // A what-if board: the same board with only the given key trusted.
    let what_if;
    let board = match &args.trust {
        None => board,
        Some(k) => {
            let public_key = tern::keys::read_public(k)?;
            let keys: &'static [TrustKey] = Box::leak(Box::new([TrustKey {
                name: "--trust",
                public_key,
            }]));
            what_if = BoardTable {
                trust_keys: keys,
                signatures_required: 1,
                ..*board
            };
            &what_if
        }
    };
    let file = std::fs::File::open(&args.bundle)
        .map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
    match tern::sign::verify_stream(std::io::BufReader::new(file), board, args.installed_counter) {
        Ok((header, grant, _)) => {
            let m = &header.manifest;
            println!(
                "accepted: {} {} (counter {}) for board {}; grant: {}",
                m.name,
                m.version,
                m.security_counter,
                board.name,
                grant_summary(&grant)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("tern: {}: {e}", args.bundle.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn grant_summary(g: &Grant) -> String {
    let v = serde_json::to_value(g).unwrap_or_default();
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !(v.is_null() || **v == serde_json::Value::Bool(false)))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn feed(args: FeedArgs) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.events)
        .map_err(|e| format!("cannot read {}: {e}", args.events.display()))?;
    let file = EventFile::parse(&text).map_err(|e| format!("{}: {e}", args.events.display()))?;
    let bytes = file.to_feed();
    if bytes.len() > tern_core::feed::MAX_FEED_BYTES {
        return Err(format!(
            "{}: the feed would be {} bytes; a device reads at most {} (use fewer events)",
            args.events.display(),
            bytes.len(),
            tern_core::feed::MAX_FEED_BYTES
        ));
    }
    std::fs::write(&args.output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", args.output.display()))?;
    println!(
        "{}: {} config keys, {} events, {} bytes",
        args.output.display(),
        file.config.len(),
        file.events.len(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: InspectArgs) -> Result<ExitCode, String> {
    let bytes = std::fs::read(&args.bundle)
        .map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
    let mut dec = bundle::HeaderDecoder::new();
    let (header, payload) = dec
        .feed(&bytes)
        .map_err(|e| format!("{}: malformed bundle: {e}", args.bundle.display()))?
        .ok_or_else(|| {
            format!(
                "{}: malformed bundle: {}",
                args.bundle.display(),
                dec.truncated()
            )
        })?;
    let m = &header.manifest;
    println!(
        "bundle:    {} ({} bytes, header {} bytes)",
        args.bundle.display(),
        bytes.len(),
        header.len()
    );
    println!("name:      {}", m.name);
    println!("version:   {}", m.version);
    println!("counter:   {}", m.security_counter);
    let targets: Vec<String> = m
        .targets
        .iter()
        .map(|t| match t {
            Target::Board(b) => format!("board {b}"),
            Target::Engine(e) => format!("engine {}", e.name()),
        })
        .collect();
    println!("targets:   {}", targets.join(", "));
    println!("wit:       {}", m.wit);
    println!("requests:  {}", grant_summary(&m.capabilities));
    let mut check = header.payload_checker();
    let payload_ok = check.update(payload).and_then(|()| check.finish());
    println!(
        "payload:   {} bytes, sha256 {} ({})",
        m.payload_len,
        hex_bytes::encode(&m.payload_sha256),
        match &payload_ok {
            Ok(()) => "matches".to_string(),
            Err(e) => format!("BAD: {e}"),
        }
    );
    let message = header.signed_message();
    println!("signatures: {}", header.signatures.len());
    for (i, rec) in header.signatures.iter().enumerate() {
        let id = tern::keys::key_id_hex(&rec.key_id);
        let known: Vec<(&str, &TrustKey)> = tern::boards::ALL
            .iter()
            .flat_map(|b| b.trust_keys.iter().map(move |k| (b.name, k)))
            .filter(|(_, k)| k.id() == rec.key_id)
            .collect();
        let status = match known.first() {
            None => "unknown key (no board here trusts it)".to_string(),
            Some((_, key)) => {
                let ok = ed25519_dalek::VerifyingKey::from_bytes(&key.public_key)
                    .map(|vk| {
                        vk.verify_strict(
                            &message,
                            &ed25519_dalek::Signature::from_bytes(&rec.signature),
                        )
                        .is_ok()
                    })
                    .unwrap_or(false);
                let boards: Vec<&str> = known.iter().map(|(b, _)| *b).collect();
                format!(
                    "{} by {} (trusted by {})",
                    if ok { "verifies" } else { "DOES NOT VERIFY" },
                    key.name,
                    boards.join(", ")
                )
            }
        };
        println!("  [{i}] key {id}: {status}");
    }
    Ok(if payload_ok.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn boards() -> Result<ExitCode, String> {
    for b in tern::boards::ALL {
        let keys: Vec<&str> = b.trust_keys.iter().map(|k| k.name).collect();
        println!(
            "{:<18} engine {:<8} slot {:>8} bytes  trusts {} (needs {})  offers {}",
            b.name,
            b.engine.name(),
            b.slot_size(),
            keys.join("+"),
            b.signatures_required,
            grant_summary(&b.offers.to_grant())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn block_on(
    f: impl std::future::Future<Output = Result<ExitCode, String>>,
) -> Result<ExitCode, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f)
}

/// A secret from a file, else from an environment variable.
fn secret(file: &Option<PathBuf>, env: &str, what: &str) -> Result<String, String> {
    match file {
        Some(p) => std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read {what} from {}: {e}", p.display())),
        None => std::env::var(env).map_err(|_| {
            format!(
                "no {what}: pass --{}-file or set {env}",
                what.replace(' ', "-")
            )
        }),
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let token = secret(&args.admin_token_file, "TERN_ADMIN_TOKEN", "admin token")?;
    let mut config = tern_server::Config::new(token, tern::boards::ALL);
    config.poll_after_ms = args.poll_ms;
    let data = args.data.clone();
    let server = tokio::task::spawn_blocking(move || tern_server::Server::open(data, config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    for d in &args.devices {
        let (id, rest) = d
            .split_once('=')
            .ok_or_else(|| format!("--device `{d}`: expected ID=TOKEN[@GROUP]"))?;
        let (token, group) = match rest.split_once('@') {
            Some((t, g)) => (t, Some(g)),
            None => (rest, None),
        };
        server
            .provision_device(id, token, group)
            .await
            .map_err(|e| e.to_string())?;
    }
    let listener = tern_server::bind(args.listen)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "tern serve: listening on http://{addr}, data in {}",
        args.data.display()
    );
    server
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    println!("tern serve: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn gateway(args: GatewayArgs) -> Result<ExitCode, String> {
    let board = board_named(&args.board)?;
    let token = secret(&args.token_file, "TERN_DEVICE_TOKEN", "token")?;
    tern::gateway::run(tern::gateway::GatewayConfig {
        board,
        server: args.server,
        device: args.device,
        token,
        data: args.data,
        events: args.events,
        poll: std::time::Duration::from_millis(args.poll_ms),
        max_polls: args.max_polls,
        trial_events: args.trial_events,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn admin_client(a: &AdminArgs) -> Result<tern::client::Client, String> {
    let token = secret(&a.admin_token_file, "TERN_ADMIN_TOKEN", "admin token")?;
    tern::client::Client::new(&a.server, &token)
}

async fn publish(args: PublishArgs) -> Result<ExitCode, String> {
    let bytes = std::fs::read(&args.bundle)
        .map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
    let id = tern_core::protocol::bundle_id(&bundle::sha256(&bytes));
    match admin_client(&args.admin)?.publish(bytes).await {
        Ok(_) => {
            println!("published {} as {id}", args.bundle.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("tern: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn assign(args: AssignArgs) -> Result<ExitCode, String> {
    let id = if std::path::Path::new(&args.bundle).is_file() {
        let bytes = std::fs::read(&args.bundle).map_err(|e| format!("{}: {e}", args.bundle))?;
        tern_core::protocol::bundle_id(&bundle::sha256(&bytes))
    } else {
        args.bundle.clone()
    };
    let body = serde_json::json!({ "bundle": id });
    admin_client(&args.admin)?
        .admin(
            hyper::Method::PUT,
            &format!("/api/v1/assignments/{}", args.target),
            Some(&body),
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("assigned {id} to {}", args.target);
    Ok(ExitCode::SUCCESS)
}

async fn provision(args: ProvisionArgs) -> Result<ExitCode, String> {
    let token = secret(&args.token_file, "TERN_DEVICE_TOKEN", "token")?;
    let mut body = serde_json::json!({ "token": token });
    if let Some(g) = &args.group {
        body["group"] = serde_json::Value::String(g.clone());
    }
    admin_client(&args.admin)?
        .admin(
            hyper::Method::PUT,
            &format!("/api/v1/devices/{}", args.device),
            Some(&body),
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("provisioned {}", args.device);
    Ok(ExitCode::SUCCESS)
}

async fn devices(args: AdminArgs) -> Result<ExitCode, String> {
    let v = admin_client(&args)?
        .admin(hyper::Method::GET, "/api/v1/devices", None)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
