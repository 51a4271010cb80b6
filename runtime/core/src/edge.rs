//! The `tern:edge` world over the generic canonical ABI: which [`Host`] method serves
//! each imported function, and the world's types as `tern_cabi::Val`s.
//!
//! An engine without a component model (`tern-wasmi`) lifts a host call's arguments
//! into `Val`s with `tern-cabi`, driven by the world's description
//! ([`crate::image::World`]); [`Host::call`] turns them into the typed call and the
//! answer back into a `Val`. This is the one place that knows how `tern:edge`'s WIT
//! types map onto Rust's, as `bindgen!` is on Wasmtime.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use tern_cabi::Val;

use crate::host::{Host, KvError};
use crate::wit::{Event, Interface, Level, Output, Value};

/// A function of `tern:edge` the host implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeFn {
    /// `log.log`
    Log,
    /// `clock.now-ms`
    NowMs,
    /// `sensors.read`
    SensorRead,
    /// `gpio.set`
    GpioSet,
    /// `gpio.get`
    GpioGet,
    /// `kv.get`
    KvGet,
    /// `kv.set`
    KvSet,
    /// `publish.publish`
    Publish,
    /// `wasi:logging/logging.log`
    WasiLog,
    /// `wasi:clocks/monotonic-clock.now`
    MonotonicNow,
    /// `wasi:clocks/monotonic-clock.resolution`
    MonotonicResolution,
    /// `wasi:keyvalue/store.open`
    KvOpen,
    /// `wasi:keyvalue/store.[method]bucket.get`
    BucketGet,
    /// `wasi:keyvalue/store.[method]bucket.set`
    BucketSet,
    /// `wasi:keyvalue/store.[method]bucket.delete`
    BucketDelete,
    /// `wasi:keyvalue/store.[method]bucket.exists`
    BucketExists,
    /// `wasi:keyvalue/store.[method]bucket.list-keys`
    BucketListKeys,
    /// `wasi:keyvalue/store.[resource-drop]bucket`: the canonical `resource.drop`
    /// of an owned bucket handle.
    BucketDrop,
}

impl EdgeFn {
    /// The function `name` of interface `iface`, if the host implements it.
    pub fn of(iface: Interface, name: &str) -> Option<EdgeFn> {
        Some(match (iface, name) {
            (Interface::Log, "log") => EdgeFn::Log,
            (Interface::Clock, "now-ms") => EdgeFn::NowMs,
            (Interface::Sensors, "read") => EdgeFn::SensorRead,
            (Interface::Gpio, "set") => EdgeFn::GpioSet,
            (Interface::Gpio, "get") => EdgeFn::GpioGet,
            (Interface::Kv, "get") => EdgeFn::KvGet,
            (Interface::Kv, "set") => EdgeFn::KvSet,
            (Interface::Publish, "publish") => EdgeFn::Publish,
            (Interface::WasiLogging, "log") => EdgeFn::WasiLog,
            (Interface::WasiMonotonicClock, "now") => EdgeFn::MonotonicNow,
            (Interface::WasiMonotonicClock, "resolution") => EdgeFn::MonotonicResolution,
            (Interface::WasiKeyvalueStore, "open") => EdgeFn::KvOpen,
            (Interface::WasiKeyvalueStore, "[method]bucket.get") => EdgeFn::BucketGet,
            (Interface::WasiKeyvalueStore, "[method]bucket.set") => EdgeFn::BucketSet,
            (Interface::WasiKeyvalueStore, "[method]bucket.delete") => EdgeFn::BucketDelete,
            (Interface::WasiKeyvalueStore, "[method]bucket.exists") => EdgeFn::BucketExists,
            (Interface::WasiKeyvalueStore, "[method]bucket.list-keys") => EdgeFn::BucketListKeys,
            (Interface::WasiKeyvalueStore, "[resource-drop]bucket") => EdgeFn::BucketDrop,
            _ => return None,
        })
    }
}

