//! Building the Multiboot2 boot information (MBI) the kernel finds at EBX.
//!
//! The tags come in the order GRUB 2 (`grub_multiboot2_make_mbi`) writes them
//! on a BIOS machine, with the same sizes and field layouts, so that a kernel
//! sees the same structure as under GRUB:
//!
//! 21 load base, 1 command line, 2 boot loader name, 10 APM (when the BIOS
//! has it), 3 modules, 6 memory map, 9 ELF sections, 4 basic meminfo,
//! 16 network, 7 VBE (in a VBE graphics mode), 8 framebuffer, 14 ACPI old
//! RSDP, 15 ACPI new RSDP, 0 end.
//!
//! (GRUB writes a boot device tag (5) only when booting from a disk.)

use super::header::ElfSections;
use super::tags::tag;
use crate::bytes::Writer;
use crate::memmap::E820Entry;
use crate::vbe::{Color, Graphics, VbeTag};

pub use crate::bytes::BufferTooSmall;

/// Framebuffer types: indexed colour, direct RGB, EGA text.
pub const FB_TYPE_INDEXED: u8 = 0;
pub const FB_TYPE_RGB: u8 = 1;
pub const FB_TYPE_EGA_TEXT: u8 = 2;

/// One module as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    pub start: u32,
    /// One past the last byte (start + size), as GRUB sets it.
    pub end: u32,
    pub string: &'a str,
}

/// The EGA text console (what GRUB reports in text mode: 0xB8000, pitch
/// 2 * columns, 16 bits per character cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EgaText {
    pub columns: u32,
    pub rows: u32,
}

/// Whether Xen takes a boot loader of this name for GRUB 2 and so keeps the
/// first word of its command line and of every module string: Xen 4.17's
/// `loader_is_grub2` (xen/arch/x86/setup.c) looks for "GRUB " followed by
/// anything but '0' (GRUB Legacy called itself "GNU GRUB 0.9x" and passed
/// the image name as the first word). `const` so that the chainloader can
/// check its default name at compile time.
pub const fn xen_sees_grub2(name: &str) -> bool {
    let b = name.as_bytes();
    let mut i = 0;
    while i + 5 <= b.len() {
        if b[i] == b'G' && b[i + 1] == b'R' && b[i + 2] == b'U' && b[i + 3] == b'B' && b[i + 4] == b' ' {
            // The first occurrence decides (strstr).
            return !(i + 5 < b.len() && b[i + 5] == b'0');
        }
        i += 1;
    }
    false
}

/// What tag 8 describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framebuffer {
    EgaText(EgaText),
    /// A VBE graphics mode (with tag 7 before it).
    Graphics(Graphics),
}

/// The BIOS APM interface (INT 15h AX=5300h, then 5304h/5303h to connect
/// the 32-bit interface), as GRUB collects it for tag 10.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Apm {
    pub version: u16,
    pub cseg: u16,
    pub offset: u32,
    pub cseg_16: u16,
    pub dseg: u16,
    pub flags: u16,
    pub cseg_len: u16,
    pub cseg_16_len: u16,
    pub dseg_len: u16,
}

/// Everything that goes into the MBI.
#[derive(Clone, Debug)]
pub struct BootInfo<'a> {
    pub load_base: u32,
    pub cmdline: &'a str,
    pub loader_name: &'a str,
    pub apm: Option<Apm>,
    pub modules: &'a [Module<'a>],
    /// The sanitised map (see `memmap::sanitize`), E820 types as they are.
    pub mmap: &'a [E820Entry],
    /// `(mem_lower, mem_upper)` in KiB (see `memmap::meminfo`).
    pub meminfo: (u32, u32),
    pub elf_sections: Option<&'a ElfSections>,
    /// The raw DHCPACK packet.
    pub dhcp_ack: Option<&'a [u8]>,
    pub framebuffer: Option<Framebuffer>,
    /// Tag 7, present in a VBE graphics mode.
    pub vbe: Option<&'a VbeTag>,
    /// The 20-byte ACPI 1.0 RSDP (revision 0).
    pub acpi_old: Option<&'a [u8]>,
    /// The whole ACPI 2.0+ RSDP (`length` bytes).
    pub acpi_new: Option<&'a [u8]>,
}

