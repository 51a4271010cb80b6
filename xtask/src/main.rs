//! Tern's build entry point (`cargo xtask <task>`): components, demo, test, bench, device firmware.
//!
//! Needs only cargo and rustc (and QEMU for `run`): every build step calls `$CARGO`.
//! Its own dependencies are the board reader, the QEMU driver and ELF reading, never
//! an engine, so xtask stays quick to build.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod demo;
mod device;
mod interp;
mod ota;
mod profile;
mod setup;
mod size;

const HELP: &str = "\
cargo xtask <task>

Tasks:
  components [--verify-reproducible]
              build every component under components/ for wasm32-unknown-unknown
              (size-optimised) into target/components/<name>.wasm; with
              --verify-reproducible, build them again in a second target directory
              and fail unless the bytes are identical
  demo        build the components and run each example on wasmi and Wasmtime side
              by side; then over the air: a fleet server, two gateways and the QEMU
              device through v1, v2, a refused bundle and a rollback, the device's
              results next to the server's
  test        the whole test suite: formatting, lints, components (reproducible),
              unit, parity and hostile-fixture tests, guest unit tests, the no_std
              build for thumbv7em-none-eabihf, the firmware, and the QEMU device
              end to end

demo and test first install what a fresh machine lacks: the wasm32 and thumbv7em
Rust targets (rustup) and qemu-system-arm (apt-get, as root).
  fuzz [--seconds N]
              run each fuzz target (cargo-fuzz, nightly: the bundle parser, the
              device-image decoder, the plan executor) for N seconds (default 60); skipped with a
              message when cargo-fuzz is missing
  bench [--device [--profile] | --interp]
              criterion benchmarks of both engines next to the bare engines (prints
              the ratios), interpreter speed on one compute loop (wasmi as Tern ships
              it, wasmi's defaults, wasm3, Wasmtime; installs pywasm3 into
              target/pywasm3), the fleet server, and the smoother on the QEMU device in
              guest instructions (-icount); --device: only the device; --profile:
              also split the device's instructions per event by function (QEMU
              logs every instruction; slow); --interp: only the interpreter table
  run [--board BOARD] [--server URL] [--feed FILE] [--workdir DIR]
              build the device firmware (default qemu-mps2-an386) and boot it under
              QEMU with its decoded log; exits with the firmware's status
  qemu [--board BOARD] [--server URL] [--feed FILE] [--workdir DIR] ELF
              boot an already built firmware ELF (the firmware's cargo runner)
  flash --board BOARD [--elf ELF]
              build a device board's firmware into target/flash/BOARD/BOARD.elf and
              .bin; prints sizes, the trust keys compiled in, and how to flash it
  size [--board BOARD] [--elf ELF] [--linear-memory BYTES]
              the firmware's flash and RAM against the budgets, share per crate
  help        this text

`cargo xtask <task> --help` shows a task's options (run, qemu, flash, size) or
this text.
";

/// The guest link settings: a 16 KiB shadow stack and one 64 KiB initial page keep
/// instantiation cheap on wasmi (the default 1 MiB stack made it 4x slower).
const GUEST_RUSTFLAGS: &[&str] = &[
    "-Clink-arg=-zstack-size=16384",
    "-Clink-arg=--initial-memory=65536",
];

/// Example components (not fixtures): what the demo runs. `heartbeat` is of a world
/// of its own, over WASI logging and clocks.
pub const EXAMPLES: &[&str] = &["smoother", "alarm", "ruuvi", "heartbeat"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let own_help = matches!(
        args.first().map(String::as_str),
        Some("run" | "qemu" | "flash" | "size")
    );
    if !own_help && args.iter().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let result = match args.first().map(String::as_str) {
        Some("components") => {
            components(args.iter().any(|a| a == "--verify-reproducible")).map(|_| ())
        }
        Some("demo") => setup::ensure().and_then(|()| demo::run()),
        Some("test") => setup::ensure().and_then(|()| test()),
        Some("bench") if args.iter().any(|a| a == "--device") => {
            bench::device(args.iter().any(|a| a == "--profile"))
        }
        Some("bench") if args.iter().any(|a| a == "--interp") => interp::run(),
        Some("bench") => bench::run(),
        Some("run") => return exit_with(device::run(&args[1..])),
        Some("qemu") => return exit_with(device::qemu(&args[1..])),
        Some("flash") => device::flash(&args[1..]),
        Some("size") => size::run(&args[1..]),
        Some("fuzz") => {
            let seconds = args
                .iter()
                .position(|a| a == "--seconds")
                .and_then(|i| args.get(i + 1))
                .map_or(Ok(60), |s| s.parse::<u32>())
                .map_err(|e| format!("--seconds: {e}"));
            seconds.and_then(fuzz)
        }
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A task's own exit code, or failure after printing its error.
fn exit_with(result: Result<ExitCode, String>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("xtask: {e}");
        ExitCode::FAILURE
    })
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// `$CARGO`, or `cargo`.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a command, failing with its description if it fails; says how long it took
/// (where CI's minutes go).
pub fn step(cmd: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    eprintln!("xtask: ({what}: {:.0} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: failed ({status})"))
    }
}

