//! A file that behaves like NOR flash, for gateways: the same slot manager that runs
//! on a device's flash keeps a Linux gateway's component slots in a file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

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

    fn check(&self, offset: u32, len: usize) -> Result<u64, FileFlashError> {
        let end = (offset as usize)
            .checked_add(len)
            .ok_or(FileFlashError::OutOfBounds)?;
        if end > self.capacity {
            return Err(FileFlashError::OutOfBounds);
        }
        Ok(u64::from(offset))
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
        if !(from as usize).is_multiple_of(SECTOR)
            || !(to as usize).is_multiple_of(SECTOR)
            || to < from
        {
            return Err(FileFlashError::NotAligned);
        }
        let at = self.check(from, (to - from) as usize)?;
        let ones = vec![0xFF; (to - from) as usize];
        self.file
            .write_all_at(&ones, at)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| FileFlashError::Io(e.kind()))
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let at = self.check(offset, bytes.len())?;
        let mut current = vec![0u8; bytes.len()];
        self.file
            .read_exact_at(&mut current, at)
            .map_err(|e| FileFlashError::Io(e.kind()))?;
        // NOR semantics: a write can only clear bits.
        if current.iter().zip(bytes).any(|(c, b)| c & b != *b) {
            return Err(FileFlashError::NotErased);
        }
        self.file
            .write_all_at(bytes, at)
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
