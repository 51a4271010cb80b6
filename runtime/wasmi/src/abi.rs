//! Canonical-ABI lifting and lowering for the `tern:edge` world on wasmi.
//!
//! Layouts follow the Component Model's canonical ABI (memory32): a result with more
//! than one flat value goes through a return area, strings are UTF-8 `(ptr, len)`
//! pairs allocated with the guest's `cabi_realloc`. The byte offsets below are those
//! of the WIT types in `runtime/wit/tern-edge.wit`; the parity tests check them
//! against Wasmtime's own implementation on every example component.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use tern_core::{Event, Interface, Level, Output, Value};
use wasmi::{AsContext, AsContextMut, Caller, Linker};

use crate::StoreData;

/// The guest broke the canonical ABI (a bad pointer, invalid UTF-8, a bad discriminant).
#[derive(Debug, Clone)]
pub struct AbiError(pub String);

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl wasmi::errors::HostError for AbiError {}

type Res<T> = Result<T, wasmi::Error>;

fn abi(msg: impl Into<String>) -> wasmi::Error {
    wasmi::Error::host(AbiError(msg.into()))
}

fn memory(ctx: &impl AsContext<Data = StoreData>) -> Res<wasmi::Memory> {
    ctx.as_context()
        .data()
        .memory
        .ok_or_else(|| abi("the component has no memory export"))
}

/// Checks `ptr` is aligned and `ptr..ptr+len` lies in memory; returns the range.
fn range(
    ctx: &impl AsContext<Data = StoreData>,
    ptr: u32,
    len: u32,
    align: u32,
) -> Res<core::ops::Range<usize>> {
    if !ptr.is_multiple_of(align) {
        return Err(abi("pointer not aligned"));
    }
    let size = memory(ctx)?.data_size(ctx);
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .filter(|end| *end <= size)
        .ok_or_else(|| abi("pointer/length out of bounds"))?;
    Ok(start..end)
}

fn load_bytes(ctx: &impl AsContext<Data = StoreData>, ptr: u32, len: u32) -> Res<Vec<u8>> {
    let r = range(ctx, ptr, len, 1)?;
    Ok(memory(ctx)?.data(ctx)[r].to_vec())
}

fn load_string(ctx: &impl AsContext<Data = StoreData>, ptr: u32, len: u32) -> Res<String> {
    String::from_utf8(load_bytes(ctx, ptr, len)?).map_err(|_| abi("string is not valid UTF-8"))
}

fn load<const N: usize>(ctx: &impl AsContext<Data = StoreData>, addr: u32) -> Res<[u8; N]> {
    let r = range(ctx, addr, N as u32, N as u32)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&memory(ctx)?.data(ctx)[r]);
    Ok(out)
}

fn load_u8(ctx: &impl AsContext<Data = StoreData>, addr: u32) -> Res<u8> {
    Ok(load::<1>(ctx, addr)?[0])
}

fn load_u32(ctx: &impl AsContext<Data = StoreData>, addr: u32) -> Res<u32> {
    Ok(u32::from_le_bytes(load(ctx, addr)?))
}

fn load_i64(ctx: &impl AsContext<Data = StoreData>, addr: u32) -> Res<i64> {
    Ok(i64::from_le_bytes(load(ctx, addr)?))
}

/// A string or list at `addr` as `(ptr: u32, len: u32)`.
fn load_str_at(ctx: &impl AsContext<Data = StoreData>, addr: u32) -> Res<String> {
    load_string(ctx, load_u32(ctx, addr)?, load_u32(ctx, addr + 4)?)
}

fn store(ctx: &mut impl AsContextMut<Data = StoreData>, addr: u32, bytes: &[u8]) -> Res<()> {
    let r = range(ctx, addr, bytes.len() as u32, 1)?;
    memory(ctx)?.data_mut(ctx)[r].copy_from_slice(bytes);
    Ok(())
}

/// Copies `bytes` into a fresh guest allocation; returns `(ptr, len)`.
fn lower_bytes(
    ctx: &mut impl AsContextMut<Data = StoreData>,
    bytes: &[u8],
    align: u32,
) -> Res<(u32, u32)> {
    let len = u32::try_from(bytes.len()).map_err(|_| abi("value larger than 4 GiB"))?;
    let realloc = ctx
        .as_context()
        .data()
        .realloc
        .ok_or_else(|| abi("the component has no cabi_realloc export"))?;
    let ptr = realloc.call(&mut *ctx, (0, 0, align as i32, len as i32))? as u32;
    range(ctx, ptr, len, align)?;
    store(ctx, ptr, bytes)?;
    Ok((ptr, len))
}

/// Writes a string into guest memory and its `(ptr, len)` at `addr`.
fn store_str_at(ctx: &mut impl AsContextMut<Data = StoreData>, addr: u32, s: &[u8]) -> Res<()> {
    let (p, l) = lower_bytes(ctx, s, 1)?;
    store(ctx, addr, &p.to_le_bytes())?;
    store(ctx, addr + 4, &l.to_le_bytes())
}

