//! Just enough ACPI to power off: RSDT -> FADT (PM1a/PM1b control blocks,
//! DSDT) -> the `\_S5` package's SLP_TYP values in the DSDT's AML.

use crate::arch::{phys_bytes, phys_u32};

/// A system description table by physical address, checked for its length.
fn table(addr: u64) -> Option<&'static [u8]> {
    let len = phys_u32(addr + 4)?;
    if !(36..=(1 << 20)).contains(&len) {
        return None;
    }
    phys_bytes(addr, len as usize)
}

/// The packed power-off parameters (see `POWER_OFF` in main.rs).
pub fn find_power_off(rsdt: u64) -> Option<u64> {
    let rsdt = table(rsdt)?;
    if &rsdt[0..4] != b"RSDT" {
        return None;
    }
    let fadt = rsdt[36..]
        .chunks_exact(4)
        .filter_map(|e| table(u32::from_le_bytes(e.try_into().unwrap()) as u64))
        .find(|t| &t[0..4] == b"FACP")?;
    if fadt.len() < 72 {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes(fadt[o..o + 4].try_into().unwrap());
    let (dsdt, pm1a, pm1b) = (u32_at(40), u32_at(64), u32_at(68));
    let dsdt = table(dsdt as u64)?;
    let (a, b) = s5_sleep_types(dsdt)?;
    Some(pm1a as u64 & 0xffff | (pm1b as u64 & 0xffff) << 16 | (a as u64) << 32 | (b as u64) << 40 | 1 << 48)
}

/// Find `Name(_S5, Package(){a, b, ...})` in AML and return (a, b).
fn s5_sleep_types(aml: &[u8]) -> Option<(u8, u8)> {
    let i = aml.windows(4).position(|w| w == b"_S5_")?;
    let mut p = i + 4;
    if *aml.get(p)? != 0x12 {
        return None; // not a PackageOp
    }
    p += 1;
    p += ((aml.get(p)? >> 6) & 3) as usize + 1; // PkgLength
    p += 1; // NumElements
    let mut value = || -> Option<u8> {
        let op = *aml.get(p)?;
        if op == 0x0a {
            p += 2; // BytePrefix value
            aml.get(p - 1).copied()
        } else {
            p += 1; // ZeroOp (0) / OneOp (1)
            Some(op)
        }
    };
    let a = value()?;
    let b = value()?;
    Some((a, b))
}
