//! A Multiboot2 kernel image: finding and checking the header, reading its
//! tags, and planning where every byte of the kernel goes.
//!
//! The rules are GRUB 2.06's (`multiboot_mbi2.c`, `multiboot_elfxx.c`,
//! `lib/relocator.c`) wherever GRUB and the letter of the Multiboot2
//! specification differ, because the kernels this loader boots were written
//! and tested against GRUB: every header GRUB accepts is accepted and
//! loaded to the same addresses, every header GRUB refuses is refused.
//! docs/conformance.md lists each such point and why.
//!
//! The header is parsed by hand rather than with the `multiboot2-header`
//! crate: the loader needs GRUB's exact walking rule (tags advance by their
//! size rounded up to 8, with no header_length cross-check that could reject
//! a kernel GRUB boots), an error naming any unknown non-optional tag, the
//! optional flag of the information request and framebuffer tags, and a
//! guarantee that hostile bytes produce an error, never a panic; this file is
//! shorter than the glue that would be needed around the crate.

use super::tags::{header_tag_name, htag, mbi_tag_name, tag, HEADER_MAGIC};
use crate::bytes::{le_u16, le_u32};
use crate::memmap::{Allocator, Conflict, Preference, Range, FOUR_GIB};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Byte offsets of the header's fields: the fixed part from the header's
/// start, each tag's from the tag's start.
mod field {
    /// The fixed part (magic, architecture, header_length, checksum), then the tags.
    pub mod header {
        pub const MAGIC: usize = 0;
        pub const ARCHITECTURE: usize = 4;
        pub const HEADER_LENGTH: usize = 8;
        pub const CHECKSUM: usize = 12;
        pub const TAGS: usize = 16;
    }
    /// What every tag starts with; `SIZE` counts these 8 bytes.
    pub mod tag {
        pub const TYPE: usize = 0;
        pub const FLAGS: usize = 2;
        pub const SIZE: usize = 4;
        /// The requests of an information request tag, or the one `u32` of the
        /// entry address and console flags tags.
        pub const BODY: usize = 8;
    }
    pub mod address {
        pub const HEADER_ADDR: usize = 8;
        pub const LOAD_ADDR: usize = 12;
        pub const LOAD_END_ADDR: usize = 16;
        pub const BSS_END_ADDR: usize = 20;
    }
    pub mod framebuffer {
        pub const WIDTH: usize = 8;
        pub const HEIGHT: usize = 12;
        pub const DEPTH: usize = 16;
    }
    pub mod relocatable {
        pub const MIN_ADDR: usize = 8;
        pub const MAX_ADDR: usize = 12;
        pub const ALIGN: usize = 16;
        pub const PREFERENCE: usize = 20;
    }
}

/// The header must lie within this many bytes from the start of the image.
pub const SEARCH_LEN: usize = 32 * 1024;
/// Modules are page-aligned, as GRUB always does (this satisfies the module
/// alignment tag).
pub const MODULE_ALIGN: u64 = 0x1000;

/// MBI tag types GRUB 2.06 lets a kernel *require* in an information
/// request: every type it knows, 0-21, except 13 (SMBIOS), which it never
/// learnt (`grub_multiboot2_load` in grub-core/loader/multiboot_mbi2.c
/// refuses anything else with "unsupported information tag"). Some of them
/// GRUB then leaves out of the boot information on a BIOS network boot
/// (see [`Header::required_but_absent`]); this loader does the same, with a
/// warning, rather than refusing a kernel GRUB boots.
pub fn grub_accepts_required(t: u32) -> bool {
    t <= tag::LOAD_BASE_ADDR && t != tag::SMBIOS
}

