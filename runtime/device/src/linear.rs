//! The component's linear memory: one buffer set aside at boot, lent to one wasmi
//! instance at a time (`tern_wasmi::memory`), so it never lives on the heap, where
//! wasmi's growing copies would need about twice the memory limit.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use tern_wasmi::memory::StaticMemory;

/// The buffer and whether an instance holds it.
pub struct LinearMemory {
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
    taken: AtomicBool,
}

/// The device's linear memory; empty until [`crate::boot`] gives it its buffer.
pub static LINEAR: LinearMemory = LinearMemory {
    ptr: AtomicPtr::new(core::ptr::null_mut()),
    len: AtomicUsize::new(0),
    taken: AtomicBool::new(false),
};

impl LinearMemory {
    /// Hands over the buffer (zeroed here, so that it is initialised memory). Called
    /// once, by [`crate::boot`], which runs once.
    pub(crate) fn init(&self, buffer: &'static mut [MaybeUninit<u8>]) {
        for b in buffer.iter_mut() {
            b.write(0);
        }
        self.len.store(buffer.len(), Ordering::Relaxed);
        self.ptr
            .store(buffer.as_mut_ptr().cast::<u8>(), Ordering::Release);
    }

    /// Whether [`crate::boot`] has given it a buffer.
    pub fn is_ready(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }
}

impl StaticMemory for LinearMemory {
    fn take(&self) -> Option<&'static mut [u8]> {
        let ptr = self.ptr.load(Ordering::Acquire);
        if ptr.is_null() || self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: `ptr..ptr+len` is the `&'static mut` buffer `init` was given (and
        // zeroed, so initialised) and nothing else refers to it: `taken` makes this
        // the only live reference until `give_back`, which tern-wasmi calls only after
        // the store that held this reference has been dropped.
        Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    fn give_back(&self) {
        self.taken.store(false, Ordering::Release);
    }
}
