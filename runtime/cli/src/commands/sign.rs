//! `tern sign`: a signed bundle, refused before it is written if a `--board` would
//! refuse to install it or a targeted engine could not run it. A component becomes
//! a device image for wasmi targets (`tern_host::sign::payload_for_targets`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tern_core::bundle::{EngineKind, Version};
use tern_host::keys::KeyFile;
use tern_host::sign::{BundleRequest, GrantSource, PayloadKind};

use super::{Outcome, engine_arg, read, write};

/// The arguments of `tern sign`.
#[derive(clap::Args)]
pub struct Args {
    /// What to sign: a component's core wasm (target/components/<name>.wasm), or a
    /// component (from `wasm-tools component new`, cargo-component or wit-bindgen's
    /// bindings). Wasmtime boards run a component as it is; for wasmi boards it is
    /// signed as a device image made from it (what wasmi cannot run, such as async or
    /// resources, is refused with the reason). A component is signed for one engine
    /// at a time.
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
    /// bundle, and its engine must run the wasm: a feature the engine lacks (SIMD on a
    /// wasmi board) is refused (see --sign-anyway).
    #[arg(long = "board")]
    boards: Vec<String>,
    /// An engine the bundle is for (any board running it); repeatable. The engine must
    /// run the wasm (see --board).
    #[arg(long = "engine", value_parser = engine_arg())]
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
    /// install policy and each target's engine first, as `tern verify` does, and
    /// writes nothing if one refuses.
    #[arg(long)]
    sign_anyway: bool,
    /// Where to write the bundle.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

/// Runs `tern sign`.
pub fn run(args: Args) -> Outcome {
    let wasm = read(&args.component)?;
    let name = tern_host::sign::component_name(&args.component, args.name.as_deref())?;
    let version = Version::parse(&args.version)
        .ok_or_else(|| format!("--version `{}`: expected major.minor.patch", args.version))?;
    let imports = tern_host::sign::imported_interfaces(&wasm)
        .map_err(|e| format!("{}: {e}", args.component.display()))?;
    // component.toml is looked for under the current directory.
    let (capabilities, source) = tern_host::sign::requested_capabilities(
        &args.grants,
        args.component_toml.clone(),
        &name,
        &imports,
        Path::new(""),
    )?;
    if source == GrantSource::Imports {
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into());
        let flags = tern_host::sign::grant_flags(&capabilities);
        eprintln!(
            "tern: no component.toml for `{name}` (looked for components/{name}/component.toml and components/fixtures/{name}/component.toml in {cwd}): requesting every interface the wasm imports, unscoped: {}; pass --grant or --component-toml to scope them",
            if flags.is_empty() { "nothing" } else { &flags }
        );
    }
    let boards = args
        .boards
        .iter()
        .map(|b| tern_host::boards::named(b).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = args
        .keys
        .iter()
        .map(|k| KeyFile::read(k))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = tern_host::sign::sign(BundleRequest {
        wasm: &wasm,
        name: &name,
        version,
        security_counter: args.counter,
        boards: &boards,
        engines: &args.engines,
        capabilities,
        source,
        keys: &keys,
    })?;
    if let Some(refusal) = &signed.refusal {
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
    write(&args.output, &signed.bytes)?;
    let payload = match (PayloadKind::of(&wasm), signed.payload) {
        (PayloadKind::Component, PayloadKind::DeviceImage) => {
            "; payload: a device image made from the component, for wasmi"
        }
        (_, PayloadKind::Component) => "; payload: the component, for Wasmtime",
        _ => "",
    };
    super::outln!(
        "signed {name} {version} (counter {}) with {} key(s): {} ({} bytes{payload})",
        args.counter,
        keys.len(),
        args.output.display(),
        signed.bytes.len()
    )?;
    Ok(ExitCode::SUCCESS)
}
