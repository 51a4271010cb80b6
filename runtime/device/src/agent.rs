//! The device's driver of [`tern_agent::Agent`], the one update agent: it carries the
//! agent's requests over smoltcp ([`tern_net`]), runs trials and the active
//! component on wasmi over the sensor feed, logs the agent's notices with defmt, and
//! sleeps when the agent has nothing to do. Every update decision (what a check-in
//! carries, what to fetch, resume, re-fetch, trial, settle) is the agent's; the
//! bundle streams from the socket straight into the inactive flash slot.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use defmt::{Display2Format, error, info, warn};
use tern_agent::Agent;
use tern_agent::agent::{Action, Config, Flow, Level, Notice, Request, Workload};
use tern_agent::error::AgentError;
use tern_agent::layout::SlotLayout;
use tern_agent::slots::{ComponentInfo, SlotManager};
use tern_core::results::{Outcome, ResultLine};
use tern_core::{Engine, Event, Instance, Output, Platform};
use tern_wasmi::WasmiEngine;

use crate::clock;
use crate::feed::Feed;
use crate::flash::DeviceFlash;
use crate::platform::{self, DevicePlatform, Peripherals};
use crate::{Board, Network};
use tern_net::{Net, NetError, Nic};

/// Longest wait between check-ins; the server's `poll_after_ms` can shorten it.
const POLL_MS: u32 = 2_000;
/// Events a trial must handle before it is confirmed (fewer if the feed is shorter).
const TRIAL_EVENTS: u32 = 3;

/// The sensor feed as the agent's workload.
struct FeedWorkload {
    feed: Feed,
    board: Peripherals,
}

impl Workload for FeedWorkload {
    fn config(&self) -> &[(String, String)] {
        &self.feed.config
    }

    fn events(&self) -> &[Event] {
        &self.feed.events
    }

    fn platform(&mut self) -> Box<dyn Platform + Send> {
        platform::reset();
        Box::new(DevicePlatform::new(self.board))
    }

    fn observe(&mut self, event: &Event) {
        platform::observe(&self.board, event);
    }
}

