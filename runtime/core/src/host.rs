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
    /// Removes a kv entry; nothing happens if there is none.
    fn kv_delete(&mut self, key: &str) -> Result<(), String>;
    /// Up to `take` keys in byte order, after skipping the first `skip`.
    fn kv_keys(&mut self, skip: usize, take: usize) -> Vec<String>;
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
    /// `wasi:keyvalue/store.open`
    #[serde(rename = "keyvalue.open")]
    KvOpen {
        /// The identifier asked for.
        identifier: String,
        /// The bucket (the host's number for it) or the error.
        result: Result<u32, KvError>,
    },
    /// `wasi:keyvalue/store.[method]bucket.get`
    #[serde(rename = "bucket.get")]
    BucketGet {
        /// The bucket.
        bucket: u32,
        /// Key.
        key: String,
        /// What the component got.
        result: Result<Option<Bytes>, KvError>,
    },
    /// `wasi:keyvalue/store.[method]bucket.set`
    #[serde(rename = "bucket.set")]
    BucketSet {
        /// The bucket.
        bucket: u32,
        /// Key.
        key: String,
        /// Value.
        value: Bytes,
        /// What the component got.
        result: Result<(), KvError>,
    },
    /// `wasi:keyvalue/store.[method]bucket.delete`
    #[serde(rename = "bucket.delete")]
    BucketDelete {
        /// The bucket.
        bucket: u32,
        /// Key.
        key: String,
        /// What the component got.
        result: Result<(), KvError>,
    },
    /// `wasi:keyvalue/store.[method]bucket.exists`
    #[serde(rename = "bucket.exists")]
    BucketExists {
        /// The bucket.
        bucket: u32,
        /// Key.
        key: String,
        /// What the component got.
        result: Result<bool, KvError>,
    },
    /// `wasi:keyvalue/store.[method]bucket.list-keys`
    #[serde(rename = "bucket.list-keys")]
    BucketListKeys {
        /// The bucket.
        bucket: u32,
        /// Where the page starts.
        cursor: Option<u64>,
        /// What the component got.
        result: Result<KeyPage, KvError>,
    },
    /// The component dropped its handle to a bucket.
    #[serde(rename = "bucket.drop")]
    BucketDrop {
        /// The bucket.
        bucket: u32,
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

/// `wasi:keyvalue/store`'s `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvError {
    /// The host has no store of that identifier.
    NoSuchStore,
    /// The component may not use the store.
    AccessDenied,
    /// Anything else: a quota, too many open buckets, the storage itself.
    Other(String),
}

/// `wasi:keyvalue/store`'s `key-response`: one page of keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPage {
    /// The keys, in byte order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` after the last one.
    pub cursor: Option<u64>,
}

/// The host state of one instance: its grant, its platform and its call trace.
pub struct Host {
    grant: Grant,
    platform: Box<dyn Platform + Send>,
    trace: Vec<HostCall>,
    tracing: bool,
    /// Which of the [`Host::MAX_OPEN_BUCKETS`] bucket numbers are open.
    buckets: u32,
}

