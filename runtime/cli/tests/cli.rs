//! The `tern` command end to end: keygen, sign, verify, inspect, run, feed and the
//! help texts, including every refusal's exit code and message.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tern(args: &[&str]) -> (i32, String, String) {
    tern_in(&root(), args)
}

/// Runs tern with `dir` as its working directory (a new user's, outside the repo).
fn tern_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn component(name: &str) -> String {
    let p = root()
        .join("target/components")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{}: build it with `cargo xtask components`",
        p.display()
    );
    p.to_str().unwrap().to_string()
}

#[test]
fn keygen_writes_a_private_key_it_never_prints_and_refuses_to_overwrite() {
    let dir = scratch("keygen");
    let d = dir.to_str().unwrap();
    let (code, out, _) = tern(&["keygen", "--out", d, "--name", "ops"]);
    assert_eq!(code, 0);
    let seed = std::fs::read_to_string(dir.join("ops.key")).unwrap();
    assert!(
        !out.contains(seed.trim()),
        "the private key must never be printed"
    );
    assert!(out.contains(std::fs::read_to_string(dir.join("ops.pub")).unwrap().trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("ops.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, err) = tern(&["keygen", "--out", d, "--name", "ops"]);
    assert_eq!(code, 1);
    assert!(err.contains("not overwriting"), "{err}");
}

#[test]
fn sign_verify_inspect_run_and_every_refusal() {
    let dir = scratch("sign");
    let bundle = dir.join("alarm.tern");
    let b = bundle.to_str().unwrap();
    let alarm = component("alarm");
    let (code, out, err) = tern(&[
        "sign",
        &alarm,
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "3",
        "--board",
        "qemu-mps2-an386",
        "-o",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed alarm 1.0.0"));

    // Accepted by its board, with the grant from components/alarm/component.toml.
    let (code, out, _) = tern(&["verify", b, "--board", "qemu-mps2-an386"]);
    assert_eq!(code, 0);
    assert!(out.contains("accepted") && out.contains("gpio"), "{out}");

    // Refused, each with its reason and exit code 1.
    let (code, _, err) = tern(&["verify", b, "--board", "server"]);
    assert_eq!((code, err.contains("wrong target")), (1, true), "{err}");
    let (code, _, err) = tern(&[
        "verify",
        b,
        "--board",
        "qemu-mps2-an386",
        "--installed-counter",
        "3",
    ]);
    assert_eq!((code, err.contains("downgrade")), (1, true), "{err}");
    let (code, _, err) = tern(&[
        "verify",
        b,
        "--board",
        "qemu-mps2-an386",
        "--trust",
        "boards/keys/tern-dev-ops-2026.pub",
    ]);
    assert_eq!((code, err.contains("does not trust")), (1, true), "{err}");
    let (code, _, err) = tern(&["verify", b, "--board", "mars-rover"]);
    assert_eq!((code, err.contains("unknown board")), (1, true), "{err}");

    let mut tampered = std::fs::read(&bundle).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55;
    let t = dir.join("tampered.tern");
    std::fs::write(&t, &tampered).unwrap();
    let (code, _, err) = tern(&["verify", t.to_str().unwrap(), "--board", "qemu-mps2-an386"]);
    assert_eq!((code, err.contains("SHA-256")), (1, true), "{err}");

    // Inspect names the key and says the signature verifies.
    let (code, out, _) = tern(&["inspect", b]);
    assert_eq!(code, 0);
    assert!(
        out.contains("verifies by tern-dev-2026") && out.contains("counter:   3"),
        "{out}"
    );
    // And says what the payload is and what it imports.
    assert!(
        out.contains("kind:      core module\n")
            // The alarm logs, reads the clock, drives a pin and publishes alerts.
            && out.contains(
                "imports:   tern:edge/log@0.1.0, tern:edge/clock@0.1.0, tern:edge/gpio@0.1.0, tern:edge/publish@0.1.0"
            ),
        "{out}"
    );

    // Run needs a board for a bundle; with one, it runs with the signed grant.
    let events = "components/alarm/events.jsonl";
    let (code, _, err) = tern(&["run", b, "--events", events]);
    assert_eq!((code, err.contains("pass --board")), (1, true), "{err}");
    let (code, out, err) = tern(&[
        "run",
        b,
        "--board",
        "qemu-mps2-an386",
        "--engine",
        "wasmi",
        "--events",
        events,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"gpio.set\"") && out.contains("\"publish.publish\""));
    let (code, _, err) = tern(&[
        "run",
        t.to_str().unwrap(),
        "--board",
        "qemu-mps2-an386",
        "--events",
        events,
    ]);
    assert_eq!(
        (code, err.contains("SHA-256")),
        (1, true),
        "a tampered bundle never runs: {err}"
    );
}

#[test]
fn sign_refuses_a_manifest_that_could_never_load() {
    let dir = scratch("refuse");
    let out = dir.join("x.tern");
    // The alarm imports gpio; a grant without it would fail at link time on every board.
    let (code, _, err) = tern(&[
        "sign",
        &component("alarm"),
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "--board",
        "server",
        "--grant",
        "log",
        "--grant",
        "clock",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("tern:edge/gpio@0.1.0"), "{err}");
    assert!(!out.exists(), "nothing is written when signing fails");
    let (code, _, err) = tern(&[
        "sign",
        &component("alarm"),
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0",
        "--counter",
        "1",
        "--board",
        "server",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        (code, err.contains("major.minor.patch")),
        (1, true),
        "{err}"
    );
}

#[test]
fn feed_encodes_an_event_file_for_a_device_and_refuses_bad_input() {
    let dir = scratch("feed");
    let events = root().join("components/smoother/events.jsonl");
    let out = dir.join("tern-feed.bin");
    let (code, stdout, stderr) = tern(&[
        "feed",
        events.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("17 events"), "{stdout}");
    // What the firmware decodes: the same config and events as the file says.
    let bytes = std::fs::read(&out).unwrap();
    let (config, decoded): (Vec<(String, String)>, Vec<tern_core::Event>) =
        postcard::from_bytes(&bytes).unwrap();
    let parsed =
        tern_host::events::EventFile::parse(&std::fs::read_to_string(&events).unwrap()).unwrap();
    assert_eq!(config, parsed.config);
    assert_eq!(decoded, parsed.events);
    assert_eq!(config.len(), 3);

    // A line that is not an event: exit 1, the line named, nothing written.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"tick\": 5}\n{\"sample\": 3}\n").unwrap();
    let bad_out = dir.join("bad.bin");
    let (code, _, stderr) = tern(&[
        "feed",
        bad.to_str().unwrap(),
        "-o",
        bad_out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!bad_out.exists());

    // More than a device reads: refused with the limit, nothing written.
    let big = dir.join("big.jsonl");
    let line = "{\"frame\": \"".to_string() + &"ab".repeat(200) + "\"}\n";
    std::fs::write(&big, line.repeat(100)).unwrap();
    let big_out = dir.join("big.bin");
    let (code, _, stderr) = tern(&[
        "feed",
        big.to_str().unwrap(),
        "-o",
        big_out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("at most 16384"), "{stderr}");
    assert!(!big_out.exists());
}

/// The development key, as a path that works from any directory.
fn dev_key() -> String {
    root()
        .join("boards/keys/tern-dev-2026.key")
        .to_str()
        .unwrap()
        .to_string()
}

/// `sensors=a,b,..` for what `board` offers, built from the compiled-in table (not
/// from anything tern prints).
fn offered_sensors(board: &tern_core::board::BoardTable) -> String {
    match board.offers().sensors.unwrap() {
        tern_core::board::StaticScope::Only(ids) => format!("sensors={}", ids.join(",")),
        tern_core::board::StaticScope::Any => panic!("{} offers every sensor", board.name()),
    }
}

/// Signs the smoother from `dir` for `boards`, with `extra` flags, to `dir/out.tern`.
fn sign_smoother_in(dir: &Path, boards: &[&str], extra: &[&str]) -> (i32, String, PathBuf) {
    let out = dir.join("out.tern");
    let smoother = component("smoother");
    let key = dev_key();
    let mut args = vec![
        "sign",
        &smoother,
        "--key",
        &key,
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "-o",
        out.to_str().unwrap(),
    ];
    for b in boards {
        args.extend(["--board", b]);
    }
    args.extend_from_slice(extra);
    let (code, _, err) = tern_in(dir, &args);
    (code, err, out)
}

#[test]
fn sign_outside_the_repo_refuses_what_the_board_would_refuse_and_says_how_to_fix_it() {
    // No components/smoother/component.toml here: the grant is inferred from the
    // imports, unscoped, which linux-gateway (three named sensors) refuses.
    let dir = scratch("infer");
    let (code, err, out) = sign_smoother_in(&dir, &["linux-gateway"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        !out.exists(),
        "nothing is written when a board would refuse"
    );

    // Where the grant came from: one line, before the refusal, naming component.toml.
    let first = err.lines().next().unwrap();
    assert!(
        first.contains("component.toml") && first.contains("unscoped") && first.contains("sensors"),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("requesting every interface"))
            .count(),
        1,
        "{err}"
    );
    // Which board, why, and the fixes, with flags `tern sign` really has.
    assert!(err.contains("board `linux-gateway`"), "{err}");
    assert!(err.contains("scope escalation"), "{err}");
    assert!(err.contains("every sensor"), "{err}");
    assert!(err.contains("--component-toml"), "{err}");
    assert!(err.contains("--sign-anyway"), "{err}");
    let wanted = offered_sensors(&tern_host::boards::LINUX_GATEWAY);
    let fix = err
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("--grant "))
        .unwrap_or_else(|| panic!("no --grant suggestion in:\n{err}"));
    assert!(fix.contains(&format!("--grant {wanted}")), "{fix}");

    // The suggested flags, as printed, make a bundle the board accepts.
    let fix: Vec<&str> = fix.split_whitespace().collect();
    let (code, err, out) = sign_smoother_in(&dir, &["linux-gateway"], &fix);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, stderr) =
        tern(&["verify", out.to_str().unwrap(), "--board", "linux-gateway"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("accepted"), "{stdout}");
    // No inference line when --grant says what is requested.
    assert!(!err.contains("requesting every interface"), "{err}");
}

#[test]
fn sign_anyway_writes_the_bundle_the_board_then_refuses() {
    let dir = scratch("anyway");
    let (code, err, out) = sign_smoother_in(&dir, &["linux-gateway"], &["--sign-anyway"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists());
    // Still warned, with the board and the reason.
    assert!(
        err.contains("board `linux-gateway`") && err.contains("scope escalation"),
        "{err}"
    );
    // And the warning was right: the board's own check refuses the bundle.
    let (code, _, stderr) = tern(&["verify", out.to_str().unwrap(), "--board", "linux-gateway"]);
    assert_eq!(
        (code, stderr.contains("scope escalation")),
        (1, true),
        "{stderr}"
    );
}

/// Signs `wasm` from `dir` (no component.toml there: the grant is the imports, here
/// none) with `extra` flags, to `dir/out.tern`.
fn sign_wasm_in(dir: &Path, wasm: &Path, extra: &[&str]) -> (i32, String, PathBuf) {
    let out = dir.join("out.tern");
    let _ = std::fs::remove_file(&out);
    let key = dev_key();
    let mut args = vec![
        "sign",
        wasm.to_str().unwrap(),
        "--key",
        &key,
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = tern_in(dir, &args);
    (code, err, out)
}

#[test]
fn sign_refuses_wasm_a_targeted_engine_cannot_run_and_verify_agrees() {
    let dir = scratch("features");
    let simd = dir.join("simd.wasm");
    std::fs::write(
        &simd,
        wat::parse_str(
            "(module (func) (func (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 0))",
        )
        .unwrap(),
    )
    .unwrap();
    let plain = dir.join("plain.wasm");
    std::fs::write(&plain, wat::parse_str("(module (func) (func))").unwrap()).unwrap();

    // The wasmi board: board, engine, feature, where, and the fix; nothing written.
    let (code, err, out) = sign_wasm_in(&dir, &simd, &["--board", "qemu-mps2-an386"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        !out.exists(),
        "nothing is written when an engine would refuse"
    );
    assert!(
        err.contains("board `qemu-mps2-an386` runs wasmi, which does not support the `simd` proposal (SIMD support is not enabled, at function 1, offset 0x"),
        "{err}"
    );
    assert!(
        err.contains("build without `simd` or target only wasmtime boards"),
        "{err}"
    );
    // Any board running wasmi, likewise.
    let (code, err, _) = sign_wasm_in(&dir, &simd, &["--engine", "wasmi"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("engine `wasmi` (--engine): wasmi does not support the `simd` proposal"),
        "{err}"
    );
    // A Wasmtime board signs it.
    let (code, err, out) = sign_wasm_in(&dir, &simd, &["--board", "server"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists());

    // Written anyway, the board's own check refuses it before it could be installed.
    let (code, err, out) = sign_wasm_in(
        &dir,
        &simd,
        &["--board", "qemu-mps2-an386", "--sign-anyway"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, stderr) = tern(&[
        "verify",
        out.to_str().unwrap(),
        "--board",
        "qemu-mps2-an386",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("rejected: board `qemu-mps2-an386` runs wasmi, which does not support the `simd` proposal"),
        "{stderr}"
    );

    // Without SIMD: both kinds of board.
    let (code, err, out) = sign_wasm_in(
        &dir,
        &plain,
        &["--board", "server", "--board", "qemu-mps2-an386"],
    );
    assert_eq!(code, 0, "{err}");
    for board in ["server", "qemu-mps2-an386"] {
        let (code, stdout, stderr) = tern(&["verify", out.to_str().unwrap(), "--board", board]);
        assert_eq!(code, 0, "{board}: {stderr}");
        assert!(stdout.starts_with("accepted"), "{stdout}");
    }
    let (_, help, _) = tern(&["sign", "--help"]);
    assert!(help.contains("SIMD on a"), "{help}");
}

#[test]
fn sign_names_only_the_boards_that_refuse_and_each_reason() {
    let dir = scratch("several");
    // The server offers everything unscoped; only the gateway refuses.
    let (code, err, out) = sign_smoother_in(&dir, &["server", "linux-gateway"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(err.contains("board `linux-gateway`"), "{err}");
    assert!(!err.contains("board `server`"), "{err}");
    // Without a board the inferred grant is not checked against anything.
    let (code, err, out) = sign_smoother_in(&dir, &[], &["--engine", "wasmtime"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists());

    // A key the board does not trust: refused, naming the key it does trust.
    let out = dir.join("ops.tern");
    let (code, _, err) = tern(&[
        "sign",
        &component("alarm"),
        "--key",
        "boards/keys/tern-dev-ops-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "--board",
        "qemu-mps2-an386",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(
        err.contains("board `qemu-mps2-an386`") && err.contains("does not trust"),
        "{err}"
    );
    assert!(
        err.contains("tern-dev-2026") && err.contains("--key"),
        "{err}"
    );

    // components/alarm/component.toml publishes under alerts/ (the QEMU board's
    // prefix) and the gateway offers site/ only: no one grant suits both boards.
    let out = dir.join("alarm.tern");
    let (code, _, err) = tern(&[
        "sign",
        &component("alarm"),
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "--board",
        "qemu-mps2-an386",
        "--board",
        "linux-gateway",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(
        err.contains("board `linux-gateway`") && !err.contains("board `qemu-mps2-an386`"),
        "{err}"
    );
    assert!(err.contains("components/alarm/component.toml"), "{err}");
    assert!(err.contains("one bundle per board"), "{err}");
    // ... and, for the gateway alone, a grant it accepts: signed with it, it verifies.
    let fix = err
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("--board linux-gateway --grant "))
        .unwrap_or_else(|| panic!("no per-board suggestion in:\n{err}"));
    let mut args = vec![
        "sign",
        "target/components/alarm.wasm",
        "--key",
        "boards/keys/tern-dev-2026.key",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(fix.split_whitespace());
    let (code, _, err) = tern(&args);
    assert_eq!(code, 0, "{fix}: {err}");
    let (code, _, err) = tern(&["verify", out.to_str().unwrap(), "--board", "linux-gateway"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn sign_suggests_a_valid_name_for_a_file_name_that_is_not_one() {
    let dir = scratch("name");
    let wasm = dir.join("smoother_c.wasm");
    std::fs::copy(component("smoother"), &wasm).unwrap();
    let out = dir.join("x.tern");
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "sign",
            wasm.to_str().unwrap(),
            "--key",
            "boards/keys/tern-dev-2026.key",
            "--version",
            "1.0.0",
            "--counter",
            "1",
            "--board",
            "server",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        tern(&args)
    };
    let (code, _, err) = sign(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(err.contains("smoother_c"), "names the bad name: {err}");
    assert!(err.contains("a-z, 0-9 and -"), "states the rule: {err}");
    assert!(err.contains("--name smoother-c"), "suggests a fix: {err}");

    // A bad --name gets the same help.
    let (code, _, err) = sign(&["--name", "Smoother_C"]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(
        err.contains("Smoother_C") && err.contains("--name smoother-c"),
        "{err}"
    );

    // The suggestion works.
    let (code, stdout, err) = sign(&["--name", "smoother-c"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("signed smoother-c 1.0.0"), "{stdout}");
}

#[test]
fn help_is_current_and_every_subcommand_has_an_about() {
    let (code, out, err) = tern(&["--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("(later)"), "{out}");
    assert!(!env!("CARGO_PKG_DESCRIPTION").contains("(later)"));
    let commands = [
        "run",
        "keygen",
        "sign",
        "verify",
        "inspect",
        "boards",
        "feed",
        "serve",
        "gateway",
        "publish",
        "assign",
        "provision",
        "devices",
    ];
    for c in commands {
        // Listed with a one-line about of its own.
        let line = out
            .lines()
            .map(str::trim)
            .find(|l| l.split_whitespace().next() == Some(c))
            .unwrap_or_else(|| panic!("`{c}` missing from tern --help:\n{out}"));
        assert!(line.len() > c.len() + 10, "`{c}` has no about: {line}");
        let (code, sub, err) = tern(&[c, "--help"]);
        assert_eq!(code, 0, "{c}: {err}");
        let about = sub.lines().next().unwrap_or_default();
        assert!(
            !about.is_empty() && !about.starts_with("Usage"),
            "{c}: {sub}"
        );
        assert!(!sub.contains("(later)"), "{c}: {sub}");
    }
    // The sign help names the new flag.
    let (_, sub, _) = tern(&["sign", "--help"]);
    assert!(sub.contains("--sign-anyway"), "{sub}");
}

/// `tern run … | head`: a reader that goes away early is not a crash. The run still
/// finishes its work (its kv store is saved) and exits 0 without a panic.
#[test]
fn a_reader_closing_the_pipe_early_is_not_a_crash() {
    use std::process::Stdio;
    let dir = scratch("broken-pipe");
    let kv = dir.join("kv.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(root())
        .args([
            "run",
            &component("smoother"),
            "--grant",
            "log",
            "--grant",
            "sensors",
            "--grant",
            "kv",
            "--events",
            "components/smoother/events.jsonl",
            "--kv",
            kv.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before tern writes anything: every write then fails with
    // EPIPE, as after `head` has read its lines and exited.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(kv.exists(), "the kv store was still saved");
}

/// A running `tern` child whose stdout lines arrive on a channel.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .current_dir(root())
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (within 60 s) that contains `text`.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with `{text}`; saw:\n{}", self.seen.join("\n"));
    }

    /// Sends SIGTERM (with the system's `kill`, as systemd or a container runtime
    /// would send it) and returns the exit status and every line it printed.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF: every line is in the channel.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

/// The connection limits are `tern serve` options; a limit of 0 is refused with the
/// rule, before anything is opened.
#[test]
fn serve_takes_its_connection_limits_and_refuses_zero() {
    let dir = scratch("limits");
    let data = dir.join("server");
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(root())
        .env("TERN_ADMIN_TOKEN", "an-admin-token-for-the-test")
        .args(["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--max-connections-per-peer", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("max_connections_per_peer must be above 0"),
        "{err}"
    );
    let mut serve = Child::spawn(
        &[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("TERN_ADMIN_TOKEN", "an-admin-token-for-the-test")],
    );
    serve.wait_for("listening on http://");
    let (status, lines) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
}

/// `tern serve` and `tern gateway` stop gracefully on SIGTERM, as on Ctrl-C: the
/// gateway between steps, the server after its in-flight requests and with its store
/// closed; both exit 0 and say which signal stopped them. SIGTERM's default action
/// would kill them without a word (exit by signal, no code).
#[test]
fn serve_and_gateway_stop_gracefully_on_sigterm() {
    let dir = scratch("sigterm");
    let data = dir.join("server");
    let server_data = data.to_str().unwrap();
    let admin = [("TERN_ADMIN_TOKEN", "an-admin-token-for-the-test")];
    let mut serve = Child::spawn(
        &[
            "serve",
            "--data",
            server_data,
            "--listen",
            "127.0.0.1:0",
            "--device",
            "gw-1=gw-1-token-for-the-test",
        ],
        &admin,
    );
    let listening = serve.wait_for("listening on http://");
    let url = listening
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    let gw_data = dir.join("gateway");
    let mut gateway = Child::spawn(
        &[
            "gateway",
            "--server",
            &url,
            "--data",
            gw_data.to_str().unwrap(),
            "--device",
            "gw-1",
            "--poll-ms",
            "600000",
        ],
        &[("TERN_DEVICE_TOKEN", "gw-1-token-for-the-test")],
    );
    // Its first check-in is answered; then it waits ten minutes for the next.
    gateway.wait_for("[gw-1]");
    let (status, lines) = gateway.terminate();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[gw-1] stopping (SIGTERM)")),
        "{lines:#?}"
    );
    let (status, lines) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tern serve: stopped (SIGTERM): requests finished, store closed")),
        "{lines:#?}"
    );
    // The store was closed cleanly: it opens again.
    let mut again = Child::spawn(
        &["serve", "--data", server_data, "--listen", "127.0.0.1:0"],
        &admin,
    );
    again.wait_for("listening on http://");
    let (status, lines) = again.terminate();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
}

/// `name`'s core module made a component exactly as Tern's Wasmtime engine makes it
/// (the bytes `wasm-tools component new` makes), written as `dir/<name>.wasm`.
fn component_file(dir: &Path, name: &str) -> PathBuf {
    let module = std::fs::read(component(name)).unwrap();
    let bytes = tern_wasmtime::WasmtimeEngine::componentize(&module).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The payload of the bundle at `path`.
fn bundle_payload(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut decoder = tern_core::bundle::HeaderDecoder::new();
    let (_, payload) = decoder.feed(&bytes).unwrap().unwrap();
    payload.to_vec()
}

/// Signs `wasm` from the repository root (so components/<name>/component.toml gives
/// the capabilities) for `boards`, to `out`.
fn sign_for_boards(wasm: &Path, boards: &[&str], out: &Path) -> (i32, String, String) {
    let _ = std::fs::remove_file(out);
    let key = dev_key();
    let mut args = vec![
        "sign",
        wasm.to_str().unwrap(),
        "--key",
        &key,
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "-o",
        out.to_str().unwrap(),
    ];
    for b in boards {
        args.extend(["--board", b]);
    }
    tern(&args)
}

#[test]
fn sign_embeds_a_component_for_wasmtime_boards_and_its_device_image_for_wasmi_boards() {
    let dir = scratch("component");
    let smoother = component_file(&dir, "smoother");
    let bytes = std::fs::read(&smoother).unwrap();
    let events = "components/smoother/events.jsonl";

    // Wasmtime boards: the component as it is.
    let out = dir.join("server.tern");
    let (code, stdout, err) = sign_for_boards(&smoother, &["server", "linux-gateway"], &out);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("payload: the component, for Wasmtime"),
        "{stdout}"
    );
    assert_eq!(bundle_payload(&out), bytes);
    for board in ["server", "linux-gateway"] {
        let (code, stdout, stderr) = tern(&["verify", out.to_str().unwrap(), "--board", board]);
        assert_eq!(code, 0, "{board}: {stderr}");
        assert!(stdout.starts_with("accepted"), "{stdout}");
    }
    // It runs on the server as its core module does.
    let (code, from_bundle, err) = tern(&[
        "run",
        out.to_str().unwrap(),
        "--board",
        "server",
        "--events",
        events,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, from_module, err) = tern(&[
        "run",
        &component("smoother"),
        "--grant",
        "log",
        "--grant",
        "sensors=temp-0",
        "--grant",
        "kv=4096",
        "--events",
        events,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_bundle, from_module);
    assert!(from_bundle.lines().count() > 2, "{from_bundle}");
    // A wasmi board refuses a component payload.
    let (code, _, stderr) = tern(&[
        "verify",
        out.to_str().unwrap(),
        "--board",
        "qemu-mps2-an386",
    ]);
    assert_eq!(code, 1, "{stderr}");

    // wasmi boards: a device image made from it, covered by the signature.
    let out = dir.join("qemu.tern");
    let (code, stdout, err) = sign_for_boards(&smoother, &["qemu-mps2-an386"], &out);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("payload: a device image made from the component, for wasmi"),
        "{stdout}"
    );
    let bytes = bundle_payload(&out);
    let image = tern_core::image::decode(&bytes).unwrap();
    let exports: Vec<&str> = image.exports.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(exports, ["init", "on-event", "health-check"]);
    let (code, stdout, stderr) = tern(&[
        "verify",
        out.to_str().unwrap(),
        "--board",
        "qemu-mps2-an386",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("accepted"), "{stdout}");
    let (code, stdout, stderr) = tern(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let expected = format!(
        "kind:      device image ({} core modules, {} plan steps)",
        image.modules.len(),
        image.steps.len()
    );
    assert!(stdout.contains(&expected), "{stdout}");
    let (code, _, stderr) = tern(&["verify", out.to_str().unwrap(), "--board", "server"]);
    assert_eq!(code, 1, "{stderr}");

    // The core module is signed as it is for both kinds of board at once.
    let out = dir.join("module.tern");
    let module = PathBuf::from(component("smoother"));
    let (code, stdout, err) = sign_for_boards(&module, &["server", "qemu-mps2-an386"], &out);
    assert_eq!(code, 0, "{err}");
    assert!(!stdout.contains("payload:"), "{stdout}");
    assert_eq!(bundle_payload(&out), std::fs::read(&module).unwrap());
}

#[test]
fn sign_refuses_a_component_for_both_engines_at_once_naming_the_boards() {
    let dir = scratch("component-both");
    let smoother = component_file(&dir, "smoother");
    let out = dir.join("both.tern");
    let (code, _, err) = sign_for_boards(
        &smoother,
        &["server", "qemu-mps2-an386", "qemu-mps2-an505"],
        &out,
    );
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists(), "nothing is written");
    assert_eq!(
        err.trim_end(),
        "tern: a component is signed once per engine: Wasmtime boards run it as it is, wasmi boards a device image made from it, and a bundle carries one payload; wasmtime runs on --board server and wasmi on --board qemu-mps2-an386, --board qemu-mps2-an505: sign it once with --board server and once with --board qemu-mps2-an386 --board qemu-mps2-an505"
    );
}

/// `tern inspect` names the host resources a device image's handles refer to:
/// heartbeat's `wasi:keyvalue` bucket.
#[test]
fn inspect_names_a_device_images_host_resources() {
    let dir = scratch("inspect-resources");
    let heartbeat = component_file(&dir, "heartbeat");
    let out = dir.join("heartbeat.tern");
    let (code, stdout, err) = sign_for_boards(&heartbeat, &["qemu-mps2-an386"], &out);
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, stdout, stderr) = tern(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let kind = stdout.lines().find(|l| l.starts_with("kind:")).unwrap();
    assert!(kind.starts_with("kind:      device image ("), "{kind}");
    assert!(
        kind.ends_with("; host resources: bucket of wasi:keyvalue/store@0.2.0-draft)"),
        "{kind}"
    );
    let imports = stdout.lines().find(|l| l.starts_with("imports:")).unwrap();
    assert!(
        imports.contains("wasi:keyvalue/store@0.2.0-draft"),
        "{imports}"
    );
}

#[test]
fn sign_refuses_a_component_a_wasmi_board_cannot_run_with_the_reason() {
    let dir = scratch("component-wasmi");
    for (name, text, reason) in [
        (
            "async",
            include_str!("../../../tests/wat/async-lift.wat"),
            "the function lifted from core export `f` is async: Tern runs the synchronous canonical ABI only",
        ),
        (
            "resource",
            r#"(component
                 (type $r (resource (rep i32)))
                 (core func (canon resource.new $r)))"#,
            "the component uses `canon resource.new`: Tern implements `canon lift`, `canon lower` and the host's resources' `canon resource.drop` only (resources the component defines are not supported)",
        ),
    ] {
        let wasm = dir.join(format!("{name}.wasm"));
        std::fs::write(&wasm, wat::parse_str(text).unwrap()).unwrap();
        let out = dir.join(format!("{name}.tern"));
        let (code, stdout, err) = sign_for_boards(&wasm, &["qemu-mps2-an386"], &out);
        assert_eq!(code, 1, "{name}: {stdout}{err}");
        assert!(!out.exists(), "{name}: nothing is written");
        assert!(
            err.contains(&format!(
                "the component cannot run on wasmi (--board qemu-mps2-an386): {reason}"
            )),
            "{name}: {err}"
        );
    }
}

#[test]
fn sign_help_says_components_are_accepted() {
    let (code, help, err) = tern(&["sign", "--help"]);
    assert_eq!(code, 0, "{err}");
    for words in [
        "component (from `wasm-tools component new`",
        "Wasmtime boards run a component as it is",
        "device image",
        "async",
    ] {
        assert!(help.contains(words), "`{words}` missing from:\n{help}");
    }
    let (_, short, _) = tern(&["sign", "-h"]);
    assert!(short.contains("component"), "{short}");
}

/// `tern compose` makes the environment app and the Ruuvi decoder one component that
/// `tern sign` accepts for a wasmi board (as its device image) and `tern run` runs; a
/// malformed --plug, an interface the app does not import and a plug of another type
/// are refused with the reason, and nothing is written.
#[test]
fn compose_links_an_app_with_its_plugs_and_refuses_what_does_not_fit() {
    let dir = scratch("compose");
    let out = dir.join("app.wasm");
    let out_s = out.to_str().unwrap();
    let app = component("environment");
    let decoder = component("ruuvi-decoder");
    let plug = format!("tern:ruuvi/decode@0.1.0={decoder}");
    let (code, stdout, err) = tern(&["compose", &app, "--plug", &plug, "-o", out_s]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("with 1 plug(s)"), "{stdout}");
    let bundle = dir.join("app.tern");
    let (code, _, err) = tern(&[
        "sign",
        out_s,
        "--name",
        "environment",
        "--key",
        &dev_key(),
        "--version",
        "1.0.0",
        "--counter",
        "1",
        "--board",
        "qemu-mps2-an386",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let events = root().join("components/environment/events.jsonl");
    let (code, run, err) = tern(&[
        "run",
        bundle.to_str().unwrap(),
        "--board",
        "qemu-mps2-an386",
        "--engine",
        "wasmi",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        run.contains("\"milli\":24300"),
        "the reference frame's 24.3 °C: {run}"
    );

    for (bad_plug, why) in [
        (decoder.clone(), "INTERFACE=FILE"),
        (
            format!("tern:ruuvi/encode@0.1.0={decoder}"),
            "tern:ruuvi/encode@0.1.0",
        ),
        (
            format!("tern:ruuvi/decode@0.1.0={app}"),
            "tern:ruuvi/decode@0.1.0",
        ),
    ] {
        let refused = dir.join("refused.wasm");
        let (code, _, err) = tern(&[
            "compose",
            &app,
            "--plug",
            &bad_plug,
            "-o",
            refused.to_str().unwrap(),
        ]);
        assert_ne!(code, 0, "{bad_plug} was accepted");
        assert!(err.contains(why), "`{why}` missing: {err}");
        assert!(!refused.exists(), "nothing is written for {bad_plug}");
    }
    let (code, help, _) = tern(&["compose", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--plug <INTERFACE=FILE>"), "{help}");
}
