//! `relay boot`: with the files staged (see `stage`), write the target's
//! chainloader config, reset it (judged by evidence, with escalation),
//! then watch the new boot's console for the verdict.
//!
//! Exit status: 0 the expect pattern matched, 1 a failure pattern, 2 a
//! timeout or silence, 3 the target could not be reset.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tracing::info;

use super::evidence::{LineMatcher, Lines, Verdict, DEFAULT_FAIL_PATTERNS, HANDOFF_LINE};
use super::reboot::{self, Outcome, Progress, EXIT_CANNOT_RESET};
use super::stage::{self, Staged};
use super::{LastBoot, State, TargetError, TargetRuntime, Targets};
use crate::console::hub::Chunk;
use crate::console::log::{utc_now, TimestampedLog};
use crate::policy::targets::ResetMethod;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(60);
/// How long a verdict on an unfinished line waits for the rest of it.
const LINE_GRACE: Duration = Duration::from_secs(1);

pub struct BootPlan {
    pub kernel_name: String,
    pub kernel: Staged,
    pub modules: Vec<(Staged, String)>,
    pub cmdline: String,
    pub expect: Option<String>,
    /// Empty: the defaults.
    pub fail: Vec<String>,
    pub timeout: Option<Duration>,
    pub silence: Option<Duration>,
    pub methods: Vec<ResetMethod>,
}

/// The exit status and the message that explains it.
pub struct BootResult {
    pub exit: i32,
    pub message: String,
    pub log: PathBuf,
}

/// Writes the config, opens the boot log, resets the target, then judges
/// the new boot's console.
pub fn run(
    rt: &TargetRuntime,
    targets: &Targets,
    plan: BootPlan,
    out: &mut dyn FnMut(Progress),
) -> Result<BootResult, TargetError> {
    let t = &rt.target;
    let mut c = criteria(rt, &plan)?;

    let cfg = stage::config_text(&plan.kernel, &plan.cmdline, &plan.modules)?;
    let cfg_path = stage::write_config(&targets.tftp_root, t, &cfg)?;
    let (mut log, log_path) = open_boot_log(rt, targets, &plan, &cfg_path, &c, out)?;

    // Watch the console from before the reset; the new boot's output
    // starts at the position the reboot judgement reports.
    let (_, console) = rt.hub.watch();
    let start = Instant::now();
    let outcome = reset_for_boot(rt, &plan.methods, &mut log, out);
    let mut last = LastBoot {
        started: utc_now(),
        kernel: plan.kernel_name.clone(),
        sha256: plan.kernel.sha256.clone(),
        cmdline: plan.cmdline.clone(),
        verdict: String::new(),
        log: log_path.display().to_string(),
    };
    let from = match outcome {
        Outcome::NewBoot { pos, .. } => pos,
        Outcome::Failed { attempts } => {
            let message = Outcome::failure_message(&attempts, &t.name);
            let _ = log.note(&message);
            last.verdict = "cannot reset".into();
            rt.set_last_boot(last);
            return Ok(BootResult { exit: EXIT_CANNOT_RESET, message, log: log_path });
        }
    };

    let (exit, message) = judge(rt, &console, from, start, &mut c, &mut log, out);
    let _ = log.note(&message);
    let verdict = message.lines().next().unwrap_or("");
    last.verdict = verdict.to_string();
    rt.set_last_boot(last);
    info!(target: "boot", target_name = %t.name, exit, verdict, log = %log_path.display(), "finished");
    Ok(BootResult { exit, message, log: log_path })
}

/// The reboot judgement, its progress into the boot log and to the client.
fn reset_for_boot(
    rt: &TargetRuntime,
    methods: &[ResetMethod],
    log: &mut TimestampedLog,
    out: &mut dyn FnMut(Progress),
) -> Outcome {
    reboot::reboot(rt, methods, &mut |p| match p {
        Progress::Info(s) => {
            let _ = log.note(&s);
            out(Progress::Info(s))
        }
        // The old kernel's last words are in the console log, not the boot's.
        Progress::Console(_) => {}
    })
}

