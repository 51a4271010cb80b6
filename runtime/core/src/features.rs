//! Which WebAssembly features (proposals beyond the 1.0 MVP) each engine runs: the one
//! decision that both engines' configurations, `tern sign` and the host's install
//! check follow.
//!
//! This crate has no wasm parser; the host crates map each [`WasmFeature`] to
//! `wasmparser`'s flags (`tern_wasmtime::features`) and validate payloads with it, and
//! `tern-wasmi` sets wasmi's configuration from [`EngineKind::supports`].

use alloc::string::String;
use core::fmt;

use crate::bundle::EngineKind;

/// A WebAssembly feature a module may use, by the name `wasm-tools` and the proposals
/// give it. Features Tern does not list here are refused by every engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WasmFeature {
    /// Importing and exporting mutable globals.
    MutableGlobal,
    /// Non-trapping float-to-int conversions (`i32.trunc_sat_f32_s`, ...).
    SaturatingFloatToInt,
    /// Sign-extension operators (`i32.extend8_s`, ...).
    SignExtension,
    /// Functions and blocks with several results.
    MultiValue,
    /// `memory.copy`, `memory.fill`, passive segments.
    BulkMemory,
    /// Several tables, `funcref` values, `ref.func`, `table.get`/`set`.
    ReferenceTypes,
    /// Reference types that a garbage collector tracks, such as `externref`
    /// (wasmparser's `gc-types`; Wasmtime gates them behind its `gc` build feature).
    GcTypes,
    /// `f32` and `f64` (part of the MVP, but a validator can switch them off).
    Floats,
    /// 128-bit SIMD (`v128`).
    Simd,
    /// Relaxed SIMD (results may differ between platforms).
    RelaxedSimd,
    /// Shared memories and atomics.
    Threads,
    /// `return_call` and `return_call_indirect`.
    TailCall,
    /// Several memories.
    MultiMemory,
    /// Exception handling (`try_table`, `throw`).
    Exceptions,
    /// 64-bit memory indices.
    Memory64,
    /// Arithmetic in constant expressions.
    ExtendedConst,
    /// Typed function references (`call_ref`).
    FunctionReferences,
    /// Garbage-collected structs and arrays.
    Gc,
    /// Memories with pages smaller than 64 KiB.
    CustomPageSizes,
    /// 128-bit integer arithmetic (`i64.add128`, ...).
    WideArithmetic,
}

impl WasmFeature {
    /// Every feature, in the order a payload check tries them when it looks for the
    /// one a module needs.
    pub const ALL: [WasmFeature; 20] = [
        WasmFeature::MutableGlobal,
        WasmFeature::SaturatingFloatToInt,
        WasmFeature::SignExtension,
        WasmFeature::MultiValue,
        WasmFeature::BulkMemory,
        WasmFeature::ReferenceTypes,
        WasmFeature::GcTypes,
        WasmFeature::Floats,
        WasmFeature::Simd,
        WasmFeature::RelaxedSimd,
        WasmFeature::Threads,
        WasmFeature::TailCall,
        WasmFeature::MultiMemory,
        WasmFeature::Exceptions,
        WasmFeature::Memory64,
        WasmFeature::ExtendedConst,
        WasmFeature::FunctionReferences,
        WasmFeature::Gc,
        WasmFeature::CustomPageSizes,
        WasmFeature::WideArithmetic,
    ];

    /// The feature's name, as `wasm-tools --features` spells it (`simd`).
    pub const fn name(self) -> &'static str {
        match self {
            WasmFeature::MutableGlobal => "mutable-global",
            WasmFeature::SaturatingFloatToInt => "saturating-float-to-int",
            WasmFeature::SignExtension => "sign-extension",
            WasmFeature::MultiValue => "multi-value",
            WasmFeature::BulkMemory => "bulk-memory",
            WasmFeature::ReferenceTypes => "reference-types",
            WasmFeature::GcTypes => "gc-types",
            WasmFeature::Floats => "floats",
            WasmFeature::Simd => "simd",
            WasmFeature::RelaxedSimd => "relaxed-simd",
            WasmFeature::Threads => "threads",
            WasmFeature::TailCall => "tail-call",
            WasmFeature::MultiMemory => "multi-memory",
            WasmFeature::Exceptions => "exceptions",
            WasmFeature::Memory64 => "memory64",
            WasmFeature::ExtendedConst => "extended-const",
            WasmFeature::FunctionReferences => "function-references",
            WasmFeature::Gc => "gc",
            WasmFeature::CustomPageSizes => "custom-page-sizes",
            WasmFeature::WideArithmetic => "wide-arithmetic",
        }
    }
}

