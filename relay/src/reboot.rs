//! Remote reboot over the serial line and the one-command boot test.
//!
//! The target has no BMC: the only way to reset it from afar is the
//! kernel's own serial command `~~~k` (docs/serial-reboot.md), which the
//! reference kernel and Nautilus's serial IRQ handler obey. `reboot` sends
//! it and waits for the kernel's acknowledgement line; `boot_test` then
//! watches the next boot's console for a pass or a failure pattern.
//!
//! Both talk to the target through a [`Link`]: the serial device itself,
//! or a running `relay console` hub's unix socket (so the hub keeps
//! logging while the test runs). The matching logic ([`AckWatcher`],
//! [`LineMatcher`]) is plain code, unit-tested on the host.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serialport::SerialPort;
use regex::Regex;

/// The reboot command: three tildes and `k` (Nautilus's `~~~K` syntax).
pub const REBOOT_COMMAND: &[u8] = b"~~~k";
/// The panic command (the kernel prints a message and stops).
pub const PANIC_COMMAND: &[u8] = b"~~~p";
/// The shutdown command (ACPI power-off).
pub const SHUTDOWN_COMMAND: &[u8] = b"~~~s";
/// What the reference kernel prints when it accepts `~~~k`
/// (kernel/src/main.rs; the full line ends with ", rebooting").
pub const REBOOT_ACK: &str = "serial: reboot command received";
/// A receiver may hold a partial tilde count; sending the command up to
/// four times always reaches it with a clean count (docs/serial-reboot.md).
pub const REBOOT_ATTEMPTS: u32 = 4;

/// Failure patterns `boot-test` watches for unless told otherwise: kernel
/// panics (reference kernel and Nautilus), the chainloader's error lines
/// and its reboot countdown (chainloader/src/main.rs), the self-check's
/// verdict.
pub const DEFAULT_FAIL_PATTERNS: &[&str] = &[
    r"kernel panic",
    r"\bPANIC\b",
    r"^chainloader: ",
    r"TFTP error \d+",
    r"rebooting in \d+ s",
    r"MBI-CHECK: FAIL",
];

/// A byte pipe to the target's console.
pub trait Link {
    /// Send bytes to the target.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Read what the target printed, waiting at most `timeout`; `Ok(0)`
    /// means nothing arrived in time.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

/// The serial device, opened 8N1 without flow control.
pub struct SerialLink(serialport::TTYPort);

impl SerialLink {
    pub fn open(path: &str, baud: u32) -> Result<SerialLink> {
        open_serial(path, baud).map(SerialLink)
    }
}

/// Open `path` raw, 8N1, no flow control. The crate opens it exclusively
/// (TIOCEXCL plus an exclusive `flock`, which also stops root): a hub and a
/// direct `relay reboot --serial` must never both read the port, since each
/// would see only part of the output.
pub fn open_serial(path: &str, baud: u32) -> Result<serialport::TTYPort> {
    let builder = serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100));
    serialport::TTYPort::open(&builder)
        .map_err(|e| {
            let d = e.description.to_lowercase();
            if d.contains("busy") || d.contains("exclusive") {
                anyhow!("{path} is in use (is `relay console` running? then use --socket): {e}")
            } else {
                anyhow!("cannot open serial port {path} at {baud} baud: {e}")
            }
        })
}

/// Read from the port. The crate reports a hangup (POLLHUP: a USB adapter
/// unplugged, QEMU gone after the target's reset) as BrokenPipe without
/// reading what is still buffered, which would lose the last lines the
/// target printed (the reboot acknowledgement, just before the reset).
/// Those bytes are read here first; the error comes once they are gone.
pub fn read_port(port: &mut serialport::TTYPort, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    match port.read(buf) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            let mut pfd = libc::pollfd { fd: port.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one valid pollfd, no wait.
            let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
            if ready == 1 && pfd.revents & libc::POLLIN != 0 {
                // SAFETY: read into a buffer we own, of its length; the fd is open.
                let n = unsafe { libc::read(port.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    return Ok(n as usize);
                }
            }
            Err(e)
        }
        r => r,
    }
}

