//! `tern keygen`: an Ed25519 signing key pair.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use tern_core::bundle::key_id;
use tern_core::wit::hex_bytes;

use super::Outcome;

/// The arguments of `tern keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the key files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Base name of the files.
    #[arg(long, default_value = "tern-signing")]
    name: String,
}

/// Runs `tern keygen`.
pub fn run(args: Args) -> Outcome {
    let (key, public_path, public) = tern_host::keys::generate(&args.out, &args.name)?;
    outln!("private key: {} (mode 0600; keep it secret)", key.display())?;
    outln!("public key:  {}", public_path.display())?;
    outln!("public-key = \"{}\"", hex_bytes::encode(&public))?;
    outln!(
        "key id:      {}",
        tern_host::keys::key_id_hex(&key_id(&public))
    )?;
    Ok(ExitCode::SUCCESS)
}