impl fmt::Display for WasmFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl EngineKind {
    /// Whether this engine runs modules that use `feature`: the one table both
    /// engines are configured from and every payload is checked against.
    ///
    /// wasmi is Tern's wasmi 2.0 as every Tern build has it: `validate` on, its
    /// `simd` and `memory64` cargo features off (they cost flash on a device), custom
    /// page sizes switched on by `tern-wasmi`; it implements neither threads,
    /// exceptions, typed function references nor GC. Wasmtime is Wasmtime 48's
    /// default set as `tern-wasmtime` builds it (Cranelift, no `gc` or `threads` build
    /// features, so no `externref`, exceptions, GC or shared memories), plus custom
    /// page sizes, which wasmi has too.
    pub const fn supports(self, feature: WasmFeature) -> bool {
        use WasmFeature as F;
        match feature {
            // Both engines.
            F::MutableGlobal
            | F::SaturatingFloatToInt
            | F::SignExtension
            | F::MultiValue
            | F::BulkMemory
            | F::ReferenceTypes
            | F::Floats
            | F::TailCall
            | F::MultiMemory
            | F::ExtendedConst
            | F::CustomPageSizes => true,
            // wasmi only: Wasmtime without its `gc` build feature has no GC heap.
            F::GcTypes => matches!(self, EngineKind::Wasmi),
            // Wasmtime only.
            F::Simd | F::RelaxedSimd | F::Memory64 | F::FunctionReferences => {
                matches!(self, EngineKind::Wasmtime)
            }
            // Neither.
            F::Threads | F::Exceptions | F::Gc | F::WideArithmetic => false,
        }
    }
}

/// A module uses a feature its engine does not run; found by validating the payload
/// against [`EngineKind::supports`] before it is signed, installed or loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedFeature {
    /// The engine.
    pub engine: EngineKind,
    /// The first feature the module needs that the engine lacks.
    pub feature: WasmFeature,
    /// The function index (imports included) whose body first uses it, if it is
    /// used in code rather than in a type, a global or a memory.
    pub function: Option<u32>,
    /// Byte offset of the first use in the module.
    pub offset: usize,
    /// The validator's own words, such as `SIMD support is not enabled`.
    pub detail: String,
}

impl UnsupportedFeature {
    /// The refusal without the engine's name: `does not support the `simd` proposal
    /// (SIMD support is not enabled, at function 3, offset 0x1a2)`, for sentences such
    /// as "board X runs wasmi, which ...".
    pub fn lacks(&self) -> impl fmt::Display + '_ {
        struct Lacks<'a>(&'a UnsupportedFeature);
        impl fmt::Display for Lacks<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let u = self.0;
                write!(
                    f,
                    "does not support the `{}` proposal ({}, at ",
                    u.feature, u.detail
                )?;
                if let Some(func) = u.function {
                    write!(f, "function {func}, ")?;
                }
                write!(f, "offset {:#x})", u.offset)
            }
        }
        Lacks(self)
    }

    /// What to do instead: build without the feature, or target only the engines
    /// that run it.
    pub fn fix(&self) -> impl fmt::Display + '_ {
        struct Fix<'a>(&'a UnsupportedFeature);
        impl fmt::Display for Fix<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let feature = self.0.feature;
                write!(f, "build without `{feature}`")?;
                let mut others = EngineKind::ALL
                    .into_iter()
                    .filter(|e| *e != self.0.engine && e.supports(feature));
                match others.next() {
                    Some(e) => write!(f, " or target only {} boards", e.name()),
                    None => f.write_str(": no Tern engine runs it"),
                }
            }
        }
        Fix(self)
    }
}

impl fmt::Display for UnsupportedFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.engine.name(), self.lacks())
    }
}

impl core::error::Error for UnsupportedFeature {}

/// Why a payload does not validate for an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationError {
    /// It uses a feature the engine does not run.
    Unsupported(UnsupportedFeature),
    /// It is not a valid core wasm module whatever the features.
    Invalid(String),
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::Unsupported(u) => u.fmt(f),
            ValidationError::Invalid(e) => write!(f, "not a valid core wasm module: {e}"),
        }
    }
}

impl core::error::Error for ValidationError {}

impl From<ValidationError> for crate::Error {
    /// An engine's load refuses either as an invalid module, the class wasmi's own
    /// validation gives, so both engines report it alike.
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::Unsupported(u) => crate::Error::InvalidModule(alloc::format!("{u}")),
            ValidationError::Invalid(e) => crate::Error::InvalidModule(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn every_feature_is_listed_once_with_a_distinct_name() {
        for (i, a) in WasmFeature::ALL.iter().enumerate() {
            for b in &WasmFeature::ALL[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn simd_runs_on_wasmtime_only_and_the_fix_says_so() {
        assert!(!EngineKind::Wasmi.supports(WasmFeature::Simd));
        assert!(EngineKind::Wasmtime.supports(WasmFeature::Simd));
        let u = UnsupportedFeature {
            engine: EngineKind::Wasmi,
            feature: WasmFeature::Simd,
            function: Some(3),
            offset: 0x1a2,
            detail: "SIMD support is not enabled".into(),
        };
        assert_eq!(
            u.to_string(),
            "wasmi does not support the `simd` proposal (SIMD support is not enabled, at function 3, offset 0x1a2)"
        );
        assert_eq!(
            u.fix().to_string(),
            "build without `simd` or target only wasmtime boards"
        );
        let threads = UnsupportedFeature {
            feature: WasmFeature::Threads,
            function: None,
            ..u
        };
        assert!(
            threads
                .to_string()
                .ends_with("(SIMD support is not enabled, at offset 0x1a2)")
        );
        assert_eq!(
            threads.fix().to_string(),
            "build without `threads`: no Tern engine runs it"
        );
    }
}
