//! The static board table: what `build.rs` generates from `boards/<name>/board.toml`.
//!
//! Everything a board trusts and offers is in a `static BoardTable` compiled into its
//! firmware or host binary; nothing grants a capability at run time.

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::bundle::{EngineKind, KeyId, key_id};
use crate::grant::{Grant, Scope};
use crate::limits::Limits;

/// A scope in a static table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticScope<T: 'static> {
    /// Any item.
    Any,
    /// Only these items.
    Only(&'static [T]),
}

/// The capabilities a board offers, with scopes: the most any grant on it can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// `log`.
    pub log: bool,
    /// `clock`.
    pub clock: bool,
    /// `sensors`, with the sensor ids.
    pub sensors: Option<StaticScope<&'static str>>,
    /// `gpio`, with the pins.
    pub gpio: Option<StaticScope<u32>>,
    /// `kv`, with the largest quota in bytes.
    pub kv: Option<u32>,
    /// `publish`, with the topic prefix every granted prefix must extend.
    pub publish: Option<&'static str>,
}

impl Offer {
    /// Everything the board offers, as a grant (what a bare, unsigned development run
    /// on this board gets).
    pub fn to_grant(&self) -> Grant {
        Grant {
            log: self.log,
            clock: self.clock,
            sensors: self.sensors.map(|s| match s {
                StaticScope::Any => Scope::Any,
                StaticScope::Only(ids) => Scope::Only(ids.iter().map(|s| s.to_string()).collect()),
            }),
            gpio: self.gpio.map(|s| match s {
                StaticScope::Any => Scope::Any,
                StaticScope::Only(pins) => Scope::Only(pins.to_vec()),
            }),
            kv: self.kv,
            publish: self.publish.map(|p| p.to_string()),
        }
    }
}

/// One trusted signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustKey {
    /// A name for people (`tern-dev-2026`).
    pub name: &'static str,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
}

impl TrustKey {
    /// The key's id, as bundles name it.
    pub fn id(&self) -> KeyId {
        key_id(&self.public_key)
    }
}

/// A flash slot for a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Slot name (`a`, `b`).
    pub name: &'static str,
    /// Offset in the board's component flash, bytes.
    pub offset: u32,
    /// Size, bytes.
    pub size: u32,
}

/// A board's compiled-in description.
///
/// Its fields are private: a table is made once, by the code `tern-board` generates
/// from the board's board.toml, and read through the getters below; nothing can
/// change what a board trusts, offers or limits at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardTable {
    name: &'static str,
    engine: EngineKind,
    limits: Limits,
    sector_size: u32,
    trial_restarts: u8,
    download_floor: DownloadFloor,
    slots: &'static [Slot],
    trust_keys: &'static [TrustKey],
    signatures_required: u8,
    offers: Offer,
}

/// The slowest bundle download a board keeps reading (board.toml `[download]`):
/// once `window_s` seconds of a download have brought fewer than `min_bytes_per_s`
/// bytes a second, the agent drops the connection and resumes later with a `Range`.
/// A server (or a man in the middle) that trickles bytes just fast enough to beat
/// the silence limit cannot hold the update channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadFloor {
    /// Bytes a second; 0 turns the floor off.
    pub min_bytes_per_s: u32,
    /// How long a download may stay below the floor, seconds (at least 1).
    pub window_s: u32,
}

impl DownloadFloor {
    /// A board.toml without `[download]`: 128 bytes a second over 30 seconds (a
    /// 64 KiB bundle at the floor takes under 9 minutes; the QEMU boards download at
    /// tens of KiB a second).
    pub const DEFAULT: DownloadFloor = DownloadFloor {
        min_bytes_per_s: 128,
        window_s: 30,
    };
}

/// Every field of a [`BoardTable`], by name, for [`BoardTable::new`].
///
/// Only for the code `tern-board` generates from a board.toml (and for test fixtures
/// and the `tern verify --trust` what-if copy, which say so where they use it): a
/// board is data, and its table comes from its board.toml.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardFields {
    /// Board name (`qemu-mps2-an386`).
    pub name: &'static str,
    /// Engine the board runs.
    pub engine: EngineKind,
    /// Limits for every instance.
    pub limits: Limits,
    /// Erase-sector size of the component flash, bytes.
    pub sector_size: u32,
    /// Restarts during one trial taken as inconclusive.
    pub trial_restarts: u8,
    /// The slowest download the agent keeps reading.
    pub download_floor: DownloadFloor,
    /// Component slots (A/B).
    pub slots: &'static [Slot],
    /// Keys whose signatures the board accepts.
    pub trust_keys: &'static [TrustKey],
    /// How many distinct trusted keys must have signed a bundle.
    pub signatures_required: u8,
    /// Capabilities offered to components.
    pub offers: Offer,
}

impl BoardTable {
    /// The table with these fields.
    ///
    /// Only for the code `tern-board` generates from a board.toml (`static <BOARD>:
    /// BoardTable = BoardTable::new(BoardFields { .. })`), checked before it is
    /// generated. Test fixtures and the `tern verify --trust` what-if copy are the
    /// only other callers, and say so; nothing else makes a board table.
    #[doc(hidden)]
    pub const fn new(fields: BoardFields) -> BoardTable {
        let BoardFields {
            name,
            engine,
            limits,
            sector_size,
            trial_restarts,
            download_floor,
            slots,
            trust_keys,
            signatures_required,
            offers,
        } = fields;
        BoardTable {
            name,
            engine,
            limits,
            sector_size,
            trial_restarts,
            download_floor,
            slots,
            trust_keys,
            signatures_required,
            offers,
        }
    }

    /// Board name (`qemu-mps2-an386`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Engine the board runs.
    pub const fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Limits for every instance.
    pub const fn limits(&self) -> Limits {
        self.limits
    }

    /// Erase-sector size of the component flash, bytes.
    pub const fn sector_size(&self) -> u32 {
        self.sector_size
    }

    /// Restarts during one trial that are taken as inconclusive (the trial runs
    /// again) before the bundle is rolled back (board.toml `flash.trial-restarts`).
    pub const fn trial_restarts(&self) -> u8 {
        self.trial_restarts
    }

    /// The slowest download the agent keeps reading (board.toml `[download]`).
    pub const fn download_floor(&self) -> DownloadFloor {
        self.download_floor
    }

    /// Component slots (A/B).
    pub const fn slots(&self) -> &'static [Slot] {
        self.slots
    }

    /// Keys whose signatures the board accepts.
    pub const fn trust_keys(&self) -> &'static [TrustKey] {
        self.trust_keys
    }

    /// How many distinct trusted keys must have signed a bundle.
    pub const fn signatures_required(&self) -> u8 {
        self.signatures_required
    }

    /// Capabilities offered to components.
    pub const fn offers(&self) -> &Offer {
        &self.offers
    }

    /// The largest payload a slot holds.
    pub fn slot_size(&self) -> u32 {
        self.slots.iter().map(|s| s.size).min().unwrap_or(0)
    }

    /// The trusted key with this id.
    pub fn trust_key(&self, id: &KeyId) -> Option<&TrustKey> {
        self.trust_keys.iter().find(|k| &k.id() == id)
    }

    /// Names of the trusted keys.
    pub fn trust_key_names(&self) -> Vec<&'static str> {
        self.trust_keys.iter().map(|k| k.name).collect()
    }
}
