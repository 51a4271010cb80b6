//! Checks a parsed board.toml and turns it into a `Board`, or names the first bad key.

use ed25519_dalek::VerifyingKey;
use tern_core::Limits;
use tern_core::bundle::EngineKind;
use tern_core::grant::{Grant, Scope};

use crate::error::{BoardError, Problem};
use crate::schema::{BoardFile, CapabilitiesFile, FlashFile, TrustFile};

/// A checked board: every value here is one a device can run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// The file it came from, as the user names it (`boards/server/board.toml`).
    pub file: String,
    /// Board name, equal to its folder's name.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Rust target triples the board's firmware or host binary is built for.
    pub targets: Vec<String>,
    /// Engine the board runs.
    pub engine: EngineKind,
    /// Limits for every instance.
    pub limits: Limits,
    /// Erase-sector size of the component flash, bytes.
    pub sector_size: u32,
    /// Component slots, in file order.
    pub slots: Vec<Slot>,
    /// Keys whose signatures the board accepts, in file order.
    pub trust_keys: Vec<TrustKey>,
    /// How many distinct trusted keys must have signed a bundle.
    pub signatures_required: u8,
    /// The capabilities the board offers, as the widest grant it allows.
    pub offers: Grant,
}

/// A checked flash slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Slot name (`a`, `b`).
    pub name: String,
    /// Offset in the component flash, bytes; a multiple of the sector size.
    pub offset: u32,
    /// Size, bytes; a multiple of the sector size.
    pub size: u32,
}

/// A checked trusted key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustKey {
    /// A name for people (`tern-dev-2026`).
    pub name: String,
    /// The Ed25519 public key, a valid curve point of large order.
    pub public_key: [u8; 32],
}

/// Checks one parsed file. `file` is the path as the user names it; its folder must
/// equal the board's name.
pub(crate) fn check(file: &str, raw: BoardFile) -> Result<Board, BoardError> {
    let err = |key: &str, problem| BoardError::new(file, key, problem);

    if !is_board_name(&raw.name) {
        return Err(err(
            "name",
            Problem::InvalidBoardName {
                name: raw.name.clone(),
            },
        ));
    }
    let folder = folder_of(file);
    if folder != raw.name {
        return Err(err(
            "name",
            Problem::NameNotFolder {
                name: raw.name,
                folder: folder.to_string(),
            },
        ));
    }
    if raw.description.trim().is_empty() {
        return Err(err(
            "description",
            Problem::Empty {
                what: "one line saying what hardware this board is",
            },
        ));
    }

    let engine = match raw.engine.as_str() {
        "wasmi" => EngineKind::Wasmi,
        "wasmtime" => EngineKind::Wasmtime,
        _ => {
            return Err(err("engine", Problem::UnknownEngine { engine: raw.engine }));
        }
    };
    if raw.targets.is_empty() {
        return Err(err("targets", Problem::NoTargets));
    }
    for (i, target) in raw.targets.iter().enumerate() {
        let key = format!("targets[{i}]");
        if !is_target_triple(target) {
            return Err(err(
                &key,
                Problem::InvalidTarget {
                    target: target.clone(),
                },
            ));
        }
        // A bare-metal triple (`thumbv7em-none-eabihf`) has no OS for Wasmtime.
        if engine == EngineKind::Wasmtime && target.split('-').any(|part| part == "none") {
            return Err(err(
                "engine",
                Problem::EngineNeedsOs {
                    target: target.clone(),
                },
            ));
        }
        if let Some(first) = raw.targets[..i].iter().position(|t| t == target) {
            return Err(err(
                &key,
                Problem::Duplicate {
                    value: target.clone(),
                    first: format!("targets[{first}]"),
                },
            ));
        }
    }

    check_limits(file, &raw.limits)?;
    let (sector_size, slots) = check_flash(file, raw.flash)?;
    let (trust_keys, signatures_required) = check_trust(file, raw.trust)?;
    let offers = check_capabilities(file, raw.capabilities)?;

    Ok(Board {
        file: file.to_string(),
        name: raw.name,
        description: raw.description.trim().to_string(),
        targets: raw.targets,
        engine,
        limits: raw.limits,
        sector_size,
        slots,
        trust_keys,
        signatures_required,
        offers,
    })
}

