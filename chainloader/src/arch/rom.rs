//! The firmware areas GRUB searches for the ACPI RSDP: the first KiB of the
//! EBDA, then the BIOS area 0xE0000-0xFFFFF.

use super::{bda, mem};

/// Conventional memory ends here (the VGA window starts).
const CONVENTIONAL_END: usize = 0xa0000;
const BIOS_AREA: (usize, usize) = (0xe0000, 0x20000);

/// The areas, in GRUB's order. The EBDA is left out when the BIOS data area
/// points outside conventional memory (bogus).
pub fn rsdp_search_areas() -> [&'static [u8]; 2] {
    let ebda = bda::ebda_base();
    let ebda_len = if (0x500..CONVENTIONAL_END).contains(&ebda) { (CONVENTIONAL_END - ebda).min(1024) } else { 0 };
    [mem::low(if ebda_len == 0 { 0 } else { ebda }, ebda_len), mem::low(BIOS_AREA.0, BIOS_AREA.1)]
}
