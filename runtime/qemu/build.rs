//! Builds the guestfwd relay (`relay/relay.rs`, std only) with plain rustc into OUT_DIR.
//!
//! QEMU's `guestfwd=...-tcp:HOST:PORT` opens one host connection at start-up (QEMU
//! refuses to start if nothing listens yet) and pushes every guest connection through
//! it, never passing a guest's FIN on. `guestfwd=...-cmd:PROGRAM` instead runs PROGRAM
//! once per guest connection with that connection as its stdio. This relay is that
//! program, so the firmware's HTTP connections reach the server one for one with no
//! tool to install (netcat, python) beyond QEMU itself.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=relay/relay.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let relay = out.join("tern-qemu-relay");
    let status = Command::new(rustc)
        .args([
            "--edition=2024",
            "--crate-name=tern_qemu_relay",
            "--crate-type=bin",
            "-Copt-level=2",
            "-Cdebuginfo=0",
            "relay/relay.rs",
            "-o",
        ])
        .arg(&relay)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("compiling relay/relay.rs failed ({s})"),
        Err(e) => panic!("cannot run rustc for relay/relay.rs: {e}"),
    }
    println!("cargo::rustc-env=TERN_QEMU_RELAY={}", relay.display());
}