/// Why GRUB 2 (and so this loader) leaves out a required MBI tag on a BIOS
/// network boot, for the console warning.
pub fn absent_reason(t: u32) -> &'static str {
    match t {
        tag::BOOTDEV => "which GRUB 2 also leaves out on a network boot",
        tag::VBE => "which GRUB 2 also leaves out when no VBE graphics mode is set",
        tag::FRAMEBUFFER => "which GRUB 2 also leaves out when the display has no usable mode",
        tag::APM => "which GRUB 2 also leaves out when the BIOS has no APM",
        tag::ACPI_OLD | tag::ACPI_NEW => "which GRUB 2 also leaves out when the BIOS has no such ACPI RSDP",
        tag::NETWORK => "which GRUB 2 also leaves out without a DHCP answer",
        tag::MODULE => "which GRUB 2 also leaves out when no module is loaded",
        tag::EFI32 | tag::EFI64 | tag::EFI_MMAP | tag::EFI_BS | tag::EFI32_IH | tag::EFI64_IH => {
            "which GRUB 2 also leaves out on a BIOS (non-EFI) boot"
        }
        _ => "which GRUB 2 also leaves out",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressTag {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramebufferTag {
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub optional: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPreference {
    None,
    Low,
    High,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relocatable {
    pub min_addr: u32,
    pub max_addr: u32,
    pub align: u32,
    pub preference: LoadPreference,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoRequest {
    pub optional: bool,
    pub types: Vec<u32>,
}

/// A checked Multiboot2 header and its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Offset of the header in the image.
    pub offset: usize,
    pub header_length: u32,
    pub info_requests: Vec<InfoRequest>,
    pub address: Option<AddressTag>,
    pub entry: Option<u32>,
    pub console_flags: Option<u32>,
    pub framebuffer: Option<FramebufferTag>,
    pub module_align: bool,
    /// EFI-only tags, accepted and ignored on BIOS as GRUB does (the kernel
    /// is entered at its BIOS entry; EFI entry points need EFI boot services).
    pub efi_bs: bool,
    pub efi_entry32: Option<u32>,
    pub efi_entry64: Option<u32>,
    pub relocatable: Option<Relocatable>,
}

/// Console flag bits.
pub const CONSOLE_REQUIRED: u32 = 1;
pub const CONSOLE_EGA_TEXT_SUPPORTED: u32 = 2;

/// Everything that can be wrong with a kernel image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mb2Error {
    TooShort(usize),
    NoHeader,
    BadHeaderLength {
        offset: usize,
        header_length: u32,
    },
    /// A header tag runs past the end of the searched area or is malformed.
    BadTag {
        offset: usize,
        tag_type: u16,
        size: u32,
    },
    NoEndTag,
    UnsupportedTag {
        tag_type: u16,
    },
    /// A required information request for an MBI tag type GRUB 2 does not know.
    CannotSupply {
        tag: u32,
    },
    NoUsableConsole,
    AddressWithoutEntry,
    /// The address tag's `field` is inconsistent (`why` gives the values).
    BadAddressTag {
        field: &'static str,
        why: String,
    },
    NotElf,
    Elf(&'static str),
    ElfRelocs,
    EntryNotInSegment(u64),
    /// A segment or section's file bytes run past the end of the image.
    PastEndOfFile {
        what: &'static str,
        offset: u64,
        len: u64,
        file_len: usize,
    },
    Above4G(Range),
    Reserved {
        what: &'static str,
        range: Range,
        reserved: Range,
        reserved_for: &'static str,
    },
    NotRam {
        what: &'static str,
        range: Range,
    },
    BadRelocatable {
        min: u32,
        max: u32,
        size: u64,
    },
    NoRoomRelocatable {
        size: u64,
        align: u32,
        min: u32,
        max: u32,
    },
    NoRoom {
        what: &'static str,
        size: u64,
    },
}

impl fmt::Display for Mb2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Mb2Error::*;
        match self {
            TooShort(n) => write!(f, "kernel image is only {n} bytes long"),
            NoHeader => write!(f, "no Multiboot2 header (magic 0xe85250d6, architecture 0, valid checksum, 8-byte aligned) in the first 32 KiB"),
            BadHeaderLength { offset, header_length } => write!(f, "Multiboot2 header at offset {offset:#x} has an impossible header_length {header_length}"),
            BadTag { offset, tag_type, size } => write!(f, "Multiboot2 header tag at offset {offset:#x} (type {tag_type}, size {size}) is malformed or runs past the first 32 KiB"),
            NoEndTag => write!(f, "Multiboot2 header has no end tag within the first 32 KiB"),
            UnsupportedTag { tag_type } => write!(f, "Multiboot2 header tag type {tag_type} ({}) is not supported and not marked optional", header_tag_name(*tag_type)),
            CannotSupply { tag } => write!(f, "information request tag: requests[] asks for MBI tag type {tag} ({}) and is not marked optional; GRUB 2 refuses that type too (unsupported information tag)", mbi_tag_name(*tag)),
            NoUsableConsole => write!(f, "console flags tag: console_flags requires a console but does not allow EGA text, and there is no framebuffer tag (GRUB 2 refuses this too)"),
            AddressWithoutEntry => write!(f, "address tag without an entry address tag (GRUB 2 refuses this too)"),
            BadAddressTag { field, why } => write!(f, "address tag: {field}: {why}"),
            NotElf => write!(f, "kernel is not an ELF file and its Multiboot2 header has no address tag"),
            Elf(why) => write!(f, "ELF: {why}"),
            ElfRelocs => write!(f, "ELF files with relocation sections are not supported (GRUB 2 refuses them too)"),
            EntryNotInSegment(e) => write!(f, "ELF entry point {e:#x} isn't in a segment"),
            PastEndOfFile { what, offset, len, file_len } => write!(f, "{what} at file offset {offset:#x}+{len:#x} runs past the end of the {file_len}-byte file"),
            Above4G(r) => write!(f, "kernel segment {r} is not below 4 GiB"),
            Reserved { what, range, reserved, reserved_for } => write!(f, "{what} {range} overlaps reserved memory {reserved} ({reserved_for})"),
            NotRam { what, range } => write!(f, "{what} {range} is not in usable RAM (E820)"),
            BadRelocatable { min, max, size } => write!(f, "relocatable tag: invalid min/max address {min:#x}/{max:#x} for a load size of {size:#x}"),
            NoRoomRelocatable { size, align, min, max } => write!(f, "relocatable kernel: no free usable RAM for {size:#x} bytes aligned to {align:#x} within {min:#x}-{max:#x}"),
            NoRoom { what, size } => write!(f, "no free usable RAM below 4 GiB for {what} ({size} bytes)"),
        }
    }
}

/// Finds the Multiboot2 header (magic, architecture 0 = i386, checksum) at
/// an 8-byte aligned offset within the first 32 KiB and parses its tags.
pub fn parse_header(image: &[u8]) -> Result<Header, Mb2Error> {
    // GRUB refuses files shorter than 32 bytes outright.
    if image.len() < 32 {
        return Err(Mb2Error::TooShort(image.len()));
    }
    let area = &image[..image.len().min(SEARCH_LEN)];
    let offset = find_header(area)?;
    let header_length = le_u32(area, offset + field::header::HEADER_LENGTH).unwrap_or(0);
    // GRUB does not look at header_length beyond the checksum; only refuse
    // values that cannot describe a header at all.
    if header_length < 16 || offset as u64 + header_length as u64 > image.len() as u64 {
        return Err(Mb2Error::BadHeaderLength { offset, header_length });
    }

    let mut h = Header {
        offset,
        header_length,
        info_requests: Vec::new(),
        address: None,
        entry: None,
        console_flags: None,
        framebuffer: None,
        module_align: false,
        efi_bs: false,
        efi_entry32: None,
        efi_entry64: None,
        relocatable: None,
    };
    walk_tags(area, offset + field::header::TAGS, &mut h)?;
    h.check_supportable()?;
    Ok(h)
}

/// The first 8-byte aligned offset in `area` with the magic, architecture 0
/// and a checksum that makes the fixed part sum to zero.
fn find_header(area: &[u8]) -> Result<usize, Mb2Error> {
    (0..area.len().saturating_sub(15))
        .step_by(8)
        .find(|&o| {
            use field::header as f;
            let w = |at: usize| le_u32(area, o + at).unwrap_or(0);
            let (magic, arch) = (w(f::MAGIC), w(f::ARCHITECTURE));
            let sum = magic.wrapping_add(arch).wrapping_add(w(f::HEADER_LENGTH)).wrapping_add(w(f::CHECKSUM));
            magic == HEADER_MAGIC && arch == 0 && sum == 0
        })
        .ok_or(Mb2Error::NoHeader)
}

/// Reads the tags from `p` up to the end tag into `h`.
fn walk_tags(area: &[u8], mut p: usize, h: &mut Header) -> Result<(), Mb2Error> {
    // Tags follow the 16-byte fixed part, each padded to 8 bytes. Like GRUB,
    // walk to the end tag; unlike GRUB, stop with an error instead of reading
    // beyond the searched area.
    loop {
        let (Some(ty), Some(flags), Some(size)) = (
            le_u16(area, p + field::tag::TYPE),
            le_u16(area, p + field::tag::FLAGS),
            le_u32(area, p + field::tag::SIZE),
        ) else {
            return Err(Mb2Error::NoEndTag);
        };
        let bad = Mb2Error::BadTag { offset: p, tag_type: ty, size };
        // Checked: on a 32-bit host p + size could wrap.
        let end = p.checked_add(size as usize).filter(|&e| e <= area.len());
        let Some(end) = end.filter(|_| size as usize >= field::tag::BODY) else {
            return Err(bad);
        };
        if ty == htag::END {
            return Ok(());
        }
        let optional = flags & htag::FLAG_OPTIONAL != 0;
        read_tag(h, ty, optional, &area[p..end], &bad)?;
        p += (size as usize).div_ceil(8) * 8;
    }
}

/// Records one (non-end) tag of type `ty` and payload `body` in `h`; `bad`
/// is the error for a tag too short for its fields.
fn read_tag(h: &mut Header, ty: u16, optional: bool, body: &[u8], bad: &Mb2Error) -> Result<(), Mb2Error> {
    let read = |o: usize| le_u32(body, o).ok_or(bad.clone());
    match ty {
        htag::INFORMATION_REQUEST => {
            let types = (field::tag::BODY..body.len() / 4 * 4).step_by(4).filter_map(|o| le_u32(body, o)).collect();
            h.info_requests.push(InfoRequest { optional, types });
        }
        htag::ADDRESS => {
            use field::address as f;
            h.address = Some(AddressTag {
                header_addr: read(f::HEADER_ADDR)?,
                load_addr: read(f::LOAD_ADDR)?,
                load_end_addr: read(f::LOAD_END_ADDR)?,
                bss_end_addr: read(f::BSS_END_ADDR)?,
            })
        }
        htag::ENTRY_ADDRESS => h.entry = Some(read(field::tag::BODY)?),
        htag::CONSOLE_FLAGS => h.console_flags = Some(read(field::tag::BODY)?),
        htag::FRAMEBUFFER => {
            use field::framebuffer as f;
            h.framebuffer = Some(FramebufferTag {
                width: read(f::WIDTH)?,
                height: read(f::HEIGHT)?,
                depth: read(f::DEPTH)?,
                optional,
            })
        }
        htag::MODULE_ALIGN => h.module_align = true,
        htag::EFI_BS => h.efi_bs = true,
        // GRUB i386-pc knows no EFI i386 entry tag (its switch has no
        // case for it): a required one is refused as an unknown tag.
        htag::ENTRY_ADDRESS_EFI32 if !optional => return Err(Mb2Error::UnsupportedTag { tag_type: ty }),
        htag::ENTRY_ADDRESS_EFI32 => h.efi_entry32 = Some(read(field::tag::BODY)?),
        htag::ENTRY_ADDRESS_EFI64 => h.efi_entry64 = Some(read(field::tag::BODY)?),
        htag::RELOCATABLE => {
            use field::relocatable as f;
            h.relocatable = Some(Relocatable {
                min_addr: read(f::MIN_ADDR)?,
                max_addr: read(f::MAX_ADDR)?,
                align: read(f::ALIGN)?,
                preference: match read(f::PREFERENCE)? {
                    1 => LoadPreference::Low,
                    2 => LoadPreference::High,
                    _ => LoadPreference::None,
                },
            })
        }
        _ if optional => {}
        _ => return Err(Mb2Error::UnsupportedTag { tag_type: ty }),
    }
    Ok(())
}

impl Header {
    /// Refuses what this loader cannot give the kernel.
    fn check_supportable(&self) -> Result<(), Mb2Error> {
        // GRUB checks only required requests, and only against the types it
        // knows; optional ones are not even looked at.
        for r in self.info_requests.iter().filter(|r| !r.optional) {
            if let Some(&t) = r.types.iter().find(|&&t| !grub_accepts_required(t)) {
                return Err(Mb2Error::CannotSupply { tag: t });
            }
        }
        // GRUB ignores the framebuffer tag's optional flag: any framebuffer
        // tag only makes a graphics console acceptable
        // (`grub_multiboot2_load`, `accepted_consoles |= ...FRAMEBUFFER`).
        // A kernel that requires a console must accept EGA text or have a
        // framebuffer tag (`grub_multiboot2_set_console`).
        if let Some(c) = self.console_flags {
            if c & CONSOLE_REQUIRED != 0 && c & CONSOLE_EGA_TEXT_SUPPORTED == 0 && self.framebuffer.is_none() {
                return Err(Mb2Error::NoUsableConsole);
            }
        }
        if self.address.is_some() && self.entry.is_none() {
            return Err(Mb2Error::AddressWithoutEntry);
        }
        Ok(())
    }

    /// Whether the kernel accepts an EGA text console (no console flags tag,
    /// or one with the EGA-text bit).
    pub fn accepts_ega_text(&self) -> bool {
        self.console_flags.is_none_or(|c| c & CONSOLE_EGA_TEXT_SUPPORTED != 0)
    }

    /// The MBI tag types a non-optional information request asks for that
    /// are not in `present` (the tags the boot information will hold), in
    /// request order, each once. GRUB boots such kernels anyway; the caller
    /// warns about each.
    pub fn required_but_absent(&self, present: &[u32]) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for r in self.info_requests.iter().filter(|r| !r.optional) {
            for &t in &r.types {
                // Type 0 is the end tag, always present.
                if t != tag::END && !present.contains(&t) && !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }
}

/// One piece of the kernel: `file_len` bytes from the (decompressed) image at
/// `file_offset` go to `dest_phys`, and the rest up to `mem_len` is zeroed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub file_offset: u64,
    pub file_len: u64,
    pub dest_phys: u64,
    pub mem_len: u64,
}

impl Segment {
    pub fn dest(&self) -> Range {
        Range::new(self.dest_phys, self.dest_phys + self.mem_len)
    }
}

/// The ELF section header table for MBI tag 9, with `sh_addr` filled in for
/// the sections the loader placed in memory itself (those with no address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfSections {
    pub num: u32,
    pub entsize: u32,
    pub shndx: u32,
    pub table: Vec<u8>,
}

/// Where the kernel goes and how it is entered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Program segments, then any non-allocated ELF sections GRUB would
    /// also load (symbol and string tables), in that order.
    pub segments: Vec<Segment>,
    /// Physical entry point (EIP at handoff).
    pub entry: u32,
    /// MBI tag 21: where the image was loaded (relocatable) or linked.
    pub load_base: u32,
    /// Lowest to highest byte of the program segments.
    pub kernel_range: Range,
    /// MBI tag 9 (GRUB gives it for every kernel, empty for a.out-kludge ones).
    pub elf_sections: ElfSections,
}

