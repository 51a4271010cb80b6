//! The device protocol: what an agent sends the fleet server when it checks in, and
//! what it is told to download, as small, bounded, versioned postcard messages.
//!
//! The HTTP side (endpoints, tokens, `Range` downloads) is in `docs/protocol.md`; this
//! module is the part a `no_std` agent and the server share. Every message starts with
//! its protocol version, so a server can refuse a version it does not speak before it
//! decodes anything else. Decoding checks every limit below, so a peer that follows
//! them never has a message refused, and a peer that does not is refused with a
//! reason.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::bundle::{self, Version};
use crate::wit::hex_bytes;

/// The protocol version this build speaks. Sent first in every message.
pub const PROTOCOL_VERSION: u16 = 1;

/// How long an agent's transport may take to open a connection to the server.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How long an agent's exchange with the server may make no progress (no byte sent
/// or received) before the transport gives it up; the agent tries again later. Every
/// transport keeps it, the device's (`tern-net`) and the gateway's alike: a server,
/// or a man in the middle, that goes silent cannot hold an agent.
pub const SILENCE_TIMEOUT_MS: u64 = 10_000;
/// Largest encoded [`CheckIn`] (request body) a server accepts, in bytes.
pub const MAX_CHECK_IN_LEN: usize = 4096;
/// Largest encoded [`CheckInReply`] (response body) a server sends, in bytes. An agent
/// can receive a reply into a buffer of this size.
pub const MAX_REPLY_LEN: usize = 256;
/// Longest device id or board name, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Most reports in one check-in. An agent with more queued sends the oldest first and
/// the rest at its next check-in.
pub const MAX_REPORTS: usize = 8;
/// Longest report reason, in bytes. An agent truncates longer reasons (at a UTF-8
/// character boundary).
pub const MAX_REASON_LEN: usize = 256;

/// Whether `id` is a valid device id, board name or group name: 1 to [`MAX_ID_LEN`]
/// bytes of ASCII letters, digits, `-`, `_` and `.`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A bundle id: the lowercase hex SHA-256 of the whole bundle's bytes (64 characters).
pub fn bundle_id(sha256: &[u8; 32]) -> String {
    hex_bytes::encode(sha256)
}

/// Parses a bundle id back into the SHA-256 it names; `None` unless it is exactly 64
/// lowercase hex characters.
pub fn parse_bundle_id(id: &str) -> Option<[u8; 32]> {
    if id.len() != 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex_bytes::decode(id)?.try_into().ok()
}

/// What an agent sends at every check-in (`POST /device/v1/check-in`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The device's id, as it was provisioned on the server ([`valid_id`]).
    pub device: String,
    /// The board the device runs ([`valid_id`]), `BoardTable::name`.
    pub board: String,
    /// The active (confirmed) component, if any.
    pub installed: Option<Installed>,
    /// Update outcomes since the last acknowledged check-in, oldest first, at most
    /// [`MAX_REPORTS`]. An agent drops them only once a check-in carrying them got a
    /// reply; the server may therefore see a report twice.
    pub reports: Vec<Report>,
}

/// The component a device runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Component name, from its manifest.
    pub name: String,
    /// Component version, from its manifest.
    pub version: Version,
    /// The installed security counter (the anti-rollback floor).
    pub security_counter: u64,
    /// SHA-256 of the whole bundle it came from: its bundle id.
    pub bundle_sha256: [u8; 32],
}

/// The outcome of one update attempt, for the bundle with this SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// Verified and written to the inactive slot, marked as trial.
    Installed {
        /// The bundle's SHA-256 (its id).
        bundle_sha256: [u8; 32],
    },
    /// The trial passed its health check and is now the active component.
    Confirmed {
        /// The bundle's SHA-256 (its id).
        bundle_sha256: [u8; 32],
    },
    /// The trial failed and the device went back to its previous component.
    RolledBack {
        /// The bundle's SHA-256 (its id).
        bundle_sha256: [u8; 32],
        /// Why (the health-check or engine error), at most [`MAX_REASON_LEN`] bytes.
        reason: String,
    },
    /// The device refused the bundle before activating anything (bad signature,
    /// downgrade, wrong board, hash mismatch, download failure, ...).
    Rejected {
        /// The bundle's SHA-256 (its id).
        bundle_sha256: [u8; 32],
        /// Why (the policy or format error), at most [`MAX_REASON_LEN`] bytes.
        reason: String,
    },
    /// The agent's report queue overflowed: this many reports (the oldest) were
    /// dropped before any check-in could carry them. Sent first in the next check-in.
    Dropped {
        /// How many.
        count: u32,
    },
}

