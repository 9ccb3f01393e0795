//! Fuzzes the boot information checker (bootproto::mbi_check) that the
//! reference kernel runs on what a loader hands it: arbitrary bytes as an
//! MBI must give a verdict, never a panic (a checker that crashes on a
//! broken loader's output cannot report it).
#![no_main]

use bootproto::mbi_check::{check, Range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else { return };
    let magic = if sel & 1 == 0 { 0x36d7_6289 } else { u32::from(sel) };
    let _ = check(magic, 0x10_0000, bytes, Range { start: 0x20_0000, end: 0x30_0000 });
});
