//! `cargo xtask bench`: criterion benchmarks, then a table of Tern against the bare
//! engines measured in the same run; the interpreter table (`interp.rs`), the fleet
//! server, the device.

use crate::{cargo, components, root};

/// Criterion's point estimates (ns) by benchmark id, read from its report on stdout:
/// an id line followed by `time: [low estimate high]`.
fn estimates(stdout: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut last_id = String::new();
    for line in stdout.lines() {
        let t = line.trim();
        let (head, rest) = match t.split_once("time:") {
            Some((h, r)) => (h.trim(), Some(r)),
            None => (t, None),
        };
        if !head.is_empty() && !head.starts_with("Benchmarking") && !head.contains(' ') {
            last_id = head.to_string();
        }
        let Some(rest) = rest else { continue };
        let nums: Vec<&str> = rest
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .collect();
        // [low unit estimate unit high unit]
        if nums.len() != 6 {
            continue;
        }
        let Ok(v) = nums[2].parse::<f64>() else {
            continue;
        };
        let scale = match nums[3] {
            "ps" => 0.001,
            "ns" => 1.0,
            "µs" | "us" => 1_000.0,
            "ms" => 1_000_000.0,
            "s" => 1_000_000_000.0,
            _ => continue,
        };
        out.push((last_id.clone(), v * scale));
    }
    out
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

pub fn run() -> Result<(), String> {
    components(false)?;
    eprintln!("xtask: criterion benchmarks (tests/benches/engines.rs, bundle.rs)");
    let out = cargo()
        .args([
            "bench",
            "--locked",
            "-p",
            "tern-tests",
            "--bench",
            "engines",
            "--bench",
            "bundle",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo bench: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        return Err(format!("cargo bench failed ({})", out.status));
    }
    let est = estimates(&stdout);
    let mean_ns = |id: &str| -> Result<f64, String> {
        est.iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no estimate for `{id}` in criterion's output"))
    };
    println!();
    println!(
        "{:<24} {:>12} {:>12} {:>8}   target",
        "benchmark", "tern", "bare", "ratio"
    );
    let rows = [
        (
            "instantiate",
            "wasmtime",
            "instantiate ≤ 10 µs, ratio ≤ 1.2",
        ),
        ("instantiate", "wasmi", "instantiate ≤ 100 µs, ratio ≤ 1.2"),
        ("on-event", "wasmtime", "ratio ≤ 1.2"),
        ("on-event", "wasmi", "ratio ≤ 1.2"),
    ];
    for (group, engine) in rows.iter().map(|(g, e, _)| (*g, *e)) {
        let t = mean_ns(&format!("{group}/tern-{engine}"))?;
        let b = mean_ns(&format!("{group}/bare-{engine}"))?;
        let target = rows
            .iter()
            .find(|(g, e, _)| *g == group && *e == engine)
            .map(|r| r.2)
            .unwrap_or("");
        println!(
            "{:<24} {:>12} {:>12} {:>7.2}x   {target}",
            format!("{group} ({engine})"),
            fmt_ns(t),
            fmt_ns(b),
            t / b
        );
    }
    // A device image (the smoother as a component: its module, wit-component's shim
    // and fixup modules, and the plan that links them) next to bare wasmi
    // instantiating the one module.
    let t = mean_ns("instantiate/tern-wasmi-image")?;
    let b = mean_ns("instantiate/bare-wasmi")?;
    println!(
        "{:<24} {:>12} {:>12} {:>7.2}x   instantiate ≤ 100 µs (3 modules and a plan)",
        "instantiate (wasmi image)",
        fmt_ns(t),
        fmt_ns(b),
        t / b
    );
    let t = mean_ns("instantiate/tern-wasmi-app")?;
    println!(
        "{:<24} {:>12} {:>12} {:>7.2}x   two-component app ≤ 100 µs (environment + decoder)",
        "instantiate (wasmi app)",
        fmt_ns(t),
        fmt_ns(b),
        t / b
    );
    for (engine, target) in [("wasmtime", "≤ 50 ns"), ("wasmi", "≤ 150 ns")] {
        let per = |who: &str| -> Result<f64, String> {
            let n1000 = mean_ns(&format!("hostcall/{who}-{engine}/1000"))?;
            let n0 = mean_ns(&format!("hostcall/{who}-{engine}/0"))?;
            Ok((n1000 - n0) / 1000.0)
        };
        let (t, b) = (per("tern")?, per("bare")?);
        println!(
            "{:<24} {:>12} {:>12} {:>7.2}x   host call {target}",
            format!("host call ({engine})"),
            fmt_ns(t),
            fmt_ns(b),
            t / b
        );
    }
    println!(
        "  (bare = the engine's own API, no Tern; bare wasmi is built with the workspace's \
         unified wasmi features, i.e. Tern's, not wasmi's defaults: those are in the \
         interpreter table below)"
    );
    let verify = mean_ns("bundle/verify-1MiB")?;
    println!(
        "{:<24} {:>12}   {:.0} MB/s (header + Ed25519 + policy + SHA-256 of 1 MiB, 4 KiB chunks)",
        "bundle verification",
        fmt_ns(verify),
        (1024.0 * 1024.0) / (verify / 1e9) / 1e6
    );
    crate::interp::run()?;
    // The fleet server's own benchmark (check-ins per second, download throughput);
    // criterion prints its throughput lines.
    let out = cargo()
        .args([
            "bench",
            "--locked",
            "-p",
            "tern-server",
            "--bench",
            "server",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo bench: {e}"))?;
    let server_out = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "cargo bench -p tern-server failed ({})",
            out.status
        ));
    }
    println!("\nfleet server (runtime/server/benches/server.rs):");
    for line in server_out
        .lines()
        .filter(|l| l.starts_with("server/") || l.contains("thrpt:"))
    {
        println!("  {}", line.trim());
    }
    let size = std::fs::metadata(root().join("target/components/smoother.wasm"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "\ncomponent measured: smoother.wasm, {size} bytes; host call: clock.now-ms from hostcall.wasm"
    );
    device(false)
}

/// The same smoother on the QEMU device, installed over the air, run under
/// `-icount shift=0`: QEMU models no cycle timing, so the device's work is reported
/// as guest instructions (its SysTick then counts 40 instructions per tick), never as
/// device time.
///
/// With `profile`, the device runs a second time with every instruction's address
/// logged (`crate::profile`), and the per-event instructions are split by function.
pub fn device(profile: bool) -> Result<(), String> {
    use crate::ota;
    eprintln!("xtask: the smoother on the QEMU device under -icount");
    let tern_bin = crate::build_tern("building the tern CLI")?;
    let work = root().join("target/bench-device");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut procs = ota::Procs(Vec::new());
    // With the smoother's logic also compiled in natively, timed over the same events
    // (`tern_device::native`): the physical limit the component is set against.
    eprintln!("xtask: building the firmware with the native smoother (TERN_NATIVE_BENCH)");
    let elf = tern_qemu::build_firmware(&root(), ota::QEMU_BOARD, &[("TERN_NATIVE_BENCH", "1")])?;
    let (id, token) = ota::QEMU_DEVICE;
    let server = ota::serve(
        &tern_bin,
        &work.join("server"),
        &[format!("{id}={token}")],
        &mut procs,
    )?;
    let bundle = ota::sign(
        &tern_bin,
        "target/components/smoother.wasm",
        "smoother",
        "1.0.0",
        "1",
        &[],
        &work.join("smoother.tern"),
    )?;
    for args in [
        &["publish", &bundle, "--server", &server][..],
        &[
            "assign",
            &format!("device:{id}"),
            &bundle,
            "--server",
            &server,
        ],
    ] {
        ota::tern(&tern_bin, args)?;
    }
    let mut qemu = ota::boot_device(
        &tern_bin,
        &elf,
        &work.join(id),
        &server,
        tern_qemu::Echo::Off,
        true,
        None,
    )?;
    let lines = qemu.wait_for("timing:", std::time::Duration::from_secs(600))?;
    qemu.kill();
    let profiled = if profile {
        Some(profile_device(&tern_bin, &elf, &work, &server)?)
    } else {
        None
    };
    drop(procs);
    let timing = lines.last().map(|l| l.text.clone()).unwrap_or_default();
    // "native: the smoother N cycles for E events after the first"
    let native = lines
        .iter()
        .find_map(|l| l.text.strip_prefix("native: the smoother "))
        .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .ok_or("the device printed no native smoother timing (built without TERN_NATIVE_BENCH?)")?;
    // "timing: load + instantiate N cycles, E events M cycles, the first F"
    let numbers: Vec<u64> = timing
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [load, events, run, first] = numbers[..] else {
        return Err(format!("the device's timing line did not parse: {timing}"));
    };
    if events < 2 {
        return Err(format!(
            "the device ran {events} events: too few to measure"
        ));
    }
    // One SysTick cycle at 25 MHz is 40 ns of virtual time, one instruction per ns.
    let instructions = |cycles: u64| cycles * 40;
    println!("\ndevice: QEMU mps2-an386 (Cortex-M4), -icount shift=0, in guest instructions:");
    println!(
        "  load + instantiate smoother.wasm (wasmi)   {:>8.2} M",
        instructions(load) as f64 / 1e6
    );
    println!(
        "  on-event, the first event                  {:>8.1} k   (translates what it calls)",
        instructions(first) as f64 / 1e3
    );
    let per_event = instructions(run - first) as f64 / (events - 1) as f64;
    println!(
        "  on-event, mean of the other {} events       {per_event_k:>8.1} k",
        events - 1,
        per_event_k = per_event / 1e3
    );
    let native_per_event = instructions(native) as f64 / (events - 1) as f64;
    println!(
        "  the same logic compiled natively           {:>8.1} k   (wasmi / native: {:.1}x)",
        native_per_event / 1e3,
        per_event / native_per_event
    );
    println!(
        "  instructions, not time; at one instruction per cycle a 64 MHz Cortex-M4 would \
         spend about {:.1} ms per event (the host wasmi rows above are the same calls)",
        per_event / 64e3
    );
    if let Some(p) = profiled {
        println!("\ndevice profile (QEMU -singlestep -d exec, by function):");
        print!("{}", p.report(30));
    }
    Ok(())
}

/// Runs the installed smoother once more with QEMU logging every instruction into a
/// FIFO that `crate::profile` reads as QEMU writes it.
fn profile_device(
    tern_bin: &std::path::Path,
    elf: &std::path::Path,
    work: &std::path::Path,
    server: &str,
) -> Result<crate::profile::Profile, String> {
    eprintln!("xtask: the same run with every instruction traced (slow)");
    let fifo = work.join("exec-trace.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map_err(|e| format!("mkfifo: {e}"))?;
    if !made.success() {
        return Err(format!("mkfifo {} failed", fifo.display()));
    }
    let reader = {
        let (fifo, elf) = (fifo.clone(), elf.to_path_buf());
        std::thread::spawn(move || {
            let trace =
                std::fs::File::open(&fifo).map_err(|e| format!("{}: {e}", fifo.display()))?;
            crate::profile::collect(&elf, trace)
        })
    };
    let (id, _) = crate::ota::QEMU_DEVICE;
    let mut qemu = crate::ota::boot_device(
        tern_bin,
        elf,
        &work.join(id),
        server,
        tern_qemu::Echo::Off,
        false,
        Some(&fifo),
    )?;
    let waited = qemu.wait_for("timing:", std::time::Duration::from_secs(1800));
    qemu.kill();
    let profile = reader
        .join()
        .map_err(|_| "the exec-trace reader panicked".to_string())??;
    waited?;
    Ok(profile)
}
