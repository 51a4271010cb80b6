//! Host semantics of the `tern:edge` imports, written once for both engines.
//!
//! An engine crate only moves values across the canonical ABI; what a host call
//! *does* (scope checks, kv quota, the trace of calls) lives here, so the two engines
//! cannot drift apart. A board or a host tool supplies a [`Platform`] that talks to
//! the real sensors, pins, storage and network.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::grant::Grant;
use crate::wit::{Bytes, Interface, Level, Sample};

/// The board side of the host interfaces. Implementations do no access checks:
/// [`Host`] has already applied the grant when a method is called.
pub trait Platform {
    /// Writes a log line.
    fn log(&mut self, level: Level, message: &str);
    /// Monotonic milliseconds.
    fn now_ms(&mut self) -> u64;
    /// Latest sample of a sensor.
    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String>;
    /// Drives a pin.
    fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String>;
    /// Reads a pin.
    fn gpio_get(&mut self, pin: u32) -> Result<bool, String>;
    /// Reads a kv entry.
    fn kv_get(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Writes a kv entry.
    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Bytes used by all kv entries (key plus value lengths).
    fn kv_used_bytes(&mut self) -> usize;
    /// Sends a message.
    fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String>;
}

/// One host call a component made, with its arguments and result: the trace that
/// parity tests compare across engines and `tern run` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "host", rename_all = "kebab-case")]
pub enum HostCall {
    /// `log.log`
    #[serde(rename = "log.log")]
    Log {
        /// Level.
        level: Level,
        /// Message.
        message: String,
    },
    /// `clock.now-ms`
    #[serde(rename = "clock.now-ms")]
    NowMs {
        /// The time returned.
        result: u64,
    },
    /// `wasi:clocks/monotonic-clock.now`
    #[serde(rename = "monotonic-clock.now")]
    MonotonicNow {
        /// The instant returned, in nanoseconds.
        result: u64,
    },
    /// `sensors.read`
    #[serde(rename = "sensors.read")]
    SensorRead {
        /// Sensor id asked for.
        sensor: String,
        /// What the component got.
        result: Result<Sample, String>,
    },
    /// `gpio.set`
    #[serde(rename = "gpio.set")]
    GpioSet {
        /// Pin.
        pin: u32,
        /// Level.
        high: bool,
        /// What the component got.
        result: Result<(), String>,
    },
    /// `gpio.get`
    #[serde(rename = "gpio.get")]
    GpioGet {
        /// Pin.
        pin: u32,
        /// What the component got.
        result: Result<bool, String>,
    },
    /// `kv.get`
    #[serde(rename = "kv.get")]
    KvGet {
        /// Key.
        key: String,
        /// What the component got.
        result: Option<Bytes>,
    },
    /// `kv.set`
    #[serde(rename = "kv.set")]
    KvSet {
        /// Key.
        key: String,
        /// Value.
        value: Bytes,
        /// What the component got.
        result: Result<(), String>,
    },
    /// `publish.publish`
    #[serde(rename = "publish.publish")]
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// What the component got.
        result: Result<(), String>,
    },
}

/// The host state of one instance: its grant, its platform and its call trace.
pub struct Host {
    grant: Grant,
    platform: Box<dyn Platform + Send>,
    trace: Vec<HostCall>,
    tracing: bool,
}

impl Host {
    /// A host for one instance with this grant. Tracing is on.
    pub fn new(grant: Grant, platform: Box<dyn Platform + Send>) -> Host {
        Host {
            grant,
            platform,
            trace: Vec::new(),
            tracing: true,
        }
    }

