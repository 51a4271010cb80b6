//! `tern devices`: what every device runs and its recent status, as the server says.

use super::outln;
use std::process::ExitCode;

use super::{AdminArgs, Outcome};

/// Runs `tern devices`: the server's JSON, pretty-printed.
pub async fn run(args: AdminArgs) -> Outcome {
    let v = args.client()?.devices().await.map_err(|e| e.to_string())?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    )?;
    Ok(ExitCode::SUCCESS)
}
