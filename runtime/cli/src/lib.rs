//! Library side of the `tern` command, shared by the CLI and the integration tests:
//! the compiled-in board tables (`boards`), key files (`keys`), building and checking
//! signed bundles (`sign`), event files (`events`), the run loop (`run`), the gateway
//! agent (`gateway`) and the fleet server's admin client (`client`).
#![forbid(unsafe_code)]

pub mod boards;
pub mod client;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod run;
pub mod sign;
