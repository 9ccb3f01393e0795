//! The link's practical limit: a Linux guest (Debian's kernel, busybox)
//! on the same emulated NIC fetches the same file by HTTP with busybox
//! wget. It runs a real native e1000 driver, with no real-mode trip per
//! frame, so it shows what the emulated link itself can carry.
//!
//! Nothing here is committed: the kernel and busybox come from Debian
//! packages at run time (`harness::debpkg`), and the initramfs is built in
//! the bench's work directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A bootable guest: `-kernel` and `-initrd` paths.
pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// The init script. The bench passes `bench.ip=`, `bench.url=` on the
/// kernel command line; the script prints `linux-wget: ok BYTES T0 T1`
/// (seconds of uptime, 10 ms resolution) or `linux-wget: failed`, then
/// powers the machine off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^bench\.$1=//p"; }
ip=$(arg ip); url=$(arg url)
insmod /e1000.ko
ip link set lo up
ip link set eth0 up
ip addr add "$ip/24" dev eth0
ip route add default dev eth0
n=0
while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done
# One small fetch first, so that ARP and the server are warm.
wget -q -O /dev/null "$url" 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
if wget -q -O /tmp/f "$url"; then
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "linux-wget: ok $(wc -c < /tmp/f) $t0 $t1"
else
    echo "linux-wget: failed"
fi
rm -f /tmp/f
poweroff -f
"#;

/// Debian's current amd64 kernel package (what `linux-image-amd64` points
/// at), e.g. `linux-image-6.1.0-57-amd64`.
fn kernel_package() -> String {
    let out = Command::new("apt-cache").args(["depends", "linux-image-amd64"]).output().expect("apt-cache");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("apt-cache depends linux-image-amd64 names no kernel package:\n{text}"))
}

/// Fetches the packages (cached under target/) and builds the initramfs.
pub fn build(work: &Path) -> Guest {
    let package = kernel_package();
    let version = package.trim_start_matches("linux-image-");
    let kernel = e2e::debpkg::file(&package, &format!("boot/vmlinuz-{version}"));
    let e1000 =
        e2e::debpkg::file(&package, &format!("lib/modules/{version}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko"));
    let busybox = e2e::debpkg::file("busybox-static", "bin/busybox");
    let mut cpio = Newc::default();
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(dir);
    }
    cpio.file("bin/busybox", &std::fs::read(busybox).unwrap(), 0o755);
    cpio.file("e1000.ko", &std::fs::read(e1000).unwrap(), 0o644);
    cpio.file("init", INIT.as_bytes(), 0o755);
    let initrd = work.join("linux-initrd.cpio");
    std::fs::write(&initrd, cpio.finish()).unwrap();
    Guest { kernel, initrd }
}

/// The `newc` cpio format the kernel unpacks as its initramfs
/// (Documentation/driver-api/early-userspace/buffer-format.rst).
#[derive(Default)]
struct Newc {
    out: Vec<u8>,
    ino: u32,
}

impl Newc {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// What the guest printed: bytes fetched and the seconds the fetch took.
pub fn parse_result(console: &str) -> Result<(u64, f64), String> {
    let line = console
        .lines()
        .find(|l| l.starts_with("linux-wget: "))
        .ok_or_else(|| "the Linux guest printed no linux-wget line".to_string())?;
    let f: Vec<&str> = line.split_whitespace().collect();
    match f.as_slice() {
        ["linux-wget:", "ok", bytes, t0, t1] => {
            let bytes = bytes.parse().map_err(|_| format!("bad line {line:?}"))?;
            let (t0, t1): (f64, f64) = (
                t0.parse().map_err(|_| format!("bad line {line:?}"))?,
                t1.parse().map_err(|_| format!("bad line {line:?}"))?,
            );
            Ok((bytes, t1 - t0))
        }
        _ => Err(format!("the Linux guest's fetch failed: {line:?}")),
    }
}