/// A tag's 8-byte header: type and size (of the header and the payload,
/// without the padding to the next tag).
fn tag_header(w: &mut Writer, ty: u32, size: usize) {
    w.le_u32(ty);
    w.le_u32(size as u32);
}

/// A tag whose payload is a NUL-terminated string.
fn string_tag(w: &mut Writer, ty: u32, s: &str) {
    tag_header(w, ty, 8 + s.len() + 1);
    w.bytes(s.as_bytes());
    w.u8(0);
    w.align(8);
}

fn write_all(info: &BootInfo, total_size: u32, w: &mut Writer) {
    w.le_u32(total_size);
    w.le_u32(0); // reserved

    tag_header(w, tag::LOAD_BASE_ADDR, 12);
    w.le_u32(info.load_base);
    w.align(8);

    string_tag(w, tag::CMDLINE, info.cmdline);
    string_tag(w, tag::BOOT_LOADER_NAME, info.loader_name);
    if let Some(a) = info.apm {
        apm_tag(w, &a);
    }
    for m in info.modules {
        module_tag(w, m);
    }
    mmap_tag(w, info.mmap);
    elf_sections_tag(w, info.elf_sections);

    tag_header(w, tag::BASIC_MEMINFO, 16);
    w.le_u32(info.meminfo.0);
    w.le_u32(info.meminfo.1);

    if let Some(ack) = info.dhcp_ack {
        raw_tag(w, tag::NETWORK, ack);
    }
    if let Some(v) = info.vbe {
        vbe_tag(w, v);
    }
    match &info.framebuffer {
        Some(Framebuffer::EgaText(fb)) => ega_text_framebuffer_tag(w, fb),
        Some(Framebuffer::Graphics(g)) => graphics_framebuffer_tag(w, g),
        None => {}
    }
    if let Some(r) = info.acpi_old {
        raw_tag(w, tag::ACPI_OLD, r);
    }
    if let Some(r) = info.acpi_new {
        raw_tag(w, tag::ACPI_NEW, r);
    }

    tag_header(w, tag::END, 8);
}

/// A tag whose payload is `payload` as it is (network, ACPI RSDPs).
fn raw_tag(w: &mut Writer, ty: u32, payload: &[u8]) {
    tag_header(w, ty, 8 + payload.len());
    w.bytes(payload);
    w.align(8);
}

/// Tag 10: the APM interface.
fn apm_tag(w: &mut Writer, a: &Apm) {
    tag_header(w, tag::APM, 28);
    w.le_u16(a.version);
    w.le_u16(a.cseg);
    w.le_u32(a.offset);
    w.le_u16(a.cseg_16);
    w.le_u16(a.dseg);
    w.le_u16(a.flags);
    w.le_u16(a.cseg_len);
    w.le_u16(a.cseg_16_len);
    w.le_u16(a.dseg_len);
    w.align(8);
}

/// Tag 3: one module and its NUL-terminated string.
fn module_tag(w: &mut Writer, m: &Module) {
    tag_header(w, tag::MODULE, 16 + m.string.len() + 1);
    w.le_u32(m.start);
    w.le_u32(m.end);
    w.bytes(m.string.as_bytes());
    w.u8(0);
    w.align(8);
}

/// Tag 6: the memory map, 24-byte entries.
fn mmap_tag(w: &mut Writer, mmap: &[E820Entry]) {
    tag_header(w, tag::MMAP, 16 + 24 * mmap.len());
    w.le_u32(24); // entry_size
    w.le_u32(0); // entry_version
    for e in mmap {
        w.le_u64(e.base);
        w.le_u64(e.len);
        w.le_u32(e.kind);
        w.le_u32(0);
    }
    w.align(8);
}

