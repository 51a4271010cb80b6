//! The persistent metadata record: slot states, bundle lengths and the installed
//! security counter, double-buffered with a sequence number and CRC-32.
//!
//! # On flash
//!
//! The metadata area is two erase sectors. Each holds at most one record, at its
//! start; the valid record with the highest sequence number wins. To commit a new
//! record the agent erases the sector that does *not* hold the winner and writes the
//! new record there, so the winner is never touched: a power cut during the erase or
//! the write leaves a torn sector whose CRC fails, and the previous record still wins.
//! A commit is therefore atomic: after a cut either the old or the new record is
//! current, never a mixture.
//!
//! One record, 64 bytes, little-endian (padded with `0xFF` to a whole number of write
//! units when written):
//!
//! ```text
//! 0   4  magic "TRNM"
//! 4   2  record format version (1)
//! 6   2  record length (64)
//! 8   8  sequence number (the newer record has the higher one)
//! 16  8  installed security counter
//! 24  1  1 if the security counter is set (something was ever confirmed), else 0
//! 25  1  state of slot a (0 empty, 1 staged, 2 trial, 3 active, 4 rejected)
//! 26  1  state of slot b
//! 27  1  reserved, 0
//! 28  4  bundle length in slot a (header and payload; 0 when empty)
//! 32  4  bundle length in slot b
//! 36  24 reserved, 0
//! 60  4  CRC-32 (IEEE 802.3, as zlib) of bytes 0..60
//! ```
//!
//! A sector whose first 64 bytes do not decode (erased, torn, garbage) holds no record.
//! With no record at all the flash is blank: both slots empty, no counter.

use core::fmt;

/// Bytes of one record.
pub const RECORD_LEN: usize = 64;
const MAGIC: [u8; 4] = *b"TRNM";
const VERSION: u16 = 1;

/// The state of one component slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Nothing usable: never written, being written, or superseded.
    Empty,
    /// A verified bundle, waiting for its trial run.
    Staged,
    /// A verified bundle on trial: it runs, but is rolled back unless confirmed before
    /// the next boot.
    Trial,
    /// The confirmed component: what boots.
    Active,
    /// A bundle whose trial failed (or that was rolled back); never run again.
    Rejected,
}

impl SlotState {
    fn to_byte(self) -> u8 {
        match self {
            SlotState::Empty => 0,
            SlotState::Staged => 1,
            SlotState::Trial => 2,
            SlotState::Active => 3,
            SlotState::Rejected => 4,
        }
    }

    fn from_byte(b: u8) -> Option<SlotState> {
        Some(match b {
            0 => SlotState::Empty,
            1 => SlotState::Staged,
            2 => SlotState::Trial,
            3 => SlotState::Active,
            4 => SlotState::Rejected,
            _ => return None,
        })
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotState::Empty => "empty",
            SlotState::Staged => "staged",
            SlotState::Trial => "trial",
            SlotState::Active => "active",
            SlotState::Rejected => "rejected",
        })
    }
}

/// The decoded metadata: what the agent knows across reboots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub seq: u64,
    pub counter: Option<u64>,
    pub states: [SlotState; 2],
    pub lens: [u32; 2],
}

impl Record {
    /// Blank flash: nothing installed, nothing ever confirmed.
    pub const BLANK: Record = Record {
        seq: 0,
        counter: None,
        states: [SlotState::Empty; 2],
        lens: [0; 2],
    };

    /// The slot in `state`, if any (the first one; the agent never puts both slots in
    /// the same non-empty state).
    pub fn slot_in(&self, state: SlotState) -> Option<usize> {
        self.states.iter().position(|s| *s == state)
    }

    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(RECORD_LEN as u16).to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.counter.unwrap_or(0).to_le_bytes());
        b[24] = u8::from(self.counter.is_some());
        b[25] = self.states[0].to_byte();
        b[26] = self.states[1].to_byte();
        b[28..32].copy_from_slice(&self.lens[0].to_le_bytes());
        b[32..36].copy_from_slice(&self.lens[1].to_le_bytes());
        let crc = crc32(&b[..RECORD_LEN - 4]);
        b[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The record in `b`, or `None` if `b` is not a whole, valid record.
    pub fn decode(b: &[u8; RECORD_LEN]) -> Option<Record> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        if b[0..4] != MAGIC || u16_at(4) != VERSION || usize::from(u16_at(6)) != RECORD_LEN {
            return None;
        }
        if crc32(&b[..RECORD_LEN - 4]) != u32_at(RECORD_LEN - 4) {
            return None;
        }
        let counter = match b[24] {
            0 => None,
            1 => Some(u64_at(16)),
            _ => return None,
        };
        let states = [SlotState::from_byte(b[25])?, SlotState::from_byte(b[26])?];
        if states[0] == states[1] && states[0] != SlotState::Empty {
            return None;
        }
        Some(Record {
            seq: u64_at(8),
            counter,
            states,
            lens: [u32_at(28), u32_at(32)],
        })
    }
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, as zlib and Ethernet compute it).
/// Bitwise: records are 60 bytes, so a table would cost more flash than it saves time.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_round_trip_and_any_damage_is_detected() {
        let r = Record {
            seq: 42,
            counter: Some(7),
            states: [SlotState::Active, SlotState::Staged],
            lens: [1234, 5678],
        };
        let b = r.encode();
        assert_eq!(Record::decode(&b), Some(r));
        for i in 0..RECORD_LEN {
            for bit in 0..8 {
                let mut d = b;
                d[i] ^= 1 << bit;
                assert_eq!(
                    Record::decode(&d),
                    None,
                    "flip of byte {i} bit {bit} undetected"
                );
            }
        }
        assert_eq!(Record::decode(&[0xFF; RECORD_LEN]), None);
        assert_eq!(Record::decode(&[0x00; RECORD_LEN]), None);
        let blank = Record::BLANK.encode();
        assert_eq!(Record::decode(&blank), Some(Record::BLANK));
    }

    #[test]
    fn two_slots_in_the_same_live_state_are_refused() {
        let r = Record {
            seq: 1,
            counter: None,
            states: [SlotState::Active, SlotState::Active],
            lens: [1, 1],
        };
        assert_eq!(Record::decode(&r.encode()), None);
    }
}
