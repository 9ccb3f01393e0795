//! The VGA text screen at 0xB8000: 80x25 cells, written at the bottom line,
//! scrolled up on a new line.

const VGA_BASE: usize = 0xB8000;
pub const COLS: usize = 80;
pub const ROWS: usize = 25;
/// Light grey on black.
const ATTR: u16 = 0x0700;

/// The text screen and the column of the next character on its last line.
pub struct TextScreen {
    col: usize,
}

fn cell(row: usize, col: usize) -> *mut u16 {
    assert!(row < ROWS && col < COLS);
    (VGA_BASE + 2 * (row * COLS + col)) as *mut u16
}

fn write(row: usize, col: usize, v: u16) {
    // SAFETY: the VGA text buffer is identity-mapped memory at 0xB8000
    // (80x25 u16 cells, `cell` checks the bounds); it is device memory that
    // no Rust object lives in, so volatile writes through a raw pointer
    // alias nothing. Only the console writes it.
    unsafe { cell(row, col).write_volatile(v) }
}

fn read(row: usize, col: usize) -> u16 {
    // SAFETY: as in `write`; a read has no side effect.
    unsafe { cell(row, col).read_volatile() }
}

impl TextScreen {
    pub const fn new() -> Self {
        TextScreen { col: 0 }
    }

    /// Scrolls everything off the screen.
    pub fn clear(&mut self) {
        for _ in 0..ROWS {
            self.newline();
        }
    }

    fn newline(&mut self) {
        self.col = 0;
        for row in 1..ROWS {
            for col in 0..COLS {
                write(row - 1, col, read(row, col));
            }
        }
        for col in 0..COLS {
            write(ROWS - 1, col, ATTR | b' ' as u16);
        }
    }

    pub fn put(&mut self, b: u8) {
        match b {
            b'\n' => self.newline(),
            b'\r' => self.col = 0,
            _ => {
                if self.col == COLS {
                    self.newline();
                }
                write(ROWS - 1, self.col, ATTR | b as u16);
                self.col += 1;
            }
        }
    }
}
