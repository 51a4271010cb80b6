//! The one error type of board checking: which file, which key, what is wrong and how to fix it.

use std::fmt;

use crate::check::Subnet;

/// The capabilities a board can offer, in WIT order (for messages).
pub(crate) const CAPABILITIES: &str = "log, clock, sensors, gpio, kv, publish";

/// A board.toml that cannot become a board table.
///
/// Its message reads `<file>[:<line>]: <key>: <problem>; <fix>`, for example
/// `boards/x/board.toml: limits.memory-bytes: 100000 is not a multiple of the
/// 65536-byte wasm page; use 65536 (1 page) or 131072 (2 pages)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardError {
    /// The file, as the user names it (`boards/x/board.toml`).
    pub file: String,
    /// The line, when the TOML parser knows it.
    pub line: Option<usize>,
    /// The dotted key (`limits.memory-bytes`, `flash.slots[1].offset`); empty for
    /// errors about the whole file.
    pub key: String,
    /// What is wrong.
    pub problem: Problem,
}

impl BoardError {
    pub(crate) fn new(file: &str, key: impl Into<String>, problem: Problem) -> BoardError {
        BoardError {
            file: file.to_string(),
            line: None,
            key: key.into(),
            problem,
        }
    }
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for BoardError {}

/// What is wrong with one key. Each variant's message ends with the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file or folder cannot be read.
    Read {
        /// The operating system's reason.
        reason: String,
    },
    /// A boards folder holds no `*/board.toml`.
    NoBoards,
    /// Not valid TOML, or a value of the wrong type.
    Syntax {
        /// The parser's message.
        reason: String,
    },
    /// A key the schema does not have.
    UnknownKey {
        /// The key as written.
        name: String,
        /// The keys allowed here, as serde lists them.
        expected: String,
    },
    /// A capability the board cannot offer.
    UnknownCapability {
        /// The name as written.
        name: String,
    },
    /// A required key is absent.
    MissingKey {
        /// The missing key.
        name: String,
    },
    /// A board name outside `[a-z][a-z0-9-]*`, or the reserved `all`.
    InvalidBoardName {
        /// The name as written.
        name: String,
    },
    /// The board name differs from its folder.
    NameNotFolder {
        /// The name in the file.
        name: String,
        /// The folder the file is in.
        folder: String,
    },
    /// An empty string where text is needed.
    Empty {
        /// What the text should say.
        what: &'static str,
    },
    /// No Rust target listed.
    NoTargets,
    /// A target that is not a Rust target triple.
    InvalidTarget {
        /// The target as written.
        target: String,
    },
    /// An engine other than `wasmi` or `wasmtime`.
    UnknownEngine {
        /// The engine as written.
        engine: String,
    },
    /// Wasmtime on a target without an operating system.
    EngineNeedsOs {
        /// The bare-metal target.
        target: String,
    },
    /// Zero where only a positive number makes sense.
    Zero {
        /// What the number is.
        what: &'static str,
    },
    /// A number is past its upper bound.
    TooLarge {
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u64,
        /// What the number is.
        what: &'static str,
    },
    /// A memory size that is not whole wasm pages.
    NotWholePages {
        /// The size as written.
        bytes: u32,
    },
    /// A sector size that is not a power of two.
    SectorNotPowerOfTwo {
        /// The size as written.
        bytes: u32,
    },
    /// Fewer than two slots: no A/B update is possible.
    TooFewSlots {
        /// How many there are.
        count: usize,
    },
    /// A slot or key name outside `[a-z0-9-]+`.
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// Two slots, keys or scope items with the same name or value.
    Duplicate {
        /// The repeated value.
        value: String,
        /// The key of the first occurrence.
        first: String,
    },
    /// A slot offset or size that does not fall on an erase-sector boundary.
    NotSectorAligned {
        /// The value as written.
        value: u32,
        /// The board's sector size.
        sector_size: u32,
    },
    /// A slot that runs past the end of the 32-bit address space.
    SlotPastEnd {
        /// Offset of the slot.
        offset: u32,
        /// Size of the slot.
        size: u32,
    },
    /// Two slots that share bytes.
    SlotsOverlap {
        /// The other slot's key.
        other: String,
        /// First shared byte.
        start: u64,
        /// One past the last shared byte.
        end: u64,
    },
    /// No trusted key: the board could never install a bundle.
    NoKeys,
    /// A public key that is not 64 hex characters.
    KeyNotHex {
        /// How many characters there are.
        len: usize,
    },
    /// 32 bytes that are not an Ed25519 point.
    KeyNotOnCurve,
    /// A small-order Ed25519 point, which verifies forged signatures.
    WeakKey,
    /// A signature count outside `1..=keys`.
    SignaturesRequired {
        /// The count as written.
        required: i64,
        /// How many keys the board trusts.
        keys: usize,
    },
    /// A scope that is neither `"*"` nor a list.
    ExpectedScope {
        /// What the list holds (`sensor ids`, `pin numbers`).
        items: &'static str,
        /// The TOML type found instead.
        found: String,
    },
    /// An empty scope list.
    EmptyScope {
        /// What the list holds.
        items: &'static str,
    },
    /// A sensor id that cannot be written in a grant.
    InvalidSensorId {
        /// The id as written.
        id: String,
    },
    /// A pin that is not a non-negative 32-bit integer.
    InvalidPin {
        /// The value as written.
        value: String,
    },
    /// A bare-metal board without `[memory]`: its firmware cannot be linked.
    NeedsMemoryMap {
        /// The bare-metal target.
        target: String,
    },
    /// A memory region that runs past the end of the 32-bit address space.
    RegionPastEnd {
        /// Start of the region.
        origin: u32,
        /// Size of the region.
        size: u32,
    },
    /// An address or size that is not a multiple of what the hardware needs.
    NotAligned {
        /// The value as written.
        value: u32,
        /// The alignment, bytes.
        align: u32,
        /// Why this alignment, for the message.
        why: &'static str,
    },
    /// `memory.engine-heap` below the measured peak of one component.
    EngineHeapTooSmall {
        /// The value as written.
        bytes: u32,
    },
    /// `memory.ram` shares bytes with `memory.flash`.
    MemoryOverlap {
        /// First shared byte.
        start: u64,
        /// One past the last shared byte.
        end: u64,
    },
    /// `flash.origin` on a board without `[memory]`.
    FlashOriginNeedsMemory,
    /// The component flash runs past the end of the 32-bit address space.
    ComponentFlashPastEnd {
        /// `flash.origin`.
        origin: u32,
        /// Length of the component flash (slots and metadata), bytes.
        bytes: u64,
    },
    /// The component flash shares bytes with the firmware's code or data.
    ComponentFlashOverlaps {
        /// `memory.flash` or `memory.ram`.
        region: &'static str,
        /// The component flash: first byte.
        origin: u64,
        /// The component flash: one past the last byte.
        area_end: u64,
        /// First shared byte.
        start: u64,
        /// One past the last shared byte.
        end: u64,
    },
    /// A MAC address that is not six `:`-separated hex bytes.
    InvalidMac {
        /// The value as written.
        value: String,
    },
    /// A multicast or globally administered (vendor) MAC address.
    MacNotLocalUnicast {
        /// The value as written.
        value: String,
        /// Its first byte.
        first: u8,
    },
    /// `network.ipv4` that is neither `dhcp` nor `a.b.c.d/len`.
    InvalidIpv4 {
        /// The value as written.
        value: String,
    },
    /// A prefix length outside `1..=30`.
    PrefixLen {
        /// The length as written.
        len: String,
    },
    /// A static address that is its subnet's network or broadcast address.
    NotAHostAddress {
        /// The address.
        address: std::net::Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// `network` or `broadcast`.
        kind: &'static str,
    },
    /// Text that is not an IPv4 address.
    InvalidAddress {
        /// The value as written.
        value: String,
    },
    /// `network.gateway` with `ipv4 = "dhcp"`.
    GatewayWithDhcp,
    /// A gateway that is not a host of the static address's subnet.
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: std::net::Ipv4Addr,
        /// The device's static address.
        address: std::net::Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
    },
    /// `network.server` that is not `a.b.c.d:port`.
    InvalidServer {
        /// The value as written.
        value: String,
    },
    /// `network.server` with port 0.
    ServerPortZero,
    /// `"*"` offered on a board whose `[peripherals]` lists what it has.
    AnyWithPeripherals {
        /// `sensors` or `gpio`.
        name: &'static str,
        /// The peripherals list, as TOML (`["temp-0", "temp-1"]`).
        listed: String,
    },
    /// An offered sensor or pin the board's `[peripherals]` does not list.
    NotAPeripheral {
        /// The value as written.
        value: String,
        /// The peripherals key and its list, as TOML (`peripherals.gpio = [4, 5]`).
        listed: String,
    },
    /// A key that device firmware needs, absent from a board.
    DeviceKeyMissing {
        /// What the firmware uses it for.
        for_what: &'static str,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Read { reason } => {
                write!(
                    f,
                    "cannot read: {reason}; check the path and its permissions"
                )
            }
            Problem::NoBoards => f.write_str(
                "no `<board>/board.toml` found; add one (see boards/README.md for the keys)",
            ),
            Problem::Syntax { reason } => write!(
                f,
                "{reason}; see boards/README.md for every key and its type"
            ),
            Problem::UnknownKey { name, expected } => write!(
                f,
                "unknown key `{name}`; expected {expected} (check the spelling, or remove it)"
            ),
            Problem::UnknownCapability { name } => write!(
                f,
                "unknown capability `{name}`; a board can offer only {CAPABILITIES} \
                 (check the spelling, or remove it)"
            ),
            Problem::MissingKey { name } => write!(
                f,
                "required key `{name}` is missing; add it (see boards/README.md for its meaning)"
            ),
            Problem::InvalidBoardName { name } => write!(
                f,
                "`{name}` is not a valid board name; use lowercase letters, digits and `-`, \
                 starting with a letter (it becomes a Rust identifier; `all` is reserved)"
            ),
            Problem::NameNotFolder { name, folder } => write!(
                f,
                "`{name}` differs from its folder `{folder}`; set `name = \"{folder}\"` or \
                 rename the folder to `{name}`"
            ),
            Problem::Empty { what } => write!(f, "is empty; write {what}"),
            Problem::NoTargets => f.write_str(
                "lists no Rust target; add the target triple the board's firmware is built \
                 for, e.g. `targets = [\"thumbv7em-none-eabihf\"]`",
            ),
            Problem::InvalidTarget { target } => write!(
                f,
                "`{target}` is not a Rust target triple; write one as `rustc --print \
                 target-list` spells it, e.g. `x86_64-unknown-linux-gnu`"
            ),
            Problem::UnknownEngine { engine } => write!(
                f,
                "unknown engine `{engine}`; use `wasmi` (devices without an OS) or \
                 `wasmtime` (Linux hosts)"
            ),
            Problem::EngineNeedsOs { target } => write!(
                f,
                "wasmtime needs an operating system, and `{target}` has none; use \
                 `engine = \"wasmi\"` for this board"
            ),
            Problem::Zero { what } => write!(f, "is 0; {what} must be greater than 0"),
            Problem::TooLarge { value, max, what } => {
                write!(f, "is {value}; {what} may be at most {max}")
            }
            Problem::NotWholePages { bytes } => {
                let page = crate::WASM_PAGE;
                let pages = |n: u32| {
                    if n == 1 {
                        "1 page".to_string()
                    } else {
                        format!("{n} pages")
                    }
                };
                let below = bytes / page;
                let above = below.saturating_add(1);
                write!(
                    f,
                    "{bytes} is not a multiple of the {page}-byte wasm page; use "
                )?;
                if below > 0 {
                    write!(f, "{} ({}) or ", below * page, pages(below))?;
                }
                write!(f, "{} ({})", above.saturating_mul(page), pages(above))
            }
            Problem::SectorNotPowerOfTwo { bytes } => write!(
                f,
                "{bytes} is not a power of two; use the erase-sector size from the flash \
                 part's data sheet (e.g. 4096)"
            ),
            Problem::TooFewSlots { count } => write!(
                f,
                "has {count} slot(s); add at least two (`a` and `b`) so an update never \
                 overwrites the running component"
            ),
            Problem::InvalidName { name } => write!(
                f,
                "`{name}` is not a valid name; use lowercase letters, digits and `-`"
            ),
            Problem::Duplicate { value, first } => {
                write!(f, "`{value}` repeats {first}; remove one of them")
            }
            Problem::NotSectorAligned { value, sector_size } => {
                let below = value / sector_size * sector_size;
                write!(
                    f,
                    "{value} is not a multiple of the sector size {sector_size}; use {below} \
                     or {} so that erasing one slot never erases another",
                    below.saturating_add(*sector_size)
                )
            }
            Problem::SlotPastEnd { offset, size } => write!(
                f,
                "offset {offset} + size {size} runs past 4 GiB; make the slot smaller or \
                 move it down"
            ),
            Problem::SlotsOverlap { other, start, end } => write!(
                f,
                "overlaps {other} at bytes {start}..{end}; move this slot to start at or \
                 after {end}"
            ),
            Problem::NoKeys => f.write_str(
                "trusts no key, so no bundle could ever be installed; add \
                 `{ name = \"...\", public-key = \"<64 hex chars>\" }` (see boards/README.md)",
            ),
            Problem::KeyNotHex { len } => write!(
                f,
                "expected 64 hex characters (a 32-byte Ed25519 public key), found {len} \
                 characters or a non-hex character; paste the contents of the `.pub` file \
                 that `tern keygen` wrote"
            ),
            Problem::KeyNotOnCurve => f.write_str(
                "is not a valid Ed25519 public key (not a curve point); paste the contents \
                 of the `.pub` file that `tern keygen` wrote, not the `.key` file",
            ),
            Problem::WeakKey => f.write_str(
                "is a small-order Ed25519 point, which accepts forged signatures; generate a \
                 real key with `tern keygen`",
            ),
            Problem::SignaturesRequired { required, keys } => write!(
                f,
                "{required} is outside 1..={keys}; require at least one signature, and no more \
                 than the number of trusted keys (a bundle carries at most {})",
                tern_core::bundle::MAX_SIGNATURES
            ),
            Problem::ExpectedScope { items, found } => write!(
                f,
                "expected \"*\" (any) or a list of {items}, found {found}; write e.g. \
                 `\"*\"` or `[...]`, or remove the key to offer none"
            ),
            Problem::EmptyScope { items } => write!(
                f,
                "an empty list offers no {items}; list some, write \"*\" for any, or remove \
                 the key"
            ),
            Problem::InvalidSensorId { id } => write!(
                f,
                "`{id}` is not a valid sensor id; use a non-empty id without spaces or commas \
                 (grants list ids separated by commas)"
            ),
            Problem::InvalidPin { value } => write!(
                f,
                "`{value}` is not a pin number; use an integer from 0 to {}",
                u32::MAX
            ),
            Problem::NeedsMemoryMap { target } => write!(
                f,
                "is missing, and `{target}` firmware is linked for a memory map; add \
                 `[memory]` with the chip's `flash` and `ram` regions from its data sheet \
                 (see boards/README.md)"
            ),
            Problem::RegionPastEnd { origin, size } => write!(
                f,
                "origin {origin:#x} + size {size:#x} runs past 4 GiB; make the region smaller \
                 or move it down"
            ),
            Problem::NotAligned { value, align, why } => {
                let below = value / align * align;
                write!(
                    f,
                    "{value:#x} is not a multiple of {align}; use {below:#x} or {:#x} ({why})",
                    below.saturating_add(*align)
                )
            }
            Problem::EngineHeapTooSmall { bytes } => write!(
                f,
                "{bytes} bytes is less than one component needs: the engine's measured \
                 peak is {} bytes (tern_board::firmware::ENGINE_PEAK); give at least \
                 that, or leave the key out",
                crate::firmware::ENGINE_PEAK
            ),
            Problem::MemoryOverlap { start, end } => write!(
                f,
                "overlaps memory.flash at {start:#x}..{end:#x}; code and data need their own \
                 memory: move or shrink `ram` or `flash` so that they share no bytes"
            ),
            Problem::FlashOriginNeedsMemory => f.write_str(
                "needs `[memory]`, to check that the component flash does not overlap the \
                 firmware's code or data; add `[memory]` with `flash` and `ram` regions \
                 (see boards/README.md), or remove `origin`",
            ),
            Problem::ComponentFlashPastEnd { origin, bytes } => write!(
                f,
                "the component flash (slots plus two metadata sectors, {bytes} bytes) from \
                 {origin:#x} runs past 4 GiB; move `origin` down or make the slots smaller"
            ),
            Problem::ComponentFlashOverlaps {
                region,
                origin,
                area_end,
                start,
                end,
            } => write!(
                f,
                "the component flash {origin:#x}..{area_end:#x} (slots plus two metadata \
                 sectors) overlaps {region} at {start:#x}..{end:#x}; move `origin` outside \
                 {region}, or shrink {region} so it ends at or before {origin:#x}"
            ),
            Problem::InvalidMac { value } => write!(
                f,
                "`{value}` is not a MAC address; write six two-digit hex bytes separated by \
                 `:`, e.g. \"02:00:00:00:00:01\""
            ),
            Problem::MacNotLocalUnicast { value, first } => {
                let what = if first & 1 != 0 {
                    "a multicast address (bit 0 of the first byte is set)"
                } else {
                    "a vendor-assigned address (bit 1 of the first byte, \"locally \
                     administered\", is clear)"
                };
                write!(
                    f,
                    "`{value}` is {what}; use a locally administered unicast address, whose \
                     first byte has bit 1 set and bit 0 clear, e.g. {:02x}:..",
                    (first | 0b10) & !0b01
                )
            }
            Problem::InvalidIpv4 { value } => write!(
                f,
                "`{value}` is neither \"dhcp\" nor an address with a prefix length; write \
                 \"dhcp\", or e.g. \"192.168.1.20/24\" for a static address in \
                 255.255.255.0"
            ),
            Problem::PrefixLen { len } => write!(
                f,
                "prefix length /{len} is outside 1..=30; use the subnet's prefix length, e.g. \
                 /24 for 255.255.255.0 (/31 and /32 leave no room for a gateway)"
            ),
            Problem::NotAHostAddress {
                address,
                prefix_len,
                kind,
            } => {
                let subnet = Subnet::new(*address, *prefix_len);
                write!(
                    f,
                    "{address} is the {kind} address of {subnet}, not a host's; use an address \
                     from {} to {}",
                    subnet.first_host(),
                    subnet.last_host()
                )
            }
            Problem::InvalidAddress { value } => write!(
                f,
                "`{value}` is not an IPv4 address; write four numbers from 0 to 255 \
                 separated by `.`, e.g. \"192.168.1.1\""
            ),
            Problem::GatewayWithDhcp => f.write_str(
                "is set, but `ipv4 = \"dhcp\"` takes the gateway from the DHCP server; remove \
                 `gateway`, or give `ipv4` a static address such as \"192.168.1.20/24\"",
            ),
            Problem::GatewayOutsideSubnet {
                gateway,
                address,
                prefix_len,
            } => {
                let subnet = Subnet::new(*address, *prefix_len);
                write!(
                    f,
                    "{gateway} is not a host of {subnet} (from `ipv4`), so the device cannot \
                     reach it; use the router's address, from {} to {}, or fix the prefix \
                     length in `ipv4`",
                    subnet.first_host(),
                    subnet.last_host()
                )
            }
            Problem::InvalidServer { value } => write!(
                f,
                "`{value}` is not `address:port`; write the IPv4 address and port where \
                 `tern serve` listens, e.g. \"192.168.1.10:8080\" (the device has no DNS)"
            ),
            Problem::ServerPortZero => f.write_str(
                "has port 0; use the port `tern serve` listens on, e.g. \"192.168.1.10:8080\"",
            ),
            Problem::AnyWithPeripherals { name, listed } => write!(
                f,
                "\"*\" would offer {name} this board does not have; `[peripherals]` lists \
                 what it has, so list the ones to offer, e.g. `{name} = {listed}`"
            ),
            Problem::NotAPeripheral { value, listed } => write!(
                f,
                "`{value}` is not one of the board's `{listed}`; add it there if the board \
                 has it, or remove it here"
            ),
            Problem::DeviceKeyMissing { for_what } => write!(
                f,
                "is missing, and device firmware needs it for {for_what}; add it (see \
                 boards/README.md for its meaning)"
            ),
        }
    }
}
