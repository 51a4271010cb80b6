//! Grants: which host interfaces a component may import, and the scopes inside them.
//!
//! Deny by default: `Grant::default()` grants nothing. An interface that is not
//! granted is not linked, so a component importing it fails to load; a scope (sensor
//! ids, gpio pins, kv quota, topic prefix) is enforced inside the host function,
//! which returns the guest an error value.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::wit::Interface;

/// A set of allowed items, or every item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope<T> {
    /// Any item.
    Any,
    /// Only these items.
    Only(Vec<T>),
}

impl<T: PartialEq> Scope<T> {
    /// Whether `item` is inside the scope.
    pub fn allows(&self, item: &T) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(items) => items.contains(item),
        }
    }
}

/// What one component may use. Every field `None`/`false` means "not granted".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Grant {
    /// `log` is granted.
    #[serde(default)]
    pub log: bool,
    /// `clock` is granted.
    #[serde(default)]
    pub clock: bool,
    /// `sensors`, with the sensor ids that may be read.
    #[serde(default)]
    pub sensors: Option<Scope<String>>,
    /// `gpio`, with the pins that may be driven or read.
    #[serde(default)]
    pub gpio: Option<Scope<u32>>,
    /// `kv`, with the quota in bytes (sum of key and value lengths).
    #[serde(default)]
    pub kv: Option<u32>,
    /// `publish`, with the topic prefix every topic must start with (`""` = any).
    #[serde(default)]
    pub publish: Option<String>,
}

/// A grant string that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeError {
    /// The offending text.
    pub text: String,
    /// What is wrong and what is expected.
    pub reason: &'static str,
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid grant `{}`: {}", self.text, self.reason)
    }
}

/// A grant an engine may link ([`crate::Engine::load`] takes nothing else): a
/// capability as a type, in the manner of Tock's `capabilities`. Only
/// [`crate::policy::check_install`] mints one for a signed bundle, after the board's
/// policy accepted it; host tools that run unsigned code say so by name with
/// [`Granted::for_development`]. [`Granted::nothing`] grants nothing, so anyone may
/// make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted(Grant);

impl Granted {
    /// What the policy decided (only [`crate::policy`] calls this).
    pub(crate) fn minted(grant: Grant) -> Granted {
        Granted(grant)
    }

    /// Links `grant` for code no board's policy checked: `tern run --grant`, tests,
    /// benchmarks. Never for what a device installs.
    pub fn for_development(grant: Grant) -> Granted {
        Granted(grant)
    }

    /// Nothing granted: deny by default.
    pub fn nothing() -> Granted {
        Granted(Grant::default())
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.0
    }
}

impl core::ops::Deref for Granted {
    type Target = Grant;

    fn deref(&self) -> &Grant {
        &self.0
    }
}

impl Grant {
    /// Every interface, unscoped: for development runs on a host, never for a board.
    pub fn development() -> Grant {
        Grant {
            log: true,
            clock: true,
            sensors: Some(Scope::Any),
            gpio: Some(Scope::Any),
            kv: Some(64 * 1024),
            publish: Some(String::new()),
        }
    }

    /// Whether the interface is granted at all (its imports may be linked): its
    /// capability ([`Interface::capability`]) is.
    pub fn allows_interface(&self, iface: Interface) -> bool {
        match iface.capability() {
            Interface::Log => self.log,
            Interface::Clock => self.clock,
            Interface::Sensors => self.sensors.is_some(),
            Interface::Gpio => self.gpio.is_some(),
            Interface::Kv => self.kv.is_some(),
            Interface::Publish => self.publish.is_some(),
            Interface::WasiLogging
            | Interface::WasiMonotonicClock
            | Interface::WasiKeyvalueStore => false,
        }
    }