/// Watches the new boot from console position `from` to its exit status and message.
fn judge(
    rt: &TargetRuntime,
    console: &Receiver<Chunk>,
    from: u64,
    start: Instant,
    c: &mut Criteria,
    log: &mut TimestampedLog,
    out: &mut dyn FnMut(Progress),
) -> (i32, String) {
    let watched = watch_for_verdict(console, from, start + c.timeout, c.silence, &mut c.matcher, log, out);
    let elapsed = start.elapsed().as_secs_f64();
    match watched.verdict {
        Some(v) => match complete_verdict_line(v, &mut c.matcher, console, log, out) {
            Verdict::Pass(l) => {
                rt.set_state(State::Running);
                (0, format!("PASS in {elapsed:.1} s from the reset to: {l}"))
            }
            Verdict::Fail(l) => (1, format!("FAIL after {elapsed:.1} s: {l}")),
        },
        None => no_verdict(rt, c, watched.why_not, &watched.last_lines, elapsed),
    }
}

/// What a boot is judged by: the plan's settings, else the target's defaults, else the built-in ones.
struct Criteria {
    expect: String,
    matcher: LineMatcher,
    timeout: Duration,
    silence: Duration,
}

fn criteria(rt: &TargetRuntime, plan: &BootPlan) -> Result<Criteria, TargetError> {
    let d = &rt.target.defaults;
    let expect = plan.expect.clone().or_else(|| d.expect.clone()).unwrap_or_else(|| HANDOFF_LINE.to_string());
    let fail: Vec<String> = if !plan.fail.is_empty() {
        plan.fail.clone()
    } else {
        d.fail.clone().unwrap_or_else(|| DEFAULT_FAIL_PATTERNS.iter().map(|s| s.to_string()).collect())
    };
    let timeout = plan.timeout.or(d.timeout).unwrap_or(DEFAULT_TIMEOUT);
    let silence = plan.silence.or(d.silence).unwrap_or(DEFAULT_SILENCE);
    let matcher = LineMatcher::new(&expect, &fail)?;
    Ok(Criteria { expect, matcher, timeout, silence })
}

/// Opens this boot's own log, writes its header there and to the console log, and tells the client.
fn open_boot_log(
    rt: &TargetRuntime,
    targets: &Targets,
    plan: &BootPlan,
    cfg_path: &Path,
    c: &Criteria,
    out: &mut dyn FnMut(Progress),
) -> Result<(TimestampedLog, PathBuf), TargetError> {
    let t = &rt.target;
    let stamp = utc_now().replace([':', '-'], "").replace(".", "");
    let log_path =
        targets.log_dir.join("boots").join(format!("{}-{}-{}.log", t.name, &stamp[..15], &plan.kernel.sha256[..12]));
    let mut log = TimestampedLog::open(&log_path, u64::MAX, 0)?;
    let header = format!(
        "boot of {}: kernel {} ({} bytes, sha256 {}) as /{}, command line {:?}, {} module(s); config {}; expect /{}/, timeout {:.0} s, silence {:.0} s",
        t.name,
        plan.kernel_name,
        plan.kernel.size,
        plan.kernel.sha256,
        plan.kernel.tftp_path,
        plan.cmdline,
        plan.modules.len(),
        cfg_path.display(),
        c.expect,
        c.timeout.as_secs_f64(),
        c.silence.as_secs_f64()
    );
    let _ = log.note(&header);
    for (m, s) in &plan.modules {
        let _ = log.note(&format!("module /{} {s:?} ({} bytes, sha256 {})", m.tftp_path, m.size, m.sha256));
    }
    info!(target: "boot", target_name = %t.name, log = %log_path.display(), "started");
    rt.hub.note(&format!("relay boot: {header}; boot log {}", log_path.display()));
    out(Progress::Info(format!(
        "boot {}: staged {} as /{} (sha256 {}); config {}; boot log {}",
        t.name,
        plan.kernel_name,
        plan.kernel.tftp_path,
        &plan.kernel.sha256[..16],
        cfg_path.display(),
        log_path.display()
    )));
    Ok((log, log_path))
}

/// What watching the new boot's console came to.
struct Watched {
    verdict: Option<Verdict>,
    /// Without a verdict: "timeout" or "silence".
    why_not: &'static str,
    /// The last (up to 5) complete lines, then the unfinished one if any.
    last_lines: Vec<String>,
}