impl Link for SerialLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)?;
        self.0.flush()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.set_timeout(timeout.max(Duration::from_millis(1))).map_err(io::Error::other)?;
        match read_port(&mut self.0, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A client of a running `relay console` hub.
pub struct HubLink(UnixStream);

impl HubLink {
    /// Connect without replay: only output printed from now on is seen.
    pub fn connect(socket: &Path) -> Result<HubLink> {
        crate::console::connect(socket, 0).map(HubLink)
    }
}

impl Link for HubLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.0.read(buf) {
            Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the relay console hub closed the connection")),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Open the link chosen on the command line: `--socket` (a hub) or
/// `--serial` (the device itself). Neither given: the default hub socket.
pub fn open_link(socket: Option<&Path>, serial: Option<&str>, baud: u32) -> Result<Box<dyn Link>> {
    match (socket, serial) {
        (Some(_), Some(_)) => bail!("give either --socket or --serial, not both"),
        (_, Some(dev)) => Ok(Box::new(SerialLink::open(dev, baud)?)),
        (s, None) => {
            let s = s.unwrap_or_else(|| Path::new(crate::console::DEFAULT_SOCKET));
            Ok(Box::new(HubLink::connect(s)?))
        }
    }
}

/// Finds the acknowledgement text in a byte stream that arrives in
/// arbitrary pieces.
pub struct AckWatcher {
    ack: Vec<u8>,
    window: Vec<u8>,
}

impl AckWatcher {
    pub fn new(ack: &str) -> Self {
        AckWatcher { ack: ack.as_bytes().to_vec(), window: vec![] }
    }

    /// Feed received bytes. Once the acknowledgement is complete, returns
    /// the bytes of this chunk that follow it (the rest of the console).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let old = self.window.len();
        self.window.extend_from_slice(bytes);
        if let Some(i) = find(&self.window, &self.ack) {
            let after = i + self.ack.len();
            let rest = self.window[after.max(old)..].to_vec();
            self.window.clear();
            return Some(rest);
        }
        // Keep only what could still be the start of the acknowledgement.
        let keep = self.ack.len().saturating_sub(1);
        if self.window.len() > keep {
            self.window.drain(..self.window.len() - keep);
        }
        None
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the boot's console said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The `--expect` pattern matched this line.
    Pass(String),
    /// A failure pattern matched this line.
    Fail(String),
}

/// Matches console lines against the expected pattern and the failure
/// patterns. A line is checked as it grows, not only when its newline
/// arrives: the chainloader's countdown (`rebooting in 5 s... 4 3`) stays
/// on one unfinished line until the reset.
pub struct LineMatcher {
    expect: Regex,
    fail: Vec<Regex>,
    line: Vec<u8>,
    /// The last verdict came from a line whose newline has not arrived.
    partial: bool,
}

impl LineMatcher {
    pub fn new(expect: &str, fail: &[String]) -> Result<Self> {
        let expect = Regex::new(expect).with_context(|| format!("bad --expect pattern {expect:?}"))?;
        let fail =
            fail.iter().map(|f| Regex::new(f).with_context(|| format!("bad --fail pattern {f:?}"))).collect::<Result<_>>()?;
        Ok(LineMatcher { expect, fail, line: vec![], partial: false })
    }

    /// Feed console bytes; the first verdict reached, if any. Failure
    /// patterns are checked first, so a line matching both is a failure.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Verdict> {
        for &b in bytes {
            if b == b'\n' {
                let v = self.check();
                self.line.clear();
                if v.is_some() {
                    self.partial = false;
                    return v;
                }
            } else if b != b'\r' {
                self.line.push(b);
            }
        }
        let v = self.check();
        self.partial = v.is_some();
        v
    }

    /// Whether the last verdict came from an unfinished line.
    pub fn verdict_line_unfinished(&self) -> bool {
        self.partial
    }

    /// After a verdict on an unfinished line: add more bytes to it; the
    /// whole line once its newline arrives (for the report).
    pub fn finish_line(&mut self, bytes: &[u8]) -> Option<String> {
        for &b in bytes {
            if b == b'\n' {
                self.partial = false;
                let l = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                return Some(l);
            } else if b != b'\r' {
                self.line.push(b);
            }
        }
        None
    }

    /// The unfinished line as it is now.
    pub fn current_line(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }

    fn check(&self) -> Option<Verdict> {
        if self.line.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.line);
        if self.fail.iter().any(|re| re.is_match(&text)) {
            return Some(Verdict::Fail(text.into_owned()));
        }
        if self.expect.is_match(&text) {
            return Some(Verdict::Pass(text.into_owned()));
        }
        None
    }
}

