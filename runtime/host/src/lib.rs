//! Tern on a host, as a library: what the `tern` command does, without the command
//! line, so the CLI, the integration tests and the benchmarks share one
//! implementation.
//!
//! The compiled-in board tables (`boards`), key files (`keys`), building, checking,
//! verifying and inspecting signed bundles (`sign`), event files (`events`), the run
//! loop and its typed transcript (`run`), the gateway agent (`gateway`), the fleet
//! server's typed client (`client`) and composition of an app with the
//! components that satisfy its imports (`compose`).
#![forbid(unsafe_code)]

pub mod boards;
pub mod client;
pub mod compose;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod run;
pub mod sign;
