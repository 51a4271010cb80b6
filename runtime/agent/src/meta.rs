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
//! One record: a 64-byte head, little-endian, then the agent's journal (padded with
//! `0xFF` to a whole number of write units when written):
//!
//! ```text
//! 0   4  magic "TRNM"
//! 4   2  record format version (2; version 1, without journal, is still read)
//! 6   2  head length (64)
//! 8   8  sequence number (the newer record has the higher one)
//! 16  8  installed security counter
//! 24  1  1 if the security counter is set (something was ever confirmed), else 0
//! 25  1  state of slot a (0 empty, 1 staged, 2 trial, 3 active, 4 rejected)
//! 26  1  state of slot b
//! 27  1  restarts that interrupted the current trial (version 2; 0 in version 1)
//! 28  4  bundle length in slot a (header and payload; 0 when empty)
//! 32  4  bundle length in slot b
//! 36  2  journal length J (version 2; 0 in version 1)
//! 38  22 reserved, 0
//! 60  4  CRC-32 (IEEE 802.3, as zlib) of bytes 0..60 followed by the journal
//! 64  J  the journal: the agent's undelivered reports (`crate::agent::ReportQueue`)
//! ```
//!
//! Keeping the journal in the record makes "the slot changed" and "the report saying
//! so" one atomic commit. A sector whose head does not decode, or whose CRC does not
//! match head and journal (erased, torn, garbage), holds no record. With no record at
//! all the flash is blank: both slots empty, no counter, no journal.

use alloc::vec::Vec;
use core::fmt;

/// Bytes of a record's head (the journal follows it).
pub const RECORD_LEN: usize = 64;
const MAGIC: [u8; 4] = *b"TRNM";
const VERSION: u16 = 2;
/// The version before the journal and the trial restarts.
const VERSION_1: u16 = 1;

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
    /// Restarts that interrupted the trial of the slot on trial (or staged again
    /// after one); 0 when no trial was interrupted.
    pub trial_restarts: u8,
}

impl Record {
    /// Blank flash: nothing installed, nothing ever confirmed.
    pub const BLANK: Record = Record {
        seq: 0,
        counter: None,
        states: [SlotState::Empty; 2],
        lens: [0; 2],
        trial_restarts: 0,
    };

    /// The slot in `state`, if any (the first one; the agent never puts both slots in
    /// the same non-empty state).
    pub fn slot_in(&self, state: SlotState) -> Option<usize> {
        self.states.iter().position(|s| *s == state)
    }

    /// The record's bytes: head, then `journal`.
    pub fn encode(&self, journal: &[u8]) -> Vec<u8> {
        let mut b = alloc::vec![0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(RECORD_LEN as u16).to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.counter.unwrap_or(0).to_le_bytes());
        b[24] = u8::from(self.counter.is_some());
        b[25] = self.states[0].to_byte();
        b[26] = self.states[1].to_byte();
        b[27] = self.trial_restarts;
        b[28..32].copy_from_slice(&self.lens[0].to_le_bytes());
        b[32..36].copy_from_slice(&self.lens[1].to_le_bytes());
        b[36..38].copy_from_slice(&(journal.len() as u16).to_le_bytes());
        let crc = crc32_parts(&b[..RECORD_LEN - 4], journal);
        b[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b.extend_from_slice(journal);
        b
    }

    /// How many journal bytes follow the head `b` says it is (unchecked: the CRC is
    /// checked by [`Self::decode`] once they are read). `None` if `b` is no head.
    pub fn journal_len(b: &[u8; RECORD_LEN]) -> Option<usize> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        if b[0..4] != MAGIC || usize::from(u16_at(6)) != RECORD_LEN {
            return None;
        }
        match u16_at(4) {
            VERSION_1 => Some(0),
            VERSION => Some(usize::from(u16_at(36))),
            _ => None,
        }
    }

    /// The record with head `b` and `journal` (exactly [`Self::journal_len`] bytes),
    /// or `None` if they are not a whole, valid record.
    pub fn decode(b: &[u8; RECORD_LEN], journal: &[u8]) -> Option<Record> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        if Self::journal_len(b)? != journal.len() {
            return None;
        }
        if crc32_parts(&b[..RECORD_LEN - 4], journal) != u32_at(RECORD_LEN - 4) {
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
        let version_1 = u16::from_le_bytes([b[4], b[5]]) == VERSION_1;
        Some(Record {
            seq: u64_at(8),
            counter,
            states,
            lens: [u32_at(28), u32_at(32)],
            trial_restarts: if version_1 { 0 } else { b[27] },
        })
    }
}

/// CRC-32 of `a` followed by `b`.
fn crc32_parts(a: &[u8], b: &[u8]) -> u32 {
    !crc32_update(crc32_update(!0, a), b)
}

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, as zlib and Ethernet compute it).
/// Bitwise: records are short, so a table would cost more flash than it saves time.
#[cfg(test)]
fn crc32(bytes: &[u8]) -> u32 {
    crc32_parts(bytes, &[])
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
            trial_restarts: 1,
        };
        let journal = b"two reports";
        let b = r.encode(journal);
        let decode = |b: &[u8]| {
            let head: [u8; RECORD_LEN] = b[..RECORD_LEN].try_into().unwrap();
            let len = Record::journal_len(&head)?;
            Record::decode(&head, b.get(RECORD_LEN..RECORD_LEN + len)?)
        };
        assert_eq!(decode(&b), Some(r));
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut d = b.clone();
                d[i] ^= 1 << bit;
                assert_eq!(decode(&d), None, "flip of byte {i} bit {bit} undetected");
            }
        }
        assert_eq!(decode(&[0xFF; RECORD_LEN]), None);
        assert_eq!(decode(&[0x00; RECORD_LEN]), None);
        let blank = Record::BLANK.encode(&[]);
        assert_eq!(decode(&blank), Some(Record::BLANK));
    }

    #[test]
    fn two_slots_in_the_same_live_state_are_refused() {
        let r = Record {
            seq: 1,
            counter: None,
            states: [SlotState::Active, SlotState::Active],
            lens: [1, 1],
            trial_restarts: 0,
        };
        let b = r.encode(&[]);
        assert_eq!(Record::decode(&b[..].try_into().unwrap(), &[]), None);
    }

    #[test]
    fn version_1_records_are_still_read() {
        // A version-1 head as the previous agent wrote it: no journal, no restarts.
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(b"TRNM");
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&64u16.to_le_bytes());
        b[8..16].copy_from_slice(&9u64.to_le_bytes());
        b[16..24].copy_from_slice(&3u64.to_le_bytes());
        b[24] = 1;
        b[25] = 3;
        b[28..32].copy_from_slice(&777u32.to_le_bytes());
        let crc = crc32(&b[..60]);
        b[60..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::journal_len(&b), Some(0));
        assert_eq!(
            Record::decode(&b, &[]),
            Some(Record {
                seq: 9,
                counter: Some(3),
                states: [SlotState::Active, SlotState::Empty],
                lens: [777, 0],
                trial_restarts: 0,
            })
        );
    }
}
