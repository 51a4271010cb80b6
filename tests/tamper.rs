//! Tamper tests: every way a bundle can be forged, damaged or misdirected is refused
//! with its own reason, and nothing is accepted that should not be.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use ed25519_dalek::SigningKey;
use tern_core::board::{BoardFields, BoardTable, Offer, StaticScope, TrustKey};
use tern_core::bundle::{self, BundleError, Target, Version};
use tern_core::policy::{Rejection, check_install};
use tern_core::{Grant, Granted, Interface};
use tern_host::keys::KeyFile;
use tern_tests::{root, wasm};

fn key(name: &str) -> KeyFile {
    KeyFile::read(&root().join("boards/keys").join(format!("{name}.key"))).unwrap()
}

fn dev() -> KeyFile {
    key("tern-dev-2026")
}

fn ops() -> KeyFile {
    key("tern-dev-ops-2026")
}

fn qemu() -> &'static BoardTable {
    tern_host::boards::by_name("qemu-mps2-an386").expect("the qemu board is compiled in")
}

fn smoother_grant() -> Grant {
    Grant::parse(["log", "sensors=temp-0", "kv=4096"]).unwrap()
}

struct Spec {
    payload: Vec<u8>,
    counter: u64,
    targets: Vec<Target>,
    grant: Grant,
    keys: Vec<KeyFile>,
}

impl Spec {
    fn new() -> Spec {
        Spec {
            payload: wasm("smoother"),
            counter: 5,
            targets: vec![Target::Board("qemu-mps2-an386".into())],
            grant: smoother_grant(),
            keys: vec![dev()],
        }
    }

    fn build(self) -> Vec<u8> {
        tern_host::sign::build(
            &self.payload,
            "smoother",
            Version {
                major: 1,
                minor: 2,
                patch: 3,
            },
            self.counter,
            self.targets,
            self.grant,
            &self.keys,
        )
        .unwrap()
    }
}

/// What a board decides about bundle bytes: the same steps as a device, header and
/// policy first, then the payload.
#[derive(Debug, PartialEq)]
enum Verdict {
    Accepted(Grant),
    Malformed(BundleError),
    Rejected(Rejection),
}

fn decide(bytes: &[u8], board: &BoardTable, installed: Option<u64>) -> Verdict {
    let mut dec = bundle::HeaderDecoder::new();
    let (header, payload) = match dec.feed(bytes) {
        Err(e) => return Verdict::Malformed(e),
        Ok(None) => return Verdict::Malformed(dec.truncated()),
        Ok(Some(x)) => x,
    };
    let grant = match check_install(&header, board, installed) {
        Ok(g) => g,
        Err(r) => return Verdict::Rejected(r),
    };
    let mut check = header.payload_checker();
    if let Err(e) = check.update(payload).and_then(|()| check.finish()) {
        return Verdict::Malformed(e);
    }
    Verdict::Accepted(grant.grant().clone())
}

fn header_len(bytes: &[u8]) -> usize {
    bundle::parse(bytes).unwrap().0.len()
}

#[test]
fn a_signed_example_is_accepted_with_exactly_its_requested_grant() {
    let b = Spec::new().build();
    assert_eq!(
        decide(&b, qemu(), None),
        Verdict::Accepted(smoother_grant())
    );
    assert_eq!(
        decide(&b, qemu(), Some(4)),
        Verdict::Accepted(smoother_grant())
    );
}

#[test]
fn streaming_one_byte_at_a_time_gives_the_same_header() {
    let b = Spec::new().build();
    let (whole, _) = bundle::parse(&b).unwrap();
    let mut dec = bundle::HeaderDecoder::new();
    let mut got = None;
    for (i, byte) in b.iter().enumerate() {
        if let Some((h, rest)) = dec.feed(std::slice::from_ref(byte)).unwrap() {
            assert_eq!(i + 1, whole.len());
            assert!(rest.is_empty());
            got = Some(h);
            break;
        }
    }
    assert_eq!(got.unwrap(), whole);
}