    /// Turns the call trace on or off (devices turn it off to save RAM).
    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
        if !on {
            self.trace.clear();
        }
    }

    /// The grant this host enforces.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The platform behind this host.
    pub fn platform(&mut self) -> &mut (dyn Platform + Send) {
        &mut *self.platform
    }

    /// Takes the calls recorded since the last take.
    pub fn take_trace(&mut self) -> Vec<HostCall> {
        core::mem::take(&mut self.trace)
    }

    fn record(&mut self, call: HostCall) {
        if self.tracing {
            self.trace.push(call);
        }
    }

    fn denied(&self, iface: Interface) -> Option<String> {
        (!self.grant.allows_interface(iface)).then(|| format!("`{iface}` is not granted"))
    }

    /// `log.log`
    pub fn log(&mut self, level: Level, message: String) {
        if self.grant.log {
            self.platform.log(level, &message);
        }
        self.record(HostCall::Log { level, message });
    }

    /// `clock.now-ms`
    pub fn now_ms(&mut self) -> u64 {
        let result = if self.grant.clock {
            self.platform.now_ms()
        } else {
            0
        };
        self.record(HostCall::NowMs { result });
        result
    }

    /// `wasi:logging/logging.log`: the `log` capability, as [`Host::log`] with WASI's
    /// levels (`critical` is logged as `error`, the most serious level of the host's
    /// log) and the record's context, if any, before the message.
    pub fn wasi_log(&mut self, level: u32, context: String, message: String) {
        let level = Level::from_wasi_discriminant(level).unwrap_or(Level::Error);
        let message = if context.is_empty() {
            message
        } else {
            alloc::format!("{context}: {message}")
        };
        self.log(level, message);
    }

    /// `wasi:clocks/monotonic-clock.now`: the `clock` capability in nanoseconds
    /// (the platform's clock counts milliseconds; see [`Host::MONOTONIC_RESOLUTION_NS`]).
    pub fn monotonic_now(&mut self) -> u64 {
        let result = if self.grant.clock {
            self.platform.now_ms().saturating_mul(1_000_000)
        } else {
            0
        };
        self.record(HostCall::MonotonicNow { result });
        result
    }

    /// `wasi:clocks/monotonic-clock.resolution`: one tick of the platform's clock,
    /// a millisecond, in nanoseconds.
    pub const MONOTONIC_RESOLUTION_NS: u64 = 1_000_000;

    /// `sensors.read`: sensors outside the scope get an error value.
    pub fn sensor_read(&mut self, sensor: String) -> Result<Sample, String> {
        let result = match &self.grant.sensors {
            None => Err(self.denied(Interface::Sensors).unwrap_or_default()),
            Some(scope) if !scope.allows(&sensor) => {
                Err(format!("sensor `{sensor}` is not granted"))
            }
            Some(_) => self.platform.read_sensor(&sensor),
        };
        self.record(HostCall::SensorRead {
            sensor,
            result: result.clone(),
        });
        result
    }

    fn pin_check(&self, pin: u32) -> Result<(), String> {
        match &self.grant.gpio {
            None => Err(self.denied(Interface::Gpio).unwrap_or_default()),
            Some(scope) if !scope.allows(&pin) => Err(format!("gpio pin {pin} is not granted")),
            Some(_) => Ok(()),
        }
    }

    /// `gpio.set`: pins outside the scope get an error value.
    pub fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String> {
        let result = self
            .pin_check(pin)
            .and_then(|()| self.platform.gpio_set(pin, high));
        self.record(HostCall::GpioSet {
            pin,
            high,
            result: result.clone(),
        });
        result
    }

    /// `gpio.get`: pins outside the scope get an error value.
    pub fn gpio_get(&mut self, pin: u32) -> Result<bool, String> {
        let result = self
            .pin_check(pin)
            .and_then(|()| self.platform.gpio_get(pin));
        self.record(HostCall::GpioGet {
            pin,
            result: result.clone(),
        });
        result
    }

    /// `kv.get`
    pub fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        let result = if self.grant.kv.is_some() {
            self.platform.kv_get(&key)
        } else {
            None
        };
        self.record(HostCall::KvGet {
            key,
            result: result.clone().map(Bytes),
        });
        result
    }

    /// `kv.set`: fails with an error value when the quota would be exceeded.
    pub fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let result = match self.grant.kv {
            None => Err(self.denied(Interface::Kv).unwrap_or_default()),
            Some(quota) => {
                let old = self
                    .platform
                    .kv_get(&key)
                    .map_or(0, |v| v.len() + key.len());
                let used = self.platform.kv_used_bytes() - old + key.len() + value.len();
                if used > quota as usize {
                    Err(format!(
                        "kv quota exceeded: {used} bytes needed, {quota} granted"
                    ))
                } else {
                    self.platform.kv_set(&key, &value)
                }
            }
        };
        self.record(HostCall::KvSet {
            key,
            value: Bytes(value),
            result: result.clone(),
        });
        result
    }

    /// `publish.publish`: topics outside the granted prefix get an error value.
    pub fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        let result = match &self.grant.publish {
            None => Err(self.denied(Interface::Publish).unwrap_or_default()),
            Some(prefix) if !topic.starts_with(prefix.as_str()) => Err(format!(
                "topic `{topic}` is outside the granted prefix `{prefix}`"
            )),
            Some(_) => self.platform.publish(&topic, &payload),
        };
        self.record(HostCall::Publish {
            topic,
            payload: Bytes(payload),
            result: result.clone(),
        });
        result
    }
}

