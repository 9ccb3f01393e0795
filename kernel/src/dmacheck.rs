//! The `dmacheck` switch: proves that the loader left no NIC doing DMA.
//!
//! After handoff no frame may reach memory: a PXE ROM that was not shut down
//! (UNDI_CLOSE, UNDI_SHUTDOWN) keeps its receive ring armed, and the NIC
//! writes every frame on the wire into it. The ROM's ring lives in memory
//! the firmware hides from the memory map (iPXE hides itself at the top of
//! RAM and in base memory), so the check watches two kinds of memory:
//! - usable RAM (base memory above the first page, and 32..96 MiB), filled
//!   with an address-dependent pattern;
//! - the holes of the memory map below 4 GiB, each at most 16 MiB (outside
//!   the VGA and ROM window 0xA0000..0x100000), hashed page by page.
//!
//! Then it prints `DMA-CHECK: ready`, waits for the test to flood the link
//! with broadcast frames and send a byte on COM1 (at most
//! [`WAIT_MS`]), and checks both: `DMA-CHECK: ok` or `DMA-CHECK: FAIL at
//! 0x...` with the first changed address.

use crate::arch;
use baremetal::serial::Uart16550;
use bootproto::mbi_check::{Mbi, Range};
use core::fmt::Write;

/// The pattern window in high usable RAM (what the loader staged there is
/// no longer needed once the kernel runs).
const HIGH: Range = Range { start: 32 << 20, end: 96 << 20 };
/// Base memory: above the IVT/BDA page, below the VGA window.
const LOW: Range = Range { start: 0x1000, end: 0xA0000 };
/// Never touched: VGA memory, option ROMs, the BIOS.
const LEGACY_WINDOW: Range = Range { start: 0xA0000, end: 0x10_0000 };
/// How long to wait for the test's byte after `ready`.
pub const WAIT_MS: u32 = 30_000;
const PAGE: u64 = 4096;
/// The largest gap of the memory map taken for hidden RAM.
const MAX_HOLE: u64 = 16 << 20;
/// Hidden pages that can be watched (32 MiB).
const MAX_PAGES: usize = 8192;

static HASHES: [core::sync::atomic::AtomicU64; MAX_PAGES] =
    [const { core::sync::atomic::AtomicU64::new(0) }; MAX_PAGES];

fn intersect(a: &Range, b: &Range) -> Option<Range> {
    let r = Range { start: a.start.max(b.start), end: a.end.min(b.end) };
    (r.start < r.end).then_some(r)
}

/// Up to 8 pattern ranges: usable RAM within LOW and HIGH, none touching
/// what the kernel must keep (its image, the MBI, modules).
fn pattern_ranges(mbi: &Mbi, keep: &[Range]) -> ([Range; 8], usize) {
    let mut out = [Range { start: 0, end: 0 }; 8];
    let mut n = 0;
    for e in mbi.mmap().filter(|e| e.typ == 1) {
        let usable = Range { start: e.base, end: e.base + e.len };
        for w in [LOW, HIGH] {
            if let Some(r) = intersect(&usable, &w) {
                if n < out.len() && !keep.iter().any(|k| k.overlaps(&r)) {
                    out[n] = r;
                    n += 1;
                }
            }
        }
    }
    (out, n)
}

