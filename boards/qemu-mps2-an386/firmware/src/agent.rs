//! The device agent: checks in with `tern serve`, downloads an assigned bundle
//! straight into the inactive flash slot, runs its trial on wasmi, confirms it or rolls
//! it back, reports, and runs the active component over the sensor feed.
//!
//! The decisions are the gateway's (`runtime/cli/src/gateway`), made by the same
//! `tern-agent` code: the slot manager checks the signed header against this board's
//! compiled-in table before it erases anything, hashes the payload as it is written,
//! and keeps the previous component bootable until the new one is confirmed.
//! What differs is the transport (smoltcp, [`crate::net`]) and that nothing is
//! buffered whole: the bundle streams from the socket into flash.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use defmt::{Display2Format, error, info, warn};
use embedded_svc::io::Write as _;
use embedded_svc::ota::{Ota, OtaUpdate};
use tern_agent::error::AgentError;
use tern_agent::layout::SlotLayout;
use tern_agent::slots::{ComponentInfo, SlotManager};
use tern_agent::supervisor::{Decision, Report, Supervisor, TrialPolicy};
use tern_core::bundle::BundleError;
use tern_core::protocol::{self, Assignment, CheckIn, CheckInReply};
use tern_core::{Engine, Instance, Output, Value};
use tern_wasmi::WasmiEngine;

use crate::board::{DEVICE_ID, DEVICE_TOKEN, QEMU_MPS2_AN386 as BOARD, net as netcfg};
use crate::clock;
use crate::feed::Feed;
use crate::flash::DeviceFlash;
use crate::net::{Ipv4Mode, Net, NetConfig, Request};
use crate::platform::{self, DevicePlatform};

/// Longest wait between check-ins; the server's `poll_after_ms` can shorten it.
const POLL_MS: u64 = 2_000;
/// Events a trial must handle before it is confirmed (fewer if the feed is shorter).
const TRIAL_EVENTS: u32 = 3;
/// Download attempts (each resuming where the last stopped) before giving up until
/// the next check-in.
const DOWNLOAD_ATTEMPTS: u32 = 6;
/// Bundles refused or rolled back that the agent remembers, so it does not fetch them
/// again at every check-in. A reassignment on the server clears nothing here, but a
/// restart does: the set lives in RAM.
const REFUSED_MAX: usize = 8;

type Slots = SlotManager<DeviceFlash>;

/// The agent's state between check-ins.
pub struct Agent {
    slots: Slots,
    feed: Feed,
    net: Option<Net>,
    /// Reports not yet acknowledged by a check-in reply, oldest first.
    pending: heapless::Deque<protocol::Report, { protocol::MAX_REPORTS }>,
    refused: heapless::Deque<[u8; 32], REFUSED_MAX>,
    /// Run the active component over the feed at the next opportunity.
    rerun: bool,
}

impl Agent {
    /// Opens the slots (rolling back a trial a restart interrupted) and takes the feed.
    pub fn new(flash: DeviceFlash, feed: Feed) -> Result<Agent, AgentError> {
        let layout = SlotLayout::from_board(&BOARD)?;
        let slots = SlotManager::open(flash, layout, &BOARD)?;
        let mut agent = Agent {
            pending: heapless::Deque::new(),
            refused: heapless::Deque::new(),
            feed,
            net: None,
            rerun: true,
            slots: {
                if let Some(fault) = slots.boot_fault() {
                    warn!("flash: {}", Display2Format(fault));
                }
                slots
            },
        };
        if let Some(r) = agent.slots.take_boot_report() {
            warn!("after restart: {}", Display2Format(&r));
            agent.queue(r.to_protocol([0; 32]));
        }
        match agent.slots.active() {
            Some(a) => info!(
                "active: {=str} {} (counter {=u64}) in slot {=str}",
                a.name.as_str(),
                Display2Format(&a.version),
                a.security_counter,
                agent.slots.layout().slots[a.slot.index].name
            ),
            None => info!("no component installed yet"),
        }
        Ok(agent)
    }

    /// Checks in forever.
    pub fn run(&mut self) -> ! {
        loop {
            if self.rerun {
                self.rerun = false;
                self.run_active();
            }
            let wait = self.check_in();
            clock::delay_ms(wait);
        }
    }

    fn queue(&mut self, report: protocol::Report) {
        if self.pending.is_full() {
            // The oldest outcome is the least useful to the fleet view.
            self.pending.pop_front();
        }
        let _ = self.pending.push_back(report);
    }

    fn net(&mut self) -> Option<&mut Net> {
        if self.net.is_none() {
            match Net::new(net_config()) {
                Ok(n) => self.net = Some(n),
                Err(e) => error!("network: {}", Display2Format(&e)),
            }
        }
        self.net.as_mut()
    }