/// Tag 9: the ELF section headers.
fn elf_sections_tag(w: &mut Writer, sections: Option<&ElfSections>) {
    // GRUB writes tag 9 for every kernel; with num = 0 for a.out-kludge ones.
    // Its layout uses 32-bit num/entsize/shndx fields (20-byte header).
    let empty = ElfSections { num: 0, entsize: 0, shndx: 0, table: alloc::vec::Vec::new() };
    let s = sections.unwrap_or(&empty);
    tag_header(w, tag::ELF_SECTIONS, 20 + s.table.len());
    w.le_u32(s.num);
    w.le_u32(s.entsize);
    w.le_u32(s.shndx);
    w.bytes(&s.table);
    w.align(8);
}

/// Tag 7: the VBE controller and mode information.
fn vbe_tag(w: &mut Writer, v: &VbeTag) {
    // multiboot_tag_vbe: 8 + 8 + 512 + 256 bytes.
    tag_header(w, tag::VBE, 784);
    w.le_u16(v.mode);
    w.le_u16(v.interface_seg);
    w.le_u16(v.interface_off);
    w.le_u16(v.interface_len);
    w.bytes(&v.control_info);
    w.bytes(&v.mode_info);
}

/// Tag 8 for the EGA text console.
fn ega_text_framebuffer_tag(w: &mut Writer, fb: &EgaText) {
    // multiboot_tag_framebuffer_common: 32 bytes, no colour info for text.
    tag_header(w, tag::FRAMEBUFFER, 32);
    w.le_u64(0xb8000);
    w.le_u32(2 * fb.columns); // pitch
    w.le_u32(fb.columns);
    w.le_u32(fb.rows);
    w.u8(16); // bpp
    w.u8(FB_TYPE_EGA_TEXT);
    w.le_u16(0); // reserved
}

/// Tag 8 for a VBE graphics mode.
fn graphics_framebuffer_tag(w: &mut Writer, g: &Graphics) {
    // The common part, then the colour info; sizes as GRUB sets them
    // (`retrieve_video_parameters`): 32 + 6 for RGB, 32 + 2 + 3n for
    // indexed.
    let size = match &g.color {
        Color::Rgb(_) => 38,
        Color::Indexed(p) => 34 + 3 * p.len(),
    };
    tag_header(w, tag::FRAMEBUFFER, size);
    w.le_u64(g.addr);
    w.le_u32(g.pitch);
    w.le_u32(g.width);
    w.le_u32(g.height);
    w.u8(g.bpp);
    match &g.color {
        Color::Indexed(p) => {
            w.u8(FB_TYPE_INDEXED);
            w.le_u16(0);
            w.le_u16(p.len() as u16);
            for c in p {
                w.bytes(c);
            }
        }
        Color::Rgb(f) => {
            w.u8(FB_TYPE_RGB);
            w.le_u16(0);
            w.bytes(f);
        }
    }
    w.align(8);
}

/// The tag types the MBI for `info` holds, in order (for telling which
/// required tags are left out).
pub fn tags_present(info: &BootInfo) -> alloc::vec::Vec<u32> {
    let mut t = alloc::vec![tag::LOAD_BASE_ADDR, tag::CMDLINE, tag::BOOT_LOADER_NAME];
    if info.apm.is_some() {
        t.push(tag::APM);
    }
    if !info.modules.is_empty() {
        t.push(tag::MODULE);
    }
    t.extend([tag::MMAP, tag::ELF_SECTIONS, tag::BASIC_MEMINFO]);
    if info.dhcp_ack.is_some() {
        t.push(tag::NETWORK);
    }
    if info.vbe.is_some() {
        t.push(tag::VBE);
    }
    if info.framebuffer.is_some() {
        t.push(tag::FRAMEBUFFER);
    }
    if info.acpi_old.is_some() {
        t.push(tag::ACPI_OLD);
    }
    if info.acpi_new.is_some() {
        t.push(tag::ACPI_NEW);
    }
    t.push(tag::END);
    t
}