impl Report {
    /// The SHA-256 of the bundle the report is about (`None` for [`Report::Dropped`]).
    pub fn bundle_sha256(&self) -> Option<&[u8; 32]> {
        match self {
            Report::Installed { bundle_sha256 }
            | Report::Confirmed { bundle_sha256 }
            | Report::RolledBack { bundle_sha256, .. }
            | Report::Rejected { bundle_sha256, .. } => Some(bundle_sha256),
            Report::Dropped { .. } => None,
        }
    }

    /// The outcome's name: `installed`, `confirmed`, `rolled-back`, `rejected` or
    /// `reports-dropped`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Report::Installed { .. } => "installed",
            Report::Confirmed { .. } => "confirmed",
            Report::RolledBack { .. } => "rolled-back",
            Report::Rejected { .. } => "rejected",
            Report::Dropped { .. } => "reports-dropped",
        }
    }

    /// The reason, for the outcomes that carry one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Report::RolledBack { reason, .. } | Report::Rejected { reason, .. } => Some(reason),
            Report::Installed { .. } | Report::Confirmed { .. } | Report::Dropped { .. } => None,
        }
    }
}

/// What the server answers a check-in with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInReply {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The bundle the device should install, or `None` when it is up to date (or has
    /// no assignment).
    pub assignment: Option<Assignment>,
    /// Milliseconds until the next check-in.
    pub poll_after_ms: u32,
}

/// A bundle the device should download (`GET /device/v1/bundles/{bundle_id}`),
/// verify and install.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The bundle's id: [`bundle_id`] of `sha256`, 64 lowercase hex characters.
    pub bundle_id: String,
    /// Length of the whole bundle (header and payload), in bytes.
    pub len: u32,
    /// SHA-256 of the whole bundle.
    pub sha256: [u8; 32],
    /// The manifest's security counter, so a device can skip a downgrade without
    /// downloading anything. Informative: the signed header decides.
    pub security_counter: u64,
    /// The manifest's component name. Informative.
    pub name: String,
    /// The manifest's component version. Informative.
    pub version: Version,
}

/// Why a protocol message is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The message is longer than its limit.
    TooLong {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message starts with a protocol version this build does not speak.
    UnsupportedVersion(u16),
    /// The bytes do not decode as the message.
    Malformed(&'static str),
    /// The message decodes but leaves bytes over.
    TrailingBytes,
    /// A field breaks its limit or syntax.
    Invalid {
        /// The field (`device`, `board`, `reports`, ...).
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooLong { len, max } => {
                write!(f, "message of {len} bytes is over the {max}-byte limit")
            }
            ProtocolError::UnsupportedVersion(v) => write!(
                f,
                "protocol version {v} is not supported; this build speaks version {PROTOCOL_VERSION}"
            ),
            ProtocolError::Malformed(e) => write!(f, "message does not decode: {e}"),
            ProtocolError::TrailingBytes => f.write_str("message has trailing bytes"),
            ProtocolError::Invalid { field, rule } => write!(f, "field `{field}`: {rule}"),
        }
    }
}

impl core::error::Error for ProtocolError {}

fn malformed(e: &postcard::Error) -> ProtocolError {
    ProtocolError::Malformed(bundle::postcard_reason(e))
}

/// Checks the length limit and the leading version, then decodes exactly `bytes`.
fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], max: usize) -> Result<T, ProtocolError> {
    if bytes.len() > max {
        return Err(ProtocolError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    let (version, _): (u16, _) = postcard::take_from_bytes(bytes).map_err(|e| malformed(&e))?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion(version));
    }
    let (message, rest) = postcard::take_from_bytes(bytes).map_err(|e| malformed(&e))?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes);
    }
    Ok(message)
}

