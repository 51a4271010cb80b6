//! Tern firmware for QEMU mps2-an386: verifies an embedded signed bundle against the board table and runs it on wasmi.
//!
//! This first slice has no network and no flash slots: the bundle is compiled in, and
//! events come from a built-in list. Everything after that is the real device path:
//! `tern_core::bundle::parse` and `tern_core::policy::check_install` against the
//! board's static table, then `tern-wasmi` with the resulting grant and the board's
//! limits. Logs are defmt frames over semihosting; the exit status goes to QEMU.
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod platform;

/// The board table generated from `boards/qemu-mps2-an386/board.toml` by `tern-board`.
mod board {
    #![allow(
        dead_code,
        reason = "the generated `ALL` list is for multi-board hosts"
    )]
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt::{Display2Format, error, info, warn};
use defmt_semihosting as _;
use tern_core::bundle;
use tern_core::policy::check_install;
use tern_core::{Engine, Event, Instance, Output, Sample, Value};
use tern_wasmi::WasmiEngine;

use crate::board::{HEAP_BYTES, QEMU_MPS2_AN386 as BOARD};
use crate::platform::DevicePlatform;

/// The signed bundle, embedded by build.rs (`TERN_FW_BUNDLE`, default the demo's
/// `target/bundles/smoother.tern`). Untrusted until `check_install` says otherwise.
static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bundle.tern"));

/// Config passed to the component's `init`, the smoother example's keys.
const CONFIG: &[(&str, &str)] = &[("alpha", "0.25"), ("sensor", "temp-0"), ("unit", "degC")];

/// The built-in event stream: the start of `components/smoother/events.jsonl`.
fn events() -> Vec<Event> {
    let sample = |sensor: &str, milli, at_ms| {
        Event::Sample(Sample {
            sensor: sensor.to_string(),
            milli,
            at_ms,
        })
    };
    vec![
        sample("temp-0", 21_500, 1000),
        sample("temp-0", 21_620, 2000),
        sample("temp-0", 21_580, 3000),
        sample("temp-1", 18_300, 4000),
        sample("temp-0", 22_900, 4250),
        Event::Tick(5250),
        sample("temp-0", -1_500, 7600),
        Event::Frame(vec![0x02, 0x01, 0x06, 0x1b, 0xff, 0x99, 0x04]),
        Event::Tick(12_950),
    ]
}

