// Shared by the build scripts of the bare-metal bins (`chainloader`,
// `kernel`) through `include!`: a build script cannot depend on a library
// of this workspace without building it for the host first, and this is
// only a list of linker arguments.

/// Link the package's bins as freestanding images with the package's
/// `link.ld`: no crt files, no libc, static, not position-independent
/// (the host target's defaults), unused sections dropped. `extra` are
/// further linker arguments.
fn link_freestanding(extra: &[&str]) {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let script = format!("-Wl,-T,{dir}/link.ld");
    let common = [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
    ];
    for arg in common.iter().chain(extra).chain([&script.as_str()]) {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=link.ld");
}
