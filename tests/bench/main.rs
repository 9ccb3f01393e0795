//! `scripts/bench`: the netboot chain's speed, side by side in one run.
//!
//! Every boot is a real QEMU machine (TCG, e1000 with its iPXE PXE ROM)
//! that boots the reference kernel with one module of SIZE MiB and ends
//! QEMU after its self-check. A boot's *own time* is power-on to the
//! kernel's first line minus the *floor*: power-on to the first line of
//! floor.0, a do-nothing NBP, fetched from the same server in the same
//! round. So firmware, the ROM's DHCP and its server waits cancel out, and
//! what is left is the loader's work: its own DHCP, its downloads, its
//! handoff. The link's practical limit is a Linux guest fetching the same
//! file with busybox wget on the same emulated NIC.
//!
//! Compared (each at each size, each round):
//! - QEMU's user network: GRUB 2 (Debian's core.0) and chainloader.0 by
//!   TFTP from QEMU's built-in server, chainloader.0 by HTTP from Python's
//!   http.server on the host;
//! - a tap link in a network namespace of our own: GRUB 2 on dnsmasq
//!   tuned (the fair reference) and with the seed's options, chainloader.0
//!   on `relay serve` by TFTP and by HTTP (`--http-port`).
//!
//! Medians and spreads over the rounds, the ratios against the targets, the
//! frames each boot put on the tap, and the loaders' sizes go to
//! `target/bench/report.md` (and stdout); `target/bench/own-time.png` plots
//! own time against size (gnuplot).

mod linux;
mod report;
mod servers;

use clap::Parser;
use e2e::netns::NetNs;
use e2e::qemu::{Qemu, QemuConfig};
use servers::DnsmasqSetup;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Side-by-side netboot speed: GRUB 2 vs chainloader.0, TFTP vs HTTP, user network vs tap")]
struct Opts {
    /// One round at 0 and 16 MiB (under 3 minutes)
    #[arg(long)]
    quick: bool,
    /// Rounds (medians and spreads are taken over them)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Module sizes in MiB (0: the kernel alone)
    #[arg(long, value_delimiter = ',', default_values_t = vec![0, 1, 16, 64, 256])]
    sizes: Vec<u32>,
    /// GRUB 2 only up to this size: its lockstep TFTP is linear, and at
    /// 256 MiB one boot takes over half a minute
    #[arg(long, default_value_t = 64)]
    grub_max_mib: u32,
    /// Skip the Linux-guest limit (it downloads Debian's kernel package once)
    #[arg(long)]
    no_linux: bool,
    /// Where the report and the plot go
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

/// QEMU's memory: room for a 256 MiB module under every loader.
const MEMORY_MIB: u32 = 1024;
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const FLOOR_LINE: &str = "floor-nbp: started";
const KERNEL_LINE: &str = "kernel: reference Multiboot2 kernel booting";
const HTTP_PORT: u16 = 8080;
/// The size the ratio targets are stated at.
const REFERENCE_MIB: u32 = 16;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Link {
    User,
    Tap,
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::User => "QEMU user network",
            Link::Tap => "tap link",
        }
    }
}

/// One row of the comparison: a link, a server, a loader and a protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Row {
    pub link: Link,
    pub server: &'static str,
    pub loader: &'static str,
}

pub const GRUB: &str = "GRUB 2 (TFTP)";
pub const CL_TFTP: &str = "chainloader.0 by TFTP";
pub const CL_HTTP: &str = "chainloader.0 by HTTP";
pub const FLOOR: &str = "floor.0 (the floor)";
pub const LINUX: &str = "Linux guest, busybox wget (the link's limit)";
pub const QEMU_TFTP: &str = "QEMU's TFTP";
pub const PYTHON_HTTP: &str = "QEMU's TFTP + python3 http.server";
pub const RELAY: &str = "relay serve";
pub const RELAY_HTTP: &str = "relay serve --http-port";

