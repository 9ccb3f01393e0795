//! The BIOS APM interface (INT 15h AX=53xxh) for MBI tag 10.

use super::thunk::{int, Regs};
use bootproto::mbi::Apm;

/// Queried as GRUB does: installation check, disconnect, connect the 32-bit
/// protected-mode interface. `None` when the BIOS has no APM (or refuses
/// the connection).
pub fn info() -> Option<Apm> {
    let mut r = Regs { eax: 0x5300, ..Regs::default() };
    int(0x15, &mut r);
    if r.carry() {
        return None;
    }
    let (version, flags) = (r.eax as u16, r.ecx as u16);
    let mut r = Regs { eax: 0x5304, ..Regs::default() };
    int(0x15, &mut r);
    let mut r = Regs { eax: 0x5303, ..Regs::default() };
    int(0x15, &mut r);
    if r.carry() {
        return None;
    }
    Some(Apm {
        version,
        cseg: r.eax as u16,
        offset: r.ebx,
        cseg_16: r.ecx as u16,
        dseg: r.edx as u16,
        flags,
        cseg_len: (r.esi >> 16) as u16,
        cseg_16_len: r.esi as u16,
        dseg_len: r.edi as u16,
    })
}