#[test]
fn flipping_any_header_or_signature_byte_is_refused_for_its_reason() {
    let b = Spec::new().build();
    let hl = header_len(&b);
    let manifest_len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    let count_at = 12 + manifest_len;
    for i in 0..hl {
        let mut t = b.clone();
        t[i] ^= 0xff;
        let v = decide(&t, qemu(), None);
        match i {
            0..=3 => assert_eq!(v, Verdict::Malformed(BundleError::BadMagic), "byte {i}"),
            4..=5 => assert!(
                matches!(v, Verdict::Malformed(BundleError::UnsupportedVersion(_))),
                "byte {i}: {v:?}"
            ),
            6..=7 => assert!(
                matches!(v, Verdict::Malformed(BundleError::ReservedFlags(_))),
                "byte {i}: {v:?}"
            ),
            8..=11 => assert!(matches!(v, Verdict::Malformed(_)), "byte {i}: {v:?}"),
            _ if i == count_at => assert!(
                matches!(v, Verdict::Malformed(BundleError::TooManySignatures { .. })),
                "byte {i}: {v:?}"
            ),
            _ if i > count_at && i < count_at + 9 => assert!(
                matches!(
                    v,
                    Verdict::Rejected(Rejection::NotEnoughSignatures {
                        untrusted: Some(_),
                        ..
                    })
                ),
                "key id byte {i}: {v:?}"
            ),
            _ if i > count_at => assert!(
                matches!(
                    v,
                    Verdict::Rejected(Rejection::NotEnoughSignatures {
                        bad_signature: true,
                        ..
                    })
                ),
                "signature byte {i}: {v:?}"
            ),
            // The manifest: it no longer decodes, or it decodes and the signature fails.
            _ => assert!(
                matches!(
                    v,
                    Verdict::Malformed(_)
                        | Verdict::Rejected(Rejection::NotEnoughSignatures {
                            bad_signature: true,
                            ..
                        })
                ),
                "manifest byte {i}: {v:?}"
            ),
        }
    }
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn ten_thousand_payload_corruptions_are_all_hash_mismatches() {
    let b = Spec::new().build();
    let hl = header_len(&b);
    let mut rng = XorShift(0x7e57_5eed);
    for _ in 0..10_000 {
        let at = hl + (rng.next() as usize) % (b.len() - hl);
        let mut t = b.clone();
        t[at] ^= 1 + (rng.next() % 255) as u8;
        assert_eq!(
            decide(&t, qemu(), None),
            Verdict::Malformed(BundleError::PayloadHashMismatch),
            "payload byte {at}"
        );
    }
}

#[test]
fn truncation_anywhere_is_reported_as_truncation() {
    let b = Spec::new().build();
    let hl = header_len(&b);
    for len in (0..hl).chain([hl, hl + 1, b.len() / 2, b.len() - 1]) {
        let v = decide(&b[..len], qemu(), None);
        assert!(
            matches!(v, Verdict::Malformed(BundleError::Truncated { .. })),
            "length {len}: {v:?}"
        );
    }
    let mut long = b.clone();
    long.push(0);
    assert_eq!(
        decide(&long, qemu(), None),
        Verdict::Malformed(BundleError::TrailingBytes)
    );
}

#[test]
fn a_key_nobody_trusts_is_refused_naming_it() {
    let stranger = KeyFile {
        key: SigningKey::from_bytes(&[42u8; 32]),
    };
    let id = bundle::key_id(&stranger.public());
    let b = Spec {
        keys: vec![stranger],
        ..Spec::new()
    }
    .build();
    assert_eq!(
        decide(&b, qemu(), None),
        Verdict::Rejected(Rejection::NotEnoughSignatures {
            valid: 0,
            required: 1,
            untrusted: Some(id),
            bad_signature: false
        })
    );
}

#[test]
fn a_key_trusted_by_another_board_is_refused() {
    let gateway = tern_host::boards::by_name("linux-gateway").unwrap();
    let spec = Spec {
        keys: vec![ops()],
        targets: vec![
            Target::Board("qemu-mps2-an386".into()),
            Target::Board("linux-gateway".into()),
        ],
        grant: Grant::parse(["log", "sensors=temp-0", "kv=4096"]).unwrap(),
        ..Spec::new()
    };
    assert!(
        gateway
            .trust_key(&bundle::key_id(&ops().public()))
            .is_some()
    );
    let b = spec.build();
    assert!(matches!(decide(&b, gateway, None), Verdict::Accepted(_)));
    assert!(matches!(
        decide(&b, qemu(), None),
        Verdict::Rejected(Rejection::NotEnoughSignatures {
            untrusted: Some(_),
            ..
        })
    ));
}

#[test]
fn lower_or_equal_security_counters_are_downgrades() {
    let b = Spec::new().build();
    for installed in [5, 6, u64::MAX] {
        assert_eq!(
            decide(&b, qemu(), Some(installed)),
            Verdict::Rejected(Rejection::Downgrade {
                offered: 5,
                installed
            })
        );
    }
}

#[test]
fn another_boards_bundle_is_the_wrong_target() {
    let b = Spec {
        targets: vec![Target::Board("server".into())],
        ..Spec::new()
    }
    .build();
    assert_eq!(
        decide(&b, qemu(), None),
        Verdict::Rejected(Rejection::WrongTarget {
            board: "qemu-mps2-an386"
        })
    );
    // An engine target matches every board running that engine.
    let b = Spec {
        targets: vec![Target::Engine(bundle::EngineKind::Wasmi)],
        ..Spec::new()
    }
    .build();
    assert!(matches!(decide(&b, qemu(), None), Verdict::Accepted(_)));
}

#[test]
fn capability_and_scope_escalations_are_refused() {
    let cases: [(&[&str], Interface); 5] = [
        (&["log", "gpio=7"], Interface::Gpio),
        (&["log", "gpio"], Interface::Gpio),
        (&["log", "sensors"], Interface::Sensors),
        (&["log", "kv=1000000"], Interface::Kv),
        (&["log", "publish=other/"], Interface::Publish),
    ];
    for (items, iface) in cases {
        let b = Spec {
            grant: Grant::parse(items.iter().copied()).unwrap(),
            payload: wasm("hostcall"),
            ..Spec::new()
        };
        let b = tern_host::sign::build(
            &b.payload,
            "x",
            Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            1,
            b.targets,
            Grant {
                clock: true,
                ..b.grant
            },
            &b.keys,
        )
        .unwrap();
        match decide(&b, qemu(), None) {
            Verdict::Rejected(Rejection::ScopeEscalation { interface, .. }) => {
                assert_eq!(interface, iface)
            }
            v => panic!("{items:?}: {v:?}"),
        }
    }
    // An interface the board does not offer at all.
    static NO_GPIO: BoardTable = BoardTable::new(BoardFields {
        signatures_required: 1,
        offers: Offer {
            gpio: None,
            ..FULL_OFFER
        },
        ..TEST_BOARD
    });
    let b = Spec {
        grant: Grant::parse(["log", "sensors=temp-0", "kv=4096", "gpio=4"]).unwrap(),
        targets: vec![Target::Board("test-board".into())],
        ..Spec::new()
    }
    .build();
    assert_eq!(
        decide(&b, &NO_GPIO, None),
        Verdict::Rejected(Rejection::CapabilityNotOffered {
            interface: Interface::Gpio
        })
    );
}

const FULL_OFFER: Offer = Offer {
    log: true,
    clock: true,
    sensors: Some(StaticScope::Any),
    gpio: Some(StaticScope::Any),
    kv: Some(65536),
    publish: Some(""),
};

static TEST_KEYS: [TrustKey; 2] = [
    TrustKey {
        name: "tern-dev-2026",
        public_key: hex32(include_str!("../boards/keys/tern-dev-2026.pub")),
    },
    TrustKey {
        name: "tern-dev-ops-2026",
        public_key: hex32(include_str!("../boards/keys/tern-dev-ops-2026.pub")),
    },
];

/// The test board's fields, for the variants above: test fixtures are the one place
/// besides tern-board's generated code that makes a table (`BoardTable::new`).
const TEST_BOARD: BoardFields = BoardFields {
    name: "test-board",
    engine: bundle::EngineKind::Wasmi,
    limits: tern_core::Limits::HOST,
    sector_size: 4096,
    trial_restarts: 0,
    download_floor: tern_core::board::DownloadFloor::DEFAULT,
    slots: &[
        tern_core::board::Slot {
            name: "a",
            offset: 0,
            size: 65536,
        },
        tern_core::board::Slot {
            name: "b",
            offset: 65536,
            size: 65536,
        },
    ],
    trust_keys: &TEST_KEYS,
    signatures_required: 2,
    offers: FULL_OFFER,
};

/// Hex to bytes at compile time (for the test board's keys).
const fn hex32(s: &str) -> [u8; 32] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("lowercase hex expected"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nib(b[2 * i]) << 4 | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[test]
fn a_payload_larger_than_the_slot_is_refused() {
    // Still a valid module: the padding is a custom section.
    let mut payload = wasm("smoother");
    let pad = 200 * 1024 - payload.len() - 8;
    let name = b"pad";
    let body_len = 1 + name.len() + pad;
    payload.push(0);
    let mut n = body_len;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            payload.push(byte);
            break;
        }
        payload.push(byte | 0x80);
    }
    payload.push(name.len() as u8);
    payload.extend_from_slice(name);
    payload.resize(payload.len() + pad, 0);
    let len = payload.len() as u32;
    let b = Spec {
        payload,
        ..Spec::new()
    }
    .build();
    assert_eq!(
        decide(&b, qemu(), None),
        Verdict::Rejected(Rejection::TooLargeForSlot {
            len,
            slot: qemu().slot_size()
        })
    );
}

