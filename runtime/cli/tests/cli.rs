//! The `tern` command end to end: keygen, sign, verify, inspect and run, including
//! every refusal's exit code and message.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tern(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(root())
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
        tern::events::EventFile::parse(&std::fs::read_to_string(&events).unwrap()).unwrap();
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
