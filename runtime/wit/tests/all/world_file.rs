//! The description compiled into `tern-core` is the one the WIT gives today.

/// `runtime/core/src/tern-edge.world` holds what `tern-wit-gen` writes now; with
/// `TERN_REGENERATE=1` this test writes it.
#[test]
fn the_checked_in_world_is_up_to_date() {
    if std::env::var_os("TERN_REGENERATE").is_some_and(|v| v == "1") {
        tern_wit::write_world_file().unwrap();
    }
    let path = tern_wit::world_file();
    let found = std::fs::read(&path).unwrap_or_default();
    assert!(
        found == tern_wit::tern_edge_postcard(),
        "{} is out of date with runtime/wit/tern-edge.wit: regenerate it with \
         `cargo run -p tern-wit --bin tern-wit-gen` (or run this test with TERN_REGENERATE=1)",
        path.display()
    );
    // And tern-core reads it back as the same world.
    assert_eq!(tern_core::image::tern_edge(), tern_wit::tern_edge());
}
