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
    body.extend_from_slice(&tag(htag::END, 0, &[]));
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

// The program header the test images are built with is the one the parser
// reads.
use super::Phdr as Ph;

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
    a.start_grub_heap(ONE_MIB);
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
    assert_eq!(
        p.segments,
        vec![Segment { file_offset: 0x1000, file_len: 0x2000, dest_phys: 0x10_1000, mem_len: 0x3000 }]
    );
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
    // GRUB still translates the ELF entry first and refuses one outside
    // every segment, entry tag or not.
    let img = elf(
        false,
        0xdead_0000,
        &[load(0x1000, 0x10_1000, 0x10_1000, 0x2000, 0x3000)],
        &header(&[tag(htag::ENTRY_ADDRESS, 0, &[0x10_2000])]),
        0x3000,
    );
    assert_eq!(plan(&img), Err(Mb2Error::EntryNotInSegment(0xdead_0000)));
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
    // load_end beyond the file: GRUB reads what the file has (a short read
    // is no error) and the rest of the load range is zeroed.
    let mb = header(&[
        tag(htag::ADDRESS, 0, &[0x30_0040, 0x30_0000, 0x30_9000, 0]),
        tag(htag::ENTRY_ADDRESS, 0, &[0x30_0100]),
    ]);
    put(&mut img, 0x40, &mb);
    let p = plan(&img).unwrap();
    assert_eq!(p.segments, vec![Segment { file_offset: 0, file_len: 0x1800, dest_phys: 0x30_0000, mem_len: 0x9000 }]);
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
fn information_requests_as_grub() {
    // GRUB refuses a required request for SMBIOS (13) and for types above 21.
    for t in [13u32, 22, 0x100, u32::MAX] {
        let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 0, &[1, 6, t])]);
        let e = parse_header(&img).unwrap_err();
        assert_eq!(e, Mb2Error::CannotSupply { tag: t });
        assert!(
            e.to_string().starts_with(&format!("information request tag: requests[] asks for MBI tag type {t} (")),
            "{e}"
        );
        // Optional: not even looked at.
        let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, htag::FLAG_OPTIONAL, &[1, 6, t])]);
        assert!(parse_header(&img).is_ok());
    }
    // Every other type 0-21 may be required, including those a BIOS network
    // boot leaves out (GRUB accepts them and leaves them out).
    let all: Vec<u32> = (0..=21).filter(|&t| t != 13).collect();
    let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 0, &all)]);
    let h = parse_header(&img).unwrap();
    assert_eq!(h.info_requests[0].types, all);
    let present = [1, 2, 3, 4, 6, 8, 9, 14, 16, 21];
    assert_eq!(h.required_but_absent(&present), vec![5, 7, 10, 11, 12, 15, 17, 18, 19, 20]);
    // Optional requests never warn; duplicates warn once.
    let img = higher_half(
        false,
        &[
            tag(htag::INFORMATION_REQUEST, htag::FLAG_OPTIONAL, &[5, 7]),
            tag(htag::INFORMATION_REQUEST, 0, &[5, 6, 5]),
            tag(htag::INFORMATION_REQUEST, 0, &[5]),
        ],
    );
    assert_eq!(parse_header(&img).unwrap().required_but_absent(&present), vec![5]);
    assert_eq!(absent_reason(5), "which GRUB 2 also leaves out on a network boot");
    // An empty request (size 8) is fine.
    let img = higher_half(false, &[tag(htag::INFORMATION_REQUEST, 0, &[])]);
    assert!(parse_header(&img).unwrap().info_requests[0].types.is_empty());
}

#[test]
fn unknown_tags() {
    // 11: the first type the specification does not define.
    let img = higher_half(false, &[tag(11, 0, &[0])]);
    assert_eq!(
        parse_header(&img).unwrap_err().to_string(),
        "Multiboot2 header tag type 11 (unknown) is not supported and not marked optional"
    );
    let img = higher_half(false, &[tag(11, htag::FLAG_OPTIONAL, &[0])]);
    assert!(parse_header(&img).is_ok());
}

