//! Compiles every `boards/*/board.toml` into `$OUT_DIR/boards.rs`, or fails the build naming the bad key.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // `TERN_BOARDS_DIR` builds a tern for other board files (xtask uses it to prove
    // that editing a board.toml changes what tern accepts); normally the repo's boards/.
    println!("cargo::rerun-if-env-changed=TERN_BOARDS_DIR");
    let boards_dir = std::env::var_os("TERN_BOARDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../../boards"));
    // A directory makes cargo rerun on any change inside it, including a new board.
    println!("cargo::rerun-if-changed={}", boards_dir.display());

    let boards = match tern_board::load_boards(&boards_dir) {
        Ok(boards) => boards,
        Err(error) => {
            // Cargo prints this as the build's error: file, key and fix in one line.
            println!("cargo::error={error}");
            return;
        }
    };
    for board in &boards {
        let file = boards_dir.join(&board.name).join(tern_board::BOARD_FILE);
        println!("cargo::rerun-if-changed={}", file.display());
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let out = out_dir.join("boards.rs");
    if let Err(error) = std::fs::write(&out, tern_board::generate(&boards)) {
        println!("cargo::error=cannot write {}: {error}", out.display());
    }
}
