//! `tern verify`: whether a board would install a bundle, and why not.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Outcome, grant_summary};

/// The arguments of `tern verify`.
#[derive(clap::Args)]
pub struct Args {
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

/// Runs `tern verify`: exit 0 if the board accepts the bundle, else 1 with the reason.
pub fn run(args: Args) -> Outcome {
    let board = tern_host::boards::named(&args.board).map_err(|e| e.to_string())?;
    let what_if;
    let board = match &args.trust {
        None => board,
        Some(k) => {
            what_if = tern_host::boards::trusting_only(board, tern_host::keys::read_public(k)?);
            &what_if
        }
    };
    let file = std::fs::File::open(&args.bundle)
        .map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
    match tern_host::sign::verify_stream(
        std::io::BufReader::new(file),
        board,
        args.installed_counter,
    ) {
        Ok((header, grant, _)) => {
            let m = &header.manifest;
            outln!(
                "accepted: {} {} (counter {}) for board {}; grant: {}",
                m.name,
                m.version,
                m.security_counter,
                board.name(),
                grant_summary(&grant)
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("tern: {}: {e}", args.bundle.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
