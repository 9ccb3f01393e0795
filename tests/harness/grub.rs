//! GRUB 2 netboot fixture: a TFTP root that QEMU's PXE ROM boots into
//! Debian's GRUB 2 (`grub-pc-bin`), which then loads a Multiboot2 kernel and
//! modules by TFTP. This is the reference the chainloader is compared with.
//!
//! ```ignore
//! let g = GrubNetboot::new(&dist("kernel.elf"), "exit", &[("mod1", b"..", "mod1 one")]);
//! let q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian's grub-pc-bin keeps the i386-pc modules.
const GRUB_PC_DIR: &str = "/usr/lib/grub/i386-pc";

/// A TFTP root with GRUB 2's network image, `grub.cfg`, the kernel and modules.
pub struct GrubNetboot {
    dir: tempfile::TempDir,
}

/// `grub-mknetdir` output, made once per test process and copied into each
/// fixture (it takes a second or two and never changes).
fn mknetdir_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("netboot-grub-template-").tempdir().unwrap().keep();
        let st = Command::new("grub-mknetdir")
            .arg(format!("--net-directory={}", dir.display()))
            .arg("--subdir=boot/grub")
            .args(["-d", GRUB_PC_DIR])
            .output()
            .expect("cannot run grub-mknetdir (is grub-pc-bin / grub-common installed?)");
        assert!(
            st.status.success(),
            "grub-mknetdir failed: {}{}",
            String::from_utf8_lossy(&st.stdout),
            String::from_utf8_lossy(&st.stderr)
        );
        assert!(dir.join(GrubNetboot::BOOTFILE).exists(), "grub-mknetdir made no {}", GrubNetboot::BOOTFILE);
        dir
    })
}

/// One `module2` line: file name in the TFTP root, contents, and the string
/// GRUB passes with it.
pub struct GrubModule<'a> {
    pub file: &'a str,
    pub contents: &'a [u8],
    pub string: &'a str,
}

impl GrubNetboot {
    /// The network boot program `QemuConfig::user_net` must name.
    pub const BOOTFILE: &'static str = "boot/grub/i386-pc/core.0";

    /// Build the root: `kernel` is copied to `/kernel.elf`, `args` follow it on
    /// the `multiboot2` line, and each module is written and listed.
    pub fn new(kernel: &Path, args: &str, modules: &[GrubModule]) -> GrubNetboot {
        let dir = tempfile::Builder::new().prefix("netboot-grub-").tempdir().unwrap();
        crate::copy_tree(mknetdir_template(), dir.path());
        std::fs::copy(kernel, dir.path().join("kernel.elf")).unwrap();
        let mut cfg = String::from("set timeout=0\n");
        cfg += &format!("echo 'grub: loading /kernel.elf'\nmultiboot2 /kernel.elf {args}\n");
        for m in modules {
            crate::write_file(dir.path(), m.file, m.contents);
            cfg += &format!("module2 /{} {}\n", m.file, m.string);
        }
        cfg += "boot\n";
        crate::write_file(dir.path(), "boot/grub/grub.cfg", cfg);
        GrubNetboot { dir }
    }

    /// A root with `files` (path in the root, contents) and a `grub.cfg`
    /// that sends GRUB's own console to COM1 too (so its error messages can
    /// be read) and then runs `script`.
    pub fn with_script(files: &[(&str, &[u8])], script: &str) -> GrubNetboot {
        let dir = tempfile::Builder::new().prefix("netboot-grub-").tempdir().unwrap();
        crate::copy_tree(mknetdir_template(), dir.path());
        for (name, contents) in files {
            crate::write_file(dir.path(), name, contents);
        }
        let cfg = format!("serial --unit=0 --speed=115200\nterminal_output console serial\nset timeout=0\n{script}");
        crate::write_file(dir.path(), "boot/grub/grub.cfg", cfg);
        GrubNetboot { dir }
    }

    /// The size of the NBP QEMU's ROM downloads for GRUB (core.0).
    pub fn core_size() -> u64 {
        std::fs::metadata(mknetdir_template().join(GrubNetboot::BOOTFILE)).unwrap().len()
    }

    /// The TFTP root to hand to QEMU.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}
