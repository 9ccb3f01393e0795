//! The chainloader's heap: power-of-two size classes over a fixed array in
//! .bss.
//!
//! Every block is rounded up to a power of two (at least 16 bytes) and, when
//! freed, goes onto its class's free list, from which the next request of
//! that class is served; fresh blocks are carved from the arena bottom up.
//! That is simple enough to be obviously right, and it reuses memory across
//! retries (a failed download or boot attempt allocates the same sizes
//! again), at the price of up to 2x rounding. Running out returns a null
//! pointer, which `alloc` turns into its allocation-failure abort.
//!
//! Measured: booting a gzip kernel and two modules (one gzip) leaves about
//! 9 KiB in use by the boot planning; the inflater's ~11 KiB state is freed
//! again.
//!
//! The heap is in .bss, inside the chainloader's reserved range, so no
//! kernel segment, module or boot information can be placed over it.

use core::alloc::{GlobalAlloc, Layout};

pub const HEAP_SIZE: usize = 64 * 1024;
/// Classes 2^4 .. 2^(4+CLASSES-1) bytes; the largest covers the whole heap.
const MIN_SHIFT: u32 = 4;
const CLASSES: usize = 13;
const _: () = assert!(1 << (MIN_SHIFT as usize + CLASSES - 1) >= HEAP_SIZE);

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

/// The memory blocks are carved from. Only ever addressed through raw
/// pointers (`arena_base`), never through a reference: its blocks belong to
/// their owners, not to the heap's state.
static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

fn arena_base() -> usize {
    core::ptr::addr_of_mut!(ARENA) as usize
}

/// The allocator's bookkeeping, behind the lock.
struct State {
    /// Offset of the first never-used byte.
    next: usize,
    /// Per class: address of the first free block (0: none). A free block's
    /// first word holds the address of the next one.
    free: [usize; CLASSES],
}

pub struct ClassHeap(spin::Mutex<State>);

impl ClassHeap {
    const fn new() -> Self {
        ClassHeap(spin::Mutex::new(State { next: 0, free: [0; CLASSES] }))
    }

    /// Bytes ever carved from the arena (the high-water mark).
    pub fn used(&self) -> usize {
        self.0.lock().next
    }
}

/// The class index and block size for `layout`, or None if too large.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT).checked_next_power_of_two()?;
    let c = (size.trailing_zeros() - MIN_SHIFT) as usize;
    (c < CLASSES).then_some((c, size))
}

// SAFETY: a block handed out is `size` bytes inside the arena, aligned to
// min(size, 4096) >= layout.align() (the arena is 4096-aligned and blocks of
// a class are carved at multiples of that alignment), and belongs to one
// owner at a time: it is either carved fresh past `next` or popped from its
// class's free list, to which only `dealloc` of a block of that class adds.
unsafe impl GlobalAlloc for ClassHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((c, size)) = class(layout) else { return core::ptr::null_mut() };
        if layout.align() > 4096 {
            return core::ptr::null_mut();
        }
        // Never re-entered (no allocation from an exception handler); if it
        // were, failing beats spinning forever.
        let Some(mut st) = self.0.try_lock() else { return core::ptr::null_mut() };
        if st.free[c] != 0 {
            let b = st.free[c];
            // SAFETY: b is a free block of this class; its first word was
            // written by dealloc.
            st.free[c] = unsafe { (b as *const usize).read() };
            return b as *mut u8;
        }
        let base = arena_base();
        let start = st.next.next_multiple_of(size.min(4096));
        if start + size > HEAP_SIZE {
            return core::ptr::null_mut();
        }
        st.next = start + size;
        (base + start) as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((c, _)) = class(layout) else { return };
        let Some(mut st) = self.0.try_lock() else { return };
        // SAFETY: ptr is a live block of class c being given back, at least
        // 16 bytes and word-aligned, so its first word can hold the
        // free-list link; its owner no longer uses it.
        unsafe { (ptr as *mut usize).write(st.free[c]) };
        st.free[c] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing within the block's class needs no move.
        // SAFETY: the caller guarantees new_size with layout.align() is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(layout).map(|c| c.0) == class(new_layout).map(|c| c.0) {
            return ptr;
        }
        // SAFETY: as GlobalAlloc::realloc's default: new block, copy, free old.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[global_allocator]
pub static HEAP: ClassHeap = ClassHeap::new();
