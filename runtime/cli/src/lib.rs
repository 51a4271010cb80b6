//! Library side of the `tern` command: event files and the run loop shared by the
//! CLI, the demo and the integration tests.

pub mod boards;
pub mod client;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod run;
pub mod sign;
