//! Link chainloader as a freestanding image placed at 0000:7C00, where a PXE
//! ROM (or PXELINUX) puts a network bootstrap program. The host target's
//! default link (crt files, libc, PIE) is switched off; `link.ld` lays out
//! 16-bit entry code first so that real-mode code stays below 64 KiB.
include!("../baremetal/freestanding_link.rs");

fn main() {
    link_freestanding(&[]);
}
