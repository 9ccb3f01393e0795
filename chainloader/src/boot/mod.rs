//! Booting the downloaded Multiboot2 kernel.
//!
//! Two steps, split so that every check happens while the network still
//! works (a failure can be reported, retried, or end in the reboot
//! countdown):
//!
//! * [`prepare`]: decompress gzip files into free RAM, check the header,
//!   plan where kernel segments, ELF sections, modules and the boot
//!   information go, build the boot information, and order the moves.
//!   Nothing outside the staging area and free RAM is written.
//! * [`boot`]: quiesce the NIC (the caller's closure: UNDI close, shutdown),
//!   then do the planned moves, each byte once, and jump to the kernel in
//!   32-bit protected mode with paging off.
//!
//! The planning is `bootproto` (host-tested); the firmware queries, the
//! memory it writes and the handoff itself are `crate::arch`.

extern crate alloc;

#[allow(unsafe_code)]
pub mod heap;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bootproto::mbi::{self, BootInfo, EgaText, Framebuffer, Module};
use bootproto::memmap::{self, Allocator, Move, Preference, Range, FOUR_GIB, ONE_MIB, PAGE};
use bootproto::vbe::{self, Graphics, Mode, ModeInfo, VbeTag};
use bootproto::{gzip, multiboot2};
use core::fmt;

pub use bootproto::memmap::E820Entry;

use crate::arch;

/// The default boot loader name in MBI tag 2 (the config's `loader_name`
/// replaces it). It names chainloader.0 and its version, and contains
/// "GRUB " followed by a version other than 0, because kernels tell GRUB 2
/// from GRUB Legacy by that: Xen 4.17 (`loader_is_grub2`,
/// xen/arch/x86/setup.c) strips the first word of every command line
/// unless `strstr(name, "GRUB ")` is followed by anything but '0'.
pub const LOADER_NAME: &str = concat!("chainloader.0 ", env!("CARGO_PKG_VERSION"), " (GRUB 2 compatible)");
const _: () = assert!(mbi::xen_sees_grub2(LOADER_NAME), "Xen would strip the first word of every command line");

/// The most moves [`boot`] can do (kernel segments, ELF sections, modules
/// that must move, the boot information). The list is copied onto the stack
/// before the first move, so that no move can overwrite it.
pub const MAX_MOVES: usize = 128;

/// A downloaded file, as it lies in the staging area.
#[derive(Clone, Copy, Debug)]
pub struct StagedFile<'a> {
    /// The path it was fetched from (for messages).
    pub name: &'a str,
    /// Kernel: its command line (MBI tag 1). Module: its string (tag 3).
    pub args: &'a str,
    pub data: &'a [u8],
}

/// Why the kernel cannot be booted. Every variant names what is wrong.
#[derive(Clone, Debug)]
pub enum PlanError {
    NoStagingArea,
    Kernel { name: String, err: multiboot2::Mb2Error },
    Gzip { name: String, err: gzip::GzipError },
    NoRoom { what: String, size: u64 },
    Unorderable { a: String, b: String },
    TooManyMoves(usize),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoStagingArea => {
                write!(f, "no usable RAM above 1 MiB and below 4 GiB to stage downloads in (E820)")
            }
            PlanError::Kernel { name, err } => write!(f, "{name}: {err}"),
            PlanError::Gzip { name, err } => write!(f, "{name}: {err}"),
            PlanError::NoRoom { what, size } => write!(f, "no free usable RAM below 4 GiB for {what} ({size} bytes)"),
            PlanError::Unorderable { a, b } => write!(
                f,
                "cannot place {a}: its destination overlaps the downloaded bytes of {b} and no copy order avoids that"
            ),
            PlanError::TooManyMoves(n) => write!(f, "{n} pieces to move at handoff; at most {MAX_MOVES} are supported"),
        }
    }
}

