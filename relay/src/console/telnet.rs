//! Telnet (RFC 854) with the COM-PORT-OPTION of RFC 2217, server side: what
//! `telnet`, minicom/ser2net-style clients and pyserial's `rfc2217://`
//! (labgrid's NetworkSerialPort) need to use a target's console over TCP.
//!
//! A read-write client's requests to change the speed, DTR and RTS are
//! applied to the port (as ser2net does: the port is shared, so the last
//! request wins). Data size, parity and stop bits stay 8N1: requests are
//! answered with the settings in force (RFC 2217 lets the server answer
//! with the value it actually uses; pyserial then reports a rejection).

pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
pub const BINARY: u8 = 0;
pub const ECHO: u8 = 1;
pub const SGA: u8 = 3;
pub const COM_PORT: u8 = 44;

/// What the codec asks of the session besides data for the target.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// RFC 2217 SET-CONTROL: DTR (true) or RTS (false) to this level.
    Line { dtr: bool, asserted: bool },
    /// RFC 2217 SET-BAUDRATE with a speed (0 only asks).
    Baud(u32),
}

#[derive(PartialEq)]
enum St {
    Data,
    Iac,
    Opt(u8),
    Sb,
    SbIac,
    Cr,
}

pub struct Telnet {
    st: St,
    ours: [bool; 256],
    theirs: [bool; 256],
    sb: Vec<u8>,
    baud: u32,
    signature: String,
}

impl Telnet {
    pub fn new(baud: u32, signature: String) -> Self {
        Telnet { st: St::Data, ours: [false; 256], theirs: [false; 256], sb: vec![], baud, signature }
    }

    /// What the server says first: it echoes and sends characters at once
    /// (so `telnet` leaves line mode), 8-bit clean both ways.
    pub fn greeting(&mut self) -> Vec<u8> {
        let mut out = vec![];
        for o in [ECHO, SGA, BINARY] {
            self.ours[o as usize] = true;
            out.extend([IAC, WILL, o]);
        }
        for o in [SGA, BINARY] {
            self.theirs[o as usize] = true;
            out.extend([IAC, DO, o]);
        }
        out
    }

    /// Bytes from the client: data for the target, replies for the client,
    /// and control requests.
    pub fn input(&mut self, bytes: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>, ctl: &mut Vec<Control>) {
        for &b in bytes {
            self.st = match std::mem::replace(&mut self.st, St::Data) {
                St::Data | St::Cr if b == IAC => St::Iac,
                // NVT: Enter is CR NUL or CR LF; the target gets CR.
                St::Cr if (b == 0 || b == b'\n') && !self.theirs[BINARY as usize] => St::Data,
                St::Data | St::Cr => {
                    data.push(b);
                    if b == b'\r' {
                        St::Cr
                    } else {
                        St::Data
                    }
                }
                St::Iac => match b {
                    IAC => {
                        data.push(IAC);
                        St::Data
                    }
                    DO | DONT | WILL | WONT => St::Opt(b),
                    SB => {
                        self.sb.clear();
                        St::Sb
                    }
                    _ => St::Data, // NOP, AYT, GA...: nothing to do
                },
                St::Opt(verb) => {
                    self.negotiate(verb, b, reply);
                    St::Data
                }
                St::Sb if b == IAC => St::SbIac,
                St::Sb => {
                    if self.sb.len() < 256 {
                        self.sb.push(b);
                    }
                    St::Sb
                }
                St::SbIac if b == SE => {
                    let sb = std::mem::take(&mut self.sb);
                    self.subnegotiation(&sb, reply, ctl);
                    St::Data
                }
                St::SbIac => {
                    self.sb.push(b);
                    St::Sb
                }
            };
        }
    }

    fn negotiate(&mut self, verb: u8, o: u8, reply: &mut Vec<u8>) {
        let i = o as usize;
        match verb {
            DO if matches!(o, BINARY | ECHO | SGA | COM_PORT) => {
                if !self.ours[i] {
                    self.ours[i] = true;
                    reply.extend([IAC, WILL, o]);
                }
            }
            DO => reply.extend([IAC, WONT, o]),
            DONT => {
                if self.ours[i] {
                    self.ours[i] = false;
                    reply.extend([IAC, WONT, o]);
                }
            }
            WILL if matches!(o, BINARY | SGA | COM_PORT) => {
                if !self.theirs[i] {
                    self.theirs[i] = true;
                    reply.extend([IAC, DO, o]);
                }
            }
            WILL => reply.extend([IAC, DONT, o]),
            _ => {
                if self.theirs[i] {
                    self.theirs[i] = false;
                    reply.extend([IAC, DONT, o]);
                }
            }
        }
    }