    /// One check-in, and the update it may bring. Returns the wait before the next.
    fn check_in(&mut self) -> u64 {
        let msg = CheckIn {
            version: protocol::PROTOCOL_VERSION,
            device: DEVICE_ID.to_string(),
            board: BOARD.name.to_string(),
            installed: self.slots.active().map(ComponentInfo::installed),
            reports: self.pending.iter().cloned().collect(),
        };
        let body = match msg.encode() {
            Ok(b) => b,
            Err(e) => {
                // Only an over-long reason could do this; drop the reports rather
                // than never checking in again.
                error!(
                    "check-in does not encode ({}): reports dropped",
                    Display2Format(&e)
                );
                self.pending.clear();
                return POLL_MS;
            }
        };
        let Some(net) = self.net() else {
            return POLL_MS;
        };
        let mut reply: heapless::Vec<u8, { protocol::MAX_REPLY_LEN }> = heapless::Vec::new();
        let req = Request {
            method: "POST",
            path: "/device/v1/check-in",
            token: DEVICE_TOKEN,
            content_type: Some("application/octet-stream"),
            body: &body,
            range_from: None,
        };
        let status = net.request(&req, &mut |status, chunk| {
            if status != 200 {
                // An error page, kept for the message: cut rather than fail.
                let room = reply.capacity() - reply.len();
                let _ = reply.extend_from_slice(&chunk[..chunk.len().min(room)]);
                return Ok(());
            }
            reply
                .extend_from_slice(chunk)
                .map_err(|_| "check-in reply longer than the protocol allows".to_string())
        });
        let reply = match status {
            Ok(r) if r.status == 200 => match CheckInReply::decode(&reply) {
                Ok(reply) => reply,
                Err(e) => {
                    error!("check-in reply refused: {}", Display2Format(&e));
                    return POLL_MS;
                }
            },
            Ok(r) => {
                error!(
                    "check-in refused: HTTP {=u16}: {=str}",
                    r.status,
                    core::str::from_utf8(&reply).unwrap_or("(binary body)")
                );
                return POLL_MS;
            }
            Err(e) => {
                // The connection is dropped after an error; the next request opens one.
                warn!("check-in failed: {}", Display2Format(&e));
                return POLL_MS;
            }
        };
        // The server has the reports now.
        for _ in 0..msg.reports.len() {
            self.pending.pop_front();
        }
        let wait = POLL_MS.min(u64::from(reply.poll_after_ms));
        let current = self.slots.active().map(|a| a.bundle_sha256);
        match reply.assignment {
            Some(a)
                if Some(a.sha256) != current && !self.refused.iter().any(|r| *r == a.sha256) =>
            {
                self.update(&a);
                // Report at once rather than after a whole poll period.
                0
            }
            _ => wait,
        }
    }

    /// Downloads, stores, trials and settles `a`, queueing the reports.
    fn update(&mut self, a: &Assignment) {
        info!(
            "assigned {=str} {} (counter {=u64}, {=u32} bytes): downloading",
            a.name.as_str(),
            Display2Format(&a.version),
            a.security_counter,
            a.len
        );
        // A payload that does not hash to its signed value is fetched once more
        // (corruption in transit); the second time it is refused.
        let mut outcome = self.download(a);
        if matches!(
            outcome,
            Err(Failure::Refused(AgentError::Bundle(
                BundleError::PayloadHashMismatch
            )))
        ) {
            warn!("payload does not match its signature: fetching it once more");
            outcome = self.download(a);
        }
        let info = match outcome {
            Ok(info) => info,
            Err(Failure::Refused(reason)) => {
                error!(
                    "rejected {=str} {}: {}",
                    a.name.as_str(),
                    Display2Format(&a.version),
                    Display2Format(&reason)
                );
                self.refuse(a.sha256, Report::Rejected { reason });
                return;
            }
            Err(Failure::Transfer(why)) => {
                warn!(
                    "download failed: {=str}; trying again at the next check-in",
                    why.as_str()
                );
                return;
            }
        };
        info!(
            "verified and staged {=str} {} in slot {=str}",
            info.name.as_str(),
            Display2Format(&info.version),
            self.slots.layout().slots[info.slot.index].name
        );
        self.queue(
            Report::Installed {
                component: info.id(),
            }
            .to_protocol(a.sha256),
        );
        let report = self.trial();
        match &report {
            Report::Confirmed { component } => info!(
                "confirmed {=str} {}: now active",
                component.name.as_str(),
                Display2Format(&component.version)
            ),
            other => error!("{}", Display2Format(other)),
        }
        if matches!(report, Report::Confirmed { .. }) {
            self.queue(report.to_protocol(a.sha256));
        } else {
            self.refuse(a.sha256, report);
        }
        self.rerun = true;
    }

