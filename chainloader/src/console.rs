//! The console: every line goes to COM1 (115200 8N1, the port the kernel
//! uses too) and to the VGA text screen at 0xB8000, which scrolls.
//!
//! The chainloader is single-threaded with interrupts off in long mode, so a
//! plain static behind a spin-free cell is enough; `print!`/`println!`
//! format straight into both outputs without a buffer.

use baremetal::serial::{Uart16550, COM1};
use core::cell::UnsafeCell;
use core::fmt;

const VGA_BASE: usize = 0xB8000;
const COLS: usize = 80;
const ROWS: usize = 25;
/// Light grey on black.
const ATTR: u16 = 0x0700;

struct Vga {
    col: usize,
}

impl Vga {
    fn cell(&self, row: usize, col: usize) -> *mut u16 {
        (VGA_BASE + 2 * (row * COLS + col)) as *mut u16
    }

    fn newline(&mut self) {
        self.col = 0;
        // SAFETY: the VGA text buffer is identity-mapped MMIO at 0xB8000
        // (80x25 cells of u16); only the console writes it.
        unsafe {
            for row in 1..ROWS {
                for col in 0..COLS {
                    self.cell(row - 1, col).write_volatile(self.cell(row, col).read_volatile());
                }
            }
            for col in 0..COLS {
                self.cell(ROWS - 1, col).write_volatile(ATTR | b' ' as u16);
            }
        }
    }

    fn put(&mut self, b: u8) {
        match b {
            b'\n' => self.newline(),
            b'\r' => self.col = 0,
            _ => {
                if self.col == COLS {
                    self.newline();
                }
                // SAFETY: as in `newline`; col < COLS.
                unsafe { self.cell(ROWS - 1, self.col).write_volatile(ATTR | b as u16) };
                self.col += 1;
            }
        }
    }
}

pub struct Console {
    com1: Uart16550,
    vga: Vga,
    /// False once a VBE graphics mode is set for the kernel: 0xB8000 is then
    /// no text screen (on QEMU's std VGA it is a window onto the
    /// framebuffer), so output goes to COM1 only.
    text_screen: bool,
}

struct Global(UnsafeCell<Option<Console>>);
// SAFETY: single CPU, no interrupts in long mode; the exception handler
// takes the console over only when the normal flow has stopped.
unsafe impl Sync for Global {}

static CONSOLE: Global = Global(UnsafeCell::new(None));

/// Sets up COM1 and clears the screen. Call once, first.
pub fn init() {
    // SAFETY: COM1 belongs to the chainloader while it runs.
    let com1 = unsafe { Uart16550::new(COM1) };
    com1.init();
    let mut vga = Vga { col: 0 };
    for _ in 0..ROWS {
        vga.newline();
    }
    // SAFETY: see `Global`; nothing else holds a reference.
    unsafe { *CONSOLE.0.get() = Some(Console { com1, vga, text_screen: true }) };
}

/// Whether lines also go to the VGA text screen. Turned off when the
/// display leaves text mode; turning it on again clears the screen.
pub fn set_text_screen(on: bool) {
    // SAFETY: see `Global`: one caller at a time.
    if let Some(c) = unsafe { (*CONSOLE.0.get()).as_mut() } {
        if on && !c.text_screen {
            for _ in 0..ROWS {
                c.vga.newline();
            }
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
    // SAFETY: see `Global`: one caller at a time.
    if let Some(c) = unsafe { (*CONSOLE.0.get()).as_mut() } {
        let _ = fmt::Write::write_fmt(c, args);
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
