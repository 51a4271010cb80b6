//! The gateway agent (`tern gateway`): a tokio driver of [`tern_agent::Agent`], the one
//! update agent. It carries the agent's requests to the fleet server over HTTP, runs
//! trials and the active component on the board's engine (Wasmtime or wasmi), and
//! prints the agent's notices. The slots live in a file with NOR flash rules
//! ([`file_flash::FileFlash`]), so a partial download survives a restart and resumes.

pub mod file_flash;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tern_agent::Agent;
use tern_agent::agent::{Action, Config as AgentConfig, Flow, Method, Notice, Request, Workload};
use tern_agent::layout::SlotLayout;
use tern_agent::slots::{ComponentInfo, SlotManager};
use tern_core::board::BoardTable;
use tern_core::bundle::EngineKind;

use crate::client::{Client, Piece};
use crate::events::EventFile;
use crate::run::SharedSim;
use file_flash::FileFlash;

/// How a gateway runs.
pub struct GatewayConfig {
    /// The board it is (its table decides trust, capabilities, limits, slots).
    pub board: &'static BoardTable,
    /// Fleet server, `http://HOST:PORT`.
    pub server: String,
    /// This device's id.
    pub device: String,
    /// This device's token.
    pub token: String,
    /// State directory: flash file, partial downloads.
    pub data: PathBuf,
    /// Events fed to the component (trial and normal running).
    pub events: Option<PathBuf>,
    /// Longest wait between check-ins (the server's `poll_after_ms` can shorten it).
    pub poll: Duration,
    /// Stop after this many check-ins (for tests and demos); `None` runs forever.
    pub max_polls: Option<u32>,
    /// Events a trial must handle before it is confirmed.
    pub trial_events: u32,
}

type Slots = SlotManager<FileFlash>;

fn open_slots(cfg: &GatewayConfig) -> Result<Slots, String> {
    let layout = SlotLayout::from_board(cfg.board).map_err(|e| e.to_string())?;
    let capacity = (layout.end() as usize).div_ceil(file_flash::SECTOR) * file_flash::SECTOR;
    if cfg.board.sector_size() as usize != file_flash::SECTOR {
        return Err(format!(
            "board {} has {}-byte sectors; file-backed flash uses {}",
            cfg.board.name(),
            cfg.board.sector_size(),
            file_flash::SECTOR
        ));
    }
    std::fs::create_dir_all(&cfg.data)
        .map_err(|e| format!("cannot create {}: {e}", cfg.data.display()))?;
    let flash = FileFlash::open(&cfg.data.join("flash.bin"), capacity)
        .map_err(|e| format!("{}: {e}", cfg.data.join("flash.bin").display()))?;
    SlotManager::open(flash, layout, cfg.board).map_err(|e| e.to_string())
}

/// Prints one line, prefixed with the device id.
fn say(cfg: &GatewayConfig, line: &dyn std::fmt::Display) {
    println!("[{}] {line}", cfg.device);
    let _ = std::io::stdout().flush();
}

/// What the gateway feeds a component: the events file, on a simulated platform
/// whose sensors follow the events.
struct Events {
    file: EventFile,
    sim: SharedSim,
}

impl Workload for Events {
    fn config(&self) -> &[(String, String)] {
        &self.file.config
    }

    fn events(&self) -> &[tern_core::Event] {
        &self.file.events
    }

    fn platform(&mut self) -> Box<dyn tern_core::Platform + Send> {
        self.sim = SharedSim::default();
        Box::new(self.sim.clone())
    }

    fn observe(&mut self, event: &tern_core::Event) {
        self.sim
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(event);
    }
}

/// Runs the active component over the events and prints a summary of its results.
fn run_active(
    cfg: &GatewayConfig,
    slots: &mut Slots,
    info: &ComponentInfo,
    events: &EventFile,
) -> Result<(), String> {
    let wasm = slots.active_payload().map_err(|e| e.to_string())?;
    let sim = SharedSim::default();
    let engines = crate::run::Engines::new(cfg.board.limits()).map_err(|e| e.to_string())?;
    let kind = cfg.board.engine();
    let t = engines
        .run(
            kind,
            &wasm,
            &info.grant,
            &events.config,
            &events.events,
            &sim,
        )
        .map_err(|e| e.to_string())?;
    let results = t.results().count();
    let outputs: Vec<String> = t.event_outputs().flatten().map(|o| o.to_string()).collect();
    let last: Vec<&str> = outputs
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    say(
        cfg,
        &format_args!(
            "running {} {} on {}: {results} results over {} events; last outputs: {}",
            info.name,
            info.version,
            cfg.board.engine().name(),
            events.events.len(),
            last.join(", ")
        ),
    );
    Ok(())
}

