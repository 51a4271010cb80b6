//! `cargo xtask bench`: criterion benchmarks, then a table of Tern against the bare
//! engines measured in the same run.

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
    let verify = mean_ns("bundle/verify-1MiB")?;
    println!(
        "{:<24} {:>12}   {:.0} MB/s (header + Ed25519 + policy + SHA-256 of 1 MiB, 4 KiB chunks)",
        "bundle verification",
        fmt_ns(verify),
        (1024.0 * 1024.0) / (verify / 1e9) / 1e6
    );
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
    device()
}

/// The same smoother on the QEMU device, installed over the air, run under
/// `-icount shift=0`: QEMU models no cycle timing, so the device's work is reported
/// as guest instructions (its SysTick then counts 40 instructions per tick), never as
/// device time.
pub fn device() -> Result<(), String> {
    use crate::ota;
    eprintln!("xtask: the smoother on the QEMU device under -icount");
    let status = cargo()
        .args(["build", "--locked", "-p", "tern"])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build -p tern failed".into());
    }
    let tern_bin = root().join("target/debug/tern");
    let work = root().join("target/bench-device");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut procs = ota::Procs(Vec::new());
    let elf = ota::build_device()?;
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
    )?;
    let lines = qemu.wait_for("timing:", std::time::Duration::from_secs(600))?;
    qemu.kill();
    drop(procs);
    let timing = lines.last().map(|l| l.text.clone()).unwrap_or_default();
    // "timing: load + instantiate N cycles, E events M cycles"
    let numbers: Vec<u64> = timing
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [load, events, run] = numbers[..] else {
        return Err(format!("the device's timing line did not parse: {timing}"));
    };
    // One SysTick cycle at 25 MHz is 40 ns of virtual time, one instruction per ns.
    let instructions = |cycles: u64| cycles * 40;
    println!("\ndevice: QEMU mps2-an386 (Cortex-M4), -icount shift=0, in guest instructions:");
    println!(
        "  load + instantiate smoother.wasm (wasmi)   {:>8.2} M",
        instructions(load) as f64 / 1e6
    );
    println!(
        "  on-event, mean of {events} events            {:>8.1} k",
        instructions(run) as f64 / events.max(1) as f64 / 1e3
    );
    let per_event = instructions(run) as f64 / events.max(1) as f64;
    println!(
        "  instructions, not time; at one instruction per cycle a 64 MHz Cortex-M4 would \
         spend about {:.1} ms per event (the host wasmi rows above are the same calls)",
        per_event / 64e3
    );
    Ok(())
}