/// One boot's figures.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Seconds from power-on to the line that ends the boot (the kernel's
    /// first, or floor.0's); for the Linux guest, its fetch.
    pub raw: f64,
    /// The floor row this boot's own time is taken against.
    pub floor: Option<Row>,
    /// Own time: `raw` minus the median of the floor's samples over all
    /// rounds (set by `Results::finish`); floors and Linux: `raw`.
    pub own: f64,
    /// Frames through the tap during the boot.
    pub frames: Option<u64>,
}

#[derive(Default)]
pub struct Results {
    pub samples: BTreeMap<(Row, u32), Vec<Sample>>,
    /// chainloader.0's own throughput lines, per row and size (last round).
    pub reports: BTreeMap<(Row, u32), Vec<String>>,
    /// Files GRUB 2 fetched (from dnsmasq's log), with their sizes.
    pub grub_files: Vec<(String, u64)>,
}

impl Sample {
    fn new(raw: f64, floor: Option<Row>, frames: Option<u64>) -> Sample {
        Sample { raw, floor, own: raw, frames }
    }
}

impl Results {
    fn add(&mut self, row: Row, size: u32, s: Sample) {
        self.samples.entry((row, size)).or_default().push(s);
    }

    /// Own times against each floor's median over all rounds: one floor
    /// boot per round is a noisy zero, several are a steadier one.
    fn finish(&mut self) {
        let floors: BTreeMap<Row, f64> = self
            .samples
            .iter()
            .filter(|((row, _), _)| row.loader == FLOOR)
            .map(|((row, _), v)| (*row, report::median(&v.iter().map(|s| s.raw).collect::<Vec<_>>())))
            .collect();
        for v in self.samples.values_mut() {
            for s in v {
                if let Some(f) = s.floor.and_then(|f| floors.get(&f)) {
                    s.own = s.raw - f;
                }
            }
        }
    }
}

/// Deterministic module contents (xorshift), so that every loader fetches
/// the same bytes and no compression anywhere could flatter one.
fn module_bytes(mib: u32, seed: u64) -> Vec<u8> {
    let mut x = bootproto::xorshift::Xorshift64(seed | 1);
    let mut v = Vec::with_capacity((mib as usize) << 20);
    while v.len() < (mib as usize) << 20 {
        v.extend_from_slice(&x.next_u64().to_le_bytes());
    }
    v
}

/// The TFTP root every server serves: chainloader.0, floor.0, the kernel,
/// the modules, and GRUB 2's network directory (grub-mknetdir). A second
/// root holds floor.0 under chainloader.0's name, for the relay's floor.
struct Roots {
    main: PathBuf,
    floor: PathBuf,
}

fn make_roots(work: &Path, sizes: &[u32]) -> Roots {
    let main = work.join("root");
    std::fs::create_dir_all(&main).unwrap();
    for f in ["chainloader.0", "kernel.elf", "floor.0"] {
        std::fs::copy(e2e::dist(f), main.join(f)).unwrap();
    }
    let grub = e2e::grub::GrubNetboot::with_script(&[], "");
    e2e::copy_tree(grub.root(), &main);
    for &s in sizes.iter().filter(|&&s| s > 0) {
        std::fs::write(main.join(format!("mod-{s}.bin")), module_bytes(s, 0x9e37_79b9_7f4a_7c15 ^ s as u64)).unwrap();
    }
    let floor = work.join("floor-root");
    std::fs::create_dir_all(&floor).unwrap();
    std::fs::copy(e2e::dist("floor.0"), floor.join("chainloader.0")).unwrap();
    // The relay and dnsmasq run as root but QEMU's TFTP and python run as
    // whoever we are; all must read everything.
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(work).status();
    Roots { main, floor }
}

fn grub_cfg(root: &Path, size: u32) {
    let mut cfg = String::from("set timeout=0\nmultiboot2 /kernel.elf exit\n");
    if size > 0 {
        cfg += &format!("module2 /mod-{size}.bin big\n");
    }
    cfg += "boot\n";
    e2e::write_file(root, "boot/grub/grub.cfg", cfg);
}

