//! `bindgen!` host traits, each a thin forward to tern-core's [`tern_core::Host`].

use crate::Ctx;
use crate::wit;

impl wit::types::Host for Ctx {}

impl wit::log::Host for Ctx {
    fn log(&mut self, level: wit::log::Level, message: String) {
        use tern_core::Level as L;
        use wit::log::Level as W;
        let level = match level {
            W::Trace => L::Trace,
            W::Debug => L::Debug,
            W::Info => L::Info,
            W::Warn => L::Warn,
            W::Error => L::Error,
        };
        self.host.log(level, message);
    }
}

impl wit::clock::Host for Ctx {
    fn now_ms(&mut self) -> u64 {
        self.host.now_ms()
    }
}

impl wit::sensors::Host for Ctx {
    fn read(&mut self, sensor: String) -> Result<wit::types::Sample, String> {
        self.host.sensor_read(sensor).map(crate::convert::sample_in)
    }
}

impl wit::gpio::Host for Ctx {
    fn set(&mut self, pin: u32, high: bool) -> Result<(), String> {
        self.host.gpio_set(pin, high)
    }
    fn get(&mut self, pin: u32) -> Result<bool, String> {
        self.host.gpio_get(pin)
    }
}

impl wit::kv::Host for Ctx {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.host.kv_get(key)
    }
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.host.kv_set(key, value)
    }
}

impl crate::bindings::wasi::logging::logging::Host for Ctx {
    fn log(
        &mut self,
        level: crate::bindings::wasi::logging::logging::Level,
        context: String,
        message: String,
    ) {
        // By discriminant, as wasmi's path lifts it: one mapping, in tern-core.
        self.host.wasi_log(level as u32, context, message);
    }
}

impl crate::bindings::wasi::clocks::monotonic_clock::Host for Ctx {
    fn now(&mut self) -> u64 {
        self.host.monotonic_now()
    }
    fn resolution(&mut self) -> u64 {
        tern_core::Host::MONOTONIC_RESOLUTION_NS
    }
}

use crate::bindings::wasi::keyvalue::store as kv;
use wasmtime::component::Resource;

/// tern-core's `KvError` as the interface's `error`.
fn kv_error(e: tern_core::host::KvError) -> kv::Error {
    use tern_core::host::KvError as E;
    match e {
        E::NoSuchStore => kv::Error::NoSuchStore,
        E::AccessDenied => kv::Error::AccessDenied,
        E::Other(s) => kv::Error::Other(s),
    }
}

// A bucket handle's representation is the host's number for the bucket
// (`Host::kv_open`), as on wasmi: Wasmtime keeps the guest's handle table.
impl kv::Host for Ctx {
    fn open(&mut self, identifier: String) -> Result<Resource<kv::Bucket>, kv::Error> {
        self.host
            .kv_open(identifier)
            .map(Resource::new_own)
            .map_err(kv_error)
    }
}

impl kv::HostBucket for Ctx {
    fn get(
        &mut self,
        bucket: Resource<kv::Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, kv::Error> {
        self.host.bucket_get(bucket.rep(), key).map_err(kv_error)
    }
    fn set(
        &mut self,
        bucket: Resource<kv::Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), kv::Error> {
        self.host
            .bucket_set(bucket.rep(), key, value)
            .map_err(kv_error)
    }
    fn delete(&mut self, bucket: Resource<kv::Bucket>, key: String) -> Result<(), kv::Error> {
        self.host.bucket_delete(bucket.rep(), key).map_err(kv_error)
    }
    fn exists(&mut self, bucket: Resource<kv::Bucket>, key: String) -> Result<bool, kv::Error> {
        self.host.bucket_exists(bucket.rep(), key).map_err(kv_error)
    }
    fn list_keys(
        &mut self,
        bucket: Resource<kv::Bucket>,
        cursor: Option<u64>,
    ) -> Result<kv::KeyResponse, kv::Error> {
        self.host
            .bucket_list_keys(bucket.rep(), cursor)
            .map(|page| kv::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(kv_error)
    }
    fn drop(&mut self, bucket: Resource<kv::Bucket>) -> wasmtime::Result<()> {
        self.host.bucket_drop(bucket.rep());
        Ok(())
    }
}

impl wit::publish::Host for Ctx {
    fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        self.host.publish(topic, payload)
    }
}
