//! Checks a parsed board.toml and turns it into a `Board`, or names the first bad key.

use std::net::{Ipv4Addr, SocketAddrV4};

use ed25519_dalek::VerifyingKey;
use tern_core::Limits;
use tern_core::bundle::EngineKind;
use tern_core::grant::{Grant, Scope};

use crate::error::{BoardError, Problem};
use crate::schema::{
    BoardFile, CapabilitiesFile, FlashFile, MemoryFile, NetworkFile, PeripheralsFile, RegionFile,
    TrustFile,
};

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
    /// `flash.trial-restarts`: restarts during one trial taken as inconclusive.
    pub trial_restarts: u8,
    /// `[download]`: the slowest download the agent keeps reading.
    pub download_floor: tern_core::board::DownloadFloor,
    /// Component slots, in file order.
    pub slots: Vec<Slot>,
    /// Keys whose signatures the board accepts, in file order.
    pub trust_keys: Vec<TrustKey>,
    /// How many distinct trusted keys must have signed a bundle.
    pub signatures_required: u8,
    /// The capabilities the board offers, as the widest grant it allows.
    pub offers: Grant,
    /// Device boards: the memory map the firmware is linked for (`[memory]`). Required
    /// for bare-metal targets.
    pub memory: Option<MemoryMap>,
    /// Device boards: the address of the component flash (`flash.origin`), where the
    /// slots and, after them, the two metadata sectors live. Only with `memory`, and
    /// outside both of its regions.
    pub flash_origin: Option<u32>,
    /// Device boards: how the device reaches `tern serve` (`[network]`).
    pub network: Option<Network>,
    /// Device boards: the sensors and pins the board has (`[peripherals]`). When
    /// present, `offers` lists a subset of them, never `Any`.
    pub peripherals: Option<Peripherals>,
}

/// A checked `[memory]`: where the firmware's code and data live. The regions do not
/// overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// Code and read-only data; origin and size multiples of 4.
    pub flash: Region,
    /// Data, heap and stack; origin and size multiples of 8.
    pub ram: Region,
    /// `memory.engine-heap`: the heap the engine may use besides the component's
    /// linear memory (its code, stores, the module while it loads), bytes; at least
    /// [`crate::firmware::ENGINE_PEAK`], which it is when the file does not say.
    pub engine_heap: u32,
}

/// One checked memory region: non-empty, ending at or below 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub origin: u32,
    /// Length, bytes.
    pub size: u32,
}

impl Region {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        u64::from(self.origin) + u64::from(self.size)
    }
}

/// A checked `[network]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    /// A locally administered unicast MAC address.
    pub mac: [u8; 6],
    /// How the device gets its address.
    pub ipv4: Ipv4Config,
    /// Where the device finds `tern serve`; the port is not 0.
    pub server: SocketAddrV4,
}

/// How a device gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Config {
    /// Address, subnet and gateway from a DHCP server.
    Dhcp,
    /// A fixed address.
    Static {
        /// A host address of its subnet (neither the network nor the broadcast address).
        address: Ipv4Addr,
        /// Subnet prefix length, 1 to 30.
        prefix_len: u8,
        /// The router, a host of the same subnet; `None` reaches only the subnet.
        gateway: Option<Ipv4Addr>,
    },
}

/// A checked `[peripherals]`: valid ids and pins, each listed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peripherals {
    /// Sensor ids, in file order.
    pub sensors: Vec<String>,
    /// Pin numbers, in file order.
    pub gpio: Vec<u32>,
}

