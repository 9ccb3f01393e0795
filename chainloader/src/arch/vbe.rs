//! VESA BIOS Extensions (INT 10h AX=4Fxx): the calls GRUB 2's VBE video
//! driver makes, as safe wrappers. What to do with them (which mode, what
//! the kernel is told) is `bootproto::vbe`.

use super::thunk::{self, FarPtr, Regs};
use super::BaseMem;
use bootproto::vbe::STATUS_OK;

/// The buffer every call hands the BIOS (ES:DI), below 1 MiB. 512 bytes is
/// the largest block (controller information).
static BUF: BaseMem<[u8; 512]> = BaseMem::new([0; 512]);

fn call(mut r: Regs) -> Regs {
    thunk::int(0x10, &mut r);
    r
}

fn ok(r: &Regs) -> bool {
    r.eax as u16 == STATUS_OK
}

/// ES:DI = the buffer, after filling it with `init`. Returns the registers
/// and what the BIOS left in the buffer.
fn with_buf(eax: u32, ebx: u32, ecx: u32, init: &[u8]) -> (Regs, [u8; 512]) {
    let mut buf = BUF.lock();
    buf.fill(0);
    buf[..init.len()].copy_from_slice(init);
    let p = FarPtr::from_linear(buf.addr());
    let r = call(Regs { eax, ebx, ecx, edi: p.offset as u32, es: p.segment, ..Regs::default() });
    (r, *buf)
}

/// 4F00: controller information. `vbe2` puts the "VBE2" signature in the
/// buffer first (asking for VBE 2.0+ fields), as GRUB's probe does.
pub fn controller_info(vbe2: bool) -> Option<[u8; 512]> {
    let (r, b) = with_buf(0x4f00, 0, 0, if vbe2 { b"VBE2" } else { b"" });
    ok(&r).then_some(b)
}

/// The mode numbers of the list a controller information block points to
/// (far pointer at offset 14), up to the 0xFFFF terminator; at most 1024.
pub fn mode_list(info: &[u8; 512]) -> alloc::vec::Vec<u16> {
    let ptr = FarPtr::from_u32(u32::from_le_bytes([info[14], info[15], info[16], info[17]]));
    let mut out = alloc::vec::Vec::new();
    let base = ptr.linear();
    for i in 0..1024 {
        let a = base + 2 * i;
        if a + 2 > super::mem::ONE_MIB {
            break;
        }
        // The list lies in the video BIOS or in our own buffer (which was
        // copied out of already: `info` is a copy).
        let m = super::mem::low_u16(a);
        if m == 0xffff {
            break;
        }
        out.push(m);
    }
    out
}

/// 4F01: mode information.
pub fn mode_info(mode: u16) -> Option<[u8; 256]> {
    let (r, b) = with_buf(0x4f01, 0, mode as u32, b"");
    ok(&r).then(|| b[..256].try_into().unwrap())
}

/// 4F02: sets `mode` (with `bootproto::vbe::MODE_LFB` for a linear framebuffer).
pub fn set_mode(mode: u16) -> bool {
    ok(&call(Regs { eax: 0x4f02, ebx: mode as u32, ..Regs::default() }))
}

/// 4F03: the current mode (BX).
pub fn current_mode() -> Option<u16> {
    let r = call(Regs { eax: 0x4f03, ..Regs::default() });
    ok(&r).then_some(r.ebx as u16)
}

/// 4F0A BL=0: the protected-mode interface (segment, offset, length), as
/// GRUB records it: the registers whatever the status.
pub fn pm_interface() -> (u16, u16, u16) {
    let r = call(Regs { eax: 0x4f0a, ..Regs::default() });
    (r.es, r.edi as u16, r.ecx as u16)
}

/// 4F15 BL=0: whether DDC is there (status, as GRUB tests its low byte).
pub fn ddc_capable() -> bool {
    let r = call(Regs { eax: 0x4f15, ..Regs::default() });
    r.eax as u8 == STATUS_OK as u8
}

/// 4F15 BL=1: the display's EDID block.
pub fn read_edid() -> Option<[u8; 128]> {
    let (r, b) = with_buf(0x4f15, 1, 0, b"");
    ok(&r).then(|| b[..128].try_into().unwrap())
}

/// 4F11 BL=1: a flat panel's size (horizontal, vertical).
pub fn flat_panel_size() -> Option<(u16, u16)> {
    let (r, b) = with_buf(0x4f11, 1, 0, b"");
    ok(&r).then(|| (u16::from_le_bytes([b[0], b[1]]), u16::from_le_bytes([b[2], b[3]])))
}

/// 4F09 BL=0: loads `colors` (red, green, blue) into palette entries 0..n,
/// as GRUB does for an indexed mode (it ignores the status; so do we).
pub fn set_palette(colors: &[[u8; 3]]) {
    let mut data = [0u8; 64 * 4];
    let n = colors.len().min(64);
    for (i, [r, g, b]) in colors[..n].iter().enumerate() {
        data[4 * i..4 * i + 4].copy_from_slice(&[*b, *g, *r, 0]);
    }
    let _ = with_buf(0x4f09, 0, n as u32, &data[..4 * n]);
}

/// INT 10h AH=00h AL=03h: back to 80x25 text (after a failure that must be
/// shown on the screen).
pub fn text_mode() {
    let _ = call(Regs { eax: 0x0003, ..Regs::default() });
}