/// How much memory GRUB 2 reserves for the MBI (`grub_multiboot2_get_mbi_size`
/// in grub-core/loader/multiboot_mbi2.c): an upper bound that counts every
/// tag it might write (boot device, framebuffer with its largest colour
/// info, old RSDP, VBE, APM) whether or not it does. The chunk's size only
/// decides which gap the MBI fits in, so it is reproduced for placement;
/// never less than the real size.
pub fn grub_chunk_size(info: &BootInfo) -> usize {
    let a8 = |n: usize| n.div_ceil(8) * 8;
    let modules: usize = info.modules.iter().map(|m| 16 + a8(m.string.len() + 1)).sum();
    let elf = info.elf_sections.map_or(0, |e| a8(e.entsize as usize * e.num as usize));
    let estimate = 8 + 8 + 8
        + (8 + a8(info.cmdline.len() + 1))
        + (8 + a8(info.loader_name.len() + 1))
        + modules
        + a8(16) // basic meminfo
        + a8(20) // boot device
        + a8(20) + elf // ELF sections
        + a8(16 + 24 * info.mmap.len())
        + a8(40) // sizeof (struct multiboot_tag_framebuffer)
        + a8(8 + 20) // old ACPI RSDP
        + a8(12) // load base
        + info.acpi_new.map_or(0, |r| a8(8 + r.len()))
        + info.dhcp_ack.map_or(0, |d| a8(8 + d.len()))
        + 784 + 7 // VBE
        + 28 + 7; // APM
    estimate.max(size(info))
}

/// The MBI's size in bytes.
pub fn size(info: &BootInfo) -> usize {
    let mut w = Writer::counter();
    write_all(info, 0, &mut w);
    w.len()
}

/// Writes the MBI into `buf` (which should be 8-byte aligned where it will
/// finally sit) and returns its size.
pub fn write(info: &BootInfo, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let need = size(info);
    if buf.len() < need {
        return Err(BufferTooSmall { need, have: buf.len() });
    }
    let mut w = Writer::new(&mut buf[..need]);
    write_all(info, need as u32, &mut w);
    w.finish()
}

