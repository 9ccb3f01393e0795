//! Choosing a VBE graphics mode for a kernel with a Multiboot2 framebuffer
//! tag, the way GRUB 2.06 i386-pc does it, and describing the result in MBI
//! tags 7 and 8.
//!
//! GRUB's path, for a kernel with a framebuffer tag (whatever its optional
//! flag), on a BIOS machine with no `gfxpayload` set by the user:
//!
//! * `grub_multiboot2_set_console` (grub-core/loader/multiboot.c) sets
//!   gfxpayload to `WxHxD,WxH,auto` (all three fields nonzero), `WxH,auto`
//!   (width and height nonzero) or `auto`, overriding anything set before;
//!   `grub_multiboot2_set_video_mode` appends `;auto`.
//! * `grub_video_set_mode` (grub-core/video/video.c) tries each spec in turn
//!   with every loaded video driver. The multiboot2 module depends on `vbe`,
//!   so on a netboot (no `insmod all_video`) that is the VBE driver alone.
//! * `grub_video_vbe_setup` (grub-core/video/i386/pc/vbe.c): for `auto`, the
//!   preferred size comes from EDID (INT 10h 4F15, first detailed timing) or
//!   the flat panel (4F11); failing both, exactly 640x480. It walks the
//!   controller's mode list (4F00) with 4F01, skipping modes that are not
//!   supported, colour, graphics with a linear framebuffer, packed-pixel or
//!   direct-colour with 8/15/16/24/32 bpp; keeps those of exactly the
//!   requested size (or, for a preferred size, no larger); a requested depth
//!   must match; among the rest the largest bpp x width x height wins, the
//!   later of equals. It stops at the first mode 4F01 fails on. Then 4F02
//!   with the linear-framebuffer bit.
//! * `retrieve_video_parameters` (grub-core/loader/multiboot_mbi2.c) writes
//!   tag 7 (4F00, 4F03, 4F01 of the current mode, 4F0A) and tag 8 (RGB with
//!   the mode's field positions and sizes, or indexed with GRUB's 16
//!   standard colours). If no mode could be set the kernel gets the EGA text
//!   console in tag 8, as without a framebuffer tag.
//!
//! The BIOS calls are the chainloader's (arch layer); the choices are here.

use crate::multiboot2::FramebufferTag;
use alloc::vec::Vec;

/// AX after a successful VBE call.
pub const STATUS_OK: u16 = 0x004f;
/// 4F02: use the linear framebuffer.
pub const MODE_LFB: u16 = 1 << 14;

const ATTR_SUPPORTED: u16 = 1 << 0;
const ATTR_COLOR: u16 = 1 << 3;
const ATTR_GRAPHICS: u16 = 1 << 4;
const ATTR_LFB: u16 = 1 << 7;
pub const MODEL_TEXT: u8 = 0;
pub const MODEL_PACKED_PIXEL: u8 = 4;
pub const MODEL_DIRECT_COLOR: u8 = 6;

/// Byte offsets in a VBE mode information block (VBE 3.0, `ModeInfoBlock`).
mod field {
    pub const MODE_ATTRIBUTES: usize = 0;
    /// The pitch in banked modes.
    pub const BYTES_PER_SCAN_LINE: usize = 16;
    pub const X_RESOLUTION: usize = 18;
    pub const Y_RESOLUTION: usize = 20;
    pub const BITS_PER_PIXEL: usize = 25;
    pub const MEMORY_MODEL: usize = 27;
    /// Red mask size, red field position, then green and blue likewise.
    pub const RGB_FIELDS: usize = 31;
    pub const PHYS_BASE_PTR: usize = 40;
    /// The pitch in linear modes (VBE 3.0).
    pub const LIN_BYTES_PER_SCAN_LINE: usize = 50;
}

/// A VBE mode information block (4F01), 256 bytes as the BIOS wrote it.
/// Every field lies inside the 256 bytes, so no read can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeInfo(pub [u8; 256]);