/// chainloader.0's config: paths relative to its server (TFTP, or the
/// relay's option 210 for HTTP), or absolute `http://` URLs.
fn chainloader_cfg(root: &Path, size: u32, http_base: Option<&str>) {
    let base = http_base.unwrap_or("");
    let mut cfg = format!("kernel {base}kernel.elf exit\n");
    if size > 0 {
        cfg += &format!("module {base}mod-{size}.bin big\n");
    }
    e2e::write_file(root, "chainloader.cfg/default", cfg);
}

/// One boot: seconds from QEMU's start to `line` on its console, and the
/// console once the machine is done. A loader's boot must also pass the
/// kernel's self-check, or the bench stops: a fast wrong boot is no result.
fn boot(cfg: &QemuConfig, line: &str, self_check: bool) -> (f64, String) {
    let t0 = Instant::now();
    let mut q = Qemu::start(cfg);
    q.expect(&regex::escape(line), BOOT_TIMEOUT);
    let secs = t0.elapsed().as_secs_f64();
    if self_check {
        q.expect_self_check_ok(BOOT_TIMEOUT);
    }
    let _ = q.wait_exit(Duration::from_secs(30));
    (secs, q.output())
}

fn throughput_lines(console: &str) -> Vec<String> {
    console.lines().filter(|l| l.contains(" MiB/s") || l.starts_with("UNDI: ")).map(|l| l.trim().to_string()).collect()
}

fn user_cfg(root: &Path, bootfile: &str) -> QemuConfig {
    let mut c = QemuConfig::user_net(root, bootfile);
    c.memory_mib = MEMORY_MIB;
    c
}

fn tap_cfg(ns: &NetNs) -> QemuConfig {
    let mut c = QemuConfig::tap(&ns.name, "tap0");
    c.memory_mib = MEMORY_MIB;
    c
}

fn linux_cfg(base: QemuConfig, guest: &linux::Guest, ip: &str, url: &str) -> QemuConfig {
    base.arg("-kernel")
        .arg(guest.kernel.to_str().unwrap())
        .arg("-initrd")
        .arg(guest.initrd.to_str().unwrap())
        .arg("-append")
        .arg(&format!("console=ttyS0 quiet panic=-1 bench.ip={ip} bench.url={url}"))
}

fn linux_fetch(cfg: &QemuConfig) -> f64 {
    let t0 = Instant::now();
    let q = Qemu::start(cfg);
    // The whole line: the console arrives in pieces.
    q.expect(r"linux-wget: (ok \d+ [\d.]+ [\d.]+\s|failed)", BOOT_TIMEOUT);
    let out = q.output();
    match linux::parse_result(&out) {
        Ok((bytes, secs)) => {
            eprintln!(
                "    Linux guest: {bytes} bytes in {secs:.2} s (boot and fetch {:.1} s)",
                t0.elapsed().as_secs_f64()
            );
            secs
        }
        Err(e) => panic!("bench: {e}; console:\n{out}"),
    }
}

struct Bench<'a> {
    roots: &'a Roots,
    work: &'a Path,
    sizes: &'a [u32],
    linux: Option<&'a linux::Guest>,
    linux_size: u32,
    grub_max_mib: u32,
    results: Results,
}

