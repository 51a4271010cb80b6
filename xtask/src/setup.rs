//! What a fresh machine lacks before `cargo xtask demo` and `cargo xtask test` can run:
//! the two Rust targets the components and the firmware build for, and QEMU for the
//! device. Installed here when missing, so the README's two commands do all the set-up.

use std::process::Command;

use crate::root;

/// The targets beyond the host: components (wasm32) and the device firmware
/// (Cortex-M4F for mps2-an386, Cortex-M33 for mps2-an505).
const TARGETS: [&str; 3] = [
    "wasm32-unknown-unknown",
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
];

/// Installs what is missing, saying what it does; fails with the command to run by
/// hand when it cannot install something itself.
pub fn ensure() -> Result<(), String> {
    targets()?;
    qemu()
}

fn targets() -> Result<(), String> {
    // rustup resolves the pinned toolchain from rust-toolchain.toml in the root.
    let Ok(out) = Command::new("rustup")
        .current_dir(root())
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: the toolchain came some other way; let cargo say what is missing.
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = TARGETS
        .into_iter()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Rust targets {}", missing.join(", "));
    let ok = Command::new("rustup")
        .current_dir(root())
        .args(["target", "add"])
        .args(&missing)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "could not install the Rust targets; run: rustup target add {}",
            missing.join(" ")
        ))
    }
}

fn qemu() -> Result<(), String> {
    if tern_qemu::check_tools().is_ok() {
        return Ok(());
    }
    let hint = "install QEMU: sudo apt-get update && sudo apt-get install -y qemu-system-arm";
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if !(is_root && has_apt) {
        return Err(format!("qemu-system-arm is missing; {hint}"));
    }
    println!("xtask: installing qemu-system-arm (apt-get)");
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if run(&["update"])
        && run(&[
            "install",
            "-y",
            "--no-install-recommends",
            "qemu-system-arm",
        ])
        && tern_qemu::check_tools().is_ok()
    {
        Ok(())
    } else {
        Err(format!("apt-get could not install qemu-system-arm; {hint}"))
    }
}
