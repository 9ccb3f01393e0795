//! `relay console`: the serial console hub that replaces minicom in tmux.
//!
//! One process owns the serial port (exclusively, 8N1, no flow control),
//! appends everything the target prints to a log with a UTC timestamp at
//! the start of each line, and serves any number of clients on a unix
//! socket: each client receives the output, and whatever any client sends
//! goes to the target. `relay attach`, `relay reboot --socket` and
//! `relay boot-test --socket` are such clients; so is plain
//! `socat - UNIX-CONNECT:/run/relay/console.sock`.
//!
//! Client protocol: raw bytes both ways. A client may open with one header
//! line `\0RELAY replay=<bytes>\n` to first receive up to that many bytes of
//! recent output (the hub keeps [`REPLAY_CAPACITY`]). A client that sends
//! no header gets everything printed from the moment it connected.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serialport::SerialPort;

/// Where the hub listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/relay/console.sock";
/// Recent output kept for replay to newly attached clients.
pub const REPLAY_CAPACITY: usize = 1 << 20;
/// The optional first line a client sends: `\0RELAY replay=<bytes>\n`.
pub const HEADER_PREFIX: &[u8] = b"\0RELAY ";
/// How long the hub waits for a client's optional header.
const HEADER_WAIT: Duration = Duration::from_secs(1);
/// A client that cannot take output for this long is dropped, so one stuck
/// client never stalls the serial port or the log.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// `relay console` options.
pub struct ConsoleOptions {
    pub serial: String,
    pub baud: u32,
    pub socket: PathBuf,
    pub log: Option<PathBuf>,
}

/// Connect to a hub at `socket`, asking for `replay` bytes of recent output.
pub fn connect(socket: &Path, replay: usize) -> Result<UnixStream> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!("cannot connect to the console hub at {} (is `relay console` running?)", socket.display())
    })?;
    let mut header = HEADER_PREFIX.to_vec();
    header.extend_from_slice(format!("replay={replay}\n").as_bytes());
    s.write_all(&header)?;
    Ok(s)
}

/// Output seen so far: the last [`REPLAY_CAPACITY`] bytes, addressed by
/// their absolute position in the stream.
struct Hub {
    ring: VecDeque<u8>,
    total: u64,
    clients: Vec<(u64, UnixStream)>,
    next_id: u64,
}

impl Hub {
    fn push(&mut self, bytes: &[u8]) {
        self.ring.extend(bytes);
        let excess = self.ring.len().saturating_sub(REPLAY_CAPACITY);
        self.ring.drain(..excess);
        self.total += bytes.len() as u64;
        self.clients.retain_mut(|(id, c)| match c.write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("relay console: client {id} dropped: {e}");
                let _ = c.shutdown(std::net::Shutdown::Both);
                false
            }
        });
    }

    /// Output from absolute position `from` on (clamped to what is kept).
    fn since(&self, from: u64) -> Vec<u8> {
        let first = self.total - self.ring.len() as u64;
        let skip = from.clamp(first, self.total) - first;
        self.ring.iter().skip(skip as usize).copied().collect()
    }
}

/// Appends console output to the log, a UTC timestamp before each line.
pub struct TimestampedLog {
    file: Option<File>,
    at_line_start: bool,
}

impl TimestampedLog {
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let file = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .with_context(|| format!("cannot open log {}", p.display()))?,
                )
            }
            None => None,
        };
        Ok(TimestampedLog { file, at_line_start: true })
    }

    /// Write target output; the file is written through (no buffering), so
    /// a crash of the hub loses nothing already read.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        let mut out = Vec::with_capacity(bytes.len() + 32);
        stamp_lines(&mut out, bytes, &mut self.at_line_start, &utc_now());
        f.write_all(&out)
    }

    /// A line from the hub itself (not the target), marked `-- relay:`.
    pub fn note(&mut self, msg: &str) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        let nl = if self.at_line_start { "" } else { "\n" };
        self.at_line_start = true;
        writeln!(f, "{nl}{} -- relay: {msg}", utc_now())
    }
}

