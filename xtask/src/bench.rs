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
    Ok(())
}
