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
}

/// `[flash]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct FlashFile {
    pub sector_size: u32,
    pub slots: Vec<SlotFile>,
}

/// One entry of `flash.slots`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct SlotFile {
    pub name: String,
    pub offset: u32,
    pub size: u32,
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