impl ModeInfo {
    fn u16(&self, o: usize) -> u16 {
        u16::from_le_bytes([self.0[o], self.0[o + 1]])
    }
    pub fn attributes(&self) -> u16 {
        self.u16(field::MODE_ATTRIBUTES)
    }
    pub fn bytes_per_scan_line(&self) -> u16 {
        self.u16(field::BYTES_PER_SCAN_LINE)
    }
    pub fn width(&self) -> u16 {
        self.u16(field::X_RESOLUTION)
    }
    pub fn height(&self) -> u16 {
        self.u16(field::Y_RESOLUTION)
    }
    pub fn bpp(&self) -> u8 {
        self.0[field::BITS_PER_PIXEL]
    }
    pub fn memory_model(&self) -> u8 {
        self.0[field::MEMORY_MODEL]
    }
    /// (red size, red position, green size, green position, blue size, blue position)
    pub fn rgb_fields(&self) -> [u8; 6] {
        let f = field::RGB_FIELDS;
        [self.0[f], self.0[f + 1], self.0[f + 2], self.0[f + 3], self.0[f + 4], self.0[f + 5]]
    }
    pub fn phys_base(&self) -> u32 {
        let f = field::PHYS_BASE_PTR;
        u32::from_le_bytes([self.0[f], self.0[f + 1], self.0[f + 2], self.0[f + 3]])
    }
    pub fn lin_bytes_per_scan_line(&self) -> u16 {
        self.u16(field::LIN_BYTES_PER_SCAN_LINE)
    }
    /// What mode selection needs of this block, for mode `number`.
    pub fn mode(&self, number: u16) -> Mode {
        Mode {
            number,
            attributes: self.attributes(),
            width: self.width(),
            height: self.height(),
            bpp: self.bpp(),
            memory_model: self.memory_model(),
        }
    }
}

/// One entry of the controller's mode list with the fields GRUB's mode
/// selection looks at (a few bytes, so that a long list fits the
/// chainloader's small heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    pub number: u16,
    pub attributes: u16,
    pub width: u16,
    pub height: u16,
    pub bpp: u8,
    pub memory_model: u8,
}

impl Mode {
    /// A non-VESA mode (below 0x100), whose information GRUB zeroes.
    pub fn non_vesa(number: u16) -> Mode {
        Mode { number, attributes: 0, width: 0, height: 0, bpp: 0, memory_model: 0 }
    }
    /// A graphics mode GRUB's VBE driver can use (`grub_video_vbe_setup`).
    fn usable(&self) -> bool {
        let need = ATTR_SUPPORTED | ATTR_COLOR | ATTR_LFB | ATTR_GRAPHICS;
        self.number >= 0x100
            && self.attributes & need == need
            && matches!(self.memory_model, MODEL_PACKED_PIXEL | MODEL_DIRECT_COLOR)
            && matches!(self.bpp, 8 | 15 | 16 | 24 | 32)
    }
    fn volume(&self) -> u64 {
        self.bpp as u64 * self.width as u64 * self.height as u64
    }
}

/// One entry of GRUB's gfxpayload list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeSpec {
    /// `auto`: the display's preferred size, else 640x480.
    Auto,
    /// `WxH` (any depth) or `WxHxD`.
    Size { width: u32, height: u32, depth: Option<u32> },
}

/// The specs GRUB tries for a framebuffer tag, in order (the trailing
/// `;auto` repeats `auto`, which gives the same result, so it is left out).
pub fn mode_specs(fb: &FramebufferTag) -> Vec<ModeSpec> {
    let mut v = Vec::new();
    if fb.width != 0 && fb.height != 0 {
        if fb.depth != 0 {
            v.push(ModeSpec::Size { width: fb.width, height: fb.height, depth: Some(fb.depth) });
        }
        v.push(ModeSpec::Size { width: fb.width, height: fb.height, depth: None });
    }
    v.push(ModeSpec::Auto);
    v
}

/// The preferred size in an EDID block, as `grub_video_edid_preferred_mode`
/// reads it: checksum, EDID version 1, the "first detailed timing is
/// preferred" feature bit, a nonzero pixel clock, and (as
/// `grub_vbe_get_preferred_mode` then asks) a size below 4096x4096.
pub fn edid_preferred(edid: &[u8; 128]) -> Option<(u32, u32)> {
    // Byte offsets in an EDID 1.x block, and in its detailed timing descriptor.
    const VERSION: usize = 0x12;
    const FEATURES: usize = 0x18;
    const FEATURE_PREFERRED_TIMING: u8 = 0x02;
    const FIRST_DETAILED_TIMING: usize = 0x36;
    const PIXEL_CLOCK: usize = 0;
    const H_ACTIVE_LO: usize = 2;
    const H_ACTIVE_HI: usize = 4;
    const V_ACTIVE_LO: usize = 5;
    const V_ACTIVE_HI: usize = 7;
    if edid.iter().fold(0u8, |a, &b| a.wrapping_add(b)) != 0 {
        return None;
    }
    let (version, features) = (edid[VERSION], edid[FEATURES]);
    let d = &edid[FIRST_DETAILED_TIMING..FIRST_DETAILED_TIMING + 18];
    let clock = u16::from_le_bytes([d[PIXEL_CLOCK], d[PIXEL_CLOCK + 1]]);
    if version != 1 || features & FEATURE_PREFERRED_TIMING == 0 || clock == 0 {
        return None;
    }
    // 12-bit sizes: the low byte, and the high nibble of a shared byte.
    let w = d[H_ACTIVE_LO] as u32 | ((d[H_ACTIVE_HI] as u32 & 0xf0) << 4);
    let h = d[V_ACTIVE_LO] as u32 | ((d[V_ACTIVE_HI] as u32 & 0xf0) << 4);
    (w != 0 && h != 0 && w < 4096 && h < 4096).then_some((w, h))
}