/// Plans the kernel's placement. `mem` holds usable RAM with the loader's
/// own reservations; the kernel's ranges are reserved in it on success.
/// `avoid`, when given, is a copy of `mem` that additionally has the staged
/// downloads reserved; the kernel's ranges are reserved there too, so that
/// later scratch allocations keep off them.
///
/// Every free choice (relocation base, section addresses) is made in `mem`
/// alone, i.e. from the memory map and the loader's fixed reservations, as
/// GRUB's relocator makes it from its memory map: never from where
/// downloads happen to be staged. When a staged file lies where the kernel
/// must go, the handoff moves it first (see `memmap::order_copies`).
pub fn plan_load(
    image: &[u8],
    h: &Header,
    mem: &mut Allocator,
    mut avoid: Option<&mut Allocator>,
) -> Result<LoadPlan, Mb2Error> {
    let mut plan = match h.address {
        Some(a) => plan_aout(image, h, a)?,
        None => plan_elf(image, h)?,
    };
    let link_base = plan.load_base as u64;

    if let Some(rel) = h.relocatable {
        let size = plan.kernel_range.len();
        if size > rel.max_addr as u64 || (rel.min_addr as u64) > rel.max_addr as u64 - size {
            return Err(Mb2Error::BadRelocatable { min: rel.min_addr, max: rel.max_addr, size });
        }
        let pref = if rel.preference == LoadPreference::High { Preference::High } else { Preference::Low };
        let align = rel.align.max(1) as u64;
        let (min, max_end) = (rel.min_addr as u64, rel.max_addr as u64);
        // GRUB calls grub_relocator_alloc_chunk_align_safe
        // (include/grub/relocator.h), which passes max_addr - size on as the
        // limit for the chunk's *end*: the first free block from the low end
        // (preference none or low) or the high end (high) with
        // base + 2 * size <= max_addr. Only if that finds nothing does
        // grub_relocator_alloc_chunk_align fall back to a target anywhere in
        // RAM with base + size <= max_addr (grub-core/lib/relocator.c).
        let base = mem
            .find(size, align, min, max_end - size, pref)
            .or_else(|| mem.find(size, align, min, max_end, pref))
            .ok_or(Mb2Error::NoRoomRelocatable { size, align: rel.align, min: rel.min_addr, max: rel.max_addr })?;
        let delta = base.wrapping_sub(plan.kernel_range.start);
        for s in plan.segments.iter_mut() {
            s.dest_phys = s.dest_phys.wrapping_add(delta);
        }
        plan.kernel_range = Range::new(base, base + size);
        plan.load_base = base as u32;
        plan.entry = (plan.entry as u64).wrapping_add(base).wrapping_sub(link_base) as u32;
    }

    // GRUB allocates one relocator chunk per ELF program segment, or one
    // for the whole image of a relocatable or a.out-kludge kernel.
    let chunks: Vec<Range> = if h.relocatable.is_some() || h.address.is_some() {
        alloc::vec![plan.kernel_range]
    } else {
        plan.segments.iter().filter(|s| s.mem_len > 0).map(|s| s.dest()).collect()
    };
    for &r in chunks.iter().filter(|r| !r.is_empty()) {
        reserve(mem, r, &chunks, "kernel segment")?;
        if let Some(a) = avoid.as_deref_mut() {
            a.reserve_always(r, "kernel");
        }
    }

    if h.address.is_none() {
        place_sections(image, &mut plan, mem, avoid)?;
    }
    Ok(plan)
}

