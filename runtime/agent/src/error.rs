//! The agent's typed errors: each says what went wrong and what to do about it.

use core::fmt;

use embedded_storage::nor_flash::NorFlashErrorKind;
use tern_core::bundle::BundleError;
use tern_core::policy::Rejection;

/// Which flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashOp {
    /// Reading.
    Read,
    /// Programming.
    Write,
    /// Erasing.
    Erase,
}

impl fmt::Display for FlashOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlashOp::Read => "read",
            FlashOp::Write => "write",
            FlashOp::Erase => "erase",
        })
    }
}

/// Why a slot layout does not fit the flash it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The board does not describe exactly two component slots.
    SlotCount {
        /// Slots found.
        found: usize,
    },
    /// The layout's sector size is not a non-zero multiple of the flash's erase size.
    SectorSize {
        /// The layout's (the board's) sector size.
        sector: u32,
        /// The flash driver's `ERASE_SIZE`.
        erase: usize,
    },
    /// A region does not start or end on a sector boundary, or is empty.
    Misaligned {
        /// `slot a`, `metadata`, ...
        region: &'static str,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
        /// The sector size.
        sector: u32,
    },
    /// Two regions overlap.
    Overlap {
        /// One region.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A region reaches past the end of the flash.
    OutOfFlash {
        /// The region.
        region: &'static str,
        /// Where it ends.
        end: u64,
        /// The flash's capacity.
        capacity: usize,
    },
    /// A metadata record, padded to the write unit, does not fit in one sector.
    RecordTooLarge {
        /// Padded record bytes.
        record: usize,
        /// The sector size.
        sector: u32,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::SlotCount { found } => write!(
                f,
                "the board describes {found} component slots; the agent needs exactly two (A and B) in board.toml [flash] slots"
            ),
            LayoutError::SectorSize { sector, erase } => write!(
                f,
                "sector size {sector} is not a multiple of the flash's {erase}-byte erase unit; fix [flash] sector-size in board.toml"
            ),
            LayoutError::Misaligned {
                region,
                offset,
                size,
                sector,
            } => write!(
                f,
                "{region} ({size} bytes at {offset:#x}) must be non-empty and start and end on a {sector}-byte sector boundary"
            ),
            LayoutError::Overlap { first, second } => {
                write!(
                    f,
                    "{first} and {second} overlap; give them disjoint flash ranges"
                )
            }
            LayoutError::OutOfFlash {
                region,
                end,
                capacity,
            } => write!(
                f,
                "{region} ends at {end:#x}, past the {capacity:#x}-byte flash; shrink the slots or give the agent a larger partition"
            ),
            LayoutError::RecordTooLarge { record, sector } => write!(
                f,
                "a {record}-byte metadata record does not fit a {sector}-byte sector"
            ),
        }
    }
}

/// Why a stored bundle failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// It no longer parses or its payload hash does not match.
    Bundle(BundleError),
    /// The board's policy refuses it (signature, target, ...).
    Rejected(Rejection),
    /// The slot does not read back as it was written (worn or failing flash, or
    /// changed behind the agent's back).
    ReadBack,
    /// The metadata records a length the slot cannot hold.
    Length {
        /// Recorded bundle length.
        recorded: u32,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::Bundle(e) => e.fmt(f),
            CorruptReason::Rejected(r) => r.fmt(f),
            CorruptReason::ReadBack => f.write_str("it does not read back as written"),
            CorruptReason::Length { recorded } => {
                write!(f, "recorded bundle length {recorded} does not fit the slot")
            }
        }
    }
}

