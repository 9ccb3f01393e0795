//! Link the kernel as a freestanding ELF at 1 MiB, where Multiboot2 loaders
//! (GRUB 2, chainloader.0) place it by its program headers' physical
//! addresses. The host target's default link (crt files, libc, PIE) is off.
include!("../baremetal/freestanding_link.rs");

fn main() {
    // 4 KiB segment alignment keeps the file small and the segments where
    // link.ld puts them; no RELRO segment for a kernel that never remaps.
    link_freestanding(&["-Wl,-z,max-page-size=0x1000", "-Wl,-z,norelro"]);
}
