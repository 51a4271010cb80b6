//! Which wasm features a component may use: the core features come from
//! [`EngineKind::supports`] (the one table both engines are configured from), spelled
//! as `wasmparser` flags exactly as `tern_wasmtime::features` spells them (a test
//! holds the two to each other), so that this crate needs no engine.

use tern_core::bundle::EngineKind;
use tern_core::features::{UnsupportedFeature, ValidationError, WasmFeature};
use wasmparser::{BinaryReaderError, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The `wasmparser` flags of one feature.
pub const fn flags(feature: WasmFeature) -> WasmFeatures {
    use WasmFeature as F;
    match feature {
        F::MutableGlobal => WasmFeatures::MUTABLE_GLOBAL,
        F::SaturatingFloatToInt => WasmFeatures::SATURATING_FLOAT_TO_INT,
        F::SignExtension => WasmFeatures::SIGN_EXTENSION,
        F::MultiValue => WasmFeatures::MULTI_VALUE,
        F::BulkMemory => WasmFeatures::BULK_MEMORY,
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

/// The core features `engine` runs.
pub fn engine(engine: EngineKind) -> WasmFeatures {
    WasmFeature::ALL
        .into_iter()
        .filter(|f| engine.supports(*f))
        .fold(WasmFeatures::empty(), |acc, f| acc | flags(f))
}

/// What a component is validated with before it is taken apart: every core feature
/// Tern decides on (each module is then checked against the device's engine, which
/// names the feature it lacks) and every component-model feature, so that what Tern
/// refuses (async, resources, values, 64-bit memories...) is refused by name rather
/// than as a validation error.
pub fn component() -> WasmFeatures {
    let core = WasmFeature::ALL
        .into_iter()
        .fold(WasmFeatures::empty(), |acc, f| acc | flags(f));
    core | WasmFeatures::COMPONENT_MODEL
        | WasmFeatures::CM_VALUES
        | WasmFeatures::CM_NESTED_NAMES
        | WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_THREADING
        | WasmFeatures::CM_ERROR_CONTEXT
        | WasmFeatures::CM_FIXED_LENGTH_LISTS
        | WasmFeatures::CM_GC
        | WasmFeatures::CM64
        | WasmFeatures::CM_MAP
}

fn validate_with(wasm: &[u8], features: WasmFeatures) -> Result<(), BinaryReaderError> {
    Validator::new_with_features(features)
        .validate_all(wasm)
        .map(|_| ())
}

/// Checks that core module `wasm` validates under `engine`'s features; when it does
/// not, names the first feature it needs that the engine lacks (the one whose
/// addition moves the validator past its first error), as
/// `tern_wasmtime::features::validate` does.
pub fn validate_module(wasm: &[u8], engine: EngineKind) -> Result<(), ValidationError> {
    let base = self::engine(engine);
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

/// The index (imported functions first) of the function whose body holds `offset`.
fn function_at(wasm: &[u8], offset: usize) -> Option<u32> {
    let mut imported = 0u32;
    let mut defined = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
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