/// Every way an agent operation can fail.
///
/// An error from [`crate::SlotManager::begin_update`] means nothing was erased or
/// written; an error from a later step means the update is abandoned and the active
/// component is untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentError {
    /// The flash driver failed.
    Flash {
        /// The operation.
        op: FlashOp,
        /// Offset in the component flash.
        offset: u32,
        /// What the driver reported.
        kind: NorFlashErrorKind,
    },
    /// The slot layout does not fit the flash.
    Layout(LayoutError),
    /// The board's policy refuses the bundle. Nothing was written.
    Rejected(Rejection),
    /// The bundle is malformed, truncated, or its payload hash does not match.
    Bundle(BundleError),
    /// More payload bytes arrived than the signed manifest declares.
    PayloadTooLong {
        /// Declared payload length.
        declared: u32,
    },
    /// The whole bundle (header and payload) does not fit the slot. Nothing was written.
    TooLargeForSlot {
        /// Header plus payload bytes.
        bundle_len: u64,
        /// The slot's size.
        slot_size: u32,
    },
    /// A trial run is in progress; it must be confirmed or rejected first.
    TrialInProgress {
        /// The trial's slot.
        slot: &'static str,
    },
    /// There is no staged update to start a trial of.
    NothingStaged,
    /// There is no trial to confirm or reject.
    NoTrial {
        /// What was asked: `confirm`, `reject`, ...
        action: &'static str,
    },
    /// No verified component is installed (or the active one failed verification).
    NothingInstalled {
        /// What was asked: `read the active payload`, ...
        action: &'static str,
    },
    /// An earlier write of this update failed; the update is abandoned.
    UpdateAborted,
    /// A stored bundle failed verification; it will not be run.
    SlotCorrupt {
        /// The slot.
        slot: &'static str,
        /// Why.
        reason: CorruptReason,
    },
    /// A metadata record did not read back as written (worn or failing flash).
    MetadataVerify {
        /// Offset of the record.
        offset: u32,
    },
    /// An embedded-svc OTA operation Tern does not provide.
    Unsupported(&'static str),
    /// The trial was rolled back; run the active component again (what
    /// `mark_running_slot_invalid_and_reboot` returns instead of rebooting).
    RestartRequired,
    /// The downloaded bundle verifies, but its SHA-256 is not the assignment's: it is
    /// not what the server assigned, and is not run.
    NotAssigned,
    /// The agent's journal does not fit a metadata record.
    JournalTooLong {
        /// Its length.
        len: usize,
        /// What a record carries (a metadata sector less its head).
        capacity: usize,
    },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Flash { op, offset, kind } => write!(
                f,
                "flash {op} at {offset:#x} failed ({kind}); check the flash driver and the partition"
            ),
            AgentError::Layout(e) => write!(f, "slot layout: {e}"),
            AgentError::Rejected(r) => write!(f, "bundle refused, nothing written: {r}"),
            AgentError::Bundle(e) => write!(
                f,
                "bundle invalid, nothing activated: {e}; download it again"
            ),
            AgentError::PayloadTooLong { declared } => write!(
                f,
                "more payload than the {declared} bytes the signed manifest declares; the update is abandoned"
            ),
            AgentError::TooLargeForSlot {
                bundle_len,
                slot_size,
            } => write!(
                f,
                "bundle of {bundle_len} bytes (header and payload) does not fit the {slot_size}-byte slot; nothing written"
            ),
            AgentError::TrialInProgress { slot } => write!(
                f,
                "a trial run in slot {slot} is in progress; confirm or reject it before starting another update"
            ),
            AgentError::NothingStaged => f.write_str(
                "no staged update: download and finish an update before starting a trial",
            ),
            AgentError::NoTrial { action } => {
                write!(f, "cannot {action}: no trial run is in progress")
            }
            AgentError::NothingInstalled { action } => write!(
                f,
                "cannot {action}: no verified component is installed; install an update"
            ),
            AgentError::UpdateAborted => {
                f.write_str("this update was abandoned after an earlier error; start a new update")
            }
            AgentError::SlotCorrupt { slot, reason } => write!(
                f,
                "slot {slot} holds no valid bundle ({reason}); it will not be run, install an update"
            ),
            AgentError::MetadataVerify { offset } => write!(
                f,
                "metadata record at {offset:#x} did not read back as written; the flash may be worn out"
            ),
            AgentError::Unsupported(what) => write!(f, "{what} is not supported by the Tern agent"),
            AgentError::RestartRequired => {
                f.write_str("trial rolled back: restart the component from the active slot")
            }
            AgentError::JournalTooLong { len, capacity } => write!(
                f,
                "a journal of {len} bytes does not fit the {capacity} a metadata record carries; keep fewer reports"
            ),
            AgentError::NotAssigned => f.write_str(
                "the bytes verify but are not the assigned bundle (SHA-256 differs); nothing activated",
            ),
        }
    }
}

impl core::error::Error for AgentError {}

impl From<LayoutError> for AgentError {
    fn from(e: LayoutError) -> Self {
        AgentError::Layout(e)
    }
}

impl From<Rejection> for AgentError {
    fn from(r: Rejection) -> Self {
        AgentError::Rejected(r)
    }
}

impl embedded_svc::io::Error for AgentError {
    fn kind(&self) -> embedded_svc::io::ErrorKind {
        use embedded_svc::io::ErrorKind;
        match self {
            AgentError::Flash { .. } | AgentError::MetadataVerify { .. } => ErrorKind::Other,
            AgentError::Layout(_) => ErrorKind::InvalidInput,
            AgentError::Rejected(_) => ErrorKind::PermissionDenied,
            AgentError::Bundle(_)
            | AgentError::PayloadTooLong { .. }
            | AgentError::SlotCorrupt { .. }
            | AgentError::NotAssigned => ErrorKind::InvalidData,
            AgentError::TooLargeForSlot { .. } => ErrorKind::OutOfMemory,
            AgentError::NothingInstalled { .. } => ErrorKind::NotFound,
            AgentError::TrialInProgress { .. }
            | AgentError::NothingStaged
            | AgentError::NoTrial { .. }
            | AgentError::UpdateAborted
            | AgentError::RestartRequired => ErrorKind::Other,
            AgentError::Unsupported(_) => ErrorKind::Unsupported,
            AgentError::JournalTooLong { .. } => ErrorKind::OutOfMemory,
        }
    }
}
