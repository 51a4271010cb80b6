//! Tern's feature table ([`EngineKind::supports`], the one decision which engine runs
//! which feature) spelled as `wasmparser` flags, and the check of a core module (or
//! a component's modules) against an engine's features, naming the first feature it
//! lacks.
//!
//! The one spelling: `tern_wasmtime::features` configures Wasmtime and checks a
//! payload of any kind with it, and this crate takes a component apart with it,
//! without an engine. wasmi (whose own `wasmparser` is older) is configured from
//! the same table in `tern-wasmi`; `tests/parity.rs` proves each engine accepts
//! exactly what the table says.

use tern_core::bundle::EngineKind;
use tern_core::features::{UnsupportedFeature, ValidationError, WasmFeature};
use wasmparser::{BinaryReaderError, Encoding, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The `wasmparser` flags of one feature.
pub const fn flags(feature: WasmFeature) -> WasmFeatures {
    use WasmFeature as F;
    match feature {
        F::MutableGlobal => WasmFeatures::MUTABLE_GLOBAL,
        F::SaturatingFloatToInt => WasmFeatures::SATURATING_FLOAT_TO_INT,
        F::SignExtension => WasmFeatures::SIGN_EXTENSION,
        F::MultiValue => WasmFeatures::MULTI_VALUE,
        // Includes `bulk-memory-opt` (memory.copy and memory.fill alone).
        F::BulkMemory => WasmFeatures::BULK_MEMORY,
        // Includes `call-indirect-overlong` (the reference-types encoding of
        // `call_indirect`, which LLVM emits since it enabled reference types).
        F::ReferenceTypes => WasmFeatures::REFERENCE_TYPES,
        F::GcTypes => WasmFeatures::GC_TYPES,
        F::Floats => WasmFeatures::FLOATS,
        F::Simd => WasmFeatures::SIMD,
        F::RelaxedSimd => WasmFeatures::RELAXED_SIMD,
        F::Threads => WasmFeatures::THREADS,
        F::TailCall => WasmFeatures::TAIL_CALL,
        F::MultiMemory => WasmFeatures::MULTI_MEMORY,
        F::Exceptions => WasmFeatures::EXCEPTIONS,
        F::Memory64 => WasmFeatures::MEMORY64,
        F::ExtendedConst => WasmFeatures::EXTENDED_CONST,
        F::FunctionReferences => WasmFeatures::FUNCTION_REFERENCES,
        F::Gc => WasmFeatures::GC,
        F::CustomPageSizes => WasmFeatures::CUSTOM_PAGE_SIZES,
        F::WideArithmetic => WasmFeatures::WIDE_ARITHMETIC,
    }
}

/// Every flag of a [`WasmFeature`]: what Tern decides on. Wasmtime's config switches
/// each of these on or off as [`engine`] says.
pub fn known() -> WasmFeatures {
    WasmFeature::ALL
        .into_iter()
        .fold(WasmFeatures::empty(), |acc, f| acc | flags(f))
}

/// The core-wasm features `engine` runs, as `wasmparser` flags.
pub fn engine(engine: EngineKind) -> WasmFeatures {
    WasmFeature::ALL
        .into_iter()
        .filter(|f| engine.supports(*f))
        .fold(WasmFeatures::empty(), |acc, f| acc | flags(f))
}

/// What a component is validated with before it is taken apart: every core feature
/// Tern decides on ([`known`]; each module is then checked against the device's
/// engine, which names the feature it lacks) and every component-model feature, so
/// that what Tern refuses (async, resources, values, 64-bit memories...) is refused
/// by name rather than as a validation error.
pub fn component() -> WasmFeatures {
    known() | WasmFeatures::COMPONENT_MODEL | component_model_proposals()
}

/// The component model's later proposals: every one is off in Wasmtime's config
/// (`tern-wasmtime` re-exports this list), and on here, when a component is
/// validated before it is taken apart, so that what needs one is refused by name.
pub fn component_model_proposals() -> WasmFeatures {
    WasmFeatures::CM_VALUES
        | WasmFeatures::CM_NESTED_NAMES
        | WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_THREADING
        | WasmFeatures::CM_ERROR_CONTEXT
        | WasmFeatures::CM_FIXED_LENGTH_LISTS
        | WasmFeatures::CM_GC
        | WasmFeatures::CM_MAP
        | WasmFeatures::CM64
        | WasmFeatures::CM_IMPLEMENTS
        | WasmFeatures::CM_CANON_NAMES
}

/// Checks that core module `wasm` validates under `engine`'s features
/// ([`validate_wasm`] with [`engine`]'s flags).
pub fn validate_module(wasm: &[u8], engine: EngineKind) -> Result<(), ValidationError> {
    validate_wasm(wasm, self::engine(engine), engine)
}

/// Checks `wasm` (a core module, or a component) against `base`, the features
/// `engine` runs it with. When it does not validate, names the first core feature
/// it needs that `engine` lacks (the one whose addition moves the validator past its
/// first error), located in its function; otherwise the validator's error.
pub fn validate_wasm(
    wasm: &[u8],
    base: WasmFeatures,
    engine: EngineKind,
) -> Result<(), ValidationError> {
    let Err(first) = validate_with(wasm, base) else {
        return Ok(());
    };
    let lacking = WasmFeature::ALL
        .into_iter()
        .filter(|f| !engine.supports(*f))
        .find(|f| match validate_with(wasm, base | flags(*f)) {
            Ok(()) => true,
            Err(e) => e.offset() != first.offset() || e.message() != first.message(),
        });
    match lacking {
        Some(feature) => Err(ValidationError::Unsupported(UnsupportedFeature {
            engine,
            feature,
            function: function_at(wasm, first.offset()),
            offset: first.offset(),
            detail: first.message().to_string(),
        })),
        None => Err(ValidationError::Invalid(first.to_string())),
    }
}

fn validate_with(wasm: &[u8], features: WasmFeatures) -> Result<(), BinaryReaderError> {
    Validator::new_with_features(features)
        .validate_all(wasm)
        .map(|_| ())
}

/// The index (imported functions first) of the function whose body holds `offset`,
/// in the core module that holds it (a component's modules each count from 0).
fn function_at(wasm: &[u8], offset: usize) -> Option<u32> {
    let mut imported = 0u32;
    let mut defined = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => {
                imported = 0;
                defined = 0;
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Func(_) | TypeRef::FuncExact(_) = import.ok()?.ty {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                if body.range().contains(&offset) {
                    return Some(imported + defined);
                }
                defined += 1;
            }
            _ => {}
        }
    }
    None
}
