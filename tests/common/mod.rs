//! Shared helpers of the integration tests: finding built components and running
//! them on both engines.

use std::path::PathBuf;

use std::sync::OnceLock;
use tern_host::events::EventFile;

use tern_core::{Error, Event, Grant, Granted, Limits};
use tern_host::run::{EngineKind, Engines, SharedSim, Transcript};

/// The example components, which must behave identically on both engines.
pub const EXAMPLES: &[&str] = &["smoother", "alarm", "ruuvi", "heartbeat"];

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is one level below the root")
        .to_path_buf()
}

/// The bytes of `target/components/<name>.wasm`.
///
/// # Panics
/// If the component has not been built; the message says how to build it.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = root()
        .join("target/components")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the components first with `cargo xtask components` (cargo xtask test does)",
            path.display()
        )
    })
}

/// The parsed `components/<name>/events.jsonl` (fixtures under `components/fixtures/`).
pub fn events(name: &str) -> EventFile {
    let dir = root().join("components");
    let path = [dir.join(name), dir.join("fixtures").join(name)]
        .into_iter()
        .map(|d| d.join("events.jsonl"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no events.jsonl for component `{name}`"));
    let text = std::fs::read_to_string(&path).expect("readable events file");
    EventFile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `wasm` over `config` and `events` on `kind` with a fresh simulation.
pub fn run(
    kind: EngineKind,
    wasm: &[u8],
    grant: &Grant,
    config: &[(String, String)],
    events: &[Event],
) -> Result<Transcript, Error> {
    // Test components run unsigned: granted by name.
    let granted = Granted::for_development(grant.clone());
    engines().run(kind, wasm, &granted, config, events, &SharedSim::default())
}

/// Both engines with host limits, shared by every test in a binary.
pub fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| Engines::new(Limits::HOST).expect("engines start"))
}

/// Both engines, in a fixed order.
pub const ENGINES: [EngineKind; 2] = [EngineKind::Wasmi, EngineKind::Wasmtime];

/// `wasm` without the custom sections whose names `drop` picks; every other section
/// copied as it is, in order. Written here with wasmparser and wasm-encoder, not with
/// the engine's own stripping, so that the tests do not check the engine against
/// itself.
///
/// # Panics
/// If `wasm` does not parse.
pub fn without_custom_sections(wasm: &[u8], drop: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut out = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.expect("a module that parses");
        if let wasmparser::Payload::CustomSection(c) = &payload
            && drop(c.name())
        {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            out.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    out.finish()
}

/// `wasm` with one more custom section, `name` holding `data`, at the end.
pub fn with_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = wasm.to_vec();
    let section = wasm_encoder::CustomSection {
        name: name.into(),
        data: data.into(),
    };
    out.push(wasm_encoder::Section::id(&section));
    wasm_encoder::Encode::encode(&section, &mut out);
    out
}

/// The names of `wasm`'s custom sections, in order.
///
/// # Panics
/// If `wasm` does not parse.
pub fn custom_sections(wasm: &[u8]) -> Vec<String> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.expect("a module that parses") {
            wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
            _ => None,
        })
        .collect()
}

/// A board's linear-memory buffer, as a device sets one aside at boot
/// (`tern_device::linear`): `pages` wasm pages, lent to one wasmi instance at a time.
pub struct LentMemory {
    /// The leaked buffer's address and length.
    at: usize,
    len: usize,
    taken: std::sync::atomic::AtomicBool,
}

impl LentMemory {
    /// A new buffer of `pages` 64 KiB pages, alive until the test binary exits.
    pub fn new(pages: usize) -> &'static LentMemory {
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; pages * 65_536].into_boxed_slice());
        Box::leak(Box::new(LentMemory {
            at: buffer.as_mut_ptr() as usize,
            len: buffer.len(),
            taken: std::sync::atomic::AtomicBool::new(false),
        }))
    }
}

impl tern_wasmi::memory::StaticMemory for LentMemory {
    fn take(&self) -> Option<&'static mut [u8]> {
        if self.taken.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `at..at+len` is the leaked buffer `new` made, which lives for the
        // rest of the process; `taken` makes this the only reference to it until
        // `give_back`, which tern-wasmi calls after the store holding it is dropped.
        Some(unsafe { std::slice::from_raw_parts_mut(self.at as *mut u8, self.len) })
    }

    fn give_back(&self) {
        self.taken
            .store(false, std::sync::atomic::Ordering::Release);
    }
}
