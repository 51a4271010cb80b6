//! The cross-crate integration tests, linked as one test binary: each of these links
//! Wasmtime, Cranelift and wasmi, so eight binaries cost eight links and eight copies
//! on disk (about 90 MB each in a test build) for no isolation the tests need. Each
//! module is one subject; `cargo test -p tern-tests -- parity::` runs one.

mod abi_errors;
mod components;
mod composition;
mod differential;
mod hostile;
mod images;
mod parity;
mod tamper;
mod wasi;
