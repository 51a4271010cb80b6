//! Resource limits that bound one component instance, with the same meaning on both engines.

use serde::{Deserialize, Serialize};

/// Limits for one instance. Fuel is counted in engine instructions: wasmi and
/// Wasmtime both charge about one unit per executed wasm instruction, so a budget
/// stops the same runaway loop on both, though not at the same instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Limits {
    /// Fuel for one export call (`init`, `on-event`, `health-check`).
    pub fuel_per_call: u64,
    /// Maximum linear-memory size in bytes.
    pub memory_bytes: u32,
    /// Maximum table elements.
    pub table_elements: u32,
    /// Maximum nesting of wasm calls before a stack-overflow error.
    pub call_depth: u32,
}

impl Limits {
    /// Limits for a Linux host: 10 M instructions per call, 4 MiB memory.
    pub const HOST: Limits = Limits {
        fuel_per_call: 10_000_000,
        memory_bytes: 4 * 1024 * 1024,
        table_elements: 1024,
        call_depth: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::HOST
    }
}