/// The component crates: `members` of components/Cargo.toml except the SDK.
fn component_members() -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(root().join("components/Cargo.toml"))
        .map_err(|e| format!("components/Cargo.toml: {e}"))?;
    let start = manifest
        .find("members = [")
        .ok_or("components/Cargo.toml: no `members = [`")?;
    let list = &manifest[start..];
    let list = &list[..list
        .find(']')
        .ok_or("components/Cargo.toml: unterminated members")?];
    Ok(list
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| *m != "guest")
        .map(str::to_string)
        .collect())
}

/// Builds every component into `target/<out_dir>/`, using `target_dir` for cargo.
fn build_components(target_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let root = root();
    let members = component_members()?;
    let mut flags: Vec<String> = GUEST_RUSTFLAGS.iter().map(|s| s.to_string()).collect();
    // Paths must not leak into the bytes: the same source gives the same wasm
    // wherever it is checked out.
    flags.push(format!("--remap-path-prefix={}=/tern", root.display()));
    if let Some(home) = std::env::var_os("CARGO_HOME").or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string())
    }) {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            Path::new(&home).display()
        ));
    }
    let mut cmd = cargo();
    cmd.current_dir(root.join("components"))
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ]);
    for m in &members {
        cmd.args(["-p", package_name(m)]);
    }
    step(&mut cmd, "building components for wasm32-unknown-unknown")?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut out = Vec::new();
    for m in &members {
        let name = package_name(m);
        let built = target_dir
            .join("wasm32-unknown-unknown/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&built, &dest)
            .map_err(|e| format!("copy {} -> {}: {e}", built.display(), dest.display()))?;
        out.push(dest);
    }
    Ok(out)
}

/// The package name of a member path (`fixtures/spin` → `spin`).
fn package_name(member: &str) -> &str {
    member.rsplit('/').next().unwrap_or(member)
}

/// `cargo xtask components`.
pub fn components(verify_reproducible: bool) -> Result<Vec<PathBuf>, String> {
    let root = root();
    let built = build_components(
        &root.join("components/target"),
        &root.join("target/components"),
    )?;
    for path in &built {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{:>8} bytes  {}",
            size,
            path.strip_prefix(&root).unwrap_or(path).display()
        );
    }
    if verify_reproducible {
        let again = build_components(
            &root.join("target/components-repro/build"),
            &root.join("target/components-repro/out"),
        )?;
        for (a, b) in built.iter().zip(&again) {
            let (x, y) = (std::fs::read(a), std::fs::read(b));
            match (x, y) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => {
                    return Err(format!(
                        "not reproducible: {} differs from {} built in another directory",
                        a.display(),
                        b.display()
                    ));
                }
            }
        }
        println!("reproducible: a second build in another directory gave identical bytes");
    }
    Ok(built)
}