#[test]
fn console_framebuffer_module_align_efi_tags() {
    let img = higher_half(
        false,
        &[
            tag(htag::CONSOLE_FLAGS, 0, &[CONSOLE_EGA_TEXT_SUPPORTED]),
            tag(htag::FRAMEBUFFER, htag::FLAG_OPTIONAL, &[1024, 768, 32]),
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

    // A framebuffer tag not marked optional is accepted: GRUB ignores the
    // flag (the mode is set if it can be; else the kernel gets text).
    let img = higher_half(false, &[tag(htag::FRAMEBUFFER, 0, &[1024, 768, 32])]);
    assert_eq!(parse_header(&img).unwrap().framebuffer.map(|f| f.optional), Some(false));
    let img = higher_half(false, &[tag(htag::CONSOLE_FLAGS, 0, &[CONSOLE_REQUIRED])]);
    assert_eq!(parse_header(&img), Err(Mb2Error::NoUsableConsole));
    // ...unless a framebuffer tag makes a graphics console acceptable.
    let img = higher_half(
        false,
        &[tag(htag::CONSOLE_FLAGS, 0, &[CONSOLE_REQUIRED]), tag(htag::FRAMEBUFFER, htag::FLAG_OPTIONAL, &[0, 0, 0])],
    );
    assert!(!parse_header(&img).unwrap().accepts_ega_text());
    // Not required and no EGA text: GRUB warns and boots.
    let img = higher_half(false, &[tag(htag::CONSOLE_FLAGS, 0, &[0])]);
    assert!(parse_header(&img).is_ok());
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
    let mut x = crate::xorshift::Xorshift64(0x1234_5678_9abc_def1);
    let mut rnd = || x.next_u64();
    let base = higher_half(
        false,
        &[tag(htag::INFORMATION_REQUEST, htag::FLAG_OPTIONAL, &[4, 6]), tag(htag::ENTRY_ADDRESS, 0, &[0x10_1000])],
    );
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

/// A flat image of `len` bytes with the Multiboot2 header `mb` at `at`;
/// every byte outside the header is its offset's low byte, so loaded bytes
/// can be traced back to their file offset.
fn flat(len: usize, at: usize, mb: &[u8]) -> Vec<u8> {
    let mut img: Vec<u8> = (0..len).map(|i| i as u8).collect();
    put(&mut img, at, mb);
    img
}

fn address(header_addr: u32, load_addr: u32, load_end_addr: u32, bss_end_addr: u32, entry: u32) -> Vec<u8> {
    header(&[
        tag(htag::ADDRESS, 0, &[header_addr, load_addr, load_end_addr, bss_end_addr]),
        tag(htag::ENTRY_ADDRESS, 0, &[entry]),
    ])
}

#[test]
fn nautilus_header_layout_loads_as_grub_does() {
    // HExSA-Lab/nautilus (x86_64, defconfig): an ELF64 whose Multiboot2
    // header, at file offset 0x1000, has an address tag with header_addr
    // 0x100000 *below* load_addr 0x100040, and an entry tag. GRUB's offset
    // arithmetic (0x1000 - (0x100000 - 0x100040), wrapping) puts file
    // offset 0x1040 at 0x100040; bss is zeroed up to 0x40e4b0.
    let mb = address(0x10_0000, 0x10_0040, 0x3f_f000, 0x40_e4b0, 0x10_0040);
    assert_eq!(mb.len(), 64, "Nautilus's header_length");
    let mut img = flat(3_215_096, 0x1000, &mb);
    put(&mut img, 0, b"\x7fELF\x02\x01\x01");
    let h = parse_header(&img).unwrap();
    assert_eq!((h.offset, h.header_length), (0x1000, 64));
    let p = plan_load(&img, &h, &mut mem(), None).unwrap();
    assert_eq!(
        p.segments,
        vec![Segment {
            file_offset: 0x1040,
            file_len: 0x3f_f000 - 0x10_0040,
            dest_phys: 0x10_0040,
            mem_len: 0x40_e4b0 - 0x10_0040
        }]
    );
    assert_eq!((p.entry, p.load_base), (0x10_0040, 0x10_0040));
    assert_eq!(p.kernel_range, Range::new(0x10_0040, 0x40_e4b0));
    // The address tag wins over the ELF headers, as in GRUB: no tag 9 sections.
    assert_eq!(p.elf_sections.num, 0);
}

#[test]
fn address_tag_arithmetic_is_grubs() {
    let len = 0x3000usize;
    let seg = |img: &[u8]| plan(img).map(|p| (p.segments[0], p.load_base));
    // header_addr above load_addr (the specification's case): header at 0x40.
    let img = flat(len, 0x40, &address(0x20_0040, 0x20_0000, 0x20_2000, 0x20_8000, 0x20_0100));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0, file_len: 0x2000, dest_phys: 0x20_0000, mem_len: 0x8000 }, 0x20_0000))
    );
    // header_addr below load_addr: the load starts after the header.
    let img = flat(len, 0x800, &address(0x20_0000, 0x20_0100, 0x20_1000, 0, 0x20_0100));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0x900, file_len: 0xf00, dest_phys: 0x20_0100, mem_len: 0xf00 }, 0x20_0100))
    );
    // load_addr 0xffffffff: header_addr - header offset; load_end 0: rest of the file.
    let img = flat(len, 0x800, &address(0x20_0800, u32::MAX, 0, 0, 0x20_0000));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0, file_len: 0x3000, dest_phys: 0x20_0000, mem_len: 0x3000 }, 0x20_0000))
    );
    // load_addr 0xffffffff with a load_end_addr: GRUB subtracts the raw
    // field, so the load size is load_end_addr + 1 (here past the file's
    // end: a short read, the rest zeroed).
    let img = flat(len, 0x800, &address(0x20_0800, u32::MAX, 0x1000, 0, 0x20_0000));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0, file_len: 0x1001, dest_phys: 0x20_0000, mem_len: 0x1001 }, 0x20_0000))
    );
    // load_end_addr 0 with a bss.
    let img = flat(len, 0x40, &address(0x20_0040, 0x20_0000, 0, 0x20_5000, 0x20_0000));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0, file_len: 0x3000, dest_phys: 0x20_0000, mem_len: 0x5000 }, 0x20_0000))
    );
    // A load range starting exactly at the end of the file: nothing read.
    let img = flat(len, 0x800, &address(0x20_0000, 0x20_2800, 0x20_2800, 0x20_3000, 0x20_2800));
    assert_eq!(
        seg(&img),
        Ok((Segment { file_offset: 0x3000, file_len: 0, dest_phys: 0x20_2800, mem_len: 0x800 }, 0x20_2800))
    );

    // Refusals name the tag and the field.
    let err = |img: &[u8]| plan(img).unwrap_err().to_string();
    // The first loaded byte would lie before the file's start (GRUB: seek fails).
    let img = flat(len, 0x40, &address(0x20_0100, 0x20_0000, 0, 0, 0x20_0000));
    assert_eq!(
        err(&img),
        "address tag: load_addr: header_addr 0x200100 and load_addr 0x200000 with the header at file offset 0x40 put the first loaded byte at file offset -192, outside the 12288-byte file (GRUB 2 cannot seek there either)"
    );
    // ...or past its end.
    let img = flat(len, 0x40, &address(0x20_0000, 0x20_4000, 0, 0, 0x20_4000));
    assert!(err(&img).starts_with("address tag: load_addr: "), "{}", err(&img));
    let img = flat(len, 0x40, &address(0x20_0040, 0x20_0000, 0x1f_f000, 0, 0x20_0000));
    assert_eq!(err(&img), "address tag: load_end_addr: 0x1ff000 is below load_addr 0x200000");
    let img = flat(len, 0x40, &address(0x20_0040, 0x20_0000, 0x20_2000, 0x20_1000, 0x20_0000));
    assert_eq!(
        err(&img),
        "address tag: bss_end_addr: 0x201000 is below the end of the loaded bytes 0x202000 (load_addr 0x200000 + load size 0x2000)"
    );
    // bss_end_addr below load_addr wraps in GRUB's 32-bit arithmetic to a
    // size of almost 4 GiB: that cannot fit below 4 GiB.
    let img = flat(len, 0x40, &address(0x20_0040, 0x20_0000, 0x20_1000, 0x10_0000, 0x20_0000));
    assert!(matches!(plan(&img), Err(Mb2Error::Above4G(_))));
    // Without an entry address tag.
    let mb = header(&[tag(htag::ADDRESS, 0, &[0x20_0040, 0x20_0000, 0, 0])]);
    assert_eq!(
        parse_header(&flat(len, 0x40, &mb)).unwrap_err().to_string(),
        "address tag without an entry address tag (GRUB 2 refuses this too)"
    );
}

