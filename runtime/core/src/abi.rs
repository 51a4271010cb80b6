//! Which core-wasm imports and exports the `tern:edge` world consists of, shared by
//! both engines' load-time checks.

use alloc::string::ToString;

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
    }
}

/// Core-wasm exports every component must have.
pub const REQUIRED_EXPORTS: [&str; 5] =
    ["memory", "cabi_realloc", "init", "on-event", "health-check"];

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
}
