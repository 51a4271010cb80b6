//! Interpreter speed: the compute loop in `lcg.wat` on wasmi as Tern builds and
//! configures it, and on Wasmtime as Tern configures it.
//!
//! `cargo xtask bench` (or `bench --interp`) runs this first; it writes the compiled
//! module to `--wasm-out`, and xtask then runs the very same file on wasmi with its
//! default features (`tests/benches/wasmi-defaults/`) and on wasm3
//! (`tests/benches/run_wasm3.py`) and prints one table. Every runner prints its rows as
//! `interp-row\t<engine>\t<ns per iteration>\t<checksum>`; this one also prints the
//! checksum computed natively (`interp-reference\t<checksum>`) that every row must match.
//!
//! The wasmi here is the workspace's wasmi, whose features unify with `tern-wasmi`'s:
//! exactly what `tern` ships with. Both engines use Tern's own `Config`
//! (`WasmiEngine::config`, `WasmtimeEngine::config`), fuel metering included, and get
//! their fuel refilled before each call as Tern does.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it is a quick check: a few
//! thousand iterations on both engines, checksums against the native reference.
#![allow(clippy::unwrap_used, reason = "bench code: a panic is how it fails")]

use std::time::{Duration, Instant};

use tern_core::Limits;

/// The module under test, compiled from `lcg.wat`.
fn module() -> Vec<u8> {
    wat::parse_str(include_str!("lcg.wat")).expect("tests/benches/lcg.wat is valid WAT")
}

/// What `run(n)` in `lcg.wat` returns, computed natively: the oracle for every engine.
fn reference(n: u32) -> u64 {
    let mut table = [0u64; 1024];
    let mut state: u64 = 0x853c_49e6_748f_ea9b;
    let mut sum: u64 = 0;
    for _ in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let a = ((state >> 33) & 1023) as usize;
        let v = table[a];
        table[a] = v ^ state;
        let b = (state >> 54) as usize;
        sum = sum.rotate_left(5).wrapping_add(v).wrapping_add(table[b]);
    }
    sum ^ state
}

/// The limits Tern's engines are built with, with enough fuel per call for the longest
/// run: `Limits::HOST` allows 10 M units per call, a 20 M-iteration run needs far more.
fn limits() -> Limits {
    Limits {
        fuel_per_call: u64::MAX / 2,
        ..Limits::HOST
    }
}

/// Runs `run(n)` of a module on one engine: the fastest call and every checksum.
type Measure = fn(&[u8], u32, u32) -> (Duration, Vec<u64>);

/// Calls `run(n)` `repeat` times; the fastest call and the checksums it returned.
fn best_of(repeat: u32, mut call: impl FnMut() -> u64) -> (Duration, Vec<u64>) {
    let mut best = Duration::MAX;
    let mut sums = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let sum = call();
        best = best.min(t.elapsed());
        sums.push(sum);
    }
    (best, sums)
}

fn tern_wasmi(wasm: &[u8], n: u32, repeat: u32) -> (Duration, Vec<u64>) {
    let limits = limits();
    let engine = wasmi::Engine::new(&tern_wasmi::WasmiEngine::config(&limits));
    let module = wasmi::Module::new(&engine, wasm).unwrap();
    let mut store = wasmi::Store::new(&engine, ());
    let instance = wasmi::Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let run = instance.get_typed_func::<i32, i64>(&store, "run").unwrap();
    best_of(repeat, || {
        store.set_fuel(limits.fuel_per_call).unwrap();
        run.call(&mut store, n as i32).unwrap() as u64
    })
}

fn tern_wasmtime(wasm: &[u8], n: u32, repeat: u32) -> (Duration, Vec<u64>) {
    let limits = limits();
    let engine = wasmtime::Engine::new(&tern_wasmtime::WasmtimeEngine::config(&limits)).unwrap();
    let module = wasmtime::Module::new(&engine, wasm).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, i64>(&mut store, "run")
        .unwrap();
    best_of(repeat, || {
        store.set_fuel(limits.fuel_per_call).unwrap();
        run.call(&mut store, n as i32).unwrap() as u64
    })
}

/// The value after `flag`, parsed.
fn arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let i = args.iter().position(|a| a == flag)?;
    let v = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{flag} needs a value"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{flag} {v}: not a number")),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let timing = args.iter().any(|a| a == "--bench");
    let (default_n, default_repeat) = if timing { (20_000_000, 3) } else { (5_000, 1) };
    let n: u32 = arg(&args, "--iterations").unwrap_or(default_n);
    let repeat: u32 = arg(&args, "--repeat").unwrap_or(default_repeat);
    assert!(
        n > 0 && n <= i32::MAX as u32 && repeat > 0,
        "--iterations must be in 1..=2^31-1 and --repeat at least 1"
    );

    let wasm = module();
    if let Some(out) = args
        .iter()
        .position(|a| a == "--wasm-out")
        .and_then(|i| args.get(i + 1))
    {
        let out = std::path::Path::new(out);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(out, &wasm).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }

    let expected = reference(n);
    println!("interp-reference\t0x{expected:016x}");
    let rows: [(&str, Measure); 2] = [
        ("wasmi (Tern's build and Config, fuel)", tern_wasmi),
        ("Wasmtime (Tern's Config, fuel)", tern_wasmtime),
    ];
    for (label, measure) in rows {
        let (best, sums) = measure(&wasm, n, repeat);
        for sum in &sums {
            assert_eq!(
                *sum, expected,
                "{label}: run({n}) returned 0x{sum:016x}, the native reference is \
                 0x{expected:016x}: the engine or lcg.wat / reference() is wrong"
            );
        }
        println!(
            "interp-row\t{label}\t{:.3}\t0x{:016x}",
            best.as_nanos() as f64 / f64::from(n),
            sums[0]
        );
    }
}
