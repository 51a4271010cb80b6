//! `tern assign`: assign a published bundle to a device or a group.

use super::outln;
use std::process::ExitCode;

use tern_core::bundle;

use super::{AdminArgs, Outcome};

/// The arguments of `tern assign`.
#[derive(clap::Args)]
pub struct Args {
    /// `device:ID` or `group:NAME`.
    target: String,
    /// Bundle id (as `tern publish` printed it: the bundle's SHA-256 in hex), or a
    /// bundle file.
    bundle: String,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Runs `tern assign`.
pub async fn run(args: Args) -> Outcome {
    let id = if std::path::Path::new(&args.bundle).is_file() {
        let bytes = std::fs::read(&args.bundle).map_err(|e| format!("{}: {e}", args.bundle))?;
        tern_core::protocol::bundle_id(&bundle::sha256(&bytes))
    } else {
        args.bundle.clone()
    };
    args.admin
        .client()?
        .assign(&args.target, &id)
        .await
        .map_err(|e| e.to_string())?;
    outln!("assigned {id} to {}", args.target)?;
    Ok(ExitCode::SUCCESS)
}