fn reserve(mem: &mut Allocator, r: Range, others: &[Range], what: &'static str) -> Result<(), Mb2Error> {
    if r.end > FOUR_GIB {
        return Err(Mb2Error::Above4G(r));
    }
    mem.reserve_grub_chunk_beside(r, others, "kernel").map_err(|c| match c {
        Conflict::NotUsableRam => Mb2Error::NotRam { what, range: r },
        Conflict::Reserved { range, what: reserved_for } => {
            Mb2Error::Reserved { what, range: r, reserved: range, reserved_for }
        }
    })
}

/// The a.out kludge: the address tag says which part of the file goes where.
///
/// This is GRUB 2.06's arithmetic (`grub_multiboot2_load` in
/// grub-core/loader/multiboot_mbi2.c, i386-pc, so 32-bit), not the letter
/// of the specification, which would have header_addr >= load_addr:
///
/// * load_addr 0xffffffff stands for header_addr - (the header's offset);
/// * the file offset of the first loaded byte is header offset -
///   (header_addr - load_addr) in wrapping 32-bit arithmetic, so
///   header_addr may lie below load_addr (Nautilus: header_addr 0x100000,
///   load_addr 0x100040, header at offset 0x1000: file offset 0x1040 goes
///   to 0x100040). GRUB refuses an offset outside the file (its seek fails);
/// * the load size is load_end_addr minus the tag's load_addr *field*
///   (even when that is 0xffffffff), or the rest of the file when
///   load_end_addr is 0; GRUB reads what the file has of it (a short read is
///   not an error), and the rest up to bss_end_addr is zeroed here;
/// * the memory size is bss_end_addr - load_addr, or the load size when
///   bss_end_addr is 0.
fn plan_aout(image: &[u8], h: &Header, a: AddressTag) -> Result<LoadPlan, Mb2Error> {
    let bad = |field, why: String| Mb2Error::BadAddressTag { field, why };
    let header_offset = h.offset as u32;
    let load_addr = if a.load_addr == u32::MAX { a.header_addr.wrapping_sub(header_offset) } else { a.load_addr };
    let offset = header_offset.wrapping_sub(a.header_addr.wrapping_sub(load_addr)) as i32;
    if offset < 0 || offset as u64 > image.len() as u64 {
        return Err(bad(
            "load_addr",
            format!(
                "header_addr {:#x} and load_addr {:#x} with the header at file offset {:#x} put the first loaded byte at file offset {}, outside the {}-byte file (GRUB 2 cannot seek there either)",
                a.header_addr, a.load_addr, header_offset, offset, image.len()
            ),
        ));
    }
    let file_offset = offset as u64;
    let rest_of_file = image.len() as u64 - file_offset;
    let load_size = if a.load_end_addr == 0 {
        rest_of_file
    } else {
        // GRUB keeps this in an int; a negative size would make it read the
        // whole file over whatever follows its buffer.
        let n = a.load_end_addr.wrapping_sub(a.load_addr) as i32;
        if n < 0 {
            return Err(bad("load_end_addr", format!("{:#x} is below load_addr {:#x}", a.load_end_addr, a.load_addr)));
        }
        n as u64
    };
    let mem_len = if a.bss_end_addr == 0 { load_size } else { a.bss_end_addr.wrapping_sub(load_addr) as u64 };
    if mem_len < load_size {
        // GRUB would allocate mem_len bytes and read load_size into them:
        // it overwrites memory it does not own and then zeroes a negative
        // length. No kernel can rely on that; refuse.
        return Err(bad(
            "bss_end_addr",
            format!(
                "{:#x} is below the end of the loaded bytes {:#x} (load_addr {:#x} + load size {:#x})",
                a.bss_end_addr,
                load_addr as u64 + load_size,
                load_addr,
                load_size
            ),
        ));
    }
    let seg = Segment { file_offset, file_len: load_size.min(rest_of_file), dest_phys: load_addr as u64, mem_len };
    // grub_relocator_alloc_chunk_addr: "address is out of range" unless the
    // chunk ends at or below 0xffffffff.
    if seg.dest().end > u32::MAX as u64 {
        return Err(Mb2Error::Above4G(seg.dest()));
    }
    Ok(LoadPlan {
        segments: alloc::vec![seg],
        entry: h.entry.unwrap_or(0),
        load_base: load_addr,
        kernel_range: seg.dest(),
        elf_sections: ElfSections { num: 0, entsize: 0, shndx: 0, table: Vec::new() },
    })
}

