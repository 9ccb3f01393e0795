//! GRUB 2 netboot fixture (in progress).