/// A value did not have the shape the `tern:edge` world gives it: the description an
/// engine lifted by and this mapping disagree, or a guest's result was not the
/// world's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// What was being converted (`kv.set arguments`, `on-event result`).
    pub what: &'static str,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} do not have the tern:edge world's types", self.what)
    }
}

fn take_string(v: &mut Val) -> Option<String> {
    match v {
        Val::String(s) => Some(core::mem::take(s)),
        _ => None,
    }
}

fn take_bytes(v: &mut Val) -> Option<Vec<u8>> {
    match v {
        Val::Bytes(b) => Some(core::mem::take(b)),
        _ => None,
    }
}

fn unit_result(r: Result<(), String>) -> Val {
    Val::Result(match r {
        Ok(()) => Ok(None),
        Err(e) => Err(Some(Box::new(Val::String(e)))),
    })
}

fn err_string(e: String) -> Result<Option<Box<Val>>, Option<Box<Val>>> {
    Err(Some(Box::new(Val::String(e))))
}

/// `wasi:keyvalue/store`'s `error` as a `Val`: `no-such-store`, `access-denied`,
/// `other(string)`.
fn kv_error(e: KvError) -> Val {
    let (case, payload) = match e {
        KvError::NoSuchStore => (0, None),
        KvError::AccessDenied => (1, None),
        KvError::Other(s) => (2, Some(Box::new(Val::String(s)))),
    };
    Val::Variant { case, payload }
}

/// `result<T, error>` of `wasi:keyvalue/store`, `T`'s value made by `ok`.
fn kv_result<T>(r: Result<T, KvError>, ok: impl FnOnce(T) -> Option<Val>) -> Val {
    Val::Result(match r {
        Ok(v) => Ok(ok(v).map(Box::new)),
        Err(e) => Err(Some(Box::new(kv_error(e)))),
    })
}

