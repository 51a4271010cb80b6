//! The `tern` command: clap's definition of the command line and the dispatch to
//! `commands/<command>.rs`, each a thin layer over `tern-host`.
#![forbid(unsafe_code)]

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::block_on;

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
    Run(commands::run::Args),
    /// Generate an Ed25519 signing key pair for `tern sign --key`.
    ///
    /// Writes DIR/NAME.key (mode 0600, never printed) and DIR/NAME.pub. Put the .pub
    /// hex into a board.toml's [trust] keys.
    Keygen(commands::keygen::Args),
    /// Wrap a component in a signed bundle, refusing one a --board would not install.
    ///
    /// The input is a component's core wasm or a component (`wasm-tools component
    /// new`, cargo-component, wit-bindgen bindings). A component is signed as it is
    /// for Wasmtime boards and as a device image made from it for wasmi boards, so for
    /// one engine at a time; what a wasmi board cannot run (async, resources, ...) is
    /// refused with the reason.
    ///
    /// Requested capabilities come from --grant, else from component.toml's
    /// [capabilities] (--component-toml, else `components/<name>/component.toml` or
    /// `components/fixtures/<name>/component.toml` under the current directory), else
    /// they are the interfaces the wasm imports, unscoped (said on stderr). Each
    /// --board's install policy is then checked as `tern verify` does, and the wasm is
    /// validated against the wasm features of each targeted board's and --engine's
    /// engine (no SIMD on wasmi); if one would refuse the bundle, tern sign says why
    /// and how to fix it and writes nothing (unless --sign-anyway).
    Sign(commands::sign::Args),
    /// Compose an app with the components that serve its imports into one component.
    ///
    /// Each --plug INTERFACE=FILE serves the app's import of INTERFACE with the
    /// component (or wit-bindgen core module) in FILE; each keeps its own linear
    /// memory, and calls between them copy values by the canonical ABI. The types must
    /// match; an import left unserved must be one a board offers (tern:edge). Sign the
    /// result with `tern sign` like any component.
    Compose(commands::compose::Args),
    /// Check whether a board would accept a bundle: exit 0, or 1 with the reason.
    ///
    /// Runs the board's install policy with its compiled-in trust keys and
    /// capabilities, then checks the payload against the signed hash and validates it
    /// against the wasm features of the board's engine.
    Verify(commands::verify::Args),
    /// Print a bundle's manifest and signatures, and which boards' keys verify them;
    /// what the payload is (a device image's modules, steps and the host resources its
    /// handles name) and the interfaces it imports.
    Inspect(commands::inspect::Args),
    /// List the boards compiled into this tern, with what they trust and offer.
    Boards,
    /// Encode an event file as the sensor feed a QEMU device reads.
    ///
    /// The device's simulated sensors read it from `tern-feed.bin` in QEMU's working
    /// directory; format in boards/qemu-mps2-an386/firmware/README.md.
    Feed(commands::feed::Args),
    /// Run the fleet server: bundles, assignments, downloads and device status.
    ///
    /// Stores bundles, assigns them, serves downloads and collects device status
    /// (HTTP API in docs/protocol.md). Stops cleanly on Ctrl-C or SIGTERM (what
    /// systemd and container runtimes send): in-flight requests finish, the store is
    /// closed, exit 0.
    Serve(commands::serve::Args),
    /// Run a gateway agent: take updates from the fleet server and run the component.
    ///
    /// Checks in, downloads, verifies, stages, trials, confirms or rolls back,
    /// reports, and runs the active component on the board's engine. Stops cleanly on
    /// Ctrl-C or SIGTERM, between two steps (its state is on the file flash), exit 0.
    Gateway(commands::gateway::Args),
    /// Upload a signed bundle to the fleet server (admin).
    Publish(commands::publish::Args),
    /// Assign a published bundle to a device (`device:ID`) or a group (`group:NAME`) (admin).
    Assign(commands::assign::Args),
    /// Register a device and its token, optionally in a group (admin).
    Provision(commands::provision::Args),
    /// Show what every device runs and its recent status history (admin).
    Devices(commands::AdminArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Sign(args) => commands::sign::run(args),
        Command::Compose(args) => commands::compose::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Boards => commands::boards::run(),
        Command::Feed(args) => commands::feed::run(args),
        Command::Serve(args) => block_on(commands::serve::run(args)),
        Command::Gateway(args) => block_on(commands::gateway::run(args)),
        Command::Publish(args) => block_on(commands::publish::run(args)),
        Command::Assign(args) => block_on(commands::assign::run(args)),
        Command::Provision(args) => block_on(commands::provision::run(args)),
        Command::Devices(args) => block_on(commands::devices::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}
