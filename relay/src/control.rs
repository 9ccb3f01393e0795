//! The control socket of `relay serve` (unix, mode 0660, group
//! configurable). Every other subcommand is a client: it sends one JSON
//! request line; the daemon answers with JSON event lines ending in
//! `done`, or, for `attach`, with one `attached` line after which the
//! connection carries raw console bytes both ways. `boot` sends its files'
//! bytes right after the request line, in the order listed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::console::session::{self, Codec};
use crate::error::chain;
use crate::policy::targets::Target;
use crate::target::boot::{self, BootPlan};
use crate::target::reboot::{self, Outcome, Progress, EXIT_CANNOT_RESET};
use crate::target::stage::{self, Staged};
use crate::target::{TargetStatus, Targets};

pub const DEFAULT_CONTROL: &str = "/run/relay/control.sock";

/// What went wrong on the control socket, on either end. Each variant's
/// text is its own context; the cause is its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Nul(#[from] std::ffi::NulError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),

    // -- the daemon's socket
    #[error("cannot create {}", dir.display())]
    CreateDir { dir: PathBuf, source: std::io::Error },
    #[error("another relay is already listening on {}", .0.display())]
    AlreadyListening(PathBuf),
    #[error("cannot remove stale socket {}", path.display())]
    RemoveStale { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {}", path.display())]
    Listen { path: PathBuf, source: std::io::Error },
    #[error("cannot give {} to group {group}", path.display())]
    Chown { path: PathBuf, group: String, source: std::io::Error },
    #[error("no group {0:?} (for the control socket)")]
    NoGroup(String),

    // -- requests
    #[error("the target has no reset method {name:?} (it has: {has})")]
    NoMethod { name: String, has: String },
    #[error("no --kernel given and the target has no default kernel")]
    NoKernel,
    #[error("cannot open the default kernel {}", path.display())]
    OpenKernel { path: PathBuf, source: std::io::Error },
    #[error("cannot open module {path}")]
    OpenModule { path: String, source: std::io::Error },

    // -- the client
    #[error("cannot reach the relay at {} (is `relay serve` running? are you in the socket's group?)", path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("bad event from the relay: {line:?}")]
    BadEvent { line: String, source: serde_json::Error },
}

type Result<T, E = ControlError> = std::result::Result<T, E>;

/// A file sent after the request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSpec {
    /// The name it came with (`-` for stdin), for the log and its staged name.
    pub name: String,
    pub size: u64,
    /// Module string.
    #[serde(default)]
    pub string: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    Attach {
        target: Option<String>,
        #[serde(default)]
        read_only: bool,
        #[serde(default)]
        replay: usize,
    },
    Reboot {
        target: Option<String>,
        /// Only these reset methods (by name), in the target's order.
        #[serde(default)]
        methods: Vec<String>,
    },
    Boot {
        target: Option<String>,
        /// None: the target's default kernel (a path on the relay host).
        kernel: Option<FileSpec>,
        #[serde(default)]
        modules: Vec<FileSpec>,
        cmdline: Option<String>,
        expect: Option<String>,
        #[serde(default)]
        fail: Vec<String>,
        timeout: Option<f64>,
        silence: Option<f64>,
        #[serde(default)]
        methods: Vec<String>,
    },
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Attached { target: String, device: String },
    Console { data: String },
    Info { text: String },
    Status { targets: Vec<TargetStatus> },
    Done { exit: i32, message: String },
}

