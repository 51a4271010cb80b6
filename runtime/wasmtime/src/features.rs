//! Each engine's wasm features as `wasmparser` flags, and the payload check against
//! them: what Wasmtime is configured with, what `tern sign` refuses to sign for a
//! board, what the host's install check refuses to install.
//!
//! The decision which engine runs which feature is `tern-core`'s
//! ([`EngineKind::supports`]); its one spelling as `wasmparser` flags, and the check
//! of a module against them, are `tern_wit::features`' ([`flags`], [`known`],
//! [`engine`], re-exported here), in the `wasmparser` this crate shares with
//! Wasmtime, so the host checks a payload for wasmi, too, with the same validator
//! Wasmtime uses. This module adds what is Wasmtime's: the component-model features
//! it is built with, and which engine runs which kind of payload.

use tern_core::bundle::EngineKind;
use tern_core::features::ValidationError;
use tern_wit::features::{validate_module, validate_wasm};
use wasmparser::{Parser, WasmFeatures};

/// The component model's later proposals: a component that needs one is refused
/// when it is validated (every one is off in `WasmtimeEngine::config`).
pub use tern_wit::features::{component_model_proposals, engine, flags, known};

/// What Wasmtime validates a component with: its core features ([`engine`]) and the
/// component model without any of its later proposals (values, nested names, async,
/// threads, error contexts, fixed-length lists, GC, maps, 64-bit memories,
/// `implements`, canonical names). `WasmtimeEngine::config` sets exactly these.
pub fn component() -> WasmFeatures {
    engine(EngineKind::Wasmtime) | WasmFeatures::COMPONENT_MODEL
}

/// Why a device image does not run on Wasmtime.
pub const IMAGE_ON_WASMTIME: &str = "a device image is for wasmi boards: a Wasmtime board runs the component as it is, so sign the component itself (not the device image `tern sign` made of it) for Wasmtime boards";

/// Why a component does not run on wasmi as it is.
pub const COMPONENT_ON_WASMI: &str = "a component runs as it is on Wasmtime boards only: for wasmi boards `tern sign` turns it into a device image when every target it is signed for runs wasmi";

/// Checks that a payload runs on `engine`, by its kind:
///
/// - a core module must validate under `engine`'s features;
/// - a component runs on Wasmtime only, and must validate under [`component`];
/// - a device image ([`tern_core::image`]) runs on wasmi only: it must decode, and each
///   of its core modules validate under wasmi's features.
///
/// When a core module (or a module of a component or image) uses a feature the engine
/// lacks, names the first one: the one whose addition moves the validator past the
/// first error.
pub fn validate(payload: &[u8], engine: EngineKind) -> Result<(), ValidationError> {
    if tern_core::image::is_image(payload) {
        if engine != EngineKind::Wasmi {
            return Err(ValidationError::Invalid(IMAGE_ON_WASMTIME.into()));
        }
        let image = tern_core::image::decode(payload)
            .map_err(|e| ValidationError::Invalid(e.to_string()))?;
        for module in &image.modules {
            if Parser::is_component(module) {
                return Err(ValidationError::Invalid(
                    "a device image holds core modules only".into(),
                ));
            }
            validate_module(module, engine)?;
        }
        return Ok(());
    }
    if Parser::is_component(payload) {
        if engine != EngineKind::Wasmtime {
            return Err(ValidationError::Invalid(COMPONENT_ON_WASMI.into()));
        }
        return validate_wasm(payload, component(), engine);
    }
    validate_module(payload, engine)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;
    use tern_core::features::{UnsupportedFeature, WasmFeature};

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
            let on = if name == "COMPONENT_MODEL" || name.starts_with("CM") {
                assert!(
                    name == "COMPONENT_MODEL" || component_model_proposals().contains(flag),
                    "component-model flag {name} is neither on nor switched off"
                );
                component().contains(flag)
            } else {
                ours.contains(flag)
            };
            let field = format!("wasm_{}: {}", name.to_lowercase(), on);
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
    }

    #[test]
    fn a_component_runs_on_wasmtime_and_a_device_image_on_wasmi() {
        // The empty component: the component-model layer in the header.
        let component = b"\0asm\x0d\0\x01\0";
        assert_eq!(validate(component, EngineKind::Wasmtime), Ok(()));
        assert_eq!(
            validate(component, EngineKind::Wasmi),
            Err(ValidationError::Invalid(COMPONENT_ON_WASMI.into()))
        );
        // SIMD in a component's module: Wasmtime runs it.
        let simd = wat::parse_str(
            r#"(component (core module
                 (func) (func (result i32) v128.const i32x4 0 0 0 0 i32x4.extract_lane 0)))"#,
        )
        .unwrap();
        assert_eq!(validate(&simd, EngineKind::Wasmtime), Ok(()));
        // A shared memory in a component's second module, located in that module.
        let shared = wat::parse_str(
            r#"(component
                 (core module (import "m" "f" (func)) (func))
                 (core module (memory 1 1 shared)))"#,
        )
        .unwrap();
        assert!(matches!(
            validate(&shared, EngineKind::Wasmtime),
            Err(ValidationError::Unsupported(UnsupportedFeature {
                feature: WasmFeature::Threads,
                function: None,
                ..
            }))
        ));
        // An async lift needs a component-model proposal Wasmtime is built without.
        let async_lift = wat::parse_str(include_str!("../../../tests/wat/async-lift.wat")).unwrap();
        assert!(matches!(
            validate(&async_lift, EngineKind::Wasmtime),
            Err(ValidationError::Invalid(_))
        ));

        // A device image: each module under wasmi's features; never on Wasmtime.
        let image = |modules: Vec<Vec<u8>>| {
            let world = tern_core::image::tern_edge();
            tern_core::image::encode(&tern_core::image::DeviceImage {
                version: tern_core::image::IMAGE_VERSION,
                types: world.types,
                modules,
                steps: Vec::new(),
                exports: Vec::new(),
                resources: world.resources,
                tables: 0,
            })
        };
        let plain = image(vec![b"\0asm\x01\0\0\0".to_vec()]);
        assert_eq!(validate(&plain, EngineKind::Wasmi), Ok(()));
        assert_eq!(
            validate(&plain, EngineKind::Wasmtime),
            Err(ValidationError::Invalid(IMAGE_ON_WASMTIME.into()))
        );
        let simd_module = wat::parse_str("(module (func (param v128)))").unwrap();
        let with_simd = image(vec![b"\0asm\x01\0\0\0".to_vec(), simd_module]);
        assert!(matches!(
            validate(&with_simd, EngineKind::Wasmi),
            Err(ValidationError::Unsupported(UnsupportedFeature {
                feature: WasmFeature::Simd,
                ..
            }))
        ));
        let mut truncated = plain.clone();
        truncated.pop();
        assert!(matches!(
            validate(&truncated, EngineKind::Wasmi),
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