#[test]
fn entry_tags_as_grub_on_bios() {
    // EFI i386 entry (type 8): GRUB i386-pc has no case for it, so a
    // required one is an unsupported tag; an optional one is ignored.
    let img = higher_half(false, &[tag(htag::ENTRY_ADDRESS_EFI32, 0, &[0x10_2000])]);
    assert_eq!(
        parse_header(&img).unwrap_err().to_string(),
        "Multiboot2 header tag type 8 (EFI i386 entry address) is not supported and not marked optional"
    );
    let img = higher_half(false, &[tag(htag::ENTRY_ADDRESS_EFI32, htag::FLAG_OPTIONAL, &[0x10_2000])]);
    assert_eq!(plan(&img).unwrap().entry, 0x10_1010);
    // EFI amd64 entry (9) and EFI boot services (7), required or not:
    // accepted and ignored on BIOS; the kernel enters at its i386 entry.
    for flags in [0, 1] {
        let img = higher_half(
            false,
            &[
                tag(htag::EFI_BS, flags, &[]),
                tag(htag::ENTRY_ADDRESS_EFI64, flags, &[0x10_2000]),
                tag(htag::ENTRY_ADDRESS, flags, &[0x10_1800]),
            ],
        );
        assert_eq!(plan(&img).unwrap().entry, 0x10_1800);
    }
}

