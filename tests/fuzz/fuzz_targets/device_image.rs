//! Fuzz target: decoding a device image must never panic, whatever the bytes: as a
//! bundle carries it (`image::decode`: the magic, postcard, `DeviceImage::check`) and
//! as a bare postcard body followed by `check`. An image that decodes encodes back
//! to the same image with the same verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::image::{self, DeviceImage};

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = image::decode(data) {
        assert_eq!(image::decode(&image::encode(&decoded)).as_ref(), Ok(&decoded));
    }
    if let Ok(bare) = postcard::from_bytes::<DeviceImage>(data) {
        let verdict = bare.check();
        let bytes = postcard::to_allocvec(&bare).expect("a decoded image encodes");
        let again: DeviceImage = postcard::from_bytes(&bytes).expect("and decodes again");
        assert_eq!(again, bare);
        assert_eq!(again.check(), verdict);
    }
});
