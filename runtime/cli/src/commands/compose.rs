//! `tern compose`: an app component with the components that serve its imports, made
//! one component (`tern_host::compose`), ready for `tern sign`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::outln;
use super::{Outcome, read, write};
use tern_host::compose::{componentize, compose};

/// The arguments of `tern compose`.
#[derive(clap::Args)]
pub struct Args {
    /// The app: a component, or a core module built with wit-bindgen (made a component
    /// from the world it embeds).
    app: PathBuf,
    /// A component serving one of the app's imports, as INTERFACE=FILE
    /// (`tern:ruuvi/decode@0.1.0=target/components/ruuvi-decoder.wasm`); repeatable.
    /// A core module is made a component first, like the app.
    #[arg(long = "plug", value_name = "INTERFACE=FILE")]
    plugs: Vec<String>,
    /// Where to write the composed component.
    #[arg(short, long)]
    output: PathBuf,
}

/// A component, or a core module made one.
fn component(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = read(path)?;
    // A core module's header is version 1; a component's a later layer.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        componentize(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Ok(bytes)
    }
}

/// Runs `tern compose`: writes nothing unless every import the plugs name is served
/// with its type.
pub fn run(args: Args) -> Outcome {
    let app = component(&args.app)?;
    let mut plugs = Vec::new();
    for plug in &args.plugs {
        let (interface, file) = plug.split_once('=').ok_or_else(|| {
            format!("--plug {plug}: write it as INTERFACE=FILE, for example tern:ruuvi/decode@0.1.0=decoder.wasm")
        })?;
        plugs.push((
            interface.to_string(),
            component(std::path::Path::new(file))?,
        ));
    }
    let plugs: Vec<(&str, &[u8])> = plugs
        .iter()
        .map(|(i, c)| (i.as_str(), c.as_slice()))
        .collect();
    let composed = compose(&app, &plugs).map_err(|e| format!("tern compose: {e}"))?;
    write(&args.output, &composed)?;
    outln!(
        "composed {} with {} plug(s): {} ({} bytes)",
        args.app.display(),
        plugs.len(),
        args.output.display(),
        composed.len()
    )?;
    Ok(ExitCode::SUCCESS)
}
