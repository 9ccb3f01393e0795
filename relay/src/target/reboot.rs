//! Reboot judged by evidence: apply the target's reset methods in order,
//! and after each one watch for what only a machine coming out of reset
//! does: its MAC sends a DHCPDISCOVER to our DHCP server (the strongest
//! sign), its console shows a firmware, PXE ROM or chainloader banner, or
//! its kernel acknowledges the command. No evidence within the method's
//! wait: the next method. All failed: the machine must be power-cycled by
//! hand, and the report says what was tried and what was seen.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::evidence::{Evidence, EvidenceWatcher, Lines};
use super::{reset, State, TargetError, TargetRuntime};
use crate::console::hub::Chunk;
use crate::policy::targets::{ResetAction, ResetMethod};

/// What the caller is told while it runs.
pub enum Progress<'a> {
    Console(&'a [u8]),
    Info(String),
}

/// One method tried.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub method: &'static str,
    pub did: String,
    pub saw: String,
}

#[derive(Debug)]
pub enum Outcome {
    NewBoot {
        method: &'static str,
        evidence: Evidence,
        /// Console position from which the new boot's output starts.
        pos: u64,
        attempts: Vec<Attempt>,
    },
    Failed {
        attempts: Vec<Attempt>,
    },
}

/// Exit status when the target cannot be reset.
pub const EXIT_CANNOT_RESET: i32 = 3;

impl Outcome {
    /// The message of a failed reboot: what was tried, what was seen.
    pub fn failure_message(attempts: &[Attempt], target: &str) -> String {
        let mut m = format!("target {target} showed no sign of a new boot after any reset method:\n");
        for a in attempts {
            m.push_str(&format!("  {}: {}; saw {}\n", a.method, a.did, a.saw));
        }
        m.push_str(
            "No DHCPDISCOVER from its MAC, no firmware/PXE/chainloader banner, no acknowledgement. \
             If its kernel obeys ~~~k, it is hung with interrupts off (docs/serial-reboot.md).\n\
             This machine has no BMC: it must be power-cycled by hand (press reset or pull the plug), \
             or give it a `dtr`, `rts` or `command` reset method.",
        );
        m
    }
}

/// Applies `methods` in order until one shows a new boot.
pub fn reboot(rt: &TargetRuntime, methods: &[ResetMethod], out: &mut dyn FnMut(Progress)) -> Outcome {
    let t = &rt.target;
    let mut attempts = vec![];
    for m in methods {
        // Watch before acting, so that nothing the reset causes is missed.
        let (pos, console) = rt.hub.watch();
        let dhcp = rt.watch_dhcp();
        let ev = EvidenceWatcher::new(t.ack.as_deref()).at(pos);
        let started = Instant::now();
        let mut did = match apply_method(rt, m, out) {
            Ok(d) => d,
            Err(e) => {
                attempts.push(not_applied(rt, m, &e, out));
                continue;
            }
        };
        let w = watch_for_new_boot(rt, m, started, pos, &console, &dhcp, ev, out);
        if matches!(m.action, ResetAction::Serial) {
            let at: Vec<String> = w.sent_at.iter().map(|t| format!("{t:.1}")).collect();
            did = format!("sent ~~~k {} time(s) (at {} s)", w.sends, at.join(", "));
        }
        match w.found {
            Some((evidence, pos)) => {
                attempts.push(new_boot_seen(rt, m, &did, &evidence, out));
                return Outcome::NewBoot { method: m.name(), evidence, pos, attempts };
            }
            None => attempts.push(no_new_boot(rt, m, did, &w, out)),
        }
    }
    rt.hub.note("no reset method showed a new boot");
    Outcome::Failed { attempts }
}

/// A method that could not be applied (its device missing, its command failing).
fn not_applied(rt: &TargetRuntime, m: &ResetMethod, e: &TargetError, out: &mut dyn FnMut(Progress)) -> Attempt {
    let e = crate::error::chain(e);
    out(Progress::Info(format!("reset {}: {} failed: {e}", rt.target.name, m.name())));
    Attempt { method: m.name(), did: format!("failed: {e}"), saw: "nothing (not applied)".into() }
}

/// The method worked: recorded as the target's last evidence and in its console log.
fn new_boot_seen(
    rt: &TargetRuntime,
    m: &ResetMethod,
    did: &str,
    evidence: &Evidence,
    out: &mut dyn FnMut(Progress),
) -> Attempt {
    let msg = format!("{}: {did}; new boot seen: {evidence}", m.name());
    rt.set_evidence(&msg);
    rt.set_state(State::Netbooting);
    rt.hub.note(&format!("new boot after reset method {}: {evidence}", m.name()));
    out(Progress::Info(format!("reset {}: {msg}", rt.target.name)));
    Attempt { method: m.name(), did: did.to_string(), saw: evidence.to_string() }
}