/// Writes `result<_, string>` into a return area (discriminant at 0, string at 4).
fn store_result_unit(
    ctx: &mut impl AsContextMut<Data = StoreData>,
    ret: u32,
    r: Result<(), String>,
) -> Res<()> {
    range(ctx, ret, 12, 4)?;
    match r {
        Ok(()) => store(ctx, ret, &[0]),
        Err(e) => {
            store(ctx, ret, &[1])?;
            store_str_at(ctx, ret + 4, e.as_bytes())
        }
    }
}

fn str_arg(c: &Caller<'_, StoreData>, ptr: i32, len: i32) -> Res<String> {
    load_string(c, ptr as u32, len as u32)
}

/// Defines the host functions of one interface in `linker`.
pub(crate) fn define(linker: &mut Linker<StoreData>, iface: Interface) -> Res<()> {
    let m = iface.import_module();
    match iface {
        Interface::Log => {
            linker.func_wrap(
                m,
                "log",
                |mut c: Caller<'_, StoreData>, level: i32, ptr: i32, len: i32| -> Res<()> {
                    let level = Level::from_discriminant(level as u32)
                        .ok_or_else(|| abi("log level out of range"))?;
                    let message = str_arg(&c, ptr, len)?;
                    c.data_mut().host.log(level, message);
                    Ok(())
                },
            )?;
        }
        Interface::Clock => {
            linker.func_wrap(m, "now-ms", |mut c: Caller<'_, StoreData>| -> i64 {
                c.data_mut().host.now_ms() as i64
            })?;
        }
        Interface::Sensors => {
            linker.func_wrap(
                m,
                "read",
                |mut c: Caller<'_, StoreData>, ptr: i32, len: i32, ret: i32| -> Res<()> {
                    let sensor = str_arg(&c, ptr, len)?;
                    let ret = ret as u32;
                    // result<sample, string>: payload aligned to 8 (sample holds s64).
                    range(&c, ret, 32, 8)?;
                    match c.data_mut().host.sensor_read(sensor) {
                        Ok(s) => {
                            store(&mut c, ret, &[0])?;
                            store_str_at(&mut c, ret + 8, s.sensor.as_bytes())?;
                            store(&mut c, ret + 16, &s.milli.to_le_bytes())?;
                            store(&mut c, ret + 24, &s.at_ms.to_le_bytes())
                        }
                        Err(e) => {
                            store(&mut c, ret, &[1])?;
                            store_str_at(&mut c, ret + 8, e.as_bytes())
                        }
                    }
                },
            )?;
        }
        Interface::Gpio => {
            linker.func_wrap(
                m,
                "set",
                |mut c: Caller<'_, StoreData>, pin: i32, high: i32, ret: i32| -> Res<()> {
                    let r = c.data_mut().host.gpio_set(pin as u32, high != 0);
                    store_result_unit(&mut c, ret as u32, r)
                },
            )?;
            linker.func_wrap(
                m,
                "get",
                |mut c: Caller<'_, StoreData>, pin: i32, ret: i32| -> Res<()> {
                    let ret = ret as u32;
                    range(&c, ret, 12, 4)?;
                    match c.data_mut().host.gpio_get(pin as u32) {
                        Ok(high) => store(&mut c, ret, &[0, 0, 0, 0, u8::from(high)]),
                        Err(e) => {
                            store(&mut c, ret, &[1])?;
                            store_str_at(&mut c, ret + 4, e.as_bytes())
                        }
                    }
                },
            )?;
        }
        Interface::Kv => {
            linker.func_wrap(
                m,
                "get",
                |mut c: Caller<'_, StoreData>, ptr: i32, len: i32, ret: i32| -> Res<()> {
                    let key = str_arg(&c, ptr, len)?;
                    let ret = ret as u32;
                    range(&c, ret, 12, 4)?;
                    match c.data_mut().host.kv_get(key) {
                        None => store(&mut c, ret, &[0]),
                        Some(v) => {
                            store(&mut c, ret, &[1])?;
                            store_str_at(&mut c, ret + 4, &v)
                        }
                    }
                },
            )?;
            linker.func_wrap(
                m,
                "set",
                |mut c: Caller<'_, StoreData>,
                 kp: i32,
                 kl: i32,
                 vp: i32,
                 vl: i32,
                 ret: i32|
                 -> Res<()> {
                    let key = str_arg(&c, kp, kl)?;
                    let value = load_bytes(&c, vp as u32, vl as u32)?;
                    let r = c.data_mut().host.kv_set(key, value);
                    store_result_unit(&mut c, ret as u32, r)
                },
            )?;
        }
        Interface::Publish => {
            linker.func_wrap(
                m,
                "publish",
                |mut c: Caller<'_, StoreData>,
                 tp: i32,
                 tl: i32,
                 pp: i32,
                 pl: i32,
                 ret: i32|
                 -> Res<()> {
                    let topic = str_arg(&c, tp, tl)?;
                    let payload = load_bytes(&c, pp as u32, pl as u32)?;
                    let r = c.data_mut().host.publish(topic, payload);
                    store_result_unit(&mut c, ret as u32, r)
                },
            )?;
        }
    }
    Ok(())
}