/// Ranges never handed to a kernel, a module or the boot information, and
/// never used for staging: the real-mode IVT and BIOS data area, the
/// chainloader's image, .bss, stack and page tables, and the rest of base
/// memory and the ROM area (PXE stack, EBDA, VGA, option ROMs, BIOS).
fn firmware_and_self() -> [(Range, &'static str); 3] {
    let (start, _, end) = arch::image_layout();
    let (start, end) = (start as u64, end as u64);
    [
        (Range::new(0, 0x1000), "real-mode IVT and BIOS data area"),
        (Range::new(start, end), "chainloader"),
        (Range::new(end, ONE_MIB), "PXE stack, EBDA and ROM area"),
    ]
}

fn base_allocator(e820: &[E820Entry]) -> Allocator {
    let mut a = Allocator::new(e820);
    for (r, what) in firmware_and_self() {
        a.reserve_always(r, what);
    }
    // Placements follow GRUB's heap from 1 MiB (see reserve_grub_chunk).
    a.start_grub_heap(ONE_MIB);
    a
}

/// Where to stage downloads: the largest usable region above 16 MiB below
/// 4 GiB (else above 1 MiB), as `(base, len)`. Staging files at page-aligned
/// addresses lets modules stay where they were downloaded.
pub fn staging_area(e820: &[E820Entry]) -> Result<(u64, u64), PlanError> {
    let reserved: Vec<Range> = firmware_and_self().iter().map(|(r, _)| *r).collect();
    memmap::staging_area(e820, &reserved).ok_or(PlanError::NoStagingArea)
}

/// Where a kernel or module went, for the progress display.
#[derive(Clone, Debug)]
pub struct Placement {
    pub range: Range,
    /// Decompressed from gzip.
    pub gunzipped: bool,
    /// Left where it was downloaded (no copy at handoff).
    pub in_place: bool,
}

/// A checked, planned boot, ready for [`boot`].
pub struct PreparedBoot {
    pub entry: u32,
    pub mbi_addr: u32,
    pub mbi_len: usize,
    pub load_base: u32,
    pub kernel: Placement,
    pub modules: Vec<Placement>,
    /// One line per MBI tag the kernel requires that the boot information
    /// leaves out (as GRUB 2 leaves it out), for the console.
    pub warnings: Vec<String>,
    moves: Vec<Move>,
    /// Owns the boot information until it is moved into place.
    _mbi: Vec<u8>,
}

impl fmt::Display for PreparedBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel {}{}, entry {:#x}",
            self.kernel.range,
            if self.kernel.gunzipped { " (gunzipped)" } else { "" },
            self.entry
        )?;
        for (i, m) in self.modules.iter().enumerate() {
            write!(
                f,
                "; module {i} {}{}{}",
                m.range,
                if m.gunzipped { " (gunzipped)" } else { "" },
                if m.in_place { " (in place)" } else { "" }
            )?;
        }
        write!(
            f,
            "; boot information {:#x} ({} bytes); load base {:#x}; heap high water {} KiB",
            self.mbi_addr,
            self.mbi_len,
            self.load_base,
            heap::HEAP.used().div_ceil(1024)
        )
    }
}

fn phys(s: &[u8]) -> u64 {
    s.as_ptr() as u64
}

/// Decompresses `f` if it is gzip, into free RAM reserved in `avoid` (high
/// addresses first, away from where kernels load). Returns the bytes to use.
fn gunzip_if_needed<'a>(f: &StagedFile<'a>, avoid: &mut Allocator) -> Result<(&'a [u8], bool), PlanError> {
    if !gzip::is_gzip(f.data) {
        return Ok((f.data, false));
    }
    let gz = |err| PlanError::Gzip { name: f.name.into(), err };
    let info = gzip::parse(f.data).map_err(gz)?;
    let size = info.isize as u64;
    let at = avoid
        .alloc(size.max(1), PAGE, ONE_MIB, FOUR_GIB, Preference::High, "decompressed file")
        .ok_or_else(|| PlanError::NoRoom { what: format!("decompressing {}", f.name), size })?;
    // [at, at+size) is usable RAM that `avoid` had free: not the
    // chainloader, the firmware areas, a staged download, or an earlier
    // decompressed file; now reserved, so nothing else gets it.
    let out = arch::mem::high_mut(at, size);
    let n = gzip::decompress_into(f.data, out).map_err(gz)?;
    Ok((&out[..n], true))
}

