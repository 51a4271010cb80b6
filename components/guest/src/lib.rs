//! Guest SDK for Tern components: the `tern:edge` bindings, an allocator and a panic handler.
//!
//! A component is a `no_std` `cdylib` that implements [`Guest`] and calls
//! `tern_guest::export!(MyComponent);`. Build it with `cargo xtask components`.
//! On a host target the SDK links std, so a component's plain functions can be unit
//! tested with `cargo test`; calling a host interface there panics.
#![no_std]

extern crate alloc;

// Host builds (unit tests of components, `cargo test` on the build machine) get their
// allocator and panic handler from std; wasm32 guests, from `tern-guest-rt`.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use tern_guest_rt as _;

pub use alloc::{format, string::String, string::ToString, vec, vec::Vec};

/// Bindings generated from `runtime/wit` for the `tern:edge/component` world.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../runtime/wit",
        world: "tern:edge/component",
        pub_export_macro: true,
        default_bindings_module: "tern_guest::bindings",
        std_feature,
    });
}

pub use bindings::export;
pub use bindings::{Event, Guest, Output};

pub use bindings::tern::edge::types::{Sample, Value};
pub use bindings::tern::edge::{clock, gpio, kv, log, publish, sensors};

/// A `milli` output with a unit.
pub fn milli(name: &str, milli: i64, unit: &str) -> Output {
    Output {
        name: name.to_string(),
        value: Value::Milli(milli),
        unit: Some(unit.to_string()),
    }
}

/// A `flag` output.
pub fn flag(name: &str, on: bool) -> Output {
    Output {
        name: name.to_string(),
        value: Value::Flag(on),
        unit: None,
    }
}

/// A `text` output.
pub fn text(name: &str, text: &str) -> Output {
    Output {
        name: name.to_string(),
        value: Value::Text(text.to_string()),
        unit: None,
    }
}

/// Formats a milli-unit value as a decimal string (`21500` → `"21.500"`) without floats.
///
/// Digit by digit rather than through `core::fmt`: under an interpreter, `format!`
/// with a width costs several thousand guest instructions.
pub fn fmt_milli(v: i64) -> String {
    let mut out = String::with_capacity(24);
    push_milli(&mut out, v);
    out
}

/// Appends `v` as [`fmt_milli`] formats it.
pub fn push_milli(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let a = v.unsigned_abs();
    push_u64(out, a / 1000);
    out.push('.');
    let frac = a % 1000;
    for d in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + d as u8));
    }
}

/// Appends `n` in decimal, without `core::fmt`.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Parses a decimal string into milli-units (`"21.5"` → `21500`) without floats.
pub fn parse_milli(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || frac.len() > 3
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i64 = int.parse().ok()?;
    let mut f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        f *= 10;
    }
    v = v.checked_mul(1000)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// State a component keeps between calls, in a `static`.
///
/// Components are `#![forbid(unsafe_code)]`; this is the one place that vouches for
/// sharing a cell in a `static`, which is sound because a wasm32 guest has one thread
/// and host calls never re-enter the component's exports.
pub struct State<T>(core::cell::RefCell<T>);

// SAFETY: `wasm32-unknown-unknown` guests run on exactly one thread and Tern hosts
// never call an export while another is running, so no two borrows can race.
unsafe impl<T> Sync for State<T> {}

impl<T> State<T> {
    /// A new cell.
    pub const fn new(value: T) -> Self {
        State(core::cell::RefCell::new(value))
    }

    /// Runs `f` with the state borrowed mutably.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}