#[entry]
fn main() -> ! {
    heap::init();
    info!(
        "tern firmware: board {=str}, engine wasmi, heap {=usize} bytes, bundle {=usize} bytes",
        BOARD.name,
        HEAP_BYTES,
        BUNDLE.len()
    );
    let ok = run_bundle() && tamper_is_rejected();
    info!(
        "heap: peak {=usize} bytes of {=usize} ({=usize} in use at exit)",
        heap::HEAP.peak(),
        HEAP_BYTES,
        heap::HEAP.used()
    );
    if ok {
        info!("done: exit 0");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        error!("done: exit 1");
        debug::exit(debug::EXIT_FAILURE);
    }
    // Only reached without a debugger or semihosting host to stop us.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Verifies the embedded bundle, then runs `init`, the events and `health-check`.
/// Returns whether everything succeeded.
fn run_bundle() -> bool {
    let (header, payload, grant) = match verify(BUNDLE) {
        Ok(verified) => verified,
        Err(reason) => {
            error!("bundle refused: {=str}", reason.as_str());
            return false;
        }
    };
    let m = &header.manifest;
    info!(
        "bundle: {=str} {} counter {=u64}, payload {=u32} bytes, {=usize} signature(s): accepted",
        m.name.as_str(),
        Display2Format(&m.version),
        m.security_counter,
        m.payload_len,
        header.signatures.len()
    );
    for iface in grant.interfaces() {
        info!("granted: {=str}", iface.name());
    }

    let engine = WasmiEngine::new(BOARD.limits);
    let component = match engine.load(payload, &grant) {
        Ok(c) => c,
        Err(e) => {
            error!("load failed: {}", Display2Format(&e));
            return false;
        }
    };
    info!(
        "loaded: heap {=usize} bytes in use, peak {=usize}",
        heap::HEAP.used(),
        heap::HEAP.peak()
    );
    let mut instance = match engine.instantiate(&component, Box::new(DevicePlatform::default())) {
        Ok(i) => i,
        Err(e) => {
            error!("instantiate failed: {}", Display2Format(&e));
            return false;
        }
    };
    info!(
        "instantiated: heap {=usize} bytes in use, peak {=usize}",
        heap::HEAP.used(),
        heap::HEAP.peak()
    );

    let config: Vec<(String, String)> = CONFIG
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut ok = report(
        "init",
        instance.init(&config).map(|r| r.map(|()| Vec::new())),
    );
    for event in events() {
        platform::observe(&event);
        show_event(&event);
        ok &= report("on-event", instance.on_event(&event));
    }
    ok &= report(
        "health-check",
        instance.health_check().map(|r| r.map(|()| Vec::new())),
    );
    ok
}

/// Flips one byte of the payload and one of the signed header, and checks that each
/// copy is refused before anything reaches the engine.
fn tamper_is_rejected() -> bool {
    let header_len = match bundle::HeaderDecoder::new().feed(BUNDLE) {
        Ok(Some((h, _))) => h.len(),
        _ => return false,
    };
    // The last payload byte (hash check) and a byte inside the signed header
    // (signature check): the two ways a forger or a bad download can go wrong.
    let cases = [
        ("payload byte", BUNDLE.len() - 1),
        ("header byte", header_len / 2),
    ];
    let mut ok = true;
    for (what, at) in cases {
        let mut copy = BUNDLE.to_vec();
        copy[at] ^= 0x01;
        match verify(&copy) {
            Err(reason) => info!(
                "tampered bundle ({=str} {=usize} flipped) rejected: {=str}",
                what,
                at,
                reason.as_str()
            ),
            Ok(_) => {
                error!(
                    "tampered bundle ({=str} {=usize} flipped) was ACCEPTED",
                    what, at
                );
                ok = false;
            }
        }
    }
    ok
}

/// The device's install decision, in the order an agent streaming a download makes
/// it: decode the header, run `check_install` on it (signatures, target, WIT version,
/// counter, capabilities, slot size) before any payload byte is used, then hash the
/// payload against the signed manifest.
fn verify(bytes: &[u8]) -> Result<(bundle::Header, &[u8], tern_core::Grant), String> {
    let mut decoder = bundle::HeaderDecoder::new();
    let (header, payload) = match decoder.feed(bytes) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Err(decoder.truncated().to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let grant = check_install(&header, &BOARD, None).map_err(|e| e.to_string())?;
    let mut checker = header.payload_checker();
    checker.update(payload).map_err(|e| e.to_string())?;
    checker.finish().map_err(|e| e.to_string())?;
    Ok((header, payload, grant))
}

/// Logs what an export call returned; true unless the runtime or the component failed.
fn report(call: &str, result: Result<Result<Vec<Output>, String>, tern_core::Error>) -> bool {
    match result {
        Ok(Ok(outputs)) => {
            if outputs.is_empty() {
                info!("  {=str}: ok", call);
            }
            for o in &outputs {
                show_output(call, o);
            }
            true
        }
        Ok(Err(message)) => {
            // The component's own error value: part of its normal answers.
            warn!("  {=str}: component error: {=str}", call, message.as_str());
            true
        }
        Err(e) => {
            error!("  {=str}: runtime error: {}", call, Display2Format(&e));
            false
        }
    }
}

fn show_event(event: &Event) {
    match event {
        Event::Sample(s) => {
            let (sign, whole, frac) = milli_parts(s.milli);
            info!(
                "event: sample {=str} = {=str}{=u64}.{=u64:03} @ {=u64} ms",
                s.sensor.as_str(),
                sign,
                whole,
                frac,
                s.at_ms
            );
        }
        Event::Tick(t) => info!("event: tick @ {=u64} ms", t),
        Event::Frame(f) => info!("event: frame {=[u8]:02x}", f.as_slice()),
    }
}

fn show_output(call: &str, o: &Output) {
    let name = o.name.as_str();
    match &o.value {
        Value::Milli(m) => {
            let (sign, whole, frac) = milli_parts(*m);
            let unit = o.unit.as_deref().unwrap_or("");
            info!(
                "  {=str} -> {=str} = {=str}{=u64}.{=u64:03} {=str}",
                call, name, sign, whole, frac, unit
            );
        }
        Value::Flag(b) => info!("  {=str} -> {=str} = {=bool}", call, name, b),
        Value::Text(t) => info!("  {=str} -> {=str} = {=str}", call, name, t.as_str()),
    }
}

/// Splits milli-units into sign, whole units and thousandths, for printing without floats.
fn milli_parts(milli: i64) -> (&'static str, u64, u64) {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    (sign, abs / 1000, abs % 1000)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    error!("panic: {}", Display2Format(info));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
