//! The whole `build.rs` of a device firmware, so each board's is a few lines (Hubris's
//! `build_util` is the model):
//!
//! ```text
//! // boards/<board>/firmware/build.rs
//! fn main() {
//!     tern_board::firmware::build("thumbv7em-none-eabihf");
//! }
//! ```
//!
//! It reads `../board.toml` (the firmware folder sits in its board's folder), checks it
//! with every rule the host tools use and that it lists the firmware's target, and
//! writes to `OUT_DIR`: `board.rs` (the static board table, [`device_code`]'s
//! constants, `HEAP_BYTES`, `SECTOR_SIZE`, and the device identity `DEVICE_ID` /
//! `DEVICE_TOKEN` from `TERN_DEVICE_ID` / `TERN_DEVICE_TOKEN` at build time) and
//! `memory.x`, then passes the linker cortex-m-rt's and defmt's scripts. Any problem
//! fails the build with the file, the key and the fix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{BOARD_FILE, device_code, generate, memory_x, parse_board};

/// Heap besides the linear memory at the worst moment of one component: wasmi's
/// translated code, store, instance and value stack, the host's kv map, the sensor
/// feed and the network buffers, the module while it loads. Measured, not guessed:
/// the QEMU end-to-end test checks the heap's peak after every run (downloads, trials,
/// the `fill` fixture at the board's whole linear memory) against the board's
/// `memory.engine-heap`, which is this unless the board says more. The largest for
/// one component on mps2-an386 is 116,608 bytes: heartbeat, whose image (22 KB: its
/// module and wit-component's shim and fixup modules for the keyvalue imports) is
/// the largest one-component image, over its 17 events with a bucket opened and
/// dropped in each; the `tern:edge` examples peak at up to 102,632 bytes (first boot:
/// download, trial and run). It was 124,786 while a trial held the payload it had
/// loaded (48 KB for the composed app) and a device image's modules were decoded into
/// copies; both go now (`tern_agent`'s trial drops the payload once loaded,
/// `tern_core::image::decode` borrows the modules). A composed app needs more: the
/// QEMU boards say 156 KiB (`memory.engine-heap`, measured with the environment app:
/// 158,827 bytes).
pub const ENGINE_PEAK: u32 = 114 * 1024;

/// Stated headroom above the measured peak, for allocations the tests do not reach
/// and for fragmentation of the linked-list heap.
pub const HEAP_HEADROOM: u32 = 24 * 1024;

/// The firmware's dynamic memory (the generated `HEAP_BYTES`) for `memory_bytes` of
/// linear memory and `engine_heap` (`memory.engine-heap`): that memory once, set
/// aside at boot and lent to one instance at a time (`tern_device::linear`,
/// `tern_wasmi::memory`, split between a composed app's components), plus the heap
/// and its headroom.
///
/// The linear memory is not on the heap because wasmi keeps a module's own memory in
/// a `Vec` that doubles and moves as it grows: measured with `fill` on mps2-an386,
/// the heap then needed about twice the limit (old and new blocks at once, and the
/// freed ones below), and a heap of the limit + 96 KiB gave a component only half
/// the memory its board promised.
pub const fn heap_bytes(memory_bytes: u32, engine_heap: u32) -> u32 {
    memory_bytes + engine_heap + HEAP_HEADROOM
}

/// Identity used when the build does not set one: what `tern provision` must be given
/// for this device (the end-to-end test and the demo use these).
pub const DEFAULT_DEVICE_ID: &str = "qemu-1";
/// The development token that goes with [`DEFAULT_DEVICE_ID`].
pub const DEFAULT_DEVICE_TOKEN: &str = "qemu-1-development-token";

fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(0);
}

/// Runs a firmware's build script for `target` (see the module docs).
pub fn build(target: &str) {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let board_dir = manifest_dir.join("..");
    let board_name = board_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();

    let board_file = board_dir.join(BOARD_FILE);
    println!("cargo::rerun-if-changed={}", board_file.display());
    let text = std::fs::read_to_string(&board_file)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", board_file.display())));
    let file = format!("boards/{board_name}/{BOARD_FILE}");
    let board = parse_board(&file, &text).unwrap_or_else(|e| fail(&e.to_string()));
    if !board.targets.iter().any(|t| t == target) {
        fail(&format!(
            "{file}: targets: must list \"{target}\" for this firmware"
        ));
    }
    let mut code = generate(std::slice::from_ref(&board));
    code.push('\n');
    code.push_str(&device_code(&board).unwrap_or_else(|e| fail(&e.to_string())));
    let engine_heap = board.memory.map_or(ENGINE_PEAK, |m| m.engine_heap);
    let heap = heap_bytes(board.limits.memory_bytes, engine_heap);
    let _ = writeln!(
        code,
        "\n/// Dynamic memory: the component's linear memory, `limits.memory-bytes` ({}) from \
         board.toml, which `tern_device::boot` splits off first, and the heap: \
         `memory.engine-heap` ({engine_heap}) and a {HEAP_HEADROOM}-byte headroom \
         (`tern_board::firmware::heap_bytes`).\npub const HEAP_BYTES: usize = {heap};",
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
    let memory = memory_x(&board).unwrap_or_else(|e| fail(&e.to_string()));
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
