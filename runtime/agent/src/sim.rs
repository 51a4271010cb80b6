//! A simulated NOR flash that enforces erase-before-write, counts every operation and
//! can cut power in the middle of any of them, tearing it the way real parts tear.
//!
//! MCUboot's simulator is the model: the slot manager is run once, then again with a
//! power cut at every flash operation, on several geometries, and after each cut a
//! fresh boot must find a valid component.
//!
//! # Bits, not bytes
//!
//! NOR flash can only *program* bits (move them away from the erased value) and can
//! only return them to the erased value by erasing a whole page. [`SimFlash`] works
//! in "programmed-bit space" (`byte ^ erased_value`), so the same rules hold for parts
//! that erase to `0xFF` (programming clears bits) and to `0x00` (programming sets
//! them): a write whose data would need a programmed bit to go back is refused with
//! [`SimError::NotErased`] and changes nothing.
//!
//! # Power cuts
//!
//! [`SimFlash::cut_power_at`] arms a cut at one operation (numbered from 0 since the
//! last boot; every `write` call is one operation, and every page of an `erase` is
//! one). That operation is torn and fails with [`SimError::PowerCut`]; from then on
//! every call, reads included, fails with [`SimError::PoweredOff`] until
//! [`SimFlash::reboot`] returns a fresh handle over the same contents.
//!
//! - A torn **write** programs a prefix of its write units completely, programs a
//!   random subset of the intended bits of the next unit, and leaves the rest as it
//!   was (the prefix may be empty: the cut came before the first unit).
//! - A torn **erase** of a page does one of three things, chosen at random:
//!   erases a prefix of the page, leaves a window of random garbage after it and the
//!   rest untouched (the cut came part-way through a linear erase); fills the whole
//!   page with random garbage (the cut came during the erase pulses); or leaves every
//!   bit of the page programmed (the cut came after the "pre-program" phase some parts
//!   run before erasing).
//!
//! With [`SimFlash::ecc`] the flash models parts with ECC (many STM32s): a write unit
//! may be written once between erases, and reading a unit whose write or erase was
//! torn fails with [`SimError::Ecc`] (an uncorrectable ECC error) until it is erased.
//!
//! The randomness comes from a fixed-seed generator mixed with the operation number,
//! so every run, and every failure, is reproducible.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::nor::{NorRules, Violation};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Why a [`SimFlash`] operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The offset or length is not a multiple of the write or erase unit.
    NotAligned,
    /// The range reaches past the end of the flash.
    OutOfBounds,
    /// The write would have to un-program a bit at this offset: erase first.
    NotErased {
        /// Absolute offset of the first byte that is not writable.
        offset: u32,
    },
    /// Power was cut during this operation; it was torn.
    PowerCut,
    /// Power was cut earlier; nothing works until [`SimFlash::reboot`].
    PoweredOff,
    /// An uncorrectable ECC error: the read covers a unit whose write or erase was
    /// torn (only with [`SimFlash::ecc`]).
    Ecc {
        /// Absolute offset of the first torn unit in the read.
        offset: u32,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::NotAligned => f.write_str("offset or length not aligned to the flash unit"),
            SimError::OutOfBounds => f.write_str("range past the end of the flash"),
            SimError::NotErased { offset } => write!(
                f,
                "write to {offset:#x} would un-program bits: the page must be erased first"
            ),
            SimError::PowerCut => f.write_str("power cut during this operation"),
            SimError::PoweredOff => f.write_str("powered off after a power cut; reboot"),
            SimError::Ecc { offset } => {
                write!(f, "uncorrectable ECC error at {offset:#x}: erase the page")
            }
        }
    }
}

impl From<Violation> for SimError {
    fn from(v: Violation) -> Self {
        match v {
            Violation::OutOfBounds => SimError::OutOfBounds,
            Violation::NotAligned => SimError::NotAligned,
            Violation::NotErased { offset } => SimError::NotErased { offset },
        }
    }
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimError::NotErased { .. }
            | SimError::PowerCut
            | SimError::PoweredOff
            | SimError::Ecc { .. } => NorFlashErrorKind::Other,
        }
    }
}

/// Operation counts since the last boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `read` calls.
    pub reads: u64,
    /// `write` calls (each one operation).
    pub writes: u64,
    /// Pages erased (each one operation).
    pub erases: u64,
    /// Bytes passed to successful or torn writes.
    pub bytes_written: u64,
}

impl Stats {
    /// Operations that can be cut: writes plus page erases.
    pub fn ops(&self) -> u64 {
        self.writes + self.erases
    }
}

