//! Which core-wasm imports and exports the `tern:edge` world consists of, with their
//! core types, shared by both engines' load-time checks: a module that does not fit the
//! world is refused by both at load, with the same [`Error`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::error::Error;
use crate::grant::Grant;
use crate::wit::Interface;

/// The functions of each host interface, as core-wasm import names.
pub const fn functions(iface: Interface) -> &'static [&'static str] {
    match iface {
        Interface::Log => &["log"],
        Interface::Clock => &["now-ms"],
        Interface::Sensors => &["read"],
        Interface::Gpio => &["set", "get"],
        Interface::Kv => &["get", "set"],
        Interface::Publish => &["publish"],
        Interface::WasiLogging => &["log"],
        Interface::WasiMonotonicClock => &["now", "resolution"],
        Interface::WasiKeyvalueStore => &[
            "open",
            "[method]bucket.get",
            "[method]bucket.set",
            "[method]bucket.delete",
            "[method]bucket.exists",
            "[method]bucket.list-keys",
            "[resource-drop]bucket",
        ],
    }
}

/// Core-wasm exports every component must have.
pub const REQUIRED_EXPORTS: [&str; 5] =
    ["memory", "cabi_realloc", "init", "on-event", "health-check"];

/// Core-wasm exports a component may have: the post-return functions of the world's
/// exports, which free what a call returned, and a WASI-style reactor's
/// `_initialize`, which both engines run once after instantiation (as the component
/// model does).
pub const OPTIONAL_EXPORTS: [&str; 4] = [
    "cabi_post_init",
    "cabi_post_on-event",
    "cabi_post_health-check",
    "_initialize",
];

/// A core-wasm value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `v128`
    V128,
    /// Any reference type (`funcref`, `externref`, ...).
    Ref,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref => "ref",
        })
    }
}

/// What a core module imports or exports under one name, in each engine's terms
/// brought to one form for [`check_import_type`] and [`check_exports`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func {
        /// Parameter types.
        params: Vec<ValType>,
        /// Result types.
        results: Vec<ValType>,
    },
    /// A linear memory.
    Memory,
    /// A table.
    Table,
    /// A global.
    Global,
    /// An exception tag.
    Tag,
}

impl fmt::Display for Extern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Extern::Func { params, results } => write_func(f, params, results),
            Extern::Memory => f.write_str("a memory"),
            Extern::Table => f.write_str("a table"),
            Extern::Global => f.write_str("a global"),
            Extern::Tag => f.write_str("a tag"),
        }
    }
}

fn write_func(f: &mut fmt::Formatter<'_>, params: &[ValType], results: &[ValType]) -> fmt::Result {
    fn list(f: &mut fmt::Formatter<'_>, types: &[ValType]) -> fmt::Result {
        f.write_str("(")?;
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{t}")?;
        }
        f.write_str(")")
    }
    f.write_str("func ")?;
    list(f, params)?;
    f.write_str(" -> ")?;
    list(f, results)
}

/// What the world expects under one name: a memory, or a function of this core type
/// (the canonical ABI's flattening of the WIT function: strings and lists are a
/// pointer and a length, results of more than one value go through a return pointer
/// the guest passes last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A linear memory.
    Memory,
    /// A function with these parameters and results.
    Func(&'static [ValType], &'static [ValType]),
}