fn check_limits(file: &str, limits: &Limits) -> Result<(), BoardError> {
    let err = |key: &str, problem| Err(BoardError::new(file, key, problem));
    if limits.fuel_per_call == 0 {
        return err(
            "limits.fuel-per-call",
            Problem::Zero {
                what: "the fuel for one export call",
            },
        );
    }
    if limits.memory_bytes == 0 {
        return err(
            "limits.memory-bytes",
            Problem::Zero {
                what: "the linear-memory limit",
            },
        );
    }
    if !limits.memory_bytes.is_multiple_of(crate::WASM_PAGE) {
        return err(
            "limits.memory-bytes",
            Problem::NotWholePages {
                bytes: limits.memory_bytes,
            },
        );
    }
    if limits.table_elements == 0 {
        return err(
            "limits.table-elements",
            Problem::Zero {
                what: "the table limit",
            },
        );
    }
    if limits.call_depth == 0 {
        return err(
            "limits.call-depth",
            Problem::Zero {
                what: "the call depth",
            },
        );
    }
    Ok(())
}

fn check_flash(file: &str, flash: FlashFile) -> Result<(u32, Vec<Slot>), BoardError> {
    let err = |key: &str, problem| BoardError::new(file, key, problem);
    let sector = flash.sector_size;
    if sector == 0 {
        return Err(err(
            "flash.sector-size",
            Problem::Zero {
                what: "the erase-sector size",
            },
        ));
    }
    if !sector.is_power_of_two() {
        return Err(err(
            "flash.sector-size",
            Problem::SectorNotPowerOfTwo { bytes: sector },
        ));
    }
    if flash.slots.len() < 2 {
        return Err(err(
            "flash.slots",
            Problem::TooFewSlots {
                count: flash.slots.len(),
            },
        ));
    }
    let mut slots: Vec<Slot> = Vec::with_capacity(flash.slots.len());
    for (i, slot) in flash.slots.into_iter().enumerate() {
        let key = |field: &str| format!("flash.slots[{i}].{field}");
        if !is_name(&slot.name) {
            return Err(err(&key("name"), Problem::InvalidName { name: slot.name }));
        }
        if let Some(first) = slots.iter().position(|s| s.name == slot.name) {
            return Err(err(
                &key("name"),
                Problem::Duplicate {
                    value: slot.name,
                    first: format!("flash.slots[{first}].name"),
                },
            ));
        }
        if !slot.offset.is_multiple_of(sector) {
            return Err(err(
                &key("offset"),
                Problem::NotSectorAligned {
                    value: slot.offset,
                    sector_size: sector,
                },
            ));
        }
        if slot.size == 0 {
            return Err(err(
                &key("size"),
                Problem::Zero {
                    what: "a slot's size",
                },
            ));
        }
        if !slot.size.is_multiple_of(sector) {
            return Err(err(
                &key("size"),
                Problem::NotSectorAligned {
                    value: slot.size,
                    sector_size: sector,
                },
            ));
        }
        if slot.offset.checked_add(slot.size).is_none() {
            return Err(err(
                &key("size"),
                Problem::SlotPastEnd {
                    offset: slot.offset,
                    size: slot.size,
                },
            ));
        }
        let (start, end) = (
            u64::from(slot.offset),
            u64::from(slot.offset) + u64::from(slot.size),
        );
        for (j, other) in slots.iter().enumerate() {
            let (o_start, o_end) = (
                u64::from(other.offset),
                u64::from(other.offset) + u64::from(other.size),
            );
            if start < o_end && o_start < end {
                return Err(err(
                    &key("offset"),
                    Problem::SlotsOverlap {
                        other: format!("flash.slots[{j}] (`{}`)", other.name),
                        start: start.max(o_start),
                        end: end.min(o_end),
                    },
                ));
            }
        }
        slots.push(Slot {
            name: slot.name,
            offset: slot.offset,
            size: slot.size,
        });
    }
    Ok((sector, slots))
}

fn check_trust(file: &str, trust: TrustFile) -> Result<(Vec<TrustKey>, u8), BoardError> {
    let err = |key: &str, problem| BoardError::new(file, key, problem);
    if trust.keys.is_empty() {
        return Err(err("trust.keys", Problem::NoKeys));
    }
    let mut keys: Vec<TrustKey> = Vec::with_capacity(trust.keys.len());
    for (i, key_file) in trust.keys.into_iter().enumerate() {
        let key = |field: &str| format!("trust.keys[{i}].{field}");
        if !is_name(&key_file.name) {
            return Err(err(
                &key("name"),
                Problem::InvalidName {
                    name: key_file.name,
                },
            ));
        }
        if let Some(first) = keys.iter().position(|k| k.name == key_file.name) {
            return Err(err(
                &key("name"),
                Problem::Duplicate {
                    value: key_file.name,
                    first: format!("trust.keys[{first}].name"),
                },
            ));
        }
        let hex = key_file.public_key.trim();
        let Some(bytes) = decode_hex32(hex) else {
            return Err(err(
                &key("public-key"),
                Problem::KeyNotHex {
                    len: hex.chars().count(),
                },
            ));
        };
        let Ok(point) = VerifyingKey::from_bytes(&bytes) else {
            return Err(err(&key("public-key"), Problem::KeyNotOnCurve));
        };
        if point.is_weak() {
            return Err(err(&key("public-key"), Problem::WeakKey));
        }
        if let Some(first) = keys.iter().position(|k| k.public_key == bytes) {
            return Err(err(
                &key("public-key"),
                Problem::Duplicate {
                    value: hex.to_ascii_lowercase(),
                    first: format!("trust.keys[{first}] (`{}`)", keys[first].name),
                },
            ));
        }
        keys.push(TrustKey {
            name: key_file.name,
            public_key: bytes,
        });
    }
    let required = trust.signatures_required;
    // A bundle carries at most `MAX_SIGNATURES`, so more could never be met.
    let most = keys.len().min(tern_core::bundle::MAX_SIGNATURES);
    let signatures_required = match u8::try_from(required) {
        Ok(n) if n >= 1 && usize::from(n) <= most => n,
        _ => {
            return Err(err(
                "trust.signatures-required",
                Problem::SignaturesRequired {
                    required,
                    keys: most,
                },
            ));
        }
    };
    Ok((keys, signatures_required))
}

