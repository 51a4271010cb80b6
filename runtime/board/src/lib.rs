//! Turns `boards/<board>/board.toml` into static `tern_core::board::BoardTable`s, at build time.
//!
//! Config flows one way: file → [`parse_board`] (serde, then checks that name the file,
//! the key and the fix) → [`generate`] (Rust source, `quote!` + prettyplease) → a
//! `build.rs` writes it to `OUT_DIR` and the crate `include!`s it. A bad board fails the
//! build; nothing about a board is decided on the device.
//!
//! A device firmware's `build.rs` also takes its constants ([`device_code`]: component
//! flash address, network settings, peripherals) and its linker `memory.x`
//! ([`memory_x`]) from its board.toml's device sections.
//! [`firmware::build`] is the whole build script of a device firmware.
//!
//! ```no_run
//! // build.rs
//! let boards = match tern_board::load_boards(std::path::Path::new("../../boards")) {
//!     Ok(boards) => boards,
//!     Err(e) => panic!("{e}"), // `boards/x/board.toml: limits.memory-bytes: ...`
//! };
//! let source = tern_board::generate(&boards);
//! # let _ = source;
//! ```
#![forbid(unsafe_code)]

mod check;
mod device;
mod error;
pub mod firmware;
mod generate;
mod schema;

use std::path::Path;

pub use check::{Board, Ipv4Config, MemoryMap, Network, Peripherals, Region, Slot, TrustKey};
pub use device::{device_code, memory_x};
pub use error::{BoardError, Problem};
pub use generate::{generate, static_name};

/// Bytes in one wasm page: `limits.memory-bytes` must be whole pages.
pub const WASM_PAGE: u32 = 65536;

/// The file name every board folder holds.
pub const BOARD_FILE: &str = "board.toml";

/// Parses and checks one board.toml.
///
/// `file` is the path as messages should name it, ending in `<folder>/board.toml`; the
/// board's `name` must equal `<folder>`. Nothing is read from disk.
pub fn parse_board(file: &str, text: &str) -> Result<Board, BoardError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| toml_error(file, text, "", e))?;
    let raw: schema::BoardFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_of(e.path());
        toml_error(file, text, &key, e.into_inner())
    })?;
    check::check(file, raw)
}

/// Parses a component's `component.toml` into the capabilities it requests: the same
/// `[capabilities]` table as a board.toml (`log`, `clock`, `sensors`, `gpio`, `kv`,
/// `publish`), read the same strict way. `tern sign` puts the result in the manifest.
pub fn component_capabilities(text: &str, path: &Path) -> Result<tern_core::Grant, BoardError> {
    let file = path.display().to_string();
    let de = toml::de::Deserializer::parse(text).map_err(|e| toml_error(&file, text, "", e))?;
    let raw: schema::ComponentFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_of(e.path());
        toml_error(&file, text, &key, e.into_inner())
    })?;
    check::check_capabilities(&file, raw.capabilities)
}

/// Loads every `<boards_dir>/*/board.toml`, sorted by folder name, and checks each.
///
/// Folders without a board.toml (such as `keys/`) are skipped. Files are named in
/// messages relative to the parent of `boards_dir` (`boards/x/board.toml`), which is the
/// workspace root for the repository's own `boards/`. Returns the first error; a folder
/// with no board at all is an error too.
pub fn load_boards(boards_dir: &Path) -> Result<Vec<Board>, BoardError> {
    let dir_name = boards_dir.file_name().map_or_else(
        || boards_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let read_err = |shown: &str, e: std::io::Error| {
        BoardError::new(
            shown,
            "",
            Problem::Read {
                reason: e.to_string(),
            },
        )
    };
    let entries = std::fs::read_dir(boards_dir).map_err(|e| read_err(&dir_name, e))?;
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| read_err(&dir_name, e))?;
        if entry.path().join(BOARD_FILE).is_file() {
            folders.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    folders.sort();
    if folders.is_empty() {
        return Err(BoardError::new(&dir_name, "", Problem::NoBoards));
    }
    folders
        .iter()
        .map(|folder| {
            let shown = format!("{dir_name}/{folder}/{BOARD_FILE}");
            let text = std::fs::read_to_string(boards_dir.join(folder).join(BOARD_FILE))
                .map_err(|e| read_err(&shown, e))?;
            parse_board(&shown, &text)
        })
        .collect()
}

/// The dotted key of a serde path: `flash.slots[1].offset`.
fn key_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(name);
            }
            Segment::Unknown => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push('?');
            }
        }
    }
    key
}

/// Splits `` name` rest `` after an opening backquote into the name and the rest.
fn quoted(rest: &str) -> Option<(String, &str)> {
    rest.split_once('`')
        .map(|(name, tail)| (name.to_string(), tail))
}

/// Turns a TOML or serde error into a `BoardError`, naming unknown and missing keys.
fn toml_error(file: &str, text: &str, key: &str, e: toml::de::Error) -> BoardError {
    let line = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    let message = e.message().trim();
    let join = |name: &str| {
        if key.is_empty() {
            name.to_string()
        } else {
            format!("{key}.{name}")
        }
    };
    // serde spells these `unknown field `x`, expected ...` and `missing field `x``.
    let (key, problem) =
        if let Some((name, tail)) = message.strip_prefix("unknown field `").and_then(quoted) {
            // The path already ends at the unknown key.
            let key = if key.ends_with(&name) {
                key.to_string()
            } else {
                join(&name)
            };
            let problem = if key == format!("capabilities.{name}") {
                Problem::UnknownCapability { name }
            } else {
                let expected = tail.trim_start_matches([',', ' ']);
                let expected = expected.strip_prefix("expected ").unwrap_or(expected);
                Problem::UnknownKey {
                    name,
                    expected: expected.to_string(),
                }
            };
            (key, problem)
        } else if let Some((name, _)) = message.strip_prefix("missing field `").and_then(quoted) {
            (join(&name), Problem::MissingKey { name })
        } else {
            (
                key.to_string(),
                Problem::Syntax {
                    reason: message.to_string(),
                },
            )
        };
    BoardError {
        file: file.to_string(),
        line,
        key,
        problem,
    }
}

#[cfg(test)]
mod tests;
