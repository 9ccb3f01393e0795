//! Fuzzes the Multiboot2 header parser and the load planner
//! (bootproto::multiboot2) with arbitrary kernel images: a kernel from the
//! network is untrusted. Invariants: no panic; a plan's segments lie in
//! RAM above 1 MiB and below 4 GiB (never on the loader) and take their file
//! bytes from inside the image. (Segments may overlap each other: an ELF's
//! PT_LOADs may, and they are then copied in order, as GRUB copies them.)
#![no_main]

use bootproto::memmap::{Allocator, E820Entry, Range};
use bootproto::multiboot2::{parse_header, plan_load};
use libfuzzer_sys::fuzz_target;

fn qemu_512m() -> Vec<E820Entry> {
    vec![
        E820Entry::new(0, 0x9fc00, 1),
        E820Entry::new(0x9fc00, 0x400, 2),
        E820Entry::new(0xf0000, 0x10000, 2),
        E820Entry::new(0x100000, 0x1fee0000, 1),
        E820Entry::new(0x1ffe0000, 0x20000, 2),
        E820Entry::new(0xfffc0000, 0x40000, 2),
    ]
}

fuzz_target!(|image: &[u8]| {
    let Ok(h) = parse_header(image) else { return };
    let mut mem = Allocator::new(&qemu_512m());
    // Below 1 MiB: the loader and the firmware, as chainloader.0 reserves them.
    mem.reserve_always(Range::new(0, 0x100000), "loader");
    let Ok(plan) = plan_load(image, &h, &mut mem, None) else { return };
    for s in &plan.segments {
        assert!(s.file_len <= s.mem_len, "{s:?}");
        assert!(s.file_len == 0 || s.file_offset.checked_add(s.file_len).is_some_and(|e| e <= image.len() as u64), "{s:?}");
        let r = s.dest();
        assert!(r.end <= 1 << 32 && r.start >= 0x100000, "{s:?}");
    }
});
