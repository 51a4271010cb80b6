//! Where the slots and the metadata live in the component flash.
//!
//! ```text
//! component flash (the NorFlash the agent is given; offsets are relative to it)
//! ┌──────────────┬──────────────┬─ … ─┬────────────┬────────────┐
//! │ slot a       │ slot b       │     │ metadata 0 │ metadata 1 │
//! │ board.toml   │ board.toml   │     │ one sector │ one sector │
//! └──────────────┴──────────────┴─ … ─┴────────────┴────────────┘
//!                                     ^ first sector boundary after the last slot
//! ```
//!
//! The slots come from the board table (`[flash] slots` in board.toml). The board
//! table does not describe the metadata, so [`SlotLayout::from_board`] puts it in the
//! two sectors right after the last slot; [`SlotLayout::new`] places it anywhere else.
//! Every region starts and ends on a sector boundary (the board's `sector-size`, a
//! multiple of the flash driver's `ERASE_SIZE`), so erasing one never touches another.

use tern_core::board::{BoardTable, Slot};

use crate::error::LayoutError;
use crate::meta::RECORD_LEN;

/// The two component slots and the two metadata sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLayout {
    /// The component slots, A then B: name, offset and size.
    pub slots: [Slot; 2],
    /// Offset of the first of the two metadata sectors (the second follows it).
    pub metadata_offset: u32,
    /// The erase sector: the unit of every region, and the size of each metadata copy.
    pub sector_size: u32,
}

impl SlotLayout {
    /// The board's two slots, with the metadata in the two sectors after the last one.
    pub fn from_board(board: &BoardTable) -> Result<SlotLayout, LayoutError> {
        let &[a, b] = board.slots() else {
            return Err(LayoutError::SlotCount {
                found: board.slots().len(),
            });
        };
        let sector = board.sector_size().max(1);
        let end =
            (u64::from(a.offset) + u64::from(a.size)).max(u64::from(b.offset) + u64::from(b.size));
        let metadata_offset = end.div_ceil(u64::from(sector)) * u64::from(sector);
        let metadata_offset =
            u32::try_from(metadata_offset).map_err(|_| LayoutError::OutOfFlash {
                region: "metadata",
                end: metadata_offset,
                capacity: 0,
            })?;
        Ok(SlotLayout {
            slots: [a, b],
            metadata_offset,
            sector_size: board.sector_size(),
        })
    }

    /// Explicit slots and metadata placement.
    pub fn new(slots: [Slot; 2], metadata_offset: u32, sector_size: u32) -> SlotLayout {
        SlotLayout {
            slots,
            metadata_offset,
            sector_size,
        }
    }

    /// Offset of metadata copy `i` (0 or 1).
    pub fn metadata_sector(&self, i: usize) -> u32 {
        self.metadata_offset + i as u32 * self.sector_size
    }

    /// Bytes from the start of the flash to the end of the last region.
    pub fn end(&self) -> u64 {
        let meta_end = u64::from(self.metadata_offset) + 2 * u64::from(self.sector_size);
        self.slots
            .iter()
            .map(|s| u64::from(s.offset) + u64::from(s.size))
            .fold(meta_end, u64::max)
    }

    /// Checks the layout against a flash of `capacity` bytes with these units.
    pub fn validate(
        &self,
        capacity: usize,
        erase_size: usize,
        write_size: usize,
    ) -> Result<(), LayoutError> {
        let sector = self.sector_size;
        if sector == 0 || erase_size == 0 || !(sector as usize).is_multiple_of(erase_size) {
            return Err(LayoutError::SectorSize {
                sector,
                erase: erase_size,
            });
        }
        let regions = [
            (
                "slot a",
                u64::from(self.slots[0].offset),
                u64::from(self.slots[0].size),
            ),
            (
                "slot b",
                u64::from(self.slots[1].offset),
                u64::from(self.slots[1].size),
            ),
            (
                "metadata",
                u64::from(self.metadata_offset),
                2 * u64::from(sector),
            ),
        ];
        for &(region, offset, size) in &regions {
            if size == 0 || offset % u64::from(sector) != 0 || size % u64::from(sector) != 0 {
                return Err(LayoutError::Misaligned {
                    region,
                    offset: offset as u32,
                    size: size as u32,
                    sector,
                });
            }
            if offset + size > capacity as u64 {
                return Err(LayoutError::OutOfFlash {
                    region,
                    end: offset + size,
                    capacity,
                });
            }
        }
        for (i, &(first, o1, s1)) in regions.iter().enumerate() {
            for &(second, o2, s2) in &regions[i + 1..] {
                if o1 < o2 + s2 && o2 < o1 + s1 {
                    return Err(LayoutError::Overlap { first, second });
                }
            }
        }
        let record = RECORD_LEN.div_ceil(write_size.max(1)) * write_size.max(1);
        if record > sector as usize {
            return Err(LayoutError::RecordTooLarge { record, sector });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    fn slot(name: &'static str, offset: u32, size: u32) -> Slot {
        Slot { name, offset, size }
    }

    fn layout() -> SlotLayout {
        SlotLayout::new([slot("a", 0, 8192), slot("b", 8192, 8192)], 16384, 4096)
    }

    #[test]
    fn a_good_layout_validates() {
        layout().validate(24576, 4096, 4).unwrap();
        layout().validate(24576, 1024, 8).unwrap();
        assert_eq!(layout().end(), 24576);
        assert_eq!(layout().metadata_sector(1), 20480);
    }

    #[test]
    fn every_layout_mistake_is_named() {
        assert_eq!(
            layout().validate(20480, 4096, 4),
            Err(LayoutError::OutOfFlash {
                region: "metadata",
                end: 24576,
                capacity: 20480
            })
        );
        assert_eq!(
            layout().validate(24576, 3000, 4),
            Err(LayoutError::SectorSize {
                sector: 4096,
                erase: 3000
            })
        );
        let mut l = layout();
        l.slots[1].offset = 4096;
        assert_eq!(
            l.validate(24576, 4096, 4),
            Err(LayoutError::Overlap {
                first: "slot a",
                second: "slot b"
            })
        );
        let mut l = layout();
        l.metadata_offset = 100;
        assert!(matches!(
            l.validate(24576, 4, 4),
            Err(LayoutError::Misaligned {
                region: "metadata",
                ..
            })
        ));
        let l = SlotLayout::new([slot("a", 0, 64), slot("b", 64, 64)], 128, 64);
        assert_eq!(
            l.validate(256, 64, 128),
            Err(LayoutError::RecordTooLarge {
                record: 128,
                sector: 64
            })
        );
    }
}
