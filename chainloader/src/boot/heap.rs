//! The chainloader's heap: a bump allocator over a fixed array in .bss.
//!
//! The boot planning in `bootproto` builds small vectors (load plan, memory
//! map, boot information); they live from `prepare` until the handoff, so a
//! bump allocator fits. Freeing or growing the most recent block is done in
//! place (so short-lived scratch such as the inflater state is given back);
//! anything else freed stays used until the handoff. Running out returns a
//! null pointer, which `alloc` turns into its allocation-failure abort.
//!
//! Measured: booting a gzip kernel and two modules (one gzip) leaves 8.9 KiB
//! in use; the inflater's ~11 KiB state is freed again. 64 KiB is ample.
//!
//! The heap is in .bss, inside the chainloader's reserved range, so no
//! kernel segment, module or boot information can be placed over it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

pub const HEAP_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the chainloader is single-threaded and never allocates from an
// interrupt handler; the arena is only reached through `BumpHeap`.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; HEAP_SIZE]));

pub struct BumpHeap {
    /// Offset of the first free byte.
    next: AtomicUsize,
    /// Offset of the most recent allocation (for in-place free/grow).
    last: AtomicUsize,
}

impl BumpHeap {
    pub const fn new() -> Self {
        BumpHeap { next: AtomicUsize::new(0), last: AtomicUsize::new(usize::MAX) }
    }

    /// Bytes in use (for the progress display).
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    fn base(&self) -> usize {
        ARENA.0.get() as usize
    }
}

impl Default for BumpHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out lies inside ARENA, is aligned as asked,
// and does not overlap any live block: blocks are carved from `next`
// upwards, and `next` only moves back when the block right below it is freed.
unsafe impl GlobalAlloc for BumpHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let next = self.next.load(Ordering::Relaxed);
        let start = (base + next).next_multiple_of(layout.align()) - base;
        let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= HEAP_SIZE) else {
            return core::ptr::null_mut();
        };
        self.next.store(end, Ordering::Relaxed);
        self.last.store(start, Ordering::Relaxed);
        (base + start) as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        let off = ptr as usize - self.base();
        if off == self.last.load(Ordering::Relaxed) {
            self.next.store(off, Ordering::Relaxed);
            self.last.store(usize::MAX, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let off = ptr as usize - self.base();
        if off == self.last.load(Ordering::Relaxed) && off + new_size <= HEAP_SIZE {
            self.next.store(off + new_size, Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: as GlobalAlloc::realloc's default: new block, copy, free old.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[global_allocator]
pub static HEAP: BumpHeap = BumpHeap::new();