/// Listen on the control socket: a stale socket is replaced, a live one is
/// refused; mode 0660 and the group given, so that its members may use
/// the relay.
pub fn listen(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::CreateDir { dir: dir.to_path_buf(), source })?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ControlError::AlreadyListening(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(|source| ControlError::RemoveStale { path: path.to_path_buf(), source })?;
    }
    let l = UnixListener::bind(path).map_err(|source| ControlError::Listen { path: path.to_path_buf(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(g) = group {
        let gid = group_id(g)?;
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: chown on a NUL-terminated path we own; -1 keeps the owner.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
            return Err(ControlError::Chown {
                path: path.to_path_buf(),
                group: g.to_string(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(l)
}

fn group_id(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(name)?;
    // SAFETY: getgrnam with a NUL-terminated name; the result is read at once
    // (the relay calls it once, at start, before other threads do).
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    if g.is_null() {
        return Err(ControlError::NoGroup(name.to_string()));
    }
    // SAFETY: non-null result of getgrnam points to a valid struct group.
    Ok(unsafe { (*g).gr_gid })
}

pub fn serve(listener: UnixListener, targets: Arc<Targets>) {
    for c in listener.incoming() {
        match c {
            Ok(c) => {
                let t = targets.clone();
                std::thread::spawn(move || {
                    if let Err(e) = handle(c, &t) {
                        warn!(target: "control", error = %chain(&e), "request failed");
                    }
                });
            }
            Err(e) => warn!(target: "control", error = %e, "accept failed"),
        }
    }
}

fn send(w: &mut UnixStream, e: &Event) -> bool {
    let mut line = serde_json::to_string(e).expect("events serialize");
    line.push('\n');
    w.write_all(line.as_bytes()).is_ok()
}

/// One connection: reads the request line and hands it to the step for its kind.
fn handle(stream: UnixStream, targets: &Targets) -> Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 16, stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let req: Request = match serde_json::from_str(&line) {
        Ok(q) => q,
        Err(e) => {
            send(&mut w, &Event::Done { exit: 1, message: format!("bad request: {e}") });
            return Ok(());
        }
    };
    match req {
        Request::Status => handle_status(&mut w, targets),
        Request::Attach { target, read_only, replay } => handle_attach(r, w, targets, target, read_only, replay),
        Request::Reboot { target, methods } => handle_reboot(&mut w, targets, target, &methods),
        req @ Request::Boot { .. } => handle_boot(&mut r, &mut w, targets, req),
    }
    Ok(())
}

fn done(w: &mut UnixStream, exit: i32, message: String) {
    send(w, &Event::Done { exit, message });
}

fn handle_status(w: &mut UnixStream, targets: &Targets) {
    let list = targets.list.iter().map(|t| t.status()).collect();
    send(w, &Event::Status { targets: list });
    done(w, 0, String::new());
}

/// After the `attached` line the connection is a console session (with what was read past the request).
fn handle_attach(
    mut r: BufReader<UnixStream>,
    mut w: UnixStream,
    targets: &Targets,
    target: Option<String>,
    read_only: bool,
    replay: usize,
) {
    let rt = match targets.get(target.as_deref()) {
        Ok(t) => t,
        Err(e) => return done(&mut w, 1, chain(&e)),
    };
    send(&mut w, &Event::Attached { target: rt.target.name.clone(), device: rt.hub.device.clone() });
    let pending = r.buffer().to_vec();
    r.consume(pending.len());
    let peer = format!("pid {}", peer_pid(&w).map_or("?".into(), |p| p.to_string()));
    session::run(&rt.hub, "unix", peer, read_only, replay, Codec::Raw, r, w, &pending);
}

fn handle_reboot(w: &mut UnixStream, targets: &Targets, target: Option<String>, methods: &[String]) {
    let rt = match targets.get(target.as_deref()) {
        Ok(t) => t,
        Err(e) => return done(w, 1, chain(&e)),
    };
    let methods = match pick_methods(&rt.target.reset, methods) {
        Ok(m) => m,
        Err(e) => return done(w, 1, chain(&e)),
    };
    let _busy = lock_busy(&rt, w);
    info!(target: "control", target_name = %rt.target.name, "reboot");
    let outcome = reboot::reboot(&rt, &methods, &mut |p| forward(w, p));
    match outcome {
        Outcome::NewBoot { method, evidence, .. } => {
            done(w, 0, format!("target {} is rebooting (method {method}): {evidence}", rt.target.name))
        }
        Outcome::Failed { attempts } => {
            done(w, EXIT_CANNOT_RESET, Outcome::failure_message(&attempts, &rt.target.name))
        }
    }
}

/// Stages the files (sent after the request, or the target's defaults), then boots and reports the verdict.
fn handle_boot(r: &mut BufReader<UnixStream>, w: &mut UnixStream, targets: &Targets, req: Request) {
    let Request::Boot { target, kernel, modules, cmdline, expect, fail, timeout, silence, methods } = req else {
        unreachable!("handle passes only boot requests here")
    };
    let rt = match targets.get(target.as_deref()) {
        Ok(t) => t,
        Err(e) => return done(w, 1, chain(&e)),
    };
    let t = &rt.target;
    let result = (|| -> Result<BootPlan> {
        let methods = pick_methods(&t.reset, &methods)?;
        let (kernel_name, staged_kernel) = stage_kernel(t, targets, r, kernel.as_ref())?;
        let staged_modules = stage_modules(t, targets, r, &modules, kernel.is_some())?;
        let secs = |s: Option<f64>| s.map(|s| Duration::from_secs_f64(s.max(0.0)));
        Ok(BootPlan {
            kernel_name,
            kernel: staged_kernel,
            modules: staged_modules,
            cmdline: cmdline.clone().or_else(|| t.defaults.cmdline.clone()).unwrap_or_default(),
            expect: expect.clone(),
            fail: fail.clone(),
            timeout: secs(timeout),
            silence: secs(silence),
            methods,
        })
    })();
    let plan = match result {
        Ok(p) => p,
        Err(e) => return done(w, 1, chain(&e)),
    };
    let _busy = lock_busy(&rt, w);
    info!(target: "control", target_name = %t.name, kernel = %plan.kernel_name, sha256 = %plan.kernel.sha256, "boot");
    match boot::run(&rt, targets, plan, &mut |p| forward(w, p)) {
        Ok(res) => done(w, res.exit, format!("{}\nboot log: {}", res.message, res.log.display())),
        Err(e) => done(w, 1, chain(&e)),
    }
}

/// Stages one file sent after the request under the target's directory.
fn stage_sent(t: &Target, targets: &Targets, r: &mut dyn Read, spec: &FileSpec, fallback: &str) -> Result<Staged> {
    let rel = format!("{}/{}", t.dir(), stage::safe_name(&spec.name, fallback));
    Ok(stage::stage_file(&targets.tftp_root, &rel, r, Some(spec.size))?)
}

/// The kernel sent after the request, else the target's default kernel (a path on the relay host).
fn stage_kernel(
    t: &Target,
    targets: &Targets,
    r: &mut dyn Read,
    kernel: Option<&FileSpec>,
) -> Result<(String, Staged)> {
    Ok(match kernel {
        Some(k) => (
            if k.name == "-" { "(stdin)".to_string() } else { k.name.clone() },
            stage_sent(t, targets, r, k, "kernel")?,
        ),
        None => {
            let p = t.defaults.kernel.clone().ok_or(ControlError::NoKernel)?;
            let mut f =
                std::fs::File::open(&p).map_err(|source| ControlError::OpenKernel { path: p.clone(), source })?;
            let rel = format!("{}/{}", t.dir(), stage::safe_name(&p.to_string_lossy(), "kernel"));
            (p.display().to_string(), stage::stage_file(&targets.tftp_root, &rel, &mut f, None)?)
        }
    })
}

/// The modules sent after the request; if neither modules nor a kernel were sent, the target's default modules.
fn stage_modules(
    t: &Target,
    targets: &Targets,
    r: &mut dyn Read,
    modules: &[FileSpec],
    kernel_given: bool,
) -> Result<Vec<(Staged, String)>> {
    let mut staged_modules = vec![];
    for (i, m) in modules.iter().enumerate() {
        let s = stage_sent(t, targets, r, m, &format!("module{}", i + 1))?;
        staged_modules.push((s, m.string.clone().unwrap_or_default()));
    }
    if modules.is_empty() && !kernel_given {
        for (i, spec) in t.defaults.modules.iter().enumerate() {
            let (path, string) = spec.split_once('=').unwrap_or((spec.as_str(), ""));
            let mut f = std::fs::File::open(path)
                .map_err(|source| ControlError::OpenModule { path: path.to_string(), source })?;
            let rel = format!("{}/{}", t.dir(), stage::safe_name(path, &format!("module{}", i + 1)));
            staged_modules.push((stage::stage_file(&targets.tftp_root, &rel, &mut f, None)?, string.to_string()));
        }
    }
    Ok(staged_modules)
}

fn forward(w: &mut UnixStream, p: Progress) {
    let _ = match p {
        Progress::Console(b) => send(w, &Event::Console { data: String::from_utf8_lossy(b).into_owned() }),
        Progress::Info(text) => send(w, &Event::Info { text }),
    };
}

fn lock_busy<'a>(rt: &'a crate::target::TargetRuntime, w: &mut UnixStream) -> std::sync::MutexGuard<'a, ()> {
    match rt.busy.try_lock() {
        Ok(g) => g,
        Err(_) => {
            send(
                w,
                &Event::Info {
                    text: format!("target {} is busy with another reboot or boot; waiting", rt.target.name),
                },
            );
            rt.busy.lock().unwrap_or_else(|p| p.into_inner())
        }
    }
}

fn pick_methods(
    all: &[crate::policy::targets::ResetMethod],
    names: &[String],
) -> Result<Vec<crate::policy::targets::ResetMethod>> {
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    for n in names {
        if !all.iter().any(|m| m.name() == n) {
            return Err(ControlError::NoMethod {
                name: n.clone(),
                has: all.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(all.iter().filter(|m| names.iter().any(|n| n == m.name())).cloned().collect())
}

fn peer_pid(s: &UnixStream) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut cred: libc::ucred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt SO_PEERCRED into a ucred we own, with its size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.pid)
}

// ---------------------------------------------------------------- client

/// A connection to the daemon.
pub struct Client {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
}

/// The control socket: `--control`, else $RELAY_CONTROL, else the default.
pub fn socket_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("RELAY_CONTROL").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL))
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client> {
        let s =
            UnixStream::connect(path).map_err(|source| ControlError::Connect { path: path.to_path_buf(), source })?;
        Ok(Client { reader: BufReader::new(s.try_clone()?), stream: s })
    }

    /// Send the request line, then `payload` (file bytes, for boot).
    pub fn request(&mut self, req: &Request, payload: &mut [Box<dyn Read>]) -> Result<()> {
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        for p in payload {
            std::io::copy(p, &mut self.stream)?;
        }
        Ok(())
    }

    /// The next event; None when the daemon closed the connection.
    pub fn event(&mut self) -> Result<Option<Event>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        match serde_json::from_str(&line) {
            Ok(e) => Ok(Some(e)),
            Err(source) => Err(ControlError::BadEvent { line, source }),
        }
    }

    /// After `attached`: the raw stream (what the reader buffered first).
    pub fn into_raw(self) -> (Vec<u8>, UnixStream) {
        (self.reader.buffer().to_vec(), self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_events_as_documented() {
        let r: Request =
            serde_json::from_str(r#"{"op":"attach","target":"aronnax","replay":4096,"read_only":true}"#).unwrap();
        assert!(matches!(r, Request::Attach { target: Some(ref t), read_only: true, replay: 4096 } if t == "aronnax"));
        let r: Request = serde_json::from_str(r#"{"op":"boot","kernel":{"name":"-","size":3},"expect":"ok"}"#).unwrap();
        assert!(matches!(r, Request::Boot { target: None, kernel: Some(ref k), .. } if k.size == 3));
        assert!(matches!(serde_json::from_str(r#"{"op":"status"}"#).unwrap(), Request::Status));
        let e = serde_json::to_string(&Event::Done { exit: 3, message: "m".into() }).unwrap();
        assert_eq!(e, r#"{"event":"done","exit":3,"message":"m"}"#);
    }

    #[test]
    fn method_filter_keeps_the_targets_order_and_refuses_unknown_names() {
        use crate::policy::targets::{ResetAction, ResetMethod};
        let w = Duration::from_secs(1);
        let all = vec![
            ResetMethod { action: ResetAction::Serial, wait: w },
            ResetMethod { action: ResetAction::Qemu, wait: w },
        ];
        let picked = pick_methods(&all, &["qemu".into(), "serial".into()]).unwrap();
        assert_eq!(picked.iter().map(|m| m.name()).collect::<Vec<_>>(), ["serial", "qemu"]);
        assert!(pick_methods(&all, &["dtr".into()]).unwrap_err().to_string().contains("has: serial, qemu"));
    }
}