#[test]
fn xen_4_17_header_is_accepted_and_placed_high() {
    // xen/arch/x86/boot/head.S (RELEASE-4.17.0): a required information
    // request for tags 4 and 6, required module alignment, an optional
    // relocatable tag (min = start, max 0xffffffff, 2 MiB aligned, prefer
    // high), optional console flags (EGA text), an optional 0x0x0
    // framebuffer tag, optional EFI boot services and EFI64 entry.
    let tags = [
        tag(htag::INFORMATION_REQUEST, 0, &[4, 6]),
        tag(htag::MODULE_ALIGN, 0, &[]),
        tag(htag::RELOCATABLE, htag::FLAG_OPTIONAL, &[0x20_0000, 0xffff_ffff, 0x20_0000, 2]),
        tag(htag::CONSOLE_FLAGS, htag::FLAG_OPTIONAL, &[CONSOLE_EGA_TEXT_SUPPORTED]),
        tag(htag::FRAMEBUFFER, htag::FLAG_OPTIONAL, &[0, 0, 0]),
        tag(htag::EFI_BS, htag::FLAG_OPTIONAL, &[]),
        tag(htag::ENTRY_ADDRESS_EFI64, htag::FLAG_OPTIONAL, &[0x20_0060]),
    ];
    // A 6 MiB image linked at 2 MiB (Xen's ELF32 loads by physical address).
    let mb = header(&tags);
    let img = elf(false, 0x20_0000, &[load(0x1000, 0x20_0000, 0x20_0000, 0x1000, 0x60_0000)], &mb, 0x2000);
    let h = parse_header(&img).unwrap();
    assert!(h.module_align && h.efi_bs && h.accepts_ega_text());
    assert_eq!(h.framebuffer, Some(FramebufferTag { width: 0, height: 0, depth: 0, optional: true }));
    assert!(h.required_but_absent(&[1, 2, 4, 6, 9, 21]).is_empty());
    let p = plan_load(&img, &h, &mut mem(), None).unwrap();
    // QEMU -m 512: RAM ends at 0x1ffe0000; the highest 2 MiB-aligned base
    // with the 6 MiB image below that is 0x1f800000 (GRUB 2 gives Xen that).
    let top = 0x1ffe_0000u64;
    let expect = (top - 0x60_0000) / 0x20_0000 * 0x20_0000;
    assert_eq!(expect, 0x1f80_0000);
    assert_eq!((p.load_base as u64, p.entry as u64), (expect, expect));
}

