//! Guest SDK for `tern:ruuvi` decoders (world `tern:ruuvi/decoder`, in
//! `runtime/wit/ruuvi`): the bindings, an allocator and a panic handler, as
//! `tern-guest` is for `tern:edge` components. A decoder is a `no_std` `cdylib` that
//! implements [`Guest`] and calls `tern_ruuvi_guest::export!(MyDecoder);`; it does not
//! link `tern-guest` (whose world it is not).
//!
//! The generated export glue is `unsafe` code; here, in the SDK, it stays out of the
//! components, which are `#![forbid(unsafe_code)]`.
#![no_std]

extern crate alloc;

// Host builds (a decoder's unit tests) get their allocator and panic handler from
// std; wasm32 decoders, from `tern-guest-rt`, as `tern-guest`'s components do.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use tern_guest_rt as _;

/// Bindings generated from `runtime/wit/ruuvi` for the `tern:ruuvi/decoder` world.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../../runtime/wit", "../../runtime/wit/ruuvi"],
        world: "tern:ruuvi/decoder",
        pub_export_macro: true,
        default_bindings_module: "tern_ruuvi_guest::bindings",
        std_feature,
    });
}

pub use bindings::exports::tern::ruuvi::decode::{Guest, Reading};

/// Exports `$ty`, a [`Guest`], as the component's `tern:ruuvi/decode@0.1.0`.
///
/// On wasm32 only: a native shared library (a decoder's unit tests on the build
/// machine) cannot name a symbol `tern:ruuvi/decode@0.1.0#decode`, so there the
/// macro only makes the implementation reachable, as the export does.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($ty);

        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __tern_ruuvi_decode(
            frame: $crate::__alloc::vec::Vec<u8>,
        ) -> Result<$crate::Reading, $crate::__alloc::string::String> {
            <$ty as $crate::Guest>::decode(frame)
        }
    };
}

/// What the [`export!`] macro names in a host build.
#[doc(hidden)]
pub mod __alloc {
    pub use alloc::{string, vec};
}
