//! Heartbeat: a component written against a world of its own
//! (`example:heartbeat/heartbeat`, `wit/heartbeat.wit`) with wit-bindgen alone, no
//! Tern SDK, that imports WASI interfaces only: the host's log through
//! `wasi:logging/logging`, its clock through `wasi:clocks/monotonic-clock`, and its
//! state in a `wasi:keyvalue/store` bucket (a resource: each event opens the bucket
//! and drops it when done).
//!
//! On every event it counts a beat, reads the monotonic clock, and reports
//!
//! | output | value |
//! |---|---|
//! | `beats` | events seen since the component was installed (kv), in milli-units |
//! | `monotonic` | flag: the clock did not go back since the last event |
//! | `keys` | how many keys the bucket lists, in milli-units |
//! | `store` | flag: a scratch key existed after `set` and not after `delete` |
//!
//! All are the same on every host, whatever its clock reads; the clock's readings go
//! to the log only. `health-check` fails if the clock claims no resolution or the
//! store cannot be opened.
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

use bindings::tern::edge::types::{Event, Output, Value};
use bindings::wasi::clocks::monotonic_clock;
use bindings::wasi::keyvalue::store::{self, Bucket};
use bindings::wasi::logging::logging::{Level, log};

/// Where this component's log records say they come from.
const CONTEXT: &str = "heartbeat";

/// A store error as text.
fn why(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => String::from("no such store"),
        store::Error::AccessDenied => String::from("access denied"),
        store::Error::Other(s) => s,
    }
}

/// The component's store: the default bucket.
fn open() -> Result<Bucket, String> {
    store::open("").map_err(why)
}

/// A `u64` kept as 8 little-endian bytes; 0 when absent or malformed.
fn load(bucket: &Bucket, key: &str) -> Result<u64, String> {
    Ok(bucket
        .get(key)
        .map_err(why)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_le_bytes))
}

fn save(bucket: &Bucket, key: &str, value: u64) -> Result<(), String> {
    bucket.set(key, &value.to_le_bytes()).map_err(why)
}

/// How many keys the bucket lists, page by page.
fn count_keys(bucket: &Bucket) -> Result<u64, String> {
    let (mut n, mut cursor) = (0, None);
    loop {
        let page = bucket.list_keys(cursor).map_err(why)?;
        n += page.keys.len() as u64;
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// Whether a scratch key exists after `set` and is gone after `delete`.
fn set_and_delete(bucket: &Bucket) -> Result<bool, String> {
    bucket.set("scratch", b"x").map_err(why)?;
    let there = bucket.exists("scratch").map_err(why)?;
    bucket.delete("scratch").map_err(why)?;
    let gone = !bucket.exists("scratch").map_err(why)?;
    Ok(there && gone)
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
        // Opened for this event, dropped at its end (the handle's `resource.drop`).
        let bucket = open()?;
        let last = load(&bucket, "last-ns")?;
        let beats = load(&bucket, "beats")? + 1;
        save(&bucket, "beats", beats)?;
        save(&bucket, "last-ns", now)?;
        let store_ok = set_and_delete(&bucket)?;
        let keys = count_keys(&bucket)?;
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
            Output {
                name: String::from("keys"),
                value: Value::Milli(keys.saturating_mul(1000) as i64),
                unit: None,
            },
            Output {
                name: String::from("store"),
                value: Value::Flag(store_ok),
                unit: None,
            },
        ])
    }

    fn health_check() -> Result<(), String> {
        if monotonic_clock::resolution() == 0 {
            return Err(String::from("the monotonic clock has no resolution"));
        }
        drop(open()?);
        // Only the component's store exists.
        if !matches!(store::open("elsewhere"), Err(store::Error::NoSuchStore)) {
            return Err(String::from("a store that does not exist opened"));
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