    fn refuse(&mut self, sha256: [u8; 32], report: Report) {
        self.queue(report.to_protocol(sha256));
        if self.refused.is_full() {
            self.refused.pop_front();
        }
        let _ = self.refused.push_back(sha256);
    }

    /// Streams the bundle from the server into the inactive slot through
    /// embedded-svc's OTA API, resuming with `Range` after a dropped connection.
    fn download(&mut self, a: &Assignment) -> Result<ComponentInfo, Failure> {
        if self.net().is_none() {
            return Err(Failure::Transfer("no network".to_string()));
        }
        let Agent { slots, net, .. } = self;
        let Some(net) = net.as_mut() else {
            return Err(Failure::Transfer("no network".to_string()));
        };
        let mut writer = slots.initiate_update().map_err(Failure::Refused)?;
        let path = format!("/device/v1/bundles/{}", a.bundle_id);
        let total = a.len as usize;
        let mut received = 0usize;
        let mut attempts = 0;
        let mut last_shown = 0;
        while received < total {
            attempts += 1;
            if attempts > DOWNLOAD_ATTEMPTS {
                return Err(Failure::Transfer(format!(
                    "{received} of {total} bytes after {DOWNLOAD_ATTEMPTS} attempts"
                )));
            }
            let mut refused: Option<AgentError> = None;
            // An error page (not 200/206) is kept for the message, never written.
            let mut page: heapless::Vec<u8, 256> = heapless::Vec::new();
            let req = Request {
                method: "GET",
                path: &path,
                token: DEVICE_TOKEN,
                content_type: None,
                body: &[],
                range_from: (received > 0).then_some(received as u64),
            };
            let result = net.request(&req, &mut |status, chunk| {
                if status != 200 && status != 206 {
                    let room = page.capacity() - page.len();
                    let _ = page.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    return Ok(());
                }
                let take = chunk.len().min(total - received);
                if let Err(e) = writer.write_all(&chunk[..take]) {
                    refused = Some(e);
                    return Err("refused by the slot manager".to_string());
                }
                received += take;
                if received - last_shown >= 16 * 1024 || received == total {
                    last_shown = received;
                    info!("downloading: {=usize} of {=usize} bytes", received, total);
                }
                Ok(())
            });
            if let Some(reason) = refused {
                return Err(Failure::Refused(reason));
            }
            match result {
                Ok(r) if r.status == 200 || r.status == 206 => {}
                Ok(r) => {
                    return Err(Failure::Transfer(format!(
                        "server answered HTTP {}: {}",
                        r.status,
                        core::str::from_utf8(&page).unwrap_or("(binary body)")
                    )));
                }
                Err(e) => warn!(
                    "download interrupted at {=usize} of {=usize} bytes ({}): resuming",
                    received,
                    total,
                    Display2Format(&e)
                ),
            }
        }
        // embedded-svc's `finish`: the payload hash is checked and the slot staged.
        let staged = OtaUpdate::finish(writer).map_err(Failure::Refused)?;
        let info = staged.info().clone();
        if info.bundle_sha256 != a.sha256 {
            // Verified and signed, but not the bundle the server assigned: refuse it
            // rather than run something nobody asked for. The staged slot is simply
            // overwritten by the next update.
            return Err(Failure::Transfer(
                "the bytes verify but are not the assigned bundle (SHA-256 differs)".to_string(),
            ));
        }
        Ok(info)
    }

    /// Runs the staged component's trial on wasmi and settles it.
    fn trial(&mut self) -> Report {
        let info = match self.slots.start_trial() {
            Ok(i) => i,
            Err(reason) => return Report::Rejected { reason },
        };
        let policy = TrialPolicy {
            events_required: TRIAL_EVENTS.min(self.feed.events.len() as u32),
            ..TrialPolicy::default()
        };
        let mut sup = Supervisor::new(info.id(), policy);
        info!(
            "trial of {=str} {}",
            info.name.as_str(),
            Display2Format(&info.version)
        );
        match self.slots.trial_payload() {
            Ok(wasm) => trial_run(&mut sup, &wasm, &info, &self.feed),
            Err(e) => {
                sup.loaded(Err(tern_core::Error::Engine(e.to_string())));
            }
        }
        if matches!(sup.decision(), Decision::Pending) {
            sup.deadline_passed();
        }
        match sup.settle(&mut self.slots) {
            Ok(Some(r)) => r,
            Ok(None) => Report::Rejected {
                reason: AgentError::UpdateAborted,
            },
            Err(reason) => Report::Rejected { reason },
        }
    }

