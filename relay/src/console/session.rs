//! One console client over any byte stream (the control socket's
//! `attach`, a raw TCP port, a telnet port): its output comes from its own
//! queue on its own thread, so a client that stops reading stalls nobody.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::hub::Hub;
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
    mut reader: R,
    writer: W,
    pending: &[u8],
) {
    let writer = Arc::new(Mutex::new(writer));
    let mut tn = Telnet::new(hub.baud(), format!("relay {}", hub.target));
    if codec == Codec::Telnet && writer.lock().unwrap().write_all(&tn.greeting()).is_err() {
        return;
    }
    let (info, queue) = hub.add_client(kind, peer, read_only, replay);
    {
        let (w, q, h, id) = (writer.clone(), queue.clone(), hub.clone(), info.id);
        std::thread::spawn(move || loop {
            match q.pop(64 << 10) {
                Ok(b) => {
                    let b = if codec == Codec::Telnet { telnet::escape(&b) } else { b };
                    let mut w = w.lock().unwrap();
                    if w.write_all(&b).and_then(|_| w.flush()).is_err() {
                        h.remove_client(id, "write failed (disconnected)");
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
    let mut told = false;
    let mut handle = |bytes: &[u8]| -> bool {
        let (mut data, mut reply, mut ctl) = (vec![], vec![], vec![]);
        match codec {
            Codec::Raw => data.extend_from_slice(bytes),
            Codec::Telnet => tn.input(bytes, &mut data, &mut reply, &mut ctl),
        }
        if !reply.is_empty() && writer.lock().unwrap().write_all(&reply).is_err() {
            return false;
        }
        if read_only {
            if !data.is_empty() && !told {
                told = true;
                let _ = writer.lock().unwrap().write_all(READ_ONLY_NOTICE);
            }
            return true;
        }
        for c in ctl {
            let r = match c {
                Control::Line { dtr, asserted } => {
                    hub.set_line(if dtr { ModemLine::Dtr } else { ModemLine::Rts }, asserted)
                }
                Control::Baud(b) => hub.set_baud(b),
            };
            if let Err(e) = r {
                tracing::warn!("console {}: RFC 2217 request not applied: {}", hub.target, crate::error::Chain(&e));
            }
        }
        if !data.is_empty() {
            if let Err(e) = hub.write(&data) {
                tracing::warn!("console {}: writing to the target failed: {e}", hub.target);
            }
        }
        true
    };
    let mut ok = pending.is_empty() || handle(pending);
    let mut buf = [0u8; 4096];
    while ok {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => ok = handle(&buf[..n]),
        }
    }
    hub.remove_client(info.id, "disconnected");
}
