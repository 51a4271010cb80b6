//! Tern on a host, as a library: what the `tern` command does, without the command
//! line, so the CLI, the integration tests and the benchmarks share one
//! implementation.
//!
//! The compiled-in board tables (`boards`), key files (`keys`), building, checking,
//! verifying and inspecting signed bundles (`sign`), event files (`events`), the run
//! loop and its typed transcript (`run`), the gateway agent (`gateway`) and the fleet
//! server's typed client (`client`).
#![forbid(unsafe_code)]

pub mod boards;
pub mod client;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod run;
pub mod sign;