impl Bench<'_> {
    fn note(&self, row: Row, size: u32, s: &Sample) {
        let frames = s.frames.map(|f| format!(", {f} frames")).unwrap_or_default();
        let what = if s.floor.is_some() { "to kernel entry" } else { "" };
        eprintln!(
            "    {:<18} {:<34} {:<44} {:>4} MiB  {:6.3} s {what}{frames}",
            row.link.label(),
            row.server,
            row.loader,
            size,
            s.raw
        );
    }

    fn record(&mut self, row: Row, size: u32, s: Sample) {
        self.note(row, size, &s);
        self.results.add(row, size, s);
    }

    fn user_round(&mut self) {
        let root = &self.roots.main.clone();
        let (floor, _) = boot(&user_cfg(root, "floor.0"), FLOOR_LINE, false);
        let floor_row = Row { link: Link::User, server: QEMU_TFTP, loader: FLOOR };
        self.record(floor_row, 0, Sample::new(floor, None, None));
        let (_http, port) = servers::python_http(root, self.work);
        let http_base = format!("http://10.0.2.2:{port}/");
        for &size in self.sizes {
            if size <= self.grub_max_mib {
                grub_cfg(root, size);
                let (t, _) = boot(&user_cfg(root, e2e::grub::GrubNetboot::BOOTFILE), KERNEL_LINE, true);
                let row = Row { link: Link::User, server: QEMU_TFTP, loader: GRUB };
                self.record(row, size, Sample::new(t, Some(floor_row), None));
            }

            for (server, loader, base) in [(QEMU_TFTP, CL_TFTP, None), (PYTHON_HTTP, CL_HTTP, Some(http_base.as_str()))]
            {
                chainloader_cfg(root, size, base);
                let (t, out) = boot(&user_cfg(root, "chainloader.0"), KERNEL_LINE, true);
                let row = Row { link: Link::User, server, loader };
                self.results.reports.insert((row, size), throughput_lines(&out));
                self.record(row, size, Sample::new(t, Some(floor_row), None));
            }
        }
        if let Some(guest) = self.linux {
            let url = format!("{http_base}mod-{}.bin", self.linux_size);
            let secs = linux_fetch(&linux_cfg(user_cfg(root, "floor.0"), guest, "10.0.2.15", &url));
            let row = Row { link: Link::User, server: "python3 http.server", loader: LINUX };
            self.record(row, self.linux_size, Sample::new(secs, None, None));
        }
    }

    /// One boot on the tap with `server` running; (seconds, console, frames).
    fn tap_boot(&self, ns: &NetNs, line: &str, self_check: bool) -> (f64, String, u64) {
        let before = servers::tap_frames(ns);
        let (t, out) = boot(&tap_cfg(ns), line, self_check);
        (t, out, servers::tap_frames(ns) - before)
    }

    fn tap_round(&mut self, ns: &NetNs) {
        let (root, work) = (self.roots.main.clone(), self.work.to_path_buf());
        let floor_of = |server| Row { link: Link::Tap, server, loader: FLOOR };
        for setup in [DnsmasqSetup::Tuned, DnsmasqSetup::Seed] {
            let _d = servers::dnsmasq(ns, setup, &root, "floor.0", &work);
            let (t, _, frames) = self.tap_boot(ns, FLOOR_LINE, false);
            self.record(floor_of(setup.label()), 0, Sample::new(t, None, Some(frames)));
        }
        {
            let _r = servers::relay(ns, &self.roots.floor, None, &work);
            let (t, _, frames) = self.tap_boot(ns, FLOOR_LINE, false);
            self.record(floor_of(RELAY), 0, Sample::new(t, None, Some(frames)));
        }
        for &size in self.sizes {
            grub_cfg(&root, size);
            chainloader_cfg(&root, size, None);
            for setup in [DnsmasqSetup::Tuned, DnsmasqSetup::Seed] {
                // The seed's options cost the same constant waits at every
                // size: measured at the reference size only.
                if (setup == DnsmasqSetup::Seed && size != REFERENCE_MIB) || size > self.grub_max_mib {
                    continue;
                }
                let d = servers::dnsmasq(ns, setup, &root, e2e::grub::GrubNetboot::BOOTFILE, &work);
                let (t, _, frames) = self.tap_boot(ns, KERNEL_LINE, true);
                if size == REFERENCE_MIB && self.results.grub_files.is_empty() {
                    self.results.grub_files = servers::dnsmasq_sent_files(&d.log)
                        .into_iter()
                        .map(|p| (p.display().to_string(), std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)))
                        .collect();
                }
                let row = Row { link: Link::Tap, server: setup.label(), loader: GRUB };
                self.record(row, size, Sample::new(t, Some(floor_of(setup.label())), Some(frames)));
            }
            for (server, loader, http) in [(RELAY, CL_TFTP, None), (RELAY_HTTP, CL_HTTP, Some(HTTP_PORT))] {
                let _r = servers::relay(ns, &root, http, &work);
                let (t, out, frames) = self.tap_boot(ns, KERNEL_LINE, true);
                let row = Row { link: Link::Tap, server, loader };
                self.results.reports.insert((row, size), throughput_lines(&out));
                self.record(row, size, Sample::new(t, Some(floor_of(RELAY)), Some(frames)));
            }
        }
        if let Some(guest) = self.linux {
            let _r = servers::relay(ns, &root, Some(HTTP_PORT), &work);
            let url = format!("http://{}:{HTTP_PORT}/mod-{}.bin", NetNs::HOST_ADDR, self.linux_size);
            let secs = linux_fetch(&linux_cfg(tap_cfg(ns), guest, "10.77.0.50", &url));
            let row = Row { link: Link::Tap, server: RELAY_HTTP, loader: LINUX };
            self.record(row, self.linux_size, Sample::new(secs, None, None));
        }
    }
}

