//! The reset methods, each one action; whether it worked is judged
//! afterwards by `reboot` from what the target does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tracing::info;

use crate::console::hub::Hub;
use crate::console::serial::ModemLine;
use crate::policy::mac::fmt_mac;
use crate::policy::targets::Target;

/// The reboot command: three tildes and `k` (Nautilus's `~~~K` syntax).
pub const REBOOT_COMMAND: &[u8] = b"~~~k";
/// A receiver may hold a partial tilde count; sending the command up to
/// four times always reaches it with a clean count (docs/serial-reboot.md).
pub const REBOOT_ATTEMPTS: u32 = 4;

/// `serial`: the kernel's own reboot command on the console.
pub fn send_reboot_command(hub: &Hub) -> Result<()> {
    hub.write(REBOOT_COMMAND).with_context(|| format!("writing ~~~k to {}", hub.device))
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
        .with_context(|| format!("cannot open the reset adapter {device}"))?;
    let active = !active_low;
    crate::console::serial::set_line(&mut port, device, line, active)?;
    std::thread::sleep(pulse);
    crate::console::serial::set_line(&mut port, device, line, !active)?;
    Ok(format!("pulsed {line} {} for {} ms on {device}", if active { "asserted" } else { "deasserted" }, pulse.as_millis()))
}

/// `command`: run `sh -c RUN` (a smart plug, a USB relay board), with
/// RELAY_TARGET and RELAY_MAC set; its output goes to the relay's log and
/// to `out`. A non-zero exit or a timeout is a failed method.
pub fn run_command(t: &Target, run: &str, timeout: Duration, out: &mut dyn FnMut(String)) -> Result<String> {
    let mut child = Command::new("sh")
        .args(["-c", run])
        .env("RELAY_TARGET", &t.name)
        .env("RELAY_MAC", fmt_mac(&t.mac))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `sh -c {run:?}`"))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = vec![];
    for r in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        }));
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let status = loop {
        while let Ok(l) = rx.try_recv() {
            info!("target {}: reset command: {l}", t.name);
            out(format!("reset command: {l}"));
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{run}` did not finish within {:.0} s and was killed", timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for r in readers {
        let _ = r.join();
    }
    for l in rx.try_iter() {
        info!("target {}: reset command: {l}", t.name);
        out(format!("reset command: {l}"));
    }
    if !status.success() {
        bail!("`{run}` failed ({status})");
    }
    Ok(format!("ran `{run}` ({status})"))
}

/// `qemu`: QMP `system_reset`.
pub fn qemu_reset(qmp: &Path) -> Result<String> {
    let did = super::qemu::Qmp::connect(qmp)?.reset()?;
    Ok(format!("QMP {did} on {}", qmp.display()))
}
