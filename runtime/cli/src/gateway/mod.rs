//! The gateway agent (`tern gateway`): checks in with the fleet server, downloads
//! assigned bundles with resume, stages them through the same slot manager devices
//! use (on file-backed flash), trials, confirms or rolls back, reports, and runs the
//! active component on the board's engine.

pub mod file_flash;

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use tern_agent::layout::SlotLayout;
use tern_agent::slots::{ComponentInfo, SlotManager};
use tern_agent::supervisor::{Report, Supervisor, TrialPolicy};
use tern_core::board::BoardTable;
use tern_core::bundle::{self, EngineKind};
use tern_core::protocol::{self, Assignment, CheckIn};
use tern_core::{Engine, Instance};

use crate::client::Client;
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
    if cfg.board.sector_size as usize != file_flash::SECTOR {
        return Err(format!(
            "board {} has {}-byte sectors; file-backed flash uses {}",
            cfg.board.name,
            cfg.board.sector_size,
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
fn say(cfg: &GatewayConfig, line: &str) {
    println!("[{}] {line}", cfg.device);
    let _ = std::io::stdout().flush();
}

/// Downloads `a` into `dir/<id>.part`, resuming from what is already there, and
/// retrying dropped connections. Returns the complete bundle, checked against the
/// assignment's SHA-256 (corruption in transit is thrown away and fetched again).
async fn download(cfg: &GatewayConfig, client: &Client, a: &Assignment) -> Result<Vec<u8>, String> {
    let dir = cfg.data.join("downloads");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let part = dir.join(format!("{}.part", a.bundle_id));
    let tty = std::io::stderr().is_terminal();
    let mut attempts = 0;
    loop {
        let mut have = std::fs::read(&part).unwrap_or_default();
        if have.len() as u64 > u64::from(a.len) {
            have.clear();
        }
        if have.len() as u64 == u64::from(a.len) {
            if bundle::sha256(&have) == a.sha256 {
                let _ = std::fs::remove_file(&part);
                return Ok(have);
            }
            say(
                cfg,
                "download corrupted in transit (SHA-256 mismatch): fetching again",
            );
            let _ = std::fs::remove_file(&part);
            have.clear();
        }
        attempts += 1;
        if attempts > 8 {
            return Err(format!(
                "download of {} failed 8 times; will retry at the next check-in",
                a.bundle_id
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(|e| format!("{}: {e}", part.display()))?;
        let mut done = have.len();
        let total = a.len as usize;
        let result = client
            .download_from(&a.bundle_id, have.len() as u64, |data| {
                let take = data.len().min(total - done);
                f.write_all(&data[..take])
                    .map_err(|e| format!("{}: {e}", part.display()))?;
                done += take;
                if tty {
                    eprint!(
                        "\r[{}] downloading {} {}: {:>3}% ({done}/{total} bytes)",
                        cfg.device,
                        a.name,
                        a.version,
                        done * 100 / total.max(1),
                    );
                }
                Ok(())
            })
            .await;
        // What arrived is on disk before anything else happens, so a restart resumes.
        let _ = f.sync_data();
        if tty {
            eprintln!();
        }
        match result {
            Ok(()) => {}
            Err(e) => {
                say(cfg, &format!("download interrupted ({e}); resuming"));
                tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
            }
        }
    }
}

/// Stores, trials and settles a downloaded bundle. Returns the reports to send.
fn install(
    cfg: &GatewayConfig,
    slots: &mut Slots,
    bytes: &[u8],
    events: &EventFile,
) -> Vec<Report> {
    let mut reports = Vec::new();
    let staged = (|| {
        let mut w = slots.begin_bundle()?;
        for chunk in bytes.chunks(4096) {
            w.write(chunk)?;
        }
        w.finish()
    })();
    let info = match staged {
        Ok(info) => info,
        Err(reason) => {
            say(cfg, &format!("rejected: {reason}"));
            reports.push(Report::Rejected { reason });
            return reports;
        }
    };
    say(
        cfg,
        &format!(
            "staged {} {} in slot {}",
            info.name, info.version, info.slot
        ),
    );
    reports.push(Report::Installed {
        component: info.id(),
    });
    let trial = match slots.start_trial() {
        Ok(t) => t,
        Err(reason) => {
            reports.push(Report::Rejected { reason });
            return reports;
        }
    };
    let mut sup = Supervisor::new(
        trial.id(),
        TrialPolicy {
            events_required: cfg.trial_events,
            ..TrialPolicy::default()
        },
    );
    match slots.trial_payload() {
        Ok(wasm) => trial_run(cfg, &mut sup, &wasm, &trial, events),
        Err(e) => {
            sup.loaded(Err(tern_core::Error::Engine(e.to_string())));
        }
    }
    match sup.settle(slots) {
        Ok(Some(r)) => {
            say(cfg, &r.to_string());
            reports.push(r);
        }
        Ok(None) => {
            // Not enough events to decide: a trial with no traffic is confirmed on
            // its health check alone.
            let _ = sup.deadline_passed();
            match sup.settle(slots) {
                Ok(Some(r)) => {
                    say(cfg, &r.to_string());
                    reports.push(r);
                }
                Ok(None) => {}
                Err(reason) => reports.push(Report::Rejected { reason }),
            }
        }
        Err(reason) => reports.push(Report::Rejected { reason }),
    }
    reports
}

/// Runs the trial on the board's engine: load, init, health-check, first events.
fn trial_run(
    cfg: &GatewayConfig,
    sup: &mut Supervisor,
    wasm: &[u8],
    info: &ComponentInfo,
    events: &EventFile,
) {
    let sim = SharedSim::default();
    match cfg.board.engine {
        EngineKind::Wasmtime => match tern_wasmtime::WasmtimeEngine::new(cfg.board.limits) {
            Ok(engine) => trial_on(&engine, sup, wasm, info, events, &sim),
            Err(e) => {
                sup.loaded(Err(e));
            }
        },
        EngineKind::Wasmi => {
            let engine = tern_wasmi::WasmiEngine::new(cfg.board.limits);
            trial_on(&engine, sup, wasm, info, events, &sim);
        }
    }
}

fn trial_on<E: Engine>(
    engine: &E,
    sup: &mut Supervisor,
    wasm: &[u8],
    info: &ComponentInfo,
    events: &EventFile,
    sim: &SharedSim,
) {
    let component = match engine.load(wasm, &info.grant) {
        Ok(c) => c,
        Err(e) => {
            sup.loaded(Err(e));
            return;
        }
    };
    let mut inst = match engine.instantiate(&component, Box::new(sim.clone())) {
        Ok(i) => i,
        Err(e) => {
            sup.loaded(Err(e));
            return;
        }
    };
    sup.loaded(Ok(()));
    sup.init(inst.init(&events.config));
    sup.health_check(inst.health_check());
    for ev in &events.events {
        if !matches!(sup.decision(), tern_agent::supervisor::Decision::Pending) {
            break;
        }
        sim.0.lock().unwrap_or_else(|p| p.into_inner()).observe(ev);
        let r = inst.on_event(ev);
        sup.event(&r);
    }
}

/// Runs the active component over the events and prints its results.
fn run_active(cfg: &GatewayConfig, slots: &mut Slots, events: &EventFile) -> Result<(), String> {
    let Some(info) = slots.active().cloned() else {
        say(cfg, "no component installed yet");
        return Ok(());
    };
    let wasm = slots.active_payload().map_err(|e| e.to_string())?;
    let sim = SharedSim::default();
    let engines = crate::run::Engines::new(cfg.board.limits).map_err(|e| e.to_string())?;
    let kind = cfg.board.engine.into();
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
    let results = t.lines.iter().filter(|l| l.get("call").is_some()).count();
    let outputs: Vec<String> = t
        .lines
        .iter()
        .filter(|l| l["call"] == "on-event")
        .filter_map(|l| l.get("ok"))
        .flat_map(|ok| ok.as_array().cloned().unwrap_or_default())
        .map(|o| {
            let v = &o["value"];
            let shown = v
                .get("milli")
                .and_then(serde_json::Value::as_i64)
                .map(|m| format!("{}.{:03}", m / 1000, (m % 1000).abs()))
                .unwrap_or_else(|| v.to_string());
            format!("{}={shown}", o["name"].as_str().unwrap_or("?"))
        })
        .collect();
    let last: Vec<&String> = outputs.iter().rev().take(3).collect();
    say(
        cfg,
        &format!(
            "running {} {} on {}: {results} results over {} events; last outputs: {}",
            info.name,
            info.version,
            cfg.board.engine.name(),
            events.events.len(),
            last.iter()
                .rev()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    Ok(())
}

/// Runs the agent loop.
pub async fn run(cfg: GatewayConfig) -> Result<(), String> {
    let client = Client::new(&cfg.server, &cfg.token)?;
    let events = match &cfg.events {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            EventFile::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => EventFile::default(),
    };
    let mut slots = open_slots(&cfg)?;
    let mut pending: Vec<protocol::Report> = Vec::new();
    if let Some(r) = slots.take_boot_report() {
        say(&cfg, &format!("after restart: {r}"));
        pending.push(r.to_protocol([0; 32]));
    }
    if let Some(a) = slots.active() {
        say(
            &cfg,
            &format!(
                "active: {} {} (counter {})",
                a.name, a.version, a.security_counter
            ),
        );
    }
    let mut refused: BTreeSet<[u8; 32]> = BTreeSet::new();
    let mut shown: Option<[u8; 32]> = None;
    let mut polls = 0u32;
    loop {
        polls += 1;
        let msg = CheckIn {
            version: protocol::PROTOCOL_VERSION,
            device: cfg.device.clone(),
            board: cfg.board.name.to_string(),
            installed: slots.active().map(ComponentInfo::installed),
            reports: pending.drain(..).take(protocol::MAX_REPORTS).collect(),
        };
        let mut wait = cfg.poll;
        match client.check_in(&msg).await {
            Err(e) => {
                say(&cfg, &format!("check-in failed: {e}"));
                // Reports are kept for the next check-in.
                pending.extend(msg.reports);
            }
            Ok(reply) => {
                wait = wait.min(Duration::from_millis(u64::from(reply.poll_after_ms)));
                let current = slots.active().map(|a| a.bundle_sha256);
                if let Some(a) = reply
                    .assignment
                    .filter(|a| Some(a.sha256) != current && !refused.contains(&a.sha256))
                {
                    say(
                        &cfg,
                        &format!(
                            "assigned {} {} (counter {}): downloading",
                            a.name, a.version, a.security_counter
                        ),
                    );
                    match download(&cfg, &client, &a).await {
                        Ok(bytes) => {
                            for r in install(&cfg, &mut slots, &bytes, &events) {
                                if !matches!(r, Report::Installed { .. } | Report::Confirmed { .. })
                                {
                                    refused.insert(a.sha256);
                                }
                                pending.push(r.to_protocol(a.sha256));
                            }
                            // Report at once rather than after a whole poll period.
                            wait = Duration::from_millis(50);
                        }
                        Err(e) => say(&cfg, &e),
                    }
                }
            }
        }
        let active = slots.active().map(|a| a.bundle_sha256);
        if active != shown && active.is_some() {
            run_active(&cfg, &mut slots, &events)?;
            shown = active;
        }
        if cfg.max_polls.is_some_and(|m| polls >= m) && pending.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(wait).await;
    }
}