/// Lowers `list<tuple<string, string>>` (16-byte elements, align 4).
pub(crate) fn lower_config(
    ctx: &mut impl AsContextMut<Data = StoreData>,
    config: &[(String, String)],
) -> Res<(i32, i32)> {
    let mut elems = Vec::with_capacity(config.len() * 16);
    for (k, v) in config {
        let (kp, kl) = lower_bytes(ctx, k.as_bytes(), 1)?;
        let (vp, vl) = lower_bytes(ctx, v.as_bytes(), 1)?;
        for word in [kp, kl, vp, vl] {
            elems.extend_from_slice(&word.to_le_bytes());
        }
    }
    let (ptr, _) = lower_bytes(ctx, &elems, 4)?;
    Ok((ptr as i32, config.len() as i32))
}

/// Lowers `event` to its flat parameters `[i32 case, i64, i32, i64, i64]`: the
/// joined flattening of `sample(sample) | frame(list<u8>) | tick(u64)`.
pub(crate) fn lower_event(
    ctx: &mut impl AsContextMut<Data = StoreData>,
    event: &Event,
) -> Res<(i32, i64, i32, i64, i64)> {
    Ok(match event {
        Event::Sample(s) => {
            let (p, l) = lower_bytes(ctx, s.sensor.as_bytes(), 1)?;
            (0, i64::from(p), l as i32, s.milli, s.at_ms as i64)
        }
        Event::Frame(bytes) => {
            let (p, l) = lower_bytes(ctx, bytes, 1)?;
            (1, i64::from(p), l as i32, 0, 0)
        }
        Event::Tick(t) => (2, *t as i64, 0, 0, 0),
    })
}

fn ret_area(ctx: &impl AsContext<Data = StoreData>, ret: i32, size: u32) -> Res<u32> {
    let ret = ret as u32;
    range(ctx, ret, size, 4)?;
    Ok(ret)
}

fn lift_err_string(ctx: &impl AsContext<Data = StoreData>, ret: u32) -> Res<String> {
    load_str_at(ctx, ret + 4)
}

/// Lifts `result<_, string>` from a return area.
pub(crate) fn lift_result_unit(
    ctx: &impl AsContext<Data = StoreData>,
    ret: i32,
) -> Res<Result<(), String>> {
    let ret = ret_area(ctx, ret, 12)?;
    match load_u8(ctx, ret)? {
        0 => Ok(Ok(())),
        1 => Ok(Err(lift_err_string(ctx, ret)?)),
        _ => Err(abi("invalid result discriminant")),
    }
}

/// Size and alignment of `output` in memory: name@0, value@8 (case u8, payload@+8),
/// unit@24 (case u8, string@+4); 40 bytes, align 8.
const OUTPUT_SIZE: u32 = 40;

/// Lifts `result<list<output>, string>` from a return area.
pub(crate) fn lift_outputs(
    ctx: &impl AsContext<Data = StoreData>,
    ret: i32,
) -> Res<Result<Vec<Output>, String>> {
    let ret = ret_area(ctx, ret, 12)?;
    match load_u8(ctx, ret)? {
        0 => {}
        1 => return Ok(Err(lift_err_string(ctx, ret)?)),
        _ => return Err(abi("invalid result discriminant")),
    }
    let ptr = load_u32(ctx, ret + 4)?;
    let len = load_u32(ctx, ret + 8)?;
    let bytes = len
        .checked_mul(OUTPUT_SIZE)
        .ok_or_else(|| abi("list length out of bounds"))?;
    range(ctx, ptr, bytes, 8)?;
    let mut outputs = Vec::with_capacity(len as usize);
    for i in 0..len {
        let at = ptr + i * OUTPUT_SIZE;
        let name = load_str_at(ctx, at)?;
        let value = match load_u8(ctx, at + 8)? {
            0 => Value::Milli(load_i64(ctx, at + 16)?),
            1 => Value::Flag(load_u8(ctx, at + 16)? != 0),
            2 => Value::Text(load_str_at(ctx, at + 16)?),
            _ => return Err(abi("invalid value discriminant")),
        };
        let unit = match load_u8(ctx, at + 24)? {
            0 => None,
            1 => Some(load_str_at(ctx, at + 28)?),
            _ => return Err(abi("invalid option discriminant")),
        };
        outputs.push(Output { name, value, unit });
    }
    Ok(Ok(outputs))
}