impl Host {
    /// Calls `f` with arguments lifted by the world's description; strings and lists
    /// are moved out of `args`. The result is the function's WIT result as a `Val`.
    #[inline]
    pub fn call(&mut self, f: EdgeFn, args: &mut [Val]) -> Result<Option<Val>, ShapeError> {
        let shape = |what| ShapeError { what };
        // On the function first, then its arguments: the common calls decide in one
        // jump.
        Ok(match f {
            EdgeFn::NowMs => match args {
                [] => Some(Val::U64(self.now_ms())),
                _ => return Err(shape("clock.now-ms arguments")),
            },
            EdgeFn::Log => match args {
                [Val::Enum(level), message] => {
                    let level =
                        Level::from_discriminant(*level).ok_or(shape("log.log arguments"))?;
                    let message = take_string(message).ok_or(shape("log.log arguments"))?;
                    self.log(level, message);
                    None
                }
                _ => return Err(shape("log.log arguments")),
            },
            EdgeFn::SensorRead => match args {
                [sensor] => {
                    let sensor = take_string(sensor).ok_or(shape("sensors.read arguments"))?;
                    Some(Val::Result(match self.sensor_read(sensor) {
                        Ok(s) => Ok(Some(Box::new(Val::Record(alloc::vec![
                            Val::String(s.sensor),
                            Val::S64(s.milli),
                            Val::U64(s.at_ms),
                        ])))),
                        Err(e) => err_string(e),
                    }))
                }
                _ => return Err(shape("sensors.read arguments")),
            },
            EdgeFn::GpioSet => match args {
                [Val::U32(pin), Val::Bool(high)] => Some(unit_result(self.gpio_set(*pin, *high))),
                _ => return Err(shape("gpio.set arguments")),
            },
            EdgeFn::GpioGet => match args {
                [Val::U32(pin)] => Some(Val::Result(match self.gpio_get(*pin) {
                    Ok(high) => Ok(Some(Box::new(Val::Bool(high)))),
                    Err(e) => err_string(e),
                })),
                _ => return Err(shape("gpio.get arguments")),
            },
            EdgeFn::KvGet => match args {
                [key] => {
                    let key = take_string(key).ok_or(shape("kv.get arguments"))?;
                    Some(Val::Option(
                        self.kv_get(key).map(|v| Box::new(Val::Bytes(v))),
                    ))
                }
                _ => return Err(shape("kv.get arguments")),
            },
            EdgeFn::KvSet => match args {
                [key, value] => {
                    let key = take_string(key).ok_or(shape("kv.set arguments"))?;
                    let value = take_bytes(value).ok_or(shape("kv.set arguments"))?;
                    Some(unit_result(self.kv_set(key, value)))
                }
                _ => return Err(shape("kv.set arguments")),
            },
            EdgeFn::Publish => match args {
                [topic, payload] => {
                    let topic = take_string(topic).ok_or(shape("publish.publish arguments"))?;
                    let payload = take_bytes(payload).ok_or(shape("publish.publish arguments"))?;
                    Some(unit_result(self.publish(topic, payload)))
                }
                _ => return Err(shape("publish.publish arguments")),
            },
            EdgeFn::WasiLog => match args {
                [Val::Enum(level), context, message] => {
                    let shape = || shape("wasi:logging/logging.log arguments");
                    let context = take_string(context).ok_or_else(shape)?;
                    let message = take_string(message).ok_or_else(shape)?;
                    self.wasi_log(*level, context, message);
                    None
                }
                _ => return Err(shape("wasi:logging/logging.log arguments")),
            },
            EdgeFn::MonotonicNow => match args {
                [] => Some(Val::U64(self.monotonic_now())),
                _ => return Err(shape("monotonic-clock.now arguments")),
            },
            EdgeFn::MonotonicResolution => match args {
                [] => Some(Val::U64(Host::MONOTONIC_RESOLUTION_NS)),
                _ => return Err(shape("monotonic-clock.resolution arguments")),
            },
            EdgeFn::KvOpen => match args {
                [identifier] => {
                    let identifier =
                        take_string(identifier).ok_or(shape("keyvalue open arguments"))?;
                    Some(kv_result(self.kv_open(identifier), |b| Some(Val::Own(b))))
                }
                _ => return Err(shape("keyvalue open arguments")),
            },
            EdgeFn::BucketGet => match args {
                [Val::Borrow(b), key] => {
                    let key = take_string(key).ok_or(shape("bucket.get arguments"))?;
                    Some(kv_result(self.bucket_get(*b, key), |v| {
                        Some(Val::Option(v.map(|v| Box::new(Val::Bytes(v)))))
                    }))
                }
                _ => return Err(shape("bucket.get arguments")),
            },
            EdgeFn::BucketSet => match args {
                [Val::Borrow(b), key, value] => {
                    let key = take_string(key).ok_or(shape("bucket.set arguments"))?;
                    let value = take_bytes(value).ok_or(shape("bucket.set arguments"))?;
                    Some(kv_result(self.bucket_set(*b, key, value), |()| None))
                }
                _ => return Err(shape("bucket.set arguments")),
            },
            EdgeFn::BucketDelete => match args {
                [Val::Borrow(b), key] => {
                    let key = take_string(key).ok_or(shape("bucket.delete arguments"))?;
                    Some(kv_result(self.bucket_delete(*b, key), |()| None))
                }
                _ => return Err(shape("bucket.delete arguments")),
            },
            EdgeFn::BucketExists => match args {
                [Val::Borrow(b), key] => {
                    let key = take_string(key).ok_or(shape("bucket.exists arguments"))?;
                    Some(kv_result(self.bucket_exists(*b, key), |e| {
                        Some(Val::Bool(e))
                    }))
                }
                _ => return Err(shape("bucket.exists arguments")),
            },
            EdgeFn::BucketListKeys => match args {
                [Val::Borrow(b), Val::Option(cursor)] => {
                    let cursor = match cursor.as_deref() {
                        None => None,
                        Some(Val::U64(c)) => Some(*c),
                        Some(_) => return Err(shape("bucket.list-keys arguments")),
                    };
                    Some(kv_result(self.bucket_list_keys(*b, cursor), |page| {
                        Some(Val::Record(alloc::vec![
                            Val::List(page.keys.into_iter().map(Val::String).collect()),
                            Val::Option(page.cursor.map(|c| Box::new(Val::U64(c)))),
                        ]))
                    }))
                }
                _ => return Err(shape("bucket.list-keys arguments")),
            },
            EdgeFn::BucketDrop => match args {
                [Val::Own(b)] => {
                    self.bucket_drop(*b);
                    None
                }
                _ => return Err(shape("bucket drop arguments")),
            },
        })
    }
}

