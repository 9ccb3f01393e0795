//! The machine's memory map (BIOS E820) and a small region allocator over it.
//!
//! Two views of the same E820 data are needed:
//! * what the kernel is told (MBI tags 4 and 6): GRUB 2 hands over its own
//!   *sanitised* map, produced by a sweep over the firmware entries that sorts
//!   them, resolves overlaps and joins touching entries of the same type.
//!   [`sanitize`] reproduces that sweep so that the kernel gets what GRUB
//!   would give it for the same firmware; [`meminfo`] derives `mem_lower` /
//!   `mem_upper` from it the way GRUB does.
//! * where the loader may write: [`Allocator`] starts from the usable (type 1)
//!   RAM below 4 GiB, page-aligned inwards, and hands out or reserves ranges.

use alloc::vec::Vec;

/// E820 type of RAM the OS may use.
pub const E820_RAM: u32 = 1;
/// E820 "reserved".
pub const E820_RESERVED: u32 = 2;

pub const PAGE: u64 = 0x1000;
pub const ONE_MIB: u64 = 0x10_0000;
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// One entry of the BIOS memory map (INT 15h, EAX=E820h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub base: u64,
    pub len: u64,
    pub kind: u32,
}

impl E820Entry {
    pub const fn new(base: u64, len: u64, kind: u32) -> Self {
        E820Entry { base, len, kind }
    }
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// A half-open physical address range `[start, end)`: the one range type of
/// the loader and of the boot information checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Self {
        Range { start, end }
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub fn overlaps(&self, o: &Range) -> bool {
        self.start < o.end && o.start < self.end
    }
    pub fn contains(&self, o: &Range) -> bool {
        self.start <= o.start && o.end <= self.end
    }
    /// Printed in Rust's notation, `0x100000..0x2c3000`, as the reference
    /// kernel and the boot information checker print ranges.
    pub fn dotted(self) -> Dotted {
        Dotted(self)
    }
}

/// See [`Range::dotted`].
pub struct Dotted(Range);

impl core::fmt::Display for Dotted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}..{:#x}", self.0.start, self.0.end)
    }
}

impl core::fmt::Display for Range {
    /// Printed as `0x100000-0x2c3000` (end exclusive), as in error messages.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end)
    }
}

/// The memory map as GRUB 2 gives it to a Multiboot2 kernel.
///
/// GRUB drops zero-length firmware entries, then sweeps over the start and
/// end points of all entries in address order (a start sorts before an end
/// at the same address, otherwise the firmware order is kept). At each point
/// the type in force is the one of the earliest-opened entry still open
/// (later overlapping entries queue behind it); a region is emitted whenever
/// that type changes. So entries come out sorted, overlaps are resolved, and
/// touching entries of the same type are merged into one.
pub fn sanitize(entries: &[E820Entry]) -> Vec<E820Entry> {
    // (position, is_end, type), stable-sorted by (position, is_end).
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(entries.len() * 2);
    for e in entries.iter().filter(|e| e.len != 0) {
        events.push((e.base, false, e.kind));
        events.push((e.base.wrapping_add(e.len), true, e.kind));
    }
    events.sort_by_key(|&(pos, is_end, _)| (pos, is_end));

    let mut out = Vec::new();
    // Open entries' types: [0] is the type in force; the rest queue, newest first.
    let mut open: Vec<u32> = Vec::new();
    let Some(&(first_pos, _, first_kind)) = events.first() else { return out };
    let mut last_addr = first_pos;
    let mut last_type: Option<u32> = Some(first_kind);
    for &(pos, is_end, kind) in &events {
        if is_end {
            if open.first() == Some(&kind) {
                open.remove(0);
            } else if let Some(i) = open.iter().skip(1).position(|&t| t == kind) {
                open.remove(i + 1);
            }
        } else if open.is_empty() {
            open.push(kind);
        } else {
            open.insert(1, kind);
        }
        let cur = open.first().copied();
        if cur != last_type {
            if let Some(t) = last_type {
                if pos != last_addr {
                    out.push(E820Entry::new(last_addr, pos - last_addr, t));
                }
            }
            last_type = cur;
            last_addr = pos;
        }
    }
    out
}

