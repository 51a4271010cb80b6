//! The component flash: NOR flash semantics over a region of the board's memory map,
//! written through to a file on the QEMU host so that slots survive a restart.
//!
//! QEMU's MPS2 boards have no flash controller Tern can program, so board.toml puts the
//! component flash (`[flash] origin`, the slots and the two metadata sectors) in
//! memory the firmware is not linked into. This driver gives it the rules of NOR
//! flash, checked by the same [`NorRules`] as the gateway's file flash and the
//! power-fail suite's SimFlash: erase works on whole sectors and sets bytes to 0xFF, a
//! write may only clear bits (programming a bit that is not erased is an error, not a
//! silent AND), and every operation is bounds- and alignment-checked.
//!
//! Persistence: at boot the region is loaded from `tern-flash.bin` in QEMU's working
//! directory (semihosting); every erase and write goes to the region and then to the
//! file, before the operation returns. Killing QEMU therefore loses at most the
//! operation in progress, which is the power cut the slot manager is built to survive.
//! No file (first boot) means an erased chip.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use tern_agent::nor::{NorRules, Violation};

use super::semihost::{HostFile, HostIoError, Mode};

/// The backing file on the QEMU host, relative to QEMU's working directory.
pub const BACKING_FILE: &core::ffi::CStr = c"tern-flash.bin";

/// Smallest unit a write may cover (a word, as on Cortex-M internal flash).
const WRITE_SIZE: usize = 4;

/// What an erased byte reads as.
const ERASED: u8 = 0xFF;

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum FlashError {
    /// The range goes past the end of the component flash.
    OutOfBounds,
    /// The offset or length is not a multiple of the erase or write unit.
    NotAligned,
    /// A write would set a bit that is not erased: NOR flash only clears bits.
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
    /// The flash changed in memory but the backing file did not take it.
    Backing(HostIoError),
}

impl core::fmt::Display for FlashError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlashError::OutOfBounds => f.write_str("outside the component flash"),
            FlashError::NotAligned => f.write_str("not aligned to the erase or write unit"),
            FlashError::NotErased { offset } => {
                write!(f, "write to byte {offset}, which is not erased")
            }
            FlashError::Backing(e) => write!(f, "flash backing file: {e}"),
        }
    }
}

impl From<Violation> for FlashError {
    fn from(v: Violation) -> Self {
        match v {
            Violation::OutOfBounds => FlashError::OutOfBounds,
            Violation::NotAligned => FlashError::NotAligned,
            Violation::NotErased { offset } => FlashError::NotErased { offset },
        }
    }
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::NotErased { .. } | FlashError::Backing(_) => NorFlashErrorKind::Other,
        }
    }
}

/// How the flash came up at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Boot {
    /// Loaded from the backing file: the slots of the previous run.
    Restored,
    /// No backing file: an erased flash, and a new file.
    Fresh,
    /// The backing file has another size (the board's layout changed): erased, and
    /// the file rewritten.
    Resized {
        /// The file's length.
        found: usize,
    },
    /// The host refused the file: an erased flash that lives only until QEMU stops.
    Volatile(HostIoError),
}

/// The component flash, erased in `SECTOR`-byte sectors.
pub struct DeviceFlash<const SECTOR: usize> {
    mem: &'static mut [u8],
    file: Option<HostFile>,
}

impl<const SECTOR: usize> DeviceFlash<SECTOR> {
    /// Takes the component flash region `[origin, origin + bytes)` and loads it from
    /// the backing file.
    ///
    /// # Safety
    /// Call once: the region becomes this value's, and must not be used by anything
    /// else (memory.x keeps the linker out of it: board.toml's `[memory]` regions may
    /// not overlap it), and it must be memory the board has.
    pub unsafe fn take(origin: usize, bytes: usize) -> (Self, Boot) {
        // SAFETY: the caller guarantees exclusive use of the region, which board.toml
        // places in RAM QEMU provides and outside every linked region.
        let mem = unsafe { core::slice::from_raw_parts_mut(origin as *mut u8, bytes) };
        let flash_bytes = bytes;
        let (file, boot) = match HostFile::open(BACKING_FILE, Mode::ReadWrite) {
            Ok(mut f) => match f.len() {
                Ok(len) if len == flash_bytes => match f.read_at(0, mem) {
                    Ok(()) => (Some(f), Boot::Restored),
                    Err(e) => (None, Boot::Volatile(e)),
                },
                Ok(found) => {
                    drop(f);
                    match create(mem) {
                        Ok(f) => (Some(f), Boot::Resized { found }),
                        Err(e) => (None, Boot::Volatile(e)),
                    }
                }
                Err(e) => (None, Boot::Volatile(e)),
            },
            Err(_) => match create(mem) {
                Ok(f) => (Some(f), Boot::Fresh),
                Err(e) => (None, Boot::Volatile(e)),
            },
        };
        if matches!(boot, Boot::Volatile(_)) {
            mem.fill(ERASED);
        }
        (DeviceFlash { mem, file }, boot)
    }

    fn persist(&mut self, offset: usize, len: usize) -> Result<(), FlashError> {
        match &mut self.file {
            Some(f) => f
                .write_at(offset, &self.mem[offset..offset + len])
                .map_err(FlashError::Backing),
            None => Ok(()),
        }
    }

    /// This flash's rules ([`tern_agent::nor`]): word writes, `SECTOR`-byte sectors,
    /// erased to 0xFF, no ECC.
    fn rules(&self) -> NorRules {
        NorRules {
            capacity: self.mem.len(),
            erase_size: SECTOR,
            write_size: WRITE_SIZE,
            erased: ERASED,
            ecc: false,
        }
    }
}

/// Erases `mem` and writes it as a new backing file.
fn create(mem: &mut [u8]) -> Result<HostFile, HostIoError> {
    mem.fill(ERASED);
    let mut f = HostFile::open(BACKING_FILE, Mode::Create)?;
    f.write_at(0, mem)?;
    Ok(f)
}

impl<const SECTOR: usize> ErrorType for DeviceFlash<SECTOR> {
    type Error = FlashError;
}

impl<const SECTOR: usize> ReadNorFlash for DeviceFlash<SECTOR> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let r = self.rules().range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const SECTOR: usize> NorFlash for DeviceFlash<SECTOR> {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let r = self.rules().erase(from, to)?;
        self.mem[r.clone()].fill(ERASED);
        self.persist(r.start, r.len())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let r = self.rules().write_range(offset, bytes.len())?;
        self.rules().write(offset, &self.mem[r.clone()], bytes)?;
        self.mem[r.clone()].copy_from_slice(bytes);
        self.persist(r.start, r.len())
    }
}
