//! `tern feed`: an event file as the sensor feed a QEMU device reads.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use tern_host::events::EventFile;

use super::{Outcome, write};

/// The arguments of `tern feed`.
#[derive(clap::Args)]
pub struct Args {
    /// Event file (.jsonl), as `tern run --events` takes it.
    events: PathBuf,
    /// Where to write the feed.
    #[arg(short, long, default_value = "tern-feed.bin")]
    output: PathBuf,
}

/// Runs `tern feed`.
pub fn run(args: Args) -> Outcome {
    let file = EventFile::read(&args.events)?;
    let bytes = file
        .to_device_feed()
        .map_err(|e| format!("{}: {e}", args.events.display()))?;
    write(&args.output, &bytes)?;
    outln!(
        "{}: {} config keys, {} events, {} bytes",
        args.output.display(),
        file.config.len(),
        file.events.len(),
        bytes.len()
    )?;
    Ok(ExitCode::SUCCESS)
}
