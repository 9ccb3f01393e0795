//! Multiboot2 header-variant kernels, composed from a description.
//!
//! The code is built once: `tests/kernels/mbtest.S` with `-DGENERATED`,
//! linked at 0 and flattened (`target/dist/testkernels/mbcode.bin`). It is
//! position-independent and carries a range table at offset 8 (magic
//! `MBTG`). This module places it in a memory region together with a
//! Multiboot2 header made of the tags a [`Variant`] lists, wraps the region
//! in an ELF32, ELF64 or flat (address tag, "a.out kludge") file, and fills
//! the table with the ranges the kernel must hash at run time: the loaded
//! bytes around its stack, the bss, a second segment. [`Image::expected_ranges`]
//! gives the hashes those ranges must have if the loader put every byte
//! where the file says, so a test checks the loader against the file and
//! not only against another loader.
//!
//! Region layout (link addresses, `base` = where the header is):
//!
//! ```text
//! base                    Multiboot2 header, zero-padded to hdr_space
//! base + hdr_space        the code blob (entry point = its first byte)
//!   ... padded to 16      the kernel's stack: 8 KiB of zeros in the file
//!                         a 4 KiB pattern (file data)
//! data_end                bss (zeroed by the loader), `bss` bytes
//! bss_end
//! ```

use bootproto::multiboot2::{htag, HEADER_MAGIC};
use std::path::Path;

/// The stack the code uses, inside the file data (so every variant loads it).
const STACK: u32 = 0x2000;
/// Pattern bytes after the stack: loaded data the code never writes.
const TAIL: u32 = 0x1000;
/// Where an ELF file's region starts in the file by default (one page of
/// ELF headers).
pub const ELF_REGION_OFFSET: u32 = 0x1000;

/// Ways to spoil the header's fixed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFault {
    /// magic + architecture + length + checksum != 0.
    Checksum,
    /// Another architecture (4: 32-bit MIPS); the checksum still matches.
    Architecture(u32),
}

/// FNV-1a, 32 bits: what the test kernel computes over each range.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// The container the region is wrapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Elf32,
    Elf64,
    /// No ELF headers: the file starts with the region (header first).
    Flat,
}

/// A header tag field: what the layout implies, or a given number.
#[derive(Clone, Copy, Debug)]
pub enum V {
    Auto,
    Is(u32),
}

impl V {
    fn or(self, auto: u32) -> u32 {
        match self {
            V::Auto => auto,
            V::Is(v) => v,
        }
    }
}

/// Multiboot2 header tags (spec section 3.1; type numbers in `tag_type`).
#[derive(Clone, Debug)]
pub enum Tag {
    /// Type 1: the boot information tags the kernel asks for.
    InfoRequest { optional: bool, types: Vec<u32> },
    /// Type 2. Auto values: header_addr = base, load_addr = base +
    /// load_skip, load_end_addr = data_end, bss_end_addr = bss_end.
    Address { header_addr: V, load_addr: V, load_end_addr: V, bss_end_addr: V },
    /// Type 3; `size` 12 as the spec says or 16 as Nautilus writes it.
    Entry { addr: V, size: u32, optional: bool },
    /// Type 8 (EFI i386 entry) and 9 (EFI amd64 entry).
    EntryEfi { ty: u16, addr: V, optional: bool },
    /// Type 4.
    ConsoleFlags { flags: u32, optional: bool },
    /// Type 5.
    Framebuffer { width: u32, height: u32, depth: u32, optional: bool },
    /// Type 6.
    ModuleAlign { optional: bool },
    /// Type 7.
    EfiBs { optional: bool },
    /// Type 10.
    Relocatable { min: u32, max: u32, align: u32, preference: u32, optional: bool },
    /// Anything else, verbatim (type, flags, body after the 8-byte head).
    Raw { ty: u16, flags: u16, body: Vec<u8> },
}

fn flags(optional: bool) -> u16 {
    if optional {
        htag::FLAG_OPTIONAL
    } else {
        0
    }
}

