//! The OTA part of `cargo xtask demo`: a fleet server on loopback, two gateway agents
//! and the QEMU device (the real firmware on mps2-an386, over smoltcp and QEMU's
//! restricted user network), walked through publish v1, update to v2, a refused
//! over-privileged bundle, and the automatic rollback of a failing v3. The device's
//! results over its sensor feed are printed next to the server engine's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern_qemu::{Echo, Qemu, QemuOptions};

use crate::root;

const ADMIN_TOKEN: &str = "demo-admin-token-not-secret";
const GATEWAYS: [(&str, &str); 2] = [
    ("gw-1", "demo-gw-1-token-not-secret"),
    ("gw-2", "demo-gw-2-token-not-secret"),
];
/// The QEMU device: the identity its firmware is built with by default (its build.rs).
pub(crate) const QEMU_DEVICE: (&str, &str) = ("qemu-1", "qemu-1-development-token");
pub(crate) const QEMU_BOARD: &str = "qemu-mps2-an386";
/// Every device in the walk-through.
const DEVICES: [(&str, &str); 3] = [GATEWAYS[0], GATEWAYS[1], QEMU_DEVICE];
/// The smoother's events: the gateways' event file and the device's sensor feed.
const EVENTS: &str = "components/smoother/events.jsonl";

/// Child processes that are stopped when the demo ends, however it ends.
pub(crate) struct Procs(pub(crate) Vec<Child>);

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