    fn subnegotiation(&mut self, sb: &[u8], reply: &mut Vec<u8>, ctl: &mut Vec<Control>) {
        let [COM_PORT, cmd, value @ ..] = sb else { return };
        let answer: Vec<u8> = match *cmd {
            0 => self.signature.as_bytes().to_vec(),
            // SET-BAUDRATE: 0 asks; a speed is applied by the session.
            1 => {
                if let [a, b, c, d] = value {
                    let want = u32::from_be_bytes([*a, *b, *c, *d]);
                    if want != 0 {
                        ctl.push(Control::Baud(want));
                        self.baud = want;
                    }
                }
                self.baud.to_be_bytes().to_vec()
            }
            2 => vec![8],
            3 => vec![1], // NONE
            4 => vec![1], // 1 stop bit
            5 => {
                let v = value.first().copied().unwrap_or(0);
                match v {
                    0..=3 => vec![1], // flow control: none
                    4..=6 => vec![6], // break: off
                    7 => vec![8],
                    8 | 9 => {
                        ctl.push(Control::Line { dtr: true, asserted: v == 8 });
                        vec![v]
                    }
                    10 => vec![11],
                    11 | 12 => {
                        ctl.push(Control::Line { dtr: false, asserted: v == 11 });
                        vec![v]
                    }
                    _ => vec![1],
                }
            }
            8 | 9 => return, // flow control suspend/resume: no reply
            _ => value.to_vec(),
        };
        reply.extend([IAC, SB, COM_PORT, cmd + 100]);
        for b in answer {
            reply.push(b);
            if b == IAC {
                reply.push(IAC);
            }
        }
        reply.extend([IAC, SE]);
    }
}

/// Console output for a telnet client: 0xFF doubled.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Telnet, b: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Control>) {
        let (mut d, mut r, mut c) = (vec![], vec![], vec![]);
        t.input(b, &mut d, &mut r, &mut c);
        (d, r, c)
    }

    #[test]
    fn negotiation_agrees_once_and_data_passes() {
        let mut t = Telnet::new(115200, "relay".into());
        let g = t.greeting();
        assert!(g.windows(3).any(|w| w == [IAC, WILL, ECHO]));
        // The client's answers to our offers need no reply (no loop).
        let (d, r, _) =
            feed(&mut t, &[IAC, DO, ECHO, IAC, WILL, SGA, b'h', b'i', IAC, IAC, b'\r', 0, IAC, WILL, COM_PORT]);
        assert_eq!(d, [b'h', b'i', IAC, b'\r', 0]); // binary agreed: CR NUL is data
        assert_eq!(r, [IAC, DO, COM_PORT]);
        let (_, r, _) = feed(&mut t, &[IAC, DO, 24]); // terminal type: refused
        assert_eq!(r, [IAC, WONT, 24]);
    }

    #[test]
    fn cr_nul_is_cr_without_binary() {
        let mut t = Telnet::new(115200, "relay".into());
        let (d, _, _) = feed(&mut t, b"ls\r\0x\r\ny");
        assert_eq!(d, b"ls\rx\ry");
    }

    #[test]
    fn rfc2217_answers_with_the_settings_in_force() {
        let mut t = Telnet::new(115200, "relay aronnax".into());
        let (_, r, c) = feed(&mut t, &[IAC, SB, COM_PORT, 1, 0, 0, 0, 0, IAC, SE]); // asks
        assert_eq!((r, c), (vec![IAC, SB, COM_PORT, 101, 0, 1, 0xc2, 0x00, IAC, SE], vec![]));
        let (_, r, c) = feed(&mut t, &[IAC, SB, COM_PORT, 1, 0, 0, 0x25, 0x80, IAC, SE]); // 9600
        assert_eq!((r, c), (vec![IAC, SB, COM_PORT, 101, 0, 0, 0x25, 0x80, IAC, SE], vec![Control::Baud(9600)]));
        let (_, r, c) = feed(&mut t, &[IAC, SB, COM_PORT, 5, 9, IAC, SE, IAC, SB, COM_PORT, 2, 7, IAC, SE]);
        assert_eq!(r, [IAC, SB, COM_PORT, 105, 9, IAC, SE, IAC, SB, COM_PORT, 102, 8, IAC, SE]);
        assert_eq!(c, [Control::Line { dtr: true, asserted: false }]);
        let (_, r, _) = feed(&mut t, &[IAC, SB, COM_PORT, 0, IAC, SE]);
        assert_eq!(&r[4..r.len() - 2], b"relay aronnax");
        assert_eq!(escape(&[1, IAC, 2]), [1, IAC, IAC, 2]);
    }
}
