//! Parsing and validation of a received Multiboot2 boot information
//! structure (MBI), as a kernel sees it. The reference kernel calls
//! [`check`] on what its loader handed over and prints the first problem;
//! everything here is plain `no_std` code without allocation, so it runs
//! before the kernel has a heap and is unit-tested on the host.

use crate::memmap::E820_RAM;
use core::fmt;

pub use super::tags::{tag, BOOTLOADER_MAGIC};
pub use crate::memmap::Range;

/// Byte offsets of the fields read here. Tag payload offsets count from the
/// end of the tag's 8-byte header (the body).
mod field {
    /// The fixed part at the start of the boot information.
    pub mod mbi {
        pub const TOTAL_SIZE: usize = 0;
        pub const FIRST_TAG: usize = 8;
    }
    /// The header every tag starts with.
    pub mod tag_header {
        pub const TYPE: usize = 0;
        pub const SIZE: usize = 4;
        pub const LEN: usize = 8;
    }
    pub mod module {
        pub const START: usize = 0;
        pub const END: usize = 4;
        pub const STRING: usize = 8;
    }
    pub mod meminfo {
        pub const LOWER: usize = 0;
        pub const UPPER: usize = 4;
        pub const LEN: usize = 8;
    }
    pub mod mmap {
        pub const ENTRY_SIZE: usize = 0;
        pub const ENTRY_VERSION: usize = 4;
        pub const ENTRIES: usize = 8;
    }
    pub mod mmap_entry {
        pub const BASE: usize = 0;
        pub const LEN: usize = 8;
        pub const TYPE: usize = 16;
        /// The specification's entry; a larger entry_size may add fields.
        pub const MIN_SIZE: usize = 24;
    }
    /// An ACPI 1.0 RSDP; 2.0 and later extend it.
    pub const RSDP_V1_LEN: usize = 20;
    pub const RSDP_V2_MIN_LEN: usize = 36;
}

/// The first problem found in a boot information structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    BadMagic(u32),
    Misaligned(u64),
    TotalSizeTooSmall(u32),
    /// Larger than a kernel is willing to read (its own limit).
    TotalSizeTooLarge(u32),
    TotalSizeNotMultipleOf8(u32),
    /// The tag at this offset does not fit in `total_size`.
    TagPastEnd {
        offset: usize,
        typ: u32,
        size: u32,
    },
    TagTooSmall {
        offset: usize,
        typ: u32,
        size: u32,
    },
    /// A string tag (command line, loader name, module string) lacks its NUL.
    Unterminated {
        offset: usize,
        typ: u32,
    },
    BadEndTag {
        offset: usize,
        size: u32,
    },
    TagsAfterEnd {
        offset: usize,
    },
    NoEndTag,
    MmapEntrySize {
        entry_size: u32,
    },
    MmapLength {
        size: u32,
        entry_size: u32,
    },
    NoMemoryMap,
    UsableOverlap(Range, Range),
    NoUsableRamAbove1M,
    ModuleEmptyOrReversed(Range),
    NotInUsableRam {
        what: &'static str,
        range: Range,
    },
    Overlap {
        a: &'static str,
        ra: Range,
        b: &'static str,
        rb: Range,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use Problem::*;
        match *self {
            BadMagic(m) => write!(f, "bad magic {m:#010x} (expected {BOOTLOADER_MAGIC:#010x})"),
            Misaligned(a) => write!(f, "MBI at {a:#x} is not 8-byte aligned"),
            TotalSizeTooSmall(s) => write!(f, "total_size {s} is too small for a header and an end tag"),
            TotalSizeTooLarge(s) => write!(f, "total_size {s} is implausibly large"),
            TotalSizeNotMultipleOf8(s) => write!(f, "total_size {s} is not a multiple of 8"),
            TagPastEnd { offset, typ, size } => {
                write!(f, "tag type {typ} at offset {offset} (size {size}) runs past total_size")
            }
            TagTooSmall { offset, typ, size } => {
                write!(f, "tag type {typ} at offset {offset} has size {size}, too small")
            }
            Unterminated { offset, typ } => {
                write!(f, "string in tag type {typ} at offset {offset} is not NUL-terminated")
            }
            BadEndTag { offset, size } => write!(f, "end tag at offset {offset} has size {size} (expected 8)"),
            TagsAfterEnd { offset } => write!(f, "bytes after the end tag at offset {offset}"),
            NoEndTag => write!(f, "no end tag"),
            MmapEntrySize { entry_size } => {
                write!(f, "memory map entry_size {entry_size} (expected >= 24, multiple of 8)")
            }
            MmapLength { size, entry_size } => write!(f, "memory map tag size {size} is not 16 + n * {entry_size}"),
            NoMemoryMap => write!(f, "no memory map (tag 6)"),
            UsableOverlap(a, b) => write!(f, "usable memory map entries {} and {} overlap", a.dotted(), b.dotted()),
            NoUsableRamAbove1M => write!(f, "no usable RAM above 1 MiB in the memory map"),
            ModuleEmptyOrReversed(r) => write!(f, "module {} ends before it starts", r.dotted()),
            NotInUsableRam { what, range } => write!(f, "{what} {} is not in usable RAM", range.dotted()),
            Overlap { a, ra, b, rb } => write!(f, "{a} {} overlaps {b} {}", ra.dotted(), rb.dotted()),
        }
    }
}

