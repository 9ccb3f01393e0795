//! Multiboot2, from both ends: the loader reads a kernel's header and plans
//! where the kernel goes ([`header`]) and writes the boot information
//! ([`mbi`]); a kernel checks the boot information it received ([`check`]).
//! The magics and tag numbers all three use are defined once, in [`tags`].

pub mod check;
pub mod header;
pub mod mbi;
pub mod tags;

pub use header::*;
pub use tags::*;
