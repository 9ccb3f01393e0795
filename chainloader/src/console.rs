//! The console: every line goes to COM1 (115200 8N1, the port the kernel
//! uses too) and to the VGA text screen at 0xB8000, which scrolls.
//!
//! One global behind a lock; `print!`/`println!` format straight into both
//! outputs without a buffer. A line printed while another is being written
//! (a panic or CPU exception in the middle of one) goes to COM1 alone
//! instead of waiting for a lock that will never be released.

use crate::arch::{self, vga::TextScreen};
use baremetal::serial::Uart16550;
use core::fmt;

pub struct Console {
    com1: Uart16550,
    vga: TextScreen,
    /// False once a VBE graphics mode is set for the kernel: 0xB8000 is then
    /// no text screen (on QEMU's std VGA it is a window onto the
    /// framebuffer), so output goes to COM1 only.
    text_screen: bool,
}

static CONSOLE: spin::Mutex<Option<Console>> = spin::Mutex::new(None);

/// Sets up COM1 and clears the screen. Call once, first.
pub fn init() {
    let com1 = arch::com1();
    com1.init();
    let mut vga = TextScreen::new();
    vga.clear();
    *CONSOLE.lock() = Some(Console { com1, vga, text_screen: true });
}

/// Whether lines also go to the VGA text screen. Turned off when the
/// display leaves text mode; turning it on again clears the screen.
pub fn set_text_screen(on: bool) {
    if let Some(c) = CONSOLE.lock().as_mut() {
        if on && !c.text_screen {
            c.vga.clear();
        }
        c.text_screen = on;
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.com1.write_byte(b'\r');
            }
            self.com1.write_byte(b);
            if self.text_screen {
                self.vga.put(b);
            }
        }
        Ok(())
    }
}

pub fn write_fmt(args: fmt::Arguments) {
    match CONSOLE.try_lock() {
        Some(mut c) => {
            if let Some(c) = c.as_mut() {
                let _ = fmt::Write::write_fmt(c, args);
            }
        }
        // Re-entered from a panic or exception while a line was being written.
        None => {
            let _ = fmt::Write::write_fmt(&mut arch::com1(), args);
        }
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
