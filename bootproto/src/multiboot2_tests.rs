//! Tests for `multiboot2`: kernel images are built here byte by byte.
use super::*;
use crate::memmap::ONE_MIB;
use alloc::string::ToString;
use alloc::vec;

pub(crate) fn tag(ty: u16, flags: u16, body: &[u32]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&ty.to_le_bytes());
    t.extend_from_slice(&flags.to_le_bytes());
    t.extend_from_slice(&(8 + 4 * body.len() as u32).to_le_bytes());
    for w in body {
        t.extend_from_slice(&w.to_le_bytes());
    }
    while t.len() % 8 != 0 {
        t.push(0);
    }
    t
}

/// A complete header with the given tags and an end tag.
pub(crate) fn header(tags: &[Vec<u8>]) -> Vec<u8> {
    let mut body: Vec<u8> = tags.concat();
    body.extend_from_slice(&tag(0, 0, &[]));
    let len = 16 + body.len() as u32;
    let mut h = Vec::new();
    for w in [HEADER_MAGIC, 0, len, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(len)] {
        h.extend_from_slice(&w.to_le_bytes());
    }
    h.extend_from_slice(&body);
    h
}

fn put(img: &mut Vec<u8>, off: usize, bytes: &[u8]) {
    if img.len() < off + bytes.len() {
        img.resize(off + bytes.len(), 0);
    }
    img[off..off + bytes.len()].copy_from_slice(bytes);
}

