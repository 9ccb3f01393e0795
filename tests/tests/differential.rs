//! The reference kernel booted through GRUB 2 netboot and through
//! chainloader.0 with the same kernel, modules and command line: its
//! `MBI ...` lines (what it received) must agree for tags 1 (command line),
//! 3 (module string, size, CRC-32), 4 (basic meminfo), 6 (memory map) and
//! 14 (ACPI RSDP). Also: the kernel's self-check passes through
//! chainloader.0 for each image shape (ELF64, ELF32, address tags).
//!
//! Run: `scripts/build && cargo test -p e2e --test differential`.

use e2e::grub::{GrubModule, GrubNetboot};
use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::{dist, write_file};
use std::path::Path;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);
const ARGS: &str = "exit console=ttyS0 diff=1";

fn modules() -> (Vec<u8>, Vec<u8>) {
    let m1: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let m2 = b"module two: a few bytes of text\n".to_vec();
    (m1, m2)
}

/// Boot until the verdict and the pass exit; return the console.
fn run(root: &Path, bootfile: &str) -> String {
    let mut q = Qemu::start(&QemuConfig::user_net(root, bootfile));
    let out = q.expect_self_check_ok(BOOT);
    assert_eq!(q.wait_exit(Duration::from_secs(30)), Some(debug_exit_status(0x10)), "{out}");
    out
}

/// A TFTP root for chainloader.0: the kernel as /kernel.elf, two modules,
/// and chainloader.cfg/default naming them.
fn chainloader_root(kernel: &Path, m1: &[u8], m2: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("netboot-diff-").tempdir().unwrap();
    std::fs::copy(dist("chainloader.0"), dir.path().join("chainloader.0")).unwrap();
    std::fs::copy(kernel, dir.path().join("kernel.elf")).unwrap();
    write_file(dir.path(), "mod1", m1);
    write_file(dir.path(), "mod2", m2);
    write_file(
        dir.path(),
        "chainloader.cfg/default",
        format!("kernel /kernel.elf {ARGS}\nmodule /mod1 mod1 first\nmodule /mod2 mod2 second\n"),
    );
    dir
}

/// The `MBI <kind> ...` lines, CRs removed.
fn mbi_lines(console: &str, kind: &str) -> Vec<String> {
    let p = format!("MBI {kind}");
    console.lines().map(|l| l.trim_end_matches('\r')).filter(|l| l.starts_with(&p)).map(str::to_string).collect()
}

fn field(line: &str, key: &str) -> u64 {
    let v = line.split(&format!("{key}=")).nth(1).unwrap().split_whitespace().next().unwrap();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => v.parse().unwrap(),
    }
}

#[test]
fn chainloader_gives_the_kernel_what_grub_gives_it() {
    let (m1, m2) = modules();
    let kernel = dist("kernel.elf");
    let g = GrubNetboot::new(
        &kernel,
        ARGS,
        &[
            GrubModule { file: "mod1", contents: &m1, string: "mod1 first" },
            GrubModule { file: "mod2", contents: &m2, string: "mod2 second" },
        ],
    );
    let grub = run(g.root(), GrubNetboot::BOOTFILE);
    drop(g);
    let c = chainloader_root(&kernel, &m1, &m2);
    let ours = run(c.path(), "chainloader.0");

    for kind in ["cmdline", "module ", "rsdp "] {
        let (a, b) = (mbi_lines(&ours, kind), mbi_lines(&grub, kind));
        assert!(!b.is_empty(), "GRUB gave no `MBI {kind}` line:\n{grub}");
        assert_eq!(a, b, "`MBI {kind}` lines: chainloader.0 (left) and GRUB 2 (right) differ");
    }
    assert_eq!(mbi_lines(&ours, "module ").len(), 2);

    // Memory: the same firmware map, except that QEMU's iPXE ROM hides the
    // buffer of the NBP it runs from E820, and chainloader.0 is a bigger
    // NBP than GRUB's core.0: the RAM region at 1 MiB (and mem_upper,
    // derived from it) is shorter by exactly the page-rounded size
    // difference (e2e::ipxe_hidden_for_nbp). Everything else is equal.
    let more = e2e::ram_region_difference_grub_minus_chainloader();
    let (mo, mg) = (mbi_lines(&ours, "mmap "), mbi_lines(&grub, "mmap "));
    assert_eq!(mo.len(), mg.len(), "memory maps differ:\n{mo:#?}\n{mg:#?}");
    for (a, b) in mo.iter().zip(&mg) {
        assert_eq!((field(a, "base"), field(a, "type")), (field(b, "base"), field(b, "type")), "{mo:#?}\n{mg:#?}");
        let expected =
            if field(a, "base") == 0x10_0000 { field(a, "len") as i64 + more } else { field(a, "len") as i64 };
        assert_eq!(expected, field(b, "len") as i64, "{a} vs {b}: GRUB's region must be longer by {more:#x}");
    }
    let (io, ig) = (&mbi_lines(&ours, "meminfo")[0], &mbi_lines(&grub, "meminfo")[0]);
    assert_eq!(field(io, "lower"), field(ig, "lower"), "{io} vs {ig}");
    assert_eq!(field(io, "upper") as i64 + more / 1024, field(ig, "upper") as i64, "{io} vs {ig}: mem_upper");

    // The loader's name differs by design; both must give one.
    assert!(mbi_lines(&grub, "loader=")[0].contains("GRUB"));
    assert!(!mbi_lines(&ours, "loader=").is_empty(), "chainloader.0 gave no boot loader name");
}

/// The self-check passes through chainloader.0 for the kernel as ELF64,
/// as ELF32 and as a flat image with address tags (kernel/variants.sh).
#[test]
fn self_check_passes_through_chainloader_for_every_image_shape() {
    let (m1, m2) = modules();
    for k in ["kernel.elf", "kernel32.elf", "kernel-aout.bin"] {
        let c = chainloader_root(&dist(k), &m1, &m2);
        let out = run(c.path(), "chainloader.0");
        assert_eq!(mbi_lines(&out, "module ").len(), 2, "{k}: {out}");
    }
}