/// Sends `req` and feeds the answer to the agent.
async fn exchange(agent: &mut Agent<FileFlash>, client: &Client, req: Request, start: Instant) {
    let method = match req.method {
        Method::Get => hyper::Method::GET,
        Method::Post => hyper::Method::POST,
    };
    let result = client
        .exchange(
            method,
            &req.path,
            req.range_from,
            req.body,
            |piece| match piece {
                Piece::Status(status) => {
                    agent.response_head(status);
                    true
                }
                Piece::Data(data) => agent.response_data(ms_since(start), data) == Flow::Continue,
            },
        )
        .await;
    let now = ms_since(start);
    match result {
        Ok(()) => agent.response_end(now),
        Err(e) => agent.transport_failed(now, &e.reason),
    }
}

fn ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Runs the gateway: drives the [`tern_agent::Agent`] over HTTP (tokio) and runs trials and
/// the active component on the board's engine. Every update decision is the agent's.
pub async fn run(cfg: GatewayConfig) -> Result<(), String> {
    run_until(cfg, std::future::pending()).await
}

/// [`run`] until `stop` resolves (with the reason, such as `SIGTERM`): the step under
/// way finishes (a request in flight gets its answer, a trial settles, each written
/// to the file flash as always), then the agent stops and says why.
pub async fn run_until(
    cfg: GatewayConfig,
    stop: impl std::future::Future<Output = &'static str> + Send + 'static,
) -> Result<(), String> {
    let reason = std::sync::Arc::new(std::sync::OnceLock::new());
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let (reason, wake) = (reason.clone(), wake.clone());
        tokio::spawn(async move {
            let _ = reason.set(stop.await);
            wake.notify_one();
        });
    }
    let client = Client::new(&cfg.server, &cfg.token)?;
    let file = match &cfg.events {
        Some(p) => EventFile::read(p)?,
        None => EventFile::default(),
    };
    let mut workload = Events {
        file,
        sim: SharedSim::default(),
    };
    let slots = open_slots(&cfg)?;
    let mut agent = Agent::new(
        AgentConfig {
            device: cfg.device.clone(),
            poll_ms: u32::try_from(cfg.poll.as_millis()).unwrap_or(u32::MAX),
            trial_events: cfg.trial_events,
        },
        slots,
    );
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    loop {
        if let Some(why) = reason.get() {
            say(
                &cfg,
                &format!("stopping ({why}): between steps, state on flash"),
            );
            return Ok(());
        }
        let now = ms_since(start);
        match agent.poll(now) {
            Action::Notice(Notice::Progress { received, total }) => {
                if tty {
                    eprint!(
                        "\r[{}] downloading: {:>3}% ({received}/{total} bytes)",
                        cfg.device,
                        received * 100 / u64::from(total.max(1)),
                    );
                    if received == u64::from(total) {
                        eprintln!();
                    }
                }
            }
            Action::Notice(n) => say(&cfg, &n),
            Action::Run(None) => {}
            Action::Run(Some(info)) => run_active(&cfg, agent.slots_mut(), &info, &workload.file)?,
            Action::Trial => match cfg.board.engine() {
                EngineKind::Wasmtime => {
                    let engine = tern_wasmtime::WasmtimeEngine::new(cfg.board.limits())
                        .map_err(|e| e.to_string())?;
                    agent.run_trial(now, &engine, &mut workload);
                }
                EngineKind::Wasmi => {
                    let engine = tern_wasmi::WasmiEngine::new(cfg.board.limits());
                    agent.run_trial(now, &engine, &mut workload);
                }
            },
            Action::Send(req) => exchange(&mut agent, &client, req, start).await,
            Action::WaitUntil(at) => {
                if cfg.max_polls.is_some_and(|m| agent.check_ins() >= m)
                    && agent.is_idle()
                    && agent.reports().is_empty()
                {
                    return Ok(());
                }
                let wait = Duration::from_millis(at.saturating_sub(now).max(1));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notified() => {}
                }
            }
        }
    }
}
