//! The BIOS memory map, INT 15h EAX=E820h.

use super::thunk::{self, FarPtr, Regs};
use super::BaseMem;
pub use bootproto::memmap::E820Entry;

extern crate alloc;
use alloc::vec::Vec;

const SMAP: u32 = 0x534D_4150;
static BUF: BaseMem<[u8; 24]> = BaseMem::new([0; 24]);

/// Reads the E820 map. Entries whose ACPI 3.0 "enabled" bit is clear are
/// skipped, as the ACPI spec asks. Returns an error text if the BIOS has no
/// E820 at all.
pub fn read() -> Result<Vec<E820Entry>, &'static str> {
    let mut out = Vec::new();
    let mut cont = 0u32;
    let mut buf = BUF.lock();
    let ptr = FarPtr::from_linear(buf.addr());
    for _ in 0..256 {
        // An unchanged extended-attributes dword reads as "enabled" for
        // BIOSes that return only 20 bytes.
        *buf = [0; 24];
        buf[20] = 1;
        let mut r = Regs {
            eax: 0xE820,
            ebx: cont,
            ecx: 24,
            edx: SMAP,
            edi: ptr.offset as u32,
            es: ptr.segment,
            ..Default::default()
        };
        thunk::int(0x15, &mut r);
        if r.carry() || r.eax != SMAP {
            // CF on a later call marks the end (some BIOSes do that instead of EBX=0).
            if out.is_empty() {
                return Err("INT 15h E820 is not supported");
            }
            break;
        }
        let len = r.ecx.clamp(20, 24);
        let enabled = len < 24 || buf[20] & 1 != 0;
        let base = u64::from_le_bytes(buf[0..8].try_into().unwrap());
        let size = u64::from_le_bytes(buf[8..16].try_into().unwrap());
        let kind = u32::from_le_bytes(buf[16..20].try_into().unwrap());
        if enabled && size != 0 {
            out.push(E820Entry::new(base, size, kind));
        }
        cont = r.ebx;
        if cont == 0 {
            break;
        }
    }
    Ok(out)
}
