//! Turns board.toml into the firmware's static board table, device constants, memory.x
//! and heap size, and compiles in the device's identity.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Heap beyond the component's linear memory: wasmi's compiled code, store, instance
/// and value stack, the host's kv map, the sensor feed and the network buffers.
/// The measured peak is printed after every run over the feed; raise this if it gets
/// close.
const HEAP_MARGIN: u32 = 96 * 1024;

/// Identity used when the build does not set one: what `tern provision` must be given
/// for this device (the end-to-end test and the demo use these).
const DEFAULT_DEVICE_ID: &str = "qemu-1";
const DEFAULT_DEVICE_TOKEN: &str = "qemu-1-development-token";

fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(0);
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let board_dir = manifest_dir.join("..");

    // The board table and device constants: the same parser, checks and generator as
    // the host binaries use, over this board's file only.
    let board_file = board_dir.join(tern_board::BOARD_FILE);
    println!("cargo::rerun-if-changed={}", board_file.display());
    let text = std::fs::read_to_string(&board_file)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", board_file.display())));
    let file = "boards/qemu-mps2-an386/board.toml";
    let board = tern_board::parse_board(file, &text).unwrap_or_else(|e| fail(&e.to_string()));
    if !board.targets.iter().any(|t| t == "thumbv7em-none-eabihf") {
        fail(&format!(
            "{file}: targets: must list \"thumbv7em-none-eabihf\" for this firmware"
        ));
    }
    let mut code = tern_board::generate(std::slice::from_ref(&board));
    code.push('\n');
    code.push_str(&tern_board::device_code(&board).unwrap_or_else(|e| fail(&e.to_string())));
    // The heap holds the component's linear memory plus the runtime's own data.
    let heap = board.limits.memory_bytes + HEAP_MARGIN;
    let _ = writeln!(
        code,
        "\n/// Heap bytes: `limits.memory-bytes` ({}) from board.toml plus a {HEAP_MARGIN}-byte margin.\npub const HEAP_BYTES: usize = {heap};",
        board.limits.memory_bytes
    );
    let _ = writeln!(
        code,
        "/// Erase unit of the component flash (board.toml `[flash] sector-size`).\npub const SECTOR_SIZE: usize = {};",
        board.sector_size
    );

    // Who this device is to the fleet server: set at build (flash) time.
    for var in ["TERN_DEVICE_ID", "TERN_DEVICE_TOKEN"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let id = std::env::var("TERN_DEVICE_ID").unwrap_or_else(|_| DEFAULT_DEVICE_ID.to_string());
    let token =
        std::env::var("TERN_DEVICE_TOKEN").unwrap_or_else(|_| DEFAULT_DEVICE_TOKEN.to_string());
    if !tern_core::protocol::valid_id(&id) {
        fail(&format!(
            "TERN_DEVICE_ID `{id}`: use 1-64 characters of A-Z a-z 0-9 - _ ."
        ));
    }
    if !(16..=256).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        fail("TERN_DEVICE_TOKEN: use 16-256 printable ASCII characters without spaces");
    }
    let _ = writeln!(
        code,
        "/// This device's id on the fleet server (`TERN_DEVICE_ID` at build time).\npub const DEVICE_ID: &str = {id:?};\n/// This device's bearer token (`TERN_DEVICE_TOKEN` at build time).\npub const DEVICE_TOKEN: &str = {token:?};"
    );
    write(&out_dir.join("board.rs"), &code);

    // memory.x for cortex-m-rt's link.x, from board.toml's [memory].
    let memory = tern_board::memory_x(&board).unwrap_or_else(|e| fail(&e.to_string()));
    write(&out_dir.join("memory.x"), &memory);
    println!("cargo::rustc-link-search={}", out_dir.display());
    println!("cargo::rustc-link-arg-bins=--nmagic");
    println!("cargo::rustc-link-arg-bins=-Tlink.x");
    println!("cargo::rustc-link-arg-bins=-Tdefmt.x");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}