/// How the region is laid out and wrapped.
#[derive(Clone, Debug)]
pub struct Layout {
    pub container: Container,
    /// Link address of the header (the region's start).
    pub base: u32,
    /// Bytes reserved for the header; the code follows.
    pub hdr_space: u32,
    /// Where loading starts, from `base`: 0 loads the header too; Nautilus
    /// loads from right after it (header_addr below load_addr).
    pub load_skip: u32,
    /// Bytes of bss after the file data.
    pub bss: u32,
    /// ELF: a second PT_LOAD (4 KiB pattern + 4 KiB bss) at this address.
    pub second_segment: Option<u32>,
    /// ELF: p_vaddr = p_paddr + this (a higher-half link); e_entry is virtual.
    pub vaddr_offset: u64,
    /// ELF: section headers (.text, .bss, and .shstrtab/.symtab/.strtab,
    /// which are not loaded by the program headers).
    pub sections: bool,
    /// ELF: e_entry instead of the code's virtual address.
    pub e_entry: Option<u64>,
    /// ELF: p_type of the first program header is PT_NOTE and a
    /// PT_GNU_STACK follows, besides the loads (loaders must skip them).
    pub extra_phdrs: bool,
    /// The file is gzip-compressed (both loaders decompress kernels).
    pub gzip: bool,
    /// ELF: the region's file offset (so the header's): loaders search the
    /// first 32 KiB only.
    pub elf_region_offset: u32,
    /// ELF: a SHT_REL section header too (GRUB refuses relocations).
    pub rel_section: bool,
    pub header_fault: Option<HeaderFault>,
}

impl Layout {
    pub fn elf32() -> Layout {
        Layout {
            container: Container::Elf32,
            base: 0x10_0000,
            hdr_space: 0x200,
            load_skip: 0,
            bss: 0x1000,
            second_segment: None,
            vaddr_offset: 0,
            sections: true,
            e_entry: None,
            extra_phdrs: false,
            gzip: false,
            elf_region_offset: ELF_REGION_OFFSET,
            rel_section: false,
            header_fault: None,
        }
    }
    pub fn elf64() -> Layout {
        Layout { container: Container::Elf64, ..Layout::elf32() }
    }
    pub fn flat(base: u32) -> Layout {
        Layout { container: Container::Flat, base, sections: false, ..Layout::elf32() }
    }
}

/// What a variant is expected to do under both loaders.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Both load and run it.
    Boot,
    /// Both refuse it. `grub`: regex of GRUB's error; `ours`: regex of
    /// chainloader.0's message (it must name the tag or field).
    Refuse { grub: &'static str, ours: &'static str },
}

/// One header variant: a name, a layout, the tags (in order), the outcome.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: &'static str,
    pub layout: Layout,
    pub tags: Vec<Tag>,
    pub expect: Expect,
}

/// One range the kernel hashes: link address, length, expected FNV-1a.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub addr: u32,
    pub len: u32,
    pub fnv: u32,
}

/// A composed kernel file and what the kernel must report about it.
pub struct Image {
    pub file: Vec<u8>,
    /// Ranges in table order (link addresses).
    pub ranges: Vec<Range>,
    /// Link address of the entry point (the code's first byte).
    pub entry: u32,
}

impl Image {
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.file).unwrap();
    }
}

/// The code blob and the offset of its range table.
pub struct Blob {
    bytes: Vec<u8>,
}

const TABLE_OFF: usize = 8;
const TABLE_MAX: usize = 12;

impl Blob {
    pub fn load(path: &Path) -> Blob {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/build)", path.display()));
        assert_eq!(&bytes[TABLE_OFF..TABLE_OFF + 4], b"MBTG", "{}: no range table at offset 8", path.display());
        Blob { bytes }
    }

    /// The blob from target/dist (scripts/build).
    pub fn dist() -> Blob {
        Blob::load(&crate::dist("testkernels/mbcode.bin"))
    }
}