impl Board {
    /// Length of the component flash from its origin: the slots, then the two metadata
    /// sectors that `tern_agent`'s `SlotLayout::from_board` puts after the last slot,
    /// rounded up to the sector size.
    pub(crate) fn component_flash_bytes(&self) -> u64 {
        component_flash_bytes(self.sector_size, &self.slots)
    }
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
        if engine == EngineKind::Wasmtime && is_bare_metal(target) {
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
    let (sector_size, slots) = check_flash(file, &raw.flash)?;
    let (trust_keys, signatures_required) = check_trust(file, raw.trust)?;
    let offers = check_capabilities(file, raw.capabilities)?;

    let memory = raw.memory.map(|m| check_memory(file, m)).transpose()?;
    if memory.is_none()
        && let Some(target) = raw.targets.iter().find(|t| is_bare_metal(t))
    {
        return Err(err(
            "memory",
            Problem::NeedsMemoryMap {
                target: target.clone(),
            },
        ));
    }
    let flash_origin = match raw.flash.origin {
        None => None,
        Some(origin) => {
            let Some(memory) = &memory else {
                return Err(err("flash.origin", Problem::FlashOriginNeedsMemory));
            };
            check_flash_origin(file, origin, sector_size, &slots, memory)?;
            Some(origin)
        }
    };
    let network = raw.network.map(|n| check_network(file, n)).transpose()?;
    let peripherals = raw
        .peripherals
        .map(|p| check_peripherals(file, p))
        .transpose()?;
    if let Some(peripherals) = &peripherals {
        check_offers_have_peripherals(file, &offers, peripherals)?;
    }

    let download_floor = check_download(file, raw.download.as_ref())?;
    Ok(Board {
        file: file.to_string(),
        name: raw.name,
        description: raw.description.trim().to_string(),
        targets: raw.targets,
        engine,
        limits: raw.limits,
        sector_size,
        trial_restarts: raw
            .flash
            .trial_restarts
            .unwrap_or(crate::schema::DEFAULT_TRIAL_RESTARTS),
        download_floor,
        slots,
        trust_keys,
        signatures_required,
        offers,
        memory,
        flash_origin,
        network,
        peripherals,
    })
}

/// The longest `download.window` a board may set: an hour.
pub const MAX_DOWNLOAD_WINDOW_S: u32 = 3600;

/// `[download]`: absent, the default floor; `min-rate = 0` turns it off; otherwise
/// the window is 1 s to an hour.
fn check_download(
    file: &str,
    raw: Option<&crate::schema::DownloadFile>,
) -> Result<tern_core::board::DownloadFloor, BoardError> {
    let Some(d) = raw else {
        return Ok(tern_core::board::DownloadFloor::DEFAULT);
    };
    if d.min_rate > 0 && d.window == 0 {
        return Err(BoardError::new(
            file,
            "download.window",
            Problem::Zero {
                what: "the time a download may stay below `download.min-rate` (seconds)",
            },
        ));
    }
    if d.window > MAX_DOWNLOAD_WINDOW_S {
        return Err(BoardError::new(
            file,
            "download.window",
            Problem::TooLarge {
                value: u64::from(d.window),
                max: u64::from(MAX_DOWNLOAD_WINDOW_S),
                what: "seconds a download may stay below `download.min-rate`",
            },
        ));
    }
    Ok(tern_core::board::DownloadFloor {
        min_bytes_per_s: d.min_rate,
        window_s: d.window,
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

fn check_flash(file: &str, flash: &FlashFile) -> Result<(u32, Vec<Slot>), BoardError> {
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
    for (i, slot) in flash.slots.iter().enumerate() {
        let key = |field: &str| format!("flash.slots[{i}].{field}");
        if !is_name(&slot.name) {
            return Err(err(
                &key("name"),
                Problem::InvalidName {
                    name: slot.name.clone(),
                },
            ));
        }
        if let Some(first) = slots.iter().position(|s| s.name == slot.name) {
            return Err(err(
                &key("name"),
                Problem::Duplicate {
                    value: slot.name.clone(),
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
            name: slot.name.clone(),
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
            |key, item| sensor_id(file, key, item),
        )?),
    };
    let gpio = match caps.gpio {
        None => None,
        Some(value) => Some(scope(
            file,
            "capabilities.gpio",
            "pin numbers",
            value,
            |key, item| pin(file, key, item),
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

/// One sensor id of a list at `key`.
fn sensor_id(file: &str, key: &str, item: toml::Value) -> Result<String, BoardError> {
    match item {
        toml::Value::String(id) if is_sensor_id(&id) => Ok(id),
        toml::Value::String(id) => Err(BoardError::new(file, key, Problem::InvalidSensorId { id })),
        other => Err(BoardError::new(
            file,
            key,
            Problem::InvalidSensorId {
                id: describe(&other),
            },
        )),
    }
}

/// One pin number of a list at `key`.
fn pin(file: &str, key: &str, item: toml::Value) -> Result<u32, BoardError> {
    item.as_integer()
        .and_then(|pin| u32::try_from(pin).ok())
        .ok_or_else(|| {
            BoardError::new(
                file,
                key,
                Problem::InvalidPin {
                    value: describe(&item),
                },
            )
        })
}

/// Checks `[memory]`: each region non-empty, aligned as cortex-m-rt's linker script
/// asserts, below 4 GiB, and the two apart.
fn check_memory(file: &str, memory: MemoryFile) -> Result<MemoryMap, BoardError> {
    // cortex-m-rt wants 4-byte region starts, and the stack (which starts at the end of
    // RAM) 8-byte aligned, as the Arm procedure call standard requires.
    let flash = check_region(
        file,
        "memory.flash",
        &memory.flash,
        4,
        "the linker script needs word-aligned code",
    )?;
    let ram = check_region(
        file,
        "memory.ram",
        &memory.ram,
        8,
        "the stack starts at the end of RAM, and Arm's calling convention needs it \
         8-byte aligned",
    )?;
    let shared_start = u64::from(flash.origin.max(ram.origin));
    let shared_end = flash.end().min(ram.end());
    if shared_start < shared_end {
        return Err(BoardError::new(
            file,
            "memory.ram",
            Problem::MemoryOverlap {
                start: shared_start,
                end: shared_end,
            },
        ));
    }
    let engine_heap = memory.engine_heap.unwrap_or(crate::firmware::ENGINE_PEAK);
    if engine_heap < crate::firmware::ENGINE_PEAK {
        return Err(BoardError::new(
            file,
            "memory.engine-heap",
            Problem::EngineHeapTooSmall { bytes: engine_heap },
        ));
    }
    Ok(MemoryMap {
        flash,
        ram,
        engine_heap,
    })
}

fn check_region(
    file: &str,
    key: &str,
    region: &RegionFile,
    align: u32,
    why: &'static str,
) -> Result<Region, BoardError> {
    let err = |field: &str, problem| Err(BoardError::new(file, format!("{key}.{field}"), problem));
    if !region.origin.is_multiple_of(align) {
        return err(
            "origin",
            Problem::NotAligned {
                value: region.origin,
                align,
                why,
            },
        );
    }
    if region.size == 0 {
        return err(
            "size",
            Problem::Zero {
                what: "a memory region's size",
            },
        );
    }
    if !region.size.is_multiple_of(align) {
        return err(
            "size",
            Problem::NotAligned {
                value: region.size,
                align,
                why,
            },
        );
    }
    if region.origin.checked_add(region.size - 1).is_none() {
        return err(
            "size",
            Problem::RegionPastEnd {
                origin: region.origin,
                size: region.size,
            },
        );
    }
    Ok(Region {
        origin: region.origin,
        size: region.size,
    })
}

/// Length of the component flash: up to the end of the last slot, rounded up to a
/// sector, then the two metadata sectors (as `tern_agent`'s `SlotLayout::from_board`
/// places them), so a multiple of the sector size.
pub(crate) fn component_flash_bytes(sector_size: u32, slots: &[Slot]) -> u64 {
    let sector = u64::from(sector_size.max(1));
    let slots_end = slots
        .iter()
        .map(|s| u64::from(s.offset) + u64::from(s.size))
        .max()
        .unwrap_or(0);
    slots_end.div_ceil(sector) * sector + 2 * sector
}

/// Checks `flash.origin`: sector-aligned, below 4 GiB with the whole component flash,
/// and apart from the firmware's code and data.
fn check_flash_origin(
    file: &str,
    origin: u32,
    sector_size: u32,
    slots: &[Slot],
    memory: &MemoryMap,
) -> Result<(), BoardError> {
    let err = |problem| Err(BoardError::new(file, "flash.origin", problem));
    if !origin.is_multiple_of(sector_size) {
        return err(Problem::NotAligned {
            value: origin,
            align: sector_size,
            why: "the component flash's sectors must be the flash part's erase sectors, \
                  so it starts on one (`flash.sector-size`)",
        });
    }
    let bytes = component_flash_bytes(sector_size, slots);
    let start = u64::from(origin);
    let end = start + bytes;
    if end > 1 << 32 {
        return err(Problem::ComponentFlashPastEnd { origin, bytes });
    }
    for (region, r) in [("memory.flash", memory.flash), ("memory.ram", memory.ram)] {
        let (r_start, r_end) = (u64::from(r.origin), r.end());
        if start < r_end && r_start < end {
            return err(Problem::ComponentFlashOverlaps {
                region,
                origin: start,
                area_end: end,
                start: start.max(r_start),
                end: end.min(r_end),
            });
        }
    }
    Ok(())
}

/// Checks `[network]`.
fn check_network(file: &str, network: NetworkFile) -> Result<Network, BoardError> {
    let err = |key: &str, problem| Err(BoardError::new(file, key, problem));
    let Some(mac) = parse_mac(network.mac.trim()) else {
        return err("network.mac", Problem::InvalidMac { value: network.mac });
    };
    // Bit 0 of the first byte marks multicast; bit 1 marks a locally administered
    // address, which is what a board without a vendor-assigned MAC must use.
    if mac[0] & 0b01 != 0 || mac[0] & 0b10 == 0 {
        return err(
            "network.mac",
            Problem::MacNotLocalUnicast {
                value: network.mac,
                first: mac[0],
            },
        );
    }

    let ipv4 = network.ipv4.trim();
    let ipv4 = if ipv4 == "dhcp" {
        if network.gateway.is_some() {
            return err("network.gateway", Problem::GatewayWithDhcp);
        }
        Ipv4Config::Dhcp
    } else {
        let invalid = || {
            BoardError::new(
                file,
                "network.ipv4",
                Problem::InvalidIpv4 {
                    value: network.ipv4.clone(),
                },
            )
        };
        let (address, len) = ipv4.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix_len = match len.parse::<u8>() {
            Ok(n @ 1..=30) => n,
            _ => {
                return err(
                    "network.ipv4",
                    Problem::PrefixLen {
                        len: len.to_string(),
                    },
                );
            }
        };
        let subnet = Subnet::new(address, prefix_len);
        if let Some(kind) = subnet.edge(address) {
            return err(
                "network.ipv4",
                Problem::NotAHostAddress {
                    address,
                    prefix_len,
                    kind,
                },
            );
        }
        let gateway = match &network.gateway {
            None => None,
            Some(text) => {
                let Ok(gateway) = text.trim().parse::<Ipv4Addr>() else {
                    return err(
                        "network.gateway",
                        Problem::InvalidAddress {
                            value: text.clone(),
                        },
                    );
                };
                if !subnet.contains(gateway) || subnet.edge(gateway).is_some() {
                    return err(
                        "network.gateway",
                        Problem::GatewayOutsideSubnet {
                            gateway,
                            address,
                            prefix_len,
                        },
                    );
                }
                Some(gateway)
            }
        };
        Ipv4Config::Static {
            address,
            prefix_len,
            gateway,
        }
    };

    let Ok(server) = network.server.trim().parse::<SocketAddrV4>() else {
        return err(
            "network.server",
            Problem::InvalidServer {
                value: network.server,
            },
        );
    };
    if server.port() == 0 {
        return err("network.server", Problem::ServerPortZero);
    }
    Ok(Network { mac, ipv4, server })
}

/// An IPv4 subnet, `network/len` with `len` in 1..=30.
pub(crate) struct Subnet {
    network: u32,
    mask: u32,
    len: u8,
}

impl Subnet {
    /// The subnet of `address/len`.
    pub(crate) fn new(address: Ipv4Addr, len: u8) -> Subnet {
        let mask = u32::MAX << (32 - u32::from(len));
        Subnet {
            network: u32::from(address) & mask,
            mask,
            len,
        }
    }

    fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask == self.network
    }

    /// `Some("network")` or `Some("broadcast")` for the subnet's two reserved
    /// addresses.
    fn edge(&self, address: Ipv4Addr) -> Option<&'static str> {
        let address = u32::from(address);
        if address == self.network {
            Some("network")
        } else if address == self.network | !self.mask {
            Some("broadcast")
        } else {
            None
        }
    }

    pub(crate) fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    pub(crate) fn last_host(&self) -> Ipv4Addr {
        Ipv4Addr::from((self.network | !self.mask) - 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.len)
    }
}

/// `aa:bb:cc:dd:ee:ff`, hex digits of either case.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Checks `[peripherals]`: valid, unique ids and pins. Empty lists are allowed: a board
/// may have no sensors or no pins.
fn check_peripherals(file: &str, peripherals: PeripheralsFile) -> Result<Peripherals, BoardError> {
    let sensors = unique_list(
        file,
        "peripherals.sensors",
        peripherals.sensors,
        |key, v| sensor_id(file, key, v),
    )?;
    let gpio = unique_list(file, "peripherals.gpio", peripherals.gpio, |key, v| {
        pin(file, key, v)
    })?;
    Ok(Peripherals { sensors, gpio })
}

/// Converts each item of the list at `key`, refusing repeats.
fn unique_list<T: PartialEq + ToString>(
    file: &str,
    key: &str,
    list: Vec<toml::Value>,
    mut item: impl FnMut(&str, toml::Value) -> Result<T, BoardError>,
) -> Result<Vec<T>, BoardError> {
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
    Ok(out)
}

/// On a board with `[peripherals]`, offered sensors and pins are ones it has.
fn check_offers_have_peripherals(
    file: &str,
    offers: &Grant,
    peripherals: &Peripherals,
) -> Result<(), BoardError> {
    let sensors = toml_list(peripherals.sensors.iter().map(|id| format!("\"{id}\"")));
    let gpio = toml_list(peripherals.gpio.iter().map(u32::to_string));
    subset(
        file,
        "sensors",
        offers.sensors.as_ref(),
        &peripherals.sensors,
        &sensors,
    )?;
    subset(file, "gpio", offers.gpio.as_ref(), &peripherals.gpio, &gpio)
}

/// `offered` ⊆ `have`, for `capabilities.<name>` against `peripherals.<name>`.
fn subset<T: PartialEq + ToString>(
    file: &str,
    name: &'static str,
    offered: Option<&Scope<T>>,
    have: &[T],
    listed: &str,
) -> Result<(), BoardError> {
    let key = format!("capabilities.{name}");
    match offered {
        None => Ok(()),
        Some(Scope::Any) => Err(BoardError::new(
            file,
            key,
            Problem::AnyWithPeripherals {
                name,
                listed: listed.to_string(),
            },
        )),
        Some(Scope::Only(items)) => match items.iter().position(|item| !have.contains(item)) {
            None => Ok(()),
            Some(i) => Err(BoardError::new(
                file,
                format!("{key}[{i}]"),
                Problem::NotAPeripheral {
                    value: items[i].to_string(),
                    listed: format!("peripherals.{name} = {listed}"),
                },
            )),
        },
    }
}

/// `[a, b]` as TOML writes a list.
fn toml_list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// Reads `"*"` or a non-empty list without repeats, converting each item with `item`.
fn scope<T: PartialEq + ToString>(
    file: &str,
    key: &str,
    items: &'static str,
    value: toml::Value,
    item: impl FnMut(&str, toml::Value) -> Result<T, BoardError>,
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
    unique_list(file, key, list, item).map(Scope::Only)
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

/// A target without an operating system (`thumbv7em-none-eabihf`): its firmware is
/// linked for a memory map, and Wasmtime cannot run on it.
fn is_bare_metal(target: &str) -> bool {
    target.split('-').any(|part| part == "none")
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