/// A little-endian field; bytes past the end of `b` read as 0, so that a
/// truncated boot information gives a verdict (a size of 0 is "too
/// small"), never a panic (found by fuzzing: a 2-byte MBI panicked).
fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = off.checked_add(i).and_then(|k| b.get(k)).copied().unwrap_or(0);
    }
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | u64::from(u32_at(b, off.saturating_add(4))) << 32
}

/// A string up to (not including) its NUL.
fn cstr(b: &[u8]) -> Option<&[u8]> {
    b.iter().position(|&c| c == 0).map(|n| &b[..n])
}

/// A string field up to its NUL, or all of it without one.
fn until_nul(b: &[u8]) -> &[u8] {
    cstr(b).unwrap_or(b)
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapEntry {
    pub base: u64,
    pub len: u64,
    pub typ: u32,
}

impl MmapEntry {
    pub fn range(&self) -> Range {
        Range { start: self.base, end: self.base.saturating_add(self.len) }
    }
}

/// A parsed tag. Only valid (checked) boot information yields these.
#[derive(Clone, Copy, Debug)]
pub enum Tag<'a> {
    Cmdline(&'a [u8]),
    LoaderName(&'a [u8]),
    Module {
        range: Range,
        string: &'a [u8],
    },
    BasicMeminfo {
        lower: u32,
        upper: u32,
    },
    Mmap {
        entry_size: u32,
        entry_version: u32,
        entries: &'a [u8],
    },
    /// Tag 14 (RSDP 1.0) or 15 (RSDP 2.0+): the copied RSDP bytes.
    Rsdp {
        typ: u32,
        rsdp: &'a [u8],
    },
    Other {
        typ: u32,
        body: &'a [u8],
    },
}

/// Memory map entries of a [`Tag::Mmap`].
pub fn mmap_entries(entry_size: u32, entries: &[u8]) -> impl Iterator<Item = MmapEntry> + '_ {
    use field::mmap_entry as f;
    let es = (entry_size as usize).max(f::MIN_SIZE);
    entries.chunks_exact(es).map(|e| MmapEntry {
        base: u64_at(e, f::BASE),
        len: u64_at(e, f::LEN),
        typ: u32_at(e, f::TYPE),
    })
}

/// A boot information structure that passed [`check`].
#[derive(Clone, Copy, Debug)]
pub struct Mbi<'a> {
    pub addr: u64,
    pub bytes: &'a [u8],
}

impl<'a> Mbi<'a> {
    pub fn range(&self) -> Range {
        Range { start: self.addr, end: self.addr.saturating_add(self.bytes.len() as u64) }
    }

    /// Every tag but the end tag, in order.
    pub fn tags(&self) -> impl Iterator<Item = Tag<'a>> + 'a {
        raw_tags(self.bytes)
            .filter_map(|r| r.ok())
            .filter(|(_, t, _)| *t != tag::END)
            .map(|(_, typ, body)| decode(typ, body))
    }