fn pattern(seed: u32, len: u32) -> Vec<u8> {
    (0..len).map(|i| ((i.wrapping_add(seed)).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The addresses a layout implies (all link addresses).
#[derive(Clone, Copy, Debug)]
pub struct Symbols {
    pub base: u32,
    pub load_start: u32,
    pub code: u32,
    pub stack_bottom: u32,
    pub stack_top: u32,
    pub data_end: u32,
    pub bss_end: u32,
}

impl Blob {
    pub fn symbols(&self, l: &Layout) -> Symbols {
        let code = l.base + l.hdr_space;
        let stack_bottom = (code + self.bytes.len() as u32 + 15) & !15;
        let stack_top = stack_bottom + STACK;
        let data_end = stack_top + TAIL;
        Symbols {
            base: l.base,
            load_start: l.base + l.load_skip,
            code,
            stack_bottom,
            stack_top,
            data_end,
            bss_end: data_end + l.bss,
        }
    }

    /// Compose the kernel file for `v`.
    pub fn compose(&self, v: &Variant) -> Image {
        let l = &v.layout;
        let s = self.symbols(l);
        let mut header = header_bytes(&v.tags, &s);
        match l.header_fault {
            Some(HeaderFault::Checksum) => header[12] ^= 1,
            Some(HeaderFault::Architecture(a)) => {
                put32(&mut header, 4, a);
                let (len, magic) = (header.len() as u32, HEADER_MAGIC);
                put32(&mut header, 12, 0u32.wrapping_sub(magic.wrapping_add(a).wrapping_add(len)));
            }
            None => {}
        }
        assert!(header.len() as u32 <= l.hdr_space, "{}: header ({} bytes) exceeds hdr_space", v.name, header.len());

        // The region's file bytes: header, code, stack (zeros), pattern.
        let mut region = vec![0u8; (s.data_end - s.base) as usize];
        region[..header.len()].copy_from_slice(&header);
        let co = (s.code - s.base) as usize;
        region[co..co + self.bytes.len()].copy_from_slice(&self.bytes);
        let to = (s.stack_top - s.base) as usize;
        region[to..].copy_from_slice(&pattern(s.base, TAIL));

        // The bss exists for the loader if the ELF says so, or the address
        // tag's bss_end_addr does; the second segment likewise.
        let address_tag = v.tags.iter().find_map(|t| match t {
            Tag::Address { bss_end_addr, .. } => Some(bss_end_addr.or(s.bss_end)),
            _ => None,
        });
        let bss_declared = match address_tag {
            Some(bss_end) => bss_end != 0 && l.bss > 0,
            None => l.container != Container::Flat && l.bss > 0,
        };
        let seg2 = l.second_segment.filter(|_| l.container != Container::Flat && address_tag.is_none());

        let mut ranges =
            vec![(s.load_start, s.stack_bottom - s.load_start, None), (s.stack_top, s.data_end - s.stack_top, None)];
        if bss_declared {
            ranges.push((s.data_end, l.bss, Some(0u8)));
        }
        let seg2_data = seg2.map(|a| (a, pattern(a, 0x1000)));
        if let Some((a, d)) = &seg2_data {
            ranges.push((*a, 0x1000, None));
            ranges.push((a + 0x1000, 0x1000, Some(0)));
            let _ = d;
        }
        assert!(ranges.len() <= TABLE_MAX);

        // Fill the table in the code's copy inside the region.
        let t = co + TABLE_OFF;
        put32(&mut region, t + 4, s.code);
        put32(&mut region, t + 8, s.stack_top);
        put32(&mut region, t + 12, ranges.len() as u32);
        for (i, r) in ranges.iter().enumerate() {
            put32(&mut region, t + 16 + 8 * i, r.0);
            put32(&mut region, t + 20 + 8 * i, r.1);
        }

        let expected: Vec<Range> = ranges
            .iter()
            .map(|&(addr, len, zero)| {
                let fnv = match zero {
                    Some(z) => fnv1a(&vec![z; len as usize]),
                    None => {
                        if let Some((a, d)) = seg2_data.as_ref().filter(|(a, _)| *a == addr) {
                            let _ = a;
                            fnv1a(d)
                        } else {
                            let o = (addr - s.base) as usize;
                            fnv1a(&region[o..o + len as usize])
                        }
                    }
                };
                Range { addr, len, fnv }
            })
            .collect();

        let file = match l.container {
            Container::Flat => region,
            Container::Elf32 | Container::Elf64 => {
                elf_file(l, &s, &region, seg2_data.as_ref().map(|(a, d)| (*a, d.as_slice())), self.bytes.len() as u32)
            }
        };
        let file = if l.gzip { gzip(&file) } else { file };
        Image { file, ranges: expected, entry: s.code }
    }
}

/// `gzip -9 -n` of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut c = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run gzip");
    let mut stdin = c.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = c.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

fn tag_type(t: &Tag) -> u16 {
    match t {
        Tag::InfoRequest { .. } => htag::INFORMATION_REQUEST,
        Tag::Address { .. } => htag::ADDRESS,
        Tag::Entry { .. } => htag::ENTRY_ADDRESS,
        Tag::ConsoleFlags { .. } => htag::CONSOLE_FLAGS,
        Tag::Framebuffer { .. } => htag::FRAMEBUFFER,
        Tag::ModuleAlign { .. } => htag::MODULE_ALIGN,
        Tag::EfiBs { .. } => htag::EFI_BS,
        Tag::EntryEfi { ty, .. } => *ty,
        Tag::Relocatable { .. } => htag::RELOCATABLE,
        Tag::Raw { ty, .. } => *ty,
    }
}

/// The header: magic, architecture 0, length, checksum, the tags (each
/// 8-aligned), the end tag.
fn header_bytes(tags: &[Tag], s: &Symbols) -> Vec<u8> {
    let mut b: Vec<u8> = vec![0; 16];
    for t in tags {
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        let (fl, body): (u16, Vec<u32>) = match t {
            Tag::InfoRequest { optional, types } => (flags(*optional), types.clone()),
            Tag::Address { header_addr, load_addr, load_end_addr, bss_end_addr } => (
                0,
                vec![
                    header_addr.or(s.base),
                    load_addr.or(s.load_start),
                    load_end_addr.or(s.data_end),
                    bss_end_addr.or(s.bss_end),
                ],
            ),
            Tag::Entry { addr, size, optional } => {
                let mut v = vec![addr.or(s.code)];
                if *size == 16 {
                    v.push(0);
                }
                (flags(*optional), v)
            }
            Tag::EntryEfi { addr, optional, .. } => (flags(*optional), vec![addr.or(s.code)]),
            Tag::ConsoleFlags { flags: f, optional } => (flags(*optional), vec![*f]),
            Tag::Framebuffer { width, height, depth, optional } => (flags(*optional), vec![*width, *height, *depth]),
            Tag::ModuleAlign { optional } => (flags(*optional), vec![]),
            Tag::EfiBs { optional } => (flags(*optional), vec![]),
            Tag::Relocatable { min, max, align, preference, optional } => {
                (flags(*optional), vec![*min, *max, *align, *preference])
            }
            Tag::Raw { flags: f, body, .. } => {
                b.extend_from_slice(&tag_type(t).to_le_bytes());
                b.extend_from_slice(&f.to_le_bytes());
                b.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
                b.extend_from_slice(body);
                continue;
            }
        };
        b.extend_from_slice(&tag_type(t).to_le_bytes());
        b.extend_from_slice(&fl.to_le_bytes());
        b.extend_from_slice(&(8 + 4 * body.len() as u32).to_le_bytes());
        for w in body {
            b.extend_from_slice(&w.to_le_bytes());
        }
    }
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
    // The end tag.
    b.extend_from_slice(&htag::END.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&8u32.to_le_bytes());
    let len = b.len() as u32;
    put32(&mut b, 0, HEADER_MAGIC);
    put32(&mut b, 4, 0);
    put32(&mut b, 8, len);
    put32(&mut b, 12, 0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(len)));
    b
}

/// An ELF file: headers in the first page, the region at
/// ELF_REGION_OFFSET, then the second segment, then (with `sections`)
/// .shstrtab, .symtab, .strtab and the section header table.
fn elf_file(l: &Layout, s: &Symbols, region: &[u8], seg2: Option<(u32, &[u8])>, code_len: u32) -> Vec<u8> {
    let is64 = l.container == Container::Elf64;
    let ro = l.elf_region_offset;
    let mut f = vec![0u8; ro as usize];
    f.extend_from_slice(region);
    let seg2_off = seg2.map(|(_, d)| {
        while !f.len().is_multiple_of(0x1000) {
            f.push(0);
        }
        let o = f.len();
        f.extend_from_slice(d);
        o
    });

    // Program headers: (type, offset, paddr, filesz, memsz, flags).
    let mut ph: Vec<(u32, u64, u64, u64, u64, u32)> = vec![];
    if l.extra_phdrs {
        ph.push((4, 0, 0, 0, 0, 4)); // PT_NOTE, empty
    }
    ph.push((1, ro as u64, s.base as u64, region.len() as u64, (s.bss_end - s.base) as u64, 7));
    if let (Some((a, d)), Some(o)) = (seg2, seg2_off) {
        ph.push((1, o as u64, a as u64, d.len() as u64, 2 * d.len() as u64, 6));
    }
    if l.extra_phdrs {
        ph.push((0x6474_e551, 0, 0, 0, 0, 6)); // PT_GNU_STACK
    }

    // Sections: null, .text, .bss, .shstrtab, .symtab, .strtab.
    let mut shdrs: Vec<[u64; 10]> = vec![]; // name type flags addr offset size link info align entsize
    let mut shstrndx = 0u16;
    if l.sections {
        let names = b"\0.text\0.bss\0.shstrtab\0.symtab\0.strtab\0.rel.text\0".to_vec();
        let name = |n: &str| -> u64 {
            let pat = format!("{n}\0");
            names.windows(pat.len()).position(|w| w == pat.as_bytes()).unwrap() as u64
        };
        let strtab = b"\0entry\0range_table\0".to_vec();
        let mut symtab = vec![];
        let sym = |st_name: u32, value: u64, size: u64, out: &mut Vec<u8>| {
            if is64 {
                out.extend_from_slice(&st_name.to_le_bytes());
                out.extend_from_slice(&[0x12, 0]); // FUNC GLOBAL
                out.extend_from_slice(&1u16.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
                out.extend_from_slice(&size.to_le_bytes());
            } else {
                out.extend_from_slice(&st_name.to_le_bytes());
                out.extend_from_slice(&(value as u32).to_le_bytes());
                out.extend_from_slice(&(size as u32).to_le_bytes());
                out.extend_from_slice(&[0x12, 0]);
                out.extend_from_slice(&1u16.to_le_bytes());
            }
        };
        let entsize = if is64 { 24 } else { 16 };
        symtab.extend(std::iter::repeat_n(0u8, entsize));
        sym(1, s.code as u64 + l.vaddr_offset, code_len as u64, &mut symtab);
        sym(7, s.code as u64 + 8 + l.vaddr_offset, 112, &mut symtab);
        let place = |data: &[u8], f: &mut Vec<u8>| -> u64 {
            while !f.len().is_multiple_of(8) {
                f.push(0);
            }
            let o = f.len() as u64;
            f.extend_from_slice(data);
            o
        };
        let o_shstr = place(&names, &mut f);
        let o_sym = place(&symtab, &mut f);
        let o_str = place(&strtab, &mut f);
        let text_va = s.code as u64 + l.vaddr_offset;
        shdrs.push([0; 10]);
        shdrs.push([name(".text"), 1, 6, text_va, (ro + s.code - s.base) as u64, code_len as u64, 0, 0, 16, 0]);
        shdrs.push([
            name(".bss"),
            8,
            3,
            s.data_end as u64 + l.vaddr_offset,
            (ro + s.data_end - s.base) as u64,
            l.bss as u64,
            0,
            0,
            16,
            0,
        ]);
        shdrs.push([name(".shstrtab"), 3, 0, 0, o_shstr, names.len() as u64, 0, 0, 1, 0]);
        shdrs.push([name(".symtab"), 2, 0, 0, o_sym, symtab.len() as u64, 5, 1, 8, entsize as u64]);
        shdrs.push([name(".strtab"), 3, 0, 0, o_str, strtab.len() as u64, 0, 0, 1, 0]);
        if l.rel_section {
            // SHT_REL, empty, applying to .text.
            shdrs.push([name(".rel.text"), 9, 0, 0, o_str, 0, 4, 1, 4, 8]);
        }
        shstrndx = 3;
    }
    while !f.len().is_multiple_of(8) {
        f.push(0);
    }
    let shoff = if shdrs.is_empty() { 0 } else { f.len() as u64 };
    for sh in &shdrs {
        if is64 {
            f.extend_from_slice(&(sh[0] as u32).to_le_bytes());
            f.extend_from_slice(&(sh[1] as u32).to_le_bytes());
            for x in &sh[2..6] {
                f.extend_from_slice(&x.to_le_bytes());
            }
            f.extend_from_slice(&(sh[6] as u32).to_le_bytes());
            f.extend_from_slice(&(sh[7] as u32).to_le_bytes());
            f.extend_from_slice(&sh[8].to_le_bytes());
            f.extend_from_slice(&sh[9].to_le_bytes());
        } else {
            for x in sh {
                f.extend_from_slice(&(*x as u32).to_le_bytes());
            }
        }
    }

    // ELF header and program headers at the start.
    let entry = l.e_entry.unwrap_or(s.code as u64 + l.vaddr_offset);
    let mut h: Vec<u8> = vec![0x7f, b'E', b'L', b'F', if is64 { 2 } else { 1 }, 1, 1, 0];
    h.resize(16, 0);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&(if is64 { 62u16 } else { 3u16 }).to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    let (ehsize, phentsize, shentsize) = if is64 { (64u16, 56u16, 64u16) } else { (52, 32, 40) };
    if is64 {
        h.extend_from_slice(&entry.to_le_bytes());
        h.extend_from_slice(&(ehsize as u64).to_le_bytes());
        h.extend_from_slice(&shoff.to_le_bytes());
    } else {
        h.extend_from_slice(&(entry as u32).to_le_bytes());
        h.extend_from_slice(&(ehsize as u32).to_le_bytes());
        h.extend_from_slice(&(shoff as u32).to_le_bytes());
    }
    h.extend_from_slice(&0u32.to_le_bytes());
    for x in [ehsize, phentsize, ph.len() as u16, shentsize, shdrs.len() as u16, shstrndx] {
        h.extend_from_slice(&x.to_le_bytes());
    }
    for &(ty, off, paddr, filesz, memsz, fl) in &ph {
        let vaddr = if ty == 1 { paddr + l.vaddr_offset } else { 0 };
        if is64 {
            h.extend_from_slice(&ty.to_le_bytes());
            h.extend_from_slice(&fl.to_le_bytes());
            for x in [off, vaddr, paddr, filesz, memsz, 0x1000] {
                h.extend_from_slice(&x.to_le_bytes());
            }
        } else {
            for x in [ty, off as u32, vaddr as u32, paddr as u32, filesz as u32, memsz as u32, fl, 0x1000] {
                h.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    assert!(h.len() <= ro as usize);
    f[..h.len()].copy_from_slice(&h);
    f
}