/// Opens the slots (rolling back a trial a restart interrupted) and drives the agent
/// forever; returns only why the slots could not be opened.
pub fn run<const SECTOR: usize, D: Nic, E: core::fmt::Display>(
    board: &'static Board,
    flash: DeviceFlash<SECTOR>,
    feed: Feed,
    mut nic: impl FnMut(&Network) -> Result<D, E>,
) -> AgentError {
    let table = board.table;
    let slots = match SlotLayout::from_board(table)
        .map_err(AgentError::from)
        .and_then(|layout| SlotManager::open(flash, layout, table))
    {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut agent = Agent::new(
        Config {
            device: board.device_id.to_string(),
            poll_ms: POLL_MS,
            trial_events: TRIAL_EVENTS,
        },
        slots,
    );
    let mut workload = FeedWorkload {
        feed,
        board: board.peripherals,
    };
    let mut net: Option<Net<D>> = None;
    loop {
        let now = clock::now_ms();
        match agent.poll(now) {
            Action::Notice(n) => log(&n),
            Action::Run(None) => {}
            Action::Run(Some(info)) => run_active(board, agent.slots_mut(), &info, &workload.feed),
            Action::Trial => {
                let engine = WasmiEngine::new(table.limits);
                agent.run_trial(now, &engine, &mut workload);
            }
            Action::Send(req) => send(board, &mut agent, &mut net, &mut nic, &req),
            Action::WaitUntil(at) => clock::delay_ms(at.saturating_sub(now).max(1)),
        }
    }
}

fn log(n: &Notice) {
    match n.level() {
        Level::Info => info!("{}", Display2Format(n)),
        Level::Warn => warn!("{}", Display2Format(n)),
        Level::Error => error!("{}", Display2Format(n)),
    }
}

/// Sends `req` over smoltcp and feeds the answer to the agent.
fn send<const SECTOR: usize, D: Nic, E: core::fmt::Display>(
    board: &'static Board,
    agent: &mut Agent<DeviceFlash<SECTOR>>,
    net: &mut Option<Net<D>>,
    nic: &mut impl FnMut(&Network) -> Result<D, E>,
    req: &Request,
) {
    if net.is_none() {
        let started = nic(&board.network)
            .map_err(|e| alloc::format!("network: {e}"))
            .and_then(|d| {
                Net::new(board.network.config(), d).map_err(|e| alloc::format!("network: {e}"))
            });
        match started {
            Ok(n) => *net = Some(n),
            Err(e) => {
                agent.transport_failed(clock::now_ms(), &e);
                return;
            }
        }
    }
    let Some(net) = net.as_mut() else { return };
    let request = tern_net::Request {
        method: req.method.as_str(),
        path: &req.path,
        token: board.device_token,
        content_type: (!req.body.is_empty()).then_some("application/octet-stream"),
        body: &req.body,
        range_from: req.range_from,
    };
    let mut head = false;
    let result = net.request(&request, &mut |status, chunk| {
        if !head {
            head = true;
            agent.response_head(status);
        }
        match agent.response_data(chunk) {
            Flow::Continue => Ok(()),
            Flow::Stop => Err("the agent stopped reading".to_string()),
        }
    });
    let now = clock::now_ms();
    match result {
        Ok(r) => {
            if !head {
                agent.response_head(r.status);
            }
            agent.response_end(now);
        }
        Err(NetError::Aborted(_)) => agent.response_end(now),
        Err(e) => agent.transport_failed(now, &alloc::format!("{e}")),
    }
}

/// Runs the active component over the whole feed, one result line per call.
fn run_active<const SECTOR: usize>(
    board: &Board,
    slots: &mut SlotManager<DeviceFlash<SECTOR>>,
    info: &ComponentInfo,
    feed: &Feed,
) {
    let wasm = match slots.active_payload() {
        Ok(w) => w,
        Err(e) => {
            error!("active component unreadable: {}", Display2Format(&e));
            return;
        }
    };
    info!(
        "running {=str} {} over {=usize} events",
        info.name.as_str(),
        Display2Format(&info.version),
        feed.events.len()
    );
    let started = clock::cycles();
    let engine = WasmiEngine::new(board.table.limits);
    let mut inst = match engine
        .load(&wasm, &info.grant)
        .and_then(|c| engine.instantiate(&c, Box::new(DevicePlatform::new(board.peripherals))))
    {
        Ok(i) => i,
        Err(e) => {
            error!("cannot start the active component: {}", Display2Format(&e));
            return;
        }
    };
    drop(wasm);
    let loaded = clock::cycles();
    platform::reset();
    result_line(
        "init",
        None,
        inst.init(&feed.config).map(|r| r.map(|()| Vec::new())),
    );
    // Only the calls are timed, not the logging of their results.
    let mut in_events = 0;
    for (i, event) in feed.events.iter().enumerate() {
        platform::observe(&board.peripherals, event);
        let from = clock::cycles();
        let r = inst.on_event(event);
        in_events += clock::cycles() - from;
        result_line("on-event", Some(i as u64), r);
    }
    result_line(
        "health-check",
        None,
        inst.health_check().map(|r| r.map(|()| Vec::new())),
    );
    drop(inst);
    // SysTick cycles (see `clock::cycles`: instruction counts under `-icount`).
    info!(
        "timing: load + instantiate {=u64} cycles, {=usize} events {=u64} cycles",
        loaded - started,
        feed.events.len(),
        in_events
    );
    info!(
        "done: {=usize} events; heap {=usize} bytes in use, peak {=usize}",
        feed.events.len(),
        crate::heap::HEAP.used(),
        crate::heap::HEAP.peak()
    );
}

/// Logs one export call's result as [`ResultLine`] writes it: the form the end-to-end
/// test and the demo compare with the server's Wasmtime.
fn result_line(
    call: &str,
    event: Option<u64>,
    r: Result<Result<Vec<Output>, String>, tern_core::Error>,
) {
    let outcome = match &r {
        Ok(Ok(outputs)) => Outcome::Ok(outputs),
        Ok(Err(message)) => Outcome::ComponentError(message),
        Err(e) => Outcome::RuntimeError(e),
    };
    let line = ResultLine {
        call,
        event,
        outcome,
    };
    match &r {
        Ok(Ok(_)) => info!("{}", Display2Format(&line)),
        Ok(Err(_)) => warn!("{}", Display2Format(&line)),
        Err(_) => error!("{}", Display2Format(&line)),
    }
}
