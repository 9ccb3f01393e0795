//! `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`.
//!
//! Written with `rep movsb`/`rep stosb` in inline assembly rather than Rust
//! loops: LLVM turns a copy loop back into a call to `memcpy`, which here
//! would recurse forever. Modern Intel CPUs (ERMSB) make `rep movsb` the
//! fastest generic copy, and QEMU's TCG executes it as a bulk helper.
//! The functions are only exported from a real bare-metal link; a host test
//! binary keeps libc's.

use core::arch::asm;

/// # Safety
/// `dest` and `src` must be valid for `n` bytes and must not overlap.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid; DF is clear per the ABI.
    unsafe {
        asm!("rep movsb",
            inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `dest` and `src` must be valid for `n` bytes; they may overlap.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is below src, or the ranges are disjoint: a forward copy is safe.
        // SAFETY: as for memcpy; forward copying never reads a byte already written.
        unsafe { memcpy(dest, src, n) }
    } else {
        // SAFETY: copy backwards from the last byte; DF is restored before returning.
        unsafe {
            asm!("std", "rep movsb", "cld",
                inout("rcx") n => _,
                inout("rdi") dest.add(n).wrapping_sub(1) => _,
                inout("rsi") src.add(n).wrapping_sub(1) => _,
                options(nostack));
        }
        dest
    }
}

/// # Safety
/// `dest` must be valid for `n` bytes.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid.
    unsafe {
        asm!("rep stosb",
            inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8,
            options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, and the caller guarantees n readable bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
