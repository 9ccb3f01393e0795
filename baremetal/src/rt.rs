//! Symbols the precompiled `core` of the host target expects from its
//! environment.

/// `core` for x86_64-unknown-linux-gnu is built with unwind tables that name
/// this personality routine. With `panic = "abort"` nothing ever unwinds, so
/// it is never called; it only has to exist for the link.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The precompiled `alloc` of the host target has landing pads that call
/// this to continue unwinding. With `panic = "abort"` nothing unwinds, so it
/// is never reached; it only has to exist for the link.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