#[test]
fn duplicate_signatures_count_once_toward_a_threshold() {
    static TWO_OF_TWO: BoardTable = BoardTable::new(TEST_BOARD);
    let target = vec![Target::Board("test-board".into())];
    let twice = Spec {
        keys: vec![dev(), dev()],
        targets: target.clone(),
        ..Spec::new()
    }
    .build();
    assert_eq!(
        decide(&twice, &TWO_OF_TWO, None),
        Verdict::Rejected(Rejection::NotEnoughSignatures {
            valid: 1,
            required: 2,
            untrusted: None,
            bad_signature: false
        })
    );
    let both = Spec {
        keys: vec![dev(), ops()],
        targets: target,
        ..Spec::new()
    }
    .build();
    assert!(matches!(
        decide(&both, &TWO_OF_TWO, None),
        Verdict::Accepted(_)
    ));
}

#[test]
fn zero_signatures_are_never_accepted() {
    let b = Spec::new().build();
    let hl = header_len(&b);
    let manifest_len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    let count_at = 12 + manifest_len;
    // Cut the signature records out and set the count to zero.
    let mut unsigned = b[..count_at].to_vec();
    unsigned.push(0);
    unsigned.extend_from_slice(&b[hl..]);
    assert_eq!(
        decide(&unsigned, qemu(), None),
        Verdict::Rejected(Rejection::Unsigned)
    );
    static ZERO_REQUIRED: BoardTable = BoardTable::new(BoardFields {
        signatures_required: 0,
        ..TEST_BOARD
    });
    assert_eq!(
        decide(&unsigned, &ZERO_REQUIRED, None),
        Verdict::Rejected(Rejection::Unsigned),
        "a board that requires 0 signatures still accepts 0 unsigned bundles"
    );
}

