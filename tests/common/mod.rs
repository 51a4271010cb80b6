//! Shared helpers of the integration tests: finding built components and running
//! them on both engines.

use std::path::PathBuf;

use std::sync::OnceLock;
use tern_host::events::EventFile;

use tern_core::{Error, Event, Grant, Granted, Limits};
use tern_host::run::{EngineKind, Engines, SharedSim, Transcript};

/// The example components, which must behave identically on both engines.
pub const EXAMPLES: &[&str] = &["smoother", "alarm", "ruuvi"];

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