    pub fn cmdline(&self) -> Option<&'a [u8]> {
        self.tags().find_map(|t| if let Tag::Cmdline(s) = t { Some(s) } else { None })
    }

    pub fn mmap(&self) -> impl Iterator<Item = MmapEntry> + 'a {
        self.tags()
            .find_map(
                |t| if let Tag::Mmap { entry_size, entries, .. } = t { Some((entry_size, entries)) } else { None },
            )
            .into_iter()
            .flat_map(|(es, e)| mmap_entries(es, e))
    }

    pub fn modules(&self) -> impl Iterator<Item = (Range, &'a [u8])> + 'a {
        self.tags().filter_map(|t| if let Tag::Module { range, string } = t { Some((range, string)) } else { None })
    }
}

/// Reads a tag's body. Total, whatever the body's length (fields past its
/// end read as 0, a missing string as empty), although [`check`] lets only
/// bodies of at least [`min_body`] bytes through.
fn decode(typ: u32, body: &[u8]) -> Tag<'_> {
    match typ {
        tag::CMDLINE => Tag::Cmdline(until_nul(body)),
        tag::BOOT_LOADER_NAME => Tag::LoaderName(until_nul(body)),
        tag::MODULE => {
            use field::module as f;
            Tag::Module {
                range: Range { start: u32_at(body, f::START) as u64, end: u32_at(body, f::END) as u64 },
                string: until_nul(body.get(f::STRING..).unwrap_or(&[])),
            }
        }
        tag::BASIC_MEMINFO => {
            Tag::BasicMeminfo { lower: u32_at(body, field::meminfo::LOWER), upper: u32_at(body, field::meminfo::UPPER) }
        }
        tag::MMAP => {
            use field::mmap as f;
            Tag::Mmap {
                entry_size: u32_at(body, f::ENTRY_SIZE),
                entry_version: u32_at(body, f::ENTRY_VERSION),
                entries: body.get(f::ENTRIES..).unwrap_or(&[]),
            }
        }
        tag::ACPI_OLD | tag::ACPI_NEW => Tag::Rsdp { typ, rsdp: body },
        _ => Tag::Other { typ, body },
    }
}

/// Walk the tags: (offset, type, body without the 8-byte header), or the
/// problem that stops the walk.
fn raw_tags(b: &[u8]) -> impl Iterator<Item = Result<(usize, u32, &[u8]), Problem>> + '_ {
    use field::tag_header as h;
    let mut off = field::mbi::FIRST_TAG;
    let mut done = false;
    core::iter::from_fn(move || {
        if done {
            return None;
        }
        done = true;
        // Checked: `off` and `size` come from the bytes.
        let Some(header_end) = off.checked_add(h::LEN).filter(|&e| e <= b.len()) else {
            return Some(Err(Problem::NoEndTag));
        };
        let (typ, size) = (u32_at(b, off + h::TYPE), u32_at(b, off + h::SIZE));
        if (size as usize) < h::LEN {
            return Some(Err(Problem::TagTooSmall { offset: off, typ, size }));
        }
        let Some(end) = off.checked_add(size as usize).filter(|&e| e <= b.len()) else {
            return Some(Err(Problem::TagPastEnd { offset: off, typ, size }));
        };
        let item = (off, typ, &b[header_end..end]);
        done = typ == tag::END;
        // Tags start 8-byte aligned; `end` <= b.len(), so this cannot overflow.
        off = end.next_multiple_of(8);
        Some(Ok(item))
    })
}

/// The minimum body size of known tags.
fn min_body(typ: u32) -> usize {
    match typ {
        // The NUL.
        tag::CMDLINE | tag::BOOT_LOADER_NAME => 1,
        tag::MODULE => field::module::STRING + 1,
        tag::BASIC_MEMINFO => field::meminfo::LEN,
        tag::MMAP => field::mmap::ENTRIES,
        tag::ACPI_OLD => field::RSDP_V1_LEN,
        tag::ACPI_NEW => field::RSDP_V2_MIN_LEN,
        _ => 0,
    }
}

