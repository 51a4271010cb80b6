//! The rules of NOR flash, written once: the power-fail simulator ([`crate::sim`]), a
//! gateway's flash file and a device's flash region all check their operations here,
//! so the slot manager meets the same flash everywhere.
//!
//! Bounds: every range lies inside the capacity. Erase: whole sectors, which read back
//! as the erased value. Write: whole write units, and it may only program bits (move
//! them away from the erased value), never erase them; with ECC a unit can be
//! programmed only once between erases. A refused operation changes nothing.

use core::ops::Range;

/// Why an operation breaks the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The range goes past the end of the flash.
    OutOfBounds,
    /// The offset or length is not a multiple of the erase or write unit.
    NotAligned,
    /// A write would erase a programmed bit (or, with ECC, program a unit twice).
    NotErased {
        /// The first offending byte.
        offset: u32,
    },
}

/// One flash part's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NorRules {
    /// Bytes.
    pub capacity: usize,
    /// Erase unit, bytes.
    pub erase_size: usize,
    /// Write unit, bytes.
    pub write_size: usize,
    /// What an erased byte reads as (0xFF on most parts).
    pub erased: u8,
    /// Whether each write unit carries ECC, so it is programmed once between erases.
    pub ecc: bool,
}

impl NorRules {
    /// The bytes `[offset, offset + len)`, if inside the flash.
    pub fn range(&self, offset: u32, len: usize) -> Result<Range<usize>, Violation> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(Violation::OutOfBounds)?;
        if end > self.capacity {
            return Err(Violation::OutOfBounds);
        }
        Ok(start..end)
    }

    /// The range an erase of `[from, to)` covers: whole sectors inside the flash.
    pub fn erase(&self, from: u32, to: u32) -> Result<Range<usize>, Violation> {
        let len = to.checked_sub(from).ok_or(Violation::OutOfBounds)?;
        let r = self.range(from, len as usize)?;
        let unit = self.erase_size.max(1);
        if !r.start.is_multiple_of(unit) || !r.end.is_multiple_of(unit) {
            return Err(Violation::NotAligned);
        }
        Ok(r)
    }

    /// The range a write of `new` at `offset` covers, checked against `old`, what
    /// that range holds now (read it with [`Self::write_range`] first).
    pub fn write(&self, offset: u32, old: &[u8], new: &[u8]) -> Result<Range<usize>, Violation> {
        let r = self.write_range(offset, new.len())?;
        let unit = self.write_size.max(1);
        let erased = self.erased;
        // Plain index loop: this runs for every byte the simulator writes, and the
        // tests run unoptimised.
        let mut i = 0;
        while i < new.len() {
            if self.ecc && i.is_multiple_of(unit) && old[i..i + unit].iter().any(|&b| b != erased) {
                return Err(Violation::NotErased {
                    offset: offset + i as u32,
                });
            }
            // Programmed bits of the old value must stay programmed in the new one.
            if (old[i] ^ erased) & !(new[i] ^ erased) != 0 {
                return Err(Violation::NotErased {
                    offset: offset + i as u32,
                });
            }
            i += 1;
        }
        Ok(r)
    }

    /// The range a write of `len` bytes at `offset` covers: whole write units inside
    /// the flash (the contents are not checked: see [`Self::write`]).
    pub fn write_range(&self, offset: u32, len: usize) -> Result<Range<usize>, Violation> {
        let r = self.range(offset, len)?;
        let unit = self.write_size.max(1);
        if !r.start.is_multiple_of(unit) || !len.is_multiple_of(unit) {
            return Err(Violation::NotAligned);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: NorRules = NorRules {
        capacity: 1024,
        erase_size: 256,
        write_size: 4,
        erased: 0xFF,
        ecc: false,
    };

    #[test]
    fn every_rule_is_enforced() {
        assert_eq!(RULES.range(1020, 8), Err(Violation::OutOfBounds));
        assert_eq!(RULES.range(u32::MAX, 8), Err(Violation::OutOfBounds));
        assert_eq!(RULES.erase(0, 100), Err(Violation::NotAligned));
        assert_eq!(RULES.erase(256, 0), Err(Violation::OutOfBounds));
        assert_eq!(RULES.erase(0, 2048), Err(Violation::OutOfBounds));
        assert_eq!(RULES.erase(256, 512), Ok(256..512));
        assert_eq!(RULES.write_range(2, 4), Err(Violation::NotAligned));
        assert_eq!(RULES.write_range(0, 3), Err(Violation::NotAligned));
        // Clearing bits is programming; setting one is not.
        assert_eq!(
            RULES.write(8, &[0xFF, 0xF0, 0x0F, 0x00], &[0x00, 0x00, 0x0F, 0x00]),
            Ok(8..12)
        );
        assert_eq!(
            RULES.write(8, &[0xFF, 0xF0, 0x0F, 0x00], &[0x00, 0xF8, 0x0F, 0x00]),
            Err(Violation::NotErased { offset: 9 })
        );
        // Flash that erases to 0x00 programs by setting bits.
        let zero = NorRules {
            erased: 0x00,
            ..RULES
        };
        assert_eq!(zero.write(0, &[0x0F; 4], &[0xFF; 4]), Ok(0..4));
        assert_eq!(
            zero.write(0, &[0x0F; 4], &[0x00; 4]),
            Err(Violation::NotErased { offset: 0 })
        );
        // ECC: a unit is programmed once between erases, even with compatible bits.
        let ecc = NorRules { ecc: true, ..RULES };
        assert_eq!(
            ecc.write(4, &[0xFF, 0xFF, 0xFF, 0xFE], &[0x00; 4]),
            Err(Violation::NotErased { offset: 4 })
        );
        assert_eq!(ecc.write(4, &[0xFF; 4], &[0x00; 4]), Ok(4..8));
    }
}
