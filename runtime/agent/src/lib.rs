//! Tern's device agent: A/B component slots on NOR flash, power-fail-safe updates,
//! trial runs, confirmation and rollback.
//!
//! - [`SlotManager`] keeps two component slots and a double-buffered metadata record
//!   on any [`embedded_storage::nor_flash::NorFlash`]. It installs only bundles the
//!   board's policy accepts, streams them into the inactive slot while hashing, and
//!   re-verifies the active slot at every boot. A power cut at any instant leaves a
//!   device that boots a valid, signed component: the old one or the new one.
//! - [`Supervisor`] decides, from a trial run's outcomes, whether to confirm or roll
//!   back, and produces the [`Report`] for the fleet server. It knows no engine.
//! - [`Agent`] is the one update agent, sans-IO: check-ins, the report queue,
//!   downloads with resume, trial and settle. The gateway and the device firmware
//!   drive it.
//! - [`ota`] implements embedded-svc's OTA traits on the slot manager.
//! - [`sim::SimFlash`] is a simulated NOR flash that enforces erase-before-write,
//!   counts operations and tears the one it cuts power in; the power-fail tests run
//!   on it.
//!
//! `no_std` + `alloc`; builds for `thumbv7em-none-eabihf`.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

pub mod agent;
pub mod error;
pub mod layout;
pub mod meta;
pub mod nor;
pub mod ota;
pub mod sim;
pub mod slots;
pub mod supervisor;

pub use agent::{Action, Agent, Flow, Notice, Workload};
pub use error::{AgentError, CorruptReason, FlashOp, LayoutError};
pub use layout::SlotLayout;
pub use meta::SlotState;
pub use slots::{BundleWriter, ComponentInfo, Expected, Receiving, SlotId, SlotManager, Update};
pub use supervisor::{ComponentId, Decision, Report, RollbackReason, Supervisor, TrialPolicy};

#[cfg(test)]
mod testkit;
