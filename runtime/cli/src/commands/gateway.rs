//! `tern gateway`: the gateway agent (`tern_host::gateway`) for one device.

use std::path::PathBuf;
use std::process::ExitCode;

use tern_host::gateway::GatewayConfig;

use super::{Outcome, secret};

/// The arguments of `tern gateway`.
#[derive(clap::Args)]
pub struct Args {
    /// The board this gateway is (its compiled-in table decides everything).
    #[arg(long, default_value = "linux-gateway")]
    board: String,
    /// Fleet server, http://HOST:PORT.
    #[arg(long)]
    server: String,
    /// State directory: file-backed flash slots and partial downloads.
    #[arg(long)]
    data: PathBuf,
    /// This device's id.
    #[arg(long)]
    device: String,
    /// File holding this device's token (or set TERN_DEVICE_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Events to feed the component (trial and running).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Longest wait between check-ins, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    poll_ms: u64,
    /// Exit after this many check-ins.
    #[arg(long)]
    max_polls: Option<u32>,
    /// Events a trial must handle without a runtime error before it is confirmed.
    #[arg(long, default_value_t = 3)]
    trial_events: u32,
}

/// Runs `tern gateway`.
pub async fn run(args: Args) -> Outcome {
    let board = tern_host::boards::named(&args.board).map_err(|e| e.to_string())?;
    let token = secret(&args.token_file, "TERN_DEVICE_TOKEN", "token")?;
    let stop = super::StopSignal::install();
    tern_host::gateway::run_until(
        GatewayConfig {
            board,
            server: args.server,
            device: args.device,
            token,
            data: args.data,
            events: args.events,
            poll: std::time::Duration::from_millis(args.poll_ms),
            max_polls: args.max_polls,
            trial_events: args.trial_events,
        },
        stop.wait(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