#[test]
fn relocation_ignores_where_downloads_are_staged() {
    // The same kernel gets the same base whether or not a staged download
    // (reserved in `avoid`) sits where it goes: placement is GRUB's, from the
    // memory map; the handoff moves the staged bytes out of the way.
    let img = higher_half(false, &[tag(htag::RELOCATABLE, 0, &[0x20_0000, 0xffff_ffff, 0x20_0000, 2])]);
    let h = parse_header(&img).unwrap();
    let alone = plan_load(&img, &h, &mut mem(), None).unwrap();
    let mut m = mem();
    let mut avoid = m.clone();
    avoid.reserve_always(Range::new(0x1f00_0000, 0x1ffe_0000), "staged file");
    let staged = plan_load(&img, &h, &mut m, Some(&mut avoid)).unwrap();
    assert_eq!(alone.load_base, 0x1fe0_0000);
    assert_eq!(staged.load_base, alone.load_base);
    // And the kernel is reserved in both views.
    assert!(m.check(staged.kernel_range).is_err());
    assert!(avoid.check(Range::new(0x1fe0_0000, 0x1fe0_1000)).is_err());
    // Low preference and none: the lowest aligned base at or above min_addr.
    for pref in [0, 1] {
        let img = higher_half(false, &[tag(htag::RELOCATABLE, 0, &[0x30_0000, 0x1000_0000, 0x1000, pref])]);
        assert_eq!(plan(&img).unwrap().load_base, 0x30_0000);
    }
}

#[test]
fn relocation_window_is_grubs_max_addr_minus_size() {
    // conf-tests F12, measured under GRUB 2.06 (-m 512): a 0x4e60-byte image,
    // min 0x200000, max 0x18000000, 4 KiB aligned, preference high, loads at
    // 0x17ff6000: alloc_chunk_align_safe hands max_addr - size on as the
    // limit for the end, so base <= align_down(max - 2 * size).
    let mb = header(&[
        tag(htag::ADDRESS, 0, &[0x20_0000, 0x20_0000, 0x20_1000, 0x20_4e60]),
        tag(htag::ENTRY_ADDRESS, 0, &[0x20_0100]),
        tag(htag::RELOCATABLE, 0, &[0x20_0000, 0x1800_0000, 0x1000, 2]),
    ]);
    let img = flat(0x1000, 0, &mb);
    let p = plan(&img).unwrap();
    assert_eq!(p.kernel_range.len(), 0x4e60);
    assert_eq!((p.load_base, p.entry), (0x17ff_6000, 0x17ff_6100));
    // A window that holds the image once but not twice: GRUB's fallback
    // places it with its end at max_addr (high) or its start at min (low).
    let tight = |pref| {
        header(&[
            tag(htag::ADDRESS, 0, &[0x20_0000, 0x20_0000, 0x20_1000, 0x20_4e60]),
            tag(htag::ENTRY_ADDRESS, 0, &[0x20_0100]),
            tag(htag::RELOCATABLE, 0, &[0x100_0000, 0x100_6000, 0x1000, pref]),
        ])
    };
    assert_eq!(plan(&flat(0x1000, 0, &tight(2))).unwrap().load_base, 0x100_1000);
    assert_eq!(plan(&flat(0x1000, 0, &tight(1))).unwrap().load_base, 0x100_0000);
    // Low preference far from the top is unaffected: min_addr.
    let low = header(&[
        tag(htag::ADDRESS, 0, &[0x20_0000, 0x20_0000, 0x20_1000, 0x20_4e60]),
        tag(htag::ENTRY_ADDRESS, 0, &[0x20_0100]),
        tag(htag::RELOCATABLE, 0, &[0x100_0000, 0x800_0000, 0x20_0000, 1]),
    ]);
    assert_eq!(plan(&flat(0x1000, 0, &low)).unwrap().load_base, 0x100_0000);
}
