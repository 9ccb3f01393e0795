//! Judging from what a target does: evidence that it has started a new
//! boot, and the verdict of a boot from its console lines. Plain code over
//! bytes, unit-tested on the host.

use regex::Regex;

/// Console lines that only a machine coming out of reset prints: its
/// firmware (with console redirection), its PXE ROM, chainloader.0.
pub const BOOT_BANNERS: &[&str] = &[
    r"SeaBIOS \(version",
    r"iPXE \(https?://ipxe\.org\)|iPXE initialising devices|^iPXE \d",
    r"Intel\(R\) Boot Agent",
    r"PXE-E\d\d|CLIENT MAC ADDR:",
    r"PXELINUX \d+\.\d+",
    // chainloader.0's first line. Not anchored at the line start: the
    // echo of `~~~k` from a kernel that reset without a newline precedes
    // it. Anchored at the end, so a kernel quoting its loader's name
    // (`loader="chainloader 0.1.0"`) is no banner.
    r"chainloader \d+\.\d+\.\d+\s*$",
];

/// What chainloader.0 prints when it hands over to the kernel.
pub const HANDOFF_LINE: &str = r"^booting \S";

/// Failure patterns of `relay boot` unless told otherwise: kernel panics
/// (reference kernel and Nautilus), the chainloader's error lines and its
/// reboot countdown (chainloader/src/main.rs), the self-check's verdict.
pub const DEFAULT_FAIL_PATTERNS: &[&str] = &[
    // With the colon: chainloader.0 echoes its config (`kernel /k panic`).
    r"kernel panic:",
    r"\bPANIC\b",
    r"^chainloader: ",
    r"TFTP error \d+",
    r"rebooting in \d+ s",
    r"MBI-CHECK: FAIL",
];

/// Why the relay believes the target started a new boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Its MAC sent a DHCPDISCOVER to our DHCP server.
    Dhcp { detail: String },
    /// A firmware, PXE ROM or chainloader banner on its console.
    Banner { line: String },
    /// The kernel acknowledged the reboot command.
    Ack { line: String },
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Dhcp { detail } => write!(f, "DHCPDISCOVER {detail}"),
            Evidence::Banner { line } => write!(f, "boot banner on the console: {line:?}"),
            Evidence::Ack { line } => write!(f, "the kernel acknowledged: {line:?}"),
        }
    }
}

/// Splits a byte stream into lines; offers the unfinished line too.
#[derive(Default)]
pub struct Lines {
    line: Vec<u8>,
}

impl Lines {
    /// Feed bytes; `f` gets each complete line (without CR/LF), and the
    /// unfinished one with `false` at the end.
    pub fn feed(&mut self, bytes: &[u8], mut f: impl FnMut(&str, bool) -> bool) -> bool {
        for &b in bytes {
            if b == b'\n' {
                let l = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                if f(&l, true) {
                    return true;
                }
            } else if b != b'\r' {
                self.line.push(b);
                if self.line.len() > 4096 {
                    self.line.drain(..2048);
                }
            }
        }
        if !self.line.is_empty() {
            let l = String::from_utf8_lossy(&self.line).into_owned();
            return f(&l, false);
        }
        false
    }

    pub fn current(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }
}

/// Finds boot banners and the kernel's acknowledgement in console output.
pub struct EvidenceWatcher {
    banners: Vec<Regex>,
    ack: Option<String>,
    lines: Lines,
    /// Stream position of the next byte, and of the current line's start.
    pos: u64,
    line_start: u64,
}

impl EvidenceWatcher {
    pub fn new(ack: Option<&str>) -> Self {
        EvidenceWatcher {
            banners: BOOT_BANNERS.iter().map(|b| Regex::new(b).expect("built-in pattern")).collect(),
            ack: ack.map(str::to_string),
            lines: Lines::default(),
            pos: 0,
            line_start: 0,
        }
    }

    /// Start counting positions at `pos` (the stream position of the first
    /// byte fed).
    pub fn at(mut self, pos: u64) -> Self {
        self.pos = pos;
        self.line_start = pos;
        self
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Option<Evidence> {
        self.feed_at(bytes).map(|(e, _)| e)
    }

    /// Also returns the stream position where the deciding line starts.
    pub fn feed_at(&mut self, bytes: &[u8]) -> Option<(Evidence, u64)> {
        let mut start = 0;
        // A line at a time, so that each line's start position is known;
        // a line is checked when its newline arrives, and an unfinished one
        // at the end of the chunk.
        while start < bytes.len() {
            let end = bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| start + i + 1);
            let seg = &bytes[start..end];
            let mut found = None;
            let (banners, ack) = (&self.banners, &self.ack);
            self.lines.feed(seg, |l, _| {
                if ack.as_deref().is_some_and(|a| l.contains(a)) {
                    found = Some(Evidence::Ack { line: l.trim().to_string() });
                } else if banners.iter().any(|re| re.is_match(l)) {
                    found = Some(Evidence::Banner { line: l.trim().to_string() });
                }
                found.is_some()
            });
            self.pos += seg.len() as u64;
            if let Some(e) = found {
                let at = self.line_start;
                self.lines = Lines::default();
                self.line_start = self.pos;
                return Some((e, at));
            }
            if seg.ends_with(b"\n") {
                self.line_start = self.pos;
            }
            start = end;
        }
        None
    }
}

