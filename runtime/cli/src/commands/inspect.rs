//! `tern inspect`: a bundle's manifest, its payload's kind and imports, and its
//! signatures with the boards whose keys verify them.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use tern_core::bundle::Target;
use tern_core::wit::hex_bytes;

use super::{Outcome, grant_summary, read};

/// The arguments of `tern inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    bundle: PathBuf,
}

/// Runs `tern inspect`: exit 1 if the payload does not match its signed hash.
pub fn run(args: Args) -> Outcome {
    let bytes = read(&args.bundle)?;
    let seen = tern_host::sign::inspect(&bytes)
        .map_err(|e| format!("{}: malformed bundle: {e}", args.bundle.display()))?;
    let header = &seen.header;
    let m = &header.manifest;
    outln!(
        "bundle:    {} ({} bytes, header {} bytes)",
        args.bundle.display(),
        bytes.len(),
        header.len()
    )?;
    outln!("name:      {}", m.name)?;
    outln!("version:   {}", m.version)?;
    outln!("counter:   {}", m.security_counter)?;
    let targets: Vec<String> = m
        .targets
        .iter()
        .map(|t| match t {
            Target::Board(b) => format!("board {b}"),
            Target::Engine(e) => format!("engine {}", e.name()),
        })
        .collect();
    outln!("targets:   {}", targets.join(", "))?;
    outln!("wit:       {}", m.wit)?;
    outln!("requests:  {}", grant_summary(&m.capabilities))?;
    outln!(
        "payload:   {} bytes, sha256 {} ({})",
        m.payload_len,
        hex_bytes::encode(&m.payload_sha256),
        match &seen.payload {
            Ok(()) => "matches".to_string(),
            Err(e) => format!("BAD: {e}"),
        }
    )?;
    // What the payload is and what it imports: the bytes after the header, signed
    // through the manifest's hash (checked above).
    let payload = bytes.get(header.len()..).unwrap_or_default();
    let kind = tern_host::sign::PayloadKind::of(payload);
    let detail = match kind {
        tern_host::sign::PayloadKind::DeviceImage => match tern_core::image::decode(payload) {
            Ok(image) => {
                let mut d = format!(
                    " ({} core modules, {} plan steps",
                    image.modules.len(),
                    image.steps.len()
                );
                // The host's resources its handles name (`bucket` of wasi:keyvalue).
                if !image.resources.is_empty() {
                    let names: Vec<String> = image
                        .resources
                        .iter()
                        .map(|r| format!("{} of {}", r.name, r.interface))
                        .collect();
                    d.push_str(&format!("; host resources: {}", names.join(", ")));
                }
                d.push(')');
                d
            }
            Err(e) => format!(" (BAD: {e})"),
        },
        _ => String::new(),
    };
    outln!("kind:      {}{detail}", kind.name())?;
    let imports = match tern_host::sign::imported_interfaces(payload) {
        Ok(ifaces) if ifaces.is_empty() => "nothing".to_string(),
        Ok(ifaces) => ifaces
            .iter()
            .map(|i| i.import_module())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("BAD: {e}"),
    };
    outln!("imports:   {imports}")?;
    outln!("signatures: {}", seen.signatures.len())?;
    for (i, check) in seen.signatures.iter().enumerate() {
        let id = tern_host::keys::key_id_hex(&check.key_id);
        let status = match &check.signer {
            None => "unknown key (no board here trusts it)".to_string(),
            Some(signer) => format!(
                "{} by {} (trusted by {})",
                if signer.verifies {
                    "verifies"
                } else {
                    "DOES NOT VERIFY"
                },
                signer.key,
                signer.trusted_by.join(", ")
            ),
        };
        outln!("  [{i}] key {id}: {status}")?;
    }
    Ok(if seen.payload.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
