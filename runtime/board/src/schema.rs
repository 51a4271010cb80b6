//! The board.toml file format, exactly as serde reads it, before any checking.
//!
//! Values that need a clearer message than serde's (the engine, scopes, the signature
//! count) are read loosely here and checked in `check.rs`.

use serde::Deserialize;
use tern_core::Limits;

/// A whole board.toml.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct BoardFile {
    pub name: String,
    pub description: String,
    pub targets: Vec<String>,
    pub engine: String,
    /// `tern_core::Limits` is itself kebab-case with `deny_unknown_fields`, so the file
    /// and the runtime share one definition of every limit.
    pub limits: Limits,
    pub flash: FlashFile,
    pub trust: TrustFile,
    pub capabilities: CapabilitiesFile,
    /// Device boards only: the memory map the firmware is linked for.
    pub memory: Option<MemoryFile>,
    /// Device boards only: how the device reaches `tern serve`.
    pub network: Option<NetworkFile>,
    /// Device boards only: the sensors and pins the board has.
    pub peripherals: Option<PeripheralsFile>,
    /// The slowest bundle download the agent keeps reading; the default floor when
    /// absent.
    pub download: Option<DownloadFile>,
}

/// `[download]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct DownloadFile {
    /// Bytes a second; 0 turns the floor off.
    pub min_rate: u32,
    /// Seconds a download may stay below it.
    pub window: u32,
}

/// `[flash]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct FlashFile {
    pub sector_size: u32,
    pub slots: Vec<SlotFile>,
    /// Device boards only: the address of the component flash.
    pub origin: Option<u32>,
    /// Restarts during one trial taken as inconclusive (the trial runs again) before
    /// the bundle is rolled back; [`DEFAULT_TRIAL_RESTARTS`] when absent.
    pub trial_restarts: Option<u8>,
}

/// `flash.trial-restarts` when a board.toml does not set it.
pub const DEFAULT_TRIAL_RESTARTS: u8 = 2;

/// One entry of `flash.slots`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct SlotFile {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// `[memory]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct MemoryFile {
    /// Code and read-only data.
    pub flash: RegionFile,
    /// Data, heap and stack.
    pub ram: RegionFile,
    /// Heap for the engine besides the linear memory; the measured peak of one
    /// component when absent.
    #[serde(default)]
    pub engine_heap: Option<u32>,
}

/// `memory.flash` or `memory.ram`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RegionFile {
    pub origin: u32,
    pub size: u32,
}

/// `[network]`: text, parsed in `check.rs` so that a bad value gets a message with
/// an example.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct NetworkFile {
    pub mac: String,
    /// `"dhcp"` or `"a.b.c.d/len"`.
    pub ipv4: String,
    pub gateway: Option<String>,
    /// `"a.b.c.d:port"`.
    pub server: String,
}

/// `[peripherals]`: items read loosely, like capability scopes, for the same messages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct PeripheralsFile {
    pub sensors: Vec<toml::Value>,
    pub gpio: Vec<toml::Value>,
}

/// `[trust]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct TrustFile {
    /// Wide so that 0, negative and too-large counts get our message, not serde's.
    pub signatures_required: i64,
    pub keys: Vec<KeyFile>,
}

/// One entry of `trust.keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct KeyFile {
    pub name: String,
    pub public_key: String,
}

/// `[capabilities]`: a missing key means "not offered".
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct CapabilitiesFile {
    #[serde(default)]
    pub log: bool,
    #[serde(default)]
    pub clock: bool,
    /// `"*"` or a list of sensor ids.
    pub sensors: Option<toml::Value>,
    /// `"*"` or a list of pin numbers.
    pub gpio: Option<toml::Value>,
    /// The largest kv quota, bytes.
    pub kv: Option<u32>,
    /// Topic prefix; `""` offers every topic.
    pub publish: Option<String>,
}

/// A component's `component.toml`: what it asks boards for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ComponentFile {
    /// Requested capabilities, in the same form as a board's offer.
    pub capabilities: CapabilitiesFile,
}
