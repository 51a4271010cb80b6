//! Test fixtures shared by the unit tests and `tests/power_fail.rs`: a board table
//! that trusts a fixed test key, and signed bundles made with it.
//!
//! Uses only `tern_core`, `ed25519_dalek` and `alloc`, so the integration tests can
//! include this file with `#[path]` as well.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::{Signer, SigningKey};
use tern_core::board::{BoardFields, BoardTable, Offer, Slot, StaticScope, TrustKey};
use tern_core::bundle::{self, EngineKind, Manifest, SignatureRecord, Target, Version};
use tern_core::{Grant, Limits};

/// The name of the test board.
pub const BOARD: &str = "test-board";

/// The key the test board trusts.
pub fn trusted_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A key the test board does not trust.
pub fn untrusted_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// A board with two slots of `slot_size` bytes, sectors of `sector_size`, trusting
/// [`trusted_key`], offering log, clock, any sensor and 4 KiB of kv.
pub fn board(sector_size: u32, slot_size: u32) -> &'static BoardTable {
    Box::leak(Box::new(BoardTable::new(fields(sector_size, slot_size))))
}

/// [`board`]'s fields. Test fixtures are the one place besides tern-board's generated
/// code that makes a table (`BoardTable::new`).
pub fn fields(sector_size: u32, slot_size: u32) -> BoardFields {
    let slots: &'static [Slot] = Box::leak(Box::new([
        Slot {
            name: "a",
            offset: 0,
            size: slot_size,
        },
        Slot {
            name: "b",
            offset: slot_size,
            size: slot_size,
        },
    ]));
    let trust_keys: &'static [TrustKey] = Box::leak(Box::new([TrustKey {
        name: "test-key",
        public_key: trusted_key().verifying_key().to_bytes(),
    }]));
    BoardFields {
        name: BOARD,
        engine: EngineKind::Wasmi,
        limits: Limits::HOST,
        sector_size,
        trial_restarts: 0,
        download_floor: tern_core::board::DownloadFloor::DEFAULT,
        slots,
        trust_keys,
        signatures_required: 1,
        offers: Offer {
            log: true,
            clock: true,
            sensors: Some(StaticScope::Any),
            gpio: None,
            kv: Some(4096),
            publish: None,
        },
    }
}

/// [`board`] that takes `restarts` restarts during a trial as inconclusive.
pub fn board_restarting(sector_size: u32, slot_size: u32, restarts: u8) -> &'static BoardTable {
    Box::leak(Box::new(BoardTable::new(BoardFields {
        trial_restarts: restarts,
        download_floor: tern_core::board::DownloadFloor::DEFAULT,
        ..fields(sector_size, slot_size)
    })))
}

/// What a test bundle looks like.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Component name.
    pub name: String,
    /// Security counter; the version is `1.0.<counter>`.
    pub counter: u64,
    /// The payload.
    pub payload: Vec<u8>,
    /// Targets.
    pub targets: Vec<Target>,
    /// Requested capabilities.
    pub grant: Grant,
    /// Signing keys.
    pub keys: Vec<SigningKey>,
}

impl Spec {
    /// A bundle for the test board with a `len`-byte pseudo-random payload.
    pub fn new(counter: u64, len: usize) -> Spec {
        let mut payload = vec![0u8; len];
        let mut x = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for b in payload.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if len >= 4 {
            payload[..4].copy_from_slice(b"\0asm");
        }
        Spec {
            name: String::from("sensor-filter"),
            counter,
            payload,
            targets: vec![Target::Board(String::from(BOARD))],
            grant: Grant {
                log: true,
                ..Grant::default()
            },
            keys: vec![trusted_key()],
        }
    }

    /// The manifest this spec signs.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            name: self.name.clone(),
            version: Version {
                major: 1,
                minor: 0,
                patch: self.counter as u32,
            },
            security_counter: self.counter,
            targets: self.targets.clone(),
            capabilities: self.grant.clone(),
            payload_len: self.payload.len() as u32,
            payload_sha256: bundle::sha256(&self.payload),
            wit: String::from(tern_core::wit::WIT_PACKAGE),
        }
    }

    /// The signed bundle bytes.
    pub fn build(&self) -> Vec<u8> {
        let keys = &self.keys;
        bundle::encode(&self.manifest(), &self.payload, |msg| {
            keys.iter()
                .map(|k| SignatureRecord {
                    key_id: bundle::key_id(&k.verifying_key().to_bytes()),
                    signature: k.sign(msg).to_bytes(),
                })
                .collect()
        })
        .unwrap_or_default()
    }
}