/// `init`'s argument: `list<tuple<string, string>>`.
pub fn config_val(config: &[(String, String)]) -> Val {
    Val::List(
        config
            .iter()
            .map(|(k, v)| Val::Tuple(alloc::vec![Val::String(k.clone()), Val::String(v.clone())]))
            .collect(),
    )
}

/// `on-event`'s argument: `variant event { sample(sample), frame(list<u8>), tick(u64) }`.
pub fn event_val(event: &Event) -> Val {
    let (case, payload) = match event {
        Event::Sample(s) => (
            0,
            Val::Record(alloc::vec![
                Val::String(s.sensor.clone()),
                Val::S64(s.milli),
                Val::U64(s.at_ms),
            ]),
        ),
        Event::Frame(bytes) => (1, Val::Bytes(bytes.clone())),
        Event::Tick(t) => (2, Val::U64(*t)),
    };
    Val::Variant {
        case,
        payload: Some(Box::new(payload)),
    }
}

/// `init`'s and `health-check`'s result: `result<_, string>`.
pub fn unit_result_of(
    val: Option<Val>,
    what: &'static str,
) -> Result<Result<(), String>, ShapeError> {
    match val {
        Some(Val::Result(Ok(None))) => Ok(Ok(())),
        Some(Val::Result(Err(Some(e)))) => match *e {
            Val::String(e) => Ok(Err(e)),
            _ => Err(ShapeError { what }),
        },
        _ => Err(ShapeError { what }),
    }
}

/// `on-event`'s result: `result<list<output>, string>`.
pub fn outputs_of(val: Option<Val>) -> Result<Result<Vec<Output>, String>, ShapeError> {
    let shape = ShapeError {
        what: "on-event's result",
    };
    let list = match val {
        Some(Val::Result(Ok(Some(list)))) => *list,
        Some(Val::Result(Err(Some(e)))) => match *e {
            Val::String(e) => return Ok(Err(e)),
            _ => return Err(shape),
        },
        _ => return Err(shape),
    };
    let Val::List(items) = list else {
        return Err(shape);
    };
    let mut outputs = Vec::with_capacity(items.len());
    for item in items {
        let Val::Record(fields) = item else {
            return Err(shape);
        };
        let [name, value, unit]: [Val; 3] = fields.try_into().map_err(|_| shape.clone())?;
        let Val::String(name) = name else {
            return Err(shape);
        };
        let value = match value {
            Val::Variant { case, payload } => match (case, payload.map(|p| *p)) {
                (0, Some(Val::S64(m))) => Value::Milli(m),
                (1, Some(Val::Bool(b))) => Value::Flag(b),
                (2, Some(Val::String(t))) => Value::Text(t),
                _ => return Err(shape),
            },
            _ => return Err(shape),
        };
        let unit = match unit {
            Val::Option(None) => None,
            Val::Option(Some(u)) => match *u {
                Val::String(u) => Some(u),
                _ => return Err(shape),
            },
            _ => return Err(shape),
        };
        outputs.push(Output { name, value, unit });
    }
    Ok(Ok(outputs))
}
