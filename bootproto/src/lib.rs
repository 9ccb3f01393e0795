//! Boot protocol logic that does not touch hardware: plain `no_std` Rust
//! (with `alloc`), unit-tested on the host with `cargo test -p bootproto`.
//!
//! Used by `chainloader` (TFTP client, boot config, Multiboot2 loading and
//! boot information) and `kernel` (boot information self-check).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bytes;
pub mod config;
pub mod gzip;
pub mod http;
pub mod memmap;
pub mod multiboot2;
pub mod tftp;
pub mod vbe;
pub mod xorshift;

// The paths the chainloader and the kernel were written against.
pub use multiboot2::{check as mbi_check, mbi};
