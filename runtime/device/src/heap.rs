//! The global allocator: embedded-alloc's linked-list heap over memory the board crate gives it (sized from board.toml), counting its peak use.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// A heap that remembers how many bytes it has handed out, now and at most.
pub struct CountingHeap {
    heap: LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingHeap {
    const fn empty() -> Self {
        CountingHeap {
            heap: LlffHeap::empty(),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn grew(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Bytes allocated right now (as requested by callers, without allocator overhead).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes ever allocated at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: `alloc` and `dealloc` forward to `LlffHeap`, a correct `GlobalAlloc`, with the
// caller's own arguments; the counters only observe sizes and never affect pointers.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract).
        unsafe { self.heap.dealloc(ptr, layout) }
    }
    // No `realloc`: the default allocates the new block, copies and frees the old one,
    // which is what `LlffHeap` would do anyway, and through `alloc`/`dealloc` the peak
    // counts both blocks while they coexist (a growing wasm memory's worst moment).
}

/// The firmware's heap.
#[global_allocator]
pub static HEAP: CountingHeap = CountingHeap::empty();

/// Hands the heap its memory. Call once, first thing, before anything allocates.
pub fn init(memory: &'static mut [MaybeUninit<u8>]) {
    // SAFETY: `memory` is exclusively ours for the life of the program (a `&'static
    // mut`), and this runs before any allocation.
    unsafe { HEAP.heap.init(memory.as_mut_ptr() as usize, memory.len()) }
}
