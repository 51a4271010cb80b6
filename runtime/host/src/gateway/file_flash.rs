//! A file that behaves like NOR flash, for gateways: the same slot manager that runs
//! on a device's flash keeps a Linux gateway's component slots in a file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use tern_agent::nor::{NorRules, Violation};

/// Why a flash operation on the file failed.
#[derive(Debug)]
pub enum FileFlashError {
    /// Outside the file's capacity, or not aligned to the erase/write size.
    OutOfBounds,
    /// Not aligned to the erase size.
    NotAligned,
    /// Programming a bit that is not erased (NOR flash only clears bits).
    NotErased,
    /// The file could not be read or written.
    Io(std::io::ErrorKind),
}

impl NorFlashError for FileFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FileFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FileFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FileFlashError::NotErased | FileFlashError::Io(_) => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash in a file: erased bytes are 0xFF, erase works on 4 KiB sectors, writes
/// may only clear bits, and every write is flushed to disk before it returns.
pub struct FileFlash {
    file: File,
    capacity: usize,
}

/// Erase sector of file flash.
pub const SECTOR: usize = 4096;

impl FileFlash {
    /// Opens (or creates, erased) a flash file of `capacity` bytes.
    pub fn open(path: &Path, capacity: usize) -> std::io::Result<FileFlash> {
        if !capacity.is_multiple_of(SECTOR) {
            return Err(std::io::Error::other(format!(
                "flash capacity {capacity} is not a multiple of the {SECTOR}-byte sector"
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len() as usize;
        if len < capacity {
            // New space is erased flash.
            let fill = vec![0xFF; capacity - len];
            file.write_all_at(&fill, len as u64)?;
            file.sync_all()?;
        }
        Ok(FileFlash { file, capacity })
    }

    /// File flash's rules ([`tern_agent::nor`]): byte writes, 4 KiB sectors, 0xFF.
    fn rules(&self) -> NorRules {
        NorRules {
            capacity: self.capacity,
            erase_size: SECTOR,
            write_size: 1,
            erased: 0xFF,
            ecc: false,
        }
    }

    fn check(&self, offset: u32, len: usize) -> Result<u64, FileFlashError> {
        self.rules().range(offset, len)?;
        Ok(u64::from(offset))
    }
}

impl From<Violation> for FileFlashError {
    fn from(v: Violation) -> Self {
        match v {
            Violation::OutOfBounds => FileFlashError::OutOfBounds,
            Violation::NotAligned => FileFlashError::NotAligned,
            Violation::NotErased { .. } => FileFlashError::NotErased,
        }
    }
}

impl ErrorType for FileFlash {
    type Error = FileFlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let at = self.check(offset, bytes.len())?;
        self.file
            .read_exact_at(bytes, at)
            .map_err(|e| FileFlashError::Io(e.kind()))
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let r = self.rules().erase(from, to)?;
        let ones = vec![0xFF; r.len()];
        self.file
            .write_all_at(&ones, r.start as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| FileFlashError::Io(e.kind()))
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let r = self.rules().write_range(offset, bytes.len())?;
        let mut current = vec![0u8; bytes.len()];
        self.file
            .read_exact_at(&mut current, r.start as u64)
            .map_err(|e| FileFlashError::Io(e.kind()))?;
        self.rules().write(offset, &current, bytes)?;
        self.file
            .write_all_at(bytes, r.start as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| FileFlashError::Io(e.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_nor_and_persists() {
        let path = std::env::temp_dir().join(format!("tern-ff-{}.bin", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = FileFlash::open(&path, 2 * SECTOR).unwrap();
        let mut b = [0u8; 4];
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0xFF; 4]);
        f.write(0, &[0x0F, 0xF0, 0, 0xFF]).unwrap();
        assert!(matches!(
            f.write(0, &[0xFF]),
            Err(FileFlashError::NotErased)
        ));
        assert!(matches!(
            f.erase(1, SECTOR as u32),
            Err(FileFlashError::NotAligned)
        ));
        assert!(matches!(
            f.read(2 * SECTOR as u32 - 1, &mut b),
            Err(FileFlashError::OutOfBounds)
        ));
        drop(f);
        let mut f = FileFlash::open(&path, 2 * SECTOR).unwrap();
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0x0F, 0xF0, 0, 0xFF]);
        f.erase(0, SECTOR as u32).unwrap();
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0xFF; 4]);
        let _ = std::fs::remove_file(&path);
    }
}
