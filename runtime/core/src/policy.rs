//! The install policy: the one function that decides whether a board accepts a bundle.
//!
//! Every agent and the fleet server call [`check_install`] on a parsed header before
//! anything is written; it returns the grant the component will run with.

use alloc::string::String;
use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::board::{BoardTable, Offer, StaticScope};
use crate::bundle::{Header, KeyId, Target};
use crate::grant::{Grant, Granted, Scope};
use crate::wit::{Interface, WIT_PACKAGE};

/// Why a board refuses a bundle. Nothing has been written when this is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The bundle carries no signature at all.
    Unsigned,
    /// Fewer distinct trusted keys signed it than the board requires.
    NotEnoughSignatures {
        /// Distinct trusted keys with a valid signature.
        valid: u8,
        /// What the board requires.
        required: u8,
        /// A key id that signed but is not trusted here, if any.
        untrusted: Option<KeyId>,
        /// Whether some signature by a trusted key failed to verify.
        bad_signature: bool,
    },
    /// The bundle is for other boards and engines.
    WrongTarget {
        /// This board.
        board: &'static str,
    },
    /// The security counter is not above the installed one.
    Downgrade {
        /// The bundle's counter.
        offered: u64,
        /// The installed counter.
        installed: u64,
    },
    /// The component requests an interface the board does not offer.
    CapabilityNotOffered {
        /// The interface.
        interface: Interface,
    },
    /// The component requests a wider scope than the board offers.
    ScopeEscalation {
        /// The interface.
        interface: Interface,
        /// What was asked for beyond the offer.
        requested: String,
    },
    /// The payload does not fit the board's slot.
    TooLargeForSlot {
        /// Payload bytes.
        len: u32,
        /// Slot bytes.
        slot: u32,
    },
    /// The component was built against another WIT package version.
    WitMismatch {
        /// The bundle's WIT package.
        found: String,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unsigned => f.write_str("unsigned: the bundle carries no signature"),
            Rejection::NotEnoughSignatures {
                valid,
                required,
                untrusted,
                bad_signature,
            } => {
                write!(
                    f,
                    "signature check failed: {valid} of {required} required trusted signatures"
                )?;
                if *bad_signature {
                    f.write_str(
                        "; a signature by a trusted key does not verify (tampered header?)",
                    )?;
                }
                if let Some(id) = untrusted {
                    f.write_str("; signed by key ")?;
                    for b in id {
                        write!(f, "{b:02x}")?;
                    }
                    f.write_str(", which this board does not trust")?;
                }
                Ok(())
            }
            Rejection::WrongTarget { board } => write!(
                f,
                "wrong target: the bundle is not for board `{board}` or its engine"
            ),
            Rejection::Downgrade { offered, installed } => write!(
                f,
                "downgrade: security counter {offered} is not above the installed {installed}"
            ),
            Rejection::CapabilityNotOffered { interface } => write!(
                f,
                "capability not offered: the component requests `{interface}`, which this board does not offer"
            ),
            Rejection::ScopeEscalation {
                interface,
                requested,
            } => write!(
                f,
                "scope escalation: `{interface}` {requested} is beyond what this board offers"
            ),
            Rejection::TooLargeForSlot { len, slot } => write!(
                f,
                "too large: a {len}-byte payload does not fit the {slot}-byte slot"
            ),
            Rejection::WitMismatch { found } => write!(
                f,
                "WIT mismatch: built against `{found}`, this runtime speaks `{WIT_PACKAGE}`"
            ),
        }
    }
}

impl core::error::Error for Rejection {}

/// Counts distinct trusted keys with a valid signature and checks the threshold.
pub fn verify_signatures(header: &Header, board: &BoardTable) -> Result<u8, Rejection> {
    if header.signatures.is_empty() {
        return Err(Rejection::Unsigned);
    }
    let message = header.signed_message();
    let mut counted: heapless::Vec<KeyId, { crate::bundle::MAX_SIGNATURES }> = heapless::Vec::new();
    let mut untrusted = None;
    let mut bad_signature = false;
    for rec in &header.signatures {
        let Some(key) = board.trust_key(&rec.key_id) else {
            untrusted.get_or_insert(rec.key_id);
            continue;
        };
        if counted.contains(&rec.key_id) {
            // A second signature by the same key adds nothing toward the threshold.
            continue;
        }
        let ok = VerifyingKey::from_bytes(&key.public_key)
            .map(|vk| {
                vk.verify_strict(&message, &Signature::from_bytes(&rec.signature))
                    .is_ok()
            })
            .unwrap_or(false);
        if ok {
            let _ = counted.push(rec.key_id);
        } else {
            bad_signature = true;
        }
    }
    let valid = counted.len() as u8;
    if valid == 0 || valid < board.signatures_required() {
        return Err(Rejection::NotEnoughSignatures {
            valid,
            required: board.signatures_required().max(1),
            untrusted,
            bad_signature,
        });
    }
    Ok(valid)
}