/// The ELF fields the loader reads: their offsets in bytes from the start of
/// the file header, a program header or a section header, which differ
/// between ELF32 and ELF64 (System V ABI, `Elf32_Ehdr`/`Elf64_Ehdr` etc.).
mod elf {
    pub const MAGIC: &[u8; 4] = b"\x7fELF";
    pub const EI_CLASS: usize = 4;
    pub const EI_DATA: usize = 5;
    pub const E_TYPE: usize = 16;
    pub const E_MACHINE: usize = 18;
    pub const E_VERSION: usize = 20;
    pub const E_ENTRY: usize = 24;
    /// The ELF32 file header; nothing shorter is an ELF file to GRUB.
    pub const EHDR32_LEN: usize = 52;

    pub const CLASS_32: u8 = 1;
    pub const CLASS_64: u8 = 2;
    pub const DATA_LSB: u8 = 1;
    pub const EV_CURRENT: u32 = 1;
    pub const ET_EXEC: u16 = 2;
    pub const ET_DYN: u16 = 3;
    pub const EM_386: u16 = 3;
    pub const EM_X86_64: u16 = 62;
    pub const PT_LOAD: u32 = 1;
    pub const SHT_RELA: u32 = 4;
    pub const SHT_NOBITS: u32 = 8;
    pub const SHT_REL: u32 = 9;
    /// e_shstrndx saying "the index is in section 0's sh_link".
    pub const SHN_XINDEX: u64 = 0xffff;

