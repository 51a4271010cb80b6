//! wasmi with its default features: `run(iterations)` of a module, best of a few
//! calls, without fuel and with fuel metering.
//!
//! Usage: `wasmi-defaults <module.wasm> <iterations> <repeat>`. Prints one
//! `interp-row\t<engine>\t<ns per iteration>\t<checksum>` line per configuration, the
//! format `cargo xtask bench` reads from every runner.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmi::{Config, Engine, Linker, Module, Store};

/// Runs `run(n)` `repeat` times on a fresh instance; the fastest call and its result.
fn measure(wasm: &[u8], fuel: bool, n: i32, repeat: u32) -> Result<(Duration, u64), String> {
    let mut config = Config::default();
    config.consume_fuel(fuel);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, wasm).map_err(|e| format!("invalid module: {e}"))?;
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .map_err(|e| format!("instantiate: {e}"))?;
    let run = instance
        .get_typed_func::<i32, i64>(&store, "run")
        .map_err(|e| format!("export `run: func(i32) -> i64`: {e}"))?;
    let mut best = Duration::MAX;
    let mut checksum = None;
    for _ in 0..repeat {
        if fuel {
            store.set_fuel(u64::MAX / 2).map_err(|e| e.to_string())?;
        }
        let t = Instant::now();
        let sum = run
            .call(&mut store, n)
            .map_err(|e| format!("run({n}): {e}"))? as u64;
        best = best.min(t.elapsed());
        if checksum.is_some_and(|c| c != sum) {
            return Err(format!("run({n}) returned two different checksums"));
        }
        checksum = Some(sum);
    }
    Ok((best, checksum.unwrap_or_default()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, n, repeat] = &args[..] else {
        eprintln!("usage: wasmi-defaults <module.wasm> <iterations> <repeat>");
        return ExitCode::FAILURE;
    };
    let parsed = (n.parse::<i32>(), repeat.parse::<u32>());
    let (Ok(n @ 1..), Ok(repeat @ 1..)) = parsed else {
        eprintln!("wasmi-defaults: iterations and repeat must be positive numbers");
        return ExitCode::FAILURE;
    };
    let wasm = match std::fs::read(path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("wasmi-defaults: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (fuel, label) in [
        (false, "wasmi, default features"),
        (true, "wasmi, default features, fuel"),
    ] {
        match measure(&wasm, fuel, n, repeat) {
            Ok((best, sum)) => println!(
                "interp-row\t{label}\t{:.3}\t0x{sum:016x}",
                best.as_nanos() as f64 / f64::from(n)
            ),
            Err(e) => {
                eprintln!("wasmi-defaults: {label}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