/// `grub_video_vbe_setup` for one spec: the index in `modes` (the
/// controller's list, in order, up to the first mode whose 4F01 failed) of
/// the mode to set. `preferred` is the display's preferred size (EDID or
/// flat panel), used by `auto` only.
pub fn choose(modes: &[Mode], spec: ModeSpec, preferred: Option<(u32, u32)>) -> Option<usize> {
    let (width, height, depth, at_most) = match spec {
        ModeSpec::Auto => match preferred {
            Some((w, h)) => (w, h, None, true),
            None => (640, 480, None, false),
        },
        ModeSpec::Size { width, height, depth } => (width, height, depth, false),
    };
    let mut best: Option<usize> = None;
    for (i, m) in modes.iter().enumerate() {
        if !m.usable() {
            continue;
        }
        let (w, h) = (m.width as u32, m.height as u32);
        let size_ok = if at_most { w <= width && h <= height } else { w == width && h == height };
        if !size_ok || depth.is_some_and(|d| d != m.bpp as u32) {
            continue;
        }
        if best.is_some_and(|b| m.volume() < modes[b].volume()) {
            continue;
        }
        best = Some(i);
    }
    best
}

/// GRUB's 16 standard colours (`grub_video_fbstd_colors`,
/// grub-core/video/fb/video_fb.c), the palette of an indexed mode.
pub const STD_COLORS: [[u8; 3]; 16] = [
    [0x00, 0x00, 0x00],
    [0x00, 0x00, 0xA8],
    [0x00, 0xA8, 0x00],
    [0x00, 0xA8, 0xA8],
    [0xA8, 0x00, 0x00],
    [0xA8, 0x00, 0xA8],
    [0xA8, 0x54, 0x00],
    [0xA8, 0xA8, 0xA8],
    [0x54, 0x54, 0x54],
    [0x54, 0x54, 0xFE],
    [0x54, 0xFE, 0x54],
    [0x54, 0xFE, 0xFE],
    [0xFE, 0x54, 0x54],
    [0xFE, 0x54, 0xFE],
    [0xFE, 0xFE, 0x54],
    [0xFE, 0xFE, 0xFE],
];

/// What tag 8 says about a graphics mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graphics {
    pub addr: u64,
    pub pitch: u32,
    pub width: u32,
    pub height: u32,
    pub bpp: u8,
    pub color: Color,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Color {
    /// Framebuffer type 0 with its palette.
    Indexed(Vec<[u8; 3]>),
    /// Framebuffer type 1: [red pos, red size, green pos, green size, blue pos, blue size].
    Rgb([u8; 6]),
}

/// Tag 8 for a mode that was set, as `vbe2videoinfo` and
/// `retrieve_video_parameters` derive it: the pitch is the linear one from
/// VBE 3.0 on, the colour fields are the (banked) ones of the block.
pub fn graphics(info: &ModeInfo, vbe_version: u16) -> Graphics {
    let pitch = if vbe_version >= 0x300 { info.lin_bytes_per_scan_line() } else { info.bytes_per_scan_line() };
    let [rs, rp, gs, gp, bs, bp] = info.rgb_fields();
    Graphics {
        addr: info.phys_base() as u64,
        pitch: pitch as u32,
        width: info.width() as u32,
        height: info.height() as u32,
        bpp: info.bpp(),
        color: if info.memory_model() == MODEL_PACKED_PIXEL {
            Color::Indexed(STD_COLORS.to_vec())
        } else {
            Color::Rgb([rp, rs, gp, gs, bp, bs])
        },
    }
}