/// Is `r` entirely covered by usable memory map entries (possibly several
/// adjacent ones)?
fn in_usable(mbi: &Mbi, r: Range) -> bool {
    let mut cursor = r.start;
    while cursor < r.end {
        match mbi.mmap().filter(|e| e.typ == E820_RAM).map(|e| e.range()).find(|u| u.start <= cursor && cursor < u.end)
        {
            Some(u) => cursor = u.end,
            None => return false,
        }
    }
    true
}

/// Check the boot information a loader handed over.
///
/// `magic` is EAX at entry, `addr` the physical address from EBX, `bytes`
/// the MBI (exactly `total_size` bytes, or fewer if the kernel could not
/// trust `total_size`; the first 8 bytes must be present), `kernel` the
/// kernel image's range including `.bss`.
pub fn check(magic: u32, addr: u64, bytes: &[u8], kernel: Range) -> Result<Mbi<'_>, Problem> {
    if magic != BOOTLOADER_MAGIC {
        return Err(Problem::BadMagic(magic));
    }
    if !addr.is_multiple_of(8) {
        return Err(Problem::Misaligned(addr));
    }
    let total = u32_at(bytes, field::mbi::TOTAL_SIZE);
    if total < 16 {
        return Err(Problem::TotalSizeTooSmall(total));
    }
    if !total.is_multiple_of(8) {
        return Err(Problem::TotalSizeNotMultipleOf8(total));
    }
    let bytes = &bytes[..(total as usize).min(bytes.len())];
    check_tags(bytes, total)?;
    let mbi = Mbi { addr, bytes };
    check_memory_map(&mbi)?;
    check_placement(&mbi, kernel)?;
    Ok(mbi)
}

/// The tag walk: every tag fits and is large enough for its fields, strings
/// are terminated, the memory map's entry size and length agree, and the end
/// tag is last and ends at `total`; then, that there is a memory map.
fn check_tags(bytes: &[u8], total: u32) -> Result<(), Problem> {
    let mut end_seen = false;
    let mut have_mmap = false;
    for item in raw_tags(bytes) {
        let (off, typ, body) = item?;
        if body.len() < min_body(typ) {
            return Err(Problem::TagTooSmall { offset: off, typ, size: body.len() as u32 + 8 });
        }
        match typ {
            tag::END => {
                if !body.is_empty() {
                    return Err(Problem::BadEndTag { offset: off, size: body.len() as u32 + 8 });
                }
                if off + field::tag_header::LEN != total as usize {
                    return Err(Problem::TagsAfterEnd { offset: off });
                }
                end_seen = true;
            }
            tag::CMDLINE | tag::BOOT_LOADER_NAME if cstr(body).is_none() => {
                return Err(Problem::Unterminated { offset: off, typ })
            }
            tag::MODULE if cstr(&body[field::module::STRING..]).is_none() => {
                return Err(Problem::Unterminated { offset: off, typ })
            }
            tag::MMAP => {
                let es = u32_at(body, field::mmap::ENTRY_SIZE);
                if (es as usize) < field::mmap_entry::MIN_SIZE || !es.is_multiple_of(8) {
                    return Err(Problem::MmapEntrySize { entry_size: es });
                }
                if !(body.len() - field::mmap::ENTRIES).is_multiple_of(es as usize) {
                    return Err(Problem::MmapLength { size: body.len() as u32 + 8, entry_size: es });
                }
                have_mmap = true;
            }
            _ => {}
        }
    }
    if !end_seen {
        return Err(Problem::NoEndTag);
    }
    if !have_mmap {
        return Err(Problem::NoMemoryMap);
    }
    Ok(())
}

/// The memory map's usable entries.
fn check_memory_map(mbi: &Mbi) -> Result<(), Problem> {
    // Usable entries must not overlap each other, and there must be usable
    // RAM above 1 MiB (where a Multiboot2 kernel lives).
    let usable = || mbi.mmap().filter(|e| e.typ == E820_RAM && e.len > 0).map(|e| e.range());
    for (i, a) in usable().enumerate() {
        if let Some(b) = usable().skip(i + 1).find(|b| a.overlaps(b)) {
            return Err(Problem::UsableOverlap(a, b));
        }
    }
    if !usable().any(|r| r.end > 0x10_0000) {
        return Err(Problem::NoUsableRamAbove1M);
    }
    Ok(())
}

