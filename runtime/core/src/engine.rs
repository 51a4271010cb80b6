//! The traits every engine implements: load (validate + link against a grant),
//! instantiate, and call the world's exports.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Error;
use crate::grant::Granted;
use crate::host::{Host, Platform};
use crate::limits::Limits;
use crate::wit::{Event, Output};

/// A wasm engine that runs `tern:edge` components.
pub trait Engine {
    /// A validated component, linked against exactly its grant.
    type Component;
    /// A running instance.
    type Instance: Instance;

    /// Validates `wasm` (the component's core module) and links it against `grant`:
    /// a [`Granted`], which only the install policy (or, by name, a development
    /// tool) can make.
    ///
    /// Fails with [`Error::ImportNotGranted`] naming the interface when the module
    /// imports an interface outside the grant.
    fn load(&self, wasm: &[u8], grant: &Granted) -> Result<Self::Component, Error>;

    /// Creates an instance whose host calls go to `platform`, checked against the
    /// component's grant.
    fn instantiate(
        &self,
        component: &Self::Component,
        platform: Box<dyn Platform + Send>,
    ) -> Result<Self::Instance, Error>;

    /// The limits every instance of this engine runs under.
    fn limits(&self) -> Limits;
}

/// One instance of a component: the world's exports.
///
/// The outer `Result` is the runtime's verdict (trap, fuel, limits); the inner one is
/// the component's own answer. After a fatal error ([`Error::is_fatal`]) the
/// instance answers [`Error::Poisoned`]; instantiate the component again.
pub trait Instance {
    /// `init(config)`
    fn init(&mut self, config: &[(String, String)]) -> Result<Result<(), String>, Error>;
    /// `on-event(event)`
    fn on_event(&mut self, event: &Event) -> Result<Result<Vec<Output>, String>, Error>;
    /// `health-check()`
    fn health_check(&mut self) -> Result<Result<(), String>, Error>;
    /// The instance's host state (trace, platform).
    fn host(&mut self) -> &mut Host;
}
