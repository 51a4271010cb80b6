//! Host tools for engines without a component model: a WIT world described for
//! `tern-cabi` ([`describe_world`], [`tern_edge`]), and a component taken apart into
//! a [`DeviceImage`](tern_core::image::DeviceImage) ([`device_image`]).
//!
//! Both run where a bundle is signed, never on a device: the device reads the
//! results as postcard (`tern_core::image`), already checked.
//!
//! [`features`] (the feature table as `wasmparser` flags) and [`text`] (types written
//! as WIT text for messages) are the one copy `tern-wasmtime` uses too: they need
//! no engine.
#![forbid(unsafe_code)]

mod describe;
mod device;
pub mod features;
pub mod text;

pub use describe::{
    DescribeError, Direction, FuncName, Place, Unsupported, describe_world, runtime_wit, tern_edge,
};
pub use device::{ImageBuildError, MAX_NESTING, MAX_STEPS, device_image};

/// The checked-in description of the `tern:edge` world that `tern-core` compiles in
/// (`include_bytes!`): `runtime/core/src/tern-edge.world`.
pub fn world_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src/tern-edge.world")
}

/// [`tern_edge`] as the postcard bytes `runtime/core/src/tern-edge.world` holds.
pub fn tern_edge_postcard() -> Vec<u8> {
    // Serializing a `World` into a `Vec` has no failure mode but allocation.
    postcard::to_allocvec(&tern_edge()).unwrap_or_default()
}

/// Writes [`tern_edge_postcard`] to [`world_file`]; returns its length.
pub fn write_world_file() -> std::io::Result<usize> {
    let bytes = tern_edge_postcard();
    std::fs::write(world_file(), &bytes)?;
    Ok(bytes.len())
}
