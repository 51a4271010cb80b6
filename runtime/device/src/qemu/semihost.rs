//! Files on the machine running QEMU, through Arm semihosting: the component flash's
//! backing file and the simulated sensor feed.
//!
//! Semihosting traps into the debugger or emulator (QEMU with
//! `-semihosting-config enable=on,target=native`); without one attached every call
//! here would hang, so only the QEMU board uses it.

use cortex_m_semihosting::{nr, syscall};

/// Why a host file operation failed. Semihosting reports no error codes we rely on:
/// the operation and the file say enough to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum HostIoError {
    /// The host refused to open the file (missing, or no permission).
    Open,
    /// Fewer bytes than asked for could be read (the file is shorter).
    Read,
    /// The host did not take every byte written.
    Write,
    /// Moving to the offset failed.
    Seek,
    /// The host could not tell the file's length.
    Length,
}

impl core::fmt::Display for HostIoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HostIoError::Open => "the host could not open the file",
            HostIoError::Read => "the host file is shorter than expected",
            HostIoError::Write => "the host did not take every byte written",
            HostIoError::Seek => "the host could not seek in the file",
            HostIoError::Length => "the host could not tell the file's length",
        })
    }
}

/// How to open a host file.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write, created (or truncated) empty.
    Create,
}

/// An open host file. Closed on drop.
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    /// Opens `name`, a NUL-terminated path relative to QEMU's working directory.
    pub fn open(name: &core::ffi::CStr, mode: Mode) -> Result<HostFile, HostIoError> {
        let mode = match mode {
            Mode::Read => nr::open::R_BINARY,
            Mode::ReadWrite => nr::open::RW_BINARY,
            Mode::Create => nr::open::RW_TRUNC_BINARY,
        };
        let bytes = name.to_bytes();
        // SAFETY: SYS_OPEN reads `len` bytes of the NUL-terminated name we pass.
        let handle = unsafe { syscall!(OPEN, bytes.as_ptr(), mode, bytes.len()) };
        if handle as isize == -1 {
            return Err(HostIoError::Open);
        }
        Ok(HostFile { handle })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> Result<usize, HostIoError> {
        // SAFETY: SYS_FLEN only takes the handle.
        let len = unsafe { syscall!(FLEN, self.handle) };
        if len as isize == -1 {
            return Err(HostIoError::Length);
        }
        Ok(len)
    }

    /// Fills `buf` from byte `offset` of the file.
    pub fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), HostIoError> {
        self.seek(offset)?;
        // SAFETY: SYS_READ writes at most `len` bytes into `buf`, which we own mutably.
        let not_read = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        if not_read != 0 {
            return Err(HostIoError::Read);
        }
        Ok(())
    }

    /// Writes `data` at byte `offset` of the file.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<(), HostIoError> {
        self.seek(offset)?;
        // SAFETY: SYS_WRITE reads `len` bytes from `data`.
        let not_written = unsafe { syscall!(WRITE, self.handle, data.as_ptr(), data.len()) };
        if not_written != 0 {
            return Err(HostIoError::Write);
        }
        Ok(())
    }

    fn seek(&mut self, offset: usize) -> Result<(), HostIoError> {
        // SAFETY: SYS_SEEK only takes the handle and the absolute offset.
        let r = unsafe { syscall!(SEEK, self.handle, offset) };
        if r != 0 {
            return Err(HostIoError::Seek);
        }
        Ok(())
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: SYS_CLOSE only takes the handle, which is not used again.
        unsafe {
            syscall!(CLOSE, self.handle);
        }
    }
}