/// What the BIOS data area says about the text console, as GRUB reports it
/// in MBI tag 8 (EGA text at 0xB8000); `None` in a graphics mode.
fn ega_text_console() -> Option<EgaText> {
    let arch::bda::Video { mode, columns: cols, rows_minus_one: rows } = arch::bda::video();
    let text = matches!(mode & 0x7f, 0..=3 | 7);
    if !text {
        return None;
    }
    // GRUB says 80x25 for mode 3; for other text modes, what the BIOS says.
    if mode & 0x7f == 3 || cols == 0 {
        return Some(EgaText { columns: 80, rows: 25 });
    }
    Some(EgaText { columns: cols as u32, rows: if rows == 0 { 25 } else { rows as u32 + 1 } })
}

/// Sets a VBE graphics mode for a kernel with a framebuffer tag, choosing
/// it as GRUB 2.06 does (see `bootproto::vbe`), and collects tags 7 and 8.
/// `None` (the display left as it is) when the BIOS has no VBE or no mode
/// fits any of GRUB's specs; the kernel then gets the text console, as
/// under GRUB.
fn set_graphics_like_grub(fb: &multiboot2::FramebufferTag) -> Option<(VbeTag, Graphics, u16)> {
    use crate::arch::vbe as bios;
    let ci = bios::controller_info(true)?;
    let version = u16::from_le_bytes([ci[4], ci[5]]);
    // GRUB's probe copies the list, then reads mode information until the
    // first failure.
    let mut modes: Vec<Mode> = Vec::new();
    for m in bios::mode_list(&ci) {
        if m < 0x100 {
            modes.push(Mode::non_vesa(m));
            continue;
        }
        match bios::mode_info(m) {
            Some(b) => modes.push(ModeInfo(b).mode(m)),
            None => break,
        }
    }
    // `grub_vbe_get_preferred_mode`: EDID if DDC answers (VBE 2.0+), else
    // the flat panel's size.
    let preferred = || {
        let edid = (version >= 0x200 && bios::ddc_capable()).then(bios::read_edid).flatten();
        edid.and_then(|e| vbe::edid_preferred(&e)).or_else(|| {
            bios::flat_panel_size()
                .filter(|&(w, h)| w != 0 && h != 0 && w < 4096 && h < 4096)
                .map(|(w, h)| (w as u32, h as u32))
        })
    };
    let mut chosen = None;
    for spec in vbe::mode_specs(fb) {
        let pref = if spec == vbe::ModeSpec::Auto { preferred() } else { None };
        if let Some(i) = vbe::choose(&modes, spec, pref) {
            // `grub_vbe_set_video_mode` reads the information again first.
            let Some(info) = bios::mode_info(modes[i].number).map(ModeInfo) else { continue };
            if bios::set_mode(modes[i].number | vbe::MODE_LFB) {
                chosen = Some((modes[i].number, info));
                break;
            }
        }
    }
    let (number, info) = chosen?;
    let graphics = vbe::graphics(&info, version);
    if let vbe::Color::Indexed(p) = &graphics.color {
        bios::set_palette(p);
    }
    // `fill_vbe_tag`: asked again once the mode is set.
    let control_info = bios::controller_info(false).unwrap_or([0; 512]);
    let mode = bios::current_mode().unwrap_or(number | vbe::MODE_LFB);
    let mode_info = bios::mode_info(mode).unwrap_or(info.0);
    let (interface_seg, interface_off, interface_len) = bios::pm_interface();
    Some((VbeTag { mode, interface_seg, interface_off, interface_len, control_info, mode_info }, graphics, number))
}