    pub struct Layout {
        /// Addresses, offsets and sizes are this many bytes (4 or 8).
        pub word: usize,
        pub machine: u16,
        pub e_phoff: usize,
        pub e_shoff: usize,
        pub e_phentsize: usize,
        pub e_phnum: usize,
        pub e_shentsize: usize,
        pub e_shnum: usize,
        pub e_shstrndx: usize,
        pub phdr_len: u64,
        pub p_type: usize,
        pub p_offset: usize,
        pub p_vaddr: usize,
        pub p_paddr: usize,
        pub p_filesz: usize,
        pub p_memsz: usize,
        pub shdr_len: u64,
        pub sh_type: usize,
        pub sh_addr: usize,
        pub sh_offset: usize,
        pub sh_size: usize,
        pub sh_link: usize,
        pub sh_addralign: usize,
    }

    pub const ELF32: Layout = Layout {
        word: 4,
        machine: EM_386,
        e_phoff: 28,
        e_shoff: 32,
        e_phentsize: 42,
        e_phnum: 44,
        e_shentsize: 46,
        e_shnum: 48,
        e_shstrndx: 50,
        phdr_len: 32,
        p_type: 0,
        p_offset: 4,
        p_vaddr: 8,
        p_paddr: 12,
        p_filesz: 16,
        p_memsz: 20,
        shdr_len: 40,
        sh_type: 4,
        sh_addr: 12,
        sh_offset: 16,
        sh_size: 20,
        sh_link: 24,
        sh_addralign: 32,
    };

    pub const ELF64: Layout = Layout {
        word: 8,
        machine: EM_X86_64,
        e_phoff: 32,
        e_shoff: 40,
        e_phentsize: 54,
        e_phnum: 56,
        e_shentsize: 58,
        e_shnum: 60,
        e_shstrndx: 62,
        phdr_len: 56,
        p_type: 0,
        p_offset: 8,
        p_vaddr: 16,
        p_paddr: 24,
        p_filesz: 32,
        p_memsz: 40,
        shdr_len: 64,
        sh_type: 4,
        sh_addr: 16,
        sh_offset: 24,
        sh_size: 32,
        sh_link: 40,
        sh_addralign: 48,
    };

    impl Layout {
        /// An address, offset or size field, widened.
        pub fn word(&self, b: &[u8], off: usize) -> Option<u64> {
            if self.word == 8 {
                crate::bytes::le_u64(b, off)
            } else {
                crate::bytes::le_u32(b, off).map(u64::from)
            }
        }
    }
}