    /// The granted interfaces, in WIT order.
    pub fn interfaces(&self) -> impl Iterator<Item = Interface> + '_ {
        Interface::ALL
            .into_iter()
            .filter(|i| self.allows_interface(*i))
    }

    /// Adds one grant item written as `iface` or `iface=scope`:
    /// `log`, `clock`, `sensors=temp-0,temp-1` (or `sensors` for any),
    /// `gpio=2,3` (or `gpio`), `kv=4096` (quota in bytes; `kv` alone is 4096),
    /// `publish=alerts/` (topic prefix; `publish` alone allows any topic).
    pub fn add(&mut self, item: &str) -> Result<(), ScopeError> {
        let err = |reason| ScopeError {
            text: item.to_string(),
            reason,
        };
        let (name, scope) = match item.split_once('=') {
            Some((n, s)) => (n.trim(), Some(s.trim())),
            None => (item.trim(), None),
        };
        let iface = Interface::from_name(name).ok_or_else(|| {
            err("unknown interface; expected one of log, clock, sensors, gpio, kv, publish")
        })?;
        match (iface, scope) {
            (Interface::Log, None) => self.log = true,
            (Interface::Clock, None) => self.clock = true,
            (Interface::Log | Interface::Clock, Some(_)) => {
                return Err(err("log and clock take no scope"));
            }
            (Interface::Sensors, None) => self.sensors = Some(Scope::Any),
            (Interface::Sensors, Some(ids)) => {
                let ids: Vec<String> = ids
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if ids.is_empty() {
                    return Err(err("expected sensor ids separated by commas"));
                }
                self.sensors = Some(Scope::Only(ids));
            }
            (Interface::Gpio, None) => self.gpio = Some(Scope::Any),
            (Interface::Gpio, Some(pins)) => {
                let pins = pins
                    .split(',')
                    .map(|p| p.trim().parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| err("expected pin numbers separated by commas"))?;
                self.gpio = Some(Scope::Only(pins));
            }
            (Interface::Kv, None) => self.kv = Some(4096),
            (Interface::Kv, Some(q)) => {
                self.kv = Some(q.parse().map_err(|_| err("expected a quota in bytes"))?);
            }
            (Interface::Publish, prefix) => {
                self.publish = Some(prefix.unwrap_or("").to_string());
            }
            // `from_name` gives capabilities only.
            (
                Interface::WasiLogging
                | Interface::WasiMonotonicClock
                | Interface::WasiKeyvalueStore,
                _,
            ) => {
                return Err(err("grant the capability: `log`, `clock` or `kv`"));
            }
        }
        Ok(())
    }

    /// Parses a list of grant items (see [`Grant::add`]).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Grant, ScopeError> {
        let mut g = Grant::default();
        for item in items {
            g.add(item)?;
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn default_grants_nothing() {
        let g = Grant::default();
        assert_eq!(g.interfaces().count(), 0);
    }

    #[test]
    fn parses_scopes() {
        let g = Grant::parse([
            "log",
            "sensors=temp-0, temp-1",
            "gpio=4",
            "kv=128",
            "publish=alerts/",
        ])
        .unwrap();
        assert!(g.log && !g.clock);
        assert_eq!(
            g.sensors,
            Some(Scope::Only(vec![
                "temp-0".to_string(),
                "temp-1".to_string()
            ]))
        );
        assert!(g.gpio.as_ref().unwrap().allows(&4));
        assert!(!g.gpio.as_ref().unwrap().allows(&5));
        assert_eq!(g.kv, Some(128));
        assert_eq!(g.publish.as_deref(), Some("alerts/"));
        assert_eq!(
            g.interfaces().collect::<Vec<_>>(),
            vec![
                Interface::Log,
                Interface::Sensors,
                Interface::Gpio,
                Interface::Kv,
                Interface::Publish,
                // `log` and `kv` are reached through WASI's interfaces too.
                Interface::WasiLogging,
                Interface::WasiKeyvalueStore,
            ]
        );
    }

    #[test]
    fn rejects_bad_items_with_reasons() {
        for bad in ["wifi", "gpio=a", "kv=lots", "log=1", "sensors=,"] {
            let e = Grant::parse([bad]).unwrap_err();
            assert_eq!(e.text, bad);
            assert!(!e.reason.is_empty());
        }
    }
}
