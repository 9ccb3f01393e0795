//! One console client over any byte stream (the control socket's
//! `attach`, a raw TCP port, a telnet port): its output comes from its own
//! queue on its own thread, so a client that stops reading stalls nobody.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::hub::{ClientQueue, Hub};
use super::serial::ModemLine;
use super::telnet::{self, Control, Telnet};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Raw,
    Telnet,
}

const READ_ONLY_NOTICE: &[u8] = b"\r\n[relay: this console is read-only; input ignored]\r\n";

/// Serve one client until it leaves or is dropped. `pending` is input that
/// arrived with the request (keystrokes typed at once).
#[allow(clippy::too_many_arguments)]
pub fn run<R: Read, W: Write + Send + 'static>(
    hub: &Arc<Hub>,
    kind: &'static str,
    peer: String,
    read_only: bool,
    replay: usize,
    codec: Codec,
    reader: R,
    writer: W,
    pending: &[u8],
) {
    let writer: Shared<W> = Arc::new(Mutex::new(writer));
    let mut tn = Telnet::new(hub.baud(), format!("relay {}", hub.target));
    if codec == Codec::Telnet && writer.lock().unwrap().write_all(&tn.greeting()).is_err() {
        return;
    }
    let (info, queue) = hub.add_client(kind, peer, read_only, replay);
    spawn_output(hub.clone(), info.id, queue, writer.clone(), codec);
    let mut input = Input { hub, peer: &info.peer, writer, codec, tn, read_only, told: false };
    input.pump(reader, pending);
    hub.remove_client(info.id, "disconnected");
}

/// The writer both the output thread and the input side (telnet replies, notices) use.
type Shared<W> = Arc<Mutex<W>>;

/// The client's output thread: its queue to its stream, until the hub
/// closes the queue (then it says why) or the stream fails.
fn spawn_output<W: Write + Send + 'static>(
    hub: Arc<Hub>,
    id: u64,
    queue: Arc<ClientQueue>,
    w: Shared<W>,
    codec: Codec,
) {
    std::thread::spawn(move || loop {
        match queue.pop(64 << 10) {
            Ok(b) => {
                let b = if codec == Codec::Telnet { telnet::escape(&b) } else { b };
                let mut w = w.lock().unwrap();
                if w.write_all(&b).and_then(|_| w.flush()).is_err() {
                    hub.remove_client(id, "write failed (disconnected)");
                    return;
                }
            }
            Err(why) => {
                let mut w = w.lock().unwrap();
                let _ = w.write_all(format!("\r\n[relay: disconnected: {why}]\r\n").as_bytes());
                return;
            }
        }
    });
}

/// The client's input side: what it sends, decoded, to the target.
struct Input<'a, W: Write> {
    hub: &'a Arc<Hub>,
    peer: &'a str,
    writer: Shared<W>,
    codec: Codec,
    tn: Telnet,
    read_only: bool,
    /// A read-only client has been told once that its input is ignored.
    told: bool,
}

impl<W: Write> Input<'_, W> {
    /// `pending` first, then the stream, until it ends or a reply cannot be written.
    fn pump(&mut self, mut reader: impl Read, pending: &[u8]) {
        let mut ok = pending.is_empty() || self.handle(pending);
        let mut buf = [0u8; 4096];
        while ok {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => ok = self.handle(&buf[..n]),
            }
        }
    }

    /// One read's worth: false once the client cannot be answered.
    fn handle(&mut self, bytes: &[u8]) -> bool {
        let (mut data, mut reply, mut ctl) = (vec![], vec![], vec![]);
        match self.codec {
            Codec::Raw => data.extend_from_slice(bytes),
            Codec::Telnet => self.tn.input(bytes, &mut data, &mut reply, &mut ctl),
        }
        if !reply.is_empty() && self.writer.lock().unwrap().write_all(&reply).is_err() {
            return false;
        }
        if self.read_only {
            if !data.is_empty() && !self.told {
                self.told = true;
                let _ = self.writer.lock().unwrap().write_all(READ_ONLY_NOTICE);
            }
            return true;
        }
        self.apply_controls(ctl);
        self.send_to_target(&data);
        true
    }

    /// RFC 2217 requests: DTR, RTS and the line speed.
    fn apply_controls(&self, ctl: Vec<Control>) {
        for c in ctl {
            let r = match c {
                Control::Line { dtr, asserted } => {
                    self.hub.set_line(if dtr { ModemLine::Dtr } else { ModemLine::Rts }, asserted)
                }
                Control::Baud(b) => self.hub.set_baud(b),
            };
            if let Err(e) = r {
                tracing::warn!(
                    target: "console",
                    target_name = %self.hub.target,
                    client = %self.peer,
                    error = %crate::error::Chain(&e),
                    "RFC 2217 request not applied"
                );
            }
        }
    }

    fn send_to_target(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Err(e) = self.hub.write(data) {
            tracing::warn!(
                target: "console",
                target_name = %self.hub.target,
                client = %self.peer,
                error = %e,
                "writing to the target"
            );
        }
    }
}
