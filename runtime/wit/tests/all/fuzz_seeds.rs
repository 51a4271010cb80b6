//! The device-image fuzz target's seed corpus (`tests/fuzz/corpus/device_image`):
//! images of real components, each still a valid image today. With
//! `TERN_REGENERATE=1` this test writes them again.

use tern_core::image::{self, DeviceImage};

use crate::image::{COMPOSITION, componentize, guest, root};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let smoother = tern_wit::device_image(&componentize(&guest("smoother"))).unwrap();
    let composition = tern_wit::device_image(&wat::parse_str(COMPOSITION).unwrap()).unwrap();
    // Host resources: heartbeat's wasi:keyvalue bucket, its drop and handle table.
    let heartbeat = tern_wit::device_image(&componentize(&guest("heartbeat"))).unwrap();
    vec![
        ("smoother.image", image::encode(&smoother)),
        ("heartbeat.image", image::encode(&heartbeat)),
        ("composition.image", image::encode(&composition)),
        // The bare postcard body.
        (
            "composition.postcard",
            postcard::to_allocvec(&composition).unwrap(),
        ),
    ]
}

#[test]
fn the_fuzz_seeds_are_valid_images() {
    let dir = root().join("tests/fuzz/corpus/device_image");
    if std::env::var_os("TERN_REGENERATE").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, _) in seeds() {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write the seeds with `TERN_REGENERATE=1 cargo test -p tern-wit --test all fuzz_seeds`",
                path.display()
            )
        });
        let decoded = match name.ends_with(".image") {
            true => image::decode(&bytes),
            false => postcard::from_bytes::<DeviceImage<&[u8]>>(&bytes)
                .map_err(|_| image::ImageError::Malformed("not postcard"))
                .and_then(|i| i.check().map(|()| i)),
        };
        assert!(
            decoded.is_ok(),
            "{}: {decoded:?}; the image format changed: write the seeds again with \
             `TERN_REGENERATE=1 cargo test -p tern-wit --test all fuzz_seeds`",
            path.display()
        );
    }
}
