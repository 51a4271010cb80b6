//! Writes `runtime/core/src/tern-edge.world`: the `tern:edge` world described from
//! `runtime/wit/tern-edge.wit`, as postcard, which `tern_core::image::tern_edge`
//! compiles into every build. Run after changing the WIT file or the description:
//! `cargo run -p tern-wit --bin tern-wit-gen`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = tern_wit::world_file();
    match tern_wit::write_world_file() {
        Ok(len) => {
            println!("wrote {} ({len} bytes)", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tern-wit-gen: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