fn encode<T: Serialize>(message: &T, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let bytes =
        postcard::to_allocvec(message).map_err(|_| ProtocolError::Malformed("does not encode"))?;
    if bytes.len() > max {
        return Err(ProtocolError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

fn check_version(version: u16) -> Result<(), ProtocolError> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion(version))
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), ProtocolError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ProtocolError::Invalid {
            field,
            rule: "must be 1 to 64 bytes of ASCII letters, digits, '-', '_' and '.'",
        })
    }
}

impl CheckIn {
    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_version(self.version)?;
        check_id("device", &self.device)?;
        check_id("board", &self.board)?;
        if let Some(i) = &self.installed
            && (i.name.is_empty() || i.name.len() > bundle::MAX_NAME_LEN)
        {
            return Err(ProtocolError::Invalid {
                field: "installed.name",
                rule: "must be 1 to 64 bytes",
            });
        }
        if self.reports.len() > MAX_REPORTS {
            return Err(ProtocolError::Invalid {
                field: "reports",
                rule: "at most 8 reports per check-in",
            });
        }
        if self
            .reports
            .iter()
            .any(|r| r.reason().is_some_and(|s| s.len() > MAX_REASON_LEN))
        {
            return Err(ProtocolError::Invalid {
                field: "reports.reason",
                rule: "at most 256 bytes",
            });
        }
        Ok(())
    }

    /// Encodes a valid check-in (at most [`MAX_CHECK_IN_LEN`] bytes).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        self.validate()?;
        encode(self, MAX_CHECK_IN_LEN)
    }

    /// Decodes and validates a check-in: the version first, then the rest, which must
    /// use exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<CheckIn, ProtocolError> {
        let c: CheckIn = decode(bytes, MAX_CHECK_IN_LEN)?;
        c.validate()?;
        Ok(c)
    }
}

