//! The device's driver of [`tern_agent::Agent`], the one update agent: it carries the
//! agent's requests over smoltcp ([`tern_net`]), runs trials and the active
//! component on wasmi over the board's [`Source`], logs the agent's notices with
//! defmt, and sleeps when neither the agent nor the source has anything to do. Every
//! update decision (what a check-in carries, what to fetch, resume, re-fetch, trial,
//! settle) is the agent's; the bundle streams from the socket straight into the
//! inactive flash slot.
//!
//! The active component runs over the source's events after every change (the whole
//! feed, under QEMU). A live source ([`Source::is_live`]) keeps it running and hands it
//! each new event as it comes; it is dropped before a trial, so that two instances
//! never share the heap.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use defmt::{Display2Format, error, info, warn};
use embedded_storage::nor_flash::NorFlash;
use tern_agent::Agent;
use tern_agent::agent::{Action, Config, Flow, Level, Notice, Request};
use tern_agent::error::AgentError;
use tern_agent::layout::SlotLayout;
use tern_agent::slots::{ComponentInfo, SlotManager};
use tern_core::results::{Outcome, ResultLine};
use tern_core::{Engine, Instance, Output};
use tern_wasmi::WasmiInstance;

use crate::clock;
use crate::{Board, Live, Network, Source};
use tern_net::{Net, NetError, Nic};

/// Longest wait between check-ins; the server's `poll_after_ms` can shorten it.
const POLL_MS: u32 = 2_000;
/// Events a trial must handle before it is confirmed (fewer if the feed is shorter).
const TRIAL_EVENTS: u32 = 3;

/// The active component, kept for a live source's events.
struct Running {
    info: ComponentInfo,
    instance: WasmiInstance,
    /// The number of the next `on-event` result line.
    next: u64,
}