    /// Runs the active component over the whole feed, one result line per call.
    fn run_active(&mut self) {
        let Some(info) = self.slots.active().cloned() else {
            return;
        };
        let wasm = match self.slots.active_payload() {
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
            self.feed.events.len()
        );
        let started = clock::cycles();
        let engine = WasmiEngine::new(BOARD.limits);
        let mut inst = match engine
            .load(&wasm, &info.grant)
            .and_then(|c| engine.instantiate(&c, Box::new(DevicePlatform::default())))
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
            inst.init(&self.feed.config).map(|r| r.map(|()| Vec::new())),
        );
        // Only the calls are timed, not the logging of their results.
        let mut in_events = 0;
        for (i, event) in self.feed.events.iter().enumerate() {
            platform::observe(event);
            let from = clock::cycles();
            let r = inst.on_event(event);
            in_events += clock::cycles() - from;
            result_line("on-event", Some(i), r);
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
            self.feed.events.len(),
            in_events
        );
        info!(
            "done: {=usize} events; heap {=usize} bytes in use, peak {=usize}",
            self.feed.events.len(),
            crate::heap::HEAP.used(),
            crate::heap::HEAP.peak()
        );
    }
}

/// Why an update did not reach its trial.
enum Failure {
    /// The slot manager refused the bundle: reported, and not fetched again.
    Refused(AgentError),
    /// The transfer failed: tried again at the next check-in, not reported.
    Transfer(String),
}

fn net_config() -> NetConfig {
    NetConfig {
        mac: netcfg::MAC,
        ipv4: if netcfg::DHCP {
            Ipv4Mode::Dhcp
        } else {
            Ipv4Mode::Static {
                address: netcfg::ADDRESS,
                prefix_len: netcfg::PREFIX_LEN,
                gateway: netcfg::GATEWAY,
            }
        },
        server: netcfg::SERVER,
    }
}

/// The trial: load, init, health check, then feed events until the supervisor decides.
fn trial_run(sup: &mut Supervisor, wasm: &[u8], info: &ComponentInfo, feed: &Feed) {
    let engine = WasmiEngine::new(BOARD.limits);
    let component = match engine.load(wasm, &info.grant) {
        Ok(c) => c,
        Err(e) => {
            sup.loaded(Err(e));
            return;
        }
    };
    let mut inst = match engine.instantiate(&component, Box::new(DevicePlatform::default())) {
        Ok(i) => i,
        Err(e) => {
            sup.loaded(Err(e));
            return;
        }
    };
    sup.loaded(Ok(()));
    platform::reset();
    sup.init(inst.init(&feed.config));
    sup.health_check(inst.health_check());
    for event in &feed.events {
        if !matches!(sup.decision(), Decision::Pending) {
            break;
        }
        platform::observe(event);
        let r = inst.on_event(event);
        if let Err(e) = &r {
            warn!("trial: on-event: {}", Display2Format(e));
        }
        sup.event(&r);
    }
}

/// Logs one export call's result in the form the end-to-end test and the demo compare
/// with the server's Wasmtime (see the firmware README):
/// `result <call>[ #<event>]: ok [<name>=<value>[ <unit>], ...]`, or
/// `result <call>[ #<event>]: component error: <message>` / `runtime error: <error>`.
fn result_line(
    call: &str,
    event: Option<usize>,
    r: Result<Result<Vec<Output>, String>, tern_core::Error>,
) {
    let mut line = String::new();
    let _ = write!(line, "result {call}");
    if let Some(i) = event {
        let _ = write!(line, " #{i}");
    }
    match r {
        Ok(Ok(outputs)) => {
            line.push_str(": ok");
            for (n, o) in outputs.iter().enumerate() {
                line.push_str(if n == 0 { " " } else { ", " });
                show_output(&mut line, o);
            }
            info!("{=str}", line.as_str());
        }
        Ok(Err(message)) => {
            let _ = write!(line, ": component error: {message}");
            warn!("{=str}", line.as_str());
        }
        Err(e) => {
            let _ = write!(line, ": runtime error: {e}");
            error!("{=str}", line.as_str());
        }
    }
}

fn show_output(line: &mut String, o: &Output) {
    let _ = write!(line, "{}=", o.name);
    match &o.value {
        Value::Milli(m) => {
            let sign = if *m < 0 { "-" } else { "" };
            let abs = m.unsigned_abs();
            let _ = write!(line, "{sign}{}.{:03}", abs / 1000, abs % 1000);
        }
        Value::Flag(b) => {
            let _ = write!(line, "{b}");
        }
        Value::Text(t) => {
            let _ = write!(line, "{t:?}");
        }
    }
    if let Some(unit) = &o.unit {
        let _ = write!(line, " {unit}");
    }
}
