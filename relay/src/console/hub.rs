//! The console hub of one target: the only reader of its serial port.
//!
//! One thread reads the port. Each chunk goes, in this order, to the log
//! (so that nothing is lost whoever stalls), to the replay ring, to the
//! relay's own watchers (reboot judgement, boot verdicts, target state) and
//! to every client's queue. A client's queue is drained by that client's
//! own thread; the reader never waits for a client. A client that falls
//! [`CLIENT_QUEUE_MAX`] bytes behind (it stopped reading) is disconnected
//! with a note, and nobody else notices.
//!
//! The hub knows nothing of reboots: a client sends bytes to the target
//! (`~~~k` included) and the reset methods use [`Hub::write`] and
//! [`Hub::set_line`].

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use super::log::TimestampedLog;
use super::serial::{self, ModemLine};
use super::ConsoleError;

/// Recent output kept for replay to newly attached clients.
pub const REPLAY_CAPACITY: usize = 1 << 20;
/// A client this far behind is disconnected.
pub const CLIENT_QUEUE_MAX: usize = 1 << 20;

/// Console bytes at an absolute position in the target's output stream.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub pos: u64,
    pub bytes: Arc<[u8]>,
}

/// Who a client is, for `relay status`.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    /// "unix", "tcp", "telnet".
    pub kind: &'static str,
    pub peer: String,
    pub read_only: bool,
    pub since: String,
}

/// A client's pending output, filled by the reader, drained by the client.
pub struct ClientQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

struct QueueState {
    bytes: VecDeque<u8>,
    closed: Option<String>,
}

impl ClientQueue {
    fn new(initial: Vec<u8>) -> Arc<ClientQueue> {
        Arc::new(ClientQueue {
            state: Mutex::new(QueueState { bytes: initial.into(), closed: None }),
            ready: Condvar::new(),
        })
    }

    /// Non-blocking: false once the client is closed.
    fn push(&self, b: &[u8]) -> bool {
        let mut s = self.state.lock().unwrap();
        if s.closed.is_some() {
            return false;
        }
        if s.bytes.len() + b.len() > CLIENT_QUEUE_MAX {
            s.closed = Some(format!("more than {} KiB of console output not read", CLIENT_QUEUE_MAX >> 10));
            s.bytes.clear();
            self.ready.notify_all();
            return false;
        }
        s.bytes.extend(b);
        self.ready.notify_all();
        true
    }

    /// Wait for output; `Err(reason)` once closed.
    pub fn pop(&self, max: usize) -> std::result::Result<Vec<u8>, String> {
        let mut s = self.state.lock().unwrap();
        loop {
            if !s.bytes.is_empty() {
                let n = s.bytes.len().min(max);
                return Ok(s.bytes.drain(..n).collect());
            }
            if let Some(why) = &s.closed {
                return Err(why.clone());
            }
            s = self.ready.wait(s).unwrap();
        }
    }

    pub fn close(&self, why: &str) {
        let mut s = self.state.lock().unwrap();
        if s.closed.is_none() {
            s.closed = Some(why.to_string());
        }
        self.ready.notify_all();
    }
}

struct Inner {
    ring: VecDeque<u8>,
    clients: Vec<(ClientInfo, Arc<ClientQueue>)>,
    watchers: Vec<Sender<Chunk>>,
    log: TimestampedLog,
}

/// The hub of one target's console.
pub struct Hub {
    pub target: String,
    pub device: String,
    baud: std::sync::atomic::AtomicU32,
    total: AtomicU64,
    inner: Mutex<Inner>,
    writer: Mutex<Option<serialport::TTYPort>>,
    next_id: AtomicU64,
}

impl Hub {
    /// Open the port and start reading it. The port is opened here, so
    /// that a missing or busy device stops `relay serve` with its error.
    pub fn start(target: &str, device: &str, baud: u32, log: TimestampedLog) -> Result<Arc<Hub>, ConsoleError> {
        let port = serial::open_serial(device, baud)?;
        let writer = port
            .try_clone_native()
            .map_err(|source| ConsoleError::CloneHandle { device: device.to_string(), source })?;
        let hub = Arc::new(Hub {
            target: target.to_string(),
            device: device.to_string(),
            baud: baud.into(),
            total: AtomicU64::new(0),
            inner: Mutex::new(Inner { ring: VecDeque::new(), clients: vec![], watchers: vec![], log }),
            writer: Mutex::new(Some(writer)),
            next_id: AtomicU64::new(1),
        });
        hub.note(&format!("console of {target} on {device} at {baud} baud 8N1"));
        let h = hub.clone();
        std::thread::Builder::new().name(format!("console-{target}")).spawn(move || h.read_loop(port))?;
        Ok(hub)
    }

    /// The line speed in force.
    pub fn baud(&self) -> u32 {
        self.baud.load(Ordering::SeqCst)
    }

    /// Change the line speed (an RFC 2217 client asked); a reopened port
    /// keeps it.
    pub fn set_baud(&self, baud: u32) -> Result<(), ConsoleError> {
        use serialport::SerialPort;
        let mut w = self.writer.lock().unwrap();
        let p = w.as_mut().ok_or_else(|| ConsoleError::NotOpen(self.device.clone()))?;
        p.set_baud_rate(baud).map_err(|source| ConsoleError::SetBaud { device: self.device.clone(), baud, source })?;
        self.baud.store(baud, Ordering::SeqCst);
        info!(target: "console", target_name = %self.target, device = %self.device, baud, "line speed set (RFC 2217 request)");
        Ok(())
    }

