//! `cargo xtask demo`: every example component on wasmi and Wasmtime, side by side.

use std::process::Command;

use crate::{EXAMPLES, components, root};

/// One engine's run of one component.
struct Run {
    stdout: String,
}

/// Where the demo's signed bundles go.
const BUNDLES: &str = "target/bundles";

/// Signs `name` once with the development key, for the device and the server board,
/// and checks that both boards would accept it.
fn tern_sign(tern: &std::path::Path, name: &str) -> Result<String, String> {
    let bundle = format!("{BUNDLES}/{name}.tern");
    let out = Command::new(tern)
        .current_dir(root())
        .args(["sign", &format!("target/components/{name}.wasm")])
        .args(["--key", "boards/keys/tern-dev-2026.key"])
        .args(["--version", "1.0.0", "--counter", "1"])
        .args([
            "--board",
            "qemu-mps2-an386",
            "--board",
            "server",
            "-o",
            &bundle,
        ])
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tern.display()))?;
    if !out.status.success() {
        return Err(format!(
            "tern sign {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    for board in ["qemu-mps2-an386", "server"] {
        let out = Command::new(tern)
            .current_dir(root())
            .args(["verify", &bundle, "--board", board])
            .output()
            .map_err(|e| format!("cannot start {}: {e}", tern.display()))?;
        if !out.status.success() {
            return Err(format!(
                "board {board} refused {bundle}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        print!("  {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(bundle)
}

/// Runs `tern` with `args` in the repository, failing with its stderr.
fn tern_cmd(tern: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tern)
        .current_dir(root())
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tern.display()))?;
    if !out.status.success() {
        return Err(format!(
            "tern {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The composed example: the `environment` app and the Ruuvi decoder it imports, made
/// one component by `tern compose`, signed once per engine (the component for the
/// server, its device image for the QEMU board), run on both. Whether they agree.
fn composed_app(tern: &std::path::Path) -> Result<bool, String> {
    println!();
    println!("== environment + ruuvi-decoder: two components linked by a WIT import ==");
    let composed = format!("{BUNDLES}/environment-app.wasm");
    print!(
        "{}",
        tern_cmd(
            tern,
            &[
                "compose",
                "target/components/environment.wasm",
                "--plug",
                "tern:ruuvi/decode@0.1.0=target/components/ruuvi-decoder.wasm",
                "-o",
                &composed,
            ],
        )?
    );
    let mut runs = Vec::new();
    for (board, engine) in [("qemu-mps2-an386", "wasmi"), ("server", "wasmtime")] {
        let bundle = format!("{BUNDLES}/environment-{engine}.tern");
        print!(
            "{}",
            tern_cmd(
                tern,
                &[
                    "sign",
                    &composed,
                    "--name",
                    "environment",
                    "--key",
                    "boards/keys/tern-dev-2026.key",
                    "--version",
                    "1.0.0",
                    "--counter",
                    "1",
                    "--board",
                    board,
                    "-o",
                    &bundle,
                ],
            )?
        );
        runs.push(tern_run(tern, "environment", &bundle, board, engine)?);
    }
    let same = runs[0].stdout == runs[1].stdout;
    let results: Vec<&str> = runs[0]
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"call\":\"on-event\""))
        .collect();
    for line in results.iter().take(4) {
        println!("  {}", summary(line));
    }
    println!(
        "environment: {} handler results; {}",
        results.len(),
        if same {
            "the device image on wasmi and the component on wasmtime gave byte-identical results"
        } else {
            "DIFFERENT on wasmi and wasmtime"
        }
    );
    Ok(same)
}

/// Runs the signed bundle as `board` does, on `engine`.
fn tern_run(
    tern: &std::path::Path,
    name: &str,
    bundle: &str,
    board: &str,
    engine: &str,
) -> Result<Run, String> {
    let root = root();
    let out = Command::new(tern)
        .current_dir(&root)
        .args(["run", bundle, "--board", board, "--engine", engine])
        .args(["--events", &format!("components/{name}/events.jsonl")])
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tern.display()))?;
    if !out.status.success() {
        return Err(format!(
            "tern run {name} on {engine} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

/// The value of `"key":` in a JSON line, up to the matching end (rough, for display).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let mut depth = 0i32;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in rest.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '[' | '{' if !in_str => depth += 1,
            ']' | '}' if !in_str => {
                if depth == 0 {
                    return Some(&rest[..i]);
                }
                depth -= 1;
            }
            ',' if !in_str && depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
        prev = c;
    }
    Some(rest)
}

/// `[{"name":"t","unit":"degC","value":{"milli":21500}}]` → `t=21.500degC`.
fn outputs(ok: &str) -> String {
    let mut parts = Vec::new();
    for chunk in ok.split("{\"name\":\"").skip(1) {
        let name = chunk.split('"').next().unwrap_or("");
        let unit = chunk
            .split_once("\"unit\":\"")
            .and_then(|(_, u)| u.split('"').next())
            .unwrap_or("");
        let value = chunk
            .split_once("\"value\":{\"")
            .map(|(_, v)| v)
            .unwrap_or("");
        let (kind, raw) = value.split_once("\":").unwrap_or(("", ""));
        let raw = raw.split('}').next().unwrap_or("");
        let shown = match (kind, raw.parse::<i64>()) {
            ("milli", Ok(m)) => {
                let sign = if m < 0 { "-" } else { "" };
                format!(
                    "{sign}{}.{:03}{unit}",
                    m.unsigned_abs() / 1000,
                    m.unsigned_abs() % 1000
                )
            }
            _ => raw.to_string(),
        };
        parts.push(format!("{name}={shown}"));
    }
    if parts.is_empty() {
        "(nothing)".into()
    } else {
        parts.join(" ")
    }
}

fn summary(line: &str) -> String {
    let what = if let Some(ok) = field(line, "ok") {
        if ok == "null" {
            "ok".to_string()
        } else {
            outputs(ok)
        }
    } else if let Some(err) = field(line, "err") {
        format!("err {err}")
    } else if let Some(e) = field(line, "error") {
        format!("ERROR {e}")
    } else {
        line.to_string()
    };
    let mut s: String = what.chars().take(54).collect();
    if what.chars().count() > 54 {
        s.push('…');
    }
    s
}

pub fn run() -> Result<(), String> {
    components(false)?;
    let tern = crate::build_tern("building the tern CLI")?;
    std::fs::create_dir_all(root().join(BUNDLES)).map_err(|e| format!("{BUNDLES}: {e}"))?;
    let mut all_same = true;
    for name in EXAMPLES {
        println!();
        let bundle = tern_sign(&tern, name)?;
        let a = tern_run(&tern, name, &bundle, "qemu-mps2-an386", "wasmi")?;
        let b = tern_run(&tern, name, &bundle, "server", "wasmtime")?;
        let same = a.stdout == b.stdout;
        all_same &= same;
        println!("== {name}: {bundle} over components/{name}/events.jsonl ==");
        println!(
            "{:<12} {:<56} {:<56}",
            "call", "wasmi (qemu-mps2-an386)", "wasmtime (server)"
        );
        let calls = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("{\"call\""))
                .map(str::to_string)
                .collect()
        };
        let (ca, cb) = (calls(&a.stdout), calls(&b.stdout));
        for i in 0..ca.len().max(cb.len()) {
            let la = ca.get(i).map(String::as_str).unwrap_or("");
            let lb = cb.get(i).map(String::as_str).unwrap_or("");
            let label = field(la, "seq")
                .map(|s| format!("event {s}"))
                .or_else(|| field(la, "call").map(|c| c.trim_matches('"').to_string()))
                .unwrap_or_default();
            let mark = if la == lb { ' ' } else { '≠' };
            println!("{label:<12} {:<56} {:<56}{mark}", summary(la), summary(lb));
        }
        let host_calls = a
            .stdout
            .lines()
            .filter(|l| l.starts_with("{\"host\""))
            .count();
        println!(
            "{name}: {} lines ({} handler results, {host_calls} host calls): {}",
            a.stdout.lines().count(),
            ca.len(),
            if same {
                "the same signed bundle gave byte-identical results on wasmi and wasmtime"
            } else {
                "DIFFERENT on wasmi and wasmtime"
            }
        );
    }
    all_same &= composed_app(&tern)?;
    if !all_same {
        return Err("the engines disagreed (see ≠ above)".into());
    }
    crate::ota::run(&tern)?;
    println!();
    if all_same {
        println!(
            "demo: every example gave byte-identical results and host-call traces on both engines"
        );
        Ok(())
    } else {
        Err("the engines disagreed (see ≠ above)".into())
    }
}
