//! `Memory`: what an engine implements so that values can be lifted and lowered.

use crate::{AbiError, ResourceId};

/// The guest instance as lifting and lowering see it: its linear memory, its
/// `cabi_realloc`, and its table of resource handles.
///
/// An engine implements this over its store (for wasmi, the `Memory` export and the
/// `cabi_realloc` export of the instance in a `Caller` or `Store`). The crate's own
/// errors convert into `Error` through `From<AbiError>`, so an engine can keep its
/// traps (a `cabi_realloc` that runs out of fuel) in its own error type and still
/// receive every ABI error.
pub trait Memory {
    /// The engine's error: an [`AbiError`] or a trap of the guest.
    type Error: From<AbiError>;

    /// The size of linear memory in bytes (it may grow while `cabi_realloc` runs, so
    /// this is asked again after each call).
    fn size(&self) -> u64;

    /// Copies `buf.len()` bytes at `offset` out of linear memory. The range was checked
    /// against [`size`](Memory::size) before; an implementation still fails with
    /// [`AbiError::OutOfBounds`] past the end (see [`check_range`](crate::check_range))
    /// rather than panic.
    fn read(&self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Copies `bytes` into linear memory at `offset`, a range checked as for
    /// [`read`](Memory::read).
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Calls the guest's `cabi_realloc(old_ptr, old_size, align, new_size)` and returns
    /// its result. Lowering calls it as `(0, 0, align, size)` for each string, list and
    /// parameter area, in the spec's order, including for zero sizes. The result's
    /// alignment and bounds are checked by the caller.
    fn realloc(
        &mut self,
        old_ptr: u32,
        old_size: u32,
        align: u32,
        new_size: u32,
    ) -> Result<u32, Self::Error>;

    /// Lifts an `own<resource>` handle the guest passed: the spec removes it from the
    /// instance's handle table and traps if it is not an owned handle of `resource`.
    /// The result is what [`Val::Own`](crate::Val::Own) carries. By default the index
    /// passes through unchanged, for an engine that keeps handle tables itself.
    fn lift_own(&mut self, resource: ResourceId, index: u32) -> Result<u32, Self::Error> {
        let _ = resource;
        Ok(index)
    }

    /// Lifts a `borrow<resource>` handle: the spec checks it in the table and keeps it
    /// lent until the call returns. By default the index passes through unchanged.
    fn lift_borrow(&mut self, resource: ResourceId, index: u32) -> Result<u32, Self::Error> {
        let _ = resource;
        Ok(index)
    }

    /// Lowers an owned handle: the spec adds it to the instance's table and passes the
    /// new index. By default the value passes through unchanged.
    fn lower_own(&mut self, resource: ResourceId, handle: u32) -> Result<u32, Self::Error> {
        let _ = resource;
        Ok(handle)
    }

    /// Lowers a borrowed handle. By default the value passes through unchanged.
    fn lower_borrow(&mut self, resource: ResourceId, handle: u32) -> Result<u32, Self::Error> {
        let _ = resource;
        Ok(handle)
    }
}

/// Checks the spec's `trap_if`s on a pointer the guest gave or `cabi_realloc` returned:
/// alignment, then that `len` bytes from it stay below 4 GiB and inside memory. Done
/// before anything is allocated for the bytes, so a length the guest made up costs
/// the host nothing.
pub(crate) fn check_pointer<M: Memory + ?Sized>(
    mem: &M,
    what: &'static str,
    ptr: u32,
    align: u32,
    len: u64,
) -> Result<(), AbiError> {
    if !ptr.is_multiple_of(align.max(1)) {
        return Err(AbiError::Misaligned { what, ptr, align });
    }
    let end = u64::from(ptr) + len;
    if end > 1 << 32 {
        return Err(AbiError::AddressOverflow { ptr, len });
    }
    let memory_len = mem.size();
    if end > memory_len {
        return Err(AbiError::OutOfBounds {
            ptr,
            len,
            memory_len,
        });
    }
    Ok(())
}

/// A zeroed buffer of `len` bytes, or [`AbiError::OutOfHostMemory`]: the sizes come
/// from the guest, so allocation failure must be an error, not an abort.
pub(crate) fn zeroed(len: u64) -> Result<alloc::vec::Vec<u8>, AbiError> {
    let oom = AbiError::OutOfHostMemory { bytes: len };
    let n = usize::try_from(len).map_err(|_| oom.clone())?;
    let mut buf = alloc::vec::Vec::new();
    buf.try_reserve_exact(n).map_err(|_| oom)?;
    buf.resize(n, 0);
    Ok(buf)
}

/// Room for values this small is taken on the stack when loading and storing.
pub(crate) const STACK_BUF: usize = 64;

/// The first `N` bytes of `bytes`.
pub(crate) fn le<const N: usize>(bytes: &[u8]) -> Result<[u8; N], AbiError> {
    bytes
        .first_chunk::<N>()
        .copied()
        .ok_or(AbiError::TypesMismatch)
}

/// `len` bytes at `offset` in `bytes`: a field or payload inside a value's bytes.
pub(crate) fn sub(bytes: &[u8], offset: u64, len: u32) -> Result<&[u8], AbiError> {
    let start = usize::try_from(offset).map_err(|_| AbiError::TypesMismatch)?;
    bytes
        .get(start..)
        .and_then(|b| b.get(..len as usize))
        .ok_or(AbiError::TypesMismatch)
}

/// `len` bytes at `offset` in `bytes`, to write.
pub(crate) fn sub_mut(bytes: &mut [u8], offset: u64, len: u32) -> Result<&mut [u8], AbiError> {
    let start = usize::try_from(offset).map_err(|_| AbiError::TypesMismatch)?;
    bytes
        .get_mut(start..)
        .and_then(|b| b.get_mut(..len as usize))
        .ok_or(AbiError::TypesMismatch)
}
