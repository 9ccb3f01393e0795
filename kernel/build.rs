//! Link the kernel as a freestanding ELF at 1 MiB, where Multiboot2 loaders
//! (GRUB 2, chainloader.0) place it by its program headers' physical
//! addresses. The host target's default link (crt files, libc, PIE) is off.
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
        "-Wl,-z,max-page-size=0x1000",
        "-Wl,-z,norelro",
        &format!("-Wl,-T,{dir}/link.ld"),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=link.ld");
}
