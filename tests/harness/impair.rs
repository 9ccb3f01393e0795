//! A link impairment forwarder: this machine's kernel has no netem, so the
//! fault tests put their own link between QEMU and the test namespace's
//! bridge. QEMU's NIC is on `-netdev dgram` (each frame one UDP datagram on
//! the namespace's loopback); the forwarder passes frames between that
//! socket and the namespace's tap device, dropping, delaying, duplicating
//! and reordering them by a seeded schedule, so that a failure replays with
//! the same seed.
//!
//! ```ignore
//! let f = Forwarder::start(&ns, "tap0", Impairment { loss: 0.05, delay_ms: 20, seed: 1, ..Impairment::NONE });
//! let q = Qemu::start(&QemuConfig::forwarded(&ns.name, &f));
//! ```

use std::collections::BinaryHeap;
use std::ffi::CString;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// What the link does to each frame, in each direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Added one-way delay.
    pub delay_ms: u64,
    /// Extra delay, uniform in 0..=jitter_ms (frames overtake each other
    /// when it exceeds their spacing).
    pub jitter_ms: u64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is held back behind the next one.
    pub reorder: f64,
    pub seed: u64,
}

impl Impairment {
    pub const NONE: Impairment =
        Impairment { loss: 0.0, delay_ms: 0, jitter_ms: 0, duplicate: 0.0, reorder: 0.0, seed: 1 };
}

/// Counters of what the forwarder did (both directions).
#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
}

impl Stats {
    pub fn summary(&self) -> String {
        format!(
            "{} frames forwarded, {} dropped, {} duplicated, {} reordered",
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
            self.reordered.load(Ordering::Relaxed)
        )
    }
}

/// The running forwarder; dropped, it stops.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<Stats>,
    /// The impairment in force; a test may change it mid-boot.
    pub impairment: Arc<Mutex<Impairment>>,
    /// QEMU's `-netdev` value that connects its NIC to the forwarder.
    pub netdev: String,
}

/// splitmix64: small, seeded, and the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn upto(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % (n + 1)
        }
    }
}

#[derive(PartialEq, Eq)]
struct Scheduled {
    at: Instant,
    seq: u64,
    to_tap: bool,
    frame: Vec<u8>,
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: earliest first.
        o.at.cmp(&self.at).then(o.seq.cmp(&self.seq))
    }
}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Moves the calling thread into network namespace `name` (sockets it
/// opens afterwards live there).
pub fn enter_netns(name: &str) {
    let path = CString::new(format!("/var/run/netns/{name}")).unwrap();
    // SAFETY: a valid NUL-terminated path; the fd is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "cannot open network namespace {name}: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by open and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setns on an open namespace fd; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns into {name}: {}", std::io::Error::last_os_error());
}

/// Attaches to the existing (persistent) tap device `name`.
fn open_tap(name: &str) -> OwnedFd {
    // SAFETY: a valid NUL-terminated path; the fd is owned below.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert!(fd >= 0, "/dev/net/tun: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by open and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq { name: [0; 16], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq-sized struct we own.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    assert_eq!(rc, 0, "TUNSETIFF {name}: {}", std::io::Error::last_os_error());
    fd
}

impl Forwarder {
    /// Starts forwarding between tap `tap` in `ns` (on the namespace's
    /// bridge) and a UDP socket on the namespace's loopback for QEMU.
    pub fn start(ns: &NetNs, tap: &str, imp: Impairment) -> Forwarder {
        let (ns_name, tap) = (ns.name.clone(), tap.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let impairment = Arc::new(Mutex::new(imp));
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, s2, i2) = (stop.clone(), stats.clone(), impairment.clone());
        let thread = std::thread::spawn(move || {
            enter_netns(&ns_name);
            let tapfd = open_tap(&tap);
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.set_nonblocking(true).unwrap();
            let qemu_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let qemu: SocketAddr = format!("127.0.0.1:{qemu_port}").parse().unwrap();
            tx.send((udp.local_addr().unwrap().port(), qemu_port)).unwrap();
            run(&st, &s2, &i2, tapfd, udp, qemu);
        });
        let (fwd_port, qemu_port) = rx.recv().expect("forwarder did not start");
        let netdev = format!(
            "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={qemu_port},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={fwd_port}"
        );
        Forwarder { stop, thread: Some(thread), stats, impairment, netdev }
    }

    pub fn set(&self, imp: Impairment) {
        *self.impairment.lock().unwrap() = imp;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(stop: &AtomicBool, stats: &Stats, imp: &Mutex<Impairment>, tap: OwnedFd, udp: UdpSocket, qemu: SocketAddr) {
    let mut rng = Rng(imp.lock().unwrap().seed);
    let mut seed_in_use = imp.lock().unwrap().seed;
    let mut queue: BinaryHeap<Scheduled> = BinaryHeap::new();
    // A frame held back to be sent after the next one, per direction.
    let mut held: [Option<Vec<u8>>; 2] = [None, None];
    let mut seq = 0u64;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        while queue.peek().is_some_and(|s| s.at <= now) {
            let s = queue.pop().unwrap();
            if s.to_tap {
                // SAFETY: writes our buffer to the tap fd we own.
                unsafe { libc::write(tap.as_raw_fd(), s.frame.as_ptr().cast(), s.frame.len()) };
            } else {
                let _ = udp.send_to(&s.frame, qemu);
            }
            stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        let timeout = queue.peek().map_or(20, |s| s.at.saturating_duration_since(now).as_millis().clamp(0, 20) as i32);
        let mut fds = [
            libc::pollfd { fd: tap.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: udp.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll on two pollfds we own.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        let cur = *imp.lock().unwrap();
        if cur.seed != seed_in_use {
            rng = Rng(cur.seed);
            seed_in_use = cur.seed;
        }
        for (dir, to_tap) in [(0usize, false), (1usize, true)] {
            loop {
                let n = if to_tap {
                    match udp.recv_from(&mut buf) {
                        Ok((n, _)) => n as isize,
                        Err(_) => -1,
                    }
                } else {
                    // SAFETY: reads into our buffer from the tap fd we own (non-blocking).
                    unsafe { libc::read(tap.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
                };
                if n <= 0 {
                    break;
                }
                let frame = buf[..n as usize].to_vec();
                if rng.chance(cur.loss) {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let copies = if rng.chance(cur.duplicate) {
                    stats.duplicated.fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                let mut out = vec![frame; copies];
                if let Some(h) = held[dir].take() {
                    // The held frame goes after this one: reordered.
                    out.push(h);
                } else if rng.chance(cur.reorder) {
                    stats.reordered.fetch_add(1, Ordering::Relaxed);
                    held[dir] = out.pop();
                }
                for f in out {
                    let at = Instant::now() + Duration::from_millis(cur.delay_ms + rng.upto(cur.jitter_ms));
                    seq += 1;
                    queue.push(Scheduled { at, seq, to_tap, frame: f });
                }
            }
        }
    }
}