pub(crate) fn tern(tern: &Path, args: &[&str]) -> Result<String, String> {
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
    // The device runs under QEMU without acceleration: give it time.
    let deadline = Instant::now() + Duration::from_secs(120);
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

pub(crate) fn sign(
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
        "--board",
        QEMU_BOARD,
        "--board",
        "server",
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

/// The device's result lines for its next run of `name version` over the feed.
fn device_results(qemu: &mut Qemu, name: &str, version: &str) -> Result<Vec<String>, String> {
    let step = Duration::from_secs(120);
    qemu.wait_for(&format!("running {name} {version} over"), step)?;
    Ok(qemu
        .wait_for("done: ", step)?
        .iter()
        .filter(|l| l.text.starts_with("result "))
        .map(|l| l.text.clone())
        .collect())
}

/// Prints the device's results next to the server engine's for the same bundle and
/// events, and fails unless they are identical.
fn side_by_side(tern_bin: &Path, bundle: &str, device: &[String]) -> Result<(), String> {
    let server = tern(
        tern_bin,
        &[
            "run",
            bundle,
            "--board",
            "server",
            "--engine",
            "wasmtime",
            "--events",
            EVENTS,
            "--results",
        ],
    )?;
    let server: Vec<&str> = server.lines().collect();
    let width = device.iter().map(|l| l.len()).max().unwrap_or(0).max(28);
    println!(
        "demo: {:<width$} | server: tern run --engine wasmtime",
        "QEMU device qemu-1 (wasmi, Cortex-M4)"
    );
    for i in 0..device.len().max(server.len()) {
        let d = device.get(i).map_or("", |s| s.as_str());
        let s = server.get(i).copied().unwrap_or("");
        let mark = if d == s { " " } else { "≠" };
        println!("demo: {d:<width$} {mark} {s}");
    }
    if device.iter().map(String::as_str).eq(server.iter().copied()) {
        println!(
            "demo: ✓ the device's {} results are identical to the server's",
            device.len()
        );
        Ok(())
    } else {
        Err("the QEMU device's results differ from the server's (≠ above)".into())
    }
}

/// Builds the QEMU board's firmware (board table and keys from its board.toml).
pub(crate) fn build_device() -> Result<PathBuf, String> {
    println!("demo: building the {QEMU_BOARD} firmware (board table and keys from its board.toml)");
    tern_qemu::build_firmware(&root(), QEMU_BOARD, &[])
}

/// Boots the QEMU device with its flash and sensor feed (the smoother's events) in
/// `dir`, its server address forwarded to the port of `server`, `-icount` if asked.
pub(crate) fn boot_device(
    tern_bin: &Path,
    elf: &Path,
    dir: &Path,
    server: &str,
    echo: Echo,
    icount: bool,
    exec_trace: Option<&Path>,
) -> Result<Qemu, String> {
    let board_file = root().join("boards").join(QEMU_BOARD).join("board.toml");
    let text = std::fs::read_to_string(&board_file)
        .map_err(|e| format!("{}: {e}", board_file.display()))?;
    let guest_server = tern_board::parse_board(&format!("boards/{QEMU_BOARD}/board.toml"), &text)
        .map_err(|e| e.to_string())?
        .network
        .ok_or("the QEMU board has no [network] section")?
        .server;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let feed = dir.join("tern-feed.bin");
    print!(
        "demo: sensor feed: {}",
        tern(
            tern_bin,
            &["feed", EVENTS, "-o", feed.to_str().ok_or("non-UTF-8 path")?]
        )?
    );
    let port = server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| format!("no port in {server}"))?;
    println!(
        "demo: starting QEMU {QEMU_BOARD}: the guest reaches only {guest_server}, forwarded to 127.0.0.1:{port}"
    );
    Qemu::start_with_echo(
        elf,
        &QemuOptions {
            machine: tern_qemu::MACHINE.to_string(),
            server_port: Some(port),
            guest_server,
            workdir: dir.to_path_buf(),
            icount,
            exec_trace: exec_trace.map(Path::to_path_buf),
            timeout: Some(Duration::from_secs(30 * 60)),
        },
        echo,
    )
}

/// Starts `tern serve` on a free loopback port with `devices` (`ID=TOKEN[@GROUP]`)
/// provisioned; it is stopped with `procs`. Returns its URL.
pub(crate) fn serve(
    tern_bin: &Path,
    data: &Path,
    devices: &[String],
    procs: &mut Procs,
) -> Result<String, String> {
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
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for d in devices {
        serve.args(["--device", d]);
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
    Ok(server)
}

pub fn run(tern_bin: &Path) -> Result<(), String> {
    println!("\n== over the air: a fleet server, two gateways and the QEMU device on loopback ==");
    let work: PathBuf = root().join("target/demo-ota");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut procs = Procs(Vec::new());

    // Built first: a slow firmware build must not hold up the gateways' check-ins.
    let elf = build_device()?;
    let devices: Vec<String> = DEVICES
        .iter()
        .map(|(id, token)| format!("{id}={token}@site"))
        .collect();
    let server = serve(tern_bin, &work.join("server"), &devices, &mut procs)?;

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

    let mut qemu = boot_device(
        tern_bin,
        &elf,
        &work.join(QEMU_DEVICE.0),
        &server,
        Echo::Stdout {
            prefix: format!("[{}] ", QEMU_DEVICE.0),
        },
        false,
        None,
    )?;

    for (id, token) in GATEWAYS {
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
            .args(["--events", EVENTS, "--poll-ms", "300", "--data"])
            .arg(work.join(id))
            .spawn()
            .map_err(|e| format!("cannot start tern gateway: {e}"))?;
        procs.0.push(child);
    }
    wait_for(
        tern_bin,
        &server,
        "both gateways and the QEMU device run smoother 1.0.0",
        |d| d.contains("\"version\": \"1.0.0\""),
    )?;
    let results = device_results(&mut qemu, "smoother", "1.0.0")?;
    side_by_side(tern_bin, &v1, &results)?;

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
        "both gateways and the QEMU device updated to smoother 1.1.0",
        |d| d.contains("\"version\": \"1.1.0\""),
    )?;
    let results = device_results(&mut qemu, "smoother", "1.1.0")?;
    side_by_side(tern_bin, &v2, &results)?;

    // The alarm asking for gpio pin 7: signed correctly, but linux-gateway offers
    // pins 4-6 and the QEMU board pin 4 only, so their policy refuses it and 1.1.0
    // keeps running. `tern sign` sees that refusal coming and writes the bundle only
    // with --sign-anyway.
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
            "--sign-anyway",
        ],
        &work.join("greedy.tern"),
    )?;
    publish_and_assign(tern_bin, &server, &greedy)?;
    wait_for(
        tern_bin,
        &server,
        "the over-privileged alarm is refused for all three (gpio 7 is on neither board) and 1.1.0 keeps running",
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
        "smoother 3.0.0 failed its health check on all three and was rolled back to 1.1.0",
        |d| d.contains("rolled-back") && d.contains("\"version\": \"1.1.0\""),
    )?;
    // The device keeps serving the component it rolled back to.
    let results = device_results(&mut qemu, "smoother", "1.1.0")?;
    side_by_side(tern_bin, &v2, &results)?;
    println!("\ndemo: the server's device status (tern devices):\n{devices}");
    qemu.kill();
    drop(procs);
    Ok(())
}
