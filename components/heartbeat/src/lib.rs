//! Heartbeat: a component written against a world of its own
//! (`example:heartbeat/heartbeat`, `wit/heartbeat.wit`) with wit-bindgen alone, no
//! Tern SDK. It reaches the host's log through `wasi:logging/logging` and its clock
//! through `wasi:clocks/monotonic-clock`, and keeps its state in `tern:edge/kv`.
//!
//! On every event it counts a beat, reads the monotonic clock, and reports
//!
//! | output | value |
//! |---|---|
//! | `beats` | events seen since the component was installed (kv), in milli-units |
//! | `monotonic` | flag: the clock did not go back since the last event |
//!
//! Both are the same on every host, whatever its clock reads; the clock's readings go
//! to the log only. `health-check` fails if the clock claims no resolution.
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../runtime/wit", "wit"],
        world: "example:heartbeat/heartbeat",
        // WASI interfaces too: wit-bindgen otherwise expects the `wasi` crate.
        generate_all,
    });
}

use bindings::tern::edge::kv;
use bindings::tern::edge::types::{Event, Output, Value};
use bindings::wasi::clocks::monotonic_clock;
use bindings::wasi::logging::logging::{Level, log};

/// Where this component's log records say they come from.
const CONTEXT: &str = "heartbeat";

/// A `u64` kept in kv as 8 little-endian bytes; 0 when absent or malformed.
fn load(key: &str) -> u64 {
    kv::get(key)
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_le_bytes)
}

fn store(key: &str, value: u64) -> Result<(), String> {
    kv::set(key, &value.to_le_bytes())
}

/// `n` in decimal, without `core::fmt` (costly under an interpreter).
fn decimal(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

struct Heartbeat;

impl bindings::Guest for Heartbeat {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        log(Level::Info, CONTEXT, "started");
        Ok(())
    }

    fn on_event(event: Event) -> Result<Vec<Output>, String> {
        let now = monotonic_clock::now();
        let last = load("last-ns");
        let beats = load("beats") + 1;
        store("beats", beats)?;
        store("last-ns", now)?;
        let kind = match event {
            Event::Sample(_) => "sample",
            Event::Frame(_) => "frame",
            Event::Tick(_) => "tick",
        };
        let mut line = String::from("beat ");
        line.push_str(&decimal(beats));
        line.push_str(" (");
        line.push_str(kind);
        line.push_str(") at ");
        line.push_str(&decimal(now));
        line.push_str(" ns");
        log(Level::Debug, CONTEXT, &line);
        Ok(alloc::vec![
            Output {
                name: String::from("beats"),
                value: Value::Milli(beats.saturating_mul(1000) as i64),
                unit: None,
            },
            Output {
                name: String::from("monotonic"),
                value: Value::Flag(now >= last),
                unit: None,
            },
        ])
    }

    fn health_check() -> Result<(), String> {
        if monotonic_clock::resolution() == 0 {
            return Err(String::from("the monotonic clock has no resolution"));
        }
        log(Level::Info, CONTEXT, "healthy");
        Ok(())
    }
}

// The export glue is generated unsafe code, expanded here.
#[allow(unsafe_code)]
mod exports {
    use super::{Heartbeat, bindings};
    bindings::export!(Heartbeat with_types_in bindings);
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