impl CheckInReply {
    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_version(self.version)?;
        if let Some(a) = &self.assignment {
            if parse_bundle_id(&a.bundle_id) != Some(a.sha256) {
                return Err(ProtocolError::Invalid {
                    field: "assignment.bundle_id",
                    rule: "must be the lowercase hex of assignment.sha256",
                });
            }
            if a.name.is_empty() || a.name.len() > bundle::MAX_NAME_LEN {
                return Err(ProtocolError::Invalid {
                    field: "assignment.name",
                    rule: "must be 1 to 64 bytes",
                });
            }
        }
        Ok(())
    }

    /// Encodes a valid reply (at most [`MAX_REPLY_LEN`] bytes).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        self.validate()?;
        encode(self, MAX_REPLY_LEN)
    }

    /// Decodes and validates a reply.
    pub fn decode(bytes: &[u8]) -> Result<CheckInReply, ProtocolError> {
        let r: CheckInReply = decode(bytes, MAX_REPLY_LEN)?;
        r.validate()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn check_in() -> CheckIn {
        CheckIn {
            version: PROTOCOL_VERSION,
            device: "gw-1".into(),
            board: "linux-gateway".into(),
            installed: Some(Installed {
                name: "smoother".into(),
                version: Version {
                    major: 1,
                    minor: 2,
                    patch: 3,
                },
                security_counter: 300,
                bundle_sha256: [0xab; 32],
            }),
            reports: vec![
                Report::Confirmed {
                    bundle_sha256: [0xab; 32],
                },
                Report::Rejected {
                    bundle_sha256: [0xcd; 32],
                    reason: "downgrade".into(),
                },
            ],
        }
    }

    #[test]
    fn check_in_round_trips_with_the_documented_layout() {
        let c = check_in();
        let bytes = c.encode().unwrap();
        assert_eq!(CheckIn::decode(&bytes).unwrap(), c);
        // docs/protocol.md: version varint, then the device id as varint length + UTF-8.
        assert_eq!(&bytes[..6], &[0x01, 0x04, b'g', b'w', b'-', b'1']);
        let board_at = 6;
        assert_eq!(bytes[board_at], 13);
        let installed_at = board_at + 1 + 13;
        assert_eq!(bytes[installed_at], 0x01); // Some
        // name, version 1.2.3, counter 300 = ac 02, 32 hash bytes.
        let after_name = installed_at + 1 + 1 + 8;
        assert_eq!(&bytes[after_name..after_name + 5], &[1, 2, 3, 0xac, 0x02]);
        let reports_at = after_name + 5 + 32;
        assert_eq!(&bytes[reports_at..reports_at + 2], &[2, 1]); // 2 reports, Confirmed
        let second = reports_at + 2 + 32;
        assert_eq!(&bytes[second..second + 2], &[3, 0xcd]); // Rejected
        assert_eq!(bytes.len(), second + 1 + 32 + 1 + "downgrade".len());
    }

    #[test]
    fn reply_round_trips_and_fits_its_limit_at_the_largest() {
        let sha = [0xff; 32];
        let r = CheckInReply {
            version: PROTOCOL_VERSION,
            assignment: Some(Assignment {
                bundle_id: bundle_id(&sha),
                len: u32::MAX,
                sha256: sha,
                security_counter: u64::MAX,
                name: "x".repeat(64),
                version: Version {
                    major: u32::MAX,
                    minor: u32::MAX,
                    patch: u32::MAX,
                },
            }),
            poll_after_ms: u32::MAX,
        };
        let bytes = r.encode().unwrap();
        // docs/protocol.md quotes this size.
        assert_eq!(bytes.len(), 199);
        assert!(bytes.len() <= MAX_REPLY_LEN);
        assert_eq!(CheckInReply::decode(&bytes).unwrap(), r);
        let none = CheckInReply {
            version: PROTOCOL_VERSION,
            assignment: None,
            poll_after_ms: 1000,
        };
        assert_eq!(none.encode().unwrap(), [0x01, 0x00, 0xe8, 0x07]);
    }

    #[test]
    fn the_largest_valid_check_in_fits_its_limit() {
        let mut c = check_in();
        c.device = "d".repeat(MAX_ID_LEN);
        c.board = "b".repeat(MAX_ID_LEN);
        c.reports = (0..MAX_REPORTS)
            .map(|_| Report::RolledBack {
                bundle_sha256: [0xff; 32],
                reason: "r".repeat(MAX_REASON_LEN),
            })
            .collect();
        if let Some(i) = &mut c.installed {
            i.name = "n".repeat(bundle::MAX_NAME_LEN);
            i.security_counter = u64::MAX;
            i.version = Version {
                major: u32::MAX,
                minor: u32::MAX,
                patch: u32::MAX,
            };
        }
        let bytes = c.encode().unwrap();
        // docs/protocol.md quotes this size.
        assert_eq!(bytes.len(), 2583);
        assert!(bytes.len() <= MAX_CHECK_IN_LEN);
    }

    #[test]
    fn bad_messages_are_refused_with_their_reason() {
        let good = check_in().encode().unwrap();
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(
            CheckIn::decode(&v2),
            Err(ProtocolError::UnsupportedVersion(2))
        );
        assert!(matches!(
            CheckIn::decode(&good[..good.len() - 1]),
            Err(ProtocolError::Malformed(_))
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(CheckIn::decode(&long), Err(ProtocolError::TrailingBytes));
        assert!(matches!(
            CheckIn::decode(&vec![0u8; MAX_CHECK_IN_LEN + 1]),
            Err(ProtocolError::TooLong { .. })
        ));
        let mut c = check_in();
        c.device = "gw 1".into();
        assert!(matches!(
            c.encode(),
            Err(ProtocolError::Invalid {
                field: "device",
                ..
            })
        ));
        let mut c = check_in();
        c.reports = vec![
            Report::Installed {
                bundle_sha256: [0; 32]
            };
            MAX_REPORTS + 1
        ];
        // Encoded by someone who skipped validation: refused on decode.
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert!(
            CheckIn::decode(&bytes)
                .unwrap_err()
                .to_string()
                .contains("reports")
        );
    }

    #[test]
    fn bundle_ids_are_lowercase_hex_of_the_sha256() {
        let sha = bundle::sha256(b"bundle");
        let id = bundle_id(&sha);
        assert_eq!(id.len(), 64);
        assert_eq!(parse_bundle_id(&id), Some(sha));
        assert_eq!(parse_bundle_id(&id.to_uppercase()), None);
        assert_eq!(parse_bundle_id(&id[..63]), None);
        assert!(valid_id("gw-1.site_a"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
    }
}
