//! `cargo xtask bench --interp` (also part of `cargo xtask bench`): one compute loop,
//! `tests/benches/lcg.wat`, on wasmi as Tern ships it, wasmi with its default features,
//! wasm3 and Wasmtime, in one table of nanoseconds per loop iteration.
//!
//! Three runners, one module file: `tests/benches/interp.rs` (tern-tests, the workspace's
//! wasmi and Wasmtime under Tern's own `Config`s) compiles the WAT and writes
//! `target/bench-interp/lcg.wasm`; `tests/benches/wasmi-defaults/` (a workspace of its
//! own, since features unify in ours) and `tests/benches/run_wasm3.py` (pywasm3, installed
//! into `target/pywasm3`) run that same file. Every row must return the checksum that
//! `interp.rs` computes natively, or the task fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, root};

/// Loop iterations per call: long enough that the call's own cost vanishes (about half
/// a second per call at wasmi's and wasm3's speed), short enough for a few calls each.
const ITERATIONS: u32 = 20_000_000;
/// Calls per engine; the fastest is reported, the one other processes disturbed least.
const REPEAT: u32 = 5;
/// The pywasm3 release installed into `target/pywasm3` (wasm3 0.5.0).
const PYWASM3: &str = "pywasm3==0.5.0";

/// One runner's result: `interp-row\t<engine>\t<ns per iteration>\t<checksum>`.
#[derive(Clone)]
struct Row {
    engine: String,
    ns: f64,
    checksum: String,
}

/// The rows in a runner's stdout, and its `interp-reference` checksum if it has one.
fn parse(stdout: &str, who: &str) -> Result<(Vec<Row>, Option<String>), String> {
    let mut rows = Vec::new();
    let mut reference = None;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            ["interp-reference", sum] => reference = Some(sum.to_string()),
            ["interp-row", engine, ns, sum] => rows.push(Row {
                engine: engine.to_string(),
                ns: ns
                    .parse()
                    .map_err(|e| format!("{who}: `{line}`: ns per iteration: {e}"))?,
                checksum: sum.to_string(),
            }),
            _ => {}
        }
    }
    if rows.is_empty() {
        return Err(format!("{who} printed no `interp-row` line:\n{stdout}"));
    }
    Ok((rows, reference))
}

/// Runs a runner to completion (its stderr shown as it goes) and returns its stdout.
fn output(cmd: &mut Command, who: &str) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{who}: cannot start: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{who} failed ({}):\n{stdout}", out.status));
    }
    Ok(stdout)
}

/// The wasmi version a Cargo.lock resolves.
fn locked_wasmi(lock: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(lock).map_err(|e| format!("{}: {e}", lock.display()))?;
    let at = text
        .find("name = \"wasmi\"\nversion = \"")
        .ok_or_else(|| format!("{}: no wasmi package", lock.display()))?;
    let rest = &text[at + "name = \"wasmi\"\nversion = \"".len()..];
    Ok(rest[..rest.find('"').unwrap_or(0)].to_string())
}

