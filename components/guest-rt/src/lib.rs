//! The allocator and panic handler every guest needs on `wasm32-unknown-unknown`,
//! whichever world it is built for. The guest SDKs (`tern-guest` for `tern:edge`
//! components, `tern-ruuvi-guest` for `tern:ruuvi` decoders) link this crate with
//! `use tern_guest_rt as _;`, so a component gets them through its SDK, once.
//!
//! Host builds (unit tests of components, `cargo test` on the build machine) get
//! their allocator and panic handler from std: there this crate is empty.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // No formatting machinery in guests: a panic is a trap, which the host reports.
    core::arch::wasm32::unreachable()
}