/// `mem_lower` and `mem_upper` in KiB for MBI tag 4, computed as GRUB does
/// from the sanitised map: lower is the usable region starting at 0 (at most
/// 1 MiB), upper is how far the usable region containing 1 MiB reaches
/// beyond 1 MiB.
pub fn meminfo(sanitized: &[E820Entry]) -> (u32, u32) {
    let mut lower = 0u64;
    let mut upper = 0u64;
    for e in sanitized.iter().filter(|e| e.kind == E820_RAM) {
        if e.base == 0 {
            lower = e.len;
        }
        if e.base <= ONE_MIB && e.end() > ONE_MIB {
            upper = e.end() - ONE_MIB;
        }
    }
    let lower = lower.min(ONE_MIB);
    ((lower / 1024) as u32, (upper / 1024).min(u32::MAX as u64) as u32)
}

/// Usable RAM below 4 GiB: type-1 regions of the sanitised map, trimmed to
/// whole pages (a partial page may be shared with firmware data).
pub fn usable_regions(entries: &[E820Entry]) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for e in sanitize(entries).iter().filter(|e| e.kind == E820_RAM) {
        let start = align_up(e.base, PAGE);
        let end = align_down(e.end().min(FOUR_GIB), PAGE);
        if start < end {
            out.push(Range::new(start, end));
        }
    }
    out
}

pub fn align_up(v: u64, a: u64) -> u64 {
    if a <= 1 {
        return v;
    }
    v.div_ceil(a).saturating_mul(a)
}

pub fn align_down(v: u64, a: u64) -> u64 {
    if a <= 1 {
        return v;
    }
    v / a * a
}

/// Where the network side stages downloaded files: the largest usable region
/// above 16 MiB and below 4 GiB (the low 16 MiB stay free for kernels, which
/// are commonly linked at 1 MiB or 2 MiB); if there is none, the largest
/// usable region above 1 MiB. Returns `(base, len)`, page-aligned.
///
/// `reserved` lists ranges that must not be handed out (ROM data, the
/// chainloader itself); they are cut out first.
pub fn staging_area(entries: &[E820Entry], reserved: &[Range]) -> Option<(u64, u64)> {
    let mut a = Allocator::new(entries);
    for r in reserved {
        a.remove(*r);
    }
    let pick = |floor: u64| {
        a.free
            .iter()
            .map(|r| Range::new(r.start.max(floor), r.end))
            .filter(|r| !r.is_empty())
            // Largest first; among equals the highest.
            .max_by_key(|r| (r.len(), r.start))
    };
    pick(16 * ONE_MIB).or_else(|| pick(ONE_MIB)).map(|r| (r.start, r.len()))
}

/// Which end of a window an allocation should come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    Low,
    High,
}

/// Why a range could not be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Part of the range is not usable RAM below 4 GiB (E820 says otherwise).
    NotUsableRam,
    /// Part of the range is usable RAM but already reserved for `what`.
    Reserved { range: Range, what: &'static str },
}

/// Free-range bookkeeping over usable RAM below 4 GiB.
#[derive(Clone, Debug)]
pub struct Allocator {
    /// Sorted, disjoint free ranges.
    free: Vec<Range>,
    /// Usable RAM as E820 gave it (to tell "not RAM" from "taken").
    usable: Vec<Range>,
    /// What was reserved, and why (for error messages).
    taken: Vec<(Range, &'static str)>,
    /// The model of GRUB's heap (see [`Allocator::reserve_grub_chunk`]):
    /// where the free block at the start of GRUB's heap region begins.
    grub_region: Option<u64>,
}

/// GRUB's heap granule on i386 (`GRUB_MM_ALIGN`, include/grub/mm_private.h),
/// which is also the size of its region and block headers.
pub const GRUB_MM_ALIGN: u64 = 16;

impl Allocator {
    pub fn new(entries: &[E820Entry]) -> Self {
        let usable = usable_regions(entries);
        Allocator { free: usable.clone(), usable, taken: Vec::new(), grub_region: None }
    }