struct Ph {
    ty: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// An ELF executable: headers at 0, the Multiboot2 header at 0x1000 (inside
/// the first segment's file bytes), `len` bytes of file.
fn elf(is64: bool, entry: u64, phs: &[Ph], mb2: &[u8], len: usize) -> Vec<u8> {
    let mut img = vec![0u8; len];
    put(&mut img, 0, b"\x7fELF");
    img[4] = if is64 { 2 } else { 1 };
    img[5] = 1;
    img[6] = 1;
    put(&mut img, 16, &2u16.to_le_bytes());
    put(&mut img, 18, &(if is64 { 62u16 } else { 3 }).to_le_bytes());
    put(&mut img, 20, &1u32.to_le_bytes());
    let (phoff, phsize) = if is64 { (64u64, 56usize) } else { (52, 32) };
    if is64 {
        put(&mut img, 24, &entry.to_le_bytes());
        put(&mut img, 32, &phoff.to_le_bytes());
        put(&mut img, 54, &(phsize as u16).to_le_bytes());
        put(&mut img, 56, &(phs.len() as u16).to_le_bytes());
    } else {
        put(&mut img, 24, &(entry as u32).to_le_bytes());
        put(&mut img, 28, &(phoff as u32).to_le_bytes());
        put(&mut img, 42, &(phsize as u16).to_le_bytes());
        put(&mut img, 44, &(phs.len() as u16).to_le_bytes());
    }
    for (i, p) in phs.iter().enumerate() {
        let o = phoff as usize + i * phsize;
        put(&mut img, o, &p.ty.to_le_bytes());
        if is64 {
            for (k, v) in [(8, p.offset), (16, p.vaddr), (24, p.paddr), (32, p.filesz), (40, p.memsz)] {
                put(&mut img, o + k, &v.to_le_bytes());
            }
        } else {
            for (k, v) in [(4, p.offset), (8, p.vaddr), (12, p.paddr), (16, p.filesz), (20, p.memsz)] {
                put(&mut img, o + k, &(v as u32).to_le_bytes());
            }
        }
    }
    put(&mut img, 0x1000, mb2);
    img
}

fn load(offset: u64, vaddr: u64, paddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph { ty: 1, offset, vaddr, paddr, filesz, memsz }
}

/// A higher-half kernel: one segment at 1 MiB physical, 0xC0100000 virtual.
fn higher_half(is64: bool, tags: &[Vec<u8>]) -> Vec<u8> {
    elf(is64, 0xC010_1010, &[load(0x1000, 0xC010_1000, 0x10_1000, 0x2000, 0x3000)], &header(tags), 0x3000)
}


fn mem() -> Allocator {
    let mut a = Allocator::new(&crate::memmap::qemu_512m_e820());
    a.reserve_always(Range::new(0, 0x1000), "real-mode IVT and BIOS data");
    a.reserve_always(Range::new(0x7c00, 0x80000), "chainloader");
    a.reserve_always(Range::new(0x80000, 0x100000), "PXE stack, EBDA and ROM area");
    a
}

fn plan(img: &[u8]) -> Result<LoadPlan, Mb2Error> {
    let h = parse_header(img)?;
    plan_load(img, &h, &mut mem(), None)
}

#[test]
fn elf32_higher_half_loads_by_paddr() {
    let img = higher_half(false, &[]);
    let h = parse_header(&img).unwrap();
    assert_eq!(h.offset, 0x1000);
    let p = plan_load(&img, &h, &mut mem(), None).unwrap();
    assert_eq!(p.segments, vec![Segment { file_offset: 0x1000, file_len: 0x2000, dest_phys: 0x10_1000, mem_len: 0x3000 }]);
    // Entry virtual 0xC0101010 -> physical 0x101010 (GRUB's translation).
    assert_eq!(p.entry, 0x10_1010);
    assert_eq!(p.load_base, 0x10_1000);
    assert_eq!(p.kernel_range, Range::new(0x10_1000, 0x10_4000));
}

#[test]
fn elf64_loads_and_checks_entry() {
    let img = higher_half(true, &[]);
    let p = plan(&img).unwrap();
    assert_eq!(p.entry, 0x10_1010);
    assert_eq!(p.segments[0].dest_phys, 0x10_1000);
    // Entry outside every program header.
    let img = elf(true, 0xdead_0000, &[load(0x1000, 0x10_1000, 0x10_1000, 0x2000, 0x2000)], &header(&[]), 0x3000);
    assert_eq!(plan(&img), Err(Mb2Error::EntryNotInSegment(0xdead_0000)));
    // A segment above 4 GiB.
    let img = elf(true, 0x10_1000, &[load(0x1000, 0x10_1000, 0x1_0010_0000, 0x2000, 0x2000)], &header(&[]), 0x3000);
    assert!(matches!(plan(&img), Err(Mb2Error::Above4G(_))));
    // Machine mismatch: ELF64 claiming EM_386.
    let mut img = higher_half(true, &[]);
    img[18] = 3;
    assert!(matches!(plan(&img), Err(Mb2Error::Elf(_))));
}

#[test]
fn entry_address_tag_overrides_elf_entry() {
    let img = higher_half(false, &[tag(htag::ENTRY_ADDRESS, 0, &[0x10_2000])]);
    assert_eq!(plan(&img).unwrap().entry, 0x10_2000);
}

#[test]
fn address_tag_kernel() {
    // Flat binary: header at file offset 0x40, loaded at 0x200000.
    let file_len = 0x1800u32;
    let mb = header(&[
        tag(htag::ADDRESS, 0, &[0x20_0040, 0x20_0000, 0x20_0000 + file_len, 0x20_4000]),
        tag(htag::ENTRY_ADDRESS, 0, &[0x20_0100]),
    ]);
    let mut img = vec![0x90u8; file_len as usize];
    put(&mut img, 0x40, &mb);
    let p = plan(&img).unwrap();
    assert_eq!(p.segments, vec![Segment { file_offset: 0, file_len: 0x1800, dest_phys: 0x20_0000, mem_len: 0x4000 }]);
    assert_eq!((p.entry, p.load_base), (0x20_0100, 0x20_0000));
    assert_eq!(p.elf_sections.num, 0);

    // load_addr 0xffffffff: the file starts at header_addr - header offset;
    // load_end_addr 0: the whole file; bss_end_addr 0: no bss.
    let mb = header(&[tag(htag::ADDRESS, 0, &[0x30_0040, u32::MAX, 0, 0]), tag(htag::ENTRY_ADDRESS, 0, &[0x30_0100])]);
    put(&mut img, 0x40, &mb);
    let p = plan(&img).unwrap();
    assert_eq!(p.segments, vec![Segment { file_offset: 0, file_len: 0x1800, dest_phys: 0x30_0000, mem_len: 0x1800 }]);

    // Without an entry address tag: refused, as GRUB does.
    let mb = header(&[tag(htag::ADDRESS, 0, &[0x30_0040, u32::MAX, 0, 0])]);
    put(&mut img, 0x40, &mb);
    assert_eq!(parse_header(&img), Err(Mb2Error::AddressWithoutEntry));
    // load_end beyond the file.
    let mb = header(&[tag(htag::ADDRESS, 0, &[0x30_0040, 0x30_0000, 0x30_9000, 0]), tag(htag::ENTRY_ADDRESS, 0, &[0x30_0100])]);
    put(&mut img, 0x40, &mb);
    assert!(matches!(plan(&img), Err(Mb2Error::PastEndOfFile { .. })));
}

#[test]
fn relocatable_kernel_moves_segments_and_entry() {
    let reloc = |pref: u32| tag(htag::RELOCATABLE, 0, &[0x20_0000, 0x1000_0000, 0x20_0000, pref]);
    let mb = |pref| {
        header(&[
            tag(htag::ADDRESS, 0, &[0x10_0040, 0x10_0000, 0x10_1800, 0x10_3000]),
            tag(htag::ENTRY_ADDRESS, 0, &[0x10_0100]),
            reloc(pref),
        ])
    };
    let mut img = vec![0u8; 0x1800];
    put(&mut img, 0x40, &mb(1));
    let p = plan(&img).unwrap();
    assert_eq!((p.load_base, p.entry, p.segments[0].dest_phys), (0x20_0000, 0x20_0100, 0x20_0000));
    put(&mut img, 0x40, &mb(2));
    let p = plan(&img).unwrap();
    // Highest 2 MiB-aligned base with the 0x3000-byte image ending by 256 MiB.
    assert_eq!((p.load_base, p.entry), (0x0fe0_0000, 0x0fe0_0100));
    assert_eq!(p.kernel_range, Range::new(0x0fe0_0000, 0x0fe0_3000));

    // ELF: the whole span moves; entry follows.
    let img = higher_half(false, &[reloc(1)]);
    let p = plan(&img).unwrap();
    assert_eq!((p.load_base, p.entry, p.segments[0].dest_phys), (0x20_0000, 0x20_0010, 0x20_0000));

    // Room only where something is reserved: refused with the window.
    let img = higher_half(false, &[tag(htag::RELOCATABLE, 0, &[0x8_0000, 0xf_0000, 0x1000, 0])]);
    assert!(matches!(plan(&img), Err(Mb2Error::NoRoomRelocatable { .. })));
    let img = higher_half(false, &[tag(htag::RELOCATABLE, 0, &[0x30_0000, 0x20_0000, 0x1000, 0])]);
    assert!(matches!(plan(&img), Err(Mb2Error::BadRelocatable { .. })));
}

#[test]
fn information_request_refusal() {
    let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 0, &[1, 6, 12])]);
    let e = parse_header(&img).unwrap_err();
    assert_eq!(
        e.to_string(),
        "information request tag asks for tag 12 (EFI64 system table), which this loader cannot supply"
    );
    // Optional request: fine.
    let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 1, &[1, 6, 12])]);
    assert!(parse_header(&img).is_ok());
    // Everything the loader supplies may be required.
    let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 0, &[1, 2, 3, 4, 6, 8, 9, 10, 14, 15, 16, 21])]);
    assert_eq!(parse_header(&img).unwrap().info_requests[0].types.len(), 12);
}

