//! Runtime support shared by the two bare-metal bins (`chainloader`, `kernel`).
//!
//! Both are built for the host target (`x86_64-unknown-linux-gnu`) as
//! `#![no_std] #![no_main]` images, because that is the only standard library
//! this toolchain has. That target's `compiler_builtins` does not export the
//! `mem*` symbols (libc is expected to), so this crate provides them, and the
//! 16550 UART both bins use as their console.
#![no_std]

pub mod mem;
pub mod port;
pub mod rt;
pub mod serial;
