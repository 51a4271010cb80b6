//! Tern's engine-independent core: types of the `tern:edge` world, grants, limits, host semantics and errors.
//!
//! This crate is `no_std` + `alloc` so that it runs on Cortex-M devices. It names no
//! engine: `tern-wasmi` and `tern-wasmtime` depend on it, never the reverse.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

pub mod abi;
pub mod board;
pub mod bundle;
pub mod edge;
pub mod engine;
pub mod error;
pub mod features;
pub mod feed;
pub mod grant;
pub mod host;
pub mod image;
pub mod limits;
pub mod policy;
pub mod protocol;
pub mod results;
pub mod wit;

pub use engine::{Engine, Instance};
pub use error::{Error, ErrorClass};
pub use grant::{Grant, Granted, ScopeError};
pub use host::{Host, HostCall, Platform, SimPlatform};
pub use limits::Limits;
pub use wit::{Bytes, Event, Interface, Level, Output, Sample, Value};
