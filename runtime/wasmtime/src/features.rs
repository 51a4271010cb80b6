//! Each engine's wasm features as `wasmparser` flags, and the payload check against
//! them: what Wasmtime is configured with, what `tern sign` refuses to sign for a
//! board, what the host's install check refuses to install.
//!
//! The decision which engine runs which feature is `tern-core`'s
//! ([`EngineKind::supports`]); this module only spells it in the `wasmparser` this
//! crate shares with Wasmtime, so the host checks a payload for wasmi, too, with the
//! same validator Wasmtime uses. wasmi (whose own `wasmparser` is older) is configured
//! from the same table in `tern-wasmi`; `tests/parity.rs` proves each engine accepts
//! exactly what the table says.

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

fn validate_with(wasm: &[u8], features: WasmFeatures) -> Result<(), BinaryReaderError> {
    Validator::new_with_features(features)
        .validate_all(wasm)
        .map(|_| ())
}

/// Checks that `wasm` is a valid core module under `engine`'s features. When it is
/// not, finds the first feature it needs that the engine lacks: the one whose
/// addition moves the validator past the first error.
pub fn validate(wasm: &[u8], engine: EngineKind) -> Result<(), ValidationError> {
    if wasmparser::Parser::is_component(wasm) {
        return Err(ValidationError::Invalid(
            "this is a component; a payload is the core module it was built from".into(),
        ));
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    #[test]
    fn every_engine_runs_a_subset_of_what_tern_knows() {
        for e in EngineKind::ALL {
            assert!(known().contains(engine(e)));
        }
        assert!(engine(EngineKind::Wasmtime).contains(WasmFeatures::SIMD));
        assert!(!engine(EngineKind::Wasmi).contains(WasmFeatures::SIMD));
    }

    /// What Wasmtime is configured with is exactly what the table says: every core
    /// flag `wasmparser` has (Wasmtime's `Debug` prints them all), on or off.
    #[test]
    fn wasmtime_is_configured_from_the_table() {
        let config = format!(
            "{:?}",
            crate::WasmtimeEngine::config(&tern_core::Limits::HOST)
        );
        let ours = engine(EngineKind::Wasmtime);
        for (name, flag) in WasmFeatures::all().iter_names() {
            if name == "COMPONENT_MODEL" || name.starts_with("CM") {
                continue;
            }
            let field = format!("wasm_{}: {}", name.to_lowercase(), ours.contains(flag));
            assert!(
                config.contains(&field),
                "Wasmtime's config lacks `{field}`: {config}"
            );
        }
    }

    #[test]
    fn the_first_use_is_located_in_its_function_or_outside_code() {
        let in_code = wat::parse_str(
            r#"(module (import "m" "f" (func)) (func)
                (func (result i32) v128.const i32x4 0 0 0 0 i32x4.extract_lane 0))"#,
        )
        .unwrap();
        let Err(ValidationError::Unsupported(u)) = validate(&in_code, EngineKind::Wasmi) else {
            panic!("wasmi has no SIMD")
        };
        assert_eq!(
            (u.engine, u.feature, u.function),
            (EngineKind::Wasmi, WasmFeature::Simd, Some(2))
        );
        assert_eq!(validate(&in_code, EngineKind::Wasmtime), Ok(()));
        // A `v128` in a function type is found in the type section: no function.
        let in_type = wat::parse_str("(module (func (param v128)))").unwrap();
        let Err(ValidationError::Unsupported(u)) = validate(&in_type, EngineKind::Wasmi) else {
            panic!("wasmi has no SIMD")
        };
        assert_eq!((u.feature, u.function), (WasmFeature::Simd, None));
        // Shared memory: no engine has threads.
        let shared = wat::parse_str("(module (memory 1 1 shared))").unwrap();
        for e in EngineKind::ALL {
            assert!(matches!(
                validate(&shared, e),
                Err(ValidationError::Unsupported(UnsupportedFeature {
                    feature: WasmFeature::Threads,
                    ..
                }))
            ));
        }
        // A component is not a payload.
        // The empty component: the component-model layer in the header.
        let component = b"\0asm\x0d\0\x01\0";
        assert!(matches!(
            validate(component, EngineKind::Wasmtime),
            Err(ValidationError::Invalid(_))
        ));
    }

    #[test]
    fn an_empty_module_is_valid_everywhere_and_garbage_nowhere() {
        for e in EngineKind::ALL {
            assert_eq!(validate(b"\0asm\x01\0\0\0", e), Ok(()));
            assert!(matches!(
                validate(b"\0asm\x01\0\0\0garbage", e),
                Err(ValidationError::Invalid(_))
            ));
        }
    }
}