/// Feeds the console from `from` on to the log, the client and the matcher until a verdict, the deadline or silence.
fn watch_for_verdict(
    console: &Receiver<Chunk>,
    from: u64,
    deadline: Instant,
    silence: Duration,
    matcher: &mut LineMatcher,
    log: &mut TimestampedLog,
    out: &mut dyn FnMut(Progress),
) -> Watched {
    let mut last_output = Instant::now();
    let mut tail = Tail::default();
    let mut verdict = None;
    let mut why_not = "";
    while verdict.is_none() {
        let now = Instant::now();
        if now >= deadline {
            why_not = "timeout";
            break;
        }
        if now >= last_output + silence {
            why_not = "silence";
            break;
        }
        let wait = (deadline - now).min(last_output + silence - now).min(Duration::from_millis(200));
        match console.recv_timeout(wait) {
            Ok(chunk) => {
                let Some(b) = after(&chunk, from) else { continue };
                last_output = Instant::now();
                let _ = log.write(b);
                out(Progress::Console(b));
                tail.feed(b);
                verdict = matcher.feed(b);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                why_not = "silence";
                break;
            }
        }
    }
    Watched { verdict, why_not, last_lines: tail.lines() }
}

/// The part of `chunk` from console position `from` on, if any.
fn after(chunk: &Chunk, from: u64) -> Option<&[u8]> {
    let end = chunk.pos + chunk.bytes.len() as u64;
    if end <= from {
        return None;
    }
    let skip = from.saturating_sub(chunk.pos) as usize;
    Some(&chunk.bytes[skip..])
}

/// The last lines of the boot's console, for a report without a verdict.
#[derive(Default)]
struct Tail {
    complete: VecDeque<String>,
    lines: Lines,
}

impl Tail {
    const KEEP: usize = 5;

    fn feed(&mut self, b: &[u8]) {
        let complete = &mut self.complete;
        self.lines.feed(b, |l, done| {
            if done {
                complete.push_back(l.to_string());
                if complete.len() > Tail::KEEP {
                    complete.pop_front();
                }
            }
            false
        });
    }

    /// The last (up to 5) complete lines, then the unfinished one if any.
    fn lines(self) -> Vec<String> {
        let partial = self.lines.current();
        let mut last: Vec<String> = self.complete.into_iter().collect();
        if !partial.is_empty() {
            last.push(partial);
        }
        last
    }
}

/// A verdict on a line still arriving gets the whole line, if it comes within the grace time.
fn complete_verdict_line(
    v: Verdict,
    matcher: &mut LineMatcher,
    console: &Receiver<Chunk>,
    log: &mut TimestampedLog,
    out: &mut dyn FnMut(Progress),
) -> Verdict {
    if !matcher.verdict_line_unfinished() {
        return v;
    }
    // Matched while the line was still arriving: wait briefly for
    // the rest, so the report shows the whole line (the countdown
    // never ends its line; then it is reported as it stands).
    let grace = Instant::now() + LINE_GRACE;
    let mut full = None;
    while full.is_none() && Instant::now() < grace {
        if let Ok(chunk) = console.recv_timeout(grace - Instant::now()) {
            let _ = log.write(&chunk.bytes);
            out(Progress::Console(&chunk.bytes));
            full = matcher.finish_line(&chunk.bytes);
        }
    }
    let line = full.unwrap_or_else(|| matcher.current_line());
    match v {
        Verdict::Pass(_) => Verdict::Pass(line),
        Verdict::Fail(_) => Verdict::Fail(line),
    }
}

/// The exit status and message of a boot that ended in silence or a timeout.
fn no_verdict(rt: &TargetRuntime, c: &Criteria, why_not: &str, lines: &[String], elapsed: f64) -> (i32, String) {
    let expect = &c.expect;
    let shown = if lines.is_empty() {
        "  (nothing)".to_string()
    } else {
        lines.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    };
    if why_not == "silence" {
        rt.set_state(State::Hung);
        (2, format!("SILENCE: nothing on the console for {:.0} s ({elapsed:.1} s after the reset), /{expect}/ not seen; the last lines:\n{shown}", c.silence.as_secs_f64()))
    } else {
        (2, format!("TIMEOUT: /{expect}/ not seen within {:.0} s of the reset (no failure pattern either); the last lines:\n{shown}", c.timeout.as_secs_f64()))
    }
}
