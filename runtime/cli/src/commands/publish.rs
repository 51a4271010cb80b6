//! `tern publish`: upload a signed bundle to the fleet server.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use tern_core::bundle;

use super::{AdminArgs, Outcome, read};

/// The arguments of `tern publish`.
#[derive(clap::Args)]
pub struct Args {
    /// The signed bundle.
    bundle: PathBuf,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Runs `tern publish`: exit 1 with the server's reason if it refuses the bundle.
pub async fn run(args: Args) -> Outcome {
    let bytes = read(&args.bundle)?;
    let id = tern_core::protocol::bundle_id(&bundle::sha256(&bytes));
    match args.admin.client()?.publish(bytes).await {
        Ok(_) => {
            outln!("published {} as {id}", args.bundle.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("tern: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