/// Whether a console line is a boot banner (for the target's state).
pub fn is_banner(line: &str) -> bool {
    use std::sync::OnceLock;
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| BOOT_BANNERS.iter().map(|b| Regex::new(b).unwrap()).collect()).iter().any(|r| r.is_match(line))
}

/// What the boot's console said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The expect pattern matched this line.
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
    lines: Lines,
    /// The last verdict came from a line whose newline has not arrived.
    partial: bool,
}

impl LineMatcher {
    pub fn new(expect: &str, fail: &[String]) -> Result<Self, super::TargetError> {
        let expect =
            Regex::new(expect).map_err(|source| super::TargetError::Expect { pattern: expect.to_string(), source })?;
        let fail = fail
            .iter()
            .map(|f| Regex::new(f).map_err(|source| super::TargetError::Fail { pattern: f.to_string(), source }))
            .collect::<Result<_, _>>()?;
        Ok(LineMatcher { expect, fail, lines: Lines::default(), partial: false })
    }

    /// Feed console bytes; the first verdict reached, if any. Failure
    /// patterns are checked first, so a line matching both is a failure.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Verdict> {
        let mut v = None;
        let mut partial = false;
        let (expect, fail) = (&self.expect, &self.fail);
        self.lines.feed(bytes, |l, complete| {
            if l.is_empty() {
                return false;
            }
            v = if fail.iter().any(|re| re.is_match(l)) {
                Some(Verdict::Fail(l.to_string()))
            } else if expect.is_match(l) {
                Some(Verdict::Pass(l.to_string()))
            } else {
                None
            };
            partial = !complete;
            v.is_some()
        });
        self.partial = v.is_some() && partial;
        v
    }

    /// Whether the last verdict came from an unfinished line.
    pub fn verdict_line_unfinished(&self) -> bool {
        self.partial
    }

    /// After a verdict on an unfinished line: add more bytes to it; the
    /// whole line once its newline arrives (for the report).
    pub fn finish_line(&mut self, bytes: &[u8]) -> Option<String> {
        let mut full = None;
        self.lines.feed(bytes, |l, complete| {
            if complete {
                full = Some(l.to_string());
            }
            complete
        });
        if full.is_some() {
            self.partial = false;
        }
        full
    }

    /// The unfinished line as it is now.
    pub fn current_line(&self) -> String {
        self.lines.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails() -> Vec<String> {
        DEFAULT_FAIL_PATTERNS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn evidence_from_banners_and_ack_across_chunks() {
        let mut w = EvidenceWatcher::new(Some("serial: reboot command received"));
        assert_eq!(w.feed(b"~~~k\r\nkernel: reset: via port 0xCF9\r\n"), None);
        assert_eq!(w.feed(b"chainloa"), None);
        assert_eq!(w.feed(b"der 0.1.0\r\n"), Some(Evidence::Banner { line: "chainloader 0.1.0".into() }));
        let mut w = EvidenceWatcher::new(Some("serial: reboot command received"));
        assert_eq!(w.feed(b"~~~k\nserial: reboot com"), None);
        assert!(matches!(w.feed(b"mand received, rebooting\n"), Some(Evidence::Ack { .. })));
        let mut w = EvidenceWatcher::new(None);
        assert_eq!(w.feed(b"serial: reboot command received\n"), None);
        assert!(w.feed(b"SeaBIOS (version 1.16.2-debian-1.16.2-1)\n").is_some());
        // A kernel that merely quotes the chainloader's name is no banner.
        assert_eq!(EvidenceWatcher::new(None).feed(b"MBI loader=\"chainloader 0.1.0\"\n"), None);
        // The echo of the command before a silent reset, then the banner:
        // the position is that of the line's start.
        let mut w = EvidenceWatcher::new(None).at(100);
        assert_eq!(w.feed_at(b"ok\n~~~k"), None);
        assert_eq!(
            w.feed_at(b"chainloader 0.1.0\r\n"),
            Some((Evidence::Banner { line: "~~~kchainloader 0.1.0".into() }, 103))
        );
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
        assert!(!m.verdict_line_unfinished());
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        assert_eq!(m.feed(b"rebooting in 5 s..."), Some(Verdict::Fail("rebooting in 5 s...".into())));
        assert!(m.verdict_line_unfinished());
    }

    #[test]
    fn matcher_reports_the_whole_line_after_a_partial_match() {
        let mut m = LineMatcher::new("MBI-CHECK: ok", &fails()).unwrap();
        assert!(matches!(m.feed(b"chainloader: TFTP err"), Some(Verdict::Fail(_))));
        assert!(m.verdict_line_unfinished());
        assert_eq!(
            m.finish_line(b"or 1: File not found: /m\r\nrebooting"),
            Some("chainloader: TFTP error 1: File not found: /m".into())
        );
    }

    #[test]
    fn matcher_failure_wins() {
        let mut m = LineMatcher::new("ok", &fails()).unwrap();
        assert_eq!(m.feed(b", rebooting\nkernel: reset: via port 0xCF9\n"), None);
        assert_eq!(m.feed(b"kernel panic: ok\n"), Some(Verdict::Fail("kernel panic: ok".into())));
        assert!(LineMatcher::new("(", &[]).is_err());
        assert!(LineMatcher::new("ok", &["[".into()]).is_err());
    }
}