#[test]
fn unknown_tags() {
    let img = higher_half(false, &[tag(11, 0, &[0])]);
    assert_eq!(
        parse_header(&img).unwrap_err().to_string(),
        "Multiboot2 header tag type 11 (unknown) is not supported and not marked optional"
    );
    let img = higher_half(false, &[tag(11, 1, &[0])]);
    assert!(parse_header(&img).is_ok());
}

#[test]
fn console_framebuffer_module_align_efi_tags() {
    let img = higher_half(
        false,
        &[
            tag(htag::CONSOLE_FLAGS, 0, &[CONSOLE_EGA_TEXT_SUPPORTED]),
            tag(htag::FRAMEBUFFER, 1, &[1024, 768, 32]),
            tag(htag::MODULE_ALIGN, 0, &[]),
            tag(htag::EFI_BS, 0, &[]),
            tag(htag::ENTRY_ADDRESS_EFI64, 0, &[0x10_3000]),
        ],
    );
    let h = parse_header(&img).unwrap();
    assert_eq!(h.framebuffer, Some(FramebufferTag { width: 1024, height: 768, depth: 32, optional: true }));
    assert!(h.module_align && h.efi_bs);
    assert_eq!(h.efi_entry64, Some(0x10_3000));
    // EFI entries do not change the BIOS entry.
    assert_eq!(plan(&img).unwrap().entry, 0x10_1010);

    let img = higher_half(false, &[tag(htag::FRAMEBUFFER, 0, &[1024, 768, 32])]);
    assert!(matches!(parse_header(&img), Err(Mb2Error::FramebufferRequired(_))));
    let img = higher_half(false, &[tag(htag::CONSOLE_FLAGS, 0, &[CONSOLE_REQUIRED])]);
    assert_eq!(parse_header(&img), Err(Mb2Error::NoUsableConsole));
}