pub(crate) fn check_capabilities(file: &str, caps: CapabilitiesFile) -> Result<Grant, BoardError> {
    let err = |key: &str, problem| BoardError::new(file, key, problem);
    let sensors = match caps.sensors {
        None => None,
        Some(value) => Some(scope(
            file,
            "capabilities.sensors",
            "sensor ids",
            value,
            |key, item| match item {
                toml::Value::String(id) if is_sensor_id(&id) => Ok(id),
                toml::Value::String(id) => Err(err(key, Problem::InvalidSensorId { id })),
                other => Err(err(
                    key,
                    Problem::InvalidSensorId {
                        id: describe(&other),
                    },
                )),
            },
        )?),
    };
    let gpio = match caps.gpio {
        None => None,
        Some(value) => Some(scope(
            file,
            "capabilities.gpio",
            "pin numbers",
            value,
            |key, item| {
                item.as_integer()
                    .and_then(|pin| u32::try_from(pin).ok())
                    .ok_or_else(|| {
                        err(
                            key,
                            Problem::InvalidPin {
                                value: describe(&item),
                            },
                        )
                    })
            },
        )?),
    };
    if caps.kv == Some(0) {
        return Err(err(
            "capabilities.kv",
            Problem::Zero {
                what: "a kv quota (remove the key to offer no kv)",
            },
        ));
    }
    Ok(Grant {
        log: caps.log,
        clock: caps.clock,
        sensors,
        gpio,
        kv: caps.kv,
        publish: caps.publish,
    })
}

/// Reads `"*"` or a non-empty list without repeats, converting each item with `item`.
fn scope<T: PartialEq + ToString>(
    file: &str,
    key: &str,
    items: &'static str,
    value: toml::Value,
    mut item: impl FnMut(&str, toml::Value) -> Result<T, BoardError>,
) -> Result<Scope<T>, BoardError> {
    let list = match value {
        toml::Value::String(s) if s == "*" => return Ok(Scope::Any),
        toml::Value::Array(list) => list,
        other => {
            let found = format!("{} {}", other.type_str(), describe(&other));
            return Err(BoardError::new(
                file,
                key,
                Problem::ExpectedScope { items, found },
            ));
        }
    };
    if list.is_empty() {
        return Err(BoardError::new(file, key, Problem::EmptyScope { items }));
    }
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for (i, value) in list.into_iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let value = item(&item_key, value)?;
        if let Some(first) = out.iter().position(|v| *v == value) {
            return Err(BoardError::new(
                file,
                item_key,
                Problem::Duplicate {
                    value: value.to_string(),
                    first: format!("{key}[{first}]"),
                },
            ));
        }
        out.push(value);
    }
    Ok(Scope::Only(out))
}

/// A TOML value as a person would write it, shortened for messages.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "[...]".to_string(),
        toml::Value::Table(_) => "{...}".to_string(),
    }
}

/// The folder holding `file` (`boards/x/board.toml` → `x`).
fn folder_of(file: &str) -> &str {
    let mut parts = file.rsplit(['/', '\\']);
    parts.next();
    parts.next().unwrap_or("")
}

/// `[a-z][a-z0-9-]*`, not `all`: it becomes a Rust identifier beside `ALL`.
fn is_board_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase()) && is_name(name) && name != "all"
}

/// `[a-z0-9-]+`.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Looks like `arch-vendor-os[-env]`: two to four `-`-separated parts of `[a-z0-9_.]`.
fn is_target_triple(target: &str) -> bool {
    let parts: Vec<&str> = target.split('-').collect();
    (2..=4).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        })
}

/// Non-empty, printable, without spaces or commas (grants separate ids with commas).
fn is_sensor_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_graphic() && c != ',')
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}