    /// Starts modelling GRUB's heap: GRUB 2 i386-pc makes the usable RAM
    /// from 1 MiB up one heap region (`grub_machine_init`) and takes its own
    /// allocations from the top; its relocator carves kernels, sections,
    /// modules and the boot information out of that region's free blocks.
    /// `at` is where the region starts (the first free byte at or above it).
    pub fn start_grub_heap(&mut self, at: u64) {
        self.grub_region = self.free.iter().map(|f| f.start).find(|&s| s >= at);
    }

    /// Reserves `r` for a chunk as GRUB's relocator takes it from its heap
    /// (`malloc_in_range`, grub-core/lib/relocator.c), so that later chunks
    /// land where GRUB puts them:
    ///
    /// * a chunk starting before the end of the region header (16 bytes at
    ///   the region's start rounded up to 16) cuts the region
    ///   (`allocate_regstart`): the region restarts at the chunk's exact end,
    ///   and the few bytes before the chunk leave the heap;
    /// * any other chunk is taken out of a free block (`allocate_inreg`):
    ///   the free block after it starts at its end rounded up to 16, and a
    ///   gap before it too small for a block header leaves the heap.
    ///
    /// Without [`start_grub_heap`](Self::start_grub_heap), or below the
    /// region, this is [`reserve`](Self::reserve).
    pub fn reserve_grub_chunk(&mut self, r: Range, what: &'static str) -> Result<(), Conflict> {
        self.reserve_grub_chunk_beside(r, &[], what)
    }

    /// [`reserve_grub_chunk`](Self::reserve_grub_chunk) for one of several
    /// chunks at fixed addresses (an ELF kernel's segments): the rounding
    /// and the lost bytes never reach into `others`, which GRUB places at
    /// their addresses whatever its heap looks like.
    pub fn reserve_grub_chunk_beside(
        &mut self,
        r: Range,
        others: &[Range],
        what: &'static str,
    ) -> Result<(), Conflict> {
        self.check(r)?;
        let block = self.free.iter().find(|f| f.contains(&r)).copied();
        let (Some(region), Some(f)) = (self.grub_region, block) else {
            self.reserve_always(r, what);
            return Ok(());
        };
        if r.is_empty() || f.start < region && f.end <= region {
            self.reserve_always(r, what);
            return Ok(());
        }
        let first_block = f.start == region;
        let taken = if first_block && r.start < align_up(region, GRUB_MM_ALIGN) + GRUB_MM_ALIGN {
            self.grub_region = Some(r.end);
            Range::new(f.start, r.end)
        } else {
            let end = align_up(r.end, GRUB_MM_ALIGN).min(f.end);
            if r.start - f.start < GRUB_MM_ALIGN {
                if first_block {
                    self.grub_region = None;
                }
                Range::new(f.start, end)
            } else {
                Range::new(r.start, end)
            }
        };
        let mut taken = taken;
        for o in others.iter().filter(|o| !o.is_empty() && **o != r) {
            if o.start >= r.end && o.start < taken.end {
                taken.end = o.start;
            }
            if o.end <= r.start && o.end > taken.start {
                taken.start = o.end;
            }
        }
        self.reserve_always(taken, what);
        Ok(())
    }

    pub fn free_ranges(&self) -> &[Range] {
        &self.free
    }

    /// Marks `r` as in use for `what`, whatever it overlaps (for firmware
    /// areas and the loader itself, which are simply never handed out).
    pub fn reserve_always(&mut self, r: Range, what: &'static str) {
        if r.is_empty() {
            return;
        }
        self.remove(r);
        self.taken.push((r, what));
    }

    /// Reserves `r` for `what` if all of it is free usable RAM.
    pub fn reserve(&mut self, r: Range, what: &'static str) -> Result<(), Conflict> {
        self.check(r)?;
        self.reserve_always(r, what);
        Ok(())
    }