#[test]
fn header_search_rules() {
    let mb = header(&[]);
    // Not 8-byte aligned: not found.
    let mut img = vec![0u8; 0x2000];
    put(&mut img, 0x104, &mb);
    assert_eq!(parse_header(&img), Err(Mb2Error::NoHeader));
    // Aligned: found.
    let mut img = vec![0u8; 0x2000];
    put(&mut img, 0x108, &mb);
    assert_eq!(parse_header(&img).unwrap().offset, 0x108);
    // Beyond 32 KiB: not found.
    let mut img = vec![0u8; 0x9000];
    put(&mut img, 0x8000, &mb);
    assert_eq!(parse_header(&img), Err(Mb2Error::NoHeader));
    // Bad checksum.
    let mut bad = mb.clone();
    bad[12] ^= 1;
    let mut img = vec![0u8; 0x2000];
    put(&mut img, 0x100, &bad);
    assert_eq!(parse_header(&img), Err(Mb2Error::NoHeader));
    // Architecture 4 (MIPS) with a matching checksum: not ours.
    let mut img = vec![0u8; 0x2000];
    for (i, w) in [HEADER_MAGIC, 4, 24, 0u32.wrapping_sub(HEADER_MAGIC + 4 + 24)].iter().enumerate() {
        put(&mut img, 0x100 + 4 * i, &w.to_le_bytes());
    }
    assert_eq!(parse_header(&img), Err(Mb2Error::NoHeader));
    // A tag that runs off the end of the file.
    let mut img = mb[..16].to_vec();
    img.extend_from_slice(&tag(htag::ENTRY_ADDRESS, 0, &[1])[..8]);
    img.resize(40, 0);
    img[20..24].copy_from_slice(&0x1000u32.to_le_bytes());
    assert!(matches!(parse_header(&img), Err(Mb2Error::BadTag { .. })));
    assert_eq!(parse_header(&[0u8; 8]), Err(Mb2Error::TooShort(8)));
    // header_length 8 with a matching checksum: found, but refused.
    let mut img = vec![0u8; 0x100];
    for (i, w) in [HEADER_MAGIC, 0, 8, 0u32.wrapping_sub(HEADER_MAGIC + 8)].iter().enumerate() {
        put(&mut img, 0x10 + 4 * i, &w.to_le_bytes());
    }
    assert_eq!(parse_header(&img), Err(Mb2Error::BadHeaderLength { offset: 0x10, header_length: 8 }));
}

#[test]
fn garbage_never_panics() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 1, &[4, 6]), tag(htag::ENTRY_ADDRESS, 0, &[0x10_1000])]);
    for _ in 0..3000 {
        let mut img = base.clone();
        for _ in 0..(rnd() % 8 + 1) {
            let i = (rnd() as usize) % (0x1000 + 64);
            let i = if i >= 0x1000 { i } else { i % 200 };
            img[i] = rnd() as u8;
        }
        if rnd() % 4 == 0 {
            img.truncate((rnd() as usize) % img.len());
        }
        if let Ok(h) = parse_header(&img) {
            let _ = plan_load(&img, &h, &mut mem(), None);
        }
    }
}

