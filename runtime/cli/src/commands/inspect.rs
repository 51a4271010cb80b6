//! `tern inspect`: a bundle's manifest and signatures, and which boards' keys verify
//! them.

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