fn scope_within<T: PartialEq + fmt::Debug>(
    interface: Interface,
    requested: &Scope<T>,
    offered: &StaticScope<T>,
) -> Result<(), Rejection> {
    match (requested, offered) {
        (_, StaticScope::Any) => Ok(()),
        (Scope::Any, StaticScope::Only(_)) => Err(Rejection::ScopeEscalation {
            interface,
            requested: String::from("every item"),
        }),
        (Scope::Only(items), StaticScope::Only(allowed)) => {
            match items.iter().find(|i| !allowed.contains(i)) {
                None => Ok(()),
                Some(item) => Err(Rejection::ScopeEscalation {
                    interface,
                    requested: alloc::format!("{item:?}"),
                }),
            }
        }
    }
}

/// Checks that `requested` is within what the board offers.
pub fn grant_within(requested: &Grant, offer: &Offer) -> Result<(), Rejection> {
    let missing = |interface| Rejection::CapabilityNotOffered { interface };
    if requested.log && !offer.log {
        return Err(missing(Interface::Log));
    }
    if requested.clock && !offer.clock {
        return Err(missing(Interface::Clock));
    }
    if let Some(r) = &requested.sensors {
        let o = offer.sensors.as_ref().ok_or(missing(Interface::Sensors))?;
        if let (Scope::Only(ids), StaticScope::Only(allowed)) = (r, o) {
            if let Some(id) = ids.iter().find(|id| !allowed.contains(&id.as_str())) {
                return Err(Rejection::ScopeEscalation {
                    interface: Interface::Sensors,
                    requested: alloc::format!("sensor {id:?}"),
                });
            }
        } else if let (Scope::Any, StaticScope::Only(_)) = (r, o) {
            return Err(Rejection::ScopeEscalation {
                interface: Interface::Sensors,
                requested: String::from("every sensor"),
            });
        }
    }
    if let Some(r) = &requested.gpio {
        let o = offer.gpio.as_ref().ok_or(missing(Interface::Gpio))?;
        scope_within(Interface::Gpio, r, o)?;
    }
    if let Some(q) = requested.kv {
        let max = offer.kv.ok_or(missing(Interface::Kv))?;
        if q > max {
            return Err(Rejection::ScopeEscalation {
                interface: Interface::Kv,
                requested: alloc::format!("quota {q} bytes (offered {max})"),
            });
        }
    }
    if let Some(p) = &requested.publish {
        let base = offer.publish.ok_or(missing(Interface::Publish))?;
        if !p.starts_with(base) {
            return Err(Rejection::ScopeEscalation {
                interface: Interface::Publish,
                requested: alloc::format!("topic prefix {p:?} (offered {base:?})"),
            });
        }
    }
    Ok(())
}

/// Decides whether `board` accepts the bundle with this header, given the security
/// counter of what is installed (`None` = nothing yet). On success returns the grant
/// the component runs with: exactly what its signed manifest requests.
pub fn check_install(
    header: &Header,
    board: &BoardTable,
    installed_counter: Option<u64>,
) -> Result<Granted, Rejection> {
    verify_signatures(header, board)?;
    let m = &header.manifest;
    let for_us = m.targets.iter().any(|t| match t {
        Target::Board(name) => name == board.name(),
        Target::Engine(e) => *e == board.engine(),
    });
    if !for_us {
        return Err(Rejection::WrongTarget {
            board: board.name(),
        });
    }
    if m.wit != WIT_PACKAGE {
        return Err(Rejection::WitMismatch {
            found: m.wit.clone(),
        });
    }
    if let Some(installed) = installed_counter.filter(|i| m.security_counter <= *i) {
        return Err(Rejection::Downgrade {
            offered: m.security_counter,
            installed,
        });
    }
    grant_within(&m.capabilities, board.offers())?;
    if m.payload_len > board.slot_size() {
        return Err(Rejection::TooLargeForSlot {
            len: m.payload_len,
            slot: board.slot_size(),
        });
    }
    Ok(Granted::minted(m.capabilities.clone()))
}
