//! One module per `tern` command, each its clap arguments and a thin layer over
//! `tern-host`: read the arguments, call the library, print. What the commands share
//! is here: the `--engine` parser, the admin connection and how grants are printed.

pub mod assign;
pub mod boards;
pub mod compose;
pub mod devices;
pub mod feed;
pub mod gateway;
pub mod inspect;
pub mod keygen;
pub mod provision;
pub mod publish;
pub mod run;
pub mod serve;
pub mod sign;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use tern_core::Grant;
use tern_core::bundle::EngineKind;
use tern_host::client::Client;

/// What every command returns: the exit code, or the message `main` prints (after
/// `tern: `) before it exits with 1.
pub type Outcome = Result<ExitCode, String>;

/// Parses `--engine wasmi|wasmtime` (clap lists the two names in `--help`).
pub fn engine_arg() -> impl clap::builder::TypedValueParser<Value = EngineKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(EngineKind::ALL.map(EngineKind::name)).map(|name| {
        // The possible values above are exactly the engines' names.
        EngineKind::from_name(&name).unwrap_or(EngineKind::Wasmtime)
    })
}

/// A grant on one line, as `tern verify`, `tern inspect` and `tern boards` print it:
/// each granted interface as `name=<its JSON>` (`log=true sensors={"only":["temp-0"]}`),
/// in the grant's JSON order; interfaces not granted are left out.
pub fn grant_summary(g: &Grant) -> String {
    let v = serde_json::to_value(g).unwrap_or_default();
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !(v.is_null() || **v == serde_json::Value::Bool(false)))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Runs an async command on a small multi-threaded tokio runtime.
pub fn block_on(f: impl std::future::Future<Output = Outcome>) -> Outcome {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f)
}

/// A secret from a file, else from an environment variable.
pub fn secret(file: &Option<PathBuf>, env: &str, what: &str) -> Result<String, String> {
    match file {
        Some(p) => std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read {what} from {}: {e}", p.display())),
        None => std::env::var(env).map_err(|_| {
            format!(
                "no {what}: pass --{}-file or set {env}",
                what.replace(' ', "-")
            )
        }),
    }
}

/// The fleet server and admin token every admin command takes.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// Fleet server, http://HOST:PORT.
    #[arg(long)]
    server: String,
    /// File holding the admin token (or set TERN_ADMIN_TOKEN).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
}

impl AdminArgs {
    /// A client of the server with the admin token.
    pub fn client(&self) -> Result<Client, String> {
        let token = secret(&self.admin_token_file, "TERN_ADMIN_TOKEN", "admin token")?;
        Client::new(&self.server, &token)
    }
}

/// The request to stop a long-running command (`serve`, `gateway`): Ctrl-C (SIGINT)
/// or SIGTERM, which systemd, container runtimes and load balancers send; both stop
/// it gracefully, in the same way. [`StopSignal::install`] takes the signals over at
/// once (before the command says it is ready, so a signal sent after that is never
/// the default action, which kills the process).
pub struct StopSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignal {
    /// Installs the handlers; call inside the runtime.
    pub fn install() -> StopSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            StopSignal { signals }
        }
        #[cfg(not(unix))]
        StopSignal {}
    }

    /// Resolves with the signal's name when one arrives.
    pub async fn wait(self) -> &'static str {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            return tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Reads a file, naming it if it cannot.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes a file, naming it if it cannot.
pub fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether the reader of stdout has gone away (`tern run … | head`).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `text` to stdout. A reader that closes the pipe early (`| head`) is not an
/// error: the rest of the output is dropped and the command finishes its work (a
/// `tern run --kv` still saves its store). Any other write error is.
pub fn out(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

/// `println!` through [`out`]: `outln!("{x}")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::out(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