/// The ACPI RSDPs (old, new) from the first KiB of the EBDA, then the BIOS
/// area 0xE0000-0xFFFFF, as GRUB searches them.
fn acpi_rsdp() -> (Option<&'static [u8]>, Option<&'static [u8]>) {
    let mut found = (None, None);
    for area in arch::rom::rsdp_search_areas() {
        let (o, n) = mbi::find_rsdp(area);
        found.0 = found.0.or(o);
        found.1 = found.1.or(n);
    }
    found
}

/// Checks and plans the whole boot; see the module documentation. `e820` is
/// the BIOS memory map, `dhcp_ack` the raw DHCPACK for MBI tag 16.
pub fn prepare(
    kernel: StagedFile,
    modules: &[StagedFile],
    e820: &[E820Entry],
    dhcp_ack: Option<&[u8]>,
    loader_name: &str,
) -> Result<PreparedBoot, PlanError> {
    let mut graphics_set = false;
    let r = prepare_in(kernel, modules, e820, dhcp_ack, loader_name, &mut graphics_set);
    if r.is_err() && graphics_set {
        // The failure is about to be shown: back to the text screen.
        crate::arch::vbe::text_mode();
        crate::console::set_text_screen(true);
    }
    r
}

/// The copies the handoff makes, each with a name for messages.
#[derive(Default)]
struct Moves {
    list: Vec<Move>,
    names: Vec<String>,
}

impl Moves {
    fn push(&mut self, m: Move, name: String) {
        self.list.push(m);
        self.names.push(name);
    }
}

/// The two allocators of a plan. `mem`: where final placements go, chosen
/// from the memory map and our fixed reservations alone, as GRUB's
/// relocator chooses them; never from where downloads happen to lie (a
/// staged file in the way is moved at handoff, see [`order_moves`]).
/// `avoid`: the same with every staged download reserved as well, for
/// scratch space that must not touch data still to be moved
/// (decompression, out-of-the-way copies).
fn allocators(e820: &[E820Entry], kernel: &StagedFile, modules: &[StagedFile]) -> (Allocator, Allocator) {
    let mem = base_allocator(e820);
    let mut avoid = mem.clone();
    for f in core::iter::once(kernel).chain(modules) {
        let r = Range::new(phys(f.data), phys(f.data) + f.data.len() as u64);
        avoid.reserve_always(
            Range::new(memmap::align_down(r.start, PAGE), memmap::align_up(r.end, PAGE)),
            "staged file",
        );
    }
    (mem, avoid)
}

fn prepare_in(
    kernel: StagedFile,
    modules: &[StagedFile],
    e820: &[E820Entry],
    dhcp_ack: Option<&[u8]>,
    loader_name: &str,
    graphics_set: &mut bool,
) -> Result<PreparedBoot, PlanError> {
    let (mut mem, mut avoid) = allocators(e820, &kernel, modules);
    let kerr = |err| PlanError::Kernel { name: kernel.name.into(), err };

    // The kernel.
    let (image, k_gz) = gunzip_if_needed(&kernel, &mut avoid)?;
    let header = multiboot2::parse_header(image).map_err(kerr)?;
    let plan = multiboot2::plan_load(image, &header, &mut mem, Some(&mut avoid)).map_err(kerr)?;
    let mut moves = Moves::default();
    for (i, s) in plan.segments.iter().enumerate() {
        let m =
            Move { src: phys(image) + s.file_offset, dst: s.dest_phys, len: s.file_len, zero: s.mem_len - s.file_len };
        moves.push(m, format!("{} segment {i} ({})", kernel.name, s.dest()));
    }
    let (mods, placements) = place_modules(modules, &mut mem, &mut avoid, &mut moves)?;
    let (vbe_tag, framebuffer) = choose_display(header.framebuffer.as_ref(), graphics_set);

    // The boot information.
    let sanitized = memmap::sanitize(e820);
    let (acpi_old, acpi_new) = acpi_rsdp();
    let info = BootInfo {
        load_base: plan.load_base,
        cmdline: kernel.args,
        loader_name,
        apm: arch::apm::info(),
        modules: &mods,
        mmap: &sanitized,
        meminfo: memmap::meminfo(&sanitized),
        elf_sections: Some(&plan.elf_sections),
        dhcp_ack,
        framebuffer,
        vbe: vbe_tag.as_ref(),
        acpi_old,
        acpi_new,
    };
    let warnings = warnings(&header, &info);
    let (buf, mbi_addr) = place_boot_info(&info, &mut mem, &mut avoid, &mut moves)?;
    let moves = order_moves(moves, &mut avoid)?;

    Ok(PreparedBoot {
        entry: plan.entry,
        mbi_addr: mbi_addr as u32,
        mbi_len: buf.len(),
        load_base: plan.load_base,
        kernel: Placement { range: plan.kernel_range, gunzipped: k_gz, in_place: false },
        modules: placements,
        warnings,
        moves,
        _mbi: buf,
    })
}