/// The method's wait ended without evidence: what was seen instead. A
/// kernel that ignored ~~~k is hung.
fn no_new_boot(
    rt: &TargetRuntime,
    m: &ResetMethod,
    did: String,
    w: &Watched,
    out: &mut dyn FnMut(Progress),
) -> Attempt {
    let saw = if w.heard == 0 {
        "nothing: no console output, no DHCPDISCOVER".to_string()
    } else {
        format!(
            "{} console byte(s) (last line {:?}) but no boot banner, acknowledgement or DHCPDISCOVER",
            w.heard, w.last_line
        )
    };
    if matches!(m.action, ResetAction::Serial) {
        rt.set_state(State::Hung);
    }
    out(Progress::Info(format!(
        "reset {}: {}: {did}; no new boot within {:.0} s: {saw}",
        rt.target.name,
        m.name(),
        m.wait.as_secs_f64()
    )));
    Attempt { method: m.name(), did, saw }
}

/// Announces and applies one reset method; Ok says what was done.
fn apply_method(rt: &TargetRuntime, m: &ResetMethod, out: &mut dyn FnMut(Progress)) -> Result<String, TargetError> {
    let t = &rt.target;
    let mut info = |s: String| out(Progress::Info(s));
    info(format!("reset {}: {} (waiting up to {:.0} s for a new boot)", t.name, m.name(), m.wait.as_secs_f64()));
    rt.hub.note(&format!("reset method {}", m.name()));
    match &m.action {
        ResetAction::Serial => reset::send_reboot_command(&rt.hub).map(|_| "sent ~~~k".to_string()),
        ResetAction::Line { line, pulse, active_low, device: None } => {
            reset::pulse(&rt.hub, *line, *pulse, *active_low)
        }
        ResetAction::Line { line, pulse, active_low, device: Some(d) } => {
            reset::pulse_device(d, *line, *pulse, *active_low)
        }
        ResetAction::Command { run, timeout } => reset::run_command(t, run, *timeout, &mut info),
        ResetAction::Qemu => match &t.qmp {
            Some(q) => reset::qemu_reset(q),
            None => Err(TargetError::NoQmp),
        },
    }
}

/// What watching after one reset method came to.
struct Watched {
    /// The evidence and the console position the new boot starts at.
    found: Option<(Evidence, u64)>,
    /// How often ~~~k was sent (serial method), and when (seconds after the reset).
    sends: u32,
    sent_at: Vec<f64>,
    /// Console bytes seen, and the last non-empty line.
    heard: usize,
    last_line: String,
}

/// Watches DHCP and the console for a new boot until the method's wait ends, resending ~~~k on the way.
#[allow(clippy::too_many_arguments)] // the watch channels are opened by the caller before it acts
fn watch_for_new_boot(
    rt: &TargetRuntime,
    m: &ResetMethod,
    started: Instant,
    mut pos: u64,
    console: &Receiver<Chunk>,
    dhcp: &Receiver<(Instant, String)>,
    mut ev: EvidenceWatcher,
    out: &mut dyn FnMut(Progress),
) -> Watched {
    let mut last_lines = Lines::default();
    let mut last_line = String::new();
    let deadline = started + m.wait;
    let mut sends = 1;
    let mut sent_at = vec![0.0f64];
    let mut heard = 0usize;
    let found = loop {
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        if matches!(m.action, ResetAction::Serial)
            && sends < reset::REBOOT_ATTEMPTS
            && now >= started + m.wait * sends / reset::REBOOT_ATTEMPTS
        {
            // A receiver can hold a partial tilde count: up to four sends.
            let _ = reset::send_reboot_command(&rt.hub);
            sends += 1;
            sent_at.push(started.elapsed().as_secs_f64());
        }
        if let Ok((_, detail)) = dhcp.try_recv() {
            break Some((Evidence::Dhcp { detail }, pos));
        }
        match console.recv_timeout(Duration::from_millis(50).min(deadline - now)) {
            Ok(chunk) => {
                heard += chunk.bytes.len();
                pos = chunk.pos + chunk.bytes.len() as u64;
                out(Progress::Console(&chunk.bytes));
                last_lines.feed(&chunk.bytes, |l, _| {
                    if !l.trim().is_empty() {
                        last_line = l.trim().to_string();
                    }
                    false
                });
                if let Some((e, at)) = ev.feed_at(&chunk.bytes) {
                    break Some((e, at));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    Watched { found, sends, sent_at, heard, last_line }
}
