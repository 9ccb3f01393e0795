//! The reset methods, each one action; whether it worked is judged
//! afterwards by `reboot` from what the target does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::info;

use super::TargetError;

use crate::console::hub::Hub;
use crate::console::serial::ModemLine;
use crate::policy::mac::fmt_mac;
use crate::policy::targets::Target;

type Result<T, E = TargetError> = std::result::Result<T, E>;

/// The reboot command: three tildes and `k` (Nautilus's `~~~K` syntax).
pub const REBOOT_COMMAND: &[u8] = b"~~~k";
/// A receiver may hold a partial tilde count; sending the command up to
/// four times always reaches it with a clean count (docs/serial-reboot.md).
pub const REBOOT_ATTEMPTS: u32 = 4;

/// `serial`: the kernel's own reboot command on the console.
pub fn send_reboot_command(hub: &Hub) -> Result<()> {
    hub.write(REBOOT_COMMAND).map_err(|source| TargetError::WriteReboot { device: hub.device.clone(), source })
}

/// `dtr` / `rts`: drive the line to its active level for `pulse`, then back.
/// Active is "asserted" unless `active_low` (wiring through an inverter or
/// an open-collector stage that pulls the reset input low when the line is
/// deasserted).
pub fn pulse(hub: &Hub, line: ModemLine, pulse: Duration, active_low: bool) -> Result<String> {
    let active = !active_low;
    hub.set_line(line, active)?;
    std::thread::sleep(pulse);
    hub.set_line(line, !active)?;
    Ok(format!(
        "pulsed {line} {} for {} ms on {}",
        if active { "asserted" } else { "deasserted" },
        pulse.as_millis(),
        hub.device
    ))
}

/// `dtr` / `rts` on a separate adapter: opening it asserts DTR and RTS
/// (the tty driver does, before any setting applies) and closing drops
/// them, so with the reset wired active-high (`active_low = false`) the
/// pulse is: open (asserted), hold, deassert, close; while closed the line
/// rests deasserted and the target runs.
pub fn pulse_device(device: &str, line: ModemLine, pulse: Duration, active_low: bool) -> Result<String> {
    let mut port = serialport::new(device, 9600)
        .open_native()
        .map_err(|source| TargetError::ResetAdapter { device: device.to_string(), source })?;
    let active = !active_low;
    crate::console::serial::set_line(&mut port, device, line, active)?;
    std::thread::sleep(pulse);
    crate::console::serial::set_line(&mut port, device, line, !active)?;
    Ok(format!(
        "pulsed {line} {} for {} ms on {device}",
        if active { "asserted" } else { "deasserted" },
        pulse.as_millis()
    ))
}

/// `command`: run `sh -c RUN` (a smart plug, a USB relay board), with
/// RELAY_TARGET and RELAY_MAC set; its output goes to the relay's log and
/// to `out`. A non-zero exit or a timeout is a failed method.
pub fn run_command(t: &Target, run: &str, timeout: Duration, out: &mut dyn FnMut(String)) -> Result<String> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .args(["-c", run])
        // Its own process group, so that a timeout ends all of it.
        .process_group(0)
        .env("RELAY_TARGET", &t.name)
        .env("RELAY_MAC", fmt_mac(&t.mac))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TargetError::RunCommand { run: run.to_string(), source })?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = vec![];
    for r in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(std::io::Result::ok) {
                let _ = tx.send(l);
            }
        }));
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let status = loop {
        while let Ok(l) = rx.try_recv() {
            pass_on(t, &l, out);
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            // SAFETY: kill(2) on the process group we created for it.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(TargetError::CommandTimeout { run: run.to_string(), secs: timeout.as_secs_f64() });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for r in readers {
        let _ = r.join();
    }
    for l in rx.try_iter() {
        pass_on(t, &l, out);
    }
    if !status.success() {
        return Err(TargetError::CommandFailed { run: run.to_string(), status });
    }
    Ok(format!("ran `{run}` ({status})"))
}

/// A line the reset command printed, to the relay's log and to `out`.
/// The line is the message: it is the command's own words.
fn pass_on(t: &Target, line: &str, out: &mut dyn FnMut(String)) {
    info!(target: "target", target_name = %t.name, "reset command: {line}");
    out(format!("reset command: {line}"));
}

/// `qemu`: QMP `system_reset`.
pub fn qemu_reset(qmp: &Path) -> Result<String> {
    let did = super::qemu::Qmp::connect(qmp)?.reset()?;
    Ok(format!("QMP {did} on {}", qmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::Config;
    use crate::policy::targets::TargetTable;

    fn target() -> Target {
        let c =
            Config::parse("[[target]]\nname = \"t\"\nmac = \"52:54:00:00:00:09\"\nserial = \"/dev/null\"\n").unwrap();
        TargetTable::new(&c.targets).unwrap().targets.remove(0)
    }

    #[test]
    fn command_output_is_passed_on_with_the_targets_name_and_mac() {
        let mut said = vec![];
        let did = run_command(
            &target(),
            "echo off $RELAY_TARGET $RELAY_MAC; echo on >&2",
            Duration::from_secs(10),
            &mut |l| said.push(l),
        )
        .unwrap();
        assert!(did.starts_with("ran `echo off"), "{did}");
        said.sort();
        assert_eq!(said, ["reset command: off t 52:54:00:00:00:09", "reset command: on"]);
    }

    #[test]
    fn a_failing_or_slow_command_fails_the_method() {
        let e = run_command(&target(), "echo no plug; exit 3", Duration::from_secs(10), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("failed (exit status: 3)"), "{e}");
        let t0 = Instant::now();
        let e = run_command(&target(), "sleep 20", Duration::from_millis(300), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("did not finish within") && t0.elapsed() < Duration::from_secs(10), "{e}");
    }
}
