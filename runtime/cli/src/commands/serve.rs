//! `tern serve`: the fleet server (`tern-server`), until Ctrl-C.

use super::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Outcome, secret};

/// The arguments of `tern serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the server's state (database and bundles); created if missing.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// File holding the admin token (or set TERN_ADMIN_TOKEN); at least 16 characters.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// How long devices are told to wait between check-ins, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    poll_ms: u32,
    /// Register a device at start: ID=TOKEN or ID=TOKEN@GROUP. Repeatable.
    #[arg(long = "device", value_name = "ID=TOKEN[@GROUP]")]
    devices: Vec<String>,
    /// Open connections at most; beyond it a new one takes the place of an idle one
    /// (half-open or between requests) of the address holding the most.
    #[arg(long, default_value_t = tern_server::Config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Open connections from one IP address at most. Devices behind one NAT share
    /// an address: give at least as many as check in at once from there.
    #[arg(long, default_value_t = tern_server::Config::DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    max_connections_per_peer: usize,
}

/// Runs `tern serve`.
pub async fn run(args: Args) -> Outcome {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let token = secret(&args.admin_token_file, "TERN_ADMIN_TOKEN", "admin token")?;
    let mut config = tern_server::Config::new(token, tern_host::boards::ALL);
    config.poll_after_ms = args.poll_ms;
    config.max_connections = args.max_connections;
    config.max_connections_per_peer = args.max_connections_per_peer;
    let data = args.data.clone();
    let server = tokio::task::spawn_blocking(move || tern_server::Server::open(data, config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    for d in &args.devices {
        let (id, rest) = d
            .split_once('=')
            .ok_or_else(|| format!("--device `{d}`: expected ID=TOKEN[@GROUP]"))?;
        let (token, group) = match rest.split_once('@') {
            Some((t, g)) => (t, Some(g)),
            None => (rest, None),
        };
        server
            .provision_device(id, token, group)
            .await
            .map_err(|e| e.to_string())?;
    }
    let stop = super::StopSignal::install();
    let listener = tern_server::bind(args.listen)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    outln!(
        "tern serve: listening on http://{addr}, data in {}",
        args.data.display()
    )?;
    let signal = std::sync::Arc::new(std::sync::OnceLock::new());
    let seen = signal.clone();
    server
        .serve(listener, async move {
            let _ = seen.set(stop.wait().await);
        })
        .await
        .map_err(|e| e.to_string())?;
    // In-flight requests have finished and the store is closed (`Server::serve`).
    outln!(
        "tern serve: stopped ({}): requests finished, store closed",
        signal.get().copied().unwrap_or("shutdown")
    )?;
    Ok(ExitCode::SUCCESS)
}
