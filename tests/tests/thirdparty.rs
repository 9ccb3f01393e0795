//! Real third-party Multiboot2 kernels from Debian's packages, booted
//! through GRUB 2 netboot and through chainloader.0 with the same command
//! line and modules: each must say the same about how it was loaded and
//! reach the same point.
//!
//! The packages are fetched at test time (`apt-get download`, cached under
//! target/debian-packages/); a failed download fails the test with apt's
//! message.

use e2e::grub::GrubNetboot;
use e2e::qemu::{Qemu, QemuConfig};
use e2e::{debpkg, dist, write_file};
use std::path::Path;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(240);

/// A kernel, its command line, its modules (name in the TFTP root,
/// contents, string), the QEMU options it needs, and the console line
/// that ends the run.
struct Boot<'a> {
    kernel: &'a Path,
    name: &'a str,
    cmdline: &'a str,
    modules: &'a [(&'a str, &'a [u8], &'a str)],
    qemu: &'a [&'a str],
    until: &'a str,
}

fn config(root: &Path, bootfile: &str, b: &Boot) -> QemuConfig {
    let mut c = QemuConfig::user_net(root, bootfile);
    for a in b.qemu {
        c = c.arg(a);
    }
    c
}

fn run(q: &Qemu, who: &str, b: &Boot) -> String {
    if q.try_expect(b.until, BOOT).is_none() {
        panic!("{who}: {} did not reach /{}/ within {BOOT:?}:\n{}", b.name, b.until, q.output());
    }
    // The rest of the line and what follows it at once.
    q.try_expect(&format!("{}[^\\n]*\\n", b.until), Duration::from_secs(5));
    q.output()
}

fn grub(b: &Boot) -> String {
    let kernel = std::fs::read(b.kernel).unwrap();
    let mut files: Vec<(&str, &[u8])> = vec![(b.name, &kernel)];
    let mut script = format!("multiboot2 /{} {}\n", b.name, b.cmdline);
    for (file, contents, string) in b.modules {
        files.push((file, contents));
        script += &format!("module2 /{file} {string}\n");
    }
    script += "boot\n";
    let g = GrubNetboot::with_script(&files, &script);
    let q = Qemu::start(&config(g.root(), GrubNetboot::BOOTFILE, b));
    run(&q, "GRUB 2", b)
}

fn chainloader(b: &Boot) -> String {
    let dir = tempfile::Builder::new().prefix("netboot-3rd-").tempdir().unwrap();
    std::fs::copy(dist("chainloader.0"), dir.path().join("chainloader.0")).unwrap();
    std::fs::copy(b.kernel, dir.path().join(b.name)).unwrap();
    let mut cfg = format!("kernel /{} {}\n", b.name, b.cmdline);
    for (file, contents, string) in b.modules {
        write_file(dir.path(), file, contents);
        cfg += &format!("module /{file} {string}\n");
    }
    write_file(dir.path(), "chainloader.cfg/default", cfg);
    let q = Qemu::start(&config(dir.path(), "chainloader.0", b));
    run(&q, "chainloader.0", b)
}

/// The first console line containing `what`, CR and escape sequences
/// removed, or None.
fn line_with(console: &str, what: &str) -> Option<String> {
    let re = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    console.lines().map(|l| re.replace_all(l.trim_end_matches('\r'), "").into_owned()).find(|l| l.contains(what))
}

