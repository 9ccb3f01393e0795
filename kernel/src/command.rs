//! The serial command recogniser (docs/serial-reboot.md): exactly three
//! `~` followed by `k` (reboot), `p` (panic) or `s` (shut down).
//!
//! The syntax and the handling of a fourth `~` are Nautilus's
//! (src/dev/serial.c, `drive_cmd_fsm`), so the relay's `~~~k` works on both
//! kernels. One deliberate difference: any other byte before the third `~`
//! resets the count here (Nautilus keeps it), so a command split by noise
//! (`~~x~k`) is not a command.

use core::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Reboot,
    Panic,
    Shutdown,
}

/// Number of consecutive `~` seen (0..=3). An atomic, so that a `static`
/// needs no `unsafe`; there is one CPU and the IRQ handler does not nest,
/// so relaxed loads and stores suffice.
pub struct Recogniser {
    tildes: AtomicU8,
}

impl Recogniser {
    pub const fn new() -> Self {
        Recogniser { tildes: AtomicU8::new(0) }
    }

    /// Forget a partial command (after a garbled byte).
    pub fn cancel(&self) {
        self.tildes.store(0, Ordering::Relaxed);
    }

    /// Feed one received byte; a complete command is returned once.
    pub fn feed(&self, b: u8) -> Option<Command> {
        let (next, cmd) = match (self.tildes.load(Ordering::Relaxed), b) {
            (3, b'~') => (0, None), // a fourth tilde: not a command (as Nautilus)
            (n, b'~') => (n + 1, None),
            (3, b'k') => (0, Some(Command::Reboot)),
            (3, b'p') => (0, Some(Command::Panic)),
            (3, b's') => (0, Some(Command::Shutdown)),
            _ => (0, None),
        };
        self.tildes.store(next, Ordering::Relaxed);
        cmd
    }
}
