//! The serial port: opened raw 8N1, exclusively, and read so that a hangup
//! loses nothing already received. Below both the console hub and the
//! reset methods (which pulse its modem-control lines).

use std::io::{self, Read};
use std::time::Duration;

pub use crate::policy::targets::ModemLine;

use super::ConsoleError;

/// Open `path` raw, 8N1, no flow control. The crate opens it exclusively
/// (TIOCEXCL plus an exclusive `flock`, which also stops root): the hub and
/// anything else (minicom, a second relay) must never both read the port,
/// since each would see only part of the output.
///
/// Opening a tty asserts DTR and RTS (the kernel does it on open, before
/// any setting can be applied): a reset header wired to DTR without
/// inversion holds the target in reset from then on; see docs/console.md.
pub fn open_serial(path: &str, baud: u32) -> Result<serialport::TTYPort, ConsoleError> {
    let builder = serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100));
    serialport::TTYPort::open(&builder).map_err(|e| {
        let d = e.description.to_lowercase();
        if d.contains("busy") || d.contains("exclusive") {
            ConsoleError::SerialInUse { path: path.to_string(), source: e }
        } else {
            ConsoleError::SerialOpen { path: path.to_string(), baud, source: e }
        }
    })
}

/// Read from the port. The crate reports a hangup (POLLHUP: a USB adapter
/// unplugged, a pty whose other end closed) as BrokenPipe without reading
/// what is still buffered, which would lose the last lines the target
/// printed. Those bytes are read here first; the error comes once they are
/// gone.
pub fn read_port(port: &mut serialport::TTYPort, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    match port.read(buf) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            let mut pfd = libc::pollfd { fd: port.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one valid pollfd, no wait.
            let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
            if ready == 1 && pfd.revents & libc::POLLIN != 0 {
                // SAFETY: read into a buffer we own, of its length; the fd is open.
                let n = unsafe { libc::read(port.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    return Ok(n as usize);
                }
            }
            Err(e)
        }
        r => r,
    }
}

/// Drive a modem-control line. A device without modem-control lines (a
/// pty, some USB adapters) refuses the ioctl; the error says so.
pub fn set_line(
    port: &mut serialport::TTYPort,
    path: &str,
    line: ModemLine,
    asserted: bool,
) -> Result<(), ConsoleError> {
    use serialport::SerialPort;
    let r = match line {
        ModemLine::Dtr => port.write_data_terminal_ready(asserted),
        ModemLine::Rts => port.write_request_to_send(asserted),
    };
    r.map_err(|error| ConsoleError::DriveLine { line, path: path.to_string(), error })
}