/// Where the MBI and the modules lie.
fn check_placement(mbi: &Mbi, kernel: Range) -> Result<(), Problem> {
    // Placement: the MBI and every module in usable RAM, disjoint from each
    // other and from the kernel.
    let mbi_r = mbi.range();
    if !in_usable(mbi, mbi_r) {
        return Err(Problem::NotInUsableRam { what: "MBI", range: mbi_r });
    }
    if mbi_r.overlaps(&kernel) {
        return Err(Problem::Overlap { a: "MBI", ra: mbi_r, b: "kernel", rb: kernel });
    }
    for (i, (m, _)) in mbi.modules().enumerate() {
        if m.end < m.start {
            return Err(Problem::ModuleEmptyOrReversed(m));
        }
        if !in_usable(mbi, m) {
            return Err(Problem::NotInUsableRam { what: "module", range: m });
        }
        if m.overlaps(&kernel) {
            return Err(Problem::Overlap { a: "module", ra: m, b: "kernel", rb: kernel });
        }
        if m.overlaps(&mbi_r) {
            return Err(Problem::Overlap { a: "module", ra: m, b: "MBI", rb: mbi_r });
        }
        if let Some((o, _)) = mbi.modules().skip(i + 1).find(|(o, _)| m.overlaps(o)) {
            return Err(Problem::Overlap { a: "module", ra: m, b: "module", rb: o });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A fuzzer find: a 2-byte boot information panicked in the field
    /// reader; it must get a verdict.
    #[test]
    fn truncated_mbi_gets_a_verdict_not_a_panic() {
        let r = Range { start: 0x20_0000, end: 0x30_0000 };
        assert_eq!(
            check(BOOTLOADER_MAGIC, 0x10_0000, &[0x77, 0xa7], r).err(),
            Some(Problem::TotalSizeNotMultipleOf8(0xa777))
        );
        assert_eq!(check(BOOTLOADER_MAGIC, 0x10_0000, &[], r).err(), Some(Problem::TotalSizeTooSmall(0)));
    }
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    const KERNEL: Range = Range { start: 0x10_0000, end: 0x11_8000 };
    const ADDR: u64 = 0x20_0000;

    /// A hand-made MBI: tags appended with 8-byte padding, end tag and
    /// total_size filled in by `finish`.
    struct Builder(Vec<u8>);
    impl Builder {
        fn new() -> Self {
            Builder(alloc::vec![0; 8])
        }
        fn tag(mut self, typ: u32, body: &[u8]) -> Self {
            self.0.extend_from_slice(&typ.to_le_bytes());
            self.0.extend_from_slice(&(body.len() as u32 + 8).to_le_bytes());
            self.0.extend_from_slice(body);
            while !self.0.len().is_multiple_of(8) {
                self.0.push(0);
            }
            self
        }
        fn mmap(self, entries: &[(u64, u64, u32)]) -> Self {
            let mut b = Vec::new();
            b.extend_from_slice(&24u32.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            for &(base, len, typ) in entries {
                b.extend_from_slice(&base.to_le_bytes());
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&typ.to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
            }
            self.tag(tag::MMAP, &b)
        }
        fn module(self, start: u32, end: u32, s: &str) -> Self {
            let mut b = Vec::new();
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&end.to_le_bytes());
            b.extend_from_slice(s.as_bytes());
            b.push(0);
            self.tag(tag::MODULE, &b)
        }
        fn finish(self) -> Vec<u8> {
            let mut v = self.tag(tag::END, &[]).0;
            let n = v.len() as u32;
            v[0..4].copy_from_slice(&n.to_le_bytes());
            v
        }
    }

    fn qemu_like() -> Builder {
        Builder::new()
            .tag(tag::CMDLINE, b"exit foo=bar\0")
            .tag(tag::BOOT_LOADER_NAME, b"GRUB 2.06\0")
            .module(0x30_0000, 0x30_1000, "mod1 one")
            .module(0x30_1000, 0x30_1005, "mod2 two")
            .tag(tag::BASIC_MEMINFO, &[0x7f, 2, 0, 0, 0x80, 0xfb, 1, 0])
            .mmap(&[(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0xf0000, 0x10000, 2), (0x10_0000, 0x1fee_0000, 1)])
    }

    /// Every prefix of a good MBI is refused with a problem, never a panic;
    /// and the readers of an [`Mbi`] made by hand, unchecked, are total too.
    #[test]
    fn truncations_and_unchecked_bodies_do_not_panic() {
        let v = qemu_like().finish();
        for n in 0..v.len() {
            assert!(check(BOOTLOADER_MAGIC, ADDR, &v[..n], KERNEL).is_err(), "{n} bytes");
        }
        // A module tag with a 1-byte body, at the top of the address space.
        let bytes = [17, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 0x55];
        let m = Mbi { addr: u64::MAX - 8, bytes: &bytes };
        assert_eq!(m.modules().collect::<Vec<_>>(), [(Range { start: 0x55, end: 0 }, &b""[..])]);
        assert_eq!(m.range().end, u64::MAX);
    }

    /// The writer (`mbi`) and the checker read the same layout.
    #[test]
    fn what_the_writer_writes_the_checker_accepts() {
        use super::super::mbi::{self, BootInfo, Module};
        use crate::memmap::E820Entry;
        let mmap = [E820Entry::new(0, 0x9fc00, 1), E820Entry::new(0x10_0000, 0x1fee_0000, 1)];
        let mods = [Module { start: 0x30_0000, end: 0x30_1000, string: "initrd arg=1" }];
        let info = BootInfo {
            cmdline: "console=ttyS0",
            loader_name: "chainloader",
            modules: &mods,
            ..mbi::tests::minimal(&mmap)
        };
        let mut buf = alloc::vec![0u8; mbi::size(&info)];
        mbi::write(&info, &mut buf).unwrap();
        let m = check(BOOTLOADER_MAGIC, ADDR, &buf, KERNEL).unwrap();
        assert_eq!(m.cmdline(), Some(&b"console=ttyS0"[..]));
        assert!(m.tags().any(|t| matches!(t, Tag::LoaderName(b"chainloader"))));
        assert_eq!(m.modules().collect::<Vec<_>>(), [(Range::new(0x30_0000, 0x30_1000), &b"initrd arg=1"[..])]);
        assert_eq!(m.mmap().count(), 2);
        assert!(m.tags().any(|t| matches!(t, Tag::BasicMeminfo { lower: 639, upper: 523136 })));
    }

    #[test]
    fn a_grub_like_mbi_passes_and_reads_back() {
        let v = qemu_like().finish();
        let mbi = check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap();
        assert_eq!(mbi.cmdline(), Some(&b"exit foo=bar"[..]));
        let mods: Vec<_> = mbi.modules().collect();
        assert_eq!(mods.len(), 2);
        assert_eq!(mods[1].1, b"mod2 two");
        assert_eq!(mbi.mmap().count(), 4);
        assert!(mbi.tags().any(|t| matches!(t, Tag::BasicMeminfo { lower: 639, upper: 129920 })));
    }

    #[test]
    fn header_problems() {
        let v = qemu_like().finish();
        assert_eq!(check(0x2BADB002, ADDR, &v, KERNEL).unwrap_err(), Problem::BadMagic(0x2BADB002));
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR + 4, &v, KERNEL).unwrap_err(), Problem::Misaligned(ADDR + 4));
        let mut w = v.clone();
        w[0..4].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR, &w, KERNEL).unwrap_err(), Problem::TotalSizeTooSmall(8));
        let mut w = v.clone();
        w[0..4].copy_from_slice(&(v.len() as u32 - 4).to_le_bytes());
        assert!(matches!(check(BOOTLOADER_MAGIC, ADDR, &w, KERNEL).unwrap_err(), Problem::TotalSizeNotMultipleOf8(_)));
        // total_size cuts the end tag off.
        let mut w = v.clone();
        w[0..4].copy_from_slice(&(v.len() as u32 - 8).to_le_bytes());
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR, &w, KERNEL).unwrap_err(), Problem::NoEndTag);
    }

    #[test]
    fn tag_problems() {
        // A tag that claims more than total_size.
        let mut v = qemu_like().finish();
        v[12..16].copy_from_slice(&4000u32.to_le_bytes());
        assert!(matches!(
            check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(),
            Problem::TagPastEnd { offset: 8, typ: 1, .. }
        ));
        // A tag smaller than its header.
        let mut v = qemu_like().finish();
        v[12..16].copy_from_slice(&4u32.to_le_bytes());
        assert!(matches!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::TagTooSmall { .. }));
        // An unterminated command line.
        let v = Builder::new().tag(tag::CMDLINE, b"abcdefgh").finish();
        assert!(matches!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::Unterminated { typ: 1, .. }));
        // Something after the end tag.
        let mut v = qemu_like().finish();
        v.extend_from_slice(&[1, 0, 0, 0, 9, 0, 0, 0, b'x', 0, 0, 0, 0, 0, 0, 0]);
        let n = v.len() as u32;
        v[0..4].copy_from_slice(&n.to_le_bytes());
        assert!(matches!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::TagsAfterEnd { .. }));
        // A bad memory map entry size.
        let v = Builder::new().tag(tag::MMAP, &[16, 0, 0, 0, 0, 0, 0, 0]).finish();
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::MmapEntrySize { entry_size: 16 });
    }

    #[test]
    fn memory_map_problems() {
        let v = Builder::new().tag(tag::CMDLINE, b"\0").finish();
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::NoMemoryMap);
        let v =
            Builder::new().mmap(&[(0, 0x9fc00, 1), (0x10_0000, 0x100_0000, 1), (0x80_0000, 0x100_0000, 1)]).finish();
        assert!(matches!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::UsableOverlap(..)));
        let v = Builder::new().mmap(&[(0, 0x9fc00, 1), (0x10_0000, 0x100_0000, 2)]).finish();
        assert_eq!(check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err(), Problem::NoUsableRamAbove1M);
    }

    #[test]
    fn placement_problems() {
        let mm = [(0, 0x9fc00, 1), (0x10_0000, 0x100_0000, 1), (0x110_0000, 0x100_0000, 1)];
        // Adjacent usable entries together cover an MBI that spans both.
        let v = Builder::new().mmap(&mm).finish();
        assert!(check(BOOTLOADER_MAGIC, 0x10f_fff8, &v, KERNEL).is_ok());
        // MBI in reserved memory.
        let e = check(BOOTLOADER_MAGIC, 0xf_0000, &v, KERNEL).unwrap_err();
        assert!(matches!(e, Problem::NotInUsableRam { what: "MBI", .. }), "{e}");
        // MBI over the kernel.
        let e = check(BOOTLOADER_MAGIC, 0x11_0000, &v, KERNEL).unwrap_err();
        assert!(matches!(e, Problem::Overlap { a: "MBI", b: "kernel", .. }), "{e}");
        // Modules overlapping each other, the kernel, the MBI; out of RAM.
        for (m, want) in [
            (
                Builder::new().mmap(&mm).module(0x30_0000, 0x30_2000, "a").module(0x30_1000, 0x30_3000, "b"),
                "module 0x300000..0x302000 overlaps module 0x301000..0x303000",
            ),
            (
                Builder::new().mmap(&mm).module(0x11_0000, 0x12_0000, "a"),
                "module 0x110000..0x120000 overlaps kernel 0x100000..0x118000",
            ),
            (Builder::new().mmap(&mm).module(0x20_0000, 0x20_0010, "a"), "overlaps MBI"),
            (Builder::new().mmap(&mm).module(0xa_0000, 0xa_1000, "a"), "module 0xa0000..0xa1000 is not in usable RAM"),
        ] {
            let v = m.finish();
            let e = check(BOOTLOADER_MAGIC, ADDR, &v, KERNEL).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