/// An ELF32 (EM_386) or ELF64 (EM_X86_64) file header's fields, widened.
struct Elf {
    layout: &'static elf::Layout,
    entry: u64,
    phoff: u64,
    shoff: u64,
    phentsize: u64,
    phnum: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

struct Phdr {
    ty: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

fn elf_header(image: &[u8]) -> Result<Elf, Mb2Error> {
    use Mb2Error::Elf as E;
    if image.len() < elf::EHDR32_LEN || &image[..4] != elf::MAGIC {
        return Err(Mb2Error::NotElf);
    }
    if image[elf::EI_DATA] != elf::DATA_LSB {
        return Err(E("not little-endian"));
    }
    let l = match image[elf::EI_CLASS] {
        elf::CLASS_32 => &elf::ELF32,
        elf::CLASS_64 => &elf::ELF64,
        _ => return Err(E("invalid ELF class")),
    };
    let t = |o| le_u16(image, o).ok_or(E("header truncated"));
    if t(elf::E_MACHINE)? != l.machine {
        return Err(E("wrong machine (need EM_386 for ELF32, EM_X86_64 for ELF64)"));
    }
    if le_u32(image, elf::E_VERSION) != Some(elf::EV_CURRENT) {
        return Err(E("invalid ELF version"));
    }
    let ty = t(elf::E_TYPE)?;
    if ty != elf::ET_EXEC && ty != elf::ET_DYN {
        return Err(E("not an executable (ET_EXEC or ET_DYN)"));
    }
    let w = |o| l.word(image, o).ok_or(E("header truncated"));
    let h = |o| t(o).map(u64::from);
    Ok(Elf {
        layout: l,
        entry: w(elf::E_ENTRY)?,
        phoff: w(l.e_phoff)?,
        shoff: w(l.e_shoff)?,
        phentsize: h(l.e_phentsize)?,
        phnum: h(l.e_phnum)?,
        shentsize: h(l.e_shentsize)?,
        shnum: h(l.e_shnum)?,
        shstrndx: h(l.e_shstrndx)?,
    })
}

fn phdr(image: &[u8], e: &Elf, i: u64) -> Option<Phdr> {
    let l = e.layout;
    let o = usize::try_from(e.phoff.checked_add(i.checked_mul(e.phentsize)?)?).ok()?;
    let w = |k: usize| l.word(image, o.checked_add(k)?);
    Some(Phdr {
        ty: le_u32(image, o.checked_add(l.p_type)?)?,
        offset: w(l.p_offset)?,
        vaddr: w(l.p_vaddr)?,
        paddr: w(l.p_paddr)?,
        filesz: w(l.p_filesz)?,
        memsz: w(l.p_memsz)?,
    })
}

fn plan_elf(image: &[u8], h: &Header) -> Result<LoadPlan, Mb2Error> {
    let e = elf_header(image)?;
    let phdrs = program_headers(image, &e)?;
    let (segments, lo, hi) = load_segments(image, &phdrs)?;
    let phys = entry_phys(&e, &phdrs)?;
    let entry = h.entry.map_or(phys, u64::from);
    Ok(LoadPlan {
        segments,
        entry: entry as u32,
        load_base: lo as u32,
        kernel_range: Range::new(lo, hi),
        elf_sections: ElfSections { num: 0, entsize: 0, shndx: 0, table: Vec::new() },
    })
}

/// All program headers, checked to lie where GRUB reads them.
fn program_headers(image: &[u8], e: &Elf) -> Result<Vec<Phdr>, Mb2Error> {
    if e.phnum > 0 && e.phentsize < e.layout.phdr_len {
        return Err(Mb2Error::Elf("program header entries too small"));
    }
    // GRUB reads program headers from the first 32 KiB only.
    // Checked: a 64-bit e_phoff near 2^64 wrapped past this test (fuzzing).
    let ph_end = e.phnum.checked_mul(e.phentsize).and_then(|n| e.phoff.checked_add(n));
    if ph_end.is_none_or(|end| end > SEARCH_LEN.min(image.len()) as u64) {
        return Err(Mb2Error::Elf("program header at a too high offset"));
    }
    (0..e.phnum).map(|i| phdr(image, e, i)).collect::<Option<_>>().ok_or(Mb2Error::Elf("program header truncated"))
}

/// The PT_LOAD segments with memory to fill, and the lowest and highest
/// physical address of all PT_LOAD segments.
fn load_segments(image: &[u8], phdrs: &[Phdr]) -> Result<(Vec<Segment>, u64, u64), Mb2Error> {
    let mut segments = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for p in phdrs.iter().filter(|p| p.ty == elf::PT_LOAD) {
        let end = p.paddr.checked_add(p.memsz).filter(|&x| x <= FOUR_GIB);
        let Some(end) = end else {
            return Err(Mb2Error::Above4G(Range::new(p.paddr, p.paddr.saturating_add(p.memsz))));
        };
        if p.filesz > p.memsz {
            return Err(Mb2Error::Elf("segment with p_filesz larger than p_memsz"));
        }
        if p.offset.checked_add(p.filesz).is_none_or(|x| x > image.len() as u64) {
            return Err(Mb2Error::PastEndOfFile {
                what: "ELF segment",
                offset: p.offset,
                len: p.filesz,
                file_len: image.len(),
            });
        }
        lo = lo.min(p.paddr);
        hi = hi.max(end);
        if p.memsz > 0 {
            segments.push(Segment { file_offset: p.offset, file_len: p.filesz, dest_phys: p.paddr, mem_len: p.memsz });
        }
    }
    if segments.is_empty() {
        return Err(Mb2Error::Elf("no loadable segment"));
    }
    Ok((segments, lo, hi))
}

/// The physical address of the ELF entry point.
fn entry_phys(e: &Elf, phdrs: &[Phdr]) -> Result<u64, Mb2Error> {
    // GRUB's rule: the entry is a virtual address; find the program header
    // (any type) whose virtual range holds it and translate to physical.
    // GRUB does this even when an entry address tag will override the
    // result (grub_multiboot2_load_elf runs first), so an ELF entry outside
    // every segment is refused either way.
    let p = phdrs
        .iter()
        .find(|p| p.vaddr <= e.entry && e.entry < p.vaddr.wrapping_add(p.memsz))
        .ok_or(Mb2Error::EntryNotInSegment(e.entry))?;
    let phys = (e.entry - p.vaddr).wrapping_add(p.paddr);
    if phys > u32::MAX as u64 {
        return Err(Mb2Error::Elf("entry point above 4 GiB"));
    }
    Ok(phys)
}

/// Reads the section header table for tag 9 and places the sections that
/// have no address (symbol and string tables) in free memory, as GRUB does.
fn place_sections(
    image: &[u8],
    plan: &mut LoadPlan,
    mem: &mut Allocator,
    mut avoid: Option<&mut Allocator>,
) -> Result<(), Mb2Error> {
    let e = elf_header(image)?;
    if e.shoff == 0 || e.shentsize == 0 {
        return Ok(());
    }
    let l = e.layout;
    if e.shentsize < l.shdr_len {
        return Err(Mb2Error::Elf("section header entries too small"));
    }
    let (shnum, shndx, mut table) = section_table(image, &e)?;
    for i in 0..shnum as usize {
        let o = i * e.shentsize as usize;
        let shdr = &mut table[o..o + e.shentsize as usize];
        place_section(image, l, shdr, plan, mem, avoid.as_deref_mut())?;
    }
    plan.elf_sections = ElfSections { num: shnum as u32, entsize: e.shentsize as u32, shndx: shndx as u32, table };
    Ok(())
}

/// The number of sections, the index of the section name string table and
/// a copy of the section header table.
fn section_table(image: &[u8], e: &Elf) -> Result<(u64, u64, Vec<u8>), Mb2Error> {
    let l = e.layout;
    let at = |i: u64, k: usize| {
        let o = i.checked_mul(e.shentsize).and_then(|n| e.shoff.checked_add(n))?;
        usize::try_from(o).ok()?.checked_add(k)
    };
    // Extended numbering: shnum 0 and SHN_XINDEX live in section 0.
    let mut shnum = e.shnum;
    if shnum == 0 {
        shnum =
            at(0, l.sh_size).and_then(|o| l.word(image, o)).ok_or(Mb2Error::Elf("section header table truncated"))?;
    }
    let mut shndx = e.shstrndx;
    if shndx == elf::SHN_XINDEX {
        shndx = at(0, l.sh_link).and_then(|o| le_u32(image, o)).map(u64::from).unwrap_or(0);
    }
    let table_len = shnum.checked_mul(e.shentsize).filter(|&l| l <= u32::MAX as u64);
    let table_end = table_len.and_then(|l| e.shoff.checked_add(l)).filter(|&x| x <= image.len() as u64);
    let Some(table_end) = table_end else {
        return Err(Mb2Error::PastEndOfFile {
            what: "ELF section header table",
            offset: e.shoff,
            len: table_len.unwrap_or(u64::MAX),
            file_len: image.len(),
        });
    };
    Ok((shnum, shndx, image[e.shoff as usize..table_end as usize].to_vec()))
}

/// Refuses a relocation section; gives a section without an address room
/// in `mem` (and out of `avoid`), a segment in `plan` and that address in
/// its header `shdr`.
fn place_section(
    image: &[u8],
    l: &elf::Layout,
    shdr: &mut [u8],
    plan: &mut LoadPlan,
    mem: &mut Allocator,
    avoid: Option<&mut Allocator>,
) -> Result<(), Mb2Error> {
    let s = &*shdr;
    let ty = le_u32(s, l.sh_type).unwrap_or(0);
    if ty == elf::SHT_REL || ty == elf::SHT_RELA {
        return Err(Mb2Error::ElfRelocs);
    }
    let w = |k| l.word(s, k);
    let (addr, off, size, align) = (w(l.sh_addr), w(l.sh_offset), w(l.sh_size), w(l.sh_addralign));
    let (addr, off, size, align) = (addr.unwrap_or(0), off.unwrap_or(0), size.unwrap_or(0), align.unwrap_or(1));
    if addr != 0 || size == 0 {
        return Ok(());
    }
    let nobits = ty == elf::SHT_NOBITS;
    if !nobits && off.checked_add(size).is_none_or(|x| x > image.len() as u64) {
        return Err(Mb2Error::PastEndOfFile { what: "ELF section", offset: off, len: size, file_len: image.len() });
    }
    // GRUB's first fit: the lowest free block above 1 MiB (below that
    // is GRUB's own memory), i.e. right after the kernel.
    let align = align.clamp(1, 1 << 30);
    let dest = mem
        .find(size, align, crate::memmap::ONE_MIB, FOUR_GIB, Preference::Low)
        .ok_or(Mb2Error::NoRoom { what: "ELF section", size })?;
    let r = Range::new(dest, dest + size);
    mem.reserve_grub_chunk(r, "ELF section").map_err(|_| Mb2Error::NoRoom { what: "ELF section", size })?;
    if let Some(a) = avoid {
        a.reserve_always(r, "ELF section");
    }
    plan.segments.push(Segment {
        file_offset: off,
        file_len: if nobits { 0 } else { size },
        dest_phys: dest,
        mem_len: size,
    });
    // sh_addr is where the kernel finds the section: tell it.
    shdr[l.sh_addr..l.sh_addr + l.word].copy_from_slice(&dest.to_le_bytes()[..l.word]);
    Ok(())
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
