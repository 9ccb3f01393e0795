//! QEMU: the `qemu` reset method (QMP `system_reset`) and the virtual
//! target (`kind = "qemu"`), a machine the relay starts itself with its
//! COM1 on a pty and its NIC on a tap or on QEMU's user network.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::info;

use super::TargetError;
use crate::policy::mac::fmt_mac;
use crate::policy::targets::Target;

type Result<T, E = TargetError> = std::result::Result<T, E>;

/// A QMP session (one command at a time).
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    pub fn connect(path: &Path) -> Result<Qmp> {
        let s =
            UnixStream::connect(path).map_err(|source| TargetError::QmpConnect { path: path.to_path_buf(), source })?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp { reader: BufReader::new(s.try_clone()?), writer: s };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            return Err(TargetError::NotQmp { path: path.to_path_buf(), greeting });
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(TargetError::QmpClosed);
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Run a command; its `return` value (events in between are skipped).
    pub fn execute(&mut self, cmd: &str) -> Result<Value> {
        writeln!(self.writer, "{}", json!({ "execute": cmd }))?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(TargetError::QmpCommand { cmd: cmd.to_string(), error: e.clone() });
            }
        }
    }

    /// `system_reset`, and `cont` if the machine is stopped (started with
    /// -S, or paused after a shutdown), so that it runs again.
    pub fn reset(&mut self) -> Result<String> {
        self.execute("system_reset")?;
        let status = self.execute("query-status")?;
        let running = status.get("running").and_then(Value::as_bool).unwrap_or(true);
        if !running {
            self.execute("cont")?;
            return Ok(format!(
                "system_reset, then cont (it was {})",
                status.get("status").and_then(Value::as_str).unwrap_or("stopped")
            ));
        }
        Ok("system_reset".into())
    }
}

/// A QEMU the relay started; killed when dropped.
pub struct VirtualMachine {
    child: Child,
    pub pty: String,
    pub qmp: PathBuf,
}

impl Drop for VirtualMachine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the virtual target, paused: the caller opens the pty first (QEMU
/// drops console output while nobody has it open), then calls [`VirtualMachine::run`].
pub fn start(t: &Target, tftp_root: &Path, state_dir: &Path) -> Result<VirtualMachine> {
    std::fs::create_dir_all(state_dir)
        .map_err(|source| TargetError::Create { path: state_dir.to_path_buf(), source })?;
    let qmp = state_dir.join(format!("{}.qmp", t.name));
    let _ = std::fs::remove_file(&qmp);
    let netdev = netdev_arg(t, tftp_root)?;
    let mut child = qemu_command(t, &qmp, &netdev).spawn().map_err(TargetError::StartQemu)?;
    let ptys = read_output(&mut child, &t.name);
    let pty = match ptys.recv_timeout(Duration::from_secs(30)) {
        Ok(p) => p,
        Err(_) => {
            let _ = child.kill();
            return Err(TargetError::NoPty(t.name.clone()));
        }
    };
    wait_for_socket(t, &qmp)?;
    info!(
        target: "qemu",
        target_name = %t.name,
        pid = child.id(),
        com1 = %pty,
        qmp = %qmp.display(),
        netdev = %netdev,
        "started"
    );
    Ok(VirtualMachine { child, pty, qmp })
}

/// `-netdev`: QEMU's user network serving the TFTP root (the default), or a tap.
fn netdev_arg(t: &Target, tftp_root: &Path) -> Result<String> {
    Ok(match t.qemu.netdev.as_deref().unwrap_or("user") {
        "user" => format!("user,id=n0,tftp={},bootfile=chainloader.0", tftp_root.display()),
        tap if tap.starts_with("tap:") => format!("tap,id=n0,ifname={},script=no,downscript=no", &tap[4..]),
        other => return Err(TargetError::Netdev { target: t.name.clone(), netdev: other.to_string() }),
    })
}

/// The QEMU command line: paused (-S), COM1 on a pty, QMP on `qmp`, netbooting; it dies with the relay.
fn qemu_command(t: &Target, qmp: &Path, netdev: &str) -> Command {
    let accel = std::env::var("NETBOOT_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-name", &t.name, "-accel", &accel, "-m", &t.qemu.memory_mib.unwrap_or(512).to_string()])
        .args(["-display", "none", "-nodefaults", "-vga", "std", "-boot", "n", "-S"])
        .args(["-serial", "pty"])
        .args(["-qmp", &format!("unix:{},server=on,wait=off", qmp.display())])
        .args(["-netdev", netdev])
        .args(["-device", &format!("{},netdev=n0,mac={}", t.qemu.nic.as_deref().unwrap_or("e1000"), fmt_mac(&t.mac))])
        .args(&t.qemu.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl in the child between fork and exec, async-signal-safe:
    // QEMU dies with the relay instead of running on unattended.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd
}

/// Logs QEMU's stdout and stderr, line by line, for as long as it runs;
/// the receiver gets the pty of "char device redirected to /dev/pts/3
/// (label serial0)" (QEMU 7.2 prints it on stdout, others on stderr).
fn read_output(child: &mut Child, name: &str) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (tx, name) = (tx.clone(), name.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                if let Some(p) = line.split("redirected to ").nth(1) {
                    let _ = tx.send(p.split_whitespace().next().unwrap_or("").to_string());
                }
                // QEMU's own words are the message.
                info!(target: "qemu", target_name = %name, "{line}");
            }
        });
    }
    rx
}

/// Waits up to 30 s for QEMU to create its QMP socket.
fn wait_for_socket(t: &Target, qmp: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !qmp.exists() {
        if Instant::now() > deadline {
            return Err(TargetError::NoQmpSocket { target: t.name.clone(), path: qmp.to_path_buf() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl VirtualMachine {
    /// Let the paused machine run.
    pub fn run(&self) -> Result<()> {
        Qmp::connect(&self.qmp)?.execute("cont")?;
        Ok(())
    }
}
