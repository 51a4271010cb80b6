//! Fuzz target: the plan executor (`tern-wasmi` loading and running a device image)
//! must never panic, whatever the bytes: an image that decodes is loaded against the
//! development grant, instantiated (its definitions replayed in order) and called
//! (`init`, `on-event`, `health-check`) under small limits; every failure must be a
//! typed `Error`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::host::SimPlatform;
use tern_core::{Engine, Event, Grant, Granted, Instance, Limits};
use tern_wasmi::WasmiEngine;

fuzz_target!(|data: &[u8]| {
    let engine = WasmiEngine::new(Limits {
        fuel_per_call: 200_000,
        memory_bytes: 1 << 20,
        ..Limits::HOST
    });
    let grant = Granted::for_development(Grant::development());
    let Ok(component) = engine.load(data, &grant) else {
        return;
    };
    let Ok(mut instance) = engine.instantiate(&component, Box::new(SimPlatform::default())) else {
        return;
    };
    let _ = instance.init(&[("alpha".into(), "0.5".into())]);
    let _ = instance.on_event(&Event::Tick(1));
    let _ = instance.on_event(&Event::Frame(vec![5, 0, 1, 2, 3]));
    let _ = instance.health_check();
});