/// Modules: decompressed if gzip, placed as GRUB places them; a module
/// left where it was downloaded needs no move.
fn place_modules<'a>(
    modules: &[StagedFile<'a>],
    mem: &mut Allocator,
    avoid: &mut Allocator,
    moves: &mut Moves,
) -> Result<(Vec<Module<'a>>, Vec<Placement>), PlanError> {
    let mut mods: Vec<Module> = Vec::new();
    let mut placements = Vec::new();
    for m in modules {
        let (data, gz) = gunzip_if_needed(m, avoid)?;
        let len = data.len() as u64;
        if len == 0 {
            // GRUB gives an empty module start = end = 0.
            mods.push(Module { start: 0, end: 0, string: m.args });
            placements.push(Placement { range: Range::new(0, 0), gunzipped: gz, in_place: true });
            continue;
        }
        let staged = Range::new(phys(data), phys(data) + len);
        let at = memmap::place_module(mem, avoid, len)
            .ok_or_else(|| PlanError::NoRoom { what: format!("module {}", m.name), size: len })?;
        let in_place = at == staged.start;
        if !in_place {
            moves.push(Move { src: staged.start, dst: at, len, zero: 0 }, format!("module {}", m.name));
        }
        let range = Range::new(at, at + len);
        mods.push(Module { start: at as u32, end: (at + len) as u32, string: m.args });
        placements.push(Placement { range, gunzipped: gz, in_place });
    }
    Ok((mods, placements))
}

/// The display: a framebuffer tag (optional or not) makes GRUB set a VBE
/// graphics mode; otherwise, or if none fits, the text console.
/// `graphics_set` records that the screen left text mode.
fn choose_display(
    fb: Option<&multiboot2::FramebufferTag>,
    graphics_set: &mut bool,
) -> (Option<VbeTag>, Option<Framebuffer>) {
    match fb.and_then(set_graphics_like_grub) {
        Some((tag, g, number)) => {
            crate::println!(
                "display: VBE mode {number:#x}, {}x{}x{} at {:#x}, as GRUB 2 sets it for the framebuffer tag (the screen shows no more of this log)",
                g.width, g.height, g.bpp, g.addr
            );
            crate::console::set_text_screen(false);
            *graphics_set = true;
            (Some(tag), Some(Framebuffer::Graphics(g)))
        }
        None => (None, ega_text_console().map(Framebuffer::EgaText)),
    }
}

/// One console line per tag the kernel requires that the boot information
/// leaves out (as GRUB 2 leaves it out), and for a console it cannot have.
fn warnings(header: &multiboot2::Header, info: &BootInfo) -> Vec<String> {
    let mut warnings: Vec<String> = header
        .required_but_absent(&mbi::tags_present(info))
        .into_iter()
        .map(|t| {
            format!(
                "warning: kernel requires MBI tag {t} ({}), {}",
                multiboot2::mbi_tag_name(t),
                multiboot2::absent_reason(t)
            )
        })
        .collect();
    if !header.accepts_ega_text() && header.framebuffer.is_none() {
        // grub_multiboot2_set_console: "no console will be available to OS".
        warnings.push("warning: the kernel's console flags refuse EGA text and it has no framebuffer tag: no console it accepts (GRUB 2 boots it anyway, and so do we)".into());
    }
    warnings
}