/// The holes of the memory map below 4 GiB: gaps between two entries, each
/// at most [`MAX_HOLE`] (bigger ones are the PCI window, whose reads may
/// have side effects), outside the legacy window, as whole pages; at most
/// 16 of them. iPXE, for one, hides itself in such a gap (at the top of
/// RAM, below the BIOS's reserved area) and in base memory.
fn hidden_ranges(mbi: &Mbi) -> ([Range; 16], usize) {
    let mut entries = [Range { start: 0, end: 0 }; 64];
    let mut n = 0;
    for e in mbi.mmap() {
        if n < entries.len() && e.base < 1 << 32 {
            entries[n] = Range { start: e.base, end: (e.base + e.len).min(1 << 32) };
            n += 1;
        }
    }
    entries[..n].sort_unstable_by_key(|r| r.start);
    let mut out = [Range { start: 0, end: 0 }; 16];
    let mut m = 0;
    let mut cursor = 0u64;
    for e in &entries[..n] {
        if e.start > cursor && e.start - cursor <= MAX_HOLE {
            let gap = Range { start: cursor, end: e.start };
            for part in [
                Range { start: gap.start, end: gap.end.min(LEGACY_WINDOW.start) },
                Range { start: gap.start.max(LEGACY_WINDOW.end), end: gap.end },
            ] {
                let r = Range { start: part.start.next_multiple_of(PAGE), end: part.end & !(PAGE - 1) };
                if r.start < r.end && m < out.len() {
                    out[m] = r;
                    m += 1;
                }
            }
        }
        cursor = cursor.max(e.end);
    }
    (out, m)
}

fn pages(rs: &[Range]) -> impl Iterator<Item = u64> + '_ {
    rs.iter().flat_map(|r| (r.start..r.end).step_by(PAGE as usize))
}

/// Runs the check; prints its lines on `c`. True when nothing changed.
pub fn run(c: &mut Uart16550, mbi: &Mbi, kernel: Range) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    let mut keep = [mbi.range(), kernel, Range { start: 0, end: 0 }, Range { start: 0, end: 0 }];
    for (i, (m, _)) in mbi.modules().take(2).enumerate() {
        keep[2 + i] = m;
    }
    let (pat, np) = pattern_ranges(mbi, &keep);
    let pat = &pat[..np];
    let (hid, nh) = hidden_ranges(mbi);
    let hid = &hid[..nh];
    let npages = pages(hid).count();
    if npages > MAX_PAGES {
        let _ = writeln!(
            c,
            "DMA-CHECK: FAIL at 0x0 (more than {} MiB of hidden memory to watch)",
            (MAX_PAGES as u64 * PAGE) >> 20
        );
        return false;
    }
    for r in pat {
        arch::dma_pattern_fill(*r, &keep);
    }
    for (i, p) in pages(hid).enumerate() {
        HASHES[i].store(arch::dma_page_hash(p), Relaxed);
    }
    let pat_kib: u64 = pat.iter().map(|r| (r.end - r.start) >> 10).sum();
    let _ = write!(c, "kernel: dmacheck: pattern in {pat_kib} KiB of usable RAM");
    for r in pat {
        let _ = write!(c, " {}", r.dotted());
    }
    let _ = write!(c, "; {} KiB of memory the firmware hides, hashed:", (npages as u64 * PAGE) >> 10);
    for r in hid {
        let _ = write!(c, " {}", r.dotted());
    }
    let _ = writeln!(c);
    let _ =
        writeln!(c, "DMA-CHECK: ready (send any byte on COM1 when the flood is over; {} s at most)", WAIT_MS / 1000);
    let got = arch::wait_com1_byte(WAIT_MS);
    if !got {
        let _ = writeln!(c, "kernel: dmacheck: no byte after {} s; checking anyway", WAIT_MS / 1000);
    }
    for r in pat {
        if let Some((a, v)) = arch::dma_pattern_find_change(r.start, r.end) {
            let _ = writeln!(c, "DMA-CHECK: FAIL at {a:#x} (usable RAM: the pattern's byte is now {v:#04x})");
            return false;
        }
    }
    for (i, p) in pages(hid).enumerate() {
        if arch::dma_page_hash(p) != HASHES[i].load(Relaxed) {
            let _ = writeln!(c, "DMA-CHECK: FAIL at {p:#x} (a page of the memory the firmware hides changed)");
            return false;
        }
    }
    let _ = writeln!(
        c,
        "DMA-CHECK: ok ({pat_kib} KiB of pattern and {} KiB of hidden memory unchanged)",
        (npages as u64 * PAGE) >> 10
    );
    true
}