/// `cargo xtask test`: everything CI checks.
fn test() -> Result<(), String> {
    let root = root();
    step(
        cargo().args(["fmt", "--all", "--check"]),
        "cargo fmt --check (runtime)",
    )?;
    step(
        cargo()
            .current_dir(root.join("components"))
            .args(["fmt", "--all", "--check"]),
        "cargo fmt --check (components)",
    )?;
    components(true)?;
    step(
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        "clippy (host)",
    )?;
    step(
        cargo().args([
            "clippy",
            "--locked",
            "-p",
            "tern-core",
            "-p",
            "tern-wasmi",
            "-p",
            "tern-agent",
            "-p",
            "tern-net",
            "-p",
            "tern-lan9118",
            "-p",
            "tern-slip",
            "--target",
            "thumbv7em-none-eabihf",
            "--",
            "-D",
            "warnings",
        ]),
        "no_std build + clippy of tern-core, tern-wasmi, tern-agent, tern-net, tern-lan9118 and tern-slip for thumbv7em-none-eabihf",
    )?;
    step(
        cargo()
            .current_dir(root.join("components"))
            .env("CARGO_TARGET_DIR", root.join("components/target"))
            .args([
                "clippy",
                "--locked",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .args(["--", "-D", "warnings"]),
        "clippy (components, wasm32)",
    )?;
    step(
        cargo().args([
            "test",
            "--locked",
            "-p",
            "tern-agent",
            "--test",
            "power_fail",
            "--",
            "--nocapture",
        ]),
        "power-fail suite (prints its cut count)",
    )?;
    step(
        cargo().args([
            "test",
            "--workspace",
            "--locked",
            "--",
            "--skip",
            "power_cut",
            "--skip",
            "double_cuts",
            // Its own step below, with the device's log shown.
            "--skip",
            "installs_updates_refuses_and_survives_restart",
        ]),
        "unit, parity and hostile-fixture tests",
    )?;
    step(
        cargo()
            .current_dir(root.join("components"))
            .env("CARGO_TARGET_DIR", root.join("components/target"))
            .args(["test", "--locked", "--workspace", "--exclude", "tern-guest"]),
        "guest unit tests (host target)",
    )?;
    board_edit_changes_policy()?;
    firmware_checks()?;
    step(
        cargo().args([
            "test",
            "--locked",
            // The workspace's feature set, as the step before built it: `-p tern`
            // alone resolves other features and builds Wasmtime a second time.
            "--workspace",
            "--test",
            "device_qemu",
            "--",
            "--nocapture",
        ]),
        "the QEMU devices end to end (firmware on mps2-an386 and mps2-an505, smoltcp, fleet server on loopback)",
    )?;
    // Every target, 20 s each: about the minute the bundle parser alone used to have.
    fuzz(20)?;
    println!("xtask: all tests passed");
    Ok(())
}

/// The device boards with a firmware, and the target each builds for.
pub(crate) const FIRMWARE_BOARDS: [(&str, &str); 3] = [
    ("qemu-mps2-an386", "thumbv7em-none-eabihf"),
    ("qemu-mps2-an505", "thumbv8m.main-none-eabihf"),
    // Real hardware: built, linted and sized here, never run (no QEMU model).
    ("nrf52840-dk", "thumbv7em-none-eabihf"),
];

/// Each firmware is its own cargo workspace (one target each): formatted, and clippy
/// clean with warnings denied (the board crate and `tern-device`, which only builds
/// inside a firmware), which also proves it builds; then its footprint.
fn firmware_checks() -> Result<(), String> {
    step(
        cargo()
            .current_dir(root().join("runtime/device"))
            .args(["fmt", "--check"]),
        "cargo fmt --check (tern-device)",
    )?;
    for (board, target) in FIRMWARE_BOARDS {
        let fw = root().join("boards").join(board).join("firmware");
        step(
            cargo().current_dir(&fw).args(["fmt", "--check"]),
            &format!("cargo fmt --check (firmware of {board})"),
        )?;
        let package = format!("tern-fw-{}", board.trim_start_matches("qemu-"));
        step(
            cargo().current_dir(&fw).args([
                "clippy",
                "--locked",
                "--release",
                "-p",
                &package,
                "-p",
                "tern-device",
                "--",
                "-D",
                "warnings",
            ]),
            &format!("clippy (firmware of {board} and tern-device, {target})"),
        )?;
        step(
            cargo().args([
                "run", "--quiet", "-p", "xtask", "--", "size", "--board", board,
            ]),
            &format!("firmware footprint of {board} (cargo xtask size)"),
        )?;
    }
    Ok(())
}

/// Builds `target/debug/tern` with the feature set `cargo test --workspace` resolves
/// (dev-dependencies' features included), so that it reuses that build: `cargo build
/// -p tern` resolves other features and compiles Wasmtime and Cranelift a second time
/// (about a gigabyte and minutes of CI). `--test cli` is the smallest target that needs
/// the binary.
pub(crate) const TERN_BUILD: [&str; 6] = [
    "test",
    "--locked",
    "--workspace",
    "--no-run",
    "--test",
    "cli",
];

/// Builds `target/debug/tern` ([`TERN_BUILD`]) as the step `what`; returns its path.
pub(crate) fn build_tern(what: &str) -> Result<PathBuf, String> {
    step(cargo().args(TERN_BUILD), what)?;
    Ok(root().join("target/debug/tern"))
}

/// Runs the `tern` binary; returns (success, stdout + stderr).
fn tern(args: &[&str]) -> Result<(bool, String), String> {
    let out = Command::new(root().join("target/debug/tern"))
        .current_dir(root())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tern: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Proves that a board's capabilities come only from its board.toml: the same signed
/// bundle is accepted by `tern verify`, then refused once `gpio` is removed from a
/// copy of the board's file and tern is rebuilt from it, with no code change.
fn board_edit_changes_policy() -> Result<(), String> {
    let root = root();
    let work = root.join("target/board-edit");
    let _ = std::fs::remove_dir_all(&work);
    let edited = work.join("boards");
    for entry in std::fs::read_dir(root.join("boards")).map_err(|e| format!("boards/: {e}"))? {
        let dir = entry.map_err(|e| e.to_string())?.path();
        let file = dir.join("board.toml");
        if file.is_file() {
            let name = dir.file_name().unwrap_or_default();
            let dest = edited.join(name);
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            let mut text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            if name == "qemu-mps2-an386" {
                // Only the offer goes: `gpio` under [capabilities]; the board still
                // has its pins ([peripherals]).
                let mut section = "";
                text = text
                    .lines()
                    .filter(|l| {
                        if l.starts_with('[') {
                            section = l.trim();
                        }
                        !(section == "[capabilities]" && l.starts_with("gpio ="))
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            std::fs::write(dest.join("board.toml"), text).map_err(|e| e.to_string())?;
        }
    }
    let bundle = work.join("alarm.tern");
    let bundle = bundle.to_str().ok_or("non-UTF-8 path")?;
    build_tern("board edit: building tern")?;
    let sign = [
        "sign",
        "target/components/alarm.wasm",
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "--board",
        "qemu-mps2-an386",
        "-o",
        bundle,
    ];
    let verify = ["verify", bundle, "--board", "qemu-mps2-an386"];
    let (ok, text) = tern(&sign)?;
    if !ok {
        return Err(format!("board edit: tern sign failed:\n{text}"));
    }
    let (ok, text) = tern(&verify)?;
    if !ok {
        return Err(format!(
            "board edit: the unedited board refused the alarm:\n{text}"
        ));
    }
    let rebuilt = step(
        cargo().env("TERN_BOARDS_DIR", &edited).args(TERN_BUILD),
        "board edit: rebuilding tern from a qemu-mps2-an386 board.toml without gpio",
    )
    .and_then(|()| tern(&verify));
    // Put the real boards back whatever happened.
    step(cargo().args(TERN_BUILD), "board edit: restoring tern")?;
    let (ok, text) = rebuilt?;
    if ok || !text.contains("capability not offered") {
        return Err(format!(
            "board edit: without gpio in board.toml the alarm bundle should be refused for gpio, got:\n{text}"
        ));
    }
    println!(
        "board edit: removing gpio from qemu-mps2-an386/board.toml made tern verify refuse the alarm ({})",
        text.trim()
    );
    Ok(())
}

/// The cargo-fuzz targets in tests/fuzz, each with its committed seed corpus
/// (tests/fuzz/corpus/<target>).
const FUZZ_TARGETS: [(&str, &str); 3] = [
    ("bundle_parse", "the bundle parser"),
    ("device_image", "the device-image decoder"),
    (
        "plan_executor",
        "the plan executor (device images loaded and run on wasmi)",
    ),
];

/// `cargo xtask fuzz`: each fuzz target under libFuzzer for `seconds`, starting from
/// its committed seed corpus; new inputs go to target/fuzz-corpus/<target>.
fn fuzz(seconds: u32) -> Result<(), String> {
    let available = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !available {
        println!(
            "fuzz: SKIPPED, cargo-fuzz is not installed (install: cargo +nightly install cargo-fuzz; .ci/run does)"
        );
        return Ok(());
    }
    let root = root();
    for (target, what) in FUZZ_TARGETS {
        let scratch = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        // Not `$CARGO`: the fuzz target needs the nightly toolchain, chosen by `+nightly`.
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            .env_remove("RUSTC")
            .env_remove("RUSTUP_TOOLCHAIN")
            .args([
                "+nightly",
                "fuzz",
                "run",
                "--fuzz-dir",
                "tests/fuzz",
                target,
            ])
            .arg(&scratch)
            .arg(root.join("tests/fuzz/corpus").join(target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-max_len=65536",
            ]);
        step(&mut cmd, &format!("fuzzing {what} for {seconds} s"))?;
    }
    Ok(())
}