/// What a kv store counts against its quota: every key's and every value's length.
/// One rule for every [`Platform`] that keeps kv in a map, so a quota means the same
/// on a gateway and on a device.
pub fn kv_used_bytes(kv: &BTreeMap<String, Vec<u8>>) -> usize {
    kv.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A simulated platform for hosts and tests: sensors and the clock are fed from
/// events, pins and kv live in memory, published messages are kept in order.
#[derive(Clone, Debug, Default)]
pub struct SimPlatform {
    /// Latest sample per sensor.
    pub sensors: BTreeMap<String, Sample>,
    /// Pin levels.
    pub pins: BTreeMap<u32, bool>,
    /// kv entries.
    pub kv: BTreeMap<String, Vec<u8>>,
    /// Simulated clock (ms).
    pub now_ms: u64,
    /// Published messages, oldest first.
    pub published: Vec<(String, Vec<u8>)>,
    /// Log lines, oldest first.
    pub logs: Vec<(Level, String)>,
}

impl SimPlatform {
    /// Feeds an event to the simulation: samples update their sensor and the clock,
    /// ticks move the clock.
    pub fn observe(&mut self, event: &crate::wit::Event) {
        match event {
            crate::wit::Event::Sample(s) => {
                self.now_ms = self.now_ms.max(s.at_ms);
                self.sensors.insert(s.sensor.clone(), s.clone());
            }
            crate::wit::Event::Tick(t) => self.now_ms = self.now_ms.max(*t),
            crate::wit::Event::Frame(_) => {}
        }
    }
}

impl Platform for SimPlatform {
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()));
    }
    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        self.sensors
            .get(sensor)
            .cloned()
            .ok_or_else(|| format!("sensor `{sensor}` has no sample yet"))
    }
    fn gpio_set(&mut self, pin: u32, high: bool) -> Result<(), String> {
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
        kv_used_bytes(&self.kv)
    }
    fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String> {
        self.published.push((topic.to_string(), payload.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Scope;
    use alloc::vec;

    fn host(grant: Grant) -> Host {
        Host::new(grant, Box::new(SimPlatform::default()))
    }

    #[test]
    fn scopes_are_enforced_as_error_values() {
        let mut h = host(Grant::parse(["gpio=2", "sensors=temp-0", "publish=alerts/"]).unwrap());
        assert_eq!(h.gpio_set(2, true), Ok(()));
        assert_eq!(
            h.gpio_set(3, true),
            Err("gpio pin 3 is not granted".to_string())
        );
        assert!(
            h.sensor_read("secret".into())
                .unwrap_err()
                .contains("not granted")
        );
        assert!(
            h.publish("other/x".into(), vec![1])
                .unwrap_err()
                .contains("outside")
        );
        assert_eq!(h.publish("alerts/x".into(), vec![1]), Ok(()));
        // Every call, allowed or not, is in the trace, in order.
        let t = h.take_trace();
        assert_eq!(t.len(), 5);
        assert!(matches!(
            t[1],
            HostCall::GpioSet {
                pin: 3,
                result: Err(_),
                ..
            }
        ));
    }

    #[test]
    fn kv_quota_counts_keys_and_values_and_allows_overwrite() {
        let mut h = host(Grant {
            kv: Some(10),
            ..Grant::default()
        });
        assert_eq!(h.kv_set("ab".into(), vec![0; 8]), Ok(()));
        // Overwriting the same key reuses its bytes.
        assert_eq!(h.kv_set("ab".into(), vec![1; 8]), Ok(()));
        assert!(h.kv_set("c".into(), vec![0]).unwrap_err().contains("quota"));
        assert_eq!(h.kv_get("ab".into()), Some(vec![1; 8]));
        assert_eq!(h.kv_get("c".into()), None);
    }

    #[test]
    fn ungranted_interfaces_never_reach_the_platform() {
        let mut h = host(Grant {
            sensors: Some(Scope::Any),
            ..Grant::default()
        });
        h.log(Level::Info, "hi".into());
        assert_eq!(h.now_ms(), 0);
        assert!(h.kv_set("k".into(), vec![]).is_err());
        assert!(h.gpio_get(1).is_err());
    }
}
