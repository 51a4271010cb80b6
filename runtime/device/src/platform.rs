//! The board side of the host interfaces: kv in RAM and logs and published messages to defmt on every device; sensors, pins and the clock from the board's [`Io`].

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use tern_core::{Level, Platform, Sample};

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

/// A board's sensors, pins and clock, as components' host calls reach them: simulated
/// from the feed under QEMU (`qemu::Simulated`), the chip's peripherals on a real
/// board. `Host` has applied the component's grant, and [`DevicePlatform`] has checked
/// that the pin is one the board has, before any method here runs.
pub trait Io: Send {
    /// Milliseconds on the clock components read.
    fn now_ms(&mut self) -> u64;
    /// The latest sample of `sensor`.
    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String>;
    /// Drives `pin` high or low.
    fn set_pin(&mut self, pin: u32, high: bool) -> Result<(), String>;
    /// Whether `pin` is high.
    fn pin(&mut self, pin: u32) -> Result<bool, String>;
}

/// The device platform: one per component instance, on the board's [`Io`].
pub struct DevicePlatform<I> {
    board: Peripherals,
    io: I,
    kv: BTreeMap<String, Vec<u8>>,
}

impl<I: Io> DevicePlatform<I> {
    /// A platform on `board`'s peripherals through `io`, with an empty kv.
    pub fn new(board: Peripherals, io: I) -> Self {
        DevicePlatform {
            board,
            io,
            kv: BTreeMap::new(),
        }
    }
}

impl<I: Io> Platform for DevicePlatform<I> {
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
        self.io.now_ms()
    }

    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        self.io.read_sensor(sensor)
    }

    fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String> {
        // The grant is within the board's offer, which board.toml keeps within its
        // pins; checked again because a pin that does not exist must never be driven.
        if !self.board.gpio.contains(&pin) {
            return Err(format!("this board has no gpio pin {pin}"));
        }
        self.io.set_pin(pin, high)?;
        defmt::info!("gpio {=u32} <- {=bool}", pin, high);
        Ok(())
    }

    fn gpio_get(&mut self, pin: u32) -> Result<bool, String> {
        self.io.pin(pin)
    }

    fn kv_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.kv.get(key).cloned()
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.kv.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn kv_used_bytes(&mut self) -> usize {
        tern_core::host::kv_used_bytes(&self.kv)
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.kv.remove(key);
        Ok(())
    }

    fn kv_keys(&mut self, skip: usize, take: usize) -> Vec<String> {
        tern_core::host::kv_keys(&self.kv, skip, take)
    }

    fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String> {
        // The board has no message broker: a published message is logged.
        defmt::info!("publish {=str}: {=usize} bytes", topic, payload.len());
        Ok(())
    }
}
