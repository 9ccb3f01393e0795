//! The end-to-end test harness: real QEMU boots, driven through the serial
//! console.
//!
//! Tests wait for console patterns with bounded timeouts and never sleep to
//! synchronise or assert timings. Every QEMU process and network namespace a
//! test starts is owned by a value here whose `Drop` ends it.

pub mod grub;
pub mod mbgen;
pub mod netns;
pub mod qemu;
pub mod relayd;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A built artefact under `target/dist/`, left by `scripts/build`.
pub fn dist(name: &str) -> PathBuf {
    let p = repo_root().join("target/dist").join(name);
    assert!(p.exists(), "{} is missing: run scripts/build first", p.display());
    p
}

/// A fresh temporary TFTP root holding `chainloader.0` and the reference
/// kernel as `kernel.elf`.
pub fn tftp_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("netboot-tftp-").tempdir().unwrap();
    for f in ["chainloader.0", "kernel.elf"] {
        std::fs::copy(dist(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// Write a file under `root`, creating directories.
pub fn write_file(root: &std::path::Path, rel: &str, contents: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, contents).unwrap();
}