/// A Python with pywasm3 in `target/pywasm3`, installed there first if missing.
fn pywasm3() -> Result<PathBuf, String> {
    let venv = root().join("target/pywasm3");
    let python = venv.join("bin/python");
    let works = |python: &Path| {
        Command::new(python)
            .args(["-c", "import wasm3"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(&python) {
        return Ok(python);
    }
    eprintln!("xtask: installing wasm3 for Python ({PYWASM3}) into target/pywasm3");
    // A venv left half made by an earlier attempt would only fail again.
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| {
            format!(
                "cannot start python3 ({e}): the wasm3 row needs Python 3 with venv and pip \
                 (on Debian: apt-get install python3 python3-venv)"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "`python3 -m venv {}` failed ({status}): on Debian install python3-venv \
             (apt-get install python3-venv), then run `cargo xtask bench` again",
            venv.display()
        ));
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", PYWASM3])
        .status()
        .map_err(|e| format!("{}: cannot start: {e}", python.display()))?;
    if !status.success() || !works(&python) {
        let _ = std::fs::remove_dir_all(&venv);
        return Err(format!(
            "`pip install {PYWASM3}` into target/pywasm3 failed: it compiles wasm3 from C \
             source, so it needs PyPI, a C compiler and Python's headers (on Debian: \
             apt-get install gcc python3-dev); pip's message is above"
        ));
    }
    Ok(python)
}

pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let wasm = root().join("target/bench-interp/lcg.wasm");
    let (n, repeat) = (ITERATIONS.to_string(), REPEAT.to_string());

    eprintln!(
        "xtask: interpreter benchmark: wasmi and Wasmtime as Tern builds them \
         (tests/benches/interp.rs)"
    );
    let stdout = output(
        cargo()
            .args([
                "bench",
                "--locked",
                "-p",
                "tern-tests",
                "--bench",
                "interp",
                "--",
                "--iterations",
                &n,
                "--repeat",
                &repeat,
                "--wasm-out",
            ])
            .arg(&wasm),
        "cargo bench -p tern-tests --bench interp",
    )?;
    let (tern_rows, reference) = parse(&stdout, "tests/benches/interp.rs")?;
    let reference =
        reference.ok_or("tests/benches/interp.rs printed no `interp-reference` line")?;

    // The baseline must be the wasmi Tern ships, only with other features.
    let manifest = root().join("tests/benches/wasmi-defaults/Cargo.toml");
    let ours = locked_wasmi(&root().join("Cargo.lock"))?;
    let theirs = locked_wasmi(&manifest.with_file_name("Cargo.lock"))?;
    if ours != theirs {
        return Err(format!(
            "the workspace locks wasmi {ours} but tests/benches/wasmi-defaults locks \
             {theirs}: run `cargo update --manifest-path {} -p wasmi --precise {ours}`",
            manifest.display()
        ));
    }
    eprintln!("xtask: interpreter benchmark: wasmi {theirs} with default features");
    let stdout = output(
        cargo()
            .env(
                "CARGO_TARGET_DIR",
                root().join("target/bench-wasmi-defaults"),
            )
            .args(["run", "--quiet", "--release", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--")
            .arg(&wasm)
            .args([&n, &repeat]),
        "tests/benches/wasmi-defaults",
    )?;
    let (defaults, _) = parse(&stdout, "tests/benches/wasmi-defaults")?;

    let python = pywasm3()?;
    eprintln!("xtask: interpreter benchmark: wasm3 (tests/benches/run_wasm3.py)");
    let stdout = output(
        Command::new(&python)
            .arg(root().join("tests/benches/run_wasm3.py"))
            .arg(&wasm)
            .args([&n, &repeat]),
        "tests/benches/run_wasm3.py",
    )?;
    let (wasm3, _) = parse(&stdout, "tests/benches/run_wasm3.py")?;

    // The interpreters first, wasmi as Tern ships it at the top; Wasmtime last.
    let (wasmtime, tern_wasmi): (Vec<Row>, Vec<Row>) = tern_rows
        .into_iter()
        .partition(|r| r.engine.starts_with("Wasmtime"));
    let rows: Vec<Row> = [tern_wasmi, defaults, wasm3, wasmtime].concat();
    let baseline = rows
        .iter()
        .find(|r| r.engine == "wasmi, default features")
        .map(|r| r.ns)
        .ok_or("tests/benches/wasmi-defaults printed no `wasmi, default features` row")?;

    println!(
        "\ninterpreter speed: tests/benches/lcg.wat, run({ITERATIONS}) (one LCG step, two \
         loads and a store per iteration), fastest of {REPEAT} calls, wasmi {ours}:"
    );
    println!(
        "  {:<40} {:>10} {:>18}   checksum",
        "engine", "ns/iter", "vs wasmi defaults"
    );
    for r in &rows {
        println!(
            "  {:<40} {:>10.2} {:>17.2}x   {}",
            r.engine,
            r.ns,
            r.ns / baseline,
            r.checksum
        );
    }
    println!(
        "  {:<40} {:>10} {:>18}   {reference}",
        "native Rust (the reference checksum)", "", ""
    );
    println!(
        "  (interpreter benchmark: {:.0} s wall clock, builds included)",
        started.elapsed().as_secs_f64()
    );
    same_checksums(&rows, &reference)
}

/// Fails unless every row returned the reference checksum.
fn same_checksums(rows: &[Row], reference: &str) -> Result<(), String> {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| r.checksum != reference)
        .map(|r| format!("{} returned {}", r.engine, r.checksum))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "checksum mismatch: the reference is {reference}, but {}; an engine miscomputes \
         tests/benches/lcg.wat, or it and `reference` in tests/benches/interp.rs disagree",
        wrong.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_the_reference_are_read_and_other_lines_ignored() {
        let out = "interp-reference\t0x01\nRunning x\ninterp-row\twasm3, no fuel\t21.5\t0x01\n";
        let (rows, reference) = parse(out, "t").unwrap();
        assert_eq!(reference.as_deref(), Some("0x01"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].engine, "wasm3, no fuel");
        assert_eq!(rows[0].ns, 21.5);
        assert!(parse("nothing here", "t").is_err());
        assert!(parse("interp-row\ta\tfast\t0x01", "t").is_err());
    }

    #[test]
    fn a_row_with_another_checksum_fails_naming_the_engine() {
        let row = |engine: &str, checksum: &str| Row {
            engine: engine.into(),
            ns: 1.0,
            checksum: checksum.into(),
        };
        assert!(same_checksums(&[row("a", "0x01"), row("b", "0x01")], "0x01").is_ok());
        let e = same_checksums(&[row("a", "0x01"), row("wasm3", "0x02")], "0x01").unwrap_err();
        assert!(e.contains("wasm3 returned 0x02"), "{e}");
    }
}
