//! The QEMU board's simulated sensors, clock and pins: sensors and clock follow the feed's events, pins are state in RAM (logged by the platform).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use core::cell::RefCell;

use critical_section::Mutex;
use tern_core::{Event, Sample};

use crate::platform::{Io, Peripherals};

/// What the simulated peripherals hold: the clock and the latest sample per sensor.
/// On real hardware these would be a timer and sensor registers; under QEMU the firmware
/// feeds them from its event list before delivering each event.
struct State {
    now_ms: u64,
    samples: BTreeMap<String, Sample>,
}

static PERIPHERALS: Mutex<RefCell<State>> = Mutex::new(RefCell::new(State {
    now_ms: 0,
    samples: BTreeMap::new(),
}));

/// Clears the simulated peripherals before a run over the feed from its start.
pub fn reset() {
    critical_section::with(|cs| {
        let mut p = PERIPHERALS.borrow_ref_mut(cs);
        p.now_ms = 0;
        p.samples.clear();
    })
}

/// Moves the simulated peripherals to what `event` says happened: a sample of a sensor
/// the board has updates that sensor, and samples and ticks move the clock forward.
pub fn observe(board: &Peripherals, event: &Event) {
    critical_section::with(|cs| {
        let mut p = PERIPHERALS.borrow_ref_mut(cs);
        match event {
            Event::Sample(s) => {
                p.now_ms = p.now_ms.max(s.at_ms);
                if board.sensors.contains(&s.sensor.as_str()) {
                    p.samples.insert(s.sensor.clone(), s.clone());
                }
            }
            Event::Tick(t) => p.now_ms = p.now_ms.max(*t),
            Event::Frame(_) => {}
        }
    })
}

/// One instance's view of the simulated peripherals: the shared clock and samples,
/// and its own pins, all low at first.
#[derive(Default)]
pub struct Simulated {
    pins: BTreeMap<u32, bool>,
}

impl Io for Simulated {
    fn now_ms(&mut self) -> u64 {
        critical_section::with(|cs| PERIPHERALS.borrow_ref(cs).now_ms)
    }

    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        critical_section::with(|cs| PERIPHERALS.borrow_ref(cs).samples.get(sensor).cloned())
            .ok_or_else(|| format!("sensor `{sensor}` has no sample yet"))
    }

    fn set_pin(&mut self, pin: u32, high: bool) -> Result<(), String> {
        self.pins.insert(pin, high);
        Ok(())
    }

    fn pin(&mut self, pin: u32) -> Result<bool, String> {
        Ok(self.pins.get(&pin).copied().unwrap_or(false))
    }
}