    /// Whether `r` could be reserved now.
    pub fn check(&self, r: Range) -> Result<(), Conflict> {
        if r.is_empty() {
            return Ok(());
        }
        if let Some((t, what)) = self.taken.iter().find(|(t, _)| t.overlaps(&r)) {
            return Err(Conflict::Reserved { range: *t, what });
        }
        // Free ranges are disjoint and sorted; r must sit inside one of them
        // (touching free ranges are kept separate only across taken ones).
        if self.free.iter().any(|f| f.contains(&r)) {
            return Ok(());
        }
        if self.usable.iter().any(|u| u.contains(&r)) {
            // Usable but split by something taken (caught above) — or at a
            // page edge trimmed from a partial E820 page.
            return Err(Conflict::NotUsableRam);
        }
        Err(Conflict::NotUsableRam)
    }

    fn remove(&mut self, r: Range) {
        let mut out = Vec::with_capacity(self.free.len() + 1);
        for f in &self.free {
            if !f.overlaps(&r) {
                out.push(*f);
                continue;
            }
            if f.start < r.start {
                out.push(Range::new(f.start, r.start));
            }
            if r.end < f.end {
                out.push(Range::new(r.end, f.end));
            }
        }
        self.free = out;
    }

    /// Finds `len` free bytes at an `align`-aligned address with the block
    /// inside `[min, max_end)`, from the low or the high end, and reserves it.
    pub fn alloc(
        &mut self,
        len: u64,
        align: u64,
        min: u64,
        max_end: u64,
        pref: Preference,
        what: &'static str,
    ) -> Option<u64> {
        let base = self.find(len, align, min, max_end, pref)?;
        self.reserve_always(Range::new(base, base + len.max(1)), what);
        Some(base)
    }

    /// Like [`alloc`](Self::alloc) without reserving.
    pub fn find(&self, len: u64, align: u64, min: u64, max_end: u64, pref: Preference) -> Option<u64> {
        let align = align.max(1);
        let len = len.max(1);
        let fits = |f: &Range| -> Option<u64> {
            let lo = f.start.max(min);
            let hi = f.end.min(max_end);
            if hi < lo || hi - lo < len {
                return None;
            }
            match pref {
                Preference::Low => {
                    let b = align_up(lo, align);
                    (b.checked_add(len)? <= hi).then_some(b)
                }
                Preference::High => {
                    let b = align_down(hi - len, align);
                    (b >= lo).then_some(b)
                }
            }
        };
        match pref {
            Preference::Low => self.free.iter().find_map(fits),
            Preference::High => self.free.iter().rev().find_map(fits),
        }
    }
}

/// One move done at handoff: `len` bytes from `src` to `dst` (memmove
/// semantics), then `zero` bytes zeroed after them (bss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub src: u64,
    pub dst: u64,
    pub len: u64,
    pub zero: u64,
}

impl Move {
    pub fn source(&self) -> Range {
        Range::new(self.src, self.src + self.len)
    }
    pub fn dest(&self) -> Range {
        Range::new(self.dst, self.dst + self.len + self.zero)
    }
}

/// Orders the handoff copies so that none overwrites the source of a copy
/// still to come (a copy overlapping its *own* source is fine: it is a
/// memmove). Each byte is still copied once. On failure returns the index
/// (in the input order) of a copy that could not be scheduled, together
/// with the index of the copy whose source it would overwrite.
pub fn order_copies(copies: &mut Vec<Move>) -> Result<(), (usize, usize)> {
    let mut pending: Vec<(usize, Move)> = copies.iter().copied().enumerate().collect();
    let mut out = Vec::with_capacity(copies.len());
    while !pending.is_empty() {
        let ready = (0..pending.len()).find(|&i| {
            let d = pending[i].1.dest();
            pending.iter().enumerate().all(|(j, (_, o))| j == i || o.len == 0 || !d.overlaps(&o.source()))
        });
        match ready {
            Some(i) => out.push(pending.remove(i).1),
            None => {
                let (ia, a) = pending[0];
                let ib = pending.iter().skip(1).find(|(_, o)| a.dest().overlaps(&o.source())).map_or(ia, |p| p.0);
                return Err((ia, ib));
            }
        }
    }
    *copies = out;
    Ok(())
}