/// MBI tag 7: what `fill_vbe_tag` collects once the mode is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbeTag {
    /// 4F03's BX.
    pub mode: u16,
    /// 4F0A: the protected-mode interface (zero when the BIOS has none).
    pub interface_seg: u16,
    pub interface_off: u16,
    pub interface_len: u16,
    /// 4F00's 512-byte controller information.
    pub control_info: [u8; 512],
    /// 4F01 of the current mode.
    pub mode_info: [u8; 256],
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn mode(w: u16, h: u16, bpp: u8, model: u8, attr: u16) -> ModeInfo {
        let mut b = [0u8; 256];
        b[0..2].copy_from_slice(&attr.to_le_bytes());
        b[16..18].copy_from_slice(&(w * (bpp as u16).div_ceil(8)).to_le_bytes());
        b[18..20].copy_from_slice(&w.to_le_bytes());
        b[20..22].copy_from_slice(&h.to_le_bytes());
        b[25] = bpp;
        b[27] = model;
        if bpp >= 24 {
            b[31..37].copy_from_slice(&[8, 16, 8, 8, 8, 0]);
        } else if bpp == 16 {
            b[31..37].copy_from_slice(&[5, 11, 6, 5, 5, 0]);
        }
        b[40..44].copy_from_slice(&0xfd00_0000u32.to_le_bytes());
        b[50..52].copy_from_slice(&(w * (bpp as u16).div_ceil(8) + 64).to_le_bytes());
        ModeInfo(b)
    }
    const GOOD: u16 = ATTR_SUPPORTED | ATTR_COLOR | ATTR_GRAPHICS | ATTR_LFB;

    /// A mode list in the shape of QEMU's std VGA (SeaVGABIOS / Bochs VBE).
    fn qemu_modes() -> Vec<Mode> {
        [
            (0x0003, mode(80, 25, 4, MODEL_TEXT, 0x0f)),
            (0x0100, mode(640, 400, 8, MODEL_PACKED_PIXEL, GOOD)),
            (0x0101, mode(640, 480, 8, MODEL_PACKED_PIXEL, GOOD)),
            (0x0111, mode(640, 480, 16, MODEL_DIRECT_COLOR, GOOD)),
            (0x0112, mode(640, 480, 24, MODEL_DIRECT_COLOR, GOOD)),
            (0x0115, mode(800, 600, 24, MODEL_DIRECT_COLOR, GOOD)),
            (0x0118, mode(1024, 768, 24, MODEL_DIRECT_COLOR, GOOD)),
            (0x0140, mode(320, 200, 32, MODEL_DIRECT_COLOR, GOOD)),
            (0x0142, mode(640, 480, 32, MODEL_DIRECT_COLOR, GOOD)),
            (0x0143, mode(800, 600, 32, MODEL_DIRECT_COLOR, GOOD)),
            (0x0144, mode(1024, 768, 32, MODEL_DIRECT_COLOR, GOOD)),
            (0x0145, mode(1280, 1024, 32, MODEL_DIRECT_COLOR, GOOD)),
            // Not supported by the display memory / no LFB / monochrome: skipped.
            (0x0146, mode(1600, 1200, 32, MODEL_DIRECT_COLOR, GOOD & !ATTR_SUPPORTED)),
            (0x0147, mode(1920, 1080, 32, MODEL_DIRECT_COLOR, GOOD & !ATTR_LFB)),
            (0x0148, mode(1920, 1200, 32, MODEL_DIRECT_COLOR, GOOD & !ATTR_COLOR)),
        ]
        .iter()
        .map(|(n, m)| if *n < 0x100 { Mode::non_vesa(*n) } else { m.mode(*n) })
        .collect()
    }

    fn pick(spec: ModeSpec, pref: Option<(u32, u32)>) -> Option<u16> {
        let m = qemu_modes();
        choose(&m, spec, pref).map(|i| m[i].number)
    }

    #[test]
    fn specs_follow_grub_set_console() {
        let fb = |width, height, depth| FramebufferTag { width, height, depth, optional: true };
        assert_eq!(
            mode_specs(&fb(1024, 768, 32)),
            vec![
                ModeSpec::Size { width: 1024, height: 768, depth: Some(32) },
                ModeSpec::Size { width: 1024, height: 768, depth: None },
                ModeSpec::Auto
            ]
        );
        assert_eq!(
            mode_specs(&fb(800, 600, 0)),
            vec![ModeSpec::Size { width: 800, height: 600, depth: None }, ModeSpec::Auto]
        );
        assert_eq!(mode_specs(&fb(0, 0, 0)), vec![ModeSpec::Auto]);
        assert_eq!(mode_specs(&fb(0, 600, 32)), vec![ModeSpec::Auto]);
    }

    #[test]
    fn mode_choice_is_grubs() {
        // auto with an EDID preference of 1024x768: the largest volume no larger.
        assert_eq!(pick(ModeSpec::Auto, Some((1024, 768))), Some(0x144));
        // auto with no preference: exactly 640x480, the deepest.
        assert_eq!(pick(ModeSpec::Auto, None), Some(0x142));
        // WxH: exact size, any depth, the largest volume.
        assert_eq!(pick(ModeSpec::Size { width: 800, height: 600, depth: None }, None), Some(0x143));
        // WxHxD: exact depth too.
        assert_eq!(pick(ModeSpec::Size { width: 800, height: 600, depth: Some(24) }, None), Some(0x115));
        assert_eq!(pick(ModeSpec::Size { width: 640, height: 480, depth: Some(8) }, None), Some(0x101));
        // No such mode: nothing (GRUB goes on to the next spec).
        assert_eq!(pick(ModeSpec::Size { width: 800, height: 600, depth: Some(15) }, None), None);
        assert_eq!(pick(ModeSpec::Size { width: 1600, height: 1200, depth: None }, None), None);
        assert_eq!(pick(ModeSpec::Size { width: 80, height: 25, depth: None }, None), None);
        // Equal volume: the later mode wins.
        let m = vec![
            mode(640, 480, 32, MODEL_DIRECT_COLOR, GOOD).mode(0x200),
            mode(640, 480, 32, MODEL_DIRECT_COLOR, GOOD).mode(0x201),
        ];
        assert_eq!(choose(&m, ModeSpec::Auto, None), Some(1));
        // Unsupported depths are skipped, and so are non-VESA numbers.
        let m = vec![
            mode(640, 480, 4, MODEL_PACKED_PIXEL, GOOD).mode(0x200),
            mode(640, 480, 32, MODEL_DIRECT_COLOR, GOOD).mode(0x13),
        ];
        assert_eq!(choose(&m, ModeSpec::Auto, None), None);
    }

    fn edid(w: u32, h: u32) -> [u8; 128] {
        let mut e = [0u8; 128];
        e[..8].copy_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        e[0x12] = 1;
        e[0x13] = 4;
        e[0x18] = 0x0a;
        e[0x36..0x38].copy_from_slice(&6500u16.to_le_bytes());
        e[0x38] = w as u8;
        e[0x3a] = ((w >> 4) & 0xf0) as u8;
        e[0x3b] = h as u8;
        e[0x3d] = ((h >> 4) & 0xf0) as u8;
        let s = e.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        e[127] = 0u8.wrapping_sub(s);
        e
    }

    #[test]
    fn edid_preferred_mode() {
        assert_eq!(edid_preferred(&edid(1024, 768)), Some((1024, 768)));
        assert_eq!(edid_preferred(&edid(1280, 800)), Some((1280, 800)));
        let mut e = edid(1024, 768);
        e[5] ^= 1; // bad checksum
        assert_eq!(edid_preferred(&e), None);
        let mut e = edid(1024, 768);
        e[0x18] = 0x08; // no preferred-timing bit
        e[127] = e[127].wrapping_add(2);
        assert_eq!(edid_preferred(&e), None);
        let mut e = edid(1024, 768);
        e[0x12] = 2; // a version GRUB does not understand
        e[127] = e[127].wrapping_sub(1);
        assert_eq!(edid_preferred(&e), None);
    }

    #[test]
    fn tag_8_from_the_mode() {
        let m = mode(1024, 768, 32, MODEL_DIRECT_COLOR, GOOD);
        let g = graphics(&m, 0x300);
        assert_eq!((g.addr, g.pitch, g.width, g.height, g.bpp), (0xfd00_0000, 4096 + 64, 1024, 768, 32));
        assert_eq!(g.color, Color::Rgb([16, 8, 8, 8, 0, 8]));
        // VBE 2.0: the banked pitch.
        assert_eq!(graphics(&m, 0x200).pitch, 4096);
        let g = graphics(&mode(640, 480, 8, MODEL_PACKED_PIXEL, GOOD), 0x300);
        assert_eq!(g.color, Color::Indexed(STD_COLORS.to_vec()));
    }
}