/// Why a reboot did not happen.
#[derive(Debug)]
pub enum RebootError {
    /// Nothing acknowledged the command.
    NoAck { attempts: u32, timeout: Duration, heard_bytes: usize },
    /// The link itself failed.
    Io(io::Error),
}

impl std::fmt::Display for RebootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebootError::NoAck { attempts, timeout, heard_bytes } => {
                write!(
                    f,
                    "the target did not acknowledge the reboot command ({attempts} x `~~~k` in {:.1} s, \
                     no `{REBOOT_ACK}` line; {heard_bytes} byte(s) came back{}).\n\
                     The target is hung with interrupts off, or its kernel has no serial reboot handler \
                     (docs/serial-reboot.md).\n\
                     This machine has no BMC: it must be power-cycled by hand (press reset or pull the plug).",
                    timeout.as_secs_f64(),
                    if *heard_bytes == 0 { ", not even an echo" } else { "" }
                )
            }
            RebootError::Io(e) => write!(f, "serial link failed while rebooting: {e}"),
        }
    }
}

impl std::error::Error for RebootError {}

/// Send `~~~k` (up to [`REBOOT_ATTEMPTS`] times, evenly spread over
/// `timeout`) until the kernel's acknowledgement arrives. Everything
/// received is passed to `echo`. Returns the console bytes that followed
/// the acknowledgement in the same read.
pub fn reboot(link: &mut dyn Link, ack: &str, timeout: Duration, echo: &mut dyn FnMut(&[u8])) -> Result<Vec<u8>, RebootError> {
    let mut watcher = AckWatcher::new(ack);
    let per_attempt = timeout / REBOOT_ATTEMPTS;
    let mut heard = 0usize;
    let mut buf = [0u8; 4096];
    for _ in 0..REBOOT_ATTEMPTS {
        link.send(REBOOT_COMMAND).map_err(RebootError::Io)?;
        let deadline = Instant::now() + per_attempt;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let n = link.recv(&mut buf, deadline - now).map_err(RebootError::Io)?;
            if n == 0 {
                continue;
            }
            heard += n;
            echo(&buf[..n]);
            if let Some(rest) = watcher.feed(&buf[..n]) {
                return Ok(rest);
            }
        }
        // A non-tilde byte clears a partial count on the reference kernel
        // before the next attempt (Nautilus: the fourth tilde cancels).
    }
    Err(RebootError::NoAck { attempts: REBOOT_ATTEMPTS, timeout, heard_bytes: heard })
}

/// How a boot test ended.
#[derive(Debug)]
pub enum BootOutcome {
    Pass { line: String, elapsed: Duration },
    Fail { line: String, elapsed: Duration },
    Timeout { elapsed: Duration },
}