/// Where a module goes, as GRUB 2 places it: the lowest page-aligned free
/// block of usable RAM above 1 MiB (GRUB's own data occupies the memory
/// below), in load order, which puts modules right after the kernel. Kernels
/// that map only low memory early rely on that. If that block is where the
/// module was staged, it needs no copy. Reserves the result in `mem`, and in
/// `avoid` (the free-space view that also has staged downloads reserved).
pub fn place_module(mem: &mut Allocator, avoid: &mut Allocator, len: u64) -> Option<u64> {
    let at = mem.find(len, PAGE, ONE_MIB, FOUR_GIB, Preference::Low)?;
    let r = Range::new(at, at + len.max(1));
    mem.reserve_grub_chunk(r, "module").ok()?;
    avoid.reserve_always(r, "module");
    Some(at)
}

/// The memory map QEMU 7.2 / SeaBIOS gives with -m 512: the fixture of
/// this crate's memory-planning and Multiboot2 tests.
#[cfg(test)]
pub(crate) fn qemu_512m_e820() -> alloc::vec::Vec<E820Entry> {
    alloc::vec![
        E820Entry::new(0, 0x9fc00, 1),
        E820Entry::new(0x9fc00, 0x400, 2),
        E820Entry::new(0xf0000, 0x10000, 2),
        E820Entry::new(0x100000, 0x1fee0000, 1),
        E820Entry::new(0x1ffe0000, 0x20000, 2),
        E820Entry::new(0xfeffc000, 0x4000, 2),
        E820Entry::new(0xfffc0000, 0x40000, 2),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_clean_map() {
        assert_eq!(sanitize(&qemu_512m_e820()), qemu_512m_e820());
    }

    #[test]
    fn sanitize_sorts_merges_and_drops_empty() {
        let m = [
            E820Entry::new(0x100000, 0x100000, 1),
            E820Entry::new(0, 0x9f000, 1),
            E820Entry::new(0x200000, 0x100000, 1), // touches the first: merged
            E820Entry::new(0x500000, 0, 2),        // empty: dropped
            E820Entry::new(0x9f000, 0x1000, 2),
        ];
        assert_eq!(
            sanitize(&m),
            vec![
                E820Entry::new(0, 0x9f000, 1),
                E820Entry::new(0x9f000, 0x1000, 2),
                E820Entry::new(0x100000, 0x200000, 1),
            ]
        );
    }

    #[test]
    fn sanitize_overlap_first_opened_wins() {
        // A reserved hole inside RAM listed after it: the RAM entry opened
        // first, so it stays in force (GRUB's priority-0 behaviour).
        let m = [E820Entry::new(0x100000, 0x300000, 1), E820Entry::new(0x200000, 0x100000, 2)];
        assert_eq!(sanitize(&m), vec![E820Entry::new(0x100000, 0x300000, 1)]);
        // Reserved listed first and starting first: it wins while open.
        let m = [E820Entry::new(0x100000, 0x100000, 2), E820Entry::new(0x180000, 0x100000, 1)];
        assert_eq!(sanitize(&m), vec![E820Entry::new(0x100000, 0x100000, 2), E820Entry::new(0x200000, 0x80000, 1)]);
    }

    #[test]
    fn meminfo_as_grub() {
        let (lo, up) = meminfo(&sanitize(&qemu_512m_e820()));
        assert_eq!(lo, 639);
        assert_eq!(up, (0x1ffe0000 - 0x100000) / 1024);
        // RAM at 1 MiB only after a gap: upper is 0, as in GRUB.
        let m = [E820Entry::new(0, 0xa0000, 1), E820Entry::new(0x200000, 0x100000, 1)];
        assert_eq!(meminfo(&m), (640, 0));
    }

    #[test]
    fn usable_regions_page_aligned_and_below_4g() {
        let m = [E820Entry::new(0x800, 0x9f000, 1), E820Entry::new(0x100000, 0x1_0000_0000, 1)];
        assert_eq!(usable_regions(&m), vec![Range::new(0x1000, 0x9f000), Range::new(0x100000, 0x1_0000_0000)]);
    }

    #[test]
    fn staging_prefers_big_high_region() {
        let (b, l) = staging_area(&qemu_512m_e820(), &[]).unwrap();
        assert_eq!((b, l), (16 * ONE_MIB, 0x1ffe0000 - 16 * ONE_MIB));
        // Small machine: nothing above 16 MiB, falls back to above 1 MiB.
        let m = [E820Entry::new(0, 0x9fc00, 1), E820Entry::new(0x100000, 0xf00000, 1)];
        assert_eq!(staging_area(&m, &[]), Some((ONE_MIB, 0xf00000)));
        assert_eq!(staging_area(&m[..1], &[]), None);
    }

    #[test]
    fn allocator_reserve_and_find() {
        let mut a = Allocator::new(&qemu_512m_e820());
        a.reserve_always(Range::new(0x7000, 0x100000), "chainloader and firmware");
        assert_eq!(
            a.reserve(Range::new(0x90000, 0x91000), "x"),
            Err(Conflict::Reserved { range: Range::new(0x7000, 0x100000), what: "chainloader and firmware" })
        );
        assert_eq!(a.reserve(Range::new(0x1ffd0000, 0x1fff0000), "x"), Err(Conflict::NotUsableRam));
        a.reserve(Range::new(0x100000, 0x2c3000), "kernel").unwrap();
        let low = a.alloc(0x1800, 0x1000, 0, FOUR_GIB, Preference::Low, "m").unwrap();
        assert_eq!(low, 0);
        let m = a.alloc(0x1800, 0x1000, ONE_MIB, FOUR_GIB, Preference::Low, "m").unwrap();
        assert_eq!(m, 0x2c3000);
        let h = a.alloc(0x1800, 0x1000, 0, FOUR_GIB, Preference::High, "m").unwrap();
        assert_eq!(h, 0x1ffde000);
        assert!(a.find(0x4000_0000, 1, 0, FOUR_GIB, Preference::Low).is_none());
    }

    #[test]
    fn copies_are_ordered_to_spare_pending_sources() {
        // Kernel to 16 MiB, but module B's staged bytes sit there: B first.
        let k = Move { src: 0x3000000, dst: 0x1000000, len: 0x100000, zero: 0x10000 };
        let b = Move { src: 0x1080000, dst: 0x2000000, len: 0x1000, zero: 0 };
        let mut v = vec![k, b];
        order_copies(&mut v).unwrap();
        assert_eq!(v, vec![b, k]);
        // Overlap with its own source is a memmove: fine.
        let mut v = vec![Move { src: 0x1001000, dst: 0x1000000, len: 0x100000, zero: 0 }];
        assert!(order_copies(&mut v).is_ok());
        // A cycle cannot be ordered.
        let a = Move { src: 0x200000, dst: 0x300000, len: 0x1000, zero: 0 };
        let b = Move { src: 0x300000, dst: 0x200000, len: 0x1000, zero: 0 };
        assert_eq!(order_copies(&mut vec![a, b]), Err((0, 1)));
    }

    #[test]
    fn modules_go_right_after_the_kernel_like_grub() {
        let mut mem = Allocator::new(&qemu_512m_e820());
        mem.reserve_always(Range::new(0, ONE_MIB), "low memory");
        mem.reserve(Range::new(0x100000, 0x103690), "kernel").unwrap();
        let mut avoid = mem.clone();
        assert_eq!(place_module(&mut mem, &mut avoid, 0x17), Some(0x104000));
        assert_eq!(place_module(&mut mem, &mut avoid, 0x14b40), Some(0x105000));
        assert_eq!(place_module(&mut mem, &mut avoid, 1), Some(0x11a000));
        assert!(avoid.check(Range::new(0x104000, 0x105000)).is_err());
    }

    #[test]
    fn grub_heap_chunks_as_the_relocator_carves_them() {
        // conf-tests F2, measured under GRUB 2.06: an ELF kernel at 1 MiB
        // (0x100000-0x104db0), its sections, two modules; the boot
        // information (8-aligned) lands at 0x105020, not 0x105018, because
        // the first module was carved from inside a free block.
        let mut mem = Allocator::new(&qemu_512m_e820());
        mem.reserve_always(Range::new(0, ONE_MIB), "low memory");
        mem.start_grub_heap(ONE_MIB);
        let mut avoid = mem.clone();
        mem.reserve_grub_chunk(Range::new(0x100000, 0x104db0), "kernel").unwrap();
        for (len, at) in [(0x28, 0x104db0), (0x30, 0x104dd8), (0x28, 0x104e08)] {
            let s = mem.find(len, 8, ONE_MIB, FOUR_GIB, Preference::Low).unwrap();
            assert_eq!(s, at);
            mem.reserve_grub_chunk(Range::new(s, s + len), "section").unwrap();
        }
        assert_eq!(place_module(&mut mem, &mut avoid, 0x17), Some(0x105000));
        assert_eq!(place_module(&mut mem, &mut avoid, 10000), Some(0x106000));
        assert_eq!(mem.find(1264, 8, ONE_MIB, FOUR_GIB, Preference::Low), Some(0x105020));

        // A kernel at 2 MiB: the region start stays at 1 MiB, so the first
        // module cuts the region there and the boot information follows it
        // exactly (GRUB: module 0x100000, boot information 0x100018).
        let mut mem = Allocator::new(&qemu_512m_e820());
        mem.reserve_always(Range::new(0, ONE_MIB), "low memory");
        mem.start_grub_heap(ONE_MIB);
        let mut avoid = mem.clone();
        mem.reserve_grub_chunk(Range::new(0x200000, 0x201800), "kernel").unwrap();
        assert_eq!(place_module(&mut mem, &mut avoid, 0x17), Some(0x100000));
        assert_eq!(place_module(&mut mem, &mut avoid, 10000), Some(0x101000));
        assert_eq!(mem.find(1264, 8, ONE_MIB, FOUR_GIB, Preference::Low), Some(0x100018));
        // The kernel chunk in mid-region is padded to 16 bytes at its end.
        assert!(mem.check(Range::new(0x201800, 0x201810)).is_ok());
        let mut m2 = Allocator::new(&qemu_512m_e820());
        m2.start_grub_heap(ONE_MIB);
        m2.reserve_grub_chunk(Range::new(0x200000, 0x201808), "kernel").unwrap();
        assert!(m2.check(Range::new(0x201808, 0x201810)).is_err());
        assert!(m2.check(Range::new(0x201810, 0x201818)).is_ok());
        // Without the model, exact reservations.
        let mut m3 = Allocator::new(&qemu_512m_e820());
        m3.reserve_grub_chunk(Range::new(0x200000, 0x201808), "kernel").unwrap();
        assert!(m3.check(Range::new(0x201808, 0x201810)).is_ok());
    }

    #[test]
    fn grub_heap_rounding_never_blocks_the_next_segment() {
        // Two contiguous ELF segments in mid-region, the boundary not on 16
        // bytes: GRUB places both at their addresses.
        let mut mem = Allocator::new(&qemu_512m_e820());
        mem.start_grub_heap(ONE_MIB);
        let segs = [Range::new(0x200000, 0x201008), Range::new(0x201008, 0x203000)];
        for s in segs {
            mem.reserve_grub_chunk_beside(s, &segs, "kernel").unwrap();
        }
        // ...and one below the other, within a granule.
        let mut mem = Allocator::new(&qemu_512m_e820());
        mem.start_grub_heap(ONE_MIB);
        let segs = [Range::new(0x201008, 0x203000), Range::new(0x200ff0, 0x201000)];
        for s in segs {
            mem.reserve_grub_chunk_beside(s, &segs, "kernel").unwrap();
        }
    }
}
