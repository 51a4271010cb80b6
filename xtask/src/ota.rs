//! The OTA part of `cargo xtask demo`: a fleet server and two gateway agents on
//! loopback, walked through publish v1, update to v2, a refused over-privileged
//! bundle, and the automatic rollback of a failing v3.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::root;

const ADMIN_TOKEN: &str = "demo-admin-token-not-secret";
const DEVICES: [(&str, &str); 2] = [
    ("gw-1", "demo-gw-1-token-not-secret"),
    ("gw-2", "demo-gw-2-token-not-secret"),
];

/// Child processes that are stopped when the demo ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SIGINT lets `tern serve` shut down cleanly; gateways just stop.
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tern(tern: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tern)
        .current_dir(root())
        .env("TERN_ADMIN_TOKEN", ADMIN_TOKEN)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tern: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "tern {}: {}{}",
            args.join(" "),
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

/// Waits until `tern devices` satisfies `ok` for every device, or fails after 60 s.
fn wait_for(
    tern_bin: &Path,
    server: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let devices = tern(tern_bin, &["devices", "--server", server])?;
        // `tern devices` pretty-prints an array of objects, one per device: each
        // `\n  }` closes one, so every chunk holds one device's whole status.
        let all = DEVICES.iter().all(|(id, _)| {
            devices
                .split("\n  }")
                .any(|chunk| chunk.contains(&format!("\"id\": \"{id}\"")) && ok(chunk))
        });
        if all {
            println!("demo: ✓ {what}");
            return Ok(devices);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for: {what}\n{devices}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sign(
    tern_bin: &Path,
    wasm: &str,
    name: &str,
    version: &str,
    counter: &str,
    extra: &[&str],
    out: &Path,
) -> Result<String, String> {
    let out = out.to_str().ok_or("non-UTF-8 path")?;
    let mut args = vec![
        "sign",
        wasm,
        "--name",
        name,
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        version,
        "--counter",
        counter,
        "--board",
        "linux-gateway",
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    print!("demo: {}", tern(tern_bin, &args)?);
    Ok(out.to_string())
}

fn publish_and_assign(tern_bin: &Path, server: &str, bundle: &str) -> Result<(), String> {
    print!(
        "demo: {}",
        tern(tern_bin, &["publish", bundle, "--server", server])?
    );
    print!(
        "demo: {}",
        tern(
            tern_bin,
            &["assign", "group:site", bundle, "--server", server]
        )?
    );
    Ok(())
}

pub fn run(tern_bin: &Path) -> Result<(), String> {
    println!("\n== over the air: a fleet server and two gateways on loopback ==");
    let work: PathBuf = root().join("target/demo-ota");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut procs = Procs(Vec::new());

    let mut serve = Command::new(tern_bin);
    serve
        .current_dir(root())
        .env("TERN_ADMIN_TOKEN", ADMIN_TOKEN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--poll-ms",
            "300",
            "--data",
        ])
        .arg(work.join("server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (id, token) in DEVICES {
        serve.args(["--device", &format!("{id}={token}@site")]);
    }
    let mut server_proc = serve
        .spawn()
        .map_err(|e| format!("cannot start tern serve: {e}"))?;
    let stdout = server_proc.stdout.take().ok_or("no server stdout")?;
    procs.0.push(server_proc);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("tern serve: {e}"))?;
    let server = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|w| w.trim_end_matches(',').to_string())
        .ok_or_else(|| format!("tern serve did not say where it listens: {line}"))?;
    println!("demo: {}", line.trim());

    let smoother = "target/components/smoother.wasm";
    let v1 = sign(
        tern_bin,
        smoother,
        "smoother",
        "1.0.0",
        "1",
        &[],
        &work.join("v1.tern"),
    )?;
    publish_and_assign(tern_bin, &server, &v1)?;

    for (id, token) in DEVICES {
        let child = Command::new(tern_bin)
            .current_dir(root())
            .env("TERN_DEVICE_TOKEN", token)
            .args([
                "gateway",
                "--board",
                "linux-gateway",
                "--server",
                &server,
                "--device",
                id,
            ])
            .args([
                "--events",
                "components/smoother/events.jsonl",
                "--poll-ms",
                "300",
                "--data",
            ])
            .arg(work.join(id))
            .spawn()
            .map_err(|e| format!("cannot start tern gateway: {e}"))?;
        procs.0.push(child);
    }
    wait_for(tern_bin, &server, "both gateways run smoother 1.0.0", |d| {
        d.contains("\"version\": \"1.0.0\"")
    })?;

    let v2 = sign(
        tern_bin,
        smoother,
        "smoother",
        "1.1.0",
        "2",
        &[],
        &work.join("v2.tern"),
    )?;
    publish_and_assign(tern_bin, &server, &v2)?;
    wait_for(
        tern_bin,
        &server,
        "both gateways updated to smoother 1.1.0",
        |d| d.contains("\"version\": \"1.1.0\""),
    )?;

    // The alarm asking for gpio pin 7: signed correctly, but linux-gateway offers
    // pins 4-6 only, so its policy refuses it and 1.1.0 keeps running.
    let greedy = sign(
        tern_bin,
        "target/components/alarm.wasm",
        "alarm",
        "2.0.0",
        "3",
        &[
            "--grant",
            "log",
            "--grant",
            "clock",
            "--grant",
            "gpio=7",
            "--grant",
            "publish=site/",
        ],
        &work.join("greedy.tern"),
    )?;
    publish_and_assign(tern_bin, &server, &greedy)?;
    wait_for(
        tern_bin,
        &server,
        "the over-privileged alarm is refused for both (gpio 7 is not on linux-gateway) and 1.1.0 keeps running",
        |d| d.contains("scope escalation") && d.contains("\"version\": \"1.1.0\""),
    )?;

    // A v3 whose health check fails: installed on trial, then rolled back.
    let v3 = sign(
        tern_bin,
        "target/components/unhealthy.wasm",
        "smoother",
        "3.0.0",
        "4",
        &[],
        &work.join("v3.tern"),
    )?;
    publish_and_assign(tern_bin, &server, &v3)?;
    let devices = wait_for(
        tern_bin,
        &server,
        "smoother 3.0.0 failed its health check on both and was rolled back to 1.1.0",
        |d| d.contains("rolled-back") && d.contains("\"version\": \"1.1.0\""),
    )?;
    println!("\ndemo: the server's device status (tern devices):\n{devices}");
    drop(procs);
    Ok(())
}