/// Copy `bytes` to `out`, putting `stamp` and a space at each line start.
pub fn stamp_lines(out: &mut Vec<u8>, bytes: &[u8], at_line_start: &mut bool, stamp: &str) {
    for &b in bytes {
        if *at_line_start {
            out.extend_from_slice(stamp.as_bytes());
            out.push(b' ');
            *at_line_start = false;
        }
        out.push(b);
        if b == b'\n' {
            *at_line_start = true;
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_utc(d.as_secs() as i64, d.subsec_millis())
}

/// Unix seconds as an ISO 8601 UTC time (civil-from-days, proleptic Gregorian).
pub fn format_utc(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

type Port = Box<dyn serialport::SerialPort>;

/// Run the hub until killed.
pub fn run(o: ConsoleOptions) -> Result<()> {
    let mut port = crate::reboot::open_serial(&o.serial, o.baud)?;
    let writer: Arc<Mutex<Port>> = Arc::new(Mutex::new(port.try_clone().context("cannot clone the serial port handle")?));
    let mut log = TimestampedLog::open(o.log.as_deref())?;
    let listener = bind(&o.socket)?;
    let hub = Arc::new(Mutex::new(Hub { ring: VecDeque::new(), total: 0, clients: vec![], next_id: 1 }));
    log.note(&format!("console on {} at {} baud 8N1, socket {}", o.serial, o.baud, o.socket.display()))?;
    eprintln!(
        "relay console: {} at {} baud 8N1; clients: relay attach --socket {}{}",
        o.serial,
        o.baud,
        o.socket.display(),
        o.log.as_ref().map(|l| format!("; log {}", l.display())).unwrap_or_default()
    );

    {
        let (hub, writer) = (hub.clone(), writer.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => {
                        let (hub, writer) = (hub.clone(), writer.clone());
                        std::thread::spawn(move || serve_client(c, hub, writer));
                    }
                    Err(e) => eprintln!("relay console: accept failed: {e}"),
                }
            }
        });
    }

    let mut buf = [0u8; 4096];
    loop {
        match crate::reboot::read_port(&mut port, &mut buf) {
            Ok(0) => {}
            Ok(n) => {
                // The log first: it must hold everything even if a client stalls.
                if let Err(e) = log.write(&buf[..n]) {
                    eprintln!("relay console: writing the log failed: {e}");
                }
                hub.lock().unwrap().push(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A USB adapter unplugged, a pty whose QEMU went away: keep the
                // socket and the clients, and reopen the device when it returns.
                let msg = format!("reading {} failed: {e}; reopening every second", o.serial);
                eprintln!("relay console: {msg}");
                let _ = log.note(&msg);
                port = loop {
                    std::thread::sleep(Duration::from_secs(1));
                    if let Ok(p) = crate::reboot::open_serial(&o.serial, o.baud) {
                        break p;
                    }
                };
                if let Ok(w) = port.try_clone() {
                    *writer.lock().unwrap() = w;
                }
                let _ = log.note(&format!("{} reopened", o.serial));
            }
        }
    }
}

fn bind(socket: &Path) -> Result<UnixListener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            bail!("another console hub is already listening on {}", socket.display());
        }
        std::fs::remove_file(socket).with_context(|| format!("cannot remove stale socket {}", socket.display()))?;
    }
    let l = UnixListener::bind(socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    // Owner and group: put the users who may type into the target in the group.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

fn serve_client(mut c: UnixStream, hub: Arc<Mutex<Hub>>, writer: Arc<Mutex<Port>>) {
    let connected_at = hub.lock().unwrap().total;
    let (replay, pending) = read_header(&mut c);
    let _ = c.set_read_timeout(None);
    let _ = c.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
    let id;
    {
        let mut h = hub.lock().unwrap();
        let from = match replay {
            Some(n) => h.total.saturating_sub(n as u64),
            None => connected_at,
        };
        let backlog = h.since(from);
        if c.write_all(&backlog).is_err() {
            return;
        }
        id = h.next_id;
        h.next_id += 1;
        match c.try_clone() {
            Ok(w) => h.clients.push((id, w)),
            Err(_) => return,
        }
    }
    let to_target = |bytes: &[u8]| -> bool {
        let mut w = writer.lock().unwrap();
        match w.write_all(bytes).and_then(|_| w.flush()) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("relay console: writing to the serial port failed: {e}");
                false
            }
        }
    };
    if !pending.is_empty() {
        to_target(&pending);
    }
    let mut buf = [0u8; 1024];
    loop {
        match c.read(&mut buf) {
            // Half-closed (e.g. `relay attach < /dev/null`): still a listener;
            // it is dropped when a write to it fails.
            Ok(0) => return,
            Err(_) => break,
            Ok(n) => {
                to_target(&buf[..n]);
            }
        }
    }
    hub.lock().unwrap().clients.retain(|(i, _)| *i != id);
}

/// Read the optional header. Returns the replay request and any bytes read
/// that were not part of a header (keystrokes of a raw client).
fn read_header(c: &mut UnixStream) -> (Option<usize>, Vec<u8>) {
    let _ = c.set_read_timeout(Some(HEADER_WAIT));
    let mut got = vec![];
    let mut byte = [0u8; 1];
    while got.len() < 64 {
        match c.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return (None, got),
        }
        let n = got.len().min(HEADER_PREFIX.len());
        if got[..n] != HEADER_PREFIX[..n] {
            return (None, got);
        }
        if byte[0] == b'\n' {
            return (parse_header(&got), vec![]);
        }
    }
    (None, got)
}

/// `\0RELAY replay=N\n` -> Some(N).
pub fn parse_header(line: &[u8]) -> Option<usize> {
    let rest = line.strip_prefix(HEADER_PREFIX)?;
    let text = std::str::from_utf8(rest).ok()?.trim_end();
    text.split_whitespace().find_map(|w| w.strip_prefix("replay=")).and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_each_line_across_chunks() {
        let mut out = vec![];
        let mut start = true;
        stamp_lines(&mut out, b"ab\ncd", &mut start, "T");
        stamp_lines(&mut out, b"e\n\nf", &mut start, "U");
        assert_eq!(out, b"T ab\nT cde\nU \nU f");
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_795_737_600 + 3661, 42), "2026-11-27T01:01:01.042Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    }

    #[test]
    fn header_parsing() {
        assert_eq!(parse_header(b"\0RELAY replay=4096\n"), Some(4096));
        assert_eq!(parse_header(b"\0RELAY replay=x\n"), None);
        assert_eq!(parse_header(b"RELAY replay=1\n"), None);
    }

    #[test]
    fn replay_window_is_bounded() {
        let mut h = Hub { ring: VecDeque::new(), total: 0, clients: vec![], next_id: 1 };
        h.push(b"hello ");
        h.push(b"world");
        assert_eq!(h.since(0), b"hello world");
        assert_eq!(h.since(6), b"world");
        assert_eq!(h.since(99), b"");
        h.push(&vec![b'x'; REPLAY_CAPACITY]);
        assert_eq!(h.since(0).len(), REPLAY_CAPACITY);
    }
}
