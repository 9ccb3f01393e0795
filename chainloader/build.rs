//! Link chainloader as a freestanding image placed at 0000:7C00, where a PXE
//! ROM (or PXELINUX) puts a network bootstrap program. The host target's
//! default link (crt files, libc, PIE) is switched off; `link.ld` lays out
//! 16-bit entry code first so that real-mode code stays below 64 KiB.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
        &format!("-Wl,-T,{dir}/link.ld"),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=link.ld");
}