/// The ACPI RSDPs in a BIOS area (the first KiB of the EBDA, or
/// 0xE0000-0xFFFFF), found as GRUB finds them: a 16-byte aligned "RSD PTR "
/// whose first 20 bytes sum to zero. A revision 0 pointer is the old RSDP
/// (tag 14); one with a later revision, a `length` below 1 KiB and a zero
/// sum over `length` bytes is the new RSDP (tag 15). Returns `(old, new)`.
pub fn find_rsdp(area: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let sum = |b: &[u8]| b.iter().fold(0u8, |a, &x| a.wrapping_add(x));
    let (mut old, mut new) = (None, None);
    for off in (0..area.len().saturating_sub(19)).step_by(16) {
        let p = &area[off..];
        if &p[..8] != b"RSD PTR " || sum(&p[..20]) != 0 {
            continue;
        }
        if p[15] == 0 {
            old = old.or(Some(&p[..20]));
        } else if p.len() >= 36 {
            let len = u32::from_le_bytes([p[20], p[21], p[22], p[23]]) as usize;
            if (36..1024).contains(&len) && len <= p.len() && sum(&p[..len]) == 0 {
                new = new.or(Some(&p[..len]));
            }
        }
    }
    (old, new)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn words(b: &[u8]) -> Vec<u32> {
        b.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    /// Boot information with only the memory map (and what follows from
    /// it) filled in; tests add what they look at.
    pub(crate) fn minimal<'a>(mmap: &'a [E820Entry]) -> BootInfo<'a> {
        BootInfo {
            load_base: 0x100000,
            cmdline: "",
            loader_name: "chainloader 0.1.0",
            apm: None,
            modules: &[],
            mmap,
            meminfo: (639, 523136),
            elf_sections: None,
            dhcp_ack: None,
            framebuffer: None,
            vbe: None,
            acpi_old: None,
            acpi_new: None,
        }
    }

    #[test]
    fn minimal_layout() {
        let mmap = [E820Entry::new(0, 0x9fc00, 1), E820Entry::new(0x100000, 0x1fee0000, 1)];
        let info = minimal(&mmap);
        let mut buf = vec![0xaau8; 512];
        let n = write(&info, &mut buf).unwrap();
        let w = words(&buf[..n]);
        let expect: Vec<u32> = vec![
            n as u32, 0, // total_size, reserved
            21, 12, 0x100000, 0, // load base (12 bytes, padded)
            1, 9, 0, 0, // cmdline "" (8 + 1 -> 16)
        ];
        assert_eq!(&w[..10], &expect[..]);
        // Boot loader name: 8 + 17 + 1 = 26 -> padded to 32.
        assert_eq!(&w[10..12], &[2, 26]);
        assert_eq!(&buf[48..65], b"chainloader 0.1.0");
        assert_eq!(buf[65], 0);
        // mmap at 72: 16 + 2 * 24 = 64.
        assert_eq!(&w[18..22], &[6, 64, 24, 0]);
        assert_eq!(&w[22..28], &[0, 0, 0x9fc00, 0, 1, 0]);
        assert_eq!(&w[28..34], &[0x100000, 0, 0x1fee0000, 0, 1, 0]);
        // ELF sections, empty: 20 bytes -> 24.
        assert_eq!(&w[34..40], &[9, 20, 0, 0, 0, 0]);
        // Basic meminfo: 16.
        assert_eq!(&w[40..44], &[4, 16, 639, 523136]);
        // End.
        assert_eq!(&w[44..46], &[0, 8]);
        assert_eq!(n, 46 * 4);
        assert_eq!(size(&info), n);
        // GRUB's estimate: 24 + 16 + 32 + 16 + 24 + 24 + 64 + 40 + 32 + 16 + 791 + 35.
        assert_eq!(grub_chunk_size(&info), 24 + 16 + 32 + 16 + 24 + 24 + 64 + 40 + 32 + 16 + 791 + 35);
    }

    #[test]
    fn all_tags_in_grub_order_and_aligned() {
        let mmap = [E820Entry::new(0, 0x9fc00, 1)];
        let mods = [
            Module { start: 0x200000, end: 0x200123, string: "initrd arg=1" },
            Module { start: 0x201000, end: 0x201000, string: "" },
        ];
        let secs = ElfSections { num: 2, entsize: 40, shndx: 1, table: vec![7u8; 80] };
        let rsdp_v1 = *b"RSD PTR \x00BOCHS \x00\x00\x00\x00\x00";
        let mut rsdp_v2 = vec![0u8; 36];
        rsdp_v2[..8].copy_from_slice(b"RSD PTR ");
        let ack = vec![0x02u8; 300];
        let apm = Apm { version: 0x102, cseg: 0xf000, offset: 0x1234, flags: 3, ..Default::default() };
        let info = BootInfo {
            cmdline: "console=ttyS0",
            apm: Some(apm),
            modules: &mods,
            elf_sections: Some(&secs),
            dhcp_ack: Some(&ack),
            framebuffer: Some(Framebuffer::EgaText(EgaText { columns: 80, rows: 25 })),
            acpi_old: Some(&rsdp_v1),
            acpi_new: Some(&rsdp_v2),
            ..minimal(&mmap)
        };
        let mut buf = vec![0u8; 2048];
        let n = write(&info, &mut buf).unwrap();
        assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize, n);
        // Walk the tags.
        let mut p = 8;
        let mut seen = Vec::new();
        loop {
            assert_eq!(p % 8, 0);
            let ty = u32::from_le_bytes(buf[p..p + 4].try_into().unwrap());
            let sz = u32::from_le_bytes(buf[p + 4..p + 8].try_into().unwrap()) as usize;
            seen.push((ty, sz));
            if ty == 0 {
                p += 8;
                break;
            }
            if ty == 3 && seen.iter().filter(|t| t.0 == 3).count() == 1 {
                assert_eq!(&buf[p + 8..p + 16], &[0, 0, 0x20, 0, 0x23, 0x01, 0x20, 0]);
                assert_eq!(&buf[p + 16..p + 29], b"initrd arg=1\0");
            }
            if ty == 10 {
                assert_eq!(&buf[p + 8..p + 16], &[0x02, 0x01, 0x00, 0xf0, 0x34, 0x12, 0, 0]);
                assert_eq!(&buf[p + 20..p + 22], &[3, 0]);
            }
            if ty == 8 {
                let w = words(&buf[p..p + 32]);
                assert_eq!(&w[..7], &[8, 32, 0xb8000, 0, 160, 80, 25]);
                assert_eq!(&buf[p + 28..p + 32], &[16, 2, 0, 0]);
            }
            p += sz.div_ceil(8) * 8;
        }
        assert_eq!(p, n);
        assert_eq!(
            seen,
            vec![
                (21, 12),
                (1, 8 + 14),
                (2, 8 + 18),
                (10, 28),
                (3, 16 + 13),
                (3, 17),
                (6, 16 + 24),
                (9, 20 + 80),
                (4, 16),
                (16, 8 + 300),
                (8, 32),
                (14, 28),
                (15, 44),
                (0, 8)
            ]
        );
        assert_eq!(write(&info, &mut buf[..n - 1]), Err(BufferTooSmall { need: n, have: n - 1 }));
    }

    fn rsdp(rev: u8, len: usize) -> Vec<u8> {
        let mut r = vec![0u8; len.max(20)];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[9..15].copy_from_slice(b"BOCHS ");
        r[15] = rev;
        if len >= 36 {
            r[20..24].copy_from_slice(&(len as u32).to_le_bytes());
        }
        let s = r[..20].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        r[8] = 0u8.wrapping_sub(s);
        if len >= 36 {
            let s = r[..len].iter().fold(0u8, |a, &x| a.wrapping_add(x));
            r[32] = 0u8.wrapping_sub(s);
        }
        r
    }

    #[test]
    fn rsdp_search() {
        let mut area = vec![0u8; 0x2000];
        // A misaligned copy is ignored; a bad checksum too.
        area[0x108..0x11c].copy_from_slice(&rsdp(0, 20));
        let mut bad = rsdp(0, 20);
        bad[8] ^= 1;
        area[0x200..0x214].copy_from_slice(&bad);
        assert_eq!(find_rsdp(&area), (None, None));
        area[0x400..0x414].copy_from_slice(&rsdp(0, 20));
        let (old, new) = find_rsdp(&area);
        assert_eq!(old, Some(&rsdp(0, 20)[..]));
        assert_eq!(new, None);
        // A revision 2 RSDP is only the new one (GRUB's v1 lookup wants revision 0).
        let mut area = vec![0u8; 0x2000];
        area[0x800..0x824].copy_from_slice(&rsdp(2, 36));
        assert_eq!(find_rsdp(&area), (None, Some(&rsdp(2, 36)[..])));
        area[0x81f] ^= 0x55; // breaks the extended checksum
        assert_eq!(find_rsdp(&area), (None, None));
    }

    #[test]
    fn vbe_graphics_tags_7_and_8() {
        let mmap = [E820Entry::new(0, 0x9fc00, 1)];
        let mut control_info = [0u8; 512];
        control_info[..4].copy_from_slice(b"VESA");
        let vbe = VbeTag {
            mode: 0x4144,
            interface_seg: 0xc000,
            interface_off: 0x1234,
            interface_len: 0x40,
            control_info,
            mode_info: [0x5a; 256],
        };
        let g = Graphics {
            addr: 0xfd00_0000,
            pitch: 4096,
            width: 1024,
            height: 768,
            bpp: 32,
            color: Color::Rgb([16, 8, 8, 8, 0, 8]),
        };
        let info = BootInfo { vbe: Some(&vbe), framebuffer: Some(Framebuffer::Graphics(g)), ..minimal(&mmap) };
        assert_eq!(tags_present(&info), vec![21, 1, 2, 6, 9, 4, 7, 8, 0]);
        let mut buf = vec![0u8; 4096];
        let n = write(&info, &mut buf).unwrap();
        assert_eq!(size(&info), n);
        // Find tags 7 and 8 by walking.
        let mut p = 8;
        let mut found = Vec::new();
        while p < n {
            let ty = u32::from_le_bytes(buf[p..p + 4].try_into().unwrap());
            let sz = u32::from_le_bytes(buf[p + 4..p + 8].try_into().unwrap()) as usize;
            found.push((ty, sz, p));
            p += sz.div_ceil(8) * 8;
        }
        let &(_, sz7, p7) = found.iter().find(|t| t.0 == 7).unwrap();
        assert_eq!(sz7, 784);
        assert_eq!(&buf[p7 + 8..p7 + 16], &[0x44, 0x41, 0x00, 0xc0, 0x34, 0x12, 0x40, 0]);
        assert_eq!(&buf[p7 + 16..p7 + 20], b"VESA");
        assert!(buf[p7 + 528..p7 + 784].iter().all(|&b| b == 0x5a));
        let &(_, sz8, p8) = found.iter().find(|t| t.0 == 8).unwrap();
        assert_eq!(sz8, 38);
        assert_eq!(words(&buf[p8 + 8..p8 + 28]), vec![0xfd00_0000, 0, 4096, 1024, 768]);
        assert_eq!(&buf[p8 + 28..p8 + 38], &[32, FB_TYPE_RGB, 0, 0, 16, 8, 8, 8, 0, 8]);
        // Tag 7 comes right before tag 8, as in GRUB.
        let i7 = found.iter().position(|t| t.0 == 7).unwrap();
        assert_eq!(found[i7 + 1].0, 8);

        // Indexed: 16 standard colours, 34 + 48 bytes.
        let g = Graphics {
            addr: 0xfd00_0000,
            pitch: 640,
            width: 640,
            height: 480,
            bpp: 8,
            color: Color::Indexed(crate::vbe::STD_COLORS.to_vec()),
        };
        let info = BootInfo { vbe: Some(&vbe), framebuffer: Some(Framebuffer::Graphics(g)), ..minimal(&mmap) };
        let n = write(&info, &mut buf).unwrap();
        let mut p = 8;
        loop {
            let ty = u32::from_le_bytes(buf[p..p + 4].try_into().unwrap());
            let sz = u32::from_le_bytes(buf[p + 4..p + 8].try_into().unwrap()) as usize;
            if ty == 8 {
                assert_eq!(sz, 82);
                assert_eq!(&buf[p + 28..p + 34], &[8, FB_TYPE_INDEXED, 0, 0, 16, 0]);
                assert_eq!(&buf[p + 34 + 3..p + 34 + 6], &[0, 0, 0xa8]);
                break;
            }
            p += sz.div_ceil(8) * 8;
            assert!(p < n);
        }
    }

    #[test]
    fn xen_grub2_check() {
        assert!(xen_sees_grub2("chainloader.0 0.1.0 (GRUB 2 compatible)"));
        assert!(xen_sees_grub2("GRUB 2.06-13+deb12u2"));
        assert!(!xen_sees_grub2("GNU GRUB 0.97"));
        assert!(!xen_sees_grub2("chainloader 0.1.0"));
        assert!(!xen_sees_grub2("GRUB2"));
        // strstr finds the first "GRUB ": a later one does not count.
        assert!(!xen_sees_grub2("GRUB 0 then GRUB 2"));
        // "GRUB " at the very end: p[5] is the NUL, not '0'.
        assert!(xen_sees_grub2("x GRUB "));
    }
}