impl Host {
    /// A host for one instance with this grant. Tracing is on.
    pub fn new(grant: Grant, platform: Box<dyn Platform + Send>) -> Host {
        Host {
            grant,
            platform,
            trace: Vec::new(),
            tracing: true,
            buckets: 0,
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

    /// Writes a kv entry within the grant's quota: the one rule of `kv.set` and
    /// `bucket.set`.
    fn kv_write(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        match self.grant.kv {
            None => Err(self.denied(Interface::Kv).unwrap_or_default()),
            Some(quota) => {
                let old = self.platform.kv_get(key).map_or(0, |v| v.len() + key.len());
                let used = self.platform.kv_used_bytes() - old + key.len() + value.len();
                if used > quota as usize {
                    Err(format!(
                        "kv quota exceeded: {used} bytes needed, {quota} granted"
                    ))
                } else {
                    self.platform.kv_set(key, value)
                }
            }
        }
    }

    /// `kv.set`: fails with an error value when the quota would be exceeded.
    pub fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let result = self.kv_write(&key, &value);
        self.record(HostCall::KvSet {
            key,
            value: Bytes(value),
            result: result.clone(),
        });
        result
    }

    /// How many buckets a component may hold open at once (each is a handle in its
    /// table on either engine); `open` past it is an error value.
    pub const MAX_OPEN_BUCKETS: u32 = 16;

    /// Keys per page of `list-keys`: a page stays a few hundred bytes on a device.
    pub const KEYS_PER_PAGE: usize = 16;

    /// The identifiers `open` accepts, each naming the component's one store (its
    /// `kv` grant): `""` (Wasmtime's default store) and `"default"` (Spin's).
    pub const STORE_IDENTIFIERS: [&'static str; 2] = ["", "default"];

    /// `wasi:keyvalue/store.open`: a new bucket on the component's store. Returns
    /// the host's number for it (the handle's representation).
    pub fn kv_open(&mut self, identifier: String) -> Result<u32, KvError> {
        let result = if self.grant.kv.is_none() {
            Err(KvError::AccessDenied)
        } else if !Self::STORE_IDENTIFIERS.contains(&identifier.as_str()) {
            Err(KvError::NoSuchStore)
        } else {
            match (0..Self::MAX_OPEN_BUCKETS).find(|b| self.buckets & (1 << b) == 0) {
                Some(b) => {
                    self.buckets |= 1 << b;
                    Ok(b)
                }
                None => Err(KvError::Other(format!(
                    "{} buckets are open, the most a component may hold: drop one first",
                    Self::MAX_OPEN_BUCKETS
                ))),
            }
        };
        self.record(HostCall::KvOpen {
            identifier,
            result: result.clone(),
        });
        result
    }

    /// Whether `bucket` is open. An engine's handle table only passes numbers
    /// `kv_open` gave and `bucket_drop` has not taken back, so this guards against a
    /// broken engine, not a guest.
    fn bucket_open(&self, bucket: u32) -> Result<(), KvError> {
        if bucket < Self::MAX_OPEN_BUCKETS && self.buckets & (1 << bucket) != 0 {
            Ok(())
        } else {
            Err(KvError::Other(format!("bucket {bucket} is not open")))
        }
    }

    /// `[method]bucket.get`
    pub fn bucket_get(&mut self, bucket: u32, key: String) -> Result<Option<Vec<u8>>, KvError> {
        let result = self
            .bucket_open(bucket)
            .map(|()| self.platform.kv_get(&key));
        self.record(HostCall::BucketGet {
            bucket,
            key,
            result: result.clone().map(|v| v.map(Bytes)),
        });
        result
    }

    /// `[method]bucket.set`: within the `kv` quota, as `kv.set`.
    pub fn bucket_set(&mut self, bucket: u32, key: String, value: Vec<u8>) -> Result<(), KvError> {
        let result = self
            .bucket_open(bucket)
            .and_then(|()| self.kv_write(&key, &value).map_err(KvError::Other));
        self.record(HostCall::BucketSet {
            bucket,
            key,
            value: Bytes(value),
            result: result.clone(),
        });
        result
    }

    /// `[method]bucket.delete`
    pub fn bucket_delete(&mut self, bucket: u32, key: String) -> Result<(), KvError> {
        let result = self
            .bucket_open(bucket)
            .and_then(|()| self.platform.kv_delete(&key).map_err(KvError::Other));
        self.record(HostCall::BucketDelete {
            bucket,
            key,
            result: result.clone(),
        });
        result
    }

    /// `[method]bucket.exists`
    pub fn bucket_exists(&mut self, bucket: u32, key: String) -> Result<bool, KvError> {
        let result = self
            .bucket_open(bucket)
            .map(|()| self.platform.kv_get(&key).is_some());
        self.record(HostCall::BucketExists {
            bucket,
            key,
            result: result.clone(),
        });
        result
    }

    /// `[method]bucket.list-keys`: [`Host::KEYS_PER_PAGE`] keys in byte order from
    /// `cursor`, the number of keys before the page.
    pub fn bucket_list_keys(
        &mut self,
        bucket: u32,
        cursor: Option<u64>,
    ) -> Result<KeyPage, KvError> {
        let result = self.bucket_open(bucket).map(|()| {
            let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
            let mut keys = self.platform.kv_keys(skip, Self::KEYS_PER_PAGE + 1);
            let more = keys.len() > Self::KEYS_PER_PAGE;
            keys.truncate(Self::KEYS_PER_PAGE);
            let next = skip.saturating_add(keys.len());
            KeyPage {
                keys,
                cursor: more.then_some(next as u64),
            }
        });
        self.record(HostCall::BucketListKeys {
            bucket,
            cursor,
            result: result.clone(),
        });
        result
    }

    /// The component dropped its handle to `bucket`: its number is free again.
    pub fn bucket_drop(&mut self, bucket: u32) {
        if bucket < Self::MAX_OPEN_BUCKETS {
            self.buckets &= !(1 << bucket);
        }
        self.record(HostCall::BucketDrop { bucket });
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

/// Up to `take` keys of `kv` after the first `skip`, in byte order: the one paging
/// rule of every [`Platform`] that keeps kv in a map.
pub fn kv_keys(kv: &BTreeMap<String, Vec<u8>>, skip: usize, take: usize) -> Vec<String> {
    kv.keys().skip(skip).take(take).cloned().collect()
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
    fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.kv.remove(key);
        Ok(())
    }
    fn kv_keys(&mut self, skip: usize, take: usize) -> Vec<String> {
        kv_keys(&self.kv, skip, take)
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

    #[test]
    fn buckets_open_on_the_components_store_only_and_are_bounded() {
        let mut h = host(Grant::parse(["kv=4096"]).unwrap());
        assert_eq!(h.kv_open("".into()), Ok(0));
        assert_eq!(h.kv_open("default".into()), Ok(1));
        assert_eq!(h.kv_open("redis://x".into()), Err(KvError::NoSuchStore));
        // Both buckets are the one store.
        assert_eq!(h.bucket_set(0, "k".into(), vec![7]), Ok(()));
        assert_eq!(h.bucket_get(1, "k".into()), Ok(Some(vec![7])));
        // Up to the limit, then an error value; a dropped number is given again,
        // lowest first.
        for b in 2..Host::MAX_OPEN_BUCKETS {
            assert_eq!(h.kv_open("".into()), Ok(b));
        }
        assert!(matches!(h.kv_open("".into()), Err(KvError::Other(m)) if m.contains("drop one")));
        h.bucket_drop(5);
        h.bucket_drop(3);
        assert_eq!(h.kv_open("".into()), Ok(3));
        // A closed bucket is refused (an engine bug, not a guest's: handle tables
        // never pass one).
        assert!(matches!(
            h.bucket_get(5, "k".into()),
            Err(KvError::Other(_))
        ));
        assert!(matches!(
            h.bucket_exists(99, "k".into()),
            Err(KvError::Other(_))
        ));
        // Without `kv`, no bucket opens.
        assert_eq!(
            host(Grant::default()).kv_open("".into()),
            Err(KvError::AccessDenied)
        );
    }

    #[test]
    fn bucket_writes_keep_the_kv_quota_and_deletes_free_it() {
        let mut h = host(Grant::parse(["kv=10"]).unwrap());
        let b = h.kv_open("".into()).unwrap();
        assert_eq!(h.bucket_set(b, "ab".into(), vec![0; 8]), Ok(()));
        assert_eq!(
            h.bucket_set(b, "c".into(), vec![0]),
            Err(KvError::Other(
                "kv quota exceeded: 12 bytes needed, 10 granted".into()
            ))
        );
        // Overwriting counts the new value only; `kv.set` and `bucket.set` share it.
        assert_eq!(h.bucket_set(b, "ab".into(), vec![1; 8]), Ok(()));
        assert!(h.kv_set("c".into(), vec![0]).is_err());
        assert_eq!(h.bucket_exists(b, "ab".into()), Ok(true));
        assert_eq!(h.bucket_delete(b, "ab".into()), Ok(()));
        assert_eq!(h.bucket_exists(b, "ab".into()), Ok(false));
        assert_eq!(
            h.bucket_delete(b, "ab".into()),
            Ok(()),
            "deleting nothing is fine"
        );
        assert_eq!(h.bucket_set(b, "c".into(), vec![0]), Ok(()));
    }

    #[test]
    fn list_keys_pages_in_byte_order_with_a_cursor() {
        let mut h = host(Grant::parse(["kv=4096"]).unwrap());
        let b = h.kv_open("".into()).unwrap();
        let n = Host::KEYS_PER_PAGE * 2 + 3;
        for i in (0..n).rev() {
            h.bucket_set(b, alloc::format!("key-{i:03}"), vec![])
                .unwrap();
        }
        let mut all = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = h.bucket_list_keys(b, cursor).unwrap();
            assert!(page.keys.len() <= Host::KEYS_PER_PAGE);
            all.extend(page.keys);
            pages += 1;
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<String> = (0..n).map(|i| alloc::format!("key-{i:03}")).collect();
        assert_eq!(all, expected);
        // A cursor past the end is an empty last page.
        assert_eq!(
            h.bucket_list_keys(b, Some(u64::MAX)),
            Ok(KeyPage {
                keys: Vec::new(),
                cursor: None
            })
        );
    }
}