/// A simulated NOR flash with `ERASE_SIZE`-byte pages and `WRITE_SIZE`-byte write
/// units (the `NorFlash` constants), erasing to `0xFF` or `0x00`.
#[derive(Clone, Debug)]
pub struct SimFlash<const ERASE_SIZE: usize, const WRITE_SIZE: usize> {
    mem: Vec<u8>,
    erased: u8,
    ecc: bool,
    /// With `ecc`: byte ranges torn by a cut, unreadable until erased.
    torn: Vec<core::ops::Range<usize>>,
    stats: Stats,
    cut_at: Option<u64>,
    powered: bool,
    seed: u64,
}

impl<const ERASE_SIZE: usize, const WRITE_SIZE: usize> SimFlash<ERASE_SIZE, WRITE_SIZE> {
    /// A fully erased flash of `capacity` bytes whose erased bytes read `erased`.
    ///
    /// # Panics
    ///
    /// If `erased` is neither `0xFF` nor `0x00`, `capacity` is not a whole number of
    /// pages, or a page is not a whole number of write units. A simulator set up
    /// wrongly is a bug in the test, not a condition to handle.
    pub fn new(capacity: usize, erased: u8) -> Self {
        assert!(
            erased == 0xFF || erased == 0x00,
            "erased value must be 0xFF or 0x00"
        );
        assert!(WRITE_SIZE > 0 && ERASE_SIZE > 0, "units must be non-zero");
        assert!(
            ERASE_SIZE.is_multiple_of(WRITE_SIZE),
            "page must hold whole write units"
        );
        assert!(
            capacity.is_multiple_of(ERASE_SIZE),
            "capacity must be whole pages"
        );
        assert!(
            u32::try_from(capacity).is_ok(),
            "capacity must fit u32 offsets"
        );
        SimFlash {
            mem: vec![erased; capacity],
            erased,
            ecc: false,
            torn: Vec::new(),
            stats: Stats::default(),
            cut_at: None,
            powered: true,
            seed: 0x7e72_6e5f_5349_4d31,
        }
    }

    /// The seed of the generator that decides how cut operations tear.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Models parts with ECC (many STM32s, for example): one write per write unit
    /// between erases (a write to a unit that is not fully erased fails, even if it
    /// would only program more bits), and reading a unit torn by a power cut fails
    /// with [`SimError::Ecc`] until its page is erased.
    pub fn ecc(mut self) -> Self {
        self.ecc = true;
        self
    }

    /// Cuts power during operation number `op` (0 = the next write or page erase since
    /// the last boot). Ops before it complete normally.
    pub fn cut_power_at(&mut self, op: u64) {
        self.cut_at = Some(op);
    }

    /// Operation counts since the last boot.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether power is still on (no cut has happened since the last boot).
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Power back on: a freshly booted handle over the same contents, with counters
    /// at zero, no cut armed and the same tearing seed. (Use `clone().reboot()` to boot
    /// a copy and keep the original image.)
    pub fn reboot(mut self) -> Self {
        self.stats = Stats::default();
        self.cut_at = None;
        self.powered = true;
        self
    }

    /// The raw contents, for tests that inspect or compare flash images.
    pub fn contents(&self) -> &[u8] {
        &self.mem
    }

    /// The raw contents, mutable: for tests that corrupt flash on purpose (bit rot,
    /// an attacker with a programmer).
    pub fn contents_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// The value erased bytes read.
    pub fn erased_value(&self) -> u8 {
        self.erased
    }

    /// Counts one operation; true if this is the one to tear.
    fn begin_op(&mut self) -> bool {
        let op = self.stats.ops();
        if self.cut_at == Some(op) {
            self.powered = false;
            true
        } else {
            false
        }
    }