/// Reboot the target, then watch its console (passed to `echo` live) for
/// `matcher`'s verdict. The clock starts when the reboot command is sent.
pub fn boot_test(
    link: &mut dyn Link,
    ack: &str,
    reboot_timeout: Duration,
    matcher: &mut LineMatcher,
    timeout: Duration,
    echo: &mut dyn FnMut(&[u8]),
) -> Result<BootOutcome, RebootError> {
    let start = Instant::now();
    let rest = reboot(link, ack, reboot_timeout, echo)?;
    let deadline = start + timeout;
    let mut verdict = matcher.feed(&rest);
    let mut buf = [0u8; 4096];
    while verdict.is_none() {
        let now = Instant::now();
        if now >= deadline {
            return Ok(BootOutcome::Timeout { elapsed: start.elapsed() });
        }
        let n = link.recv(&mut buf, deadline - now).map_err(RebootError::Io)?;
        echo(&buf[..n]);
        verdict = matcher.feed(&buf[..n]);
    }
    let elapsed = start.elapsed();
    let mut verdict = verdict.unwrap();
    if matcher.verdict_line_unfinished() {
        // Matched while the line was still arriving: wait briefly for the
        // rest, so the report shows the whole line (the countdown never
        // ends its line; then the line as it stands is reported).
        let grace = (Instant::now() + LINE_GRACE).min(deadline.max(Instant::now()));
        let mut full = None;
        while full.is_none() && Instant::now() < grace {
            let n = link.recv(&mut buf, grace - Instant::now()).map_err(RebootError::Io)?;
            echo(&buf[..n]);
            full = matcher.finish_line(&buf[..n]);
        }
        let line = full.unwrap_or_else(|| matcher.current_line());
        verdict = match verdict {
            Verdict::Pass(_) => Verdict::Pass(line),
            Verdict::Fail(_) => Verdict::Fail(line),
        };
    }
    Ok(match verdict {
        Verdict::Pass(line) => BootOutcome::Pass { line, elapsed },
        Verdict::Fail(line) => BootOutcome::Fail { line, elapsed },
    })
}

/// How long a verdict on an unfinished line waits for the rest of it.
const LINE_GRACE: Duration = Duration::from_secs(1);

/// Exit status of `relay reboot` / `relay boot-test` when the target did
/// not acknowledge the reboot command (a hang: needs a power cycle).
pub const EXIT_NO_ACK: i32 = 3;

fn stdout_echo() -> impl FnMut(&[u8]) {
    |b: &[u8]| {
        let mut o = io::stdout().lock();
        let _ = o.write_all(b);
        let _ = o.flush();
    }
}

/// `relay reboot`: returns the process exit status.
pub fn run_reboot(socket: Option<&Path>, serial: Option<&str>, baud: u32, timeout: Duration, ack: &str) -> Result<i32> {
    let mut link = open_link(socket, serial, baud)?;
    let mut echo = stdout_echo();
    match reboot(link.as_mut(), ack, timeout, &mut echo) {
        Ok(_) => {
            println!();
            eprintln!("relay reboot: the target acknowledged the reboot command");
            Ok(0)
        }
        Err(e @ RebootError::NoAck { .. }) => {
            eprintln!("\nrelay reboot: {e}");
            Ok(EXIT_NO_ACK)
        }
        Err(e) => Err(e.into()),
    }
}

/// `relay boot-test` options.
pub struct BootTestOptions<'a> {
    pub socket: Option<&'a Path>,
    pub serial: Option<&'a str>,
    pub baud: u32,
    pub expect: String,
    /// Failure patterns; empty means [`DEFAULT_FAIL_PATTERNS`].
    pub fail: Vec<String>,
    pub timeout: Duration,
    pub reboot_timeout: Duration,
    pub ack: String,
}