#[test]
fn overlap_with_reserved_memory_is_refused_with_ranges() {
    let img = elf(false, 0x7000, &[load(0x1000, 0x7000, 0x7000, 0x2000, 0x2000)], &header(&[]), 0x3000);
    assert_eq!(
        plan(&img).unwrap_err().to_string(),
        "kernel segment 0x7000-0x9000 overlaps reserved memory 0x7c00-0x80000 (chainloader)"
    );
    let img = elf(false, 0x1ffd_f000, &[load(0x1000, 0x1ffd_f000, 0x1ffd_f000, 0x2000, 0x2000)], &header(&[]), 0x3000);
    assert_eq!(plan(&img).unwrap_err().to_string(), "kernel segment 0x1ffdf000-0x1ffe1000 is not in usable RAM (E820)");
    // Reserved in the caller's allocator (e.g. the MBI) also counts, and the
    // plan reserves its own ranges.
    let img = higher_half(false, &[]);
    let h = parse_header(&img).unwrap();
    let mut m = mem();
    plan_load(&img, &h, &mut m, None).unwrap();
    assert!(matches!(plan_load(&img, &h, &mut m, None), Err(Mb2Error::Reserved { .. })));
    assert!(m.check(Range::new(ONE_MIB, ONE_MIB + 0x1000)).is_ok());
}

/// Appends a section header table to an ELF32 image.
fn add_sections32(img: &mut Vec<u8>, sections: &[(u32, u32, u32, u32, u32)]) {
    // (type, addr, offset, size, align); entry 0 is the null section.
    let shoff = img.len();
    put(img, 32, &(shoff as u32).to_le_bytes());
    put(img, 46, &40u16.to_le_bytes());
    put(img, 48, &(sections.len() as u16 + 1).to_le_bytes());
    put(img, 50, &(sections.len() as u16).to_le_bytes());
    img.extend_from_slice(&[0u8; 40]);
    for &(ty, addr, off, size, align) in sections {
        let mut s = [0u8; 40];
        s[4..8].copy_from_slice(&ty.to_le_bytes());
        s[12..16].copy_from_slice(&addr.to_le_bytes());
        s[16..20].copy_from_slice(&off.to_le_bytes());
        s[20..24].copy_from_slice(&size.to_le_bytes());
        s[32..36].copy_from_slice(&align.to_le_bytes());
        img.extend_from_slice(&s);
    }
}

#[test]
fn elf_sections_for_tag_9() {
    let mut img = higher_half(false, &[]);
    // .text (allocated), .symtab and .strtab (not allocated: placed by us).
    add_sections32(&mut img, &[(1, 0x10_1000, 0x1000, 0x2000, 16), (2, 0, 0x2000, 0x40, 4), (3, 0, 0x2040, 0x21, 1)]);
    let p = plan(&img).unwrap();
    let s = &p.elf_sections;
    assert_eq!((s.num, s.entsize, s.shndx), (4, 40, 3));
    assert_eq!(p.segments.len(), 3);
    let symtab = p.segments[1];
    assert_eq!((symtab.file_offset, symtab.file_len, symtab.mem_len), (0x2000, 0x40, 0x40));
    assert!(symtab.dest_phys >= 0x1000 && !symtab.dest().overlaps(&p.kernel_range));
    let addr_of = |i: usize| u32::from_le_bytes(s.table[i * 40 + 12..i * 40 + 16].try_into().unwrap()) as u64;
    assert_eq!(addr_of(1), 0x10_1000);
    assert_eq!(addr_of(2), symtab.dest_phys);
    assert_eq!(addr_of(3), p.segments[2].dest_phys);

    // Relocation sections: refused, as GRUB 2 does for Multiboot2.
    let mut img = higher_half(false, &[]);
    add_sections32(&mut img, &[(9, 0, 0x2000, 0x10, 4)]);
    assert_eq!(plan(&img), Err(Mb2Error::ElfRelocs));
}