    /// A generator for tearing operation `op`.
    fn rng(&self, op: u64) -> Rng {
        Rng::new(self.seed ^ op.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn check_powered(&self) -> Result<(), SimError> {
        if self.powered {
            Ok(())
        } else {
            Err(SimError::PoweredOff)
        }
    }

    /// This part's geometry and rules ([`crate::nor`]).
    fn rules(&self) -> NorRules {
        NorRules {
            capacity: self.mem.len(),
            erase_size: ERASE_SIZE,
            write_size: WRITE_SIZE,
            erased: self.erased,
            ecc: self.ecc,
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, SimError> {
        self.rules().range(offset, len).map_err(SimError::from)
    }

    /// Tears the erase of the page at `start`.
    fn tear_erase(&mut self, start: usize, op: u64) {
        let mut rng = self.rng(op);
        let page = &mut self.mem[start..start + ERASE_SIZE];
        match rng.below(4) {
            // Linear erase interrupted: erased prefix, garbage window, rest as it was.
            0 | 1 => {
                let erased_len = rng.below(ERASE_SIZE as u64 + 1) as usize;
                page[..erased_len].fill(self.erased);
                let window = (ERASE_SIZE - erased_len).min(256);
                let garbage = rng.below(window as u64 + 1) as usize;
                for b in &mut page[erased_len..erased_len + garbage] {
                    *b = rng.byte();
                }
            }
            // Interrupted during the erase pulses: every cell somewhere in between.
            2 => page.iter_mut().for_each(|b| *b = rng.byte()),
            // Interrupted after pre-programming: every bit programmed.
            _ => page.fill(!self.erased),
        }
    }
}

impl<const ERASE_SIZE: usize, const WRITE_SIZE: usize> ErrorType
    for SimFlash<ERASE_SIZE, WRITE_SIZE>
{
    type Error = SimError;
}

impl<const ERASE_SIZE: usize, const WRITE_SIZE: usize> ReadNorFlash
    for SimFlash<ERASE_SIZE, WRITE_SIZE>
{
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        self.check_powered()?;
        let range = self.range(offset, bytes.len())?;
        if let Some(t) = self
            .torn
            .iter()
            .find(|t| t.start < range.end && range.start < t.end)
        {
            return Err(SimError::Ecc {
                offset: t.start.max(range.start) as u32,
            });
        }
        self.stats.reads += 1;
        bytes.copy_from_slice(&self.mem[range]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const ERASE_SIZE: usize, const WRITE_SIZE: usize> NorFlash
    for SimFlash<ERASE_SIZE, WRITE_SIZE>
{
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        self.check_powered()?;
        let range = self.rules().erase(from, to)?;
        // Parts erase page by page; a cut lands in one page, the earlier ones are done.
        for page in range.step_by(ERASE_SIZE) {
            let op = self.stats.ops();
            let cut = self.begin_op();
            self.stats.erases += 1;
            self.torn
                .retain(|t| !(page <= t.start && t.end <= page + ERASE_SIZE));
            if cut {
                self.tear_erase(page, op);
                if self.ecc {
                    self.torn.push(page..page + ERASE_SIZE);
                }
                return Err(SimError::PowerCut);
            }
            self.mem[page..page + ERASE_SIZE].fill(self.erased);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.check_powered()?;
        // Checked whole before anything is touched: a refused write changes nothing.
        let range = self.rules().write_range(offset, bytes.len())?;
        let range = self.rules().write(offset, &self.mem[range], bytes)?;
        let erased = self.erased;
        let op = self.stats.ops();
        let cut = self.begin_op();
        self.stats.writes += 1;
        self.stats.bytes_written += bytes.len() as u64;
        let mut rng = self.rng(op);
        let mem = &mut self.mem[range.clone()];
        if cut {
            let units = bytes.len() / WRITE_SIZE;
            let done = rng.below(units as u64 + 1) as usize;
            let full = done * WRITE_SIZE;
            mem[..full].copy_from_slice(&bytes[..full]);
            if done < units {
                // The unit being programmed when power went: some of its bits made it.
                for (m, &n) in mem[full..full + WRITE_SIZE]
                    .iter_mut()
                    .zip(&bytes[full..full + WRITE_SIZE])
                {
                    let programmed = (*m ^ erased) | ((n ^ erased) & rng.byte());
                    *m = programmed ^ erased;
                }
                if self.ecc {
                    let start = range.start + full;
                    self.torn.push(start..start + WRITE_SIZE);
                }
            }
            return Err(SimError::PowerCut);
        }
        mem.copy_from_slice(bytes);
        Ok(())
    }
}

/// SplitMix64: small, fast and good enough to pick tear points.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    type Flash = SimFlash<256, 4>;

    #[test]
    fn programming_only_moves_bits_away_from_the_erased_value() {
        for erased in [0xFF, 0x00] {
            let mut f = Flash::new(1024, erased);
            let programmed = !erased;
            // Any value can be written onto erased cells.
            f.write(0, &[0x5A, 0xA5, 0x0F, 0xF0]).unwrap();
            // Writing the same again is fine; programming more bits is fine.
            f.write(0, &[0x5A, 0xA5, 0x0F, 0xF0]).unwrap();
            f.write(4, &[programmed; 4]).unwrap();
            // Un-programming a bit is refused and changes nothing.
            let before = f.contents().to_vec();
            assert_eq!(
                f.write(4, &[programmed, erased, programmed, programmed]),
                Err(SimError::NotErased { offset: 5 })
            );
            assert_eq!(f.contents(), &before[..]);
            f.erase(0, 256).unwrap();
            assert!(f.contents()[..256].iter().all(|&b| b == erased));
            f.write(4, &[programmed, erased, programmed, programmed])
                .unwrap();
            assert_eq!(f.stats().writes, 4);
            assert_eq!(f.stats().erases, 1);
        }
    }

    #[test]
    fn alignment_and_bounds_are_checked() {
        let mut f = Flash::new(1024, 0xFF);
        assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
        assert_eq!(f.write(0, &[0; 3]), Err(SimError::NotAligned));
        assert_eq!(f.write(1024, &[0; 4]), Err(SimError::OutOfBounds));
        assert_eq!(f.erase(0, 100), Err(SimError::NotAligned));
        assert_eq!(f.erase(0, 2048), Err(SimError::OutOfBounds));
        assert_eq!(f.read(1020, &mut [0; 8]), Err(SimError::OutOfBounds));
        assert_eq!(f.stats().ops(), 0);
    }

    #[test]
    fn ecc_refuses_a_second_write() {
        let mut f = Flash::new(1024, 0xFF).ecc();
        f.write(0, &[0xF0; 4]).unwrap();
        assert_eq!(
            f.write(0, &[0x00; 4]),
            Err(SimError::NotErased { offset: 0 })
        );
        f.write(4, &[0xFF, 0xFF, 0xFF, 0xFE]).unwrap();
    }

    #[test]
    fn with_ecc_torn_units_do_not_read_until_erased() {
        // Find a seed whose torn write stops inside the 64-byte write.
        let (mut f, torn_at) = (0..64)
            .find_map(|seed| {
                let mut f = Flash::new(1024, 0xFF).ecc().with_seed(seed);
                f.cut_power_at(0);
                f.write(256, &[0x00; 64]).unwrap_err();
                let mut f = f.reboot();
                let at = (256u32..320)
                    .step_by(4)
                    .find(|&o| f.read(o, &mut [0; 4]).is_err())?;
                Some((f, at))
            })
            .unwrap();
        assert_eq!(
            f.read(0, &mut [0; 1024]),
            Err(SimError::Ecc { offset: torn_at })
        );
        f.read(0, &mut [0; 256]).unwrap();
        f.erase(256, 512).unwrap();
        f.read(0, &mut [0; 1024]).unwrap();
        // A torn erase leaves the whole page unreadable.
        f.cut_power_at(1);
        f.erase(0, 256).unwrap_err();
        let mut f = f.reboot();
        assert_eq!(f.read(100, &mut [0; 1]), Err(SimError::Ecc { offset: 100 }));
    }

    #[test]
    fn a_cut_tears_one_operation_and_powers_off_until_reboot() {
        let mut f = Flash::new(1024, 0xFF);
        f.cut_power_at(2);
        f.write(0, &[0; 4]).unwrap();
        f.erase(0, 512).unwrap_err(); // page 0 is op 1, page 1 (op 2) is cut
        assert!(!f.is_powered());
        assert_eq!(f.contents()[..256], [0xFF; 256]);
        assert_eq!(f.read(0, &mut [0; 4]), Err(SimError::PoweredOff));
        assert_eq!(f.write(0, &[0; 4]), Err(SimError::PoweredOff));
        let mut g = f.reboot();
        assert!(g.is_powered());
        assert_eq!(g.stats(), Stats::default());
        g.read(0, &mut [0; 4]).unwrap();
    }

    #[test]
    fn a_torn_write_only_programs_a_subset_of_the_intended_bits() {
        for erased in [0xFF, 0x00] {
            for op_seed in 0..200 {
                let mut f = Flash::new(1024, erased).with_seed(op_seed);
                let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
                f.cut_power_at(0);
                assert_eq!(f.write(0, &data), Err(SimError::PowerCut));
                for (&got, &want) in f.contents().iter().zip(&data) {
                    let (g, w) = (got ^ erased, want ^ erased);
                    assert_eq!(
                        g & !w,
                        0,
                        "a torn write programmed a bit it was not asked to"
                    );
                }
                assert!(f.contents()[64..].iter().all(|&b| b == erased));
            }
        }
    }

    #[test]
    fn torn_erases_leave_varied_garbage() {
        let mut seen_untouched = false;
        let mut seen_changed = false;
        for seed in 0..64 {
            let mut f = Flash::new(512, 0xFF).with_seed(seed);
            f.write(0, &[0x12; 256]).unwrap();
            f.cut_power_at(1);
            assert_eq!(f.erase(0, 256), Err(SimError::PowerCut));
            let page = &f.contents()[..256];
            seen_untouched |= page[255] == 0x12;
            seen_changed |= page != [0x12; 256] && page != [0xFF; 256];
        }
        assert!(seen_untouched && seen_changed);
    }
}
