//! The end-to-end test harness: real QEMU boots, driven through the serial
//! console.
//!
//! Tests wait for console patterns with bounded timeouts and never sleep to
//! synchronise or assert timings. Every QEMU process and network namespace a
//! test starts is owned by a value here whose `Drop` ends it.

pub mod debpkg;
pub mod dnsmasq;
pub mod grub;
pub mod impair;
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

/// `n` bytes of a seeded pattern (a file whose every byte matters: a
/// kernel's CRC-32 of it shows one wrong byte).
pub fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8).collect()
}

/// The reference kernel's line for a module: its string, size and CRC-32
/// must be those of `data`, or the test fails with the console.
pub fn want_module(out: &str, string: &str, data: &[u8]) {
    let want =
        format!(r#"MBI module string="{string}" size={} crc32={:08x}"#, data.len(), bootproto::gzip::crc32(data));
    assert!(out.contains(&want), "missing `{want}`:\n{out}");
}

/// A TCP port free on 127.0.0.1 now (for a server the test starts next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// RAM that QEMU's iPXE ROM (package ipxe-qemu, 1.0.0+git-20190125.36a4c85)
/// hides from E820 while the NBP of `nbp_size` bytes it downloaded first
/// runs. iPXE keeps the image in external memory it allocates downwards
/// from the top of the largest RAM region below 4 GiB: the block's start
/// is aligned down to 4 KiB, an 8-byte header (struct external_memory)
/// sits just below it, and the memory from that header up is hidden from
/// E820 in whole pages (src/arch/x86/interface/pcbios/memtop_umalloc.c,
/// memtop_urealloc, EM_ALIGN, hide_umalloc). So the RAM region that starts
/// at 1 MiB ends lower by (size + 8) rounded up to 4 KiB pages, on top of
/// what iPXE itself keeps there, which is the same for every NBP. Measured
/// in tests/tests/conformance.rs (ipxe_rom_hides_the_nbp_rounded_up_to_pages)
/// with NBPs of k pages - 8 and - 7 bytes: k and k + 1 pages.
pub fn ipxe_hidden_for_nbp(nbp_size: u64) -> u64 {
    (nbp_size + 8).div_ceil(4096) * 4096
}

/// How many bytes longer the RAM region at 1 MiB (type 1 in the memory
/// map) is under GRUB 2's core.0 than under chainloader.0, both netbooted
/// by QEMU's iPXE ROM. Measured: GRUB's core.0 (51,024 bytes, 13 pages)
/// sees it end at 0x1fe2f000 with -m 512, chainloader.0 (192,304 bytes,
/// 47 pages) at 0x1fe0d000: 0x22000 = 34 pages, exactly this.
pub fn ram_region_difference_grub_minus_chainloader() -> i64 {
    let ours = std::fs::metadata(dist("chainloader.0")).unwrap().len();
    ipxe_hidden_for_nbp(ours) as i64 - ipxe_hidden_for_nbp(grub::GrubNetboot::core_size()) as i64
}

/// Reads a child's piped stdout and stderr to the end on two threads, so
/// that neither pipe fills and stalls it; join them for the text.
pub fn collect_output(
    child: &mut std::process::Child,
) -> (std::thread::JoinHandle<String>, std::thread::JoinHandle<String>) {
    fn drain(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    }
    (drain(child.stdout.take().expect("stdout piped")), drain(child.stderr.take().expect("stderr piped")))
}

/// Copies a directory tree (files and subdirectories).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 if absent.
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
