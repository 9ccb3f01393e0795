//! Multiboot2 loading and handoff (in progress).