/// `relay boot-test`: 0 pass, 1 failure pattern, 2 timeout,
/// [`EXIT_NO_ACK`] when the reboot was not acknowledged.
pub fn run_boot_test(o: BootTestOptions) -> Result<i32> {
    let fail: Vec<String> =
        if o.fail.is_empty() { DEFAULT_FAIL_PATTERNS.iter().map(|s| s.to_string()).collect() } else { o.fail };
    let mut matcher = LineMatcher::new(&o.expect, &fail)?;
    let mut link = open_link(o.socket, o.serial, o.baud)?;
    let mut echo = stdout_echo();
    let outcome = boot_test(link.as_mut(), &o.ack, o.reboot_timeout, &mut matcher, o.timeout, &mut echo);
    println!();
    match outcome {
        Ok(BootOutcome::Pass { line, elapsed }) => {
            eprintln!("relay boot-test: PASS in {:.1} s from reboot command to: {line}", elapsed.as_secs_f64());
            Ok(0)
        }
        Ok(BootOutcome::Fail { line, elapsed }) => {
            eprintln!("relay boot-test: FAIL after {:.1} s: {line}", elapsed.as_secs_f64());
            Ok(1)
        }
        Ok(BootOutcome::Timeout { elapsed }) => {
            eprintln!(
                "relay boot-test: TIMEOUT: /{}/ not seen within {:.1} s of the reboot command (no failure pattern either)",
                o.expect,
                elapsed.as_secs_f64()
            );
            Ok(2)
        }
        Err(e @ RebootError::NoAck { .. }) => {
            eprintln!("relay boot-test: {e}");
            Ok(EXIT_NO_ACK)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn ack_found_across_chunk_boundaries() {
        let mut w = AckWatcher::new(REBOOT_ACK);
        assert_eq!(w.feed(b"~~~k\r\nserial: reboot com"), None);
        assert_eq!(w.feed(b"mand rece"), None);
        assert_eq!(w.feed(b"ived, rebooting\nkernel: reset").as_deref(), Some(&b", rebooting\nkernel: reset"[..]));
    }

    #[test]
    fn ack_not_found_in_lookalikes() {
        let mut w = AckWatcher::new(REBOOT_ACK);
        assert_eq!(w.feed(b"serial: panic command received\nserial: reboot command recei"), None);
        assert_eq!(w.feed(b"\n"), None);
    }

    #[test]
    fn ack_in_one_chunk_after_noise() {
        let mut w = AckWatcher::new("ACK");
        assert_eq!(w.feed(b"xxACKyy").as_deref(), Some(&b"yy"[..]));
    }

    fn fails() -> Vec<String> {
        DEFAULT_FAIL_PATTERNS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matcher_passes_on_expected_line() {
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        assert_eq!(m.feed(b"chainloader 0.1.0\r\nMBI cmdline=\"\"\r\nMBI-CH"), None);
        assert_eq!(m.feed(b"ECK: ok\r\n"), Some(Verdict::Pass("MBI-CHECK: ok".into())));
    }

    #[test]
    fn matcher_fails_on_unfinished_countdown_line() {
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        assert_eq!(m.feed(b"config chainloader.cfg/default: kernel x\r\n"), None);
        let v = m.feed(b"chainloader: TFTP error 1 from 10.0.2.2: File not found: /x\r\nrebooting in 5 s...");
        assert_eq!(v, Some(Verdict::Fail("chainloader: TFTP error 1 from 10.0.2.2: File not found: /x".into())));
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        assert_eq!(m.feed(b"rebooting in 5 s..."), Some(Verdict::Fail("rebooting in 5 s...".into())));
    }

    #[test]
    fn matcher_failure_wins_and_ack_tail_is_harmless() {
        let mut m = LineMatcher::new("ok", &fails()).unwrap();
        // The rest of the acknowledgement line must not count as a failure.
        assert_eq!(m.feed(b", rebooting\nkernel: reset: via port 0xCF9\n"), None);
        assert_eq!(m.feed(b"kernel panic: ok\n"), Some(Verdict::Fail("kernel panic: ok".into())));
        let mut m = LineMatcher::new("ok", &fails()).unwrap();
        assert!(matches!(m.feed(b"MBI-CHECK: FAIL bad magic\n"), Some(Verdict::Fail(_))));
    }

    #[test]
    fn matcher_rejects_bad_regex() {
        assert!(LineMatcher::new("(", &[]).is_err());
        assert!(LineMatcher::new("ok", &["[".into()]).is_err());
    }

    /// A scripted target: answers sends according to `on_send`.
    struct FakeTarget {
        sent: Vec<Vec<u8>>,
        inbox: VecDeque<Vec<u8>>,
        on_send: Box<dyn FnMut(usize) -> Vec<Vec<u8>>>,
    }

    impl Link for FakeTarget {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent.push(bytes.to_vec());
            let replies = (self.on_send)(self.sent.len());
            self.inbox.extend(replies);
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
            match self.inbox.pop_front() {
                Some(v) => {
                    buf[..v.len()].copy_from_slice(&v);
                    Ok(v.len())
                }
                None => Ok(0),
            }
        }
    }

    #[test]
    fn reboot_retries_until_acknowledged() {
        // A receiver holding a partial count absorbs the first command.
        let mut t = FakeTarget {
            sent: vec![],
            inbox: VecDeque::new(),
            on_send: Box::new(|n| {
                if n < 2 {
                    vec![b"~~~k".to_vec()]
                } else {
                    vec![b"~~~k\nserial: reboot command received, rebooting\n".to_vec()]
                }
            }),
        };
        let mut seen = vec![];
        let rest = reboot(&mut t, REBOOT_ACK, Duration::from_millis(40), &mut |b| seen.extend_from_slice(b)).unwrap();
        assert_eq!(t.sent, vec![REBOOT_COMMAND.to_vec(), REBOOT_COMMAND.to_vec()]);
        assert_eq!(rest, b", rebooting\n");
        assert!(seen.starts_with(b"~~~k~~~k"));
    }

    #[test]
    fn reboot_reports_silence_as_hang_after_four_attempts() {
        let mut t = FakeTarget { sent: vec![], inbox: VecDeque::new(), on_send: Box::new(|_| vec![]) };
        let e = reboot(&mut t, REBOOT_ACK, Duration::from_millis(40), &mut |_| {}).unwrap_err();
        assert_eq!(t.sent.len(), REBOOT_ATTEMPTS as usize);
        let msg = e.to_string();
        assert!(msg.contains("hung with interrupts off") && msg.contains("no BMC") && msg.contains("not even an echo"), "{msg}");
    }

    #[test]
    fn boot_test_sees_second_boot() {
        let mut t = FakeTarget {
            sent: vec![],
            inbox: VecDeque::new(),
            on_send: Box::new(|_| {
                vec![
                    b"serial: reboot command received, rebooting\nkernel: reset: via port 0xCF9\n".to_vec(),
                    b"chainloader 0.1.0\nMBI-CHECK: ok\n".to_vec(),
                ]
            }),
        };
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        let out = boot_test(&mut t, REBOOT_ACK, Duration::from_millis(40), &mut m, Duration::from_secs(5), &mut |_| {}).unwrap();
        assert!(matches!(out, BootOutcome::Pass { ref line, .. } if line == "MBI-CHECK: ok"), "{out:?}");
    }

    #[test]
    fn boot_test_reports_the_whole_line_after_a_partial_match() {
        let mut t = FakeTarget {
            sent: vec![],
            inbox: VecDeque::new(),
            on_send: Box::new(|_| {
                vec![
                    b"serial: reboot command received, rebooting\n".to_vec(),
                    b"chainloader: TFTP err".to_vec(),
                    b"or 1 from 10.0.2.2: File not found: /missing.elf\r\nrebooting in 5 s...".to_vec(),
                ]
            }),
        };
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        let out = boot_test(&mut t, REBOOT_ACK, Duration::from_millis(40), &mut m, Duration::from_secs(5), &mut |_| {}).unwrap();
        assert!(
            matches!(out, BootOutcome::Fail { ref line, .. } if line == "chainloader: TFTP error 1 from 10.0.2.2: File not found: /missing.elf"),
            "{out:?}"
        );
    }

    #[test]
    fn boot_test_times_out() {
        let mut t = FakeTarget {
            sent: vec![],
            inbox: VecDeque::new(),
            on_send: Box::new(|_| vec![b"serial: reboot command received, rebooting\n".to_vec()]),
        };
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        let out =
            boot_test(&mut t, REBOOT_ACK, Duration::from_millis(40), &mut m, Duration::from_millis(50), &mut |_| {}).unwrap();
        assert!(matches!(out, BootOutcome::Timeout { .. }), "{out:?}");
    }
}
