//! Rust mirror of the `tern:edge@0.1.0` WIT world, shared by both engines.
//!
//! The WIT text itself lives in `runtime/wit/tern-edge.wit`; this module holds the
//! values that cross the boundary, in the engine-neutral form the host logic uses.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The WIT package every component is written against.
pub const WIT_PACKAGE: &str = "tern:edge@0.1.0";

/// The WIT text of the world, so that hosts and tools use one copy.
pub const WIT_TEXT: &str = include_str!("../../wit/tern-edge.wit");

/// The WASI packages `tern-edge.wit`'s world `runtime` imports from (`runtime/wit/deps`),
/// as (path, text), each before the packages that use it.
pub const WASI_WIT: [(&str, &str); 3] = [
    (
        "runtime/wit/deps/wasi-logging/logging.wit",
        include_str!("../../wit/deps/wasi-logging/logging.wit"),
    ),
    (
        "runtime/wit/deps/wasi-clocks/clocks.wit",
        include_str!("../../wit/deps/wasi-clocks/clocks.wit"),
    ),
    (
        "runtime/wit/deps/wasi-keyvalue/store.wit",
        include_str!("../../wit/deps/wasi-keyvalue/store.wit"),
    ),
];

/// One host interface of the world: the unit a grant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// `tern:edge/log`
    Log,
    /// `tern:edge/clock`
    Clock,
    /// `tern:edge/sensors`
    Sensors,
    /// `tern:edge/gpio`
    Gpio,
    /// `tern:edge/kv`
    Kv,
    /// `tern:edge/publish`
    Publish,
    /// `wasi:logging/logging`: the `log` capability through WASI's interface.
    WasiLogging,
    /// `wasi:clocks/monotonic-clock`: the `clock` capability through WASI's
    /// interface.
    WasiMonotonicClock,
    /// `wasi:keyvalue/store`: the `kv` capability through WASI's interface (the
    /// component's one store as a bucket).
    WasiKeyvalueStore,
}

impl Interface {
    /// Every host interface, in the order of world `runtime`: `tern:edge`'s, then WASI's.
    pub const ALL: [Interface; 9] = [
        Interface::Log,
        Interface::Clock,
        Interface::Sensors,
        Interface::Gpio,
        Interface::Kv,
        Interface::Publish,
        Interface::WasiLogging,
        Interface::WasiMonotonicClock,
        Interface::WasiKeyvalueStore,
    ];

    /// The interface's name: for `tern:edge`'s, the WIT name a grant uses, such as
    /// `sensors`; for WASI's, package and interface (`wasi:logging/logging`).
    pub const fn name(self) -> &'static str {
        match self {
            Interface::Log => "log",
            Interface::Clock => "clock",
            Interface::Sensors => "sensors",
            Interface::Gpio => "gpio",
            Interface::Kv => "kv",
            Interface::Publish => "publish",
            Interface::WasiLogging => "wasi:logging/logging",
            Interface::WasiMonotonicClock => "wasi:clocks/monotonic-clock",
            Interface::WasiKeyvalueStore => "wasi:keyvalue/store",
        }
    }

    /// The capability a grant names for this interface: a grant is of capabilities,
    /// and a WASI interface is another way to reach one (`wasi:logging/logging`
    /// is `log`, `wasi:clocks/monotonic-clock` is `clock`, `wasi:keyvalue/store` is
    /// `kv`). A board that offers the
    /// capability offers both interfaces; one that does not, neither.
    pub const fn capability(self) -> Interface {
        match self {
            Interface::WasiLogging => Interface::Log,
            Interface::WasiMonotonicClock => Interface::Clock,
            Interface::WasiKeyvalueStore => Interface::Kv,
            other => other,
        }
    }

    /// The core-wasm import module name, `tern:edge/<name>@0.1.0`.
    pub const fn import_module(self) -> &'static str {
        match self {
            Interface::Log => "tern:edge/log@0.1.0",
            Interface::Clock => "tern:edge/clock@0.1.0",
            Interface::Sensors => "tern:edge/sensors@0.1.0",
            Interface::Gpio => "tern:edge/gpio@0.1.0",
            Interface::Kv => "tern:edge/kv@0.1.0",
            Interface::Publish => "tern:edge/publish@0.1.0",
            Interface::WasiLogging => "wasi:logging/logging@0.1.0-draft",
            Interface::WasiMonotonicClock => "wasi:clocks/monotonic-clock@0.2.0",
            Interface::WasiKeyvalueStore => "wasi:keyvalue/store@0.2.0-draft",
        }
    }

    /// Parses a capability's name as a grant writes it (`gpio`).
    pub fn from_name(name: &str) -> Option<Interface> {
        Interface::ALL
            .into_iter()
            .find(|i| i.capability() == *i && i.name() == name)
    }

    /// Parses an import module (`tern:edge/gpio@0.1.0`) of core wasm or a component.
    /// A WASI 0.2 interface is matched at any 0.2 patch version
    /// (`wasi:clocks/monotonic-clock@0.2.3`), as Wasmtime links semver-compatible
    /// imports: the functions Tern offers have one type in every 0.2 release.
    pub fn from_import_module(module: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| {
            let ours = i.import_module();
            ours == module
                || (ours.starts_with("wasi:")
                    && ours.ends_with("@0.2.0")
                    && module
                        .strip_prefix(&ours[..ours.len() - 1])
                        .is_some_and(|patch| {
                            !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit())
                        }))
        })
    }
}