    /// Bytes of output so far: the position of the next byte.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    pub fn log_path(&self) -> Option<std::path::PathBuf> {
        self.inner.lock().unwrap().log.path().map(|p| p.to_path_buf())
    }

    /// A line of the relay's own in the console log.
    pub fn note(&self, msg: &str) {
        let _ = self.inner.lock().unwrap().log.note(msg);
    }

    /// Everything printed from now on, for the relay's own watchers. Their
    /// channel is unbounded: they are our threads and keep up.
    pub fn watch(&self) -> (u64, Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel();
        let mut g = self.inner.lock().unwrap();
        g.watchers.push(tx);
        (self.total(), rx)
    }

    /// Register a client; it first gets up to `replay` bytes of recent output.
    pub fn add_client(
        &self,
        kind: &'static str,
        peer: String,
        read_only: bool,
        replay: usize,
    ) -> (ClientInfo, Arc<ClientQueue>) {
        let mut g = self.inner.lock().unwrap();
        let skip = g.ring.len().saturating_sub(replay);
        let backlog: Vec<u8> = g.ring.iter().skip(skip).copied().collect();
        let info = ClientInfo {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            kind,
            peer,
            read_only,
            since: super::log::utc_now(),
        };
        let q = ClientQueue::new(backlog);
        g.clients.push((info.clone(), q.clone()));
        info!(
            target: "console",
            target_name = %self.target,
            client = %info.peer,
            id = info.id,
            kind,
            read_only,
            "client attached"
        );
        (info, q)
    }

    pub fn remove_client(&self, id: u64, why: &str) {
        let mut g = self.inner.lock().unwrap();
        if let Some(i) = g.clients.iter().position(|(c, _)| c.id == id) {
            let (c, q) = g.clients.remove(i);
            q.close(why);
            info!(
                target: "console",
                target_name = %self.target,
                client = %c.peer,
                id = c.id,
                kind = c.kind,
                reason = %why,
                "client left"
            );
        }
    }

    pub fn clients(&self) -> Vec<ClientInfo> {
        self.inner.lock().unwrap().clients.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Send bytes to the target.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut w = self.writer.lock().unwrap();
        match w.as_mut() {
            Some(p) => p.write_all(bytes).and_then(|_| p.flush()),
            None => {
                Err(io::Error::new(io::ErrorKind::NotConnected, format!("{} is not open (reopening)", self.device)))
            }
        }
    }

    /// Drive DTR or RTS (reset methods `dtr`, `rts`).
    pub fn set_line(&self, line: ModemLine, asserted: bool) -> Result<(), ConsoleError> {
        let mut w = self.writer.lock().unwrap();
        match w.as_mut() {
            Some(p) => serial::set_line(p, &self.device, line, asserted),
            None => Err(ConsoleError::NotOpen(self.device.clone())),
        }
    }

    fn publish(&self, bytes: &[u8]) {
        let mut g = self.inner.lock().unwrap();
        // The log first: it must hold everything even if a client stalls.
        if let Err(e) = g.log.write(bytes) {
            warn!(target: "console", target_name = %self.target, error = %e, "writing the console log");
        }
        g.ring.extend(bytes);
        let excess = g.ring.len().saturating_sub(REPLAY_CAPACITY);
        g.ring.drain(..excess);
        let pos = self.total.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        let chunk = Chunk { pos, bytes: Arc::from(bytes) };
        g.watchers.retain(|w| w.send(chunk.clone()).is_ok());
        g.clients.retain(|(c, q)| {
            let kept = q.push(bytes);
            if !kept {
                warn!(
                    target: "console",
                    target_name = %self.target,
                    client = %c.peer,
                    id = c.id,
                    kind = c.kind,
                    "client dropped: it stopped reading"
                );
            }
            kept
        });
    }

    fn read_loop(self: Arc<Self>, mut port: serialport::TTYPort) {
        let mut buf = [0u8; 4096];
        loop {
            match serial::read_port(&mut port, &mut buf) {
                Ok(0) => {}
                Ok(n) => self.publish(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // A USB adapter unplugged, a pty whose QEMU went away: keep
                    // the clients, and reopen the device when it returns.
                    let msg = format!("reading {} failed: {e}; reopening every second", self.device);
                    warn!(
                        target: "console",
                        target_name = %self.target,
                        device = %self.device,
                        error = %e,
                        "read failed, reopening every second"
                    );
                    self.note(&msg);
                    *self.writer.lock().unwrap() = None;
                    port = loop {
                        std::thread::sleep(Duration::from_secs(1));
                        if let Ok(p) = serial::open_serial(&self.device, self.baud()) {
                            break p;
                        }
                    };
                    if let Ok(w) = port.try_clone_native() {
                        *self.writer.lock().unwrap() = Some(w);
                    }
                    self.note(&format!("{} reopened", self.device));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_closes_instead_of_growing() {
        let q = ClientQueue::new(b"old".to_vec());
        assert!(q.push(b"new"));
        assert_eq!(q.pop(100).unwrap(), b"oldnew");
        let big = vec![0u8; CLIENT_QUEUE_MAX / 2 + 1];
        assert!(q.push(&big));
        assert!(!q.push(&big));
        assert!(q.pop(10).unwrap_err().contains("not read"));
    }
}