/// Opens the slots (rolling back a trial a restart interrupted) and drives the agent
/// forever; returns only why the slots could not be opened.
pub fn run<F: NorFlash, S: Source, D: Nic, E: core::fmt::Display>(
    board: &'static Board,
    flash: F,
    mut source: S,
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
    let mut net: Option<Net<D>> = None;
    let mut running: Option<Running> = None;
    let live = source.is_live();
    loop {
        let now = clock::now_ms();
        // A live event due now goes to the running component before the agent's next
        // step; the source sees the time even with nothing running (it may keep the
        // event for the next trial).
        let mut live_at = u64::MAX;
        if live {
            match source.poll_live(now) {
                Live::Due(event) => {
                    if let Some(r) = running.take() {
                        running = deliver(board, agent.slots_mut(), r, &mut source, &event);
                    }
                    continue;
                }
                Live::At(at) => live_at = at,
            }
        }
        match agent.poll(now) {
            Action::Notice(n) => log(&n),
            Action::Run(None) => running = None,
            Action::Run(Some(info)) => {
                // The old instance's memory goes back to the heap before the new one loads.
                drop(running.take());
                running = run_active(board, agent.slots_mut(), info, &mut source, true);
            }
            Action::Trial => {
                running = None;
                let engine = crate::engine(table.limits());
                agent.run_trial(now, &engine, &mut source);
            }
            Action::Send(req) => send(board, &mut agent, &mut net, &mut nic, &req),
            Action::WaitUntil(at) => {
                clock::delay_ms(at.min(live_at).saturating_sub(now).max(1));
            }
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
fn send<F: NorFlash, D: Nic, E: core::fmt::Display>(
    board: &'static Board,
    agent: &mut Agent<F>,
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
        match agent.response_data(clock::now_ms(), chunk) {
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

/// Runs the active component: load, instantiate, `init`, then (with `replay`) the
/// source's events, and `health-check`, one result line per call. Returns it for a
/// live source's next events; drops it otherwise.
fn run_active<F: NorFlash, S: Source>(
    board: &Board,
    slots: &mut SlotManager<F>,
    info: ComponentInfo,
    source: &mut S,
    replay: bool,
) -> Option<Running> {
    let wasm = match slots.active_payload() {
        Ok(w) => w,
        Err(e) => {
            error!("active component unreadable: {}", Display2Format(&e));
            return None;
        }
    };
    let events = if replay { source.events().len() } else { 0 };
    info!(
        "running {=str} {} over {=usize} events",
        info.name.as_str(),
        Display2Format(&info.version),
        events
    );
    let started = clock::cycles();
    let engine = crate::engine(board.table.limits());
    // The payload goes as soon as it is loaded: the instance does not need it.
    let component = engine.load(&wasm, &info.grant);
    drop(wasm);
    let mut instance = match component.and_then(|c| engine.instantiate(&c, source.platform())) {
        Ok(i) => i,
        Err(e) => {
            error!("cannot start the active component: {}", Display2Format(&e));
            return None;
        }
    };
    let loaded = clock::cycles();
    result_line(
        "init",
        None,
        instance
            .init(source.config())
            .map(|r| r.map(|()| Vec::new())),
    );
    // Only the calls are timed, not the logging of their results.
    let mut in_events = 0;
    let mut first_event = 0;
    for i in 0..events {
        // One event at a time: the source may hold many.
        let event = source.events()[i].clone();
        source.observe(&event);
        let from = clock::cycles();
        let r = instance.on_event(&event);
        let took = clock::cycles() - from;
        if i == 0 {
            first_event = took;
        }
        in_events += took;
        result_line("on-event", Some(i as u64), r);
    }
    if crate::native::ENABLED && events > 1 {
        native_bench(source, events);
    }
    result_line(
        "health-check",
        None,
        instance.health_check().map(|r| r.map(|()| Vec::new())),
    );
    let running = if source.is_live() {
        Some(Running {
            info,
            instance,
            next: events as u64,
        })
    } else {
        // Its memory is free before the heap is reported.
        drop(instance);
        None
    };
    // SysTick cycles (see `clock::cycles`: instruction counts under `-icount`). The
    // first event is apart: wasmi translates each function on its first call.
    info!(
        "timing: load + instantiate {=u64} cycles, {=usize} events {=u64} cycles, the first {=u64}",
        loaded - started,
        events,
        in_events,
        first_event
    );
    info!(
        "done: {=usize} events; heap {=usize} bytes in use, peak {=usize}",
        events,
        crate::heap::HEAP.used(),
        crate::heap::HEAP.peak()
    );
    running
}

/// Times [`crate::native::Smoother`] over the same events (all but the first: the
/// component's first event also translates its code, so the bench leaves it out on
/// both sides), for `cargo xtask bench --device`.
fn native_bench<S: Source>(source: &mut S, events: usize) {
    let mut native = crate::native::Smoother::new(source.platform(), source.config());
    let mut cycles = 0;
    for i in 0..events {
        let event = source.events()[i].clone();
        source.observe(&event);
        let from = clock::cycles();
        let r = native.on_event(&event);
        if i > 0 {
            cycles += clock::cycles() - from;
        }
        drop(r);
    }
    info!(
        "native: the smoother {=u64} cycles for {=usize} events after the first",
        cycles,
        events - 1
    );
}

/// Hands a live event to the running component. After a fatal error (fuel, trap,
/// memory) the instance only answers `Poisoned`, so the component starts afresh,
/// as `tern run` restarts it: `init` and `health-check` again, without the replay.
fn deliver<F: NorFlash, S: Source>(
    board: &Board,
    slots: &mut SlotManager<F>,
    mut r: Running,
    source: &mut S,
    event: &tern_core::Event,
) -> Option<Running> {
    source.observe(event);
    let result = r.instance.on_event(event);
    let fatal = matches!(&result, Err(e) if e.is_fatal());
    result_line("on-event", Some(r.next), result);
    r.next += 1;
    if !fatal {
        return Some(r);
    }
    warn!(
        "restarting {=str} after a fatal error",
        r.info.name.as_str()
    );
    let Running {
        info,
        instance,
        next,
    } = r;
    drop(instance);
    let mut restarted = run_active(board, slots, info, source, false)?;
    restarted.next = next;
    Some(restarted)
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