/// Xen 4.17 (Debian bookworm's xen-hypervisor-4.17-amd64, gzip-compressed
/// as shipped) with a dummy dom0 module: under both loaders it must print
/// the same command line and load base and give up on the same dom0.
#[test]
fn xen_4_17() {
    let xen = debpkg::file("xen-hypervisor-4.17-amd64", "boot/xen-4.17-amd64.gz");
    let dom0 = b"not a kernel: Xen must refuse to build dom0 from this\n".repeat(64);
    let b = Boot {
        kernel: &xen,
        name: "xen.gz",
        cmdline: "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=64M noreboot",
        modules: &[("dom0", &dom0, "dom0 dummy")],
        qemu: &["-cpu", "max"],
        until: r"Could not construct domain 0",
    };
    let g = grub(&b);
    println!("===== GRUB 2\n{g}");
    let o = chainloader(&b);
    println!("===== chainloader.0\n{o}");
    for what in ["Command line:", "Xen image load base address:"] {
        let lg = line_with(&g, what).unwrap_or_else(|| panic!("GRUB 2: Xen printed no {what:?} line:\n{g}"));
        let lo = line_with(&o, what).unwrap_or_else(|| panic!("chainloader.0: Xen printed no {what:?} line:\n{o}"));
        println!("GRUB 2:        {lg}\nchainloader.0: {lo}");
        assert_eq!(lo.split_once(") ").map(|x| x.1), lg.split_once(") ").map(|x| x.1), "Xen's {what:?} line differs");
    }
    // Both reached "Could not construct domain 0" (run waits for it). Xen's
    // own memory map is not compared: it asks the BIOS (E820) itself, and
    // under GRUB the iPXE ROM's PXE stack is still resident and hides its
    // memory, while chainloader.0 unloads the stack before the handoff, so
    // Xen sees the firmware's whole map.
}

/// The lines that start with `prefix`, CR and escape sequences removed.
fn lines_with_prefix(console: &str, prefix: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    console
        .lines()
        .map(|l| re.replace_all(l.trim_end_matches('\r'), "").into_owned())
        .filter_map(|l| l.find(prefix).map(|i| l[i..].to_string()))
        .collect()
}

/// tboot 1.10.5 (Debian's tboot package, tboot.gz: Multiboot2 and gzip)
/// with one module. Under QEMU there is no TXT (and the CPU is not
/// Intel's): tboot prints the memory map it was given, loads the module as
/// its kernel, moves the boot information, finds nothing to launch and
/// halts. Everything it prints must be the same under both loaders, except
/// the end of the RAM region at 1 MiB, which is computed
/// (e2e::ram_region_difference_grub_minus_chainloader).
#[test]
fn tboot_1_10() {
    let tboot = debpkg::file("tboot", "boot/tboot.gz");
    let module = std::fs::read(dist("testkernels/elf32.elf")).unwrap();
    let b = Boot {
        kernel: &tboot,
        name: "tboot.gz",
        cmdline: "logging=serial serial=115200,8n1,0x3f8",
        modules: &[("elf32.elf", &module, "console=ttyS0")],
        qemu: &["-cpu", "max"],
        until: r"shutdown_system\(\) called for shutdown_type: TB_SHUTDOWN_HALT",
    };
    let g = lines_with_prefix(&grub(&b), "TBOOT: ");
    let o = lines_with_prefix(&chainloader(&b), "TBOOT: ");
    println!("===== GRUB 2\n{}\n===== chainloader.0\n{}", g.join("\n"), o.join("\n"));
    let more = e2e::ram_region_difference_grub_minus_chainloader() as u64;
    let grub_end = |l: &str| -> Option<u64> {
        let rest = l.strip_prefix("TBOOT: \t0000000000100000 - ")?;
        u64::from_str_radix(rest.split_whitespace().next()?, 16).ok()
    };
    let ours_adjusted: Vec<String> = o
        .iter()
        .map(|l| {
            if let Some(end) = grub_end(l) {
                format!("TBOOT: \t0000000000100000 - {:016x}  (1)", end + more)
            } else if let Some(size) =
                l.strip_prefix("TBOOT: highest suitable area @ 0x100000 (size 0x").and_then(|r| r.strip_suffix(')'))
            {
                format!(
                    "TBOOT: highest suitable area @ 0x100000 (size 0x{:X})",
                    u64::from_str_radix(size, 16).unwrap() + more
                )
            } else {
                l.clone()
            }
        })
        .collect();
    assert!(g.iter().any(|l| grub_end(l).is_some()), "tboot printed no memory map under GRUB");
    assert_eq!(
        ours_adjusted, g,
        "tboot under chainloader.0 (left, RAM region end adjusted by {more:#x}) and GRUB 2 (right)"
    );
}
