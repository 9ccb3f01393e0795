//! `relay attach`: the interactive client of the console hub (the
//! minicom replacement).
//!
//! The local terminal is put in raw mode, so every key (Ctrl-C included)
//! goes to the target. The local escape is `Ctrl-]` (as in telnet), never
//! `~`: the target's reboot command is `~~~k` and must pass untouched.
//! After `Ctrl-]`: `q` (or `.`) detaches, `Ctrl-]` sends one `Ctrl-]`,
//! `k` sends the kernel's reboot command `~~~k` (bytes to the target),
//! `r` asks the relay for a full reboot (its reset methods, judged by
//! evidence), `?` shows help; anything else is dropped.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// The escape key: Ctrl-] (0x1d).
pub const ESCAPE: u8 = 0x1d;

const HELP: &str =
    "\r\n[relay attach: Ctrl-] then: q detach | k send ~~~k | r reboot (the relay's reset methods) | Ctrl-] send Ctrl-] | ? help]\r\n";

/// The kernel's reboot command (docs/serial-reboot.md).
const REBOOT_COMMAND: &[u8] = b"~~~k";

/// What a keystroke means after the escape state is applied.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// Send these bytes to the target.
    Send(Vec<u8>),
    Detach,
    Help,
    /// Ask the relay to reboot the target.
    Reboot,
    /// Nothing to do (escape pressed, or an unknown escape command).
    Nothing,
}

/// The escape-key state machine of the local terminal.
#[derive(Default)]
pub struct Escape {
    armed: bool,
}

impl Escape {
    pub fn key(&mut self, b: u8) -> Key {
        if self.armed {
            self.armed = false;
            return match b {
                b'q' | b'Q' | b'.' => Key::Detach,
                ESCAPE => Key::Send(vec![ESCAPE]),
                b'k' => Key::Send(REBOOT_COMMAND.to_vec()),
                b'r' => Key::Reboot,
                b'?' | b'h' => Key::Help,
                _ => Key::Nothing,
            };
        }
        if b == ESCAPE {
            self.armed = true;
            return Key::Nothing;
        }
        Key::Send(vec![b])
    }
}

/// The terminal settings to put back on exit.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

fn restore_terminal() {
    if let Some(t) = SAVED.lock().unwrap().take() {
        // SAFETY: tcsetattr on fd 0 with a termios previously filled by tcgetattr.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }
}

/// Raw mode on stdin if it is a terminal (cfmakeraw: no echo, no signals,
/// no line editing, no CR/NL translation); the old settings are saved.
fn make_raw() -> io::Result<bool> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(0) } != 1 {
        return Ok(false);
    }
    // SAFETY: termios is plain data; tcgetattr fills it for fd 0.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a termios we own, valid for the write.
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    *SAVED.lock().unwrap() = Some(t);
    let mut raw = t;
    // SAFETY: cfmakeraw edits the struct we own; tcsetattr applies it to fd 0.
    unsafe { libc::cfmakeraw(&mut raw) };
    // SAFETY: `raw` is a valid termios we own; fd 0 is a terminal (isatty).
    if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

struct RestoreOnDrop;
impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// What `Ctrl-] r` runs (on its own thread).
type Reboot = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Run the interactive client. `replay` bytes of recent output are shown
/// first. `reboot` runs on `Ctrl-] r` (on its own thread).
pub fn run(
    conn: UnixStream,
    pending: Vec<u8>,
    what: &str,
    reboot: Option<Box<dyn Fn() + Send + Sync>>,
) -> io::Result<()> {
    let tty = make_raw()?;
    let _restore = RestoreOnDrop;
    let nl = if tty { "\r\n" } else { "\n" };
    eprint!("[relay attach: connected to {what}; Ctrl-] q detaches, Ctrl-] ? for help]{nl}");
    {
        let mut out = io::stdout();
        let _ = out.write_all(&pending).and_then(|_| out.flush());
    }
    spawn_output(conn.try_clone()?);
    type_to_target(conn, reboot.map(std::sync::Arc::from), nl)
}

/// The relay's output to stdout, until it closes the connection; then
/// the whole client exits (status 1).
fn spawn_output(mut from_hub: UnixStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = io::stdout();
        loop {
            match from_hub.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
        restore_terminal();
        eprintln!("\n[relay attach: the relay closed the connection]");
        std::process::exit(1);
    });
}

/// Stdin through the escape state machine to the relay, until `Ctrl-] q`.
fn type_to_target(mut to_hub: UnixStream, reboot: Option<Reboot>, nl: &str) -> io::Result<()> {
    let mut esc = Escape::default();
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 256];
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            // stdin closed (piped input): keep showing output until the relay closes.
            let _ = to_hub.shutdown(std::net::Shutdown::Write);
            loop {
                std::thread::park();
            }
        }
        // What was typed goes out in one write, so that it reaches the
        // target in one piece.
        let (send, detach) = keys(&mut esc, &buf[..n], reboot.as_ref(), nl);
        to_hub.write_all(&send)?;
        if detach {
            restore_terminal();
            eprintln!("\n[relay attach: detached]");
            return Ok(());
        }
    }
}

/// The bytes to send for what was typed (up to a detach), and whether it detaches.
fn keys(esc: &mut Escape, typed: &[u8], reboot: Option<&Reboot>, nl: &str) -> (Vec<u8>, bool) {
    let mut send = Vec::with_capacity(typed.len());
    for &b in typed {
        match esc.key(b) {
            Key::Send(bytes) => send.extend_from_slice(&bytes),
            Key::Detach => return (send, true),
            Key::Help => eprint!("{HELP}"),
            Key::Reboot => match reboot {
                Some(f) => {
                    let f = f.clone();
                    std::thread::spawn(move || f());
                }
                None => eprint!("{nl}[relay attach: no reboot here]{nl}"),
            },
            Key::Nothing => {}
        }
    }
    (send, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tildes_pass_and_escape_works() {
        let mut e = Escape::default();
        let sent: Vec<u8> = b"~~~k"
            .iter()
            .flat_map(|&b| match e.key(b) {
                Key::Send(v) => v,
                k => panic!("{k:?}"),
            })
            .collect();
        assert_eq!(sent, b"~~~k");
        assert_eq!(e.key(ESCAPE), Key::Nothing);
        assert_eq!(e.key(ESCAPE), Key::Send(vec![ESCAPE]));
        assert_eq!(e.key(ESCAPE), Key::Nothing);
        assert_eq!(e.key(b'x'), Key::Nothing);
        assert_eq!(e.key(b'q'), Key::Send(vec![b'q']));
        assert_eq!(e.key(ESCAPE), Key::Nothing);
        assert_eq!(e.key(b'q'), Key::Detach);
    }
}