fn main() {
    let mut opts = Opts::parse();
    if opts.quick {
        opts.runs = 1;
        opts.sizes = vec![0, REFERENCE_MIB];
    }
    opts.sizes.sort_unstable();
    opts.sizes.dedup();
    let started = Instant::now();
    let is_root = is_root();
    let work = tempfile::Builder::new().prefix("netboot-bench-").tempdir().unwrap();
    let roots = make_roots(work.path(), &opts.sizes);
    let linux_size =
        if opts.sizes.contains(&REFERENCE_MIB) { REFERENCE_MIB } else { *opts.sizes.iter().max().unwrap() };
    let guest = (!opts.no_linux && linux_size > 0).then(|| linux::build(work.path()));
    let mut bench = Bench {
        roots: &roots,
        work: work.path(),
        sizes: &opts.sizes,
        linux: guest.as_ref(),
        linux_size,
        grub_max_mib: opts.grub_max_mib,
        results: Results::default(),
    };
    let ns = if is_root {
        let ns = NetNs::new();
        // dnsmasq sends router advertisements (the tuned setup) only for a
        // prefix the interface has.
        ns.exec(&["ip", "addr", "add", "fd77::1/64", "dev", "br0"]);
        // Release builds abort on panic, so no Drop runs when a boot fails:
        // the hook deletes the namespace (and so its servers' sockets) and
        // kills what runs in it before the process ends.
        let name = ns.name.clone();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("ip netns pids {name} | xargs -r kill; ip netns delete {name}"))
                .status();
        }));
        Some(ns)
    } else {
        eprintln!("bench: not root, so the tap-link comparison is skipped (it needs a network namespace)");
        None
    };
    for round in 1..=opts.runs {
        eprintln!("bench: round {round} of {}", opts.runs);
        bench.user_round();
        if let Some(ns) = &ns {
            bench.tap_round(ns);
        }
    }
    bench.results.finish();
    let sizes = report::Sizes::measure(&bench.results.grub_files);
    let text = report::render(&bench.results, &opts.sizes, opts.runs, &sizes, started.elapsed());
    std::fs::create_dir_all(&opts.out).unwrap();
    std::fs::write(opts.out.join("report.md"), &text).unwrap();
    println!("{text}");
    match report::plot(&bench.results, &opts.out) {
        Ok(png) => println!("plot: {}", png.display()),
        Err(e) => println!("plot: not drawn: {e}"),
    }
    println!("report: {}", opts.out.join("report.md").display());
}

/// Whether we run as root (the tap link needs it), from /proc, without libc.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