impl core::fmt::Display for Interface {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.import_module())
    }
}

/// Log levels of `tern:edge/log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something is off.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// A `wasi:logging` level by its canonical-ABI discriminant: the same five, then
    /// `critical` (5), logged as [`Level::Error`], the host log's most serious.
    pub fn from_wasi_discriminant(d: u32) -> Option<Level> {
        match d {
            5 => Some(Level::Error),
            d => Level::from_discriminant(d),
        }
    }

    /// The canonical-ABI discriminant (WIT declaration order).
    pub fn from_discriminant(d: u32) -> Option<Level> {
        Some(match d {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            4 => Level::Error,
            _ => return None,
        })
    }
}

/// `types.sample`: one measurement of one sensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Sample {
    /// Sensor id.
    pub sensor: String,
    /// Value in milli-units.
    pub milli: i64,
    /// Host clock at measurement, in milliseconds.
    pub at_ms: u64,
}

/// `types.event`: what the host delivers to `on-event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Event {
    /// A new sample arrived.
    Sample(Sample),
    /// A raw frame, written as a hex string in JSON.
    Frame(#[serde(with = "hex_bytes")] Vec<u8>),
    /// A timer fired at this host time (ms).
    Tick(u64),
}

/// `types.value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Value {
    /// Fixed-point milli-units.
    Milli(i64),
    /// On/off.
    Flag(bool),
    /// Text.
    Text(String),
}

/// `types.output`: one named output of a handler call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Output {
    /// What the value is.
    pub name: String,
    /// The value.
    pub value: Value,
    /// Unit of a milli value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
}

/// Bytes that serialize as a lowercase hex string (payloads, kv values, frames).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_bytes::deserialize(d).map(Bytes)
    }
}

/// Serde helper: bytes as a lowercase hex string.
pub mod hex_bytes {
    use alloc::string::String;
    use alloc::vec::Vec;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Encodes bytes as lowercase hex.
    pub fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 0xf)] as char);
        }
        s
    }

    /// Decodes hex (either case); `None` on odd length or a non-hex digit.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let bytes = s.as_bytes();
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        bytes
            .chunks(2)
            .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
            .collect()
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        decode(s).ok_or_else(|| D::Error::custom("expected an even number of hex digits"))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip_and_rejects() {
            let b = [0u8, 1, 0xab, 0xff];
            assert_eq!(super::encode(&b), "0001abff");
            assert_eq!(super::decode("0001ABff").as_deref(), Some(&b[..]));
            assert_eq!(super::decode("abc"), None);
            assert_eq!(super::decode("zz"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_modules_round_trip_and_match_the_wit_package() {
        for i in Interface::ALL {
            assert_eq!(Interface::from_import_module(i.import_module()), Some(i));
            if i.capability() != i {
                // A WASI interface: in one of the WASI packages, imported by `runtime`,
                // granted as its capability.
                assert_eq!(Interface::from_name(i.name()), None);
                let (package, iface) = i.name().split_once('/').unwrap();
                let version = i.import_module().rsplit_once('@').unwrap().1;
                assert!(WASI_WIT.iter().any(|(_, text)| {
                    text.contains(&alloc::format!("package {package}@{version};"))
                        && text.contains(&alloc::format!("interface {iface} {{"))
                }));
                assert!(WIT_TEXT.contains(&alloc::format!("import {};", i.import_module())));
                continue;
            }
            assert_eq!(Interface::from_name(i.name()), Some(i));
            assert!(
                i.import_module()
                    .ends_with(&alloc::format!("@{}", &WIT_PACKAGE[10..]))
            );
            assert!(WIT_TEXT.contains(&alloc::format!("interface {} {{", i.name())));
        }
        assert_eq!(Interface::from_import_module("tern:edge/gpio@0.2.0"), None);
        assert!(WIT_TEXT.contains(&alloc::format!("package {WIT_PACKAGE};")));
    }

    #[test]
    fn wasi_interfaces_match_at_any_0_2_patch_and_no_other_version() {
        let clock = Some(Interface::WasiMonotonicClock);
        for ok in ["0.2.0", "0.2.3", "0.2.10"] {
            let module = alloc::format!("wasi:clocks/monotonic-clock@{ok}");
            assert_eq!(Interface::from_import_module(&module), clock, "{module}");
        }
        for bad in ["0.3.0", "0.2", "0.2.", "0.2.1-rc", "0.20.0", "1.2.0"] {
            let module = alloc::format!("wasi:clocks/monotonic-clock@{bad}");
            assert_eq!(Interface::from_import_module(&module), None, "{module}");
        }
        // wasi-logging is a draft: its one version only.
        assert_eq!(
            Interface::from_import_module("wasi:logging/logging@0.1.0-draft"),
            Some(Interface::WasiLogging)
        );
        assert_eq!(
            Interface::from_import_module("wasi:logging/logging@0.1.1-draft"),
            None
        );
    }
}
