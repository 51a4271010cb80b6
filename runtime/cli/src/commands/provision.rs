//! `tern provision`: register a device and its token on the fleet server.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{AdminArgs, Outcome, secret};

/// The arguments of `tern provision`.
#[derive(clap::Args)]
pub struct Args {
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

/// Runs `tern provision`.
pub async fn run(args: Args) -> Outcome {
    let token = secret(&args.token_file, "TERN_DEVICE_TOKEN", "token")?;
    args.admin
        .client()?
        .provision(&args.device, &token, args.group.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    outln!("provisioned {}", args.device)?;
    Ok(ExitCode::SUCCESS)
}
