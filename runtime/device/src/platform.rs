//! The board side of the host interfaces: simulated sensor and clock peripherals, pins and kv in RAM, logs to defmt.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use critical_section::Mutex;
use tern_core::{Event, Level, Platform, Sample};

/// What the simulated peripherals hold: the clock and the latest sample per sensor.
/// On real hardware these would be a timer and sensor registers; under QEMU the firmware
/// feeds them from its event list before delivering each event.
struct Simulated {
    now_ms: u64,
    samples: BTreeMap<String, Sample>,
}

static PERIPHERALS: Mutex<RefCell<Simulated>> = Mutex::new(RefCell::new(Simulated {
    now_ms: 0,
    samples: BTreeMap::new(),
}));

/// What the board has (board.toml `[peripherals]`). The board may have sensors and
/// pins it offers no component: the capability table decides what a component can
/// use, these lists what the hardware has.
#[derive(Clone, Copy, Debug)]
pub struct Peripherals {
    /// Sensor ids.
    pub sensors: &'static [&'static str],
    /// Gpio pins.
    pub gpio: &'static [u32],
}

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

/// The device platform. `Host` has applied the grant before any method here runs.
pub struct DevicePlatform {
    board: Peripherals,
    pins: BTreeMap<u32, bool>,
    kv: BTreeMap<String, Vec<u8>>,
}

impl DevicePlatform {
    /// A platform on `board`'s peripherals, with no pin set and an empty kv.
    pub fn new(board: Peripherals) -> Self {
        DevicePlatform {
            board,
            pins: BTreeMap::new(),
            kv: BTreeMap::new(),
        }
    }
}

impl Platform for DevicePlatform {
    fn log(&mut self, level: Level, message: &str) {
        match level {
            Level::Trace => defmt::trace!("[component] {=str}", message),
            Level::Debug => defmt::debug!("[component] {=str}", message),
            Level::Info => defmt::info!("[component] {=str}", message),
            Level::Warn => defmt::warn!("[component] {=str}", message),
            Level::Error => defmt::error!("[component] {=str}", message),
        }
    }

    fn now_ms(&mut self) -> u64 {
        critical_section::with(|cs| PERIPHERALS.borrow_ref(cs).now_ms)
    }

    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        critical_section::with(|cs| PERIPHERALS.borrow_ref(cs).samples.get(sensor).cloned())
            .ok_or_else(|| format!("sensor `{sensor}` has no sample yet"))
    }

    fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String> {
        // The grant is within the board's offer, which board.toml keeps within its
        // pins; checked again because a pin that does not exist must never be driven.
        if !self.board.gpio.contains(&pin) {
            return Err(format!("this board has no gpio pin {pin}"));
        }
        defmt::info!("gpio {=u32} <- {=bool}", pin, high);
        self.pins.insert(pin, high);
        Ok(())
    }

    fn gpio_get(&mut self, pin: u32) -> Result<bool, String> {
        Ok(self.pins.get(&pin).copied().unwrap_or(false))
    }

    fn kv_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.kv.get(key).cloned()
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.kv.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn kv_used_bytes(&mut self) -> usize {
        self.kv.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String> {
        // The board has no message broker: a published message is logged.
        defmt::info!("publish {=str}: {=usize} bytes", topic, payload.len());
        Ok(())
    }
}
