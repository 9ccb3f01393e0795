//! Fuzzes the boot config parser (bootproto::config): the file comes from
//! the TFTP server. It must return a config or an error naming a line that
//! exists, never panic, and a path it accepts is root-relative.
#![no_main]

use bootproto::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    match config::parse(text) {
        Ok(cfg) => {
            for e in std::iter::once(&cfg.kernel).chain(cfg.modules.iter()) {
                assert!(!e.path.is_empty());
                assert!(!e.path.starts_with('/'));
            }
        }
        // Line 0 is the whole file (no kernel line at all).
        Err(e) => assert!(e.line <= text.lines().count() + 1, "line {} of {}", e.line, text.lines().count()),
    }
});