impl Expected {
    fn matches(self, found: &Extern) -> bool {
        match (self, found) {
            (Expected::Memory, Extern::Memory) => true,
            (Expected::Func(p, r), Extern::Func { params, results }) => p == params && r == results,
            _ => false,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Memory => f.write_str("a memory"),
            Expected::Func(params, results) => write_func(f, params, results),
        }
    }
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// The core type of import `name` of `iface` (one of [`functions`]), `None` for a name
/// the interface does not have.
pub const fn import_type(iface: Interface, name: &str) -> Option<Expected> {
    let (params, results): (&'static [ValType], &'static [ValType]) = match (iface, name.as_bytes())
    {
        // log(level: level, message: string)
        (Interface::Log, b"log") => (&[I32, I32, I32], &[]),
        // now-ms() -> u64
        (Interface::Clock, b"now-ms") => (&[], &[I64]),
        // read(sensor: string) -> result<sample, string>, through a return pointer
        (Interface::Sensors, b"read") => (&[I32, I32, I32], &[]),
        // set(pin: u32, high: bool) -> result<_, string>
        (Interface::Gpio, b"set") => (&[I32, I32, I32], &[]),
        // get(pin: u32) -> result<bool, string>
        (Interface::Gpio, b"get") => (&[I32, I32], &[]),
        // get(key: string) -> option<list<u8>>
        (Interface::Kv, b"get") => (&[I32, I32, I32], &[]),
        // set(key: string, value: list<u8>) -> result<_, string>
        (Interface::Kv, b"set") => (&[I32, I32, I32, I32, I32], &[]),
        // publish(topic: string, payload: list<u8>) -> result<_, string>
        (Interface::Publish, b"publish") => (&[I32, I32, I32, I32, I32], &[]),
        // log(level: level, context: string, message: string)
        (Interface::WasiLogging, b"log") => (&[I32, I32, I32, I32, I32], &[]),
        // now() -> instant, resolution() -> duration: both u64
        (Interface::WasiMonotonicClock, b"now" | b"resolution") => (&[], &[I64]),
        // open(identifier: string) -> result<bucket, error>, through a return pointer
        (Interface::WasiKeyvalueStore, b"open") => (&[I32, I32, I32], &[]),
        // get, delete, exists(self: borrow<bucket>, key: string) -> result<..., error>
        (
            Interface::WasiKeyvalueStore,
            b"[method]bucket.get" | b"[method]bucket.delete" | b"[method]bucket.exists",
        ) => (&[I32, I32, I32, I32], &[]),
        // set(self: borrow<bucket>, key: string, value: list<u8>) -> result<_, error>
        (Interface::WasiKeyvalueStore, b"[method]bucket.set") => {
            (&[I32, I32, I32, I32, I32, I32], &[])
        }
        // list-keys(self: borrow<bucket>, cursor: option<u64>) -> result<key-response, error>
        (Interface::WasiKeyvalueStore, b"[method]bucket.list-keys") => (&[I32, I32, I64, I32], &[]),
        // The canonical `resource.drop` of an owned bucket handle.
        (Interface::WasiKeyvalueStore, b"[resource-drop]bucket") => (&[I32], &[]),
        _ => return None,
    };
    Some(Expected::Func(params, results))
}

/// The core type the world gives export `name` ([`REQUIRED_EXPORTS`] and
/// [`OPTIONAL_EXPORTS`]), `None` for a name the world does not use.
pub const fn export_type(name: &str) -> Option<Expected> {
    let (params, results): (&'static [ValType], &'static [ValType]) = match name.as_bytes() {
        b"memory" => return Some(Expected::Memory),
        // cabi_realloc(old ptr, old size, align, new size) -> ptr
        b"cabi_realloc" => (&[I32, I32, I32, I32], &[I32]),
        // init(config: list<tuple<string, string>>) -> result<_, string>, as a pointer
        b"init" => (&[I32, I32], &[I32]),
        // on-event(event) -> result<list<output>, string>; `event` flattens to
        // [i32 case, i64, i32, i64, i64] (the cases' flat types joined)
        b"on-event" => (&[I32, I64, I32, I64, I64], &[I32]),
        // health-check() -> result<_, string>
        b"health-check" => (&[], &[I32]),
        // Each post-return function takes what its export returned.
        b"cabi_post_init" | b"cabi_post_on-event" | b"cabi_post_health-check" => (&[I32], &[]),
        b"_initialize" => (&[], &[]),
        _ => return None,
    };
    Some(Expected::Func(params, results))
}

/// Checks the type of an import [`check_import`] accepted as a function of `iface`.
pub fn check_import_type(
    module: &str,
    name: &str,
    iface: Interface,
    found: &Extern,
) -> Result<(), Error> {
    match import_type(iface, name) {
        Some(expected) if expected.matches(found) => Ok(()),
        Some(expected) => Err(Error::TypeMismatch {
            item: alloc::format!("{module}#{name}"),
            expected: expected.to_string(),
            found: found.to_string(),
        }),
        None => Err(Error::UnknownImport {
            module: module.to_string(),
            name: name.to_string(),
        }),
    }
}

/// Checks a module's exports against the world, given a lookup of an export by name:
/// each of [`REQUIRED_EXPORTS`] must be there ([`Error::MissingExport`]) and every
/// required or optional one present must have the world's type
/// ([`Error::TypeMismatch`]). Other exports are ignored by both engines.
pub fn check_exports(export: impl Fn(&str) -> Option<Extern>) -> Result<(), Error> {
    for name in REQUIRED_EXPORTS.into_iter().chain(OPTIONAL_EXPORTS) {
        let Some(expected) = export_type(name) else {
            continue;
        };
        match export(name) {
            None if REQUIRED_EXPORTS.contains(&name) => return Err(Error::MissingExport(name)),
            None => {}
            Some(found) if expected.matches(&found) => {}
            Some(found) => {
                return Err(Error::TypeMismatch {
                    item: String::from(name),
                    expected: expected.to_string(),
                    found: found.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Checks one import of a component's core module against the world and the grant.
///
/// Deny by default: anything outside `tern:edge` is [`Error::UnknownImport`]; a
/// `tern:edge` interface the grant lacks is [`Error::ImportNotGranted`].
pub fn check_import(module: &str, name: &str, grant: &Grant) -> Result<Interface, Error> {
    let unknown = || Error::UnknownImport {
        module: module.to_string(),
        name: name.to_string(),
    };
    let iface = Interface::from_import_module(module).ok_or_else(unknown)?;
    if !functions(iface).contains(&name) {
        return Err(unknown());
    }
    if !grant.allows_interface(iface) {
        return Err(Error::ImportNotGranted { interface: iface });
    }
    Ok(iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_denied_by_default() {
        let none = Grant::default();
        assert_eq!(
            check_import("tern:edge/gpio@0.1.0", "set", &none),
            Err(Error::ImportNotGranted {
                interface: Interface::Gpio
            })
        );
        let gpio = Grant::parse(["gpio=1"]).unwrap();
        assert_eq!(
            check_import("tern:edge/gpio@0.1.0", "set", &gpio),
            Ok(Interface::Gpio)
        );
        assert!(matches!(
            check_import("tern:edge/gpio@0.1.0", "explode", &gpio),
            Err(Error::UnknownImport { .. })
        ));
        assert!(matches!(
            check_import("wasi_snapshot_preview1", "fd_write", &Grant::development()),
            Err(Error::UnknownImport { .. })
        ));
    }

    #[test]
    fn every_function_and_export_of_the_world_has_a_core_type() {
        for iface in Interface::ALL {
            for name in functions(iface) {
                assert!(import_type(iface, name).is_some(), "{iface}#{name}");
            }
            assert_eq!(import_type(iface, "explode"), None);
        }
        for name in REQUIRED_EXPORTS.into_iter().chain(OPTIONAL_EXPORTS) {
            assert!(export_type(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_wrongly_typed_import_or_export_is_a_type_mismatch_naming_it() {
        let log = "tern:edge/log@0.1.0";
        let one_i32 = Extern::Func {
            params: alloc::vec![ValType::I32],
            results: alloc::vec![],
        };
        let e = check_import_type(log, "log", Interface::Log, &one_i32).unwrap_err();
        assert_eq!(
            e,
            Error::TypeMismatch {
                item: "tern:edge/log@0.1.0#log".into(),
                expected: "func (i32, i32, i32) -> ()".into(),
                found: "func (i32) -> ()".into(),
            }
        );
        let world = |name: &str| match export_type(name)? {
            Expected::Memory => Some(Extern::Memory),
            Expected::Func(p, r) => Some(Extern::Func {
                params: p.to_vec(),
                results: r.to_vec(),
            }),
        };
        assert_eq!(check_exports(world), Ok(()));
        let no_health = |name: &str| {
            if name == "health-check" {
                None
            } else {
                world(name)
            }
        };
        assert_eq!(
            check_exports(no_health),
            Err(Error::MissingExport("health-check"))
        );
        let global_memory = |name: &str| {
            if name == "memory" {
                Some(Extern::Global)
            } else {
                world(name)
            }
        };
        let e = check_exports(global_memory).unwrap_err();
        assert_eq!(
            e.to_string(),
            "type mismatch: the component's `memory` is a global, but the tern:edge@0.1.0 world's is a memory; rebuild it against runtime/wit"
        );
        let bad_post = |name: &str| {
            if name == "cabi_post_init" {
                Some(Extern::Func {
                    params: alloc::vec![ValType::I64],
                    results: alloc::vec![],
                })
            } else {
                world(name).filter(|_| !name.starts_with("cabi_post"))
            }
        };
        assert!(
            matches!(check_exports(bad_post), Err(Error::TypeMismatch { item, .. }) if item == "cabi_post_init")
        );
    }
}