/// Writes the boot information and chooses its address: GRUB's first fit
/// for the size GRUB reserves (its upper bound), usually in the gap after
/// the kernel's sections. Returns the bytes and the address.
fn place_boot_info(
    info: &BootInfo,
    mem: &mut Allocator,
    avoid: &mut Allocator,
    moves: &mut Moves,
) -> Result<(Vec<u8>, u64), PlanError> {
    let size = mbi::size(info);
    let no_room = |size| PlanError::NoRoom { what: "boot information".into(), size };
    let mut buf = alloc::vec![0u8; size];
    mbi::write(info, &mut buf).map_err(|_| no_room(size as u64))?;
    let chunk = mbi::grub_chunk_size(info) as u64;
    let mbi_addr = mem.find(chunk, 8, ONE_MIB, FOUR_GIB, Preference::Low).ok_or_else(|| no_room(chunk))?;
    let mbi_range = Range::new(mbi_addr, mbi_addr + chunk);
    mem.reserve_grub_chunk(mbi_range, "boot information").map_err(|_| no_room(size as u64))?;
    avoid.reserve_always(mbi_range, "boot information");
    moves.push(Move { src: phys(&buf), dst: mbi_addr, len: size as u64, zero: 0 }, "the boot information".into());
    Ok((buf, mbi_addr))
}

/// The moves in an order where none overwrites a source still to be read.
/// Usually the downloads (high, in the staging area) and the destinations
/// (low) are apart and any order works. When a destination covers bytes
/// of another piece that are still to be moved and no order avoids that
/// (a cycle), the blocking piece is first copied to free memory: the one
/// case where bytes are copied twice.
fn order_moves(moves: Moves, avoid: &mut Allocator) -> Result<Vec<Move>, PlanError> {
    let Moves { list: mut moves, names } = moves;
    if moves.len() > MAX_MOVES {
        return Err(PlanError::TooManyMoves(moves.len()));
    }
    let mut ordered = moves.clone();
    let mut detours = 0;
    while let Err((a, b)) = memmap::order_copies(&mut ordered) {
        let unorderable = || PlanError::Unorderable { a: names[a].clone(), b: names[b].clone() };
        if detours == 4 || a == b {
            return Err(unorderable());
        }
        detours += 1;
        let m = moves[b];
        let at = avoid
            .alloc(m.len.max(1), PAGE, ONE_MIB, FOUR_GIB, Preference::High, "moved out of the way")
            .ok_or_else(unorderable)?;
        // [at, at+len) is free usable RAM that `avoid` just reserved: no
        // download, destination, firmware area or chainloader byte is there.
        // The source is a download or decompressed file.
        arch::mem::high_mut(at, m.len).copy_from_slice(arch::mem::high(m.src, m.len));
        moves[b].src = at;
        ordered = moves.clone();
    }
    Ok(ordered)
}

/// Quiesces the NIC, moves everything into place and enters the kernel.
pub fn boot(p: PreparedBoot, quiesce_nic: impl FnOnce()) -> ! {
    quiesce_nic();
    arch::cpu::disable_interrupts();
    // The move list goes onto the stack (in the chainloader's .bss, which no
    // move may touch) so that a move cannot overwrite the list itself.
    let mut list = [Move { src: 0, dst: 0, len: 0, zero: 0 }; MAX_MOVES];
    let n = p.moves.len().min(MAX_MOVES);
    list[..n].copy_from_slice(&p.moves[..n]);
    let (entry, mbi_addr) = (p.entry, p.mbi_addr);
    // From here on the heap may be overwritten: `p` is not touched again.
    core::mem::forget(p);
    arch::handoff::enter(&list[..n], entry, mbi_addr)
}