/// Link-time enforcement uses the grant from the accepted manifest: a hand-made
/// bundle whose manifest omits an interface the wasm imports is accepted by the policy
/// (it asks for less than the board offers) but cannot load on either engine.
#[test]
fn the_signed_grant_is_what_links() {
    use tern_core::Engine;
    let payload = wasm("alarm");
    let requested = Grant::parse(["log", "clock", "publish=alerts/"]).unwrap();
    let manifest = bundle::Manifest {
        name: "alarm".into(),
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        security_counter: 1,
        targets: vec![Target::Board("qemu-mps2-an386".into())],
        capabilities: requested.clone(),
        payload_len: payload.len() as u32,
        payload_sha256: bundle::sha256(&payload),
        wit: tern_core::wit::WIT_PACKAGE.into(),
    };
    let key = dev();
    let b = bundle::encode(&manifest, &payload, |m| vec![key.sign(m)]).unwrap();
    let Verdict::Accepted(grant) = decide(&b, qemu(), None) else {
        panic!("the policy accepts a modest request")
    };
    assert_eq!(grant, requested);
    // What the engines link: exactly what the policy mints for the signed header.
    let (header, _) = bundle::parse(&b).unwrap();
    let grant: Granted = check_install(&header, qemu(), None).unwrap();
    let limits = qemu().limits();
    let not_granted = Err(tern_core::Error::ImportNotGranted {
        interface: Interface::Gpio,
    });
    assert_eq!(
        tern_wasmi::WasmiEngine::new(limits)
            .load(&payload, &grant)
            .map(|_| ()),
        not_granted
    );
    assert_eq!(
        tern_wasmtime::WasmtimeEngine::new(limits)
            .unwrap()
            .load(&payload, &grant)
            .map(|_| ()),
        not_granted
    );
}
